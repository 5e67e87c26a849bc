package writer_test

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// keyRecord is a Changes.Deletes record of keyedSpec's key.
func keyRecord(ids []int64) arrow.RecordBatch {
	sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues(ids, nil)
	return b.NewRecordBatch()
}

// TestKeyedApplyInterleaved: upserts in Record and deletes by key in
// Deletes, interleaved by Ops, apply in Ops' order (insert k, delete k,
// insert k leaves k), and ApplyCounted counts the deletes that found no
// key, pending or committed.
func TestKeyedApplyInterleaved(t *testing.T) {
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
	steps := []struct {
		ups         []int64 // Record's ids (value "a<step>")
		dels        []int64
		ops         []writer.Op
		wantUnknown int
	}{
		// 1 in, 1 out, 1 in again; 2 in and out; 3 never there; 4 in.
		{ups: []int64{1, 1, 2, 4}, dels: []int64{1, 2, 3}, ops: []writer.Op{up, del, up, up, del, del, up}, wantUnknown: 1},
		// Committed keys: 4 out twice (the second finds nothing), 1 updated.
		{ups: []int64{1}, dels: []int64{4, 4}, ops: []writer.Op{del, up, del}, wantUnknown: 1},
		// Deletes only.
		{dels: []int64{1, 9}, ops: []writer.Op{del, del}, wantUnknown: 1},
		// Upserts only, in Deletes' form.
		{ups: []int64{5}, ops: []writer.Op{up}},
	}
	for i, s := range steps {
		ch := writer.Changes{Ops: s.ops, Next: table.Positions{"p": int64(i + 1)}}
		if s.ups != nil {
			rows := make([]keyedRow, len(s.ups))
			ops := make([]writer.Op, len(s.ups))
			for j := range rows {
				rows[j], ops[j] = keyedRow{v: "a", n: int32(i)}, up
			}
			ch.Record = keyedRecord(kt.Schema(), s.ups, ops, rows)
		}
		if s.dels != nil {
			ch.Deletes = keyRecord(s.dels)
		}
		unknown, err := kt.ApplyCounted(ch)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if unknown != s.wantUnknown {
			t.Errorf("step %d: %d unknown deletes, want %d", i, unknown, s.wantUnknown)
		}
		if err := kt.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		got, _ := scanKeyed(t, cat)
		var want map[int64]keyedRow
		switch i {
		case 0:
			want = map[int64]keyedRow{1: {"a", 0}, 4: {"a", 0}}
		case 1:
			want = map[int64]keyedRow{1: {"a", 1}}
		case 2:
			want = map[int64]keyedRow{}
		case 3:
			want = map[int64]keyedRow{5: {"a", 3}}
		}
		if len(got) != len(want) {
			t.Fatalf("step %d: table %v, want %v", i, got, want)
		}
		for id, r := range want {
			if got[id] != r {
				t.Fatalf("step %d: table %v, want %v", i, got, want)
			}
		}
	}

	// Ops that do not match the rows are refused, and the table goes on.
	bad := []writer.Changes{
		{Deletes: keyRecord([]int64{1}), Ops: []writer.Op{del, del}},
		{Record: keyedRecord(kt.Schema(), []int64{1}, []writer.Op{up}, []keyedRow{{"a", 1}}), Deletes: keyRecord([]int64{2}), Ops: []writer.Op{del, del}},
		{Record: keyedRecord(kt.Schema(), []int64{1}, []writer.Op{up}, []keyedRow{{"a", 1}}), Deletes: keyedRecord(kt.Schema(), []int64{2}, []writer.Op{del}, []keyedRow{{}}), Ops: []writer.Op{up, del}},
	}
	for i, ch := range bad {
		if _, err := kt.ApplyCounted(ch); err == nil {
			t.Errorf("bad changes %d: no error", i)
		}
	}
	if err := kt.Err(); err != nil {
		t.Errorf("the table failed: %v", err)
	}
}
