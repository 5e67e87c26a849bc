package compaction

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/table"
)

// errPositionsAtRisk stops an expiry that would drop the snapshot holding
// the table's positions.
var errPositionsAtRisk = errors.New("expiring these snapshots would lose the table's source positions")

// rewriteManifests merges the current snapshot's manifests when commits
// have left many, or many small ones (one per ingest commit).
//
// iceberg-go's RewriteManifests writes its replace snapshot without the
// caller's summary properties, so that snapshot carries no Floe positions:
// table.CurrentPositions walks past it to its parent, and expire keeps the
// ancestry down to the newest snapshot that carries them.
func (r *tableRun) rewriteManifests(ctx context.Context) error {
	c := r.c
	tbl, err := r.committer.Load(ctx)
	if err != nil {
		return err
	}
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		return nil
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return fmt.Errorf("open table storage: %w", err)
	}
	mans, err := snap.Manifests(fsys)
	if err != nil {
		return fmt.Errorf("read manifest list of snapshot %d: %w", snap.SnapshotID, err)
	}
	var total int64
	for _, m := range mans {
		total += m.Length()
	}
	n := len(mans)
	many := n > c.cfg.RewriteManifestsMaxManifests
	small := n >= minManifestsForAverage && total/int64(n) < int64(c.cfg.RewriteManifestsMinAverageBytes)
	if !many && !small {
		return nil
	}
	var result *icetable.RewriteManifestsResult
	_, err = r.commitInWindow(ctx, table.Commit{
		Operation: OperationCompact,
		Apply: func(ctx context.Context, txn *icetable.Transaction, _ iceberg.Properties) error {
			rr, err := txn.RewriteManifests(ctx)
			if err != nil {
				return fmt.Errorf("stage manifest rewrite: %w", err)
			}
			result = rr
			return nil
		},
	})
	if err != nil {
		return err
	}
	if result != nil && !result.IsNoOp() {
		r.rep.ManifestsRewritten = len(result.RewrittenManifests)
		c.m.manifests.WithLabelValues(r.name).Add(float64(len(result.RewrittenManifests)))
		c.log.Info("manifests rewritten", "table", r.name, "manifests_before", n,
			"rewritten", len(result.RewrittenManifests), "added", len(result.AddedManifests))
	}
	return nil
}

// expire expires snapshots by the table's history.expire.* properties and
// lets iceberg-go delete the files only they referenced. It never expires
// the newest snapshot that carries the table's positions, nor any snapshot
// between it and the head: the retained count is raised to reach it, and
// the staged result is checked before it is committed.
func (r *tableRun) expire(ctx context.Context) error {
	c := r.c
	tbl, err := r.committer.Load(ctx)
	if err != nil {
		return err
	}
	if !gcEnabled(tbl.Properties()) || tbl.CurrentSnapshot() == nil {
		return nil
	}
	if _, _, ok := expiryPlan(tbl, c.opts.Now()); !ok {
		return nil
	}
	expired := 0
	_, err = r.commitInWindow(ctx, table.Commit{
		Operation: OperationCompact,
		Apply: func(ctx context.Context, txn *icetable.Transaction, _ iceberg.Properties) error {
			expired = 0
			before, err := txn.StagedTable()
			if err != nil {
				return fmt.Errorf("read the fresh table: %w", err)
			}
			olderThan, keep, ok := expiryPlan(before.Table, c.opts.Now())
			if !ok {
				return nil
			}
			posBefore, err := table.CurrentPositions(before.Table)
			if err != nil {
				return err
			}
			if err := txn.ExpireSnapshots(icetable.WithOlderThan(olderThan), icetable.WithRetainLast(keep)); err != nil {
				return fmt.Errorf("stage snapshot expiry: %w", err)
			}
			after, err := txn.StagedTable()
			if err != nil {
				return fmt.Errorf("read the staged expiry: %w", err)
			}
			posAfter, err := table.CurrentPositions(after.Table)
			if err != nil {
				return fmt.Errorf("%w: read positions after: %w", errPositionsAtRisk, err)
			}
			if !equalPositions(posBefore, posAfter) {
				return fmt.Errorf("%w (before: %v, after: %v)", errPositionsAtRisk, posBefore, posAfter)
			}
			expired = len(before.Metadata().Snapshots()) - len(after.Metadata().Snapshots())
			return nil
		},
	})
	if err != nil {
		return err
	}
	if expired > 0 {
		r.rep.SnapshotsExpired = expired
		c.m.expired.WithLabelValues(r.name).Add(float64(expired))
		c.log.Info("snapshots expired", "table", r.name, "expired", expired)
	}
	return nil
}

