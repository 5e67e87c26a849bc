package transform

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/pqgo"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// cursor is where the output stands: the source snapshot its rows cover
// and, with dedup, the newest kept event time.
type cursor struct {
	id    int64
	found bool
	dedup table.Positions
}

// cursorOf reads the output's committed cursor.
func (t *Transformer) cursorOf(tbl *icetable.Table) (cursor, error) {
	pm, err := table.CurrentPositions(tbl)
	if err != nil {
		return cursor{}, permanent(fmt.Errorf("transform %s: positions of %s: %w", t.spec.name(), t.spec.Output, err))
	}
	id, found := reader.CursorFromPositions(pm, t.srcName)
	c := cursor{id: id, found: found}
	if t.dedup != nil {
		c.dedup = pm[DedupSource].Clone()
	}
	return c, nil
}

// commitReq is one commit to the output table.
type commitReq struct {
	kind    string
	records []arrow.RecordBatch
	// keys, for a keyed output, are the keys the batch touched: equality
	// deletes committed with the records.
	keys      []arrow.RecordBatch
	overwrite bool // replace every row (backfill)
	base      cursor
	next      int64
	dedupNext table.Positions
	changes   int
	srcRows   int64
	started   time.Time
}

func (t *Transformer) commit(ctx context.Context, r commitReq) (CommitInfo, error) {
	if h := t.opts.Hooks.BeforeCommit; h != nil {
		h()
	}
	adv := map[string]table.Advance{
		reader.UpstreamSource(t.srcName): reader.CursorAdvance(r.base.id, r.base.found, r.next),
	}
	if len(r.dedupNext) > 0 {
		adv[DedupSource] = table.Advance{Base: r.base.dedup, Next: r.dedupNext}
	}
	var rows int64
	for _, rec := range r.records {
		rows += rec.NumRows()
	}
	res, err := t.committer.Commit(ctx, table.Commit{
		Operation: "transform",
		Advances:  adv,
		Apply: func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
			if !r.overwrite && len(r.records) == 0 && len(r.keys) == 0 {
				// Only the cursor moves: an empty append carries it.
				return txn.AddFiles(ctx, nil, props, true)
			}
			if t.keyed != nil && !r.overwrite {
				return t.applyRowDelta(ctx, txn, props, r.records, r.keys)
			}
			if rows > 0 {
				if done, err := t.applyFiles(ctx, txn, props, r); done || err != nil {
					return err
				}
			}
			rdr, err := array.NewRecordReader(t.out, r.records)
			if err != nil {
				return err
			}
			defer rdr.Release()
			if r.overwrite {
				return txn.Overwrite(ctx, rdr, props, icetable.WithOverwriteFilter(iceberg.AlwaysTrue{}),
					icetable.WithOverwriteConcurrency(t.opts.Concurrency))
			}
			return txn.Append(ctx, rdr, props)
		},
	})
	if err != nil {
		return CommitInfo{}, fmt.Errorf("transform %s: commit to %s: %w", t.spec.name(), t.spec.Output, err)
	}
	if h := t.opts.Hooks.AfterCommit; h != nil {
		h()
	}
	info := CommitInfo{
		Kind: r.kind, SnapshotID: res.SnapshotID, Cursor: r.next, Changes: r.changes,
		SourceRows: r.srcRows, Rows: rows, Duration: t.opts.Clock.Now().Sub(r.started),
	}
	t.log.Debug("transform commit", "kind", info.Kind, "snapshot", info.SnapshotID, "cursor", info.Cursor,
		"changes", info.Changes, "source_rows", info.SourceRows, "rows", info.Rows,
		"duration", info.Duration, "attempts", res.Attempts)
	if t.opts.OnCommit != nil {
		t.opts.OnCommit(info)
	}
	return info, nil
}

// applyFiles writes r's records with the parquet-go encoder
// (internal/pqgo, whose files carry the same statistics as iceberg-go's)
// and commits the data files it wrote: appended, or for an overwrite in
// place of every data file of the output. It reports false, having
// written nothing, when iceberg-go's own writer must do it: a table pqgo
// does not write, or an overwrite of a table with delete files.
func (t *Transformer) applyFiles(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties, r commitReq) (bool, error) {
	st, err := txn.StagedTable()
	if err != nil {
		return true, err
	}
	if pqgo.Supported(st.Table, t.out) != nil {
		return false, nil
	}
	var old []iceberg.DataFile
	if r.overwrite {
		var ok bool
		if old, ok, err = table.LiveDataFiles(ctx, txn); err != nil || !ok {
			return err != nil, err
		}
	}
	files, err := pqgo.Write(ctx, st.Table, t.out, r.records, pqgo.Options{Workers: t.opts.Concurrency})
	if errors.Is(err, pqgo.ErrUnsupported) {
		return false, nil
	}
	if err != nil {
		return true, err
	}
	return true, table.ReplaceDataFiles(ctx, txn, old, files, props)
}

func releaseAll(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}

// filterRows keeps the rows of rec whose mask is true.
func filterRows(ctx context.Context, rec arrow.RecordBatch, mask []bool) (arrow.RecordBatch, error) {
	b := array.NewBooleanBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(mask, nil)
	m := b.NewArray()
	defer m.Release()
	return compute.FilterRecordBatch(ctx, rec, m, compute.DefaultFilterOptions())
}
