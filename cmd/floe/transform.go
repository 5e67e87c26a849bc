package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"syscall"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/internal/daemon"
	"github.com/floe-lake/floe/transform"
)

// defaultTransformMetricsAddress is where floe transform -follow serves
// /metrics and /healthz unless -metrics-address says otherwise: next to
// aggregate's 9466.
const defaultTransformMetricsAddress = "127.0.0.1:9467"

// registerTransform is 'floe transform': one spec (a SELECT with
// dimension joins), streaming (-follow, a daemon; -once) or batch
// (-backfill). Wiring only: the work is package transform's.
func registerTransform(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	cfgPath := configFlag(fs)
	specPath := fs.String("spec", "", "transform spec: YAML (sql, output, partition, dedup) or a .sql file holding the SELECT; required")
	sqlText := fs.String("sql", "", "the SELECT given inline, instead of -spec (with -output)")
	output := fs.String("output", "", "write to this table (namespace.table) instead of the spec's output; required for a .sql spec")
	follow := fs.Bool("follow", false, "stream: transform the source's snapshots as they are committed, until interrupted")
	once := fs.Bool("once", false, "stream up to the source's current snapshot, then exit")
	backfill := fs.Bool("backfill", false, "batch: recompute the output from the source's history and replace its rows")
	snapshot := fs.Int64("snapshot", 0, "with -backfill: the last source snapshot read (default: the current one)")
	poll := fs.Duration("poll-interval", time.Second, "how often a caught-up stream polls the source")
	maxDelay := fs.Duration("max-batch-delay", 2*time.Second, "streaming: commit a batch at most this long after its first snapshot")
	maxRows := fs.Int64("max-batch-rows", 1_000_000, "streaming: commit a batch once it holds this many source rows")
	concurrency := fs.Int("concurrency", 0, "source files read (and backfill batches transformed) in parallel (default: min(GOMAXPROCS, 8))")
	metricsAddr := fs.String("metrics-address", "", "listen address for /metrics and /healthz with -follow; 'off' disables (default: "+defaultTransformMetricsAddress+")")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Errorf("unexpected arguments %q", args)}
		}
		if (*specPath == "") == (*sqlText == "") {
			return usageError{errors.New("want one of -spec FILE and -sql SELECT")}
		}
		if n := btoi(*follow) + btoi(*once) + btoi(*backfill); n != 1 {
			return usageError{errors.New("want exactly one of -follow, -once and -backfill")}
		}
		if *snapshot != 0 && !*backfill {
			return usageError{errors.New("-snapshot goes with -backfill")}
		}
		spec, err := transform.Spec{SQL: *sqlText}, error(nil)
		if *specPath != "" {
			if spec, err = transform.LoadSpec(*specPath); err != nil {
				return usageError{err}
			}
		}
		if *output != "" {
			spec.Output = *output
		}
		if err := spec.Validate(); err != nil {
			return usageError{err}
		}
		cat, before, after, err := openCatalogCrashing(ctx, *cfgPath, spec.Output, e.log)
		if err != nil {
			return err
		}
		opts := transform.Options{PollInterval: *poll, MaxBatchDelay: *maxDelay, MaxBatchRows: *maxRows, Concurrency: *concurrency, Logger: e.log}
		opts.Hooks.BeforeCommit, opts.Hooks.AfterCommit = before, after
		if *follow {
			return followTransform(ctx, e, cat, spec, opts, *metricsAddr)
		}
		t, err := transform.New(ctx, cat, spec, opts)
		if err != nil {
			return err
		}
		defer t.Close()
		start := time.Now()
		mode, res := "once", transform.Result{}
		if *backfill {
			mode = "backfill"
			res, err = t.Backfill(ctx, transform.BackfillOptions{SnapshotID: *snapshot})
		} else {
			res, err = t.CatchUp(ctx)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s (%s): %s → %s at source snapshot %d: %d source rows, %d rows written in %d commits, %s\n",
			spec.Output, mode, t.Source(), t.Output(), res.Cursor, res.SourceRows, res.Rows, res.Commits,
			time.Since(start).Round(time.Millisecond))
		return nil
	}
}

// followTransform runs transform.FollowJob on a daemon runner, serving
// metrics, until ctx ends or the job halts.
func followTransform(ctx context.Context, e *env, cat icecat.Catalog, spec transform.Spec, opts transform.Options, addr string) error {
	reg := newRegistry()
	explicit := addr != ""
	if !explicit {
		addr = defaultTransformMetricsAddress
	}
	if addr != "off" {
		stop, err := serveMetrics(addr, reg, e.log, nil)
		switch {
		case err != nil && !explicit && errors.Is(err, syscall.EADDRINUSE):
			e.log.Warn("the default metrics address is in use; serving no metrics: give each process its own -metrics-address", "address", addr, "err", err)
		case err != nil:
			return err
		default:
			defer stop()
		}
	}
	log := e.log.With("transform", spec.Output)
	opts.OnCommit = func(ci transform.CommitInfo) {
		log.Info("committed", "kind", ci.Kind, "cursor", ci.Cursor, "changes", ci.Changes, "source_rows", ci.SourceRows,
			"rows", ci.Rows, "snapshot", ci.SnapshotID, "duration", ci.Duration.Round(time.Millisecond))
	}
	log.Info("following", "output", spec.Output)
	r := daemon.New(daemon.Options{Logger: e.log, Registerer: reg})
	job := transform.FollowJob(cat, spec, opts)
	err := r.Run(ctx, job)
	if herr := r.Halted()[job.Name]; err == nil && herr != nil {
		err = fmt.Errorf("transform %s halted: %w", spec.Output, herr)
	}
	log.Info("stopped", "err", err)
	return err
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
