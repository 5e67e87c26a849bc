package aggregate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"

	"github.com/floe-lake/floe/reader"
)

// BackfillOptions select what a backfill reads and replaces.
type BackfillOptions struct {
	// From and To bound the windows rebuilt by their start: [From, To),
	// widened to whole output partitions (hours or days). Both zero: the
	// whole table.
	From, To time.Time
	// SnapshotID is the source snapshot read. Default: the source's
	// current snapshot for a full backfill; the snapshot the summary
	// table's cursor holds for a ranged one (so that every partition
	// reflects the same source snapshot).
	SnapshotID int64
	// Progress, when set, is told the size of the planned read (the rows
	// and bytes of the files the scan plans) and the rows read as they
	// are (internal/progress.Meter is one).
	Progress Progress
}

// Progress is told how far a backfill's read has come; its methods are
// called from several goroutines.
type Progress interface {
	// SetTotals is the planned read: the rows and bytes its files hold.
	SetTotals(rows, bytes int64)
	// Add is rows more read, and their share of the bytes.
	Add(rows, bytes int64)
}

// readProgress reports a batch of rows of st read to p (nil: none).
func readProgress(p Progress, st *reader.Stream, rows int64) {
	if p == nil {
		return
	}
	var bytes int64
	if st.Rows > 0 {
		bytes = int64(float64(rows) / float64(st.Rows) * float64(st.Bytes))
	}
	p.Add(rows, bytes)
}

