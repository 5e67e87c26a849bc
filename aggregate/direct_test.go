package aggregate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
)

const directSrc = "src.ev"

// directSource makes a source table for the direct read's tests: files
// of several row groups and many small pages, nulls in every nullable
// column, and a schema evolved between appends (k renamed to kind, n
// promoted from int to long, f from float to double, x added).
func directSource(t *testing.T, cat icecat.Catalog) {
	t.Helper()
	ctx := context.Background()
	tbl, err := table.Ensure(ctx, cat, table.Spec{
		Name: directSrc,
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "ts", Type: "timestamptz"},
			{Name: "k", Type: "string"},
			{Name: "n", Type: "int"},
			{Name: "f", Type: "float"},
			{Name: "amt", Type: "decimal(18,2)"},
			{Name: "ok", Type: "boolean"},
			{Name: "u", Type: "long"},
			{Name: "d", Type: "double"},
		},
		Properties: map[string]string{
			icetable.ParquetRowGroupLimitKey: "700",
			icetable.ParquetPageSizeBytesKey: "512",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tbl = tabletest.Append(t, tbl, directRows(t, tbl, 0, 1000))
	tbl = tabletest.Append(t, tbl, directRows(t, tbl, 1000, 2000))
	txn := tbl.NewTransaction()
	us := txn.UpdateSchema(true, false).
		RenameColumn([]string{"k"}, "kind").
		UpdateColumn([]string{"n"}, icetable.ColumnUpdate{FieldType: iceberg.Optional[iceberg.Type]{Valid: true, Val: iceberg.PrimitiveTypes.Int64}}).
		UpdateColumn([]string{"f"}, icetable.ColumnUpdate{FieldType: iceberg.Optional[iceberg.Type]{Valid: true, Val: iceberg.PrimitiveTypes.Float64}}).
		AddColumn([]string{"x"}, iceberg.PrimitiveTypes.String, "", false, nil)
	if err := us.Commit(); err != nil {
		t.Fatal(err)
	}
	if tbl, err = txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	tabletest.Append(t, tbl, directRows(t, tbl, 2000, 3000))
}

// directRows is rows [from, to) in tbl's current schema.
func directRows(t *testing.T, tbl *icetable.Table, from, to int64) arrow.RecordBatch {
	t.Helper()
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	r := rand.New(rand.NewPCG(uint64(from), 7))
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	null := func(every int) bool { return r.IntN(every) == 0 }
	for id := from; id < to; id++ {
		for c, f := range sc.Fields() {
			fb := b.Field(c)
			if f.Nullable && null(9) {
				fb.AppendNull()
				continue
			}
			switch fb := fb.(type) {
			case *array.Int64Builder:
				switch f.Name {
				case "id":
					fb.Append(id)
				case "u":
					fb.Append(r.Int64N(150) - 20)
				default:
					fb.Append(r.Int64N(9) - 2)
				}
			case *array.Int32Builder:
				fb.Append(r.Int32N(9) - 2)
			case *array.TimestampBuilder:
				fb.Append(arrow.Timestamp(base.Add(time.Duration(id)*37*time.Second + time.Duration(r.IntN(5000))*time.Millisecond).UnixMicro()))
			case *array.StringBuilder:
				fb.Append([]string{"a", "b", "c", "", "déjà vu"}[r.IntN(5)] + f.Name[:1])
			case *array.Float32Builder:
				fb.Append(float32(r.IntN(40)) / 4)
			case *array.Float64Builder:
				fb.Append(float64(r.IntN(40)) / 4)
			case *array.Decimal128Builder:
				fb.Append(decimal128.FromI64(r.Int64N(2000) - 500))
			case *array.BooleanBuilder:
				fb.Append(r.IntN(2) == 0)
			default:
				t.Fatalf("no value for %s", f.Type)
			}
		}
	}
	return b.NewRecordBatch()
}

// directSpecs cover the kinds of columns as dimensions and measures, the
// filter's operators with nulls (a lone non-null test included), renamed,
// promoted and added columns, and every kind of window. (Filters stay off the promoted columns: iceberg-go
// v0.7.0 fails to plan with them, reading their old 4-byte bounds as 8.)
func directSpecs() []Spec {
	all := []Measure{
		{Name: "c", Fn: FnCount}, {Name: "cx", Fn: FnCount, Column: "x"},
		{Name: "sn", Fn: FnSum, Column: "n"}, {Name: "samt", Fn: FnSum, Column: "amt"},
		{Name: "af", Fn: FnAvg, Column: "f"}, {Name: "mink", Fn: FnMin, Column: "kind"},
		{Name: "maxamt", Fn: FnMax, Column: "amt"}, {Name: "maxts", Fn: FnMax, Column: "ts"},
		{Name: "du", Fn: FnCountDistinct, Column: "u"}, {Name: "dk", Fn: FnApproxCountDistinct, Column: "kind"},
		{Name: "df", Fn: FnCountDistinct, Column: "f"}, {Name: "dok", Fn: FnCountDistinct, Column: "ok"},
	}
	hour := Window{Size: Duration(time.Hour)}
	return []Spec{
		{Name: "all", Time: "ts", Window: hour, Dimensions: []string{"kind"}, Measures: all},
		{Name: "filtered", Time: "ts", Window: Window{Size: Duration(time.Hour), Slide: Duration(15 * time.Minute)},
			Filter: "kind != 'ak' and u >= 1", Dimensions: []string{"ok", "amt"}, Measures: all, Top: &Top{N: 2, By: "c", Within: []string{"ok"}}},
		{Name: "nulls", Time: "ts", Window: Window{Size: Duration(24 * time.Hour), TimeZone: "Asia/Shanghai"},
			Filter: "kind = null and x != null and ok = true", Dimensions: []string{"x", "n"}, Measures: all},
		{Name: "floats", Time: "ts", Window: hour, Filter: "d > 2.5 and u < 100 and id >= 5",
			Dimensions: []string{"f", "d"}, Measures: all},
		// Lone non-null filters, which read the column's valid rows only:
		// of a column older files lack, and of one they hold.
		{Name: "notnull_added", Time: "ts", Window: hour, Filter: "x != null", Dimensions: []string{"kind"}, Measures: all},
		{Name: "notnull", Time: "ts", Window: hour, Filter: "kind != null", Dimensions: []string{"amt", "x"}, Measures: all},
		{Name: "notnull_long", Time: "ts", Window: hour, Filter: "u != null", Dimensions: []string{"u", "kind"}, Measures: all},
		{Name: "cumulative", Time: "ts", Window: Window{Size: Duration(24 * time.Hour), Step: Duration(2 * time.Hour)},
			Filter: "ts >= '2026-02-01T05:00:00Z' and kind >= 'b'", Dimensions: []string{"kind"},
			Measures: []Measure{{Name: "c", Fn: FnCount}, {Name: "du", Fn: FnCountDistinct, Column: "u"},
				{Name: "nu", Fn: FnNewUsers, Column: "u"}, {Name: "ru", Fn: FnReturningUsers, Column: "u"}}},
	}
}

// backfillBoth backfills s read through the reader and read directly, and
// fails the test unless both summary tables hold the same rows (states
// included) and the direct read was used as want says.
func backfillBoth(t *testing.T, cat icecat.Catalog, s Spec, o BackfillOptions, wantDirect bool) {
	t.Helper()
	ctx := context.Background()
	var rows [2][]string
	var res [2]Result
	for i, viaReader := range []bool{true, false} {
		a, err := New(ctx, cat, withOutput(s, fmt.Sprintf("%s_%t", s.Output, viaReader)), Options{Logger: quietLogger(), Concurrency: 2})
		if err != nil {
			t.Fatal(err)
		}
		a.viaReader = viaReader
		if res[i], err = a.Backfill(ctx, o); err != nil {
			t.Fatalf("%s, via reader %t: %v", s.Name, viaReader, err)
		}
		if !viaReader && a.lastDirect != wantDirect {
			t.Fatalf("%s: read directly %t, want %t", s.Name, a.lastDirect, wantDirect)
		}
		rows[i] = tableRows(t, cat, fmt.Sprintf("%s_%t", s.Output, viaReader))
	}
	if res[0].SourceRows != res[1].SourceRows || res[0].Groups != res[1].Groups {
		t.Errorf("%s: direct read: %d rows, %d groups; via the reader %d rows, %d groups",
			s.Name, res[1].SourceRows, res[1].Groups, res[0].SourceRows, res[0].Groups)
	}
	if len(rows[0]) == 0 {
		t.Fatalf("%s: no groups: the test tests nothing", s.Name)
	}
	if !slices.Equal(rows[0], rows[1]) {
		t.Fatalf("%s: the direct read differs from the reader's:\n%s", s.Name, diffRows(rows[0], rows[1]))
	}
}

// TestDirectBackfillEqualsReader: a backfill that reads the source's files
// directly computes the same summary table, row for row and state for
// state, as one reading through the reader, whole and ranged, over files
// of several row groups with nulls and an evolved schema; over a source
// with row-level deletes it reads through the reader.
func TestDirectBackfillEqualsReader(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	directSource(t, cat)
	for _, s := range directSpecs() {
		s.Source, s.Output = directSrc, "dws.direct_"+s.Name
		t.Run(s.Name, func(t *testing.T) {
			backfillBoth(t, cat, s, BackfillOptions{}, true)
			if s.Window.Step == 0 {
				ranged := BackfillOptions{From: time.Date(2026, 2, 1, 7, 0, 0, 0, time.UTC), To: time.Date(2026, 2, 1, 20, 0, 0, 0, time.UTC)}
				backfillBoth(t, cat, s, ranged, true)
			}
		})
	}

	// Equality deletes: the direct read declines, the reader applies them.
	tabletest.RowDelta(t, loadTable(t, cat, directSrc), tabletest.IDs(100, 900), nil)
	s := Spec{Name: "deletes", Source: directSrc, Output: "dws.direct_deletes", Time: "ts",
		Window: Window{Size: Duration(time.Hour)}, Dimensions: []string{"kind"}, Filter: "u != 3",
		Measures: []Measure{{Name: "c", Fn: FnCount}, {Name: "s", Fn: FnSum, Column: "amt"}, {Name: "a", Fn: FnAvg, Column: "f"}}}
	backfillBoth(t, cat, s, BackfillOptions{}, false)
}

// TestSortHashes: the bucket sort of long hash lists sorts as slices.Sort
// does, duplicates and all.
func TestSortHashes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 5, 1023, 1024, 5000, 70_000, 300_000} {
		a := make([]uint64, n)
		for i := range a {
			a[i] = r.Uint64()
			if i%7 == 3 {
				a[i] = a[i-1]
			}
			if i%1000 == 999 {
				a[i] >>= 20 // crowd the first bucket
			}
		}
		want := slices.Clone(a)
		slices.Sort(want)
		sortHashes(a)
		if !slices.Equal(a, want) {
			t.Fatalf("%d hashes: not sorted as slices.Sort sorts them", n)
		}
	}
}
