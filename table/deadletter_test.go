package table_test

import (
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
)

// dlSchema is the Arrow schema of a dead-letter table as the writer hands
// it to a source, after edit changes the spec's columns.
func dlSchema(t *testing.T, edit func([]table.Field) []table.Field) *arrow.Schema {
	t.Helper()
	spec := table.DeadLetterSpec("floe.dead_letters")
	if edit != nil {
		spec.Schema = edit(spec.Schema)
	}
	sc, err := spec.IcebergSchema()
	if err != nil {
		t.Fatal(err)
	}
	as, err := icetable.SchemaToArrowSchema(sc, nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func setType(name, typ string, required bool) func([]table.Field) []table.Field {
	return func(fs []table.Field) []table.Field {
		for i := range fs {
			if fs[i].Name == name {
				fs[i].Type, fs[i].Required = typ, required
			}
		}
		return fs
	}
}

// TestDeadLetterBuilder builds dead letters for the spec's table and for
// tables that differ from it: every source writes its dead letters through
// this one builder.
func TestDeadLetterBuilder(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	full := table.DeadLetter{Source: "s", Partition: "t/0", Position: 42, Target: "ods.events",
		Key: []byte("k"), Raw: []byte("raw\xff"), Reason: "bad", ReceivedAt: at}
	bare := table.DeadLetter{Source: "s", Partition: "binlog", Position: 7, Reason: "why"}
	for _, tc := range []struct {
		name string
		edit func([]table.Field) []table.Field
		dl   table.DeadLetter
		want map[string]any
		err  string
	}{
		{name: "spec", dl: full, want: map[string]any{"source": "s", "partition": "t/0", "position": int64(42), "target_table": "ods.events",
			"key": "k", "raw": "raw\xff", "reason": "bad", "received_at": at.Truncate(time.Microsecond)}},
		{name: "unset values are null", dl: bare, want: map[string]any{"source": "s", "partition": "binlog", "position": int64(7), "target_table": nil,
			"key": nil, "raw": nil, "reason": "why", "received_at": nil}},
		{name: "string raw, int position", edit: func(fs []table.Field) []table.Field {
			return setType("position", "int", true)(setType("raw", "string", false)(fs))
		}, dl: full, want: map[string]any{"position": int64(42), "raw": "raw\uFFFD"}},
		{name: "binary reason", edit: setType("reason", "binary", true), dl: full, want: map[string]any{"reason": "bad"}},
		{name: "timestamp without zone", edit: setType("received_at", "timestamp", false), dl: full, want: map[string]any{"received_at": at.Truncate(time.Microsecond)}},
		{name: "required optional columns get empty values", edit: func(fs []table.Field) []table.Field {
			return setType("key", "binary", true)(setType("target_table", "string", true)(fs))
		}, dl: bare, want: map[string]any{"key": "", "target_table": ""}},
		{name: "extra optional column", edit: func(fs []table.Field) []table.Field {
			return append(fs, table.Field{Name: "note", Type: "string"})
		}, dl: full, want: map[string]any{"note": nil, "reason": "bad"}},
		{name: "missing optional column", edit: func(fs []table.Field) []table.Field {
			return fs[:len(fs)-1] // received_at
		}, dl: full, want: map[string]any{"reason": "bad"}},
		{name: "extra required column", edit: func(fs []table.Field) []table.Field {
			return append(fs, table.Field{Name: "note", Type: "string", Required: true})
		}, err: "required column note is not a dead-letter column"},
		{name: "missing required column", edit: func(fs []table.Field) []table.Field {
			return fs[1:] // source
		}, err: `has no column "source"`},
		{name: "wrong type", edit: setType("position", "string", true), err: "column position: want int or long, got utf8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			b, err := table.NewDeadLetterBuilder(mem, "floe.dead_letters", dlSchema(t, tc.edit))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.Release()
			b.Append(tc.dl)
			b.Append(tc.dl)
			if b.Len() != 2 {
				t.Fatalf("Len %d", b.Len())
			}
			rec := b.NewRecordBatch()
			defer rec.Release()
			if rec.NumRows() != 2 || b.Len() != 0 {
				t.Fatalf("%d rows, then Len %d", rec.NumRows(), b.Len())
			}
			for name, want := range tc.want {
				idx := rec.Schema().FieldIndices(name)
				if len(idx) != 1 {
					t.Fatalf("no column %s", name)
				}
				for row := range 2 {
					if got := tabletest.Cell(rec.Column(idx[0]), row); got != want {
						t.Errorf("%s[%d] = %#v, want %#v", name, row, got, want)
					}
				}
			}
		})
	}
}
