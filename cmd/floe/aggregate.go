package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/aggregate"
	"github.com/floe-lake/floe/internal/daemon"
	"github.com/floe-lake/floe/internal/units"
)

// defaultAggregateMetricsAddress is where floe aggregate -follow serves
// /metrics and /healthz unless -metrics-address says otherwise: next to
// ingest's 9464 and compact's 9465.
const defaultAggregateMetricsAddress = "127.0.0.1:9466"

// aggregationRun is how runAggregationWith runs a spec.
type aggregationRun struct {
	// mode: follow (stream until interrupted), once (stream up to the
	// source's current snapshot, then return) or backfill.
	mode string
	// backfill selects the windows and source snapshot of a backfill.
	backfill aggregate.BackfillOptions
	// options tune the aggregator; Logger defaults to the env's.
	options aggregate.Options
	// registerer receives the daemon's metrics when following; default:
	// a private registry.
	registerer prometheus.Registerer
}

// registerAggregate is 'floe aggregate': one spec, streaming (-follow, a
// daemon; -once) or batch (-backfill).
func registerAggregate(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	cfgPath := configFlag(fs)
	specPath := fs.String("spec", "", "aggregation spec file: YAML, or a SQL SELECT in a file ending in .sql (with -output); see examples/aggregate")
	sqlText := fs.String("sql", "", "the aggregation as a SQL SELECT given inline, instead of -spec (with -output)")
	follow := fs.Bool("follow", false, "stream: aggregate the source's changes as they are committed, until interrupted")
	once := fs.Bool("once", false, "stream up to the source's current snapshot, then exit")
	backfill := fs.Bool("backfill", false, "batch: recompute the spec over a source snapshot and replace the output's rows")
	from := fs.String("from", "", "with -backfill: rebuild windows starting at or after this time (RFC 3339 or YYYY-MM-DD), widened to the output's partition")
	to := fs.String("to", "", "with -backfill: rebuild windows starting before this time (RFC 3339 or YYYY-MM-DD), widened to the output's partition")
	snapshot := fs.Int64("snapshot", 0, "with -backfill: the source snapshot to read (default: the current one; for -from/-to, the one the output's cursor holds)")
	output := fs.String("output", "", "write to this table (namespace.table) instead of the spec's output; required for a SQL spec")
	poll := fs.Duration("poll-interval", time.Second, "how often a caught-up stream polls the source")
	maxDelay := fs.Duration("max-batch-delay", 2*time.Second, "streaming: commit a batch at most this long after its first change")
	maxRows := fs.Int64("max-batch-rows", 1_000_000, "streaming: commit a batch once it holds this many source rows")
	concurrency := fs.Int("concurrency", 0, "source files read (and backfill workers) in parallel (default: min(GOMAXPROCS, 8))")
	metricsAddr := fs.String("metrics-address", "", "listen address for /metrics and /healthz; 'off' disables (default: "+defaultAggregateMetricsAddress+
		" with -follow, skipped with a warning when another process holds it; none for -once and -backfill)")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Errorf("unexpected arguments %q", args)}
		}
		switch {
		case *specPath == "" && *sqlText == "":
			return usageError{errors.New("--spec: required (or -sql SELECT with -output)")}
		case *specPath != "" && *sqlText != "":
			return usageError{errors.New("-spec and -sql: give one")}
		}
		run := aggregationRun{options: aggregate.Options{
			PollInterval: *poll, MaxBatchDelay: *maxDelay, MaxBatchRows: *maxRows, Concurrency: *concurrency,
		}}
		n := 0
		for _, m := range []struct {
			set  bool
			name string
		}{{*follow, "follow"}, {*once, "once"}, {*backfill, "backfill"}} {
			if m.set {
				run.mode = m.name
				n++
			}
		}
		if n != 1 {
			return usageError{errors.New("want exactly one of --follow, --once and --backfill")}
		}
		if run.mode != "backfill" && (*from != "" || *to != "" || *snapshot != 0) {
			return usageError{errors.New("--from, --to and --snapshot go with --backfill")}
		}
		var err error
		if run.backfill.From, err = units.ParseTimeFlag("--from", *from); err != nil {
			return usageError{err}
		}
		if run.backfill.To, err = units.ParseTimeFlag("--to", *to); err != nil {
			return usageError{err}
		}
		run.backfill.SnapshotID = *snapshot
		var spec aggregate.Spec
		switch {
		case *sqlText != "" && *output == "":
			return usageError{errors.New("-sql: the output table is not in the SELECT: give it with -output namespace.table")}
		case *sqlText != "":
			spec, err = aggregate.FromSQL(*sqlText, "", *output)
		case strings.EqualFold(filepath.Ext(*specPath), ".sql"):
			spec, err = aggregate.LoadSpecFile(*specPath, *output)
		default:
			spec, err = aggregate.LoadSpec(*specPath)
		}
		if err != nil {
			return usageError{err}
		}
		if *output != "" {
			spec.Output = *output
			if err := spec.Validate(); err != nil {
				return usageError{err}
			}
		}
		cat, before, after, err := openCatalogCrashing(ctx, *cfgPath, spec.Output, e.log)
		if err != nil {
			return err
		}
		run.options.Hooks.BeforeCommit, run.options.Hooks.AfterCommit = before, after
		reg := newRegistry()
		run.registerer = reg
		stop, err := serveAggregateMetrics(*metricsAddr, run.mode, reg, e)
		if err != nil {
			return err
		}
		defer stop()
		return runAggregationWith(ctx, e, cat, spec, run)
	}
}

