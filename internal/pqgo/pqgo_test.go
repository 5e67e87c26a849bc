package pqgo_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	pqschema "github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/pqgo"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/source/gen"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// ---- helpers ---------------------------------------------------------

func ensure(t *testing.T, cat icecat.Catalog, spec table.Spec) *icetable.Table {
	t.Helper()
	tbl, err := table.Ensure(context.Background(), cat, spec)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func arrowSchema(t *testing.T, tbl *icetable.Table) *arrow.Schema {
	t.Helper()
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// collect is a Sink keeping one table's batches.
type collect struct {
	writer.Sink // the generator only opens and writes

	table string
	sc    *arrow.Schema
	recs  []arrow.RecordBatch
}

func (c *collect) Open(tbl, source string) (table.Positions, *arrow.Schema, error) {
	return nil, c.sc, nil
}

func (c *collect) Write(b writer.Batch) error {
	if b.Record == nil {
		return nil
	}
	if b.Table != c.table {
		b.Record.Release()
		return nil
	}
	c.recs = append(c.recs, b.Record)
	return nil
}

func events(t *testing.T, sc *arrow.Schema, rowsPerPartition int64, start time.Time) []arrow.RecordBatch {
	t.Helper()
	cfg := gen.DefaultConfig()
	cfg.Partitions = 4
	cfg.RowsPerPartition = rowsPerPartition
	cfg.BadFraction = 0
	cfg.OrdersTable = ""
	cfg.BatchRows = 4096
	if !start.IsZero() {
		cfg.StartTime = start
	}
	g, err := gen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &collect{table: "ods.events", sc: sc}
	if err := g.Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, r := range c.recs {
			r.Release()
		}
	})
	return c.recs
}

