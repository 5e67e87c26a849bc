package pqgo

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/klauspost/compress/zstd"
	pqzstd "github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/format"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
)

// The flat encoders stamp parquet.Values from templates; the layout
// check must hold for parquet-go v0.32.0, and the fast path must produce
// the same file as parquet-go's constructors.
func TestFastValues(t *testing.T) {
	if !fastValues {
		t.Fatal("parquet.Value layout check failed: the fast encoders are off")
	}
	tbl, sc, rb := fastTable(t, "t.fast", []table.Field{
		{Name: "b", Type: "boolean"}, {Name: "i", Type: "int"}, {Name: "l", Type: "long", Required: true},
		{Name: "f", Type: "float"}, {Name: "d", Type: "double"}, {Name: "s", Type: "string"},
		{Name: "x", Type: "binary"}, {Name: "fx", Type: "fixed[3]"}, {Name: "dec", Type: "decimal(9,2)"},
		{Name: "dec18", Type: "decimal(18,2)"}, {Name: "dt", Type: "date"}, {Name: "ts", Type: "timestamptz"},
	})
	for k := range 5000 {
		for c := range sc.Fields() {
			fb := rb.Field(c)
			if c != 2 && k%7 == c%7 {
				fb.AppendNull()
				continue
			}
			v := int64(k*7919%2003) - 1000
			switch b := fb.(type) {
			case *array.BooleanBuilder:
				b.Append(v%3 == 0)
			case *array.Int32Builder:
				b.Append(int32(v))
			case *array.Int64Builder:
				b.Append(v << 20)
			case *array.Float32Builder:
				b.Append(float32(v) / 3)
			case *array.Float64Builder:
				b.Append(float64(v) / 7)
			case *array.StringBuilder:
				b.Append(string(rune('a' + v%26 + 26)))
			case *array.BinaryBuilder:
				b.Append(bytes.Repeat([]byte{byte(v)}, int(v%5+5)))
			case *array.FixedSizeBinaryBuilder:
				b.Append([]byte{byte(v), byte(v >> 8), 1})
			case *array.Decimal128Builder:
				b.Append(decimalOf(v * 12345))
			case *array.Date32Builder:
				b.Append(arrow.Date32(v))
			case *array.TimestampBuilder:
				b.Append(arrow.Timestamp(v * 1e9))
			default:
				t.Fatalf("builder %T", fb)
			}
		}
	}
	checkFastEqualsWalk(t, tbl, sc, rb, 3, 4500, "fast encoders", "parquet-go's constructors") // offsets into the buffers
}

// fastTable creates a table of the fields and a record builder of its
// Arrow schema, released with the test.
func fastTable(t *testing.T, name string, fields []table.Field) (*icetable.Table, *arrow.Schema, *array.RecordBuilder) {
	t.Helper()
	tbl, err := table.Ensure(context.Background(), tabletest.OpenSQLite(t), table.Spec{Name: name, Schema: fields})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	t.Cleanup(rb.Release)
	return tbl, sc, rb
}

