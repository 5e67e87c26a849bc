package compaction

import (
	"context"
	"errors"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/internal/daemon"
)

// Backoff of a table whose pass failed with an error worth retrying: from
// min(interval, maxFirstRetry), doubling up to max(interval, maxRetry).
const (
	maxFirstRetry = 30 * time.Second
	maxRetry      = 10 * time.Minute
)

// discoveryJob is the name of the daemon job that lists the catalog's
// tables when compaction.tables is empty.
const discoveryJob = "compaction/tables"

// TableJob is the name of the daemon job that compacts table: the name
// label of floe_daemon_job_halted and floe_daemon_restarts_total.
func TableJob(table string) string { return "compaction/" + table }

// Run maintains every table until ctx is done, then returns nil. Each
// table is a job of its own on an internal/daemon runner: a pass over it
// (manifests, rewrite, expiry, orphans when due), then another every
// Interval; at most Concurrency tables are in a pass at a time. With
// compaction.tables empty, a further job lists the catalog every Interval
// and starts a job for each new table; a listed table that disappears
// ends its job.
//
// A failed step is logged and counted in floe_compaction_errors_total by
// class, and the table's remaining steps still run. A pass that failed is
// then classified:
//
//   - config (an invalid table property) and corrupt (metadata that does
//     not parse, files that break an invariant) need a person: the table's
//     job halts — logged at ERROR, floe_daemon_job_halted{name=
//     "compaction/<table>"} set to 1 — and the other tables go on, until
//     the process restarts;
//   - every other class (conflicts past commit-timeout, timeouts, an
//     unreachable catalog or store, a missing table) is retried after a
//     jittered backoff from min(Interval, 30s) up to max(Interval, 10m).
//
// Run itself never fails on a table's error, so the daemon never
// crash-loops.
func (c *Compactor) Run(ctx context.Context) error {
	r := daemon.New(daemon.Options{
		Logger: c.log, Registerer: c.opts.Registerer, Clock: daemon.ClockFunc(c.opts.Now),
		MinBackoff: min(c.cfg.Interval, maxFirstRetry), MaxBackoff: max(c.cfg.Interval, maxRetry),
		Board: c.opts.Board,
	})
	sem := make(chan struct{}, c.cfg.Concurrency)
	if len(c.cfg.Tables) > 0 {
		jobs := make([]daemon.Job, len(c.cfg.Tables))
		for i, name := range c.cfg.Tables {
			jobs[i] = c.tableJob(name, false, sem)
		}
		return r.Run(ctx, jobs...)
	}
	return r.Run(ctx, daemon.Job{Name: discoveryJob, Run: func(ctx context.Context) error {
		for {
			names, err := c.tableNames(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				c.m.errors.WithLabelValues("", classify(err)).Inc()
				return err
			}
			for _, name := range names {
				// A table whose job runs, waits or halted keeps it.
				if err := r.Go(c.tableJob(name, true, sem)); err != nil && !errors.Is(err, daemon.ErrJobExists) {
					return nil // the runner is stopping
				}
			}
			if !c.sleep(ctx, c.cfg.Interval) {
				return nil
			}
		}
	}})
}

// tableJob compacts one table every Interval. A table that was discovered
// in the catalog and is gone ends the job (discovery restarts it should
// the table come back); a configured one is retried.
func (c *Compactor) tableJob(name string, discovered bool, sem chan struct{}) daemon.Job {
	return daemon.Job{Name: TableJob(name), Run: func(ctx context.Context) error {
		for {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			rep, err := c.table(ctx, name, false)
			<-sem
			if ctx.Err() != nil {
				return nil
			}
			switch {
			case err != nil && discovered && errors.Is(err, icecat.ErrNoSuchTable):
				c.log.Info("table gone from the catalog; no longer compacting it", "table", name)
				return nil
			case err != nil && halts(err):
				return daemon.Halt(err)
			case err != nil:
				return err
			}
			c.opts.Board.Progress(TableJob(name))
			if rep.Committed+rep.ManifestsRewritten+rep.SnapshotsExpired+rep.OrphansRemoved > 0 {
				c.log.Info("table compacted", "table", name, "groups_committed", rep.Committed,
					"files_rewritten", rep.FilesRewritten, "files_written", rep.FilesWritten,
					"manifests_rewritten", rep.ManifestsRewritten, "snapshots_expired", rep.SnapshotsExpired,
					"orphans_removed", rep.OrphansRemoved, "duration", rep.Duration.Round(time.Millisecond))
			} else {
				c.log.Debug("table needs no compaction", "table", name, "duration", rep.Duration.Round(time.Millisecond))
			}
			if !c.sleep(ctx, c.cfg.Interval) {
				return nil
			}
		}
	}}
}

// sleep waits d; false when ctx ended first.
func (c *Compactor) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
