package jsonrow

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// fastSlow appends raw through a builder with the fast path and one
// without, and fails unless both accept it with the same row or reject it
// with the same error. It reports whether the fast path decoded it.
func fastSlow(t *testing.T, fast, slow *Builder, raw []byte) bool {
	t.Helper()
	before := fast.fastRows
	errF, errS := fast.Append(raw), slow.Append(raw)
	if fmt.Sprint(errF) != fmt.Sprint(errS) {
		t.Fatalf("Append(%s): fast path %v, slow path %v", raw, errF, errS)
	}
	if fast.Len() != slow.Len() {
		t.Fatalf("Append(%s): fast path %d rows, slow path %d", raw, fast.Len(), slow.Len())
	}
	return fast.fastRows > before
}

// sameRecords takes both builders' records and fails unless they are equal.
func sameRecords(t *testing.T, fast, slow *Builder) {
	t.Helper()
	rf, rs := fast.NewRecord(), slow.NewRecord()
	defer rf.Release()
	defer rs.Release()
	if !array.RecordEqual(rf, rs) {
		jf, _ := rf.MarshalJSON()
		js, _ := rs.MarshalJSON()
		t.Fatalf("records differ:\nfast %s\nslow %s", jf, js)
	}
}

// gen writes random JSON records for a schema: clean ones (valid values,
// though fields may be missing or null and unknown members may appear) and
// dirty ones (now and then a wrong type, a value that does not convert, a
// repeated member, an escaped key or broken syntax).
type gen struct {
	rng   *rand.Rand
	w     bytes.Buffer
	dirty bool
}

// pick returns one of good, or when the record is dirty now and then one
// of bad.
func (g *gen) pick(good, bad []string) string {
	if g.dirty && len(bad) > 0 && g.rng.IntN(6) == 0 {
		return bad[g.rng.IntN(len(bad))]
	}
	return good[g.rng.IntN(len(good))]
}

func (g *gen) chance(n int) bool { return g.dirty && g.rng.IntN(n) == 0 }

// value writes a value for the field type dt.
func (g *gen) value(dt arrow.DataType, nullable bool, depth int) {
	w := &g.w
	if (nullable && g.rng.IntN(15) == 0) || g.chance(60) {
		w.WriteString("null")
		return
	}
	if g.chance(40) {
		w.WriteString([]string{`"x"`, `1.5`, `true`, `{}`, `[]`, `-0`, `1e400`, `"\u00e9\ud800"`, `tru`, `"unterminated`, `01`}[g.rng.IntN(11)])
		return
	}
	switch t := dt.(type) {
	case *arrow.Int64Type, *arrow.Int32Type, *arrow.Int8Type:
		w.WriteString(g.pick([]string{"0", "-3", "127", "1e2", "2.0", "-0"}, []string{"128", "2147483648", "9223372036854775808", "2.5", `"42"`}))
	case *arrow.Float32Type, *arrow.Float64Type:
		w.WriteString(g.pick([]string{"0", "-1.5e10", "1", "1E-3", "-0.0"}, []string{"3.4e39", `"1.5"`, "1e400"}))
	case *arrow.BooleanType:
		w.WriteString(g.pick([]string{"true", "false"}, []string{"1", `"true"`}))
	case *arrow.StringType, *arrow.LargeStringType:
		w.WriteString(g.pick([]string{`"plain"`, `""`, `"esc\"aped\\ \n \u00e9 \ud83d\ude00 \ud800"`, `"广州"`, `"\u0000"`}, []string{"\"bad \xff utf8\"", `{"raw":[1]}`, "\"ctl \x01\""}))
	case *arrow.BinaryType:
		w.WriteString(g.pick([]string{`"aGk="`, `"aGk"`, `"a-_b"`}, []string{`"!!"`}))
	case *arrow.FixedSizeBinaryType:
		w.WriteString(g.pick([]string{`"AQID"`}, []string{`"AQIDBA=="`}))
	case arrow.ExtensionType:
		w.WriteString(g.pick([]string{`"123e4567-e89b-12d3-a456-426614174000"`, `"123e4567e89b12d3a456426614174000"`}, []string{`"nope"`}))
	case *arrow.Date32Type:
		w.WriteString(g.pick([]string{`"2026-01-02"`, `"1969-12-31"`}, []string{`"2026-02-30"`}))
	case *arrow.Time64Type:
		w.WriteString(g.pick([]string{`"01:02:03"`, `"23:59:59.999999"`}, []string{`"25:00:00"`}))
	case *arrow.TimestampType:
		w.WriteString(g.pick([]string{`"2026-01-01T00:00:00Z"`, `"2026-01-01 00:00:00.123456789+08:00"`,
			`1767225600000`, `1767225600000000`, `-1`}, []string{`"2026-01-01T00:00:00"`, `"2026-13-01T00:00:00Z"`, `1.5`}))
	case *arrow.Decimal128Type, *arrow.Decimal64Type:
		w.WriteString(g.pick([]string{`"12.34"`, `12.3`, `-0.01`, `"1e3"`}, []string{`0.001`, `99999999999999999999`, `"x"`}))
	case *arrow.StructType:
		g.object(t.Fields(), depth+1)
	case *arrow.ListType:
		g.array(t.ElemField(), depth)
	case *arrow.LargeListType:
		g.array(t.ElemField(), depth)
	case *arrow.MapType:
		w.WriteString(`{"a":`)
		g.value(t.ItemField().Type, t.ItemField().Nullable, depth+1)
		w.WriteString(`}`)
	default:
		w.WriteString("null")
	}
}

