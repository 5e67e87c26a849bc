package reader_test

import (
	"context"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// TestFilterKeepsHalfNullRowGroup: a filtered read returns the matching rows
// of a Parquet row group whose filtered column is exactly half null.
//
// iceberg-go v0.7.0 prunes row groups with inclusiveMetricsEval.TestRowGroup
// (table/evaluators.go), which stores arrow-go's Statistics.NumValues() as
// the column's value count. Iceberg's value count includes nulls, but
// arrow-go's NumValues is the non-null count (parquet/metadata/column_chunk.go
// makeColumnStats: ColumnMetaData.NumValues - Statistics.NullCount). So when
// a row group's column has as many nulls as non-null values,
// containsNullsOnly (valueCount == nullCount) is true and every comparison
// on that column (=, <, <=, >, >=, in, starts with, not null) skips the row
// group and its matching rows. Manifest metrics count nulls correctly, so
// file pruning is right; only row-group pruning is wrong.
func TestFilterKeepsHalfNullRowGroup(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	const name = "ods.halfnull"
	halfNullTable(t, ctx, cat, name, []int64{10, 20, 0, 0})

	for _, tc := range []struct {
		name    string
		where   string
		columns []string
		mode    reader.Mode
		want    []int64
	}{
		{name: "equal", where: "v = 10", want: []int64{1}},
		{name: "range", where: "v >= 10 and v < 30", want: []int64{1, 2}},
		{name: "not null", where: "v != null", want: []int64{1, 2}},
		{name: "is null", where: "v = null", want: []int64{3, 4}},
		{name: "with a required column", where: "id > 1 and v < 30", want: []int64{2}},
		{name: "column not projected", where: "v > 10", columns: []string{"id"}, want: []int64{2}},
		{name: "nested", where: "s.a = 20", columns: []string{"id", "s.b"}, want: []int64{2}},
		{name: "changelog", where: "v = 20", mode: reader.ModeChangelog, want: []int64{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			filter, err := reader.ParseFilter(tc.where)
			if err != nil {
				t.Fatal(err)
			}
			r := newReader(t, cat, name, reader.Config{Filter: filter, Columns: tc.columns, Mode: tc.mode})
			changes, err := r.Changes(ctx, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			snapshot, err := r.Snapshot(ctx, reader.At{})
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range []*reader.Stream{changes, snapshot} {
				if tc.columns != nil && st.Schema.NumFields() != len(tc.columns) {
					t.Fatalf("schema %s, want columns %v", st.Schema, tc.columns)
				}
				got := ids(readRows(t, st))
				slices.Sort(got)
				if !slices.Equal(got, tc.want) {
					t.Fatalf("%s: ids %v, want %v", tc.where, got, tc.want)
				}
			}
		})
	}
}

// halfNullTable creates table name with one data file of one row group, row
// i+1 having id i+1, and v and s.a vs[i] (null for 0).
func halfNullTable(t *testing.T, ctx context.Context, cat icecat.Catalog, name string, vs []int64) *icetable.Table {
	t.Helper()
	spec := table.Spec{
		Name: name,
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "v", Type: "long"},
			{Name: "s", Type: "struct", Fields: []table.Field{
				{Name: "a", Type: "long"},
				{Name: "b", Type: "string"},
			}},
		},
	}
	tbl, err := table.Ensure(ctx, cat, spec)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	sb := b.Field(2).(*array.StructBuilder)
	for i, v := range vs {
		b.Field(0).(*array.Int64Builder).Append(int64(i + 1))
		sb.Append(true)
		if v == 0 {
			b.Field(1).AppendNull()
			sb.FieldBuilder(0).AppendNull()
		} else {
			b.Field(1).(*array.Int64Builder).Append(v)
			sb.FieldBuilder(0).(*array.Int64Builder).Append(v)
		}
		sb.FieldBuilder(1).(*array.StringBuilder).Append("s")
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var files []iceberg.DataFile
	for df, err := range icetable.WriteRecords(ctx, tbl, sc, func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }) {
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, df)
	}
	txn := tbl.NewTransaction()
	if err := txn.AddDataFiles(ctx, files, nil); err != nil {
		t.Fatal(err)
	}
	out, err := txn.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
