package inspect_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/inspect"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// newTable creates ns.t (partitioned by day(ts)) and appends one file per
// day of rows, holding n rows on days 0 and 1 each.
func newTable(t *testing.T, cat icecat.Catalog, n int) *icetable.Table {
	t.Helper()
	ctx := context.Background()
	spec := table.Spec{
		Name: "ns.t",
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true, Doc: "unique id"},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "device", Type: "struct", Fields: []table.Field{{Name: "os", Type: "string"}}},
			{Name: "tags", Type: "list", Element: &table.Field{Type: "string"}},
			{Name: "attrs", Type: "map", Key: &table.Field{Type: "string"}, Value: &table.Field{Type: "long"}},
			{Name: "hits", Type: "list", Element: &table.Field{Type: "struct", Fields: []table.Field{{Name: "url", Type: "string"}}}},
		},
		Partition: []table.PartitionField{{Column: "ts", Transform: "day"}},
	}
	tbl, err := table.Ensure(ctx, cat, spec)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		return tbl
	}
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	day0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var rows [][]any
	for i := range 2 * n {
		rows = append(rows, []any{int64(i), day0.Add(time.Duration(i%2) * 24 * time.Hour), nil, nil, nil, nil})
	}
	rec := tabletest.Record(sc, rows...)
	defer rec.Release()
	return tabletest.Append(t, tbl, rec)
}

func TestListDescribeFiles(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	tbl := newTable(t, cat, 5)
	log := slog.New(slog.DiscardHandler)

	if err := cat.CreateNamespace(ctx, icetable.Identifier{"empty"}, nil); err != nil {
		t.Fatal(err)
	}
	list, err := inspect.List(ctx, cat, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []inspect.Namespace{{Namespace: "empty", Tables: []string{}}, {Namespace: "ns", Tables: []string{"ns.t"}}}
	if len(list) != 2 || list[0].Namespace != "empty" || len(list[0].Tables) != 0 || list[1].Namespace != "ns" || !slices.Equal(list[1].Tables, want[1].Tables) {
		t.Fatalf("List: %+v, want %+v", list, want)
	}
	if list, err := inspect.List(ctx, cat, log, icetable.Identifier{"ns"}); err != nil || len(list) != 1 || list[0].Namespace != "ns" {
		t.Fatalf("List(ns): %+v, %v", list, err)
	}
	if _, err := inspect.List(ctx, cat, log, icetable.Identifier{"nope"}); !errors.Is(err, inspect.ErrNotFound) || err.Error() != "namespace nope not found" {
		t.Fatalf("List(nope): %v", err)
	}
	for _, ident := range []icetable.Identifier{{"ns", "nope"}, {"other", "nope"}} {
		want := "table " + strings.Join(ident, ".") + " not found"
		if _, err := inspect.Load(ctx, cat, ident); !errors.Is(err, inspect.ErrNotFound) || err.Error() != want {
			t.Fatalf("Load(%v): %v, want %q", ident, err, want)
		}
	}

	d := inspect.Describe(tbl)
	var cols []string
	for _, c := range d.Columns {
		if c.ID == 0 {
			t.Errorf("column %s: no field id", c.Path)
		}
		cols = append(cols, c.Path+":"+c.Type)
	}
	// Elements, keys and values are listed only when they have fields.
	wantCols := []string{"id:long", "ts:timestamptz", "device:struct", "device.os:string", "tags:list<string>",
		"attrs:map<string, long>", "hits:list<struct>", "hits.element.url:string"}
	if !slices.Equal(cols, wantCols) {
		t.Fatalf("columns:\n %v\nwant\n %v", cols, wantCols)
	}
	if c := d.Columns[0]; !c.Required || c.Doc != "unique id" || c.ID != 1 || d.Columns[2].Required {
		t.Fatalf("column id: %+v", c)
	}
	if d.Name != "ns.t" || len(d.Partition) != 1 || d.Partition[0] != "day(ts)" {
		t.Fatalf("describe: %+v", d.TableInfo)
	}

	files, err := inspect.Files(ctx, tbl)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("files: %+v", files)
	}
	for i, f := range files {
		wantPart := []string{"ts_day=2026-01-01", "ts_day=2026-01-02"}[i]
		if f.Partition != wantPart || f.RecordCount != 5 || f.FileSizeBytes <= 0 || f.Format != "parquet" || !strings.HasPrefix(f.Path, tbl.Location()) {
			t.Errorf("file %d: %+v, want partition %s with 5 records", i, f, wantPart)
		}
	}
	if snaps := inspect.Snapshots(tbl); len(snaps) != 1 || !snaps[0].Current {
		t.Fatalf("snapshots: %+v", snaps)
	}
}

func TestFilesEmpty(t *testing.T) {
	tbl := newTable(t, tabletest.OpenSQLite(t), 0)
	files, err := inspect.Files(context.Background(), tbl)
	if err != nil || files == nil || len(files) != 0 {
		t.Fatalf("files of an empty table: %#v, %v", files, err)
	}
}

// TestDescribeKeyIndex checks the key index a keyed table reports: one key
// per live row, the writer's estimate of its memory, and where it lives;
// and none for a table without identifier fields.
func TestDescribeKeyIndex(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	plain := newTable(t, cat, 0)
	if d := inspect.Describe(plain); d.KeyIndex != nil {
		t.Fatalf("table without identifier fields: key index %+v", d.KeyIndex)
	}
	tbl, err := table.Ensure(ctx, cat, table.Spec{
		Name:             "ns.keyed",
		Schema:           []table.Field{{Name: "id", Type: "long", Required: true}, {Name: "v", Type: "string"}},
		IdentifierFields: []string{"id"},
	})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for i := range 1000 {
		rows = append(rows, []any{int64(i), "x"})
	}
	rec := tabletest.Record(sc, rows...)
	defer rec.Release()
	tbl = tabletest.Append(t, tbl, rec)
	d := inspect.Describe(tbl)
	if d.KeyIndex == nil {
		t.Fatal("keyed table: no key index")
	}
	if x := d.KeyIndex; x.Keys != 1000 || x.Bytes != writer.EstimateKeyIndexBytes(tbl.Schema(), 1000) || x.Bytes <= 0 || x.Location != writer.KeyIndexLocation {
		t.Fatalf("key index %+v", x)
	}
	var out bytes.Buffer
	if err := (inspect.Printer{W: &out}).Describe(d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "key-index           1000 keys") {
		t.Fatalf("describe text has no key index line:\n%s", out.String())
	}
	out.Reset()
	if err := (inspect.Printer{W: &out, JSON: true}).Describe(d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"key-index": {`) || !strings.Contains(out.String(), `"keys": 1000,`) || !strings.Contains(out.String(), `"name": "ns.keyed"`) {
		t.Fatalf("describe JSON: %s", out.String())
	}
}