func writePqgo(t *testing.T, tbl *icetable.Table, sc *arrow.Schema, recs []arrow.RecordBatch, opts pqgo.Options) []iceberg.DataFile {
	t.Helper()
	files, err := pqgo.Write(context.Background(), tbl, sc, recs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func writePqarrow(t *testing.T, tbl *icetable.Table, sc *arrow.Schema, recs []arrow.RecordBatch, opts ...icetable.WriteRecordOption) []iceberg.DataFile {
	t.Helper()
	seq := func(yield func(arrow.RecordBatch, error) bool) {
		for _, r := range recs {
			r.Retain() // WriteRecords releases what it consumes
			if !yield(r, nil) {
				return
			}
		}
	}
	var files []iceberg.DataFile
	for df, err := range icetable.WriteRecords(context.Background(), tbl, sc, seq, opts...) {
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, df)
	}
	return files
}

func commit(t *testing.T, tbl *icetable.Table, files []iceberg.DataFile) *icetable.Table {
	t.Helper()
	ctx := context.Background()
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

// canon renders row i of arr for comparison across Arrow types that carry
// the same Iceberg value (string/large string, uuid/fixed, ...).
func canon(arr arrow.Array, i int) string {
	if arr.IsNull(i) {
		return "null"
	}
	if ext, ok := arr.(array.ExtensionArray); ok {
		arr = ext.Storage()
	}
	switch a := arr.(type) {
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.Int32:
		return strconv.Itoa(int(a.Value(i)))
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Float32:
		return strconv.FormatFloat(float64(a.Value(i)), 'g', -1, 32)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Date32:
		return "d" + strconv.Itoa(int(a.Value(i)))
	case *array.Time64:
		return "t" + strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Timestamp:
		return "ts" + strconv.FormatInt(int64(a.Value(i)), 10) + a.DataType().(*arrow.TimestampType).TimeZone
	case *array.String:
		return strconv.Quote(a.Value(i))
	case *array.LargeString:
		return strconv.Quote(a.Value(i))
	case *array.Binary:
		return "x" + hex.EncodeToString(a.Value(i))
	case *array.LargeBinary:
		return "x" + hex.EncodeToString(a.Value(i))
	case *array.FixedSizeBinary:
		return "x" + hex.EncodeToString(a.Value(i))
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Struct:
		parts := make([]string, a.NumField())
		for k := range parts {
			parts[k] = canon(a.Field(k), i)
		}
		return "{" + strings.Join(parts, ",") + "}"
	case *array.Map:
		s, e := a.ValueOffsets(i)
		var parts []string
		for j := s; j < e; j++ {
			parts = append(parts, canon(a.Keys(), int(j))+":"+canon(a.Items(), int(j)))
		}
		return "map[" + strings.Join(parts, ",") + "]"
	case array.ListLike:
		s, e := a.ValueOffsets(i)
		var parts []string
		for j := s; j < e; j++ {
			parts = append(parts, canon(a.ListValues(), int(j)))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprintf("?%s:%s", arr.DataType(), arr.ValueStr(i))
}

func rowsOf(recs []arrow.RecordBatch) []string {
	var out []string
	for _, r := range recs {
		for i := range int(r.NumRows()) {
			parts := make([]string, r.NumCols())
			for c := range parts {
				parts[c] = canon(r.Column(c), i)
			}
			out = append(out, strings.Join(parts, "|"))
		}
	}
	sort.Strings(out)
	return out
}

func scan(t *testing.T, tbl *icetable.Table, opts ...icetable.ScanOption) []string {
	t.Helper()
	_, it, err := tbl.Scan(opts...).ToArrowRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var recs []arrow.RecordBatch
	for r, err := range it {
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	rows := rowsOf(recs)
	for _, r := range recs {
		r.Release()
	}
	return rows
}

func sameRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: row %d differs:\n got %s\nwant %s", what, i, got[i], want[i])
		}
	}
}

func partKey(df iceberg.DataFile) string {
	p := df.Partition()
	keys := slices.Sorted(maps.Keys(p))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%d=%#v;", k, p[k])
	}
	return b.String()
}

func emptyNil[M ~map[K]V, K comparable, V any](m M) M {
	if len(m) == 0 {
		return nil
	}
	return m
}

// sameStats compares the DataFiles pqgo and pqarrow wrote for the same
// rows, one file per partition: everything but paths and sizes.
//
// One difference is expected: when a file's smallest string or binary is
// the empty value, pqarrow may report the next larger one as the lower
// bound — arrow-go's byte-array statistics take an empty (nil) minimum
// for "unset" when merging batches, so the bound excludes rows that are
// in the file. pqgo reports no lower bound then (iceberg-go drops empty
// bounds), which is correct; TestEmptyMinimum checks it.
func sameStats(t *testing.T, tbl *icetable.Table, got, want []iceberg.DataFile) {
	t.Helper()
	emptyMinOK := func(id int) bool {
		typ, ok := tbl.Schema().FindTypeByID(id)
		if !ok {
			return false
		}
		switch typ.(type) {
		case iceberg.StringType, iceberg.BinaryType:
			return true
		}
		return false
	}
	index := func(files []iceberg.DataFile) map[string]iceberg.DataFile {
		m := map[string]iceberg.DataFile{}
		for _, f := range files {
			k := partKey(f)
			if _, dup := m[k]; dup {
				t.Fatalf("two files for partition %s; the comparison wants one", k)
			}
			m[k] = f
		}
		return m
	}
	g, w := index(got), index(want)
	if !slices.Equal(slices.Sorted(maps.Keys(g)), slices.Sorted(maps.Keys(w))) {
		t.Fatalf("partitions %v, want %v", slices.Sorted(maps.Keys(g)), slices.Sorted(maps.Keys(w)))
	}
	for k, wf := range w {
		gf := g[k]
		where := "partition " + k
		if gf.Count() != wf.Count() {
			t.Errorf("%s: count %d, want %d", where, gf.Count(), wf.Count())
		}
		if gf.ContentType() != wf.ContentType() || gf.FileFormat() != wf.FileFormat() || gf.SpecID() != wf.SpecID() {
			t.Errorf("%s: content/format/spec %v/%v/%v, want %v/%v/%v", where, gf.ContentType(), gf.FileFormat(), gf.SpecID(), wf.ContentType(), wf.FileFormat(), wf.SpecID())
		}
		if !maps.Equal(gf.ValueCounts(), wf.ValueCounts()) {
			t.Errorf("%s: value counts %v, want %v", where, gf.ValueCounts(), wf.ValueCounts())
		}
		if !maps.Equal(gf.NullValueCounts(), wf.NullValueCounts()) {
			t.Errorf("%s: null counts %v, want %v", where, gf.NullValueCounts(), wf.NullValueCounts())
		}
		if !maps.Equal(emptyNil(gf.NaNValueCounts()), emptyNil(wf.NaNValueCounts())) {
			t.Errorf("%s: NaN counts %v, want %v", where, gf.NaNValueCounts(), wf.NaNValueCounts())
		}
		if !slices.Equal(slices.Sorted(maps.Keys(gf.ColumnSizes())), slices.Sorted(maps.Keys(wf.ColumnSizes()))) {
			t.Errorf("%s: column sizes for %v, want %v", where, slices.Sorted(maps.Keys(gf.ColumnSizes())), slices.Sorted(maps.Keys(wf.ColumnSizes())))
		}
		lower := maps.Clone(gf.LowerBoundValues())
		for id, v := range wf.LowerBoundValues() {
			if _, ok := lower[id]; !ok && emptyMinOK(id) {
				lower[id] = v
			}
		}
		for _, b := range []struct {
			name      string
			got, want map[int][]byte
		}{{"lower", lower, wf.LowerBoundValues()}, {"upper", gf.UpperBoundValues(), wf.UpperBoundValues()}} {
			if !maps.EqualFunc(b.got, b.want, bytes.Equal) {
				t.Errorf("%s: %s bounds\n got %s\nwant %s", where, b.name, fmtBounds(b.got), fmtBounds(b.want))
			}
		}
		if !maps.EqualFunc(gf.Partition(), wf.Partition(), func(a, b any) bool { return fmt.Sprintf("%T %#v", a, a) == fmt.Sprintf("%T %#v", b, b) }) {
			t.Errorf("%s: partition %#v, want %#v", where, gf.Partition(), wf.Partition())
		}
		if (gf.SortOrderID() == nil) != (wf.SortOrderID() == nil) || (gf.SortOrderID() != nil && *gf.SortOrderID() != *wf.SortOrderID()) {
			t.Errorf("%s: sort order id %v, want %v", where, gf.SortOrderID(), wf.SortOrderID())
		}
		if len(gf.SplitOffsets()) == 0 || gf.SplitOffsets()[0] != 4 {
			t.Errorf("%s: split offsets %v", where, gf.SplitOffsets())
		}
	}
}

func fmtBounds(m map[int][]byte) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%d:%x ", k, m[k])
	}
	return b.String()
}