// serveAggregateMetrics serves /metrics and /healthz on addr; an empty
// addr is the default: defaultAggregateMetricsAddress when following, none
// otherwise. Several specs followed on one host are several processes: when
// the default address is taken, this one serves no metrics and says so,
// while an address given explicitly must be free.
func serveAggregateMetrics(addr, mode string, reg *prometheus.Registry, e *env) (stop func(), err error) {
	explicit := addr != ""
	if !explicit && mode == "follow" {
		addr = defaultAggregateMetricsAddress
	}
	if addr == "" || addr == "off" {
		return func() {}, nil
	}
	stop, err = serveMetrics(addr, reg, e.log, nil)
	if err != nil && !explicit && errors.Is(err, syscall.EADDRINUSE) {
		e.log.Warn("the default metrics address is in use (another floe aggregate -follow?); serving no metrics: give each process its own -metrics-address",
			"address", addr, "err", err)
		return func() {}, nil
	}
	return stop, err
}

// runAggregation runs one aggregation spec against cat: mode "follow"
// streams the source's changes into the spec's output until ctx is
// cancelled, "once" streams up to the source's current snapshot and
// returns, "backfill" recomputes the whole output from the source's
// current snapshot. It prints a summary line to e.stdout (once and
// backfill) or logs a line per commit (follow).
//
// Following is a daemon (internal/daemon, aggregate.FollowJob): errors
// that may pass are retried with a backoff; an error of the spec or its
// tables halts the spec — logged at ERROR, floe_daemon_job_halted{name=
// "aggregate/<spec>"} = 1 — and, since a process runs one spec, the
// process then stays up, serving its metrics and /healthz, until it is
// stopped; it then exits with the halt's error.
func runAggregation(ctx context.Context, e *env, cat icecat.Catalog, spec aggregate.Spec, mode string) error {
	return runAggregationWith(ctx, e, cat, spec, aggregationRun{mode: mode})
}

func runAggregationWith(ctx context.Context, e *env, cat icecat.Catalog, spec aggregate.Spec, run aggregationRun) error {
	switch run.mode {
	case "follow", "once", "backfill":
	default:
		return usageError{fmt.Errorf("aggregation mode %q: want follow, once or backfill", run.mode)}
	}
	opts := run.options
	if opts.Logger == nil {
		opts.Logger = e.log
	}
	log := opts.Logger.With("aggregate", spec.Name)
	if run.mode == "follow" {
		next := opts.OnCommit
		opts.OnCommit = func(ci aggregate.CommitInfo) {
			log.Info("committed", "kind", ci.Kind, "cursor", ci.Cursor, "changes", ci.Changes,
				"source_rows", ci.SourceRows, "groups", ci.Groups, "partitions", ci.Partitions,
				"snapshot", ci.SnapshotID, "duration", ci.Duration.Round(time.Millisecond))
			if next != nil {
				next(ci)
			}
		}
	}
	if run.mode == "follow" {
		log.Info("following", "source", spec.Source, "output", spec.Output)
		r := daemon.New(daemon.Options{Logger: opts.Logger, Registerer: run.registerer, Clock: opts.Clock})
		job := aggregate.FollowJob(cat, spec, opts)
		err := r.Run(ctx, job)
		if herr := r.Halted()[job.Name]; err == nil && herr != nil {
			err = fmt.Errorf("aggregation %s halted: %w", spec.Name, herr)
		}
		log.Info("stopped", "err", err)
		return err
	}
	a, err := aggregate.New(ctx, cat, spec, opts)
	if err != nil {
		return err
	}
	start := time.Now()
	var res aggregate.Result
	switch run.mode {
	case "once":
		res, err = a.CatchUp(ctx)
	default:
		res, err = a.Backfill(ctx, run.backfill)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s (%s): %s → %s at source snapshot %d: %d source rows, %d groups written in %d commits, %s\n",
		spec.Name, run.mode, spec.Source, spec.Output, res.Cursor, res.SourceRows, res.Groups, res.Commits,
		time.Since(start).Round(time.Millisecond))
	return nil
}
