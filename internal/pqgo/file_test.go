package pqgo_test

import (
	"context"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"

	"github.com/floe-lake/floe/internal/pqgo"
	"github.com/floe-lake/floe/internal/tabletest"
)

// TestWriteFile: WriteFile writes the selected rows of the batches, in
// the order given, into one file at the path given, and its DataFile is
// what Write reports for the same rows (everything but path and size).
func TestWriteFile(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	tbl := ensure(t, cat, allTypesSpec("t.file"))
	sc := arrowSchema(t, tbl)
	recs := allTypes(t, sc, 3000, 700, 0.15, 1) // 700, 700, 700, 700, 200
	var even []int32
	for i := int32(0); i < 700; i += 2 {
		even = append(even, i)
	}
	all := func(n int32) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(i)
		}
		return out
	}
	rows := [][]int32{all(700), {}, even, {5, 699}, all(200)}
	var picked []arrow.RecordBatch
	var wantIDs []int64
	for b, r := range rows {
		ib := array.NewInt32Builder(memory.DefaultAllocator)
		ib.AppendValues(r, nil)
		idx := ib.NewArray()
		ib.Release()
		in, ix := compute.NewDatum(recs[b]), compute.NewDatum(idx)
		out, err := compute.Take(ctx, *compute.DefaultTakeOptions(), in, ix)
		in.Release()
		ix.Release()
		idx.Release()
		if err != nil {
			t.Fatal(err)
		}
		rec := out.(*compute.RecordDatum).Value
		defer rec.Release()
		picked = append(picked, rec)
		ids := rec.Column(0).(*array.Int64)
		for i := range ids.Len() {
			wantIDs = append(wantIDs, ids.Value(i))
		}
	}
	path := tbl.Location() + "/data/chosen-name.parquet"
	df, err := pqgo.WriteFile(ctx, tbl, sc, path, recs, rows, nil, pqgo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if df.FilePath() != path || df.Count() != int64(len(wantIDs)) {
		t.Fatalf("file %s of %d rows, want %s of %d", df.FilePath(), df.Count(), path, len(wantIDs))
	}
	sameStats(t, tbl, []iceberg.DataFile{df}, writePqgo(t, tbl, sc, picked, pqgo.Options{}))
	tbl = commit(t, tbl, []iceberg.DataFile{df})
	sameRows(t, "scan", scan(t, tbl), rowsOf(picked))
	// The file's rows in the order given.
	_, it, err := tbl.Scan().ToArrowRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []int64
	for r, err := range it {
		if err != nil {
			t.Fatal(err)
		}
		ids := r.Column(0).(*array.Int64)
		for i := range ids.Len() {
			gotIDs = append(gotIDs, ids.Value(i))
		}
		r.Release()
	}
	if !slices.Equal(gotIDs, wantIDs) {
		t.Errorf("the file's ids are not the rows in the order given")
	}

	// rows == nil: every row.
	df, err = pqgo.WriteFile(ctx, tbl, sc, tbl.Location()+"/data/all.parquet", recs, nil, nil, pqgo.Options{})
	if err != nil || df.Count() != 3000 {
		t.Fatalf("every row: %v, %v", df, err)
	}
	if _, err := pqgo.WriteFile(ctx, tbl, sc, tbl.Location()+"/data/bad.parquet", recs, rows[:2], nil, pqgo.Options{}); err == nil {
		t.Error("fewer row lists than batches: no error")
	}
}
