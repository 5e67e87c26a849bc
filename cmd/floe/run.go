package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/floe-lake/floe/internal/config"
	"github.com/floe-lake/floe/service"
)

// registerRun is 'floe run': every job of the config in one process
// (package service) — its sources, compaction, aggregation specs — with
// /metrics, /healthz, /readyz, /status and the status page on
// metrics-address.
func registerRun(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	cfgPath := configFlag(fs)
	metricsAddr := fs.String("metrics-address", "", "listen address for /metrics, /healthz, /readyz, /status and the status page (overrides metrics-address in the config, default 127.0.0.1:9464; 'off' disables)")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Errorf("unexpected arguments %q", args)}
		}
		cfg, err := loadConfig(*cfgPath, config.Run)
		if err != nil {
			return err
		}
		hooks, err := faultHooks(os.Getenv("FLOE_CRASH"), e.log)
		if err != nil {
			return usageError{err}
		}
		reg := newRegistry()
		svc, err := service.New(cfg, service.Options{Logger: e.log, Registry: reg, Hooks: hooks})
		if err != nil {
			return usageError{err}
		}
		defer closeSources(svc, e.log)
		service.GovernMemory(ctx, cfg.Writer, e.log)
		stop, err := startMetrics(*metricsAddr, configuredMetrics(cfg), reg, e.log, svc.Ready, svc.Routes)
		if err != nil {
			return err
		}
		defer stop()
		return svc.Run(ctx)
	}
}