func (g *gen) array(elem arrow.Field, depth int) {
	g.w.WriteByte('[')
	for i := range g.rng.IntN(4) {
		if i > 0 {
			g.w.WriteString(g.ws() + "," + g.ws())
		}
		g.value(elem.Type, elem.Nullable, depth+1)
	}
	g.w.WriteByte(']')
}

func (g *gen) ws() string {
	if g.rng.IntN(8) == 0 {
		return []string{" ", "\n\t", "\r  "}[g.rng.IntN(3)]
	}
	return ""
}

// object writes an object with a random selection of fields in schema or
// random order.
func (g *gen) object(fields []arrow.Field, depth int) {
	w := &g.w
	w.WriteString("{" + g.ws())
	idx := g.rng.Perm(len(fields))
	if g.rng.IntN(2) == 0 {
		for i := range idx {
			idx[i] = i
		}
	}
	first := true
	member := func(key string, f *arrow.Field) {
		if !first {
			w.WriteString(g.ws() + "," + g.ws())
		}
		first = false
		w.WriteString(key + g.ws() + ":" + g.ws())
		if f == nil {
			w.WriteString([]string{`1`, `{"deep":[1,{"x":null}]}`, `"s"`, `[[]]`}[g.rng.IntN(4)])
			return
		}
		g.value(f.Type, f.Nullable, depth)
	}
	for _, i := range idx {
		f := fields[i]
		if f.Nullable && g.rng.IntN(5) == 0 || g.chance(50) {
			continue // missing
		}
		key := strconv.Quote(f.Name)
		if g.rng.IntN(30) == 0 {
			key = `"\u00` + strconv.FormatInt(int64(f.Name[0]), 16) + f.Name[1:] + `"`
		}
		member(key, &f)
		if g.chance(25) {
			member(key, &f) // repeated
		}
		if g.rng.IntN(15) == 0 {
			member(strconv.Quote("unknown_"+strconv.Itoa(g.rng.IntN(3))), nil)
		}
	}
	w.WriteString(g.ws())
	switch {
	case g.chance(80):
		w.WriteString(",}")
	case g.chance(80):
		// unterminated
	default:
		w.WriteString("}")
	}
}

