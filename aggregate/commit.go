package aggregate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/pqgo"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// commitReq is one commit to the summary table.
type commitReq struct {
	kind string
	// filter selects the output rows replaced; nil for a cursor-only
	// commit.
	filter     iceberg.BooleanExpression
	records    []arrow.RecordBatch
	base       cursorState
	next       int64
	changes    int
	sourceRows int64
	groups     int
	partitions int
	// setFingerprint stores the spec's fingerprint in the table.
	setFingerprint bool
	started        time.Time
}

func (a *Aggregator) commit(ctx context.Context, r commitReq) (CommitInfo, error) {
	if h := a.opts.Hooks.BeforeCommit; h != nil {
		h()
	}
	sc := (*arrow.Schema)(nil)
	if len(r.records) > 0 {
		sc = r.records[0].Schema()
	}
	res, err := a.committer.Commit(ctx, table.Commit{
		Operation: "aggregate",
		Advances: map[string]table.Advance{
			reader.UpstreamSource(a.spec.Source): reader.CursorAdvance(r.base.id, r.base.found, r.next),
		},
		Apply: func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
			if r.setFingerprint {
				if err := txn.SetProperties(iceberg.Properties{PropFingerprint: a.fingerprint, PropSpec: specJSON(a.spec)}); err != nil {
					return err
				}
			}
			if r.filter == nil {
				// Only the cursor moves: an empty append carries it.
				return txn.AddFiles(ctx, nil, props, true)
			}
			a.lastPqgo = false
			if _, all := r.filter.(iceberg.AlwaysTrue); all && sc != nil {
				done, err := a.replaceAll(ctx, txn, props, sc, r.records)
				if done || err != nil {
					a.lastPqgo = err == nil
					return err
				}
			}
			if sc == nil {
				tbl, err := txn.StagedTable()
				if err != nil {
					return err
				}
				if sc, err = icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false); err != nil {
					return err
				}
			}
			rdr, err := array.NewRecordReader(sc, r.records)
			if err != nil {
				return err
			}
			defer rdr.Release()
			return txn.Overwrite(ctx, rdr, props, icetable.WithOverwriteFilter(r.filter),
				icetable.WithOverwriteConcurrency(a.opts.Concurrency))
		},
	})
	if err != nil {
		return CommitInfo{}, err
	}
	if h := a.opts.Hooks.AfterCommit; h != nil {
		h()
	}
	if r.setFingerprint {
		a.fingerprintOK = true
	}
	info := CommitInfo{
		Kind: r.kind, SnapshotID: res.SnapshotID, Cursor: r.next, Changes: r.changes,
		SourceRows: r.sourceRows, Groups: r.groups, Partitions: r.partitions,
		Duration: a.opts.Clock.Now().Sub(r.started),
	}
	a.log.Debug("aggregate commit", "kind", info.Kind, "snapshot", info.SnapshotID, "cursor", info.Cursor,
		"changes", info.Changes, "source_rows", info.SourceRows, "groups", info.Groups,
		"partitions", info.Partitions, "duration", info.Duration, "attempts", res.Attempts)
	if a.opts.OnCommit != nil {
		a.opts.OnCommit(info)
	}
	return info, nil
}

// replaceAll writes recs with the parquet-go encoder (internal/pqgo,
// whose files carry the same statistics as iceberg-go's) in place of every
// data file of the table: what Overwrite with an always-true filter
// commits (an overwrite snapshot, or an append to a table without a
// snapshot),
// at about half the CPU of iceberg-go's writer. It reports false, having
// written nothing, when iceberg-go must write: a table pqgo does not
// write, or one with delete files.
func (a *Aggregator) replaceAll(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties, sc *arrow.Schema, recs []arrow.RecordBatch) (bool, error) {
	st, err := txn.StagedTable()
	if err != nil {
		return true, err
	}
	if pqgo.Supported(st.Table, sc) != nil {
		return false, nil
	}
	old, ok, err := table.LiveDataFiles(ctx, txn)
	if err != nil || !ok {
		return err != nil, err
	}
	if len(old) == 0 && st.CurrentSnapshot() != nil {
		// Overwrite commits an overwrite snapshot here, AddDataFiles an
		// append: leave it to Overwrite.
		return false, nil
	}
	files, err := pqgo.Write(ctx, st.Table, sc, recs, pqgo.Options{Workers: a.opts.Concurrency, FastSnappy: true})
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

func (a *Aggregator) fingerprintError(tbl *icetable.Table) error {
	return permanent(fmt.Errorf("aggregate %s: table %s holds states of another spec (fingerprint %q, this spec's is %q): "+
		"run a full backfill (without --from/--to) to rebuild it with this spec, or write to a new output table",
		a.spec.Name, a.spec.Output, tbl.Properties()[PropFingerprint], a.fingerprint))
}
