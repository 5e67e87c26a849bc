package transform

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// BackfillOptions select what a backfill reads.
type BackfillOptions struct {
	// SnapshotID is the last source snapshot read. Default: the source's
	// current snapshot.
	SnapshotID int64
	// Progress, when set, is told the size of the planned read (the rows
	// and bytes of the files the scans plan) and the rows read as they
	// are (internal/progress.Meter is one).
	Progress Progress
}

// Progress is told how far a backfill's read has come.
type Progress interface {
	// SetTotals is the planned read: the rows and bytes its files hold.
	SetTotals(rows, bytes int64)
	// Add is rows more read, and their share of the bytes.
	Add(rows, bytes int64)
}

// Backfill recomputes the output from the source's history up to one
// snapshot and replaces every output row with the result in one commit,
// with that snapshot as the cursor: following resumes after it.
//
// It reads the rows each source snapshot added (its changes, as streaming
// does) rather than the table as of the last one, because a fact joins the
// dimension versions current when its own snapshot was committed: every
// row is joined and deduplicated exactly as streaming did it, so the two
// agree row for row. When the source's early history has expired, the
// oldest snapshot it retains is read whole, as if all its rows had been
// committed then (logged).
func (t *Transformer) Backfill(ctx context.Context, o BackfillOptions) (Result, error) {
	started := t.opts.Clock.Now()
	tbl, err := t.committer.Load(ctx)
	if err != nil {
		return Result{}, err
	}
	base, err := t.cursorOf(tbl)
	if err != nil {
		return Result{}, err
	}
	srcTbl, err := t.src.Load(ctx)
	if err != nil {
		return Result{}, err
	}
	snap := o.SnapshotID
	if snap == 0 {
		snap = reader.Current(srcTbl)
	}
	var streams []*reader.Stream
	if snap != 0 {
		snaps, complete := table.AncestorsBetween(srcTbl.Metadata(), 0, snap)
		if len(snaps) == 0 {
			return Result{}, permanent(fmt.Errorf("transform %s: backfill: %s has no snapshot %d: %w", t.spec.name(), t.srcName, snap, reader.ErrSnapshotNotFound))
		}
		from := int64(0)
		if !complete {
			oldest := snaps[0]
			t.log.Warn("the source's early history has expired: reading its oldest retained snapshot whole, joined as of that snapshot's commit time",
				"source", t.srcName, "snapshot", oldest.SnapshotID)
			st, err := t.src.SnapshotIn(ctx, srcTbl, reader.At{SnapshotID: oldest.SnapshotID})
			if err != nil {
				return Result{}, fmt.Errorf("transform %s: backfill: %w", t.spec.name(), err)
			}
			streams = append(streams, st)
			from = oldest.SnapshotID
		}
		if from != snap {
			st, err := t.src.ChangesIn(ctx, srcTbl, from, snap)
			if err != nil {
				return Result{}, fmt.Errorf("transform %s: backfill: %w", t.spec.name(), err)
			}
			streams = append(streams, st)
		}
	}
	var state *dedupState
	if t.dedup != nil {
		state = newDedupState()
	}
	var s sink = &appendSink{dedup: t.dedup, state: state}
	if t.keyed != nil {
		s = newKeyedSink(t.keyed)
	}
	defer s.release()
	if o.Progress != nil {
		var rows, bytes int64
		for _, st := range streams {
			rows, bytes = rows+st.Rows, bytes+st.Bytes
		}
		o.Progress.SetTotals(rows, bytes)
	}
	var srcRows int64
	for _, st := range streams {
		n, err := t.parallelWith(ctx, st, s, o.Progress)
		srcRows += n
		if err != nil {
			return Result{}, fmt.Errorf("transform %s: backfill of %s up to snapshot %d: %w", t.spec.name(), t.srcName, snap, err)
		}
	}
	req := commitReq{kind: "backfill", overwrite: true, base: base, next: snap, srcRows: srcRows, started: started}
	switch s := s.(type) {
	case *appendSink:
		req.records = s.recs
	case *keyedSink:
		// A fresh table: the live rows alone, no deletes.
		rows, _, err := s.rows(ctx)
		if err != nil {
			return Result{}, err
		}
		defer releaseAll(rows)
		req.records = rows
	}
	if state != nil {
		req.dedupNext = state.positions()
	}
	t.state = nil
	info, err := t.commit(ctx, req)
	if err != nil {
		return Result{}, err
	}
	t.log.Info("backfill committed", "source_snapshot", snap, "source_rows", srcRows, "rows", info.Rows,
		"snapshot", info.SnapshotID, "duration", info.Duration)
	return Result{Cursor: snap, SourceRows: srcRows, Rows: info.Rows, Commits: 1}, nil
}

