package gen

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/floe-lake/floe/internal/benchutil"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// discardSink releases every batch at once.
type discardSink struct {
	writer.Sink // the generator only opens and writes

	schemas map[string]*arrow.Schema
	rows    int64
}

func (s *discardSink) Open(tbl, _ string) (table.Positions, *arrow.Schema, error) {
	return nil, s.schemas[tbl], nil
}

func (s *discardSink) Write(b writer.Batch) error {
	if b.Record != nil {
		s.rows += b.Record.NumRows()
		b.Record.Release()
	}
	return nil
}

// BenchmarkGenerate measures generation into Arrow on one goroutine; one op
// is one record (offset); rows/s counts records per wall-clock second and
// rows/cpu-s per second of process CPU time (run with -cpu 1 for one core).
func BenchmarkGenerate(b *testing.B) {
	for _, bc := range []struct {
		name   string
		bad    float64
		orders bool
	}{
		{"good-events", 0, false},
		{"events+orders+dead-letters", 0.001, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.BadFraction = bc.bad
			if !bc.orders {
				cfg.OrdersTable = ""
			}
			cfg.Allocator = memory.NewGoAllocator()
			cfg.RowsPerPartition = int64(b.N/cfg.Partitions + 1)
			g, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			s := &discardSink{schemas: map[string]*arrow.Schema{
				cfg.EventsTable:     arrowSchema(b, EventsSpec(cfg.EventsTable), false),
				cfg.OrdersTable:     arrowSchema(b, OrdersSpec(cfg.OrdersTable), false),
				cfg.DeadLetterTable: arrowSchema(b, table.DeadLetterSpec(cfg.DeadLetterTable), false),
			}}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			cpu0, cpuOK := benchutil.ProcessCPU()
			if err := g.Run(context.Background(), s); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			cpu1, _ := benchutil.ProcessCPU()
			b.StopTimer()
			records := cfg.RowsPerPartition * int64(cfg.Partitions)
			b.ReportMetric(float64(records)/elapsed.Seconds(), "rows/s")
			if cpuOK && cpu1 > cpu0 {
				// On a shared machine wall time undercounts; this is the rate
				// per second of CPU the process (GC included) used.
				b.ReportMetric(float64(records)/(cpu1-cpu0).Seconds(), "rows/cpu-s")
			}
		})
	}
}
