package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/source/gen"
	"github.com/floe-lake/floe/source/kafka"
	"github.com/floe-lake/floe/source/mysql"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// sourceConfig is one entry of sources: in floe.yaml.
type sourceConfig struct {
	// Type: gen, kafka or mysql.
	Type string `yaml:"type"`
	// Gen configures a synthetic generator (type: gen).
	Gen *gen.Config `yaml:"gen"`
	// Kafka configures a Kafka consumer-group source (type: kafka).
	Kafka *kafka.Config `yaml:"kafka"`
	// MySQL configures a MySQL/MariaDB binlog CDC source (type: mysql).
	MySQL *mysql.Config `yaml:"mysql"`
}

func (s *sourceConfig) validate(key string) error {
	switch s.Type {
	case "gen":
		if s.Gen == nil {
			c := gen.DefaultConfig()
			s.Gen = &c
		}
		s.Gen.ApplyDefaults()
		if err := s.Gen.Validate(); err != nil {
			return fmt.Errorf("%s.%w", key, err)
		}
		return nil
	case "kafka":
		if s.Kafka == nil {
			c := kafka.DefaultConfig()
			s.Kafka = &c
		}
		s.Kafka.ApplyDefaults()
		if err := s.Kafka.Validate(); err != nil {
			return fmt.Errorf("%s.%w", key, err)
		}
		return nil
	case "mysql":
		if s.MySQL == nil {
			c := mysql.DefaultConfig()
			s.MySQL = &c
		}
		s.MySQL.ApplyDefaults()
		if err := s.MySQL.Validate(); err != nil {
			return fmt.Errorf("%s.%w", key, err)
		}
		return nil
	case "":
		return fmt.Errorf("%s.type: required (gen, kafka, mysql)", key)
	}
	return fmt.Errorf("%s.type: %q is not a known source type (gen, kafka, mysql)", key, s.Type)
}

// buildSources makes the configured sources and the specs of the tables
// they need that the config does not declare itself.
func buildSources(cfg *fileConfig) ([]source.Source, []table.Spec, error) {
	return buildSourcesWith(cfg, nil, nil)
}

// buildSourcesWith is buildSources with the sources' logger and metrics
// registry (nil: the defaults).
func buildSourcesWith(cfg *fileConfig, log *slog.Logger, reg prometheus.Registerer) ([]source.Source, []table.Spec, error) {
	declared := map[string]bool{}
	for _, s := range cfg.Tables {
		declared[s.Name] = true
	}
	var srcs []source.Source
	var specs []table.Spec
	add := func(s table.Spec) {
		if !declared[s.Name] {
			declared[s.Name] = true
			specs = append(specs, s)
		}
	}
	for _, sc := range cfg.Sources {
		switch sc.Type {
		case "gen":
			g, err := gen.New(*sc.Gen)
			if err != nil {
				return nil, nil, err
			}
			for _, s := range g.Specs() {
				add(s)
			}
			srcs = append(srcs, g)
		case "kafka":
			k, err := kafka.New(*sc.Kafka, kafka.Options{Logger: log, Registerer: reg})
			if err != nil {
				return nil, nil, err
			}
			ks, err := k.Specs(cfg.Tables)
			if err != nil {
				return nil, nil, err
			}
			for _, s := range ks {
				// A declared table comes back with the metadata columns
				// added; Ensure applies it after the declared spec.
				if declared[s.Name] {
					specs = append(specs, s)
				}
				add(s)
			}
			srcs = append(srcs, k)
		case "mysql":
			m, err := mysql.New(*sc.MySQL, mysql.Options{Logger: log, Registerer: reg})
			if err != nil {
				return nil, nil, err
			}
			for _, s := range m.Specs() {
				add(s)
			}
			srcs = append(srcs, m)
		}
	}
	return srcs, specs, nil
}

// ensureTables creates or evolves every table the config and sources need.
func ensureTables(ctx context.Context, cat icecat.Catalog, cfg *fileConfig, extra []table.Spec) error {
	for _, s := range append(append([]table.Spec{}, cfg.Tables...), extra...) {
		if _, err := table.Ensure(ctx, cat, s); err != nil {
			return fmt.Errorf("table %s: %w", s.Name, err)
		}
	}
	return nil
}

func registerIngest(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	cfgPath := configFlag(fs)
	metricsAddr := fs.String("metrics-address", "", "listen address for /metrics and /healthz (overrides metrics-address in the config; 'off' disables)")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Errorf("unexpected arguments %q", args)}
		}
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		if len(cfg.Sources) == 0 {
			return usageError{fmt.Errorf("config %s: sources: none configured", *cfgPath)}
		}
		setMemoryLimit(cfg.Writer, e.log)
		cat, err := openCatalog(ctx, cfg)
		if err != nil {
			return err
		}
		reg := newRegistry()
		srcs, specs, err := buildSourcesWith(cfg, e.log, reg)
		if err != nil {
			return usageError{err}
		}
		defer closeSources(srcs, e.log)
		if err := ensureTables(ctx, cat, cfg, specs); err != nil {
			return err
		}
		addr := "127.0.0.1:9464"
		if cfg.Metrics != nil {
			addr = *cfg.Metrics
		}
		if *metricsAddr != "" {
			addr = *metricsAddr
		}
		if addr != "" && addr != "off" {
			stop, err := serveMetrics(addr, reg, e.log)
			if err != nil {
				return err
			}
			defer stop()
		}
		hooks, err := faultHooks(os.Getenv("FLOE_CRASH"), e.log)
		if err != nil {
			return usageError{err}
		}
		e.log.Info("ingest starting", "sources", len(srcs), "warehouse", cfg.Catalog.Warehouse,
			"commit_interval", cfg.Writer.CommitInterval, "writer_id", cfg.Writer.WriterID)
		err = source.Supervise(ctx, cat, srcs, source.SuperviseOptions{
			Writer:        cfg.Writer,
			WriterOptions: writer.Options{Logger: e.log, Metrics: writer.NewMetrics(reg), Hooks: hooks, OnCommit: commitObservers(srcs)},
			Logger:        e.log,
			Registerer:    reg,
		})
		e.log.Info("ingest stopped", "err", err)
		return err
	}
}

// commitObservers chains the sources that observe commits (Kafka commits
// its group offsets after the tables') into writer.Options.OnCommit.
func commitObservers(srcs []source.Source) func(writer.CommitInfo) {
	var obs []kafka.CommitObserver
	for _, s := range srcs {
		if o, ok := s.(kafka.CommitObserver); ok {
			obs = append(obs, o)
		}
	}
	if len(obs) == 0 {
		return nil
	}
	return func(ci writer.CommitInfo) {
		for _, o := range obs {
			o.OnCommit(ci)
		}
	}
}

// closeSources closes the sources that hold connections (a Kafka source
// leaves its group), after Supervise committed everything.
func closeSources(srcs []source.Source, log *slog.Logger) {
	for _, s := range srcs {
		if c, ok := s.(interface{ Close() error }); ok {
			if err := c.Close(); err != nil {
				log.Warn("close source", "source", s.ID(), "err", err)
			}
		}
	}
}

// setMemoryLimit sets the writer's soft Go memory limit
// (writer.Config.MemoryLimit) when GOMEMLIMIT is unset, so the garbage
// collector works before RSS grows past the budget and the encoder's needs.
func setMemoryLimit(cfg writer.Config, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	cfg.ApplyDefaults()
	limit := cfg.MemoryLimit()
	debug.SetMemoryLimit(limit)
	log.Debug("memory limit set", "bytes", limit)
}