// ---- events ----------------------------------------------------------

func TestEvents(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	tbl := ensure(t, cat, gen.EventsSpec("ods.events"))
	sc := arrowSchema(t, tbl)
	// The clock runs 23:58:30 to 00:03:30 (30k offsets of 10 ms): rows over two
	// days (partitions).
	recs := events(t, sc, 30_000, time.Date(2026, 1, 1, 23, 58, 30, 0, time.UTC))

	files := writePqgo(t, tbl, sc, recs, pqgo.Options{})
	want := writePqarrow(t, tbl, sc, recs)
	if len(files) != 2 {
		t.Fatalf("%d files, want 2 (one per day)", len(files))
	}
	sameStats(t, tbl, files, want)

	tbl = commit(t, tbl, files)
	input := rowsOf(recs)
	sameRows(t, "full scan", scan(t, tbl), input)

	// A partition filter: the scan prunes by partition value and bounds.
	day2 := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	filter := iceberg.GreaterThanEqual(iceberg.Reference("event_time"), day2.Format(time.RFC3339))
	var wantRows []string
	for _, r := range recs {
		ts := r.Column(1).(*array.Timestamp)
		for i := range int(r.NumRows()) {
			if int64(ts.Value(i)) >= day2.UnixMicro() {
				wantRows = append(wantRows, i2s(r, i))
			}
		}
	}
	sort.Strings(wantRows)
	sameRows(t, "filtered scan", scan(t, tbl, icetable.WithRowFilter(filter)), wantRows)

	// Planning prunes the other day's file.
	tasks, err := tbl.Scan(icetable.WithRowFilter(filter)).PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 {
		t.Errorf("filtered scan plans %d files, want 1", len(tasks))
	}
	// Bounds prune too: an event_id above the maximum plans nothing.
	none := iceberg.GreaterThan(iceberg.Reference("event_id"), int64(math.MaxInt64-1))
	if tasks, err := tbl.Scan(icetable.WithRowFilter(none)).PlanFiles(ctx); err != nil || len(tasks) != 0 {
		t.Errorf("event_id filter plans %d files (err %v), want 0", len(tasks), err)
	}
}

func i2s(r arrow.RecordBatch, i int) string {
	parts := make([]string, r.NumCols())
	for c := range parts {
		parts[c] = canon(r.Column(c), i)
	}
	return strings.Join(parts, "|")
}

// ---- all types ---------------------------------------------------------

func allTypesSpec(name string) table.Spec {
	return table.Spec{
		Name: name,
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "b", Type: "boolean"},
			{Name: "i", Type: "int"},
			{Name: "l", Type: "long"},
			{Name: "f", Type: "float"},
			{Name: "d", Type: "double"},
			{Name: "dt", Type: "date"},
			{Name: "tm", Type: "time"},
			{Name: "ts", Type: "timestamp"},
			{Name: "tstz", Type: "timestamptz"},
			{Name: "s", Type: "string"},
			{Name: "u", Type: "uuid"},
			{Name: "bin", Type: "binary"},
			{Name: "fx", Type: "fixed[5]"},
			{Name: "dec9", Type: "decimal(9,2)"},
			{Name: "dec18", Type: "decimal(18,4)"},
			{Name: "req_s", Type: "string", Required: true},
			{Name: "req_i", Type: "int", Required: true},
		},
	}
}

var strs = []string{
	"", "a", "abc", "zürich", "日本語のテキストです、長い文字列です", "a long ascii string over sixteen chars",
	"\U0010FFFF\U0010FFFF\U0010FFFF\U0010FFFF\U0010FFFF\U0010FFFF\U0010FFFF\U0010FFFF\U0010FFFF\U0010FFFF\U0010FFFF\U0010FFFF\U0010FFFF\U0010FFFF\U0010FFFF\U0010FFFF\U0010FFFFz",
	"\uD7FF\uD7FF\uD7FF\uD7FF\uD7FF\uD7FF\uD7FF\uD7FF\uD7FF\uD7FF\uD7FF\uD7FF\uD7FF\uD7FF\uD7FF\uD7FF\uD7FFy",
	"event", "zzzzzzzzzzzzzzzzzzzzzzzzzzz",
}

