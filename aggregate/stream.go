package aggregate

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// flush commits a streaming batch: delta holds the partial aggregates of
// the source changes after base up to next. The groups of the output
// partitions delta touches (from the state cache, or read from the table
// and decoded) are merged with it, and those partitions are replaced by
// the merged groups, with the cursor moved to next, in one commit.
func (a *Aggregator) flush(ctx context.Context, delta *groupTable, base cursorState, next int64, changes int, rows int64) (CommitInfo, error) {
	started := a.opts.Clock.Now()
	tbl, err := a.committer.Load(ctx)
	if err != nil {
		return CommitInfo{}, err
	}
	cur, err := a.cursorOf(tbl)
	if err != nil {
		return CommitInfo{}, err
	}
	if cur != base {
		a.cache.reset()
		return CommitInfo{}, fmt.Errorf("aggregate %s: the cursor of %s moved to %d since this batch started at %d: %w",
			a.spec.Name, a.spec.Output, cur.id, base.id, table.ErrFenced)
	}
	if !a.fingerprintOK {
		return CommitInfo{}, a.fingerprintError(tbl)
	}
	a.cache.validate(tbl)
	req := commitReq{
		kind: "stream", base: base, next: next, changes: changes, sourceRows: rows, started: started,
		setFingerprint: tbl.Properties()[PropFingerprint] != a.fingerprint,
	}
	if delta.len() == 0 {
		req.kind = "cursor"
		info, err := a.commit(ctx, req)
		if err != nil {
			a.cache.reset()
			return info, err
		}
		a.cache.put(info.SnapshotID, nil, nil)
		return info, nil
	}

	// The partitions touched: cached, or read from the table.
	parts := delta.partitions()
	if a.plan.hasFirstSeen() {
		if a.cache.first == nil {
			f, err := a.loadFirstSeen(ctx, tbl)
			if err != nil {
				a.cache.reset()
				return CommitInfo{}, err
			}
			a.cache.first = f
		}
		// Users seen earlier than their recorded first window are no
		// longer new there: that window's partition is rewritten too.
		for _, ws := range a.cache.first.merge(delta.first) {
			pt := floorDiv(ws, a.plan.unit) * a.plan.unit
			if _, found := slices.BinarySearch(parts, pt); !found {
				parts = append(parts, pt)
				slices.Sort(parts)
			}
		}
	}
	tables := make(map[int64]*groupTable, len(parts))
	var missing []int64
	for _, pt := range parts {
		if t := a.cache.take(pt); t != nil {
			tables[pt] = t
			continue
		}
		tables[pt] = newGroupTable(a.plan)
		missing = append(missing, pt)
	}
	st := &batchState{}
	if len(missing) > 0 {
		route := func(ws int64) *groupTable { return tables[floorDiv(ws, a.plan.unit)*a.plan.unit] }
		if err := a.loadStored(ctx, tbl, partitionFilter(missing, a.plan.unit), route, st); err != nil {
			a.cache.reset()
			return CommitInfo{}, err
		}
	}
	for g, k := range delta.keys {
		tables[floorDiv(windowStart(k), a.plan.unit)*a.plan.unit].mergeGroupFrom(delta, int32(g))
	}

	sc, err := outputSchema(tbl)
	if err != nil {
		a.cache.reset()
		return CommitInfo{}, err
	}
	stateBytes := make(map[int64]int, len(parts))
	defer func() { releaseAll(req.records) }()
	for _, pt := range parts {
		recs, n, err := a.plan.buildWith(tables[pt], sc, a.opts.Allocator, a.cache.first)
		if err != nil {
			a.cache.reset()
			return CommitInfo{}, err
		}
		req.records = append(req.records, recs...)
		stateBytes[pt] = n
	}
	for _, r := range req.records {
		req.groups += int(r.NumRows())
	}
	req.filter = partitionFilter(parts, a.plan.unit)
	req.partitions = len(parts)
	info, err := a.commit(ctx, req)
	if err != nil {
		a.cache.reset()
		return info, err
	}
	a.cache.put(info.SnapshotID, tables, stateBytes)
	return info, nil
}

// Follow aggregates the source's changes as they are committed, until ctx
// is cancelled: it reads the cursor the summary table holds (the source
// snapshot its rows cover), tails the source after it, and commits each
// batch of changes (bounded by MaxBatchRows and MaxBatchDelay) with the
// cursor in the same commit, so every source row is counted exactly once
// across crashes. When ctx is cancelled it commits the changes it has read
// completely and returns nil. A summary table without a cursor is
// followed from the source's first snapshot.
func (a *Aggregator) Follow(ctx context.Context) error {
	_, err := a.stream(ctx, false)
	return reader.Stopped(ctx, err)
}

