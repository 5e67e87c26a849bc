package tabletest

import (
	"context"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
)

// Load loads the table name ("namespace.table"), failing the test on
// error.
func Load(t testing.TB, cat icecat.Catalog, name string) *icetable.Table {
	t.Helper()
	tbl, err := cat.LoadTable(context.Background(), icecat.ToIdentifier(name))
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// Each scans tbl with opts and calls fn on every record batch, releasing
// it afterwards; a scan error fails the test.
func Each(t testing.TB, tbl *icetable.Table, fn func(arrow.RecordBatch), opts ...icetable.ScanOption) {
	t.Helper()
	_, recs, err := tbl.Scan(opts...).ToArrowRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for rec, err := range recs {
		if err != nil {
			t.Fatal(err)
		}
		fn(rec)
		rec.Release()
	}
}

// Int64s returns the long column col of every row tbl's scan with opts
// yields, sorted, duplicates kept.
func Int64s(t testing.TB, tbl *icetable.Table, col string, opts ...icetable.ScanOption) []int64 {
	t.Helper()
	var out []int64
	Each(t, tbl, func(rec arrow.RecordBatch) {
		out = append(out, rec.Column(0).(*array.Int64).Int64Values()...)
	}, append(opts, icetable.WithSelectedFields(col))...)
	slices.Sort(out)
	return out
}

// Rows returns every row tbl's scan with opts yields, in scan order, as
// comparable Go values (see Cell).
func Rows(t testing.TB, tbl *icetable.Table, opts ...icetable.ScanOption) [][]any {
	t.Helper()
	var rows [][]any
	Each(t, tbl, func(rec arrow.RecordBatch) {
		for i := range int(rec.NumRows()) {
			var row []any
			for _, col := range rec.Columns() {
				row = append(row, Cell(col, i))
			}
			rows = append(rows, row)
		}
	}, opts...)
	return rows
}

// Append appends rec to tbl as another engine would, in one snapshot, and
// returns the table after it; an error fails the test.
func Append(t testing.TB, tbl *icetable.Table, rec arrow.RecordBatch) *icetable.Table {
	t.Helper()
	rdr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	tbl, err = tbl.Append(context.Background(), rdr, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// RowDelta commits to tbl, in one snapshot as a CDC engine would, equality
// deletes of deleteIDs (on field 1, the table's long id) and the rows of
// rec (nil: none), and returns the table after it; an error fails the
// test.
func RowDelta(t testing.TB, tbl *icetable.Table, deleteIDs []int64, rec arrow.RecordBatch) *icetable.Table {
	t.Helper()
	ctx := context.Background()
	txn := tbl.NewTransaction()
	rd := txn.NewRowDelta(nil)
	if len(deleteIDs) > 0 {
		sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
		rows := make([][]any, len(deleteIDs))
		for i, id := range deleteIDs {
			rows[i] = []any{id}
		}
		keys := Record(sc, rows...)
		defer keys.Release()
		dfs, err := txn.WriteEqualityDeletes(ctx, []int{1}, func(yield func(arrow.RecordBatch, error) bool) { yield(keys, nil) })
		if err != nil {
			t.Fatal(err)
		}
		rd.AddDeletes(dfs...)
	}
	if rec != nil {
		for df, err := range icetable.WriteRecords(ctx, tbl, rec.Schema(), func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }) {
			if err != nil {
				t.Fatal(err)
			}
			rd.AddRows(df)
		}
	}
	if err := rd.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := txn.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// CheckIDs fails the test unless ids (sorted) are exactly 0..n-1, each
// once.
func CheckIDs(t testing.TB, ids []int64, n int64) {
	t.Helper()
	if int64(len(ids)) != n {
		t.Errorf("table holds %d rows, want %d", len(ids), n)
	}
	for i, id := range ids {
		if i > 0 && ids[i-1] == id {
			t.Fatalf("id %d is duplicated", id)
		}
		if id != int64(i) {
			t.Fatalf("id %d missing (found %d at index %d)", i, id, i)
		}
	}
}
