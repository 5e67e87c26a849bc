package verify

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/readertest"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// otherEngineDelete deletes the rows of name matching filter with
// iceberg-go's own transaction, as another engine would: the snapshot
// carries no Floe positions.
func otherEngineDelete(t testing.TB, cat icecat.Catalog, name string, filter iceberg.BooleanExpression) {
	t.Helper()
	ctx := context.Background()
	// A concurrent Floe commit (a CDC position) can win the race: retry.
	var err error
	for range 10 {
		txn := tabletest.Load(t, cat, name).NewTransaction()
		if err = txn.Delete(ctx, filter, nil); err != nil {
			t.Fatal(err)
		}
		if _, err = txn.Commit(ctx); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal(err)
}

// otherEngineUpdate replaces the one row of name matching filter with a
// copy whose column col (a long) is increased by delta, in one iceberg-go
// overwrite, as another writer would.
func otherEngineUpdate(t testing.TB, cat icecat.Catalog, name string, filter iceberg.BooleanExpression, col string, delta int64) {
	t.Helper()
	ctx := context.Background()
	tbl := tabletest.Load(t, cat, name)
	var recs []arrow.RecordBatch
	var n int64
	readertest.Each(t, cat, name, tbl, reader.Config{Filter: filter, Logger: quietLogger()}, func(rec arrow.RecordBatch) {
		if rec.NumRows() == 0 {
			return
		}
		idx := rec.Schema().FieldIndices(col)[0]
		old := rec.Column(idx).(*array.Int64)
		b := array.NewInt64Builder(memory.DefaultAllocator)
		for i := range old.Len() {
			b.Append(old.Value(i) + delta)
		}
		cols := append([]arrow.Array(nil), rec.Columns()...)
		cols[idx] = b.NewArray()
		recs = append(recs, array.NewRecordBatch(rec.Schema(), cols, rec.NumRows()))
		n += rec.NumRows()
	})
	if n != 1 {
		t.Fatalf("%s: filter %s matches %d rows, want 1", name, filter, n)
	}
	rdr, err := array.NewRecordReader(recs[0].Schema(), recs)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	txn := tbl.NewTransaction()
	if err := txn.Overwrite(ctx, rdr, nil, icetable.WithOverwriteFilter(filter)); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// firstRow returns the values of cols in the first row of name.
func firstRow(t testing.TB, cat icecat.Catalog, name string, cols ...string) []arrow.Array {
	t.Helper()
	var out []arrow.Array
	readertest.Each(t, cat, name, nil, reader.Config{Columns: cols, Logger: quietLogger()}, func(rec arrow.RecordBatch) {
		if out != nil || rec.NumRows() == 0 {
			return
		}
		// The slices keep their data; the record may go.
		out = make([]arrow.Array, len(cols))
		for i := range cols {
			out[i] = array.NewSlice(rec.Column(i), 0, 1)
		}
	})
	if out == nil {
		t.Fatalf("%s has no rows", name)
	}
	return out
}

// count is the differences of kind in r.
func count(r *Report, kind string) int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Counts[kind]
	}
	return n
}

// otherEngineCopy appends a copy of the rows of name matching filter with
// iceberg-go, as another writer replaying them would.
func otherEngineCopy(t testing.TB, cat icecat.Catalog, name string, filter iceberg.BooleanExpression) {
	t.Helper()
	ctx := context.Background()
	tbl := tabletest.Load(t, cat, name)
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	var recs []arrow.RecordBatch
	readertest.Each(t, cat, name, tbl, reader.Config{Filter: filter, Logger: quietLogger()}, func(rec arrow.RecordBatch) {
		recs = append(recs, array.NewRecordBatch(sc, rec.Columns(), rec.NumRows()))
	})
	rdr, err := array.NewRecordReader(sc, recs)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	txn := tbl.NewTransaction()
	if err := txn.Append(ctx, rdr, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}
