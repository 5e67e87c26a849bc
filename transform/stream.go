package transform

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/reader"
)

// Follow transforms the source's snapshots as they are committed, until
// ctx is cancelled: it reads the cursor the output holds (the source
// snapshot its rows cover), tails the source after it, and commits each
// batch of output rows (bounded by MaxBatchRows and MaxBatchDelay) with
// the cursor in the same commit, so every source row is transformed
// exactly once across crashes. When ctx is cancelled it commits the
// snapshots it has read completely and returns nil. An output without a
// cursor is followed from the source's first snapshot.
func (t *Transformer) Follow(ctx context.Context) error {
	_, err := t.stream(ctx, false)
	return reader.Stopped(ctx, err)
}

// CatchUp is Follow up to the source's snapshot current when it is called:
// it returns once the output holds that snapshot's rows.
func (t *Transformer) CatchUp(ctx context.Context) (Result, error) {
	return t.stream(ctx, true)
}

func (t *Transformer) stream(ctx context.Context, once bool) (Result, error) {
	var total Result
	err := reader.RetryFenced(ctx, t.opts.Clock, t.opts.PollInterval, t.log,
		"fenced: the output's cursor moved; resuming from it", func() error {
			tbl, err := t.committer.Load(ctx)
			if err != nil {
				return err
			}
			base, err := t.cursorOf(tbl)
			if err != nil {
				return err
			}
			total.Cursor = base.id
			var target int64
			if once {
				srcTbl, err := t.src.Load(ctx)
				if err != nil {
					return err
				}
				target = reader.Current(srcTbl)
				if target == base.id {
					return nil
				}
			}
			res, err := t.streamFrom(ctx, tbl, base, target)
			total.SourceRows += res.SourceRows
			total.Rows += res.Rows
			total.Commits += res.Commits
			if res.Commits > 0 {
				total.Cursor = res.Cursor
			}
			return err
		})
	return total, err
}

// batch is a streaming batch: the output of the source snapshots after
// base up to next.
type batch struct {
	sink    sink
	next    int64
	changes int
	srcRows int64
}

// newSink returns an empty sink for the output's kind.
func (t *Transformer) newSink() sink {
	if t.keyed != nil {
		return newKeyedSink(t.keyed)
	}
	return &appendSink{dedup: t.dedup, state: t.state}
}

// streamFrom tails the source after base (the output as of tbl),
// committing batches, until ctx is cancelled or (target != 0) the change
// of snapshot target is committed.
func (t *Transformer) streamFrom(ctx context.Context, tbl *icetable.Table, base cursor, target int64) (Result, error) {
	res := Result{Cursor: base.id}
	if t.dedup != nil {
		st, err := t.loadDedupState(ctx, tbl)
		if err != nil {
			return res, err
		}
		t.state = st
	}
	items, ack, stopTail := reader.TailAcked(ctx, t.src, base.id)
	b := &batch{next: base.id, sink: t.newSink()}
	defer func() {
		stopTail()
		b.sink.release()
	}()
	var deadline <-chan time.Time
	flush := func(ctx context.Context) error {
		if b.changes == 0 {
			return nil
		}
		req := commitReq{
			kind: "stream", base: base, next: b.next,
			changes: b.changes, srcRows: b.srcRows, started: t.opts.Clock.Now(),
		}
		switch s := b.sink.(type) {
		case *appendSink:
			req.records = s.recs
		case *keyedSink:
			rows, keys, err := s.rows(ctx)
			if err != nil {
				return err
			}
			defer releaseAll(rows)
			req.records, req.keys = rows, keys
		}
		if len(req.records) == 0 && len(req.keys) == 0 {
			req.kind = "cursor"
		}
		if t.state != nil {
			req.dedupNext = t.state.positions()
		}
		info, err := t.commit(ctx, req)
		if err != nil {
			// The state holds the dropped batch's keys.
			t.state = nil
			return err
		}
		res.Commits++
		res.Cursor = b.next
		res.SourceRows += b.srcRows
		res.Rows += info.Rows
		base = cursor{id: b.next, found: true}
		if t.state != nil {
			base.dedup = req.dedupNext
			t.state.evict(t.dedup)
		}
		b.sink.release()
		*b = batch{next: base.id, sink: t.newSink()}
		deadline = nil
		return nil
	}
	// finish commits what was read completely once ctx is cancelled.
	finish := func() (Result, error) {
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), t.opts.CommitTimeout)
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
			n, err := t.change(ctx, it.Change, b.sink)
			select {
			case ack <- struct{}{}:
			case <-ctx.Done():
			}
			if err != nil {
				t.state = nil
				if ctx.Err() != nil {
					// Cancelled mid-change: the batch holds part of it
					// and must not be committed.
					return res, ctx.Err()
				}
				return res, err
			}
			b.next = it.Change.Snapshot.ID
			b.changes++
			b.srcRows += n
			if deadline == nil {
				deadline = t.opts.Clock.After(t.opts.MaxBatchDelay)
			}
			done := target != 0 && b.next == target
			if b.srcRows >= t.opts.MaxBatchRows || done {
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

// change transforms one source snapshot's rows into the sink, in order.
// On error the sink holds part of the snapshot and must be dropped.
func (t *Transformer) change(ctx context.Context, ch *reader.Change, s sink) (int64, error) {
	var rows int64
	for rec, err := range ch.Records() {
		if err != nil {
			return rows, fmt.Errorf("transform %s: read %s snapshot %d: %w", t.spec.name(), t.srcName, ch.Snapshot.ID, err)
		}
		rows += rec.NumRows()
		j, err := t.prepare(ctx, rec, ch.Snapshot)
		var r arrow.RecordBatch
		if err == nil {
			r, err = t.run(ctx, j)
		}
		rec.Release()
		if err == nil && r != nil {
			err = s.add(ctx, r, j.del)
		}
		if err != nil {
			return rows, fmt.Errorf("transform %s: %s snapshot %d: %w", t.spec.name(), t.srcName, ch.Snapshot.ID, err)
		}
	}
	return rows, nil
}