// allTypes builds n rows of the all-types schema in batches of batch rows;
// null is the fraction of nulls in optional columns.
func allTypes(t *testing.T, sc *arrow.Schema, n, batch int, null float64, seed uint64) []arrow.RecordBatch {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	mem := memory.DefaultAllocator
	var recs []arrow.RecordBatch
	base := time.Date(2025, 11, 30, 22, 0, 0, 0, time.UTC).UnixMicro()
	for start := 0; start < n; start += batch {
		rb := array.NewRecordBuilder(mem, sc)
		for k := start; k < min(start+batch, n); k++ {
			for c, f := range sc.Fields() {
				fb := rb.Field(c)
				if f.Nullable && rng.Float64() < null {
					fb.AppendNull()
					continue
				}
				switch f.Name {
				case "id":
					fb.(*array.Int64Builder).Append(int64(k))
				case "b":
					fb.(*array.BooleanBuilder).Append(rng.IntN(2) == 0)
				case "i", "req_i":
					fb.(*array.Int32Builder).Append(int32(rng.IntN(2000) - 1000))
				case "l":
					fb.(*array.Int64Builder).Append(rng.Int64() - math.MaxInt64/2)
				case "f":
					v := float32(rng.NormFloat64() * 100)
					switch rng.IntN(50) {
					case 0:
						v = float32(math.NaN())
					case 1:
						v = float32(math.Copysign(0, -1))
					}
					fb.(*array.Float32Builder).Append(v)
				case "d":
					v := rng.NormFloat64() * 1e6
					switch rng.IntN(50) {
					case 0:
						v = math.NaN()
					case 1:
						v = 0
					case 2:
						v = math.Inf(-1)
					}
					fb.(*array.Float64Builder).Append(v)
				case "dt":
					fb.(*array.Date32Builder).Append(arrow.Date32(rng.IntN(40000) - 20000))
				case "tm":
					fb.(*array.Time64Builder).Append(arrow.Time64(rng.Int64N(86_400_000_000)))
				case "ts":
					fb.(*array.TimestampBuilder).Append(arrow.Timestamp(rng.Int64N(1<<50) - 1<<49))
				case "tstz":
					// about three months around base, for month/day/hour partitions
					fb.(*array.TimestampBuilder).Append(arrow.Timestamp(base + rng.Int64N(90*86_400_000_000) - 45*86_400_000_000))
				case "s", "req_s":
					fb.(*array.StringBuilder).Append(strs[rng.IntN(len(strs))] + strconv.Itoa(rng.IntN(3)))
				case "u":
					var u uuid.UUID
					for j := range u {
						u[j] = byte(rng.UintN(256))
					}
					fb.(*extensions.UUIDBuilder).Append(u)
				case "bin":
					b := make([]byte, rng.IntN(40))
					for j := range b {
						b[j] = byte(rng.UintN(256))
					}
					if rng.IntN(10) == 0 {
						b = bytes.Repeat([]byte{0xff}, 20)
					}
					fb.(*array.BinaryBuilder).Append(b)
				case "fx":
					b := make([]byte, 5)
					for j := range b {
						b[j] = byte(rng.UintN(256))
					}
					fb.(*array.FixedSizeBinaryBuilder).Append(b)
				case "dec9":
					fb.(*array.Decimal128Builder).Append(decimal128.FromI64(rng.Int64N(2_000_000_000) - 1_000_000_000))
				case "dec18":
					fb.(*array.Decimal128Builder).Append(decimal128.FromI64(rng.Int64N(2e17) - 1e17))
				default:
					t.Fatalf("no generator for %s", f.Name)
				}
			}
		}
		recs = append(recs, rb.NewRecordBatch())
		rb.Release()
	}
	t.Cleanup(func() {
		for _, r := range recs {
			r.Release()
		}
	})
	return recs
}

