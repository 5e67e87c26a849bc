package aggregate

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// pageTestRecord is rows of every kind of column the direct read decodes,
// with nulls in the nullable ones.
func pageTestRecord(t *testing.T, rows int) arrow.RecordBatch {
	t.Helper()
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "req", Type: arrow.PrimitiveTypes.Int64},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "long", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "dec", Type: &arrow.Decimal128Type{Precision: 18, Scale: 2}, Nullable: true},
		{Name: "sparse", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	r := rand.New(rand.NewPCG(5, 6))
	for i := range rows {
		for c, f := range sc.Fields() {
			fb := b.Field(c)
			if f.Name == "sparse" {
				// Mostly null, in runs: RLE and bit-packed levels.
				if (i/300)%3 != 0 || r.IntN(8) != 0 {
					fb.AppendNull()
					continue
				}
			} else if f.Nullable && r.IntN(7) == 0 {
				fb.AppendNull()
				continue
			}
			switch fb := fb.(type) {
			case *array.Int32Builder:
				fb.Append(r.Int32N(50) - 10)
			case *array.Int64Builder:
				fb.Append(r.Int64N(1<<40) - 1<<39)
			case *array.Float32Builder:
				fb.Append(float32(r.IntN(100)) / 8)
			case *array.Float64Builder:
				fb.Append(r.Float64())
			case *array.BooleanBuilder:
				fb.Append(r.IntN(3) == 0)
			case *array.StringBuilder:
				if f.Name == "long" {
					fb.Append(fmt.Sprintf("value %d", r.IntN(100_000)))
				} else {
					fb.Append([]string{"", "a", "bb", "déjà vu"}[r.IntN(4)])
				}
			case *array.BinaryBuilder:
				fb.Append([]byte{byte(r.IntN(256)), 0, byte(i)})
			case *array.Decimal128Builder:
				fb.Append(decimal128.FromI64(r.Int64N(200_000) - 100_000))
			}
		}
	}
	return b.NewRecordBatch()
}

// TestPageChunkEqualsArrow: the direct read's own page decoder reads every
// column kind as arrow-go's column reader does, whole, in batches of every
// size, with selections and skips, over V1 and V2 pages, dictionary and
// plain pages (dictionaries that overflow to plain mid-chunk included),
// booleans encoded RLE, decimals stored as integers and as fixed-length
// byte arrays, and every codec.
func TestPageChunkEqualsArrow(t *testing.T) {
	rec := pageTestRecord(t, 5000)
	defer rec.Release()
	type layout struct {
		name string
		opts []parquet.WriterProperty
	}
	layouts := []layout{
		{name: "v2-dict-zstd", opts: []parquet.WriterProperty{parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithCompression(compress.Codecs.Zstd)}},
		{name: "v1-dict-snappy", opts: []parquet.WriterProperty{parquet.WithDataPageVersion(parquet.DataPageV1), parquet.WithCompression(compress.Codecs.Snappy)}},
		{name: "v2-plain", opts: []parquet.WriterProperty{parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithDictionaryDefault(false)}},
		{name: "v2-dict-gzip", opts: []parquet.WriterProperty{parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithCompression(compress.Codecs.Gzip)}},
		{name: "v1-plain-uncompressed", opts: []parquet.WriterProperty{parquet.WithDataPageVersion(parquet.DataPageV1), parquet.WithDictionaryDefault(false)}},
		{name: "dict-overflow", opts: []parquet.WriterProperty{parquet.WithDictionaryPageSizeLimit(256)}},
		{name: "bool-rle", opts: []parquet.WriterProperty{parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithDictionaryDefault(false),
			parquet.WithEncodingFor("ok", parquet.Encodings.RLE)}},
		{name: "decimal-as-int", opts: []parquet.WriterProperty{parquet.WithStoreDecimalAsInteger(true), parquet.WithDataPageVersion(parquet.DataPageV2)}},
		{name: "delta", opts: []parquet.WriterProperty{parquet.WithDictionaryDefault(false), parquet.WithEncoding(parquet.Encodings.DeltaBinaryPacked),
			parquet.WithEncodingFor("s", parquet.Encodings.DeltaLengthByteArray), parquet.WithEncodingFor("ok", parquet.Encodings.Plain),
			parquet.WithEncodingFor("f32", parquet.Encodings.Plain), parquet.WithEncodingFor("f64", parquet.Encodings.Plain),
			parquet.WithEncodingFor("long", parquet.Encodings.Plain), parquet.WithEncodingFor("bin", parquet.Encodings.Plain),
			parquet.WithEncodingFor("dec", parquet.Encodings.Plain)}},
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			opts := append([]parquet.WriterProperty{parquet.WithMaxRowGroupLength(2200), parquet.WithDataPageSize(700), parquet.WithBatchSize(128)}, l.opts...)
			var buf bytes.Buffer
			if err := pqarrow.WriteTable(array.NewTableFromRecords(rec.Schema(), []arrow.RecordBatch{rec}), &buf, 1000,
				parquet.NewWriterProperties(opts...), pqarrow.DefaultWriterProps()); err != nil {
				t.Fatal(err)
			}
			open := func() *file.Reader {
				pf, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				return pf
			}
			pages, ref := open(), open()
			sc := pages.MetaData().Schema
			paged, coded, gens, raws := 0, 0, 0, 0
			// Pages read by rawPages (bufs), and by arrow-go's page reader.
			bufs, err := newPageBufs(sc.NumColumns())
			if err != nil {
				t.Fatal(err)
			}
			defer bufs.close()
			for _, leafBufs := range []*pageBufs{bufs, nil} {
				for leaf := range sc.NumColumns() {
					col := sc.Column(leaf)
					k := map[parquet.Type]valueKind{parquet.Types.Int32: kInt, parquet.Types.Int64: kInt, parquet.Types.Float: kFloat,
						parquet.Types.Double: kFloat, parquet.Types.Boolean: kBool, parquet.Types.ByteArray: kBytes}[col.PhysicalType()]
					if col.Name() == "dec" {
						k = kDecimal
					}
					r := rand.New(rand.NewPCG(uint64(leaf), 9))
					for g := range pages.NumRowGroups() {
						src, err := newChunkSource(bytes.NewReader(buf.Bytes()), int64(buf.Len()), pages.MetaData(), pages.RowGroup(g), leaf, col, k, leafBufs, leaf, &gens)
						if err != nil {
							t.Fatal(err)
						}
						if pc, ok := src.(*pageChunk); ok {
							paged++
							if _, ok := pc.src.(*rawPages); ok {
								raws++
							} else if leafBufs != nil && !strings.Contains(l.name, "gzip") {
								t.Fatalf("%s: pages not read by rawPages", col.Name())
							}
						}
						cr, err := ref.RowGroup(g).Column(leaf)
						if err != nil {
							t.Fatal(err)
						}
						want := &arrowChunk{cr: cr, maxDef: col.MaxDefinitionLevel()}
						got, exp := &colBuf{kind: k, wantCodes: true}, &colBuf{kind: k}
						for left := int(pages.RowGroup(g).NumRows()); left > 0; {
							n := min(left, []int{1, 7, 64, 333, 1500}[r.IntN(5)])
							left -= n
							if r.IntN(6) == 0 {
								if err := src.skip(n); err != nil {
									t.Fatalf("%s: skip: %v", col.Name(), err)
								}
								if err := want.skip(n); err != nil {
									t.Fatal(err)
								}
								continue
							}
							var sel []bool
							if r.IntN(2) == 0 {
								sel = make([]bool, n)
								for i := range sel {
									sel[i] = r.IntN(3) == 0
								}
							}
							var kept []int32
							if sel != nil && r.IntN(2) == 0 {
								// The kept rows listed, as the direct read passes them.
								kept = []int32{}
								for i, ok := range sel {
									if ok {
										kept = append(kept, int32(i))
									}
								}
							}
							if err := got.read(src, n, sel, kept); err != nil {
								t.Fatalf("%s: %v", col.Name(), err)
							}
							exp.reset(n)
							if err := want.read(exp, n, sel, nil); err != nil {
								t.Fatal(err)
							}
							if msg := sameBuf(got, exp); msg != "" {
								t.Fatalf("%s row group %d: %s", col.Name(), g, msg)
							}
							if got.coded {
								coded++
								if msg := sameCodes(got, &src.(*pageChunk).dict); msg != "" {
									t.Fatalf("%s row group %d: %s", col.Name(), g, msg)
								}
							}
						}
					}
				}
			}
			if l.name != "delta" && paged == 0 {
				t.Fatal("no chunk read by the page decoder: the test tests nothing")
			}
			if l.name != "delta" && !strings.Contains(l.name, "gzip") && raws == 0 {
				t.Fatal("no chunk read by rawPages: the test tests nothing")
			}
			if strings.Contains(l.name, "dict") && coded == 0 {
				t.Fatal("no batch read as dictionary codes: the test tests nothing")
			}
		})
	}
}

