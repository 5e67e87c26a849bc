package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/floe-lake/floe/internal/demo"
)

// registerDemo is 'floe demo' (make demo): the demo's config written to
// -dir, loaded and wired like any config, then the demo's steps.
func registerDemo(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	dir := fs.String("dir", "demo-lake", "directory for the demo's catalog and warehouse (removed and recreated)")
	duration := fs.Duration("duration", 30*time.Second, "how long the generator runs")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Errorf("unexpected arguments %q", args)}
		}
		cfgPath, err := demo.WriteConfig(*dir)
		if err != nil {
			return err
		}
		cfg, err := loadConfig(cfgPath, allSections)
		if err != nil {
			return err
		}
		cat, err := openCatalog(ctx, cfg)
		if err != nil {
			return err
		}
		p, err := newPipeline(cfg, e.log, nil)
		if err != nil {
			return err
		}
		defer p.Close() //nolint:errcheck // the generator holds nothing
		if err := p.EnsureTables(ctx, cat); err != nil {
			return err
		}
		return demo.Run(ctx, cat, p, demo.Config{
			Dir: *dir, ConfigPath: cfgPath, Catalog: cfg.Catalog, Writer: cfg.Writer, Compaction: cfg.Compaction,
			Duration: *duration, Out: e.stdout, Logger: e.log,
		})
	}
}