// CatchUp is Follow up to the source's snapshot current when it is called:
// it returns once the summary table holds that snapshot's changes.
func (a *Aggregator) CatchUp(ctx context.Context) (Result, error) {
	return a.stream(ctx, true)
}

func (a *Aggregator) stream(ctx context.Context, once bool) (Result, error) {
	var total Result
	err := reader.RetryFenced(ctx, a.opts.Clock, a.opts.PollInterval, a.log,
		"fenced: the summary table's cursor moved; resuming from it", func() error {
			tbl, err := a.committer.Load(ctx)
			if err != nil {
				return err
			}
			base, err := a.cursorOf(tbl)
			if err != nil {
				return err
			}
			total.Cursor = base.id
			if !a.fingerprintOK {
				return a.fingerprintError(tbl)
			}
			var target int64
			if once {
				srcTbl, err := a.src.Load(ctx)
				if err != nil {
					return err
				}
				target = reader.Current(srcTbl)
				if target == base.id {
					return nil
				}
			}
			res, err := a.streamFrom(ctx, base, target)
			total.SourceRows += res.SourceRows
			total.Groups += res.Groups
			total.Commits += res.Commits
			if res.Commits > 0 {
				total.Cursor = res.Cursor
			}
			return err
		})
	return total, err
}

// streamFrom tails the source after base, committing batches, until ctx is
// cancelled or (target != 0) the change of snapshot target is committed.
func (a *Aggregator) streamFrom(ctx context.Context, base cursorState, target int64) (Result, error) {
	res := Result{Cursor: base.id}
	items, ack, stopTail := reader.TailAcked(ctx, a.src, base.id)
	defer stopTail()

	st := &batchState{}
	delta := newGroupTable(a.plan)
	next := base.id
	var changes int
	var rows int64
	var deadline <-chan time.Time
	flush := func(ctx context.Context) error {
		if changes == 0 {
			return nil
		}
		info, err := a.flush(ctx, delta, base, next, changes, rows)
		if err != nil {
			return err
		}
		res.Commits++
		res.Cursor = next
		res.SourceRows += rows
		res.Groups += info.Groups
		base = cursorState{id: next, found: true}
		delta = newGroupTable(a.plan)
		changes, rows, deadline = 0, 0, nil
		return nil
	}
	// finish commits what was read completely once ctx is cancelled.
	finish := func() (Result, error) {
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.CommitTimeout)
		defer fcancel()
		if err := flush(fctx); err != nil {
			return res, err
		}
		return res, ctx.Err()
	}
	for {
		select {
		case it, ok := <-items:
			if !ok {
				return finish()
			}
			if it.Err != nil {
				return res, it.Err
			}
			n, err := a.addStream(delta, it.Change.Stream, nil, st)
			select {
			case ack <- struct{}{}:
			case <-ctx.Done():
			}
			if err != nil {
				if ctx.Err() != nil {
					// Cancelled mid-change: the delta holds part of it
					// and must not be committed.
					return res, ctx.Err()
				}
				return res, fmt.Errorf("aggregate %s: changes of %s snapshot %d: %w", a.spec.Name, a.spec.Source, it.Change.Snapshot.ID, err)
			}
			next = it.Change.Snapshot.ID
			changes++
			rows += n
			if deadline == nil {
				deadline = a.opts.Clock.After(a.opts.MaxBatchDelay)
			}
			done := target != 0 && next == target
			if rows >= a.opts.MaxBatchRows || done {
				if err := flush(ctx); err != nil {
					return res, err
				}
			}
			if done {
				return res, nil
			}
		case <-deadline:
			if err := flush(ctx); err != nil {
				return res, err
			}
		case <-ctx.Done():
			return finish()
		}
	}
}

// addStream folds a stream's rows into t.
func (a *Aggregator) addStream(t *groupTable, s *reader.Stream, keep func(int64) bool, st *batchState) (int64, error) {
	var rows int64
	for rec, err := range s.Records() {
		if err != nil {
			return rows, err
		}
		n, err := a.plan.addBatch(t, rec, keep, st)
		rec.Release()
		if err != nil {
			return rows, err
		}
		rows += n
	}
	return rows, nil
}
