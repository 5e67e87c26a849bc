package service

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/internal/memlimit"
	"github.com/floe-lake/floe/writer"
)

// GovernMemory keeps the Go soft memory limit at the writer's
// memory-limit minus the file-backed pages the process has resident (the
// binary, mapped key indexes), never below its heap floor, until ctx ends
// (internal/memlimit), unless GOMEMLIMIT is set.
func GovernMemory(ctx context.Context, cfg writer.Config, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	cfg.ApplyDefaults()
	g := &memlimit.Governor{Target: int64(cfg.MemoryLimit), Floor: cfg.HeapFloor(), Log: log}
	limit := g.Step()
	log.Debug("memory limit set", "bytes", limit, "target_bytes", int64(cfg.MemoryLimit), "floor_bytes", cfg.HeapFloor())
	go g.Run(ctx)
}

// collector exports what Ready and the Board know, at every scrape:
// floe_ready, floe_job_failing{name} and floe_memory_limit_bytes.
type collector struct {
	s                      *Service
	ready, failing, memory *prometheus.Desc
}

func newCollector(s *Service) *collector {
	return &collector{
		s:       s,
		ready:   prometheus.NewDesc("floe_ready", "1 while /readyz answers 200: every job runs and has made progress or is idle for a known reason.", nil, nil),
		failing: prometheus.NewDesc("floe_job_failing", "1 while a job has failed since its last progress (run.unavailable-timeout counts from the first failure); 2 once halted.", []string{"name"}, nil),
		memory:  prometheus.NewDesc("floe_memory_limit_bytes", "The Go soft memory limit: GOMEMLIMIT, or writer.memory-limit minus the file-backed pages resident (the binary, mapped key indexes), at least memory-budget + flush-bytes.", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.ready
	ch <- c.failing
	ch <- c.memory
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	r := 1.0
	if c.s.Ready() != nil {
		r = 0
	}
	ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, r)
	now := c.s.o.Now()
	for _, j := range c.s.board.Jobs() {
		v := 0.0
		switch {
		case j.State == "halted":
			v = 2
		case failing(j, now, c.s.cfg.Run.UnavailableTimeout):
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.failing, prometheus.GaugeValue, v, j.Name)
	}
	ch <- prometheus.MustNewConstMetric(c.memory, prometheus.GaugeValue, float64(debug.SetMemoryLimit(-1)))
}