func TestAllTypes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		part  []table.PartitionField
		props map[string]string
		rows  int
		opts  pqgo.Options
	}{
		{name: "unpartitioned"},
		{name: "day", part: []table.PartitionField{{Column: "tstz", Transform: "day"}}},
		{name: "month_bucket", part: []table.PartitionField{{Column: "tstz", Transform: "month"}, {Column: "i", Transform: "bucket[3]"}}},
		{name: "year_dt_identity_b", part: []table.PartitionField{{Column: "dt", Transform: "year"}, {Column: "b"}}},
		{name: "truncate_s", part: []table.PartitionField{{Column: "s", Transform: "truncate[1]"}}},
		{name: "identity_s", part: []table.PartitionField{{Column: "req_s"}}},
		{name: "hour", part: []table.PartitionField{{Column: "tstz", Transform: "hour"}}, rows: 500},
		{name: "bucket_uuid_dec", part: []table.PartitionField{{Column: "u", Transform: "bucket[2]"}, {Column: "dec9", Transform: "bucket[2]"}}},
		{name: "identity_various", part: []table.PartitionField{{Column: "dt"}, {Column: "fx", Transform: "bucket[2]"}, {Column: "bin", Transform: "truncate[1]"}}, rows: 300},
		{name: "truncate_num", part: []table.PartitionField{{Column: "i", Transform: "truncate[300]"}, {Column: "dec9", Transform: "truncate[400000000]"}}},
		{name: "identity_misc", part: []table.PartitionField{{Column: "ts"}, {Column: "u"}, {Column: "dec18"}, {Column: "bin"}, {Column: "d"}, {Column: "l", Transform: "bucket[5]"}, {Column: "tm", Transform: "void"}}, rows: 150},
		{name: "metrics_modes", props: map[string]string{
			"write.metadata.metrics.default":  "truncate(4)",
			"write.metadata.metrics.column.s": "full",
			"write.metadata.metrics.column.l": "counts",
			"write.metadata.metrics.column.d": "none",
		}},
		{name: "snappy", props: map[string]string{"write.parquet.compression-codec": "snappy"}},
		{name: "snappy_fast", props: map[string]string{"write.parquet.compression-codec": "snappy"}, opts: pqgo.Options{FastSnappy: true}},
		{name: "gzip_v1", props: map[string]string{"write.parquet.compression-codec": "gzip", "write.parquet.page-version": "1"}},
		{name: "uncompressed_nodict", props: map[string]string{"write.parquet.compression-codec": "uncompressed", "parquet.enable.dictionary": "false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cat := tabletest.OpenSQLite(t)
			spec := allTypesSpec("t.all")
			spec.Partition = tc.part
			spec.Properties = tc.props
			tbl := ensure(t, cat, spec)
			sc := arrowSchema(t, tbl)
			rows := cmp.Or(tc.rows, 3000)
			recs := allTypes(t, sc, rows, 700, 0.15, 1)
			files := writePqgo(t, tbl, sc, recs, tc.opts)
			want := writePqarrow(t, tbl, sc, recs)
			sameStats(t, tbl, files, want)
			tbl = commit(t, tbl, files)
			sameRows(t, "scan", scan(t, tbl), rowsOf(recs))
		})
	}
}

// TestEmptyMinimum: a file whose smallest value is the empty string has
// no lower bound (an empty bound is dropped, as iceberg-go drops it), so
// a scan for the empty string finds it.
func TestEmptyMinimum(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	tbl := ensure(t, cat, table.Spec{Name: "t.empty", Schema: []table.Field{{Name: "s", Type: "string"}, {Name: "bin", Type: "binary"}}})
	sc := arrowSchema(t, tbl)
	var recs []arrow.RecordBatch
	for _, v := range []string{"b", "", "c"} {
		rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		rb.Field(0).(*array.StringBuilder).Append(v)
		rb.Field(1).(*array.BinaryBuilder).Append([]byte(v))
		recs = append(recs, rb.NewRecordBatch())
		rb.Release()
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	files := writePqgo(t, tbl, sc, recs, pqgo.Options{})
	if lo := files[0].LowerBoundValues(); len(lo) != 0 {
		t.Errorf("lower bounds %s, want none", fmtBounds(lo))
	}
	if want := writePqarrow(t, tbl, sc, recs); len(want[0].LowerBoundValues()) != 0 {
		t.Logf("pqarrow's lower bounds for the same rows: %s (excludes the empty value)", fmtBounds(want[0].LowerBoundValues()))
	}
	tbl = commit(t, tbl, files)
	got := scan(t, tbl, icetable.WithRowFilter(iceberg.EqualTo(iceberg.Reference("s"), "")))
	sameRows(t, "s = ''", got, []string{`""|x`})
}

func TestNulls(t *testing.T) {
	// All-null and no-null optional columns.
	cat := tabletest.OpenSQLite(t)
	tbl := ensure(t, cat, allTypesSpec("t.nulls"))
	sc := arrowSchema(t, tbl)
	for _, null := range []float64{0, 1} {
		recs := allTypes(t, sc, 500, 200, null, 2)
		files := writePqgo(t, tbl, sc, recs, pqgo.Options{})
		sameStats(t, tbl, files, writePqarrow(t, tbl, sc, recs))
	}
}

func nestedSpec(name string) table.Spec {
	return table.Spec{
		Name: name,
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "st", Type: "struct", Fields: []table.Field{
				{Name: "a", Type: "int"},
				{Name: "b", Type: "string", Required: true},
				{Name: "inner", Type: "struct", Fields: []table.Field{{Name: "x", Type: "double"}}},
			}},
			{Name: "tags", Type: "list", Element: &table.Field{Type: "string"}},
			{Name: "nums", Type: "list", Required: true, Element: &table.Field{Type: "long", Required: true}},
			{Name: "attrs", Type: "map", Key: &table.Field{Type: "string"}, Value: &table.Field{Type: "double"}},
			{Name: "pts", Type: "list", Element: &table.Field{Type: "struct", Fields: []table.Field{{Name: "x", Type: "int"}, {Name: "y", Type: "int"}}}},
			{Name: "ll", Type: "list", Element: &table.Field{Type: "list", Element: &table.Field{Type: "int"}}},
			{Name: "day", Type: "date", Required: true},
		},
		Partition: []table.PartitionField{{Column: "st.a", Transform: "bucket[2]", Name: "st_a_bucket"}},
	}
}

