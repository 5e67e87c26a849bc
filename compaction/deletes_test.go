package compaction_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

func dataFile(t *testing.T, path string, rows int64) iceberg.DataFile {
	t.Helper()
	b, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentData, path, iceberg.ParquetFile,
		nil, nil, nil, rows, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return b.Build()
}

// TestPlanDeleteMerge: a file whose rows are all deleted is dropped, the
// deletes of the others are kept sorted and once each, and every delete
// file is replaced.
func TestPlanDeleteMerge(t *testing.T) {
	a, b, c, d := dataFile(t, "a", 4), dataFile(t, "b", 3), dataFile(t, "c", 3), dataFile(t, "d", 5)
	dels := []iceberg.DataFile{dataFile(t, "del-1", 1), dataFile(t, "del-2", 1)}
	cases := []struct {
		name     string
		files    []compaction.FileDeletes
		drop     []string
		keep     map[string][]int64
		replaced int
	}{
		{name: "nothing deleted", files: nil, keep: map[string][]int64{}, replaced: 2},
		{
			name:  "all rows of one file",
			files: []compaction.FileDeletes{{File: a, Positions: []int64{3, 1, 0, 2}}, {File: b, Positions: []int64{2, 0}}},
			drop:  []string{"a"}, keep: map[string][]int64{"b": {0, 2}}, replaced: 2,
		},
		{
			// Three entries but two positions: c keeps a row.
			name:  "repeated positions are not rows",
			files: []compaction.FileDeletes{{File: c, Positions: []int64{1, 1, 0}}},
			keep:  map[string][]int64{"c": {0, 1}}, replaced: 2,
		},
		{
			name:  "a file without deletes",
			files: []compaction.FileDeletes{{File: d}, {File: b, Positions: []int64{0, 1, 2}}},
			drop:  []string{"b"}, keep: map[string][]int64{}, replaced: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := compaction.PlanDeleteMerge(dels, tc.files)
			var drop []string
			for _, f := range m.Drop {
				drop = append(drop, f.FilePath())
			}
			if !slices.Equal(drop, tc.drop) {
				t.Errorf("drop %v, want %v", drop, tc.drop)
			}
			keep := map[string][]int64{}
			for _, f := range m.Keep {
				keep[f.File.FilePath()] = f.Positions
			}
			if !maps.EqualFunc(keep, tc.keep, slices.Equal) {
				t.Errorf("keep %v, want %v", keep, tc.keep)
			}
			if len(m.Replace) != tc.replaced {
				t.Errorf("replaces %d delete files, want %d", len(m.Replace), tc.replaced)
			}
		})
	}
}

func kvSpec() table.Spec {
	return table.Spec{
		Name: "ods.kv",
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "v", Type: "string"},
		},
		IdentifierFields: []string{"id"},
	}
}

// applyKV applies the op on ids (values val-<id>) to kt as change batch
// next and commits it; an error fails the test.
func applyKV(t *testing.T, kt *writer.KeyedTable, sc *arrow.Schema, next int64, ids []int64, op writer.Op, val string) {
	t.Helper()
	ops := slices.Repeat([]writer.Op{op}, len(ids))
	if err := kt.Apply(writer.Changes{Record: kvRecord(sc, ids, ops, val), Ops: ops, Next: table.Positions{"p0": next}}); err != nil {
		t.Fatal(err)
	}
	if err := kt.Commit(context.Background()); err != nil {
		t.Fatalf("commit %d: %v", next, err)
	}
}

func kvRecord(sc *arrow.Schema, ids []int64, ops []writer.Op, val string) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i, id := range ids {
		b.Field(0).(*array.Int64Builder).Append(id)
		if ops[i] == writer.OpDelete {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("%s-%d", val, id))
		}
	}
	return b.NewRecordBatch()
}

func idRange(from, to int64) []int64 {
	var ids []int64
	for i := from; i < to; i++ {
		ids = append(ids, i)
	}
	return ids
}

func scanKV(t *testing.T, cat icecat.Catalog) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	tabletest.Each(t, tabletest.Load(t, cat, "ods.kv"), func(rec arrow.RecordBatch) {
		ids, vs := rec.Column(0).(*array.Int64), rec.Column(1).(*array.String)
		for i := range int(rec.NumRows()) {
			if _, dup := out[ids.Value(i)]; dup {
				t.Errorf("id %d twice", ids.Value(i))
			}
			out[ids.Value(i)] = vs.Value(i)
		}
	})
	return out
}

// TestKeyedDeleteMerge: a keyed table whose deletes are in three files
// (MaxDeleteFiles 3) gets them merged into one, in a replace snapshot
// that drops the data file whose rows were all deleted; the rows are those
// the changes leave.
func TestKeyedDeleteMerge(t *testing.T) {
	tabletest.EachWarehouse(t, func(t *testing.T, cat icecat.Catalog) {
		ctx := context.Background()
		w := newWriter(t, cat)
		kt, err := w.OpenKeyed(ctx, kvSpec(), "src", writer.KeyedOptions{MaxDeleteFiles: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer kt.Abort()
		sc := kt.Schema()
		next := int64(0)
		apply := func(ids []int64, op writer.Op, val string) {
			t.Helper()
			next++
			applyKV(t, kt, sc, next, ids, op, val)
		}
		apply(idRange(0, 10), writer.OpUpsert, "a")  // data file A
		apply(idRange(10, 20), writer.OpUpsert, "b") // data file B
		tbl := tabletest.Load(t, cat, "ods.kv")
		dataBefore, _ := tabletest.LiveFiles(t, tbl)
		if len(dataBefore) != 2 {
			t.Fatalf("%d data files, want 2", len(dataBefore))
		}
		apply(idRange(0, 5), writer.OpDelete, "")   // delete file 1: rows of A
		apply(idRange(10, 20), writer.OpDelete, "") // delete file 2: all of B
		tbl = tabletest.Load(t, cat, "ods.kv")
		if _, dels := tabletest.LiveFiles(t, tbl); len(dels) != 2 {
			t.Fatalf("%d delete files before the third, want 2", len(dels))
		}
		apply([]int64{5}, writer.OpUpsert, "c") // data file C, delete file 3: a row of A

		tbl = tabletest.Load(t, cat, "ods.kv")
		snap := tbl.CurrentSnapshot()
		if snap.Summary == nil || snap.Summary.Operation != icetable.OpReplace {
			t.Fatalf("head snapshot %+v, want the merge's replace", snap.Summary)
		}
		data, dels := tabletest.LiveFiles(t, tbl)
		if len(dels) != 1 {
			t.Errorf("%d delete files after the merge, want 1: %v", len(dels), dels)
		}
		// The writer's file names sort in the order it wrote them.
		fileA, fileB := dataBefore[0], dataBefore[1]
		if len(data) != 2 || !slices.Contains(data, fileA) || slices.Contains(data, fileB) {
			t.Errorf("data files after the merge %v, want %s and a new one, not %s", data, fileA, fileB)
		}
		want := map[int64]string{5: "c-5", 6: "a-6", 7: "a-7", 8: "a-8", 9: "a-9"}
		if got := scanKV(t, cat); !maps.Equal(got, want) {
			t.Errorf("rows %v, want %v", got, want)
		}
		pm, err := table.CurrentPositions(tbl)
		if err != nil {
			t.Fatal(err)
		}
		if pm["src"]["p0"] != next {
			t.Errorf("positions %v after the merge, want p0=%d", pm, next)
		}
		if err := kt.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