// fastEdgeCases are records at the fast path's edges: whitespace, repeated
// and unknown members, escaped keys, nulls, empty containers, raw JSON for
// a string, broken syntax, nesting beyond the limit.
func fastEdgeCases() []string {
	return []string{
		`{"id":1,"at":"2026-01-01T00:00:00Z"}`,
		` {"id":1 , "at" : "2026-01-01T00:00:00Z" } `,
		`{"id":1,"at":"2026-01-01T00:00:00Z","id":2}`,
		`{"at":"2026-01-01T00:00:00Z","id":1,"nope":{"a":[1,2,{"b":null}]}}`,
		`{"id":1,"at":"2026-01-01T00:00:00Z","st":null,"l":null,"m":null}`,
		`{"id":1,"at":"2026-01-01T00:00:00Z","st":{"x":1,"x":2}}`,
		`{"id":1,"at":"2026-01-01T00:00:00Z","st":{}}`,
		`{"id":1,"at":"2026-01-01T00:00:00Z","l":[]}`,
		`{"id":1,"at":"2026-01-01T00:00:00Z","l":[{"k":"a"},null,{"k":"b"}]}`,
		`{"id":1,"at":"2026-01-01T00:00:00Z","s":{"raw":true}}`,
		`{"id":1,"at":"2026-01-01T00:00:00Z"} x`,
		`{"id":1,"at":"2026-01-01T00:00:00Z",}`,
		`{"id":null,"at":"2026-01-01T00:00:00Z"}`,
		`{"\u0069d":1,"at":"2026-01-01T00:00:00Z"}`,
		`{"id":1,"at":"2026-01-01T00:00:00Z","b":nul}`,
		`{"id":1,"at":"2026-01-01T00:00:00Z","b":true,"f64":-0.0,"ll":[1,2.5,-3e-2]}`,
		`{}`, `[]`, `null`, `1`, ``, `{`, `{"id"`, `{"id":`, `{"id":1`, `{"id":1,`,
		strings.Repeat(`{"st":`, 600) + strings.Repeat(`}`, 600),
		`{"id":1,"at":"2026-01-01T00:00:00Z","nope":` + strings.Repeat(`[`, 600) + strings.Repeat(`]`, 600) + `}`,
		`{"id":1,"at":"2026-01-01T00:00:00Z","l":` + strings.Repeat(`[`, 600) + strings.Repeat(`]`, 600) + `}`,
	}
}

// TestFastPathMatchesSlowPath decodes generated records (valid and broken
// in many ways) and edge cases with the one-pass fast path and with the
// tree-walking slow path: both must accept the same records into equal
// rows and reject the others with the same error.
func TestFastPathMatchesSlowPath(t *testing.T) {
	for _, opts := range []Options{{}, {RejectUnknown: true}, {QuotedNumbers: true, RawJSONStrings: true}} {
		d, err := NewDecoder(fuzzSchema(), opts)
		if err != nil {
			t.Fatal(err)
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		fast, slow := d.NewBuilder(mem), d.NewBuilder(mem)
		slow.slowOnly = true
		fastRows, accepted := 0, 0
		for _, raw := range fastEdgeCases() {
			fastSlow(t, fast, slow, []byte(raw))
		}
		g := &gen{rng: rand.New(rand.NewPCG(15, uint64(len(fmt.Sprint(opts)))))}
		fields := fuzzSchema().Fields()
		for i := range 20000 {
			g.w.Reset()
			g.dirty = i%2 == 1
			g.object(fields, 1)
			before := fast.Len()
			if fastSlow(t, fast, slow, g.w.Bytes()) {
				fastRows++
			}
			if fast.Len() > before {
				accepted++
			}
			if i%1000 == 999 {
				sameRecords(t, fast, slow)
			}
		}
		sameRecords(t, fast, slow)
		t.Logf("options %+v: %d of 20000 generated records accepted, %d by the fast path", opts, accepted, fastRows)
		if fastRows < accepted/2 || accepted < 2000 {
			t.Errorf("options %+v: the fast path decoded %d of %d accepted records: the test does not exercise it", opts, fastRows, accepted)
		}
		fast.Release()
		slow.Release()
		mem.AssertSize(t, 0)
	}
}

// FuzzFastPath: the fast and the slow path agree on any input.
func FuzzFastPath(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"at":"2026-01-01T00:00:00Z","st":{"x":1,"l":[1,null],"m":{"a":"b"}},"l":[{"k":"v"}],"ll":[1,2.5]}`,
		`{"id":1,"at":1767225600000,"b":true,"s":"x\u00e9","bin":"aGk=","u":"123e4567-e89b-12d3-a456-426614174000","dec":"12.34"}`,
		`{"id":1,"id":2,"at":"2026-01-01T00:00:00Z"}`,
		`{"id":"1","at":"x"}`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range fastEdgeCases() {
		f.Add([]byte(s))
	}
	d, err := NewDecoder(fuzzSchema(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, slow := d.NewBuilder(memory.DefaultAllocator), d.NewBuilder(memory.DefaultAllocator)
		defer fast.Release()
		defer slow.Release()
		slow.slowOnly = true
		fastSlow(t, fast, slow, raw)
		sameRecords(t, fast, slow)
	})
}

// fastString finds the same string as parseString, or fails where it
// fails, wherever the closing quote, an escape, a control character or a
// non-ASCII byte falls relative to its 8-byte words; and it calls a string
// ASCII only when it is.
func TestFastString(t *testing.T) {
	var cases []string
	for _, pad := range []int{0, 1, 6, 7, 8, 9, 15, 16, 17} {
		a := strings.Repeat("a", pad)
		for _, tail := range []string{`"`, `\"x"`, `\n"`, `\u00e9"`, "é\"", "\x01\"", "\x1f\"", "\x7f\"", "\xff\"", `x`, `\`, "", "\u20ac\"", `\q"`} {
			cases = append(cases, `"`+a+tail+`,"next":1}`, `"`+a+tail)
		}
	}
	for _, c := range cases {
		var pf, ps parser
		pf.reset([]byte(c))
		ps.reset([]byte(c))
		s1, e1, esc1, ascii, ok := pf.fastString()
		s2, e2, esc2, err := ps.parseString()
		if ok != (err == nil) {
			t.Fatalf("%q: fastString ok=%v, parseString err=%v", c, ok, err)
		}
		if !ok {
			continue
		}
		if s1 != s2 || e1 != e2 || esc1 != esc2 || pf.pos != ps.pos || !bytes.Equal(pf.scratch, ps.scratch) {
			t.Fatalf("%q: fastString (%d,%d,%v) pos %d, parseString (%d,%d,%v) pos %d", c, s1, e1, esc1, pf.pos, s2, e2, esc2, ps.pos)
		}
		text := pf.data[s1:e1]
		if esc1 {
			text = pf.scratch[s1:e1]
		}
		isASCII := !esc1
		for _, b := range text {
			isASCII = isASCII && b < utf8.RuneSelf
		}
		if ascii != isASCII {
			t.Fatalf("%q: ascii=%v, want %v", c, ascii, isASCII)
		}
	}
}

