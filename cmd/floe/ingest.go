package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/ingest"
	"github.com/floe-lake/floe/service"
)

// newPipeline builds the ingest pipeline of cfg: its sources and the specs
// of the tables they need. log and reg may be nil (the defaults).
func newPipeline(cfg *fileConfig, log *slog.Logger, reg prometheus.Registerer) (*ingest.Pipeline, error) {
	ic := ingest.Config{Tables: cfg.Tables, Writer: cfg.Writer, Sources: cfg.Sources}
	return ingest.New(ic, ingest.Options{Logger: log, Registerer: reg})
}

func registerIngest(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	cfgPath := configFlag(fs)
	metricsAddr := fs.String("metrics-address", "", "listen address for /metrics and /healthz (overrides metrics-address in the config; 'off' disables)")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Errorf("unexpected arguments %q", args)}
		}
		cfg, err := loadConfig(*cfgPath, ingestSections)
		if err != nil {
			return err
		}
		hooks, err := faultHooks(os.Getenv("FLOE_CRASH"), e.log)
		if err != nil {
			return usageError{err}
		}
		// The sources are built (and their settings checked against the
		// tables) before the catalog is opened: a mistake creates nothing.
		reg := newRegistry()
		p, err := newPipeline(cfg, e.log, reg)
		if err != nil {
			return usageError{err}
		}
		defer closeSources(p, e.log)
		service.GovernMemory(ctx, cfg.Writer, e.log)
		start := service.NewCatalogStart(service.CatalogOptions{Config: cfg.Catalog, Prepare: p.EnsureTables, Logger: e.log, Registerer: reg})
		stop, err := startMetrics(*metricsAddr, configuredMetrics(cfg), reg, e.log, start.Ready)
		if err != nil {
			return err
		}
		defer stop()
		cat, err := start.Open(ctx)
		if cat == nil {
			return err
		}
		start.ReadyThen(p.Ready)
		e.log.Info("ingest starting", "sources", len(p.Sources()), "warehouse", cfg.Catalog.Warehouse,
			"commit_interval", cfg.Writer.CommitInterval, "writer_id", cfg.Writer.WriterID)
		err = p.Run(ctx, cat, ingest.RunOptions{Hooks: hooks})
		e.log.Info("ingest stopped", "err", err)
		return err
	}
}