// sameBuf describes how two buffers of decoded rows differ ("" if not).
func sameBuf(got, want *colBuf) string {
	if got.n != want.n {
		return fmt.Sprintf("%d rows, want %d", got.n, want.n)
	}
	for i := range got.n {
		if got.valids[i] != want.valids[i] {
			return fmt.Sprintf("row %d: valid %t, want %t", i, got.valids[i], want.valids[i])
		}
		if !got.valids[i] {
			continue
		}
		var g, w any
		switch got.kind {
		case kInt:
			g, w = got.ints[i], want.ints[i]
		case kFloat:
			g, w = got.floats[i], want.floats[i]
		case kDecimal:
			g, w = got.decs[i], want.decs[i]
		case kBool:
			g, w = got.bs[i], want.bs[i]
		case kBytes:
			g, w = string(got.bytesAt(i)), string(want.bytesAt(i))
		}
		if g != w {
			return fmt.Sprintf("row %d: %v, want %v", i, g, w)
		}
	}
	if slices.Contains(got.valids[:got.n], false) != want.nulls || got.nulls != want.nulls {
		return fmt.Sprintf("nulls %t, want %t", got.nulls, want.nulls)
	}
	return ""
}

// sameCodes describes how the dictionary codes of a buffer's rows differ
// from its values ("" if not).
func sameCodes(c, dict *colBuf) string {
	if len(c.codes) != c.n || c.dictN != dict.n {
		return fmt.Sprintf("%d codes of %d rows into %d values, want %d rows into %d", len(c.codes), c.n, c.dictN, c.n, dict.n)
	}
	for i, code := range c.codes {
		if (code < 0) != !c.valids[i] {
			return fmt.Sprintf("row %d: code %d, valid %t", i, code, c.valids[i])
		}
		if code < 0 {
			continue
		}
		var same bool
		switch c.kind {
		case kInt:
			same = c.ints[i] == dict.ints[code]
		case kFloat:
			same = c.floats[i] == dict.floats[code]
		case kDecimal:
			same = c.decs[i] == dict.decs[code]
		case kBool:
			same = c.bs[i] == dict.bs[code]
		case kBytes:
			same = string(c.bytesAt(i)) == string(dict.bytesAt(int(code)))
		}
		if !same {
			return fmt.Sprintf("row %d: code %d names another value", i, code)
		}
	}
	return ""
}