// nestedRows builds three batches (the last a slice) of the nested schema.
func nestedRows(t *testing.T, sc *arrow.Schema) []arrow.RecordBatch {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 3))
	mem := memory.DefaultAllocator
	var recs []arrow.RecordBatch
	for b := 0; b < 3; b++ {
		rb := array.NewRecordBuilder(mem, sc)
		for k := 0; k < 400; k++ {
			rb.Field(0).(*array.Int64Builder).Append(int64(b*1000 + k))
			st := rb.Field(1).(*array.StructBuilder)
			if rng.IntN(6) == 0 {
				st.AppendNull()
			} else {
				st.Append(true)
				if rng.IntN(4) == 0 {
					st.FieldBuilder(0).AppendNull()
				} else {
					st.FieldBuilder(0).(*array.Int32Builder).Append(int32(rng.IntN(100)))
				}
				st.FieldBuilder(1).(*array.StringBuilder).Append(strs[rng.IntN(len(strs))])
				in := st.FieldBuilder(2).(*array.StructBuilder)
				if rng.IntN(4) == 0 {
					in.AppendNull()
				} else {
					in.Append(true)
					if rng.IntN(3) == 0 {
						in.FieldBuilder(0).AppendNull()
					} else {
						in.FieldBuilder(0).(*array.Float64Builder).Append(rng.Float64())
					}
				}
			}
			tags := rb.Field(2).(*array.ListBuilder)
			switch rng.IntN(4) {
			case 0:
				tags.AppendNull()
			case 1:
				tags.AppendEmptyValue()
			default:
				tags.Append(true)
				for range rng.IntN(4) + 1 {
					if rng.IntN(5) == 0 {
						tags.ValueBuilder().AppendNull()
					} else {
						tags.ValueBuilder().(*array.StringBuilder).Append(strs[rng.IntN(len(strs))])
					}
				}
			}
			nums := rb.Field(3).(*array.ListBuilder)
			nums.Append(true)
			for range rng.IntN(3) {
				nums.ValueBuilder().(*array.Int64Builder).Append(rng.Int64N(1000) - 500)
			}
			attrs := rb.Field(4).(*array.MapBuilder)
			if rng.IntN(5) == 0 {
				attrs.AppendNull()
			} else {
				attrs.Append(true)
				for j := range rng.IntN(3) {
					attrs.KeyBuilder().(*array.StringBuilder).Append("k" + strconv.Itoa(j))
					if rng.IntN(4) == 0 {
						attrs.ItemBuilder().AppendNull()
					} else {
						attrs.ItemBuilder().(*array.Float64Builder).Append(rng.Float64())
					}
				}
			}
			pts := rb.Field(5).(*array.ListBuilder)
			if rng.IntN(5) == 0 {
				pts.AppendNull()
			} else {
				pts.Append(true)
				ps := pts.ValueBuilder().(*array.StructBuilder)
				for range rng.IntN(3) {
					if rng.IntN(5) == 0 {
						ps.AppendNull()
						continue
					}
					ps.Append(true)
					ps.FieldBuilder(0).(*array.Int32Builder).Append(int32(rng.IntN(10)))
					if rng.IntN(3) == 0 {
						ps.FieldBuilder(1).AppendNull()
					} else {
						ps.FieldBuilder(1).(*array.Int32Builder).Append(int32(rng.IntN(10)))
					}
				}
			}
			ll := rb.Field(6).(*array.ListBuilder)
			if rng.IntN(5) == 0 {
				ll.AppendNull()
			} else {
				ll.Append(true)
				inner := ll.ValueBuilder().(*array.ListBuilder)
				for range rng.IntN(3) {
					switch rng.IntN(4) {
					case 0:
						inner.AppendNull()
					case 1:
						inner.AppendEmptyValue()
					default:
						inner.Append(true)
						for range rng.IntN(3) + 1 {
							if rng.IntN(4) == 0 {
								inner.ValueBuilder().AppendNull()
							} else {
								inner.ValueBuilder().(*array.Int32Builder).Append(int32(rng.IntN(50)))
							}
						}
					}
				}
			}
			rb.Field(7).(*array.Date32Builder).Append(arrow.Date32(20000 + rng.IntN(3)))
		}
		recs = append(recs, rb.NewRecordBatch())
		rb.Release()
	}
	t.Cleanup(func() {
		for _, r := range recs {
			r.Release()
		}
	})
	// a slice, to exercise offsets
	sliced := recs[2].NewSlice(17, 333)
	t.Cleanup(sliced.Release)
	return append(recs[:2:2], sliced)
}

func TestNested(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	tbl := ensure(t, cat, nestedSpec("t.nested"))
	sc := arrowSchema(t, tbl)
	recs := nestedRows(t, sc)

	files := writePqgo(t, tbl, sc, recs, pqgo.Options{})
	want := writePqarrow(t, tbl, sc, recs)
	sameStats(t, tbl, files, want)
	tbl = commit(t, tbl, files)
	sameRows(t, "scan", scan(t, tbl), rowsOf(recs))
}