// checkFastEqualsWalk encodes the builder's rows, then its rows lo..hi
// as a slice (offsets into the buffers), once with the fast encoders and
// once with parquet-go's per-value path, and fails unless the two files
// are byte-identical.
func checkFastEqualsWalk(t *testing.T, tbl *icetable.Table, sc *arrow.Schema, rb *array.RecordBuilder, lo, hi int64, fastName, slowName string) {
	t.Helper()
	rec := rb.NewRecordBatch()
	defer rec.Release()
	slice := rec.NewSlice(lo, hi)
	defer slice.Release()
	encode := func() []byte {
		var buf bytes.Buffer
		if _, err := Encode(&buf, tbl, sc, []arrow.RecordBatch{rec, slice}, Options{Workers: 1}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	fast := encode()
	fastValues = false
	defer func() { fastValues = true }()
	slow := encode()
	if !bytes.Equal(fast, slow) {
		t.Fatalf("%s wrote %d bytes, %s %d, and they differ", fastName, len(fast), slowName, len(slow))
	}
}

func decimalOf(v int64) decimal128.Num { return decimal128.FromI64(v) }

// TestZstdLevel: the table's write.parquet.compression-level wins; where
// it is unset, Options.ZstdLevel applies, and without one zstd's default.
func TestZstdLevel(t *testing.T) {
	cases := []struct {
		props iceberg.Properties
		opt   int
		want  zstd.EncoderLevel
	}{
		{iceberg.Properties{}, 0, pqzstd.DefaultLevel},
		{iceberg.Properties{}, 1, zstd.SpeedFastest},
		{iceberg.Properties{propCodecLevel: "3"}, 1, zstd.SpeedDefault},
		{iceberg.Properties{propCodecLevel: "1"}, 9, zstd.SpeedFastest},
		{iceberg.Properties{propCodecLevel: "-1"}, 0, pqzstd.DefaultLevel},
	}
	for _, c := range cases {
		c.props[propCodec] = "zstd"
		codec, err := codecFor(c.props, c.opt)
		if err != nil {
			t.Fatal(err)
		}
		if got := codec.(*zstdCodec).level; got != c.want {
			t.Errorf("%v with ZstdLevel %d: level %v, want %v", c.props, c.opt, got, c.want)
		}
	}
	if c, err := codecFor(iceberg.Properties{propCodec: "snappy"}, 1); err != nil || c.CompressionCodec() != format.Snappy {
		t.Errorf("snappy table with ZstdLevel 1: %v, %v", c, err)
	}
}

// TestFastSnappy: Options.FastSnappy swaps the encoder of snappy tables
// only, and its pages decode as Snappy.
func TestFastSnappy(t *testing.T) {
	for _, codec := range []string{"snappy", "zstd", "gzip"} {
		c, err := loadConfig(iceberg.Properties{propCodec: codec}, Options{FastSnappy: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, fast := c.codec.(*fastSnappy); fast != (codec == "snappy") {
			t.Errorf("%s table with FastSnappy: codec %T", codec, c.codec)
		}
	}
	c, err := loadConfig(iceberg.Properties{propCodec: "snappy"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, fast := c.codec.(*fastSnappy); fast {
		t.Error("snappy table without FastSnappy: the fast encoder")
	}
	src := bytes.Repeat([]byte("a page of values, a page of values "), 100)
	enc, err := (&fastSnappy{}).Encode(nil, src)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := (&fastSnappy{}).Decode(nil, enc)
	if err != nil || !bytes.Equal(dec, src) || len(enc) >= len(src) {
		t.Errorf("round trip: %d bytes from %d (%v), equal %t", len(enc), len(src), err, bytes.Equal(dec, src))
	}
}

// TestZstdCodecSameBytes: Floe's zstd codec writes the bytes parquet-go's
// codec writes, at every level, with encoders reused across calls.
func TestZstdCodecSameBytes(t *testing.T) {
	src := bytes.Repeat([]byte("floe,page_view,https://shop.example/p/42,"), 5000)
	for _, l := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression} {
		ours, theirs := zstdFor(l), &pqzstd.Codec{Level: l}
		for i := range 3 {
			a, err := ours.Encode(nil, src[:len(src)-i*1000])
			if err != nil {
				t.Fatal(err)
			}
			b, err := theirs.Encode(nil, src[:len(src)-i*1000])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Fatalf("level %v, call %d: %d bytes, parquet-go's codec %d, and they differ", l, i, len(a), len(b))
			}
			back, err := ours.Decode(nil, a)
			if err != nil || !bytes.Equal(back, src[:len(src)-i*1000]) {
				t.Fatalf("level %v: round trip failed: %v", l, err)
			}
		}
	}
}

// TestFastStructValues: leaves inside structs only (no list or map on the
// path) are stamped from templates like flat columns; the file must be
// the one the per-value walk writes, with nulls at every level of the
// path, a required struct and leaf, and a slice with offsets.
func TestFastStructValues(t *testing.T) {
	tbl, sc, rb := fastTable(t, "t.structs", []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "st", Type: "struct", Fields: []table.Field{
			{Name: "a", Type: "int"},
			{Name: "b", Type: "string", Required: true},
			{Name: "inner", Type: "struct", Fields: []table.Field{{Name: "x", Type: "double"}, {Name: "ts", Type: "timestamptz"}}},
		}},
		{Name: "req", Type: "struct", Required: true, Fields: []table.Field{
			{Name: "s", Type: "string"}, {Name: "ok", Type: "boolean", Required: true},
		}},
	})
	id := rb.Field(0).(*array.Int64Builder)
	st := rb.Field(1).(*array.StructBuilder)
	a := st.FieldBuilder(0).(*array.Int32Builder)
	b := st.FieldBuilder(1).(*array.StringBuilder)
	in := st.FieldBuilder(2).(*array.StructBuilder)
	x := in.FieldBuilder(0).(*array.Float64Builder)
	ts := in.FieldBuilder(1).(*array.TimestampBuilder)
	req := rb.Field(2).(*array.StructBuilder)
	rs := req.FieldBuilder(0).(*array.StringBuilder)
	ok := req.FieldBuilder(1).(*array.BooleanBuilder)
	for k := range 5000 {
		v := int64(k*7919%2003) - 1000
		id.Append(int64(k))
		switch k % 5 {
		case 0: // st null (its children get nulls too)
			st.AppendNull()
		case 1: // st.inner null
			st.Append(true)
			a.Append(int32(v))
			b.Append(string(rune('a' + k%26)))
			in.AppendNull()
		default:
			st.Append(true)
			if k%3 == 0 {
				a.AppendNull()
			} else {
				a.Append(int32(v))
			}
			b.Append(strings.Repeat("b", k%7))
			in.Append(true)
			if k%4 == 0 {
				x.AppendNull()
			} else {
				x.Append(float64(v) / 7)
			}
			ts.Append(arrow.Timestamp(v * 1e9))
		}
		req.Append(true)
		if k%6 == 0 {
			rs.AppendNull()
		} else {
			rs.Append(string(rune('A' + k%26)))
		}
		ok.Append(k%2 == 0)
	}
	checkFastEqualsWalk(t, tbl, sc, rb, 3, 4500, "stamped struct leaves", "the walk")
}

// TestFastListValues: the elements of top-level lists of primitives are
// stamped with their levels; the file must be the one the per-value walk
// writes, with null and empty lists, null elements, a required list of
// required elements, byte and fixed-width elements, and a slice.
func TestFastListValues(t *testing.T) {
	tbl, sc, rb := fastTable(t, "t.lists", []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "tags", Type: "list", Element: &table.Field{Type: "string"}},
		{Name: "nums", Type: "list", Required: true, Element: &table.Field{Type: "long", Required: true}},
		{Name: "ds", Type: "list", Element: &table.Field{Type: "double", Required: true}},
	})
	id := rb.Field(0).(*array.Int64Builder)
	tags := rb.Field(1).(*array.ListBuilder)
	tv := tags.ValueBuilder().(*array.StringBuilder)
	nums := rb.Field(2).(*array.ListBuilder)
	nv := nums.ValueBuilder().(*array.Int64Builder)
	ds := rb.Field(3).(*array.ListBuilder)
	dv := ds.ValueBuilder().(*array.Float64Builder)
	for k := range 6000 {
		id.Append(int64(k))
		switch k % 6 {
		case 0:
			tags.AppendNull()
			ds.AppendNull()
		case 1:
			tags.Append(true) // empty
			ds.Append(true)
		default:
			tags.Append(true)
			ds.Append(true)
			for j := range k % 5 {
				if (k+j)%4 == 0 {
					tv.AppendNull()
				} else {
					tv.Append(strings.Repeat("t", (k+j)%6))
				}
				dv.Append(float64(k*j) / 3)
			}
		}
		nums.Append(true)
		for j := range k % 3 {
			nv.Append(int64(k * j))
		}
	}
	checkFastEqualsWalk(t, tbl, sc, rb, 5, 5500, "stamped list elements", "the walk")
}