// expiryPlan works out iceberg-go's ExpireSnapshots options for tbl at now:
// the age (iceberg-go measures it against the wall clock, so the
// compactor's clock is translated) and how many of main's newest
// snapshots to retain. ok is false when nothing would expire.
func expiryPlan(tbl *icetable.Table, now time.Time) (olderThan time.Duration, keep int, ok bool) {
	props := tbl.Properties()
	maxAge := time.Duration(props.GetInt64(icetable.MaxSnapshotAgeMsKey, icetable.MaxSnapshotAgeMsDefault)) * time.Millisecond
	keep = max(1, props.GetInt(icetable.MinSnapshotsToKeepKey, icetable.MinSnapshotsToKeepDefault))
	// The newest snapshot carrying positions, and every snapshot above it.
	meta := tbl.Metadata()
	retained := map[int64]bool{}
	depth := 0
	for s := range table.CurrentAncestors(meta) {
		retained[s.SnapshotID] = true
		depth++
		if s.Summary != nil {
			if _, floe := s.Summary.Properties[table.PropCommitID]; floe {
				keep = max(keep, depth)
				break
			}
		}
	}
	cutoff := now.Add(-maxAge).UnixMilli()
	for _, s := range meta.Snapshots() {
		if s.TimestampMs < cutoff && !retained[s.SnapshotID] {
			ok = true
			break
		}
	}
	olderThan = max(0, time.Since(time.UnixMilli(cutoff)))
	return olderThan, keep, ok
}

func equalPositions(a, b table.PositionMap) bool {
	return maps.EqualFunc(a, b, func(x, y table.Positions) bool { return maps.Equal(x, y) })
}

func gcEnabled(props iceberg.Properties) bool {
	return props.GetBool(icetable.GCEnabledKey, icetable.GCEnabledDefault)
}

// removeOrphans deletes files under the table location that no metadata
// references and that are older than orphan-older-than: files of failed or
// crashed commits (writers' and compaction's), manifests of lost
// conflicts, dropped groups' outputs.
//
// It is safe while writers commit because a writer publishes a file within
// a commit interval plus a commit timeout of writing it, far below the 1h
// floor. One rewrite must not take longer than the threshold either: run
// one compactor per table.
func (r *tableRun) removeOrphans(ctx context.Context) error {
	c := r.c
	olderThan := c.cfg.OrphanOlderThan
	if c.opts.TestOrphanOlderThan != nil {
		olderThan = *c.opts.TestOrphanOlderThan
	} else if olderThan < MinOrphanOlderThan {
		return fmt.Errorf("%w: compaction.orphan-older-than: %s is below the minimum of %s", errConfig, olderThan, MinOrphanOlderThan)
	}
	tbl, err := r.committer.Load(ctx)
	if err != nil {
		return err
	}
	if !gcEnabled(tbl.Properties()) {
		return nil
	}
	// iceberg-go measures age against the wall clock.
	cutoff := c.opts.Now().Add(-olderThan)
	res, err := tbl.DeleteOrphanFiles(ctx, icetable.WithFilesOlderThan(max(0, time.Since(cutoff))))
	if err != nil {
		return fmt.Errorf("remove orphan files: %w", err)
	}
	if n := len(res.DeletedFiles); n > 0 {
		r.rep.OrphansRemoved = n
		c.m.orphans.WithLabelValues(r.name).Add(float64(n))
		c.log.Info("orphan files removed", "table", r.name, "files", n, "bytes", res.TotalSizeBytes)
	}
	return nil
}
