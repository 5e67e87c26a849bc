package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/progress"
	"github.com/floe-lake/floe/internal/units"
	"github.com/floe-lake/floe/service"
)

// registerCompact is 'floe compact': the compaction daemon, or one pass
// with -once. The daemon runs each table as a job (compaction.Run): a
// table that needs a person halts alone — logged at ERROR,
// floe_daemon_job_halted{name="compaction/<table>"} = 1 — while the others
// go on and the process stays up.
func registerCompact(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	cfgPath := configFlag(fs)
	once := fs.Bool("once", false, "run one pass over every table, printing a line per file group, and exit")
	dryRun := fs.Bool("dry-run", false, "plan only: print the file groups a pass would rewrite, change nothing")
	tables := fs.String("tables", "", "comma-separated namespace.table list (overrides compaction.tables)")
	concurrency := fs.Int("concurrency", 0, "tables maintained at the same time (overrides compaction.concurrency)")
	metricsAddr := fs.String("metrics-address", "", "listen address for /metrics and /healthz (overrides compaction.metrics-address, default 127.0.0.1:9465; 'off' disables; -once and -dry-run serve none unless given)")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Errorf("unexpected arguments %q", args)}
		}
		cfg, err := loadConfig(*cfgPath, compactSections)
		if err != nil {
			return err
		}
		cc := cfg.Compaction
		if *tables != "" {
			cc.Tables = strings.Split(*tables, ",")
			if err := cc.Validate(); err != nil {
				return usageError{fmt.Errorf("-tables: %w", err)}
			}
		}
		if *concurrency != 0 {
			cc.Concurrency = *concurrency
			if err := cc.Validate(); err != nil {
				return usageError{fmt.Errorf("-concurrency: %w", err)}
			}
		}
		hooks, err := compactFaultHooks(os.Getenv("FLOE_CRASH"), e.log)
		if err != nil {
			return usageError{err}
		}
		reg := newRegistry()
		addr := cc.MetricsAddress
		if *once || *dryRun {
			addr = "off"
		}
		start := service.NewCatalogStart(service.CatalogOptions{Config: cfg.Catalog, Logger: e.log, Registerer: reg, Once: *once || *dryRun})
		stop, err := startMetrics(*metricsAddr, addr, reg, e.log, start.Ready)
		if err != nil {
			return err
		}
		defer stop()
		cat, err := start.Open(ctx)
		if cat == nil {
			return err
		}
		var outMu sync.Mutex
		opts := compaction.Options{Logger: e.log, Registerer: reg, Hooks: hooks}
		meter := progress.NewMeter(progress.MeterOptions{Label: "compact", Terminal: progress.IsTerminal(e.stderr), W: e.stderr, Log: e.log})
		if *once {
			opts.OnGroup = func(g compaction.GroupReport) {
				outMu.Lock()
				defer outMu.Unlock()
				_, _ = fmt.Fprintln(e.stdout, groupLine(g))
				meter.Add(g.Records, g.InputBytes)
			}
		}
		c, err := compaction.New(cat, cc, opts)
		if err != nil {
			return usageError{fmt.Errorf("config %s: %w", *cfgPath, err)}
		}
		switch {
		case *dryRun:
			return compactDryRun(ctx, e.stdout, c)
		case *once:
			rep, err := c.RunOnce(ctx)
			meter.Done()
			for _, t := range rep.Tables {
				_, _ = fmt.Fprintln(e.stdout, tableLine(t))
			}
			return err
		}
		e.log.Info("compaction daemon starting", "interval", cc.Interval, "tables", len(cc.Tables), "concurrency", cc.Concurrency)
		return c.Run(ctx)
	}
}

// groupLine is the progress line of one file group.
func groupLine(g compaction.GroupReport) string {
	part := g.Partition
	if part == "" {
		part = "(unpartitioned)"
	}
	head := fmt.Sprintf("%s %s group %d/%d: %s", g.Table, part, g.Index, g.Of, g.Result)
	if g.Result != compaction.ResultCommitted {
		return fmt.Sprintf("%s (%s): %d files, %s", head, g.Reason, g.InputFiles, units.Bytes(g.InputBytes))
	}
	return fmt.Sprintf("%s: %s, %s → %s, %s; %d rows in %s", head,
		plural(g.InputFiles, "file"), units.Bytes(g.InputBytes), plural(g.OutputFiles, "file"), units.Bytes(g.OutputBytes),
		g.Records, g.Duration.Round(time.Millisecond))
}

// tableLine summarises a table's pass.
func tableLine(t compaction.TableReport) string {
	return fmt.Sprintf("%s: %d of %d groups committed (%d dropped, %d failed), %d files → %d (%s); at most %s per partition; %d manifests merged, %d snapshots expired, %d orphan files removed; %s",
		t.Table, t.Committed, t.Groups, t.Dropped, t.Failed, t.FilesRewritten, t.FilesWritten, units.Bytes(t.BytesRewritten),
		plural(t.MaxFilesPerPartition, "file"), t.ManifestsRewritten, t.SnapshotsExpired, t.OrphansRemoved, t.Duration.Round(time.Millisecond))
}

func compactDryRun(ctx context.Context, w io.Writer, c *compaction.Compactor) error {
	names, err := c.Tables(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		p, err := c.PlanTable(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		_, _ = fmt.Fprintf(w, "%s: %d groups from %d candidate files; at most %d files per partition\n",
			name, len(p.Groups), p.Candidates, p.MaxFilesPerPartition())
		for i, g := range p.Groups {
			_, _ = fmt.Fprintf(w, "  group %d: %d files, %s, %d rows (%s)\n", i+1, len(g.Files), units.Bytes(g.SizeBytes), g.Records, g.Reason)
		}
	}
	return errors.Join(errs...)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// compactFaultHooks builds compaction hooks that SIGKILL this process at
// named points with a probability, for crash tests, from the same
// FLOE_CRASH variable ingest reads:
//
//	FLOE_CRASH=after-rewrite:0.5,before-commit:0.3,after-commit:0.2
//
// Points: after-rewrite (a group's files written, nothing committed),
// before-commit, after-commit. An empty spec gives no hooks.
func compactFaultHooks(spec string, log *slog.Logger) (compaction.Hooks, error) {
	kills, err := crashPoints(spec, []string{"after-rewrite", "before-commit", "after-commit"}, log)
	if err != nil {
		return compaction.Hooks{}, err
	}
	hook := func(point string) func(string) error {
		kill := kills[point]
		if kill == nil {
			return nil
		}
		return func(tbl string) error { kill(tbl); return nil }
	}
	return compaction.Hooks{AfterRewrite: hook("after-rewrite"), BeforeCommit: hook("before-commit"), AfterCommit: hook("after-commit")}, nil
}