func TestRolling(t *testing.T) {
	// Small target files and row groups: several files per partition,
	// several row groups per file; all rows read back.
	cat := tabletest.OpenSQLite(t)
	spec := gen.EventsSpec("ods.events")
	spec.Properties = map[string]string{"write.target-file-size-bytes": "400000", "write.parquet.row-group-limit": "10000"}
	tbl := ensure(t, cat, spec)
	sc := arrowSchema(t, tbl)
	recs := events(t, sc, 25_000, time.Time{})
	files := writePqgo(t, tbl, sc, recs, pqgo.Options{UnitRows: 4096})
	if len(files) < 3 {
		t.Fatalf("%d files, want several", len(files))
	}
	var rows int64
	for _, f := range files {
		rows += f.Count()
		if f.FileSizeBytes() > 400000+2<<20 {
			t.Errorf("file of %d bytes for a 400 kB target", f.FileSizeBytes())
		}
		offs := f.SplitOffsets()
		if int64(len(offs)) < (f.Count()+9999)/10000 || !slices.IsSorted(offs) {
			t.Errorf("file of %d rows has split offsets %v", f.Count(), offs)
		}
	}
	if rows != 100_000 {
		t.Errorf("%d rows in files, want 100000", rows)
	}
	tbl = commit(t, tbl, files)
	sameRows(t, "scan", scan(t, tbl), rowsOf(recs))
}

func TestSorted(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	spec := allTypesSpec("t.sorted")
	spec.Sort = []table.SortField{{Column: "i"}, {Column: "s", Direction: "desc"}}
	spec.Partition = []table.PartitionField{{Column: "b"}}
	tbl := ensure(t, cat, spec)
	sc := arrowSchema(t, tbl)
	recs := allTypes(t, sc, 2000, 1000, 0.1, 4)
	files := writePqgo(t, tbl, sc, recs, pqgo.Options{})
	sameStats(t, tbl, files, writePqarrow(t, tbl, sc, recs))
	tbl = commit(t, tbl, files)
	sameRows(t, "scan", scan(t, tbl), rowsOf(recs))
}

func TestUnsupported(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	for _, spec := range []table.Spec{
		{Name: "t.dec38", Schema: []table.Field{{Name: "d", Type: "decimal(38,10)"}}},
		{Name: "t.lz4", Schema: []table.Field{{Name: "a", Type: "int"}}, Properties: map[string]string{"write.parquet.compression-codec": "lzo"}},
		{Name: "t.bloom", Schema: []table.Field{{Name: "a", Type: "int"}}, Properties: map[string]string{"write.parquet.bloom-filter-enabled.column.a": "true"}},
	} {
		tbl := ensure(t, cat, spec)
		sc := arrowSchema(t, tbl)
		if err := pqgo.Supported(tbl, sc); !errors.Is(err, pqgo.ErrUnsupported) {
			t.Errorf("%s: Supported = %v, want ErrUnsupported", spec.Name, err)
		}
		if _, err := pqgo.Write(context.Background(), tbl, sc, nil, pqgo.Options{}); !errors.Is(err, pqgo.ErrUnsupported) {
			t.Errorf("%s: Write = %v, want ErrUnsupported", spec.Name, err)
		}
	}
	// An Arrow schema that is not the table's.
	tbl := ensure(t, cat, table.Spec{Name: "t.other", Schema: []table.Field{{Name: "a", Type: "int"}}})
	other := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: arrow.MetadataFrom(map[string]string{"PARQUET:field_id": "1"})}}, nil)
	if err := pqgo.Supported(tbl, other); !errors.Is(err, pqgo.ErrUnsupported) {
		t.Errorf("mismatched Arrow schema: Supported = %v, want ErrUnsupported", err)
	}
}

// ---- file layout -------------------------------------------------------

// parquetLayout describes every node of a data file's Parquet schema, as
// arrow-go (iceberg-go's reader) reads it: path, repetition, physical and
// logical type, field id.
func parquetLayout(t *testing.T, tbl *icetable.Table, df iceberg.DataFile) (nodes []string, createdBy string) {
	t.Helper()
	fsys, err := tbl.FS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Open(df.FilePath())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	rdr, err := file.NewParquetReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdr.Close() }()
	var walk func(n pqschema.Node, path string)
	walk = func(n pqschema.Node, path string) {
		if path != "" {
			path += "."
		}
		path += n.Name()
		desc := fmt.Sprintf("%s rep=%s id=%d logical=%s", path, n.RepetitionType(), n.FieldID(), n.LogicalType())
		switch n := n.(type) {
		case *pqschema.PrimitiveNode:
			// parquet-go also sets type_length (in bits) on non-FLBA
			// types, where readers ignore it
			desc += fmt.Sprintf(" phys=%s", n.PhysicalType())
			if n.PhysicalType() == parquet.Types.FixedLenByteArray {
				desc += fmt.Sprintf(" len=%d", n.TypeLength())
			}
		case *pqschema.GroupNode:
			for i := range n.NumFields() {
				walk(n.Field(i), path)
			}
		}
		nodes = append(nodes, desc)
	}
	root := rdr.MetaData().Schema.Root()
	for i := range root.NumFields() {
		walk(root.Field(i), "")
	}
	return nodes, rdr.MetaData().GetCreatedBy()
}