// Backfill computes the spec over the source as of one snapshot (all of
// it, or the windows starting in a range) and replaces the summary
// table's rows — all of them, or the range's partitions — with the
// result, committing the snapshot read as the cursor: following resumes
// after it. It runs the same aggregation as streaming, over a snapshot
// read instead of incremental changes, without merging stored states.
//
// A ranged backfill of a table that has no cursor yet sets the cursor
// too: the table then covers the range as of that snapshot, and every
// window after following.
func (a *Aggregator) Backfill(ctx context.Context, o BackfillOptions) (Result, error) {
	started := a.opts.Clock.Now()
	tbl, err := a.committer.Load(ctx)
	if err != nil {
		return Result{}, err
	}
	base, err := a.cursorOf(tbl)
	if err != nil {
		return Result{}, err
	}
	ranged := !o.From.IsZero() || !o.To.IsZero()
	if ranged && !a.fingerprintOK {
		return Result{}, a.fingerprintError(tbl)
	}
	if ranged && !o.From.IsZero() && !o.To.IsZero() && !o.From.Before(o.To) {
		return Result{}, fmt.Errorf("aggregate %s: backfill from %s is not before to %s", a.spec.Name, o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	unit := a.plan.unit
	from, to := int64(minTime), int64(maxTime)
	if !o.From.IsZero() {
		from = floorDiv(o.From.UnixMicro(), unit) * unit
	}
	if !o.To.IsZero() {
		to = -floorDiv(-o.To.UnixMicro(), unit) * unit
	}

	snap := o.SnapshotID
	switch {
	case ranged && base.found && snap != 0 && snap != base.id:
		return Result{}, fmt.Errorf("aggregate %s: a ranged backfill reads the snapshot the cursor of %s holds (%d), not %d, so that all of its partitions reflect one source snapshot; backfill the whole table to move the cursor",
			a.spec.Name, a.spec.Output, base.id, snap)
	case ranged && base.found:
		snap = base.id
	case snap == 0:
		srcTbl, err := a.src.Load(ctx)
		if err != nil {
			return Result{}, err
		}
		snap = reader.Current(srcTbl)
	}

	var keep func(int64) bool
	var tr *reader.TimeRange
	if ranged {
		keep = func(ws int64) bool { return ws >= from && ws < to }
		tr = &reader.TimeRange{Column: a.spec.Time}
		if from != minTime {
			tr.Start = time.UnixMicro(from).UTC()
		}
		if to != maxTime {
			// Rows up to the end of the last window starting before to.
			tr.End = time.UnixMicro(a.plan.readEnd(to)).UTC()
		}
		if a.plan.hasFirstSeen() {
			// New and returning users count against all of history.
			tr.Start = time.Time{}
		}
	}
	groups := newGroupTable(a.plan)
	var rows int64
	direct := false
	if snap != 0 && !a.viaReader {
		var err error
		groups, rows, err = a.directBackfill(ctx, a.readerConfig(tr), snap, keep, o.Progress)
		switch {
		case errors.Is(err, errNoDirect):
			a.log.Debug("backfill reads through the reader", "reason", err)
		case err != nil:
			return Result{}, err
		default:
			direct = true
		}
	}
	a.lastDirect = direct
	if snap != 0 && !direct {
		r, err := reader.New(a.cat, a.spec.Source, a.readerConfig(tr))
		if err != nil {
			return Result{}, err
		}
		stream, err := r.Snapshot(ctx, reader.At{SnapshotID: snap})
		if err != nil {
			return Result{}, fmt.Errorf("aggregate %s: backfill: %w", a.spec.Name, err)
		}
		if o.Progress != nil {
			o.Progress.SetTotals(stream.Rows, stream.Bytes)
		}
		if groups, rows, err = a.aggregateParallel(stream, keep, o.Progress); err != nil {
			return Result{}, fmt.Errorf("aggregate %s: backfill of %s snapshot %d: %w", a.spec.Name, a.spec.Source, snap, err)
		}
	}
	sc, err := outputSchema(tbl)
	if err != nil {
		return Result{}, err
	}
	recs, _, err := a.plan.build(groups, sc, a.opts.Allocator)
	if err != nil {
		return Result{}, err
	}
	defer releaseAll(recs)
	req := commitReq{
		kind: "backfill", base: base, next: snap, sourceRows: rows, records: recs, started: started,
		filter:         iceberg.AlwaysTrue{},
		setFingerprint: tbl.Properties()[PropFingerprint] != a.fingerprint,
	}
	for _, r := range recs {
		req.groups += int(r.NumRows())
	}
	req.partitions = len(groups.partitions())
	if ranged {
		req.filter = rangeFilter(from, to)
	}
	a.cache.reset()
	info, err := a.commit(ctx, req)
	if err != nil {
		return Result{}, err
	}
	a.log.Info("backfill committed", "source_snapshot", snap, "source_rows", rows, "groups", info.Groups,
		"partitions", info.Partitions, "snapshot", info.SnapshotID, "duration", info.Duration)
	return Result{Cursor: snap, SourceRows: rows, Groups: info.Groups, Commits: 1}, nil
}

const (
	minTime = -1 << 63
	maxTime = 1<<63 - 1
)

// rangeFilter selects window starts in [from, to); minTime and maxTime
// leave a side open.
func rangeFilter(from, to int64) iceberg.BooleanExpression {
	ref := iceberg.Reference(ColWindowStart)
	var parts []iceberg.BooleanExpression
	if from != minTime {
		parts = append(parts, iceberg.GreaterThanEqual(ref, iceberg.Timestamp(from)))
	}
	if to != maxTime {
		parts = append(parts, iceberg.LessThan(ref, iceberg.Timestamp(to)))
	}
	switch len(parts) {
	case 0:
		return iceberg.AlwaysTrue{}
	case 1:
		return parts[0]
	}
	return iceberg.NewAnd(parts[0], parts[1])
}

// aggregateParallel folds a stream into group tables, one per worker
// (Options.Concurrency), and merges them: partial aggregates are
// mergeable, so how batches are split between workers does not change the
// result.
func (a *Aggregator) aggregateParallel(s *reader.Stream, keep func(int64) bool, p Progress) (*groupTable, int64, error) {
	workers := a.opts.Concurrency
	if workers == 1 && p == nil {
		t := newBatchTable(a.plan)
		rows, err := a.addStream(t, s, keep, &batchState{})
		return t, rows, err
	}
	recs := make(chan arrow.RecordBatch, workers)
	tables := make([]*groupTable, workers)
	rowsPer := make([]int64, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		tables[w] = newBatchTable(a.plan)
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &batchState{}
			for rec := range recs {
				if errs[w] == nil {
					n, err := a.plan.addBatch(tables[w], rec, keep, st)
					rowsPer[w] += n
					errs[w] = err
				}
				rec.Release()
			}
		}()
	}
	var readErr error
	for rec, err := range s.Records() {
		if err != nil {
			readErr = err
			break
		}
		readProgress(p, s, rec.NumRows())
		recs <- rec
	}
	close(recs)
	wg.Wait()
	if readErr != nil {
		return nil, 0, readErr
	}
	var rows int64
	for w := range workers {
		if errs[w] != nil {
			return nil, 0, errs[w]
		}
		rows += rowsPer[w]
	}
	// Merge the largest table into, so the least is copied.
	slices.SortFunc(tables, func(x, y *groupTable) int { return y.len() - x.len() })
	out := tables[0]
	for _, t := range tables[1:] {
		out.mergeFrom(t)
	}
	return out, rows, nil
}
