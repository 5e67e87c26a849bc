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

// TestFileWriter: a file written in appends — each batch its own append,
// its buffers overwritten as soon as the append returns, row groups of
// 500 rows spanning appends — holds the rows WriteFile writes for the
// same selection, in order, with the same statistics.
func TestFileWriter(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	tbl := ensure(t, cat, allTypesSpec("t.appends"))
	sc := arrowSchema(t, tbl)
	recs := allTypes(t, sc, 3000, 700, 0.15, 2)
	// What the file must hold, read before anything is overwritten.
	want := rowsOf(recs)
	opts := pqgo.Options{RowGroupRows: 500}
	ref, err := pqgo.WriteFile(ctx, tbl, sc, tbl.Location()+"/data/ref.parquet", recs, nil, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqgo.NewFileWriter(ctx, tbl, sc, tbl.Location()+"/data/appended.parquet", nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := w.Append([]arrow.RecordBatch{rec}, nil); err != nil {
			t.Fatal(err)
		}
		// Overwrite what the append read: the file must hold copies.
		for _, col := range rec.Columns() {
			scribble(col.Data())
		}
	}
	if err := w.Append(nil, nil); err != nil {
		t.Fatal(err)
	}
	if w.Rows() != 3000 {
		t.Fatalf("%d rows appended, want 3000", w.Rows())
	}
	df, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if df.Count() != 3000 {
		t.Fatalf("the file has %d rows, want 3000", df.Count())
	}
	sameStats(t, tbl, []iceberg.DataFile{df}, []iceberg.DataFile{ref})
	tbl = commit(t, tbl, []iceberg.DataFile{df})
	sameRows(t, "scan", scan(t, tbl), want)

	// Nothing appended: no file.
	w, err = pqgo.NewFileWriter(ctx, tbl, sc, tbl.Location()+"/data/empty.parquet", nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	if df, err := w.Close(); df != nil || err != nil {
		t.Errorf("empty writer: %v, %v; want no file", df, err)
	}
}

// scribble overwrites every buffer of d and its children.
func scribble(d arrow.ArrayData) {
	for _, b := range d.Buffers() {
		if b != nil {
			for i := range b.Bytes() {
				b.Bytes()[i] = 0xA5
			}
		}
	}
	for _, c := range d.Children() {
		scribble(c)
	}
}