// TestFileLayout: the Parquet schema of pqgo's files is pqarrow's — same
// paths, repetitions, physical and logical types and field ids on every
// node (a field id on every column) — except decimals of precision ≤ 18,
// INT32/INT64 instead of FIXED_LEN_BYTE_ARRAY, and integers, which
// carry an INT(bits, signed) annotation in both.
func TestFileLayout(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	spec := allTypesSpec("t.layout")
	spec.Schema = append(spec.Schema,
		table.Field{Name: "st", Type: "struct", Fields: []table.Field{{Name: "a", Type: "int"}, {Name: "b", Type: "string", Required: true}}},
		table.Field{Name: "tags", Type: "list", Element: &table.Field{Type: "string"}},
		table.Field{Name: "attrs", Type: "map", Key: &table.Field{Type: "string"}, Value: &table.Field{Type: "long", Required: true}},
	)
	tbl := ensure(t, cat, spec)
	sc := arrowSchema(t, tbl)
	rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	for i, f := range sc.Fields() {
		if f.Nullable {
			rb.Field(i).AppendNull()
		} else {
			rb.Field(i).AppendEmptyValue()
		}
	}
	rec := rb.NewRecordBatch()
	rb.Release()
	defer rec.Release()
	got, createdBy := parquetLayout(t, tbl, writePqgo(t, tbl, sc, []arrow.RecordBatch{rec}, pqgo.Options{})[0])
	want, _ := parquetLayout(t, tbl, writePqarrow(t, tbl, sc, []arrow.RecordBatch{rec})[0])
	t.Logf("created_by %q", createdBy)
	if len(got) != len(want) {
		t.Fatalf("%d schema nodes, want %d:\n%s\nwant\n%s", len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range got {
		w := want[i]
		switch {
		case strings.HasPrefix(w, "dec9 "):
			w = strings.Replace(w, "phys=FIXED_LEN_BYTE_ARRAY len=4", "phys=INT32", 1)
		case strings.HasPrefix(w, "dec18 "):
			w = strings.Replace(w, "phys=FIXED_LEN_BYTE_ARRAY len=8", "phys=INT64", 1)
		}
		if got[i] != w {
			t.Errorf("schema node %d:\n got %s\nwant %s", i, got[i], w)
		}
		if strings.Contains(got[i], "id=-1") || strings.Contains(got[i], "id=0 ") {
			if !strings.Contains(got[i], ".list rep=") && !strings.Contains(got[i], ".key_value rep=") {
				t.Errorf("schema node without a field id: %s", got[i])
			}
		}
	}
}

// TestExport writes tables for checks with other readers (PyIceberg,
// pyarrow, DuckDB): with PQGO_EXPORT=dir it leaves a SQLite catalog
// (name "floe") and warehouse in dir, each table twice — t.<name> by
// pqgo, ref.<name> by pqarrow from the same rows.
func TestExport(t *testing.T) {
	dir := os.Getenv("PQGO_EXPORT")
	if dir == "" {
		t.Skip("PQGO_EXPORT not set")
	}
	cat := tabletest.Open(t, catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: dir + "/catalog.db", Warehouse: dir + "/warehouse"})
	write := func(spec table.Spec, recs func(sc *arrow.Schema) []arrow.RecordBatch) {
		name := spec.Name
		spec.Name = "t." + name
		tbl := ensure(t, cat, spec)
		sc := arrowSchema(t, tbl)
		rs := recs(sc)
		commit(t, tbl, writePqgo(t, tbl, sc, rs, pqgo.Options{}))
		spec.Name = "ref." + name
		ref := ensure(t, cat, spec)
		commit(t, ref, writePqarrow(t, ref, arrowSchema(t, ref), rs))
	}
	write(gen.EventsSpec("events"), func(sc *arrow.Schema) []arrow.RecordBatch {
		return events(t, sc, 50_000, time.Date(2026, 1, 1, 23, 58, 30, 0, time.UTC))
	})
	all := allTypesSpec("all")
	all.Partition = []table.PartitionField{{Column: "tstz", Transform: "month"}, {Column: "i", Transform: "bucket[3]"}}
	write(all, func(sc *arrow.Schema) []arrow.RecordBatch { return allTypes(t, sc, 20_000, 4096, 0.15, 5) })
	write(nestedSpec("nested"), func(sc *arrow.Schema) []arrow.RecordBatch { return nestedRows(t, sc) })
	// Spark has no time type.
	noTime := all
	noTime.Name = "all_spark"
	noTime.Schema = slices.DeleteFunc(slices.Clone(all.Schema), func(f table.Field) bool { return f.Type == "time" })
	write(noTime, func(sc *arrow.Schema) []arrow.RecordBatch { return allTypes(t, sc, 20_000, 4096, 0.15, 5) })
}