// parallel transforms a stream's batches in Options.Concurrency goroutines
// and hands their results to the sink in the stream's order.
func (t *Transformer) parallel(ctx context.Context, st *reader.Stream, s sink) (int64, error) {
	return t.parallelWith(ctx, st, s, nil)
}

// parallelWith is parallel telling p, when set, the rows read.
func (t *Transformer) parallelWith(ctx context.Context, st *reader.Stream, s sink, p Progress) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	snaps := make(map[int64]reader.SnapshotInfo, len(st.Snapshots))
	for _, s := range st.Snapshots {
		snaps[s.ID] = s
	}
	type result struct {
		rec arrow.RecordBatch
		del bool
		err error
	}
	type work struct {
		j    job
		done chan result
	}
	jobs := make(chan work)
	order := make(chan chan result, 2*t.opts.Concurrency)
	var wg sync.WaitGroup
	for range t.opts.Concurrency {
		wg.Go(func() {
			for w := range jobs {
				r, err := t.run(ctx, w.j)
				w.j.rec.Release()
				w.done <- result{r, w.j.del, err}
			}
		})
	}
	collected := make(chan error, 1)
	go func() {
		var err error
		for done := range order {
			r := <-done
			if err == nil && r.err != nil {
				err = r.err
				cancel(err)
			}
			if r.rec == nil {
				continue
			}
			if err != nil {
				r.rec.Release()
				continue
			}
			if err = s.add(ctx, r.rec, r.del); err != nil {
				cancel(err)
			}
		}
		collected <- err
	}()
	var rows int64
	var readErr error
	for rec, err := range st.Records() {
		if err != nil {
			readErr = err
			break
		}
		rows += rec.NumRows()
		if p != nil && st.Rows > 0 {
			p.Add(rec.NumRows(), int64(float64(rec.NumRows())/float64(st.Rows)*float64(st.Bytes)))
		}
		info, err := snapshotOf(rec, snaps)
		var j job
		if err == nil {
			j, err = t.prepare(ctx, rec, info)
		}
		if err != nil {
			rec.Release()
			readErr = err
			break
		}
		w := work{j: j, done: make(chan result, 1)}
		select {
		case order <- w.done:
		case <-ctx.Done():
			rec.Release()
			readErr = context.Cause(ctx)
		}
		if readErr != nil {
			break
		}
		jobs <- w
	}
	close(jobs)
	wg.Wait()
	close(order)
	err := <-collected
	if err == nil {
		err = readErr
	}
	if err != nil && errors.Is(readErr, context.Canceled) && context.Cause(ctx) != nil {
		err = context.Cause(ctx)
	}
	return rows, err
}

// snapshotOf is the source snapshot a changelog batch came from (a batch
// holds the rows of one file of one snapshot).
func snapshotOf(rec arrow.RecordBatch, snaps map[int64]reader.SnapshotInfo) (reader.SnapshotInfo, error) {
	idx := rec.Schema().FieldIndices(reader.ColCommitSnapshotID)
	if len(idx) == 0 {
		return reader.SnapshotInfo{}, errors.New("the rows read carry no snapshot id")
	}
	col, ok := rec.Column(idx[0]).(*array.Int64)
	if !ok || col.Len() == 0 {
		return reader.SnapshotInfo{}, errors.New("the rows read carry no snapshot id")
	}
	id := col.Value(0)
	if col.Value(col.Len()-1) != id {
		return reader.SnapshotInfo{}, fmt.Errorf("a batch holds rows of snapshots %d and %d", id, col.Value(col.Len()-1))
	}
	info, ok := snaps[id]
	if !ok {
		return reader.SnapshotInfo{}, fmt.Errorf("snapshot %d is not among those read", id)
	}
	return info, nil
}
