package writer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// TestKeyedNewKeys: a load applied as Changes.NewKeys after Truncate
// (some of its rows flushed before the rest come) replaces the table,
// later changes find its keys whether flushed or still buffered, and
// Len counts each key once. NewKeys skips the key index: a key given as
// new while the table holds it is then in the table twice (the broken
// promise the field's doc warns of; without the skip it would be one).
func TestKeyedNewKeys(t *testing.T) {
	wh := testenv.Warehouses(t)[0]
	ctx := context.Background()
	cat := tabletest.Open(t, wh.Config)
	w := writer.New(cat, writer.DefaultConfig(), writer.Options{Logger: quietLog(t)})
	defer w.Abort()
	kt, err := w.OpenKeyed(ctx, keyedSpec(), "src", writer.KeyedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer kt.Abort()
	up, del := writer.OpUpsert, writer.OpDelete
	apply := func(newKeys bool, ids []int64, ops []writer.Op, v string, next int64) {
		t.Helper()
		rows := make([]keyedRow, len(ids))
		for i := range rows {
			rows[i] = keyedRow{v: v}
		}
		ch := writer.Changes{Record: keyedRecord(kt.Schema(), ids, ops, rows), Ops: ops, NewKeys: newKeys}
		if next > 0 {
			ch.Next = table.Positions{"p": next}
		}
		if err := kt.Apply(ch); err != nil {
			t.Fatal(err)
		}
	}
	ups := func(n int) []writer.Op {
		ops := make([]writer.Op, n)
		for i := range ops {
			ops[i] = up
		}
		return ops
	}
	commit := func() {
		t.Helper()
		if err := kt.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// The table before the load: 1, 2, 3, 9.
	apply(false, []int64{1, 2, 3, 9}, ups(4), "old", 1)
	commit()

	// The load: 1–3 flushed (a commit without positions holds them
	// back), then 4–6 buffered; a key twice in one batch keeps its last
	// row.
	if err := kt.Truncate(nil); err != nil {
		t.Fatal(err)
	}
	apply(true, []int64{1, 2, 3}, ups(3), "load", 0)
	commit()
	apply(true, []int64{4, 5, 6, 6}, ups(4), "load", 0)
	if err := kt.Apply(writer.Changes{Next: table.Positions{"p": 2}}); err != nil {
		t.Fatal(err)
	}
	// Changes after the load: 2 (flushed) and 5 (buffered) updated, 3
	// (flushed) and 6 (buffered) deleted.
	apply(false, []int64{2, 5, 3, 6}, []writer.Op{up, up, del, del}, "after", 3)
	if n := kt.Len(); n != 4 {
		t.Errorf("Len %d before the commit, want 4", n)
	}
	commit()
	got, _ := scanKeyed(t, cat)
	want := map[int64]string{1: "load", 2: "after", 4: "load", 5: "after"}
	if len(got) != len(want) {
		t.Fatalf("table %v, want %v", got, want)
	}
	for id, v := range want {
		if got[id].v != v {
			t.Fatalf("table %v, want %v", got, want)
		}
	}
	if n := kt.Len(); n != 4 {
		t.Errorf("Len %d, want 4", n)
	}

	// A broken promise: 1 is in the table.
	apply(true, []int64{1}, ups(1), "again", 4)
	commit()
	rows := 0
	tabletest.Each(t, tabletest.Load(t, cat, keyedTable), func(rec arrow.RecordBatch) {
		ids := rec.Column(0).(*array.Int64)
		for i := range int(rec.NumRows()) {
			if ids.Value(i) == 1 {
				rows++
			}
		}
	})
	if rows != 2 {
		t.Errorf("key 1 given as new while in the table: %d rows, want 2 (the index was looked up)", rows)
	}
}

// TestKeyedDataFilesPqgo: a keyed table's data files are encoded by the
// append path's encoder (internal/pqgo, on parquet-go).
func TestKeyedDataFilesPqgo(t *testing.T) {
	wh := testenv.Warehouses(t)[0]
	ctx := context.Background()
	cat := tabletest.Open(t, wh.Config)
	w := writer.New(cat, writer.DefaultConfig(), writer.Options{Logger: quietLog(t)})
	defer w.Abort()
	kt, err := w.OpenKeyed(ctx, keyedSpec(), "src", writer.KeyedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer kt.Abort()
	ops := []writer.Op{writer.OpUpsert, writer.OpUpsert}
	rec := keyedRecord(kt.Schema(), []int64{1, 2}, ops, []keyedRow{{v: "a"}, {v: "b"}})
	if err := kt.Apply(writer.Changes{Record: rec, Ops: ops, Next: table.Positions{"p": 1}}); err != nil {
		t.Fatal(err)
	}
	if err := kt.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	tbl := tabletest.Load(t, cat, keyedTable)
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("%d files: %v", len(tasks), err)
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Open(tasks[0].File.FilePath())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	rdr, err := file.NewParquetReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdr.Close() }()
	// arrow-go writes "parquet-go version 18...".
	if by := rdr.MetaData().GetCreatedBy(); !strings.Contains(by, "github.com/parquet-go/parquet-go") {
		t.Errorf("data file created by %q, want parquet-go (internal/pqgo)", by)
	}
}