// With DeferReserve, NewRecord leaves the next record's buffers empty and
// ReserveRows sizes them from the last record's rows, so that a record of
// a different row count fits without regrowing its buffers.
func TestReserveRows(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "url", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	}, nil)
	d, err := NewDecoder(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := d.NewBuilder(memory.NewGoAllocator())
	defer b.Release()
	b.DeferReserve()
	row := func(i int) []byte {
		return fmt.Appendf(nil, `{"id":%d,"url":"https://shop.example.com/p/%06d","tags":["a","b"]}`, i, i)
	}
	b.ReserveRows(1000) // nothing known yet: no effect
	for i := range 1000 {
		if err := b.Append(row(i)); err != nil {
			t.Fatal(err)
		}
	}
	b.NewRecord().Release()
	url := b.slots[d.root.fields[1].id].bin
	elems := b.slots[d.root.fields[2].elem.id].bin
	if url.Cap() != 0 || url.DataCap() != 0 {
		t.Fatalf("after NewRecord: %d values and %d bytes reserved, want none", url.Cap(), url.DataCap())
	}
	b.ReserveRows(3000)
	capV, capD, capE := url.Cap(), url.DataCap(), elems.DataCap()
	if capV < 3000 || capD < 3000*31 || capE < 3000*2 {
		t.Fatalf("ReserveRows(3000): %d values, %d bytes, %d element bytes", capV, capD, capE)
	}
	for i := range 3000 {
		if err := b.Append(row(i)); err != nil {
			t.Fatal(err)
		}
	}
	if url.Cap() != capV || url.DataCap() != capD || elems.DataCap() != capE {
		t.Fatalf("3000 rows regrew the buffers: %d/%d values, %d/%d bytes, %d/%d element bytes",
			url.Cap(), capV, url.DataCap(), capD, elems.DataCap(), capE)
	}
	rec := b.NewRecord()
	defer rec.Release()
	if rec.NumRows() != 3000 {
		t.Fatalf("%d rows", rec.NumRows())
	}
}

// ReserveRows caps what it reserves per column: after a record of one
// huge row, a poll of rows does not reserve that row's size for
// each of them.
func TestReserveRowsCapped(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	d, err := NewDecoder(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := d.NewBuilder(memory.NewGoAllocator())
	defer b.Release()
	b.DeferReserve()
	if err := b.Append([]byte(`{"s":"` + strings.Repeat("x", 1<<20) + `"}`)); err != nil {
		t.Fatal(err)
	}
	b.NewRecord().Release()
	b.ReserveRows(200)
	s := b.slots[d.root.fields[0].id].bin
	if s.DataCap() > 64<<20 {
		t.Fatalf("reserved %d bytes for 200 rows after one 1 MiB row", s.DataCap())
	}
}
