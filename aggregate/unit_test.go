package aggregate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/reader"
)

func us(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func TestWindows(t *testing.T) {
	tests := []struct {
		name        string
		size, slide string
		at          string
		want        []string // window starts, newest first
	}{
		{"1m tumbling", "1m", "", "2026-01-01T10:07:30Z", []string{"2026-01-01T10:07:00Z"}},
		{"1m at its start", "1m", "", "2026-01-01T10:07:00Z", []string{"2026-01-01T10:07:00Z"}},
		{"1m one µs before its end", "1m", "", "2026-01-01T10:07:59.999999Z", []string{"2026-01-01T10:07:00Z"}},
		{"5m tumbling", "5m", "", "2026-01-01T10:09:59Z", []string{"2026-01-01T10:05:00Z"}},
		{"5m at a boundary", "5m", "", "2026-01-01T10:10:00Z", []string{"2026-01-01T10:10:00Z"}},
		{"1h tumbling", "1h", "", "2026-01-01T23:59:59.999999Z", []string{"2026-01-01T23:00:00Z"}},
		{"1d tumbling (UTC days)", "1d", "", "2026-01-01T23:59:59Z", []string{"2026-01-01T00:00:00Z"}},
		{"1d at midnight", "1d", "", "2026-01-02T00:00:00Z", []string{"2026-01-02T00:00:00Z"}},
		{"before the epoch", "1h", "", "1969-12-31T23:30:00Z", []string{"1969-12-31T23:00:00Z"}},
		{"slide equal to size is tumbling", "1h", "1h", "2026-01-01T10:30:00Z", []string{"2026-01-01T10:00:00Z"}},
		{"15m every 5m", "15m", "5m", "2026-01-01T10:07:00Z", []string{
			"2026-01-01T10:05:00Z", "2026-01-01T10:00:00Z", "2026-01-01T09:55:00Z"}},
		{"15m every 5m, at a slide boundary", "15m", "5m", "2026-01-01T10:10:00Z", []string{
			"2026-01-01T10:10:00Z", "2026-01-01T10:05:00Z", "2026-01-01T10:00:00Z"}},
		{"1h every 20m across midnight", "1h", "20m", "2026-01-02T00:10:00Z", []string{
			"2026-01-02T00:00:00Z", "2026-01-01T23:40:00Z", "2026-01-01T23:20:00Z"}},
	}
	src := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Spec{Name: "w", Source: "a.b", Output: "a.c", Time: "ts",
				Measures: []Measure{{Name: "n", Fn: FnCount}}}
			size, _ := ParseDuration(tt.size)
			s.Window.Size = Duration(size)
			if tt.slide != "" {
				slide, _ := ParseDuration(tt.slide)
				s.Window.Slide = Duration(slide)
			}
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			p, err := bind(s, src)
			if err != nil {
				t.Fatal(err)
			}
			at := us(tt.at)
			var got []string
			for k := range p.nWin {
				ws := p.windowStart(at, k)
				if ws > at || at >= ws+p.size {
					t.Errorf("window %d [%s, +%s) does not hold %s", k, fmtMicros(ws), tt.size, tt.at)
				}
				got = append(got, time.UnixMicro(ws).UTC().Format(time.RFC3339))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("windows %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1m": time.Minute, "5m": 5 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour,
		"2d12h": 60 * time.Hour, "90s": 90 * time.Second, "1h30m": 90 * time.Minute,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %s, %v; want %s", in, got, err, want)
		}
		if s := Duration(got).String(); s != in && in != "90s" {
			t.Errorf("Duration(%s).String() = %q, want %q", got, s, in)
		}
	}
	for _, bad := range []string{"", "d", "xd", "1x", "-1d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q): no error", bad)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	valid := `
name: t
source: ods.events
output: dws.t
time: event_time
window: {size: 1h, slide: 5m}
dimensions: [province, city]
measures:
  - {name: gmv, fn: sum, column: amount}
  - {name: n, fn: count}
top: {n: 3, by: gmv, within: [province]}
`
	if _, err := ParseSpec([]byte(valid)); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	tests := []struct {
		name, replace, with, want string
	}{
		{"no name", "name: t", "", "name: required"},
		{"bad source", "source: ods.events", "source: events", "source:"},
		{"output is source", "output: dws.t", "output: ods.events", "output: must differ"},
		{"no time", "time: event_time", "", "time: required"},
		{"no window", "window: {size: 1h, slide: 5m}", "", "window.size: required"},
		{"slide longer", "slide: 5m", "slide: 2h", "window.slide: 2h is longer"},
		{"slide not dividing", "slide: 5m", "slide: 7m", "window.slide: 7m does not divide"},
		{"sub-second", "size: 1h, slide: 5m", "size: 1500ms", "window.size: 1.5s is not a whole number of seconds"},
		{"bad duration", "size: 1h", "size: soon", "duration \"soon\""},
		{"unknown fn", "fn: count}", "fn: median}", "measures[1].fn: \"median\""},
		{"no column", "fn: sum, column: amount", "fn: sum", "measures[0].column: required for sum"},
		{"duplicate measure", "name: n, fn: count", "name: gmv, fn: count", "measures[1].name: column \"gmv\" is also measures[0].name"},
		{"measure named like a dimension", "name: n, fn: count", "name: city, fn: count", "is also dimensions[1]"},
		{"reserved name", "name: n, fn: count", "name: window_start, fn: count", "reserved"},
		{"bad column name", "name: n, fn: count", "name: \"a b\", fn: count", "not a column name"},
		{"top by a dimension", "by: gmv", "by: city", "top.by: \"city\" is not a measure"},
		{"top within a measure", "within: [province]", "within: [gmv]", "top.within[0]: \"gmv\" is not a dimension"},
		{"top n", "n: 3,", "n: 0,", "top.n: 0 is below 1"},
		{"bad filter", "time: event_time", "time: event_time\nfilter: \"a ==\"", "filter:"},
		{"unknown key", "time: event_time", "time: event_time\nwatermark: 1h", "field watermark not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(valid, tt.replace) {
				t.Fatalf("%q not in the spec", tt.replace)
			}
			_, err := ParseSpec([]byte(strings.Replace(valid, tt.replace, tt.with, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestBindTypes(t *testing.T) {
	src := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		iceberg.NestedField{ID: 2, Name: "i", Type: iceberg.PrimitiveTypes.Int32},
		iceberg.NestedField{ID: 3, Name: "l", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 4, Name: "f", Type: iceberg.PrimitiveTypes.Float32},
		iceberg.NestedField{ID: 5, Name: "d", Type: iceberg.DecimalTypeOf(18, 2)},
		iceberg.NestedField{ID: 6, Name: "s", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 7, Name: "day", Type: iceberg.PrimitiveTypes.Date},
		iceberg.NestedField{ID: 8, Name: "u", Type: iceberg.PrimitiveTypes.UUID},
	)
	base := Spec{Name: "b", Source: "a.b", Output: "a.c", Time: "ts", Window: Window{Size: Duration(time.Hour)}}
	out := func(m ...Measure) (map[string]string, error) {
		s := base
		s.Measures = m
		ts, err := OutputSpec(s, src)
		if err != nil {
			return nil, err
		}
		types := map[string]string{}
		for _, f := range ts.Schema {
			types[f.Name] = f.Type
		}
		return types, nil
	}
	types, err := out(
		Measure{"c", FnCount, ""}, Measure{"ci", FnCount, "i"},
		Measure{"si", FnSum, "i"}, Measure{"sl", FnSum, "l"}, Measure{"sf", FnSum, "f"}, Measure{"sd", FnSum, "d"},
		Measure{"mind", FnMin, "d"}, Measure{"maxs", FnMax, "s"}, Measure{"minday", FnMin, "day"},
		Measure{"avgd", FnAvg, "d"}, Measure{"cd", FnCountDistinct, "s"}, Measure{"acd", FnApproxCountDistinct, "l"},
	)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"window_start": "timestamptz", "window_end": "timestamptz", "_state": "binary",
		"c": "long", "ci": "long", "si": "long", "sl": "long", "sf": "double", "sd": "decimal(38,2)",
		"mind": "decimal(18,2)", "maxs": "string", "minday": "date", "avgd": "double", "cd": "long", "acd": "long",
	}
	for k, v := range want {
		if types[k] != v {
			t.Errorf("column %s: type %q, want %q", k, types[k], v)
		}
	}
	for _, bad := range []struct {
		m    Measure
		want string
	}{
		{Measure{"x", FnSum, "s"}, "sum of column \"s\" of type string"},
		{Measure{"x", FnAvg, "day"}, "avg of column \"day\""},
		{Measure{"x", FnSum, "nope"}, "measures[0].column: source a.b has no top-level column \"nope\""},
		{Measure{"x", FnCountDistinct, "u"}, "cannot be aggregated"},
	} {
		if _, err := out(bad.m); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: error %v, want %q", bad.m, err, bad.want)
		}
	}
	s := base
	s.Time = "s"
	s.Measures = []Measure{{"c", FnCount, ""}}
	if _, err := OutputSpec(s, src); err == nil || !strings.Contains(err.Error(), "not a timestamp") {
		t.Errorf("string time column: %v", err)
	}
	s = base
	s.Measures = []Measure{{"c", FnCount, ""}}
	s.Dimensions = []string{"u"}
	if _, err := OutputSpec(s, src); err == nil || !strings.Contains(err.Error(), "dimensions[0]") {
		t.Errorf("uuid dimension: %v", err)
	}
	ts, _ := OutputSpec(Spec{Name: "d", Source: "a.b", Output: "a.c", Time: "ts", Window: Window{Size: Duration(24 * time.Hour)}, Measures: []Measure{{"c", FnCount, ""}}}, src)
	if got := ts.Partition[0].Transform; got != "day" {
		t.Errorf("1d windows partitioned by %s, want day", got)
	}
}

// propSchema is the source schema of the property tests.
func propSchema() *iceberg.Schema {
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		iceberg.NestedField{ID: 2, Name: "k", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 3, Name: "n", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 4, Name: "x", Type: iceberg.PrimitiveTypes.Float64},
		iceberg.NestedField{ID: 5, Name: "amt", Type: iceberg.DecimalTypeOf(18, 2)},
		iceberg.NestedField{ID: 6, Name: "s", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 7, Name: "flag", Type: iceberg.PrimitiveTypes.Bool},
	)
}

// propSpec uses every function on every kind it supports.
func propSpec() Spec {
	return Spec{
		Name: "prop", Source: "a.src", Output: "a.out", Time: "ts",
		Window:     Window{Size: Duration(time.Hour), Slide: Duration(20 * time.Minute)},
		Dimensions: []string{"k", "flag"},
		Measures: []Measure{
			{"rows", FnCount, ""}, {"ns", FnCount, "n"},
			{"sum_n", FnSum, "n"}, {"sum_amt", FnSum, "amt"}, {"sum_x", FnSum, "x"},
			{"min_n", FnMin, "n"}, {"max_amt", FnMax, "amt"}, {"min_s", FnMin, "s"}, {"max_x", FnMax, "x"},
			{"avg_amt", FnAvg, "amt"}, {"avg_n", FnAvg, "n"},
			{"d_s", FnCountDistinct, "s"}, {"d_n", FnCountDistinct, "n"},
			{"a_s", FnApproxCountDistinct, "s"}, {"a_amt", FnApproxCountDistinct, "amt"},
		},
		Top: &Top{N: 2, By: "sum_amt", Within: []string{"flag"}},
	}
}

// propRecord builds n random rows; deletes marks every third row as a
// changelog DELETE.
func propRecord(rng *rand.Rand, n int, withChange bool) arrow.RecordBatch {
	fields := []arrow.Field{
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
		{Name: "k", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "amt", Type: &arrow.Decimal128Type{Precision: 18, Scale: 2}, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "flag", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	}
	if withChange {
		fields = append(fields, arrow.Field{Name: reader.ColChangeType, Type: arrow.BinaryTypes.String})
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil))
	defer b.Release()
	base := us("2026-01-01T00:00:00Z")
	for i := range n {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(base + rng.Int64N(int64(5*time.Hour/time.Microsecond))))
		if rng.IntN(10) == 0 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("key%d", rng.IntN(6)))
		}
		if rng.IntN(8) == 0 {
			b.Field(2).AppendNull()
			b.Field(3).AppendNull()
			b.Field(4).AppendNull()
			b.Field(5).AppendNull()
		} else {
			b.Field(2).(*array.Int64Builder).Append(rng.Int64N(1000) - 300)
			b.Field(3).(*array.Float64Builder).Append(rng.Float64() * 100)
			b.Field(4).(*array.Decimal128Builder).Append(decimal128.FromI64(rng.Int64N(1_000_000)))
			b.Field(5).(*array.StringBuilder).Append(fmt.Sprintf("v%d", rng.IntN(5000)))
		}
		if rng.IntN(7) == 0 {
			b.Field(6).AppendNull()
		} else {
			b.Field(6).(*array.BooleanBuilder).Append(rng.IntN(2) == 0)
		}
		if withChange {
			if i%3 == 2 {
				b.Field(7).(*array.StringBuilder).Append(reader.ChangeDelete)
			} else {
				b.Field(7).(*array.StringBuilder).Append(reader.ChangeInsert)
			}
		}
	}
	return b.NewRecordBatch()
}

func propPlan(t testing.TB, s Spec) *plan {
	t.Helper()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := bind(s, propSchema())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// outputOf builds t's output rows as strings (sorted), the float sum
// rounded to 9 significant digits.
func outputOf(t testing.TB, p *plan, g *groupTable) []string {
	t.Helper()
	sc, err := icetable.SchemaToArrowSchema(mustIcebergSchema(t, p), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := p.build(g, sc, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		for _, row := range recordRows(r) {
			out = append(out, roundFloats(row))
		}
		r.Release()
	}
	slices.Sort(out)
	return out
}

// roundFloats rewrites "sum_x=<float>" and the state (which holds the
// float sum's bits) so that sums added in another order compare equal.
func roundFloats(row string) string {
	var parts []string
	for _, f := range strings.Split(row, " | ") {
		name, v, _ := strings.Cut(f, "=")
		switch name {
		case "sum_x", "avg_x":
			var x float64
			if _, err := fmt.Sscan(v, &x); err == nil {
				f = fmt.Sprintf("%s=%.9g", name, x)
			}
		case ColState:
			f = name + "=<state>"
		}
		parts = append(parts, f)
	}
	return strings.Join(parts, " | ")
}

func mustIcebergSchema(t testing.TB, p *plan) *iceberg.Schema {
	t.Helper()
	sc, err := p.outputSpec().IcebergSchema()
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// statesOf encodes every group's state, keyed by group key, with the
// float sum's 8 bytes zeroed.
func statesOf(p *plan, g *groupTable) map[string][]byte {
	out := map[string][]byte{}
	for i, k := range g.keys {
		if g.rows[i] == 0 {
			continue
		}
		var buf []byte
		for m, a := range g.accs {
			if p.measures[m].Name == "sum_x" {
				continue
			}
			buf = append(buf, byte(m))
			buf = a.appendState(buf, int32(i))
		}
		buf = append(buf, fmt.Sprint(g.rows[i])...)
		out[k] = buf
	}
	return out
}

// TestMergeOrderIndependent: aggregating rows in one pass, or in random
// chunks aggregated separately and merged in a shuffled order (some
// through an encode/decode round trip of their states), gives the same
// states and outputs: every measure's merge is associative and
// commutative. Float sums agree to rounding.
func TestMergeOrderIndependent(t *testing.T) {
	p := propPlan(t, propSpec())
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			var recs []arrow.RecordBatch
			for range 1 + rng.IntN(6) {
				recs = append(recs, propRecord(rng, 1+rng.IntN(700), false))
			}
			defer releaseAll(recs)

			whole := newGroupTable(p)
			st := &batchState{}
			for _, r := range recs {
				if _, err := p.addBatch(whole, r, nil, st); err != nil {
					t.Fatal(err)
				}
			}
			// Chunks: each record sliced at random points.
			var parts []*groupTable
			for _, r := range recs {
				n := int(r.NumRows())
				cuts := []int{0, n}
				for range rng.IntN(4) {
					cuts = append(cuts, rng.IntN(n+1))
				}
				slices.Sort(cuts)
				for i := 1; i < len(cuts); i++ {
					g := newGroupTable(p)
					sl := r.NewSlice(int64(cuts[i-1]), int64(cuts[i]))
					if _, err := p.addBatch(g, sl, nil, st); err != nil {
						t.Fatal(err)
					}
					sl.Release()
					parts = append(parts, g)
				}
			}
			rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
			merged := newGroupTable(p)
			for i, part := range parts {
				if i%2 == 1 {
					part = roundTrip(t, p, part)
				}
				// Merge in a shuffled group order too.
				order := rng.Perm(part.len())
				for _, g := range order {
					merged.mergeGroupFrom(part, int32(g))
				}
			}
			if a, b := statesOf(p, whole), statesOf(p, merged); !mapsEqual(a, b) {
				t.Fatalf("states differ: one pass %d groups, merged %d groups", len(a), len(b))
			}
			if a, b := outputOf(t, p, whole), outputOf(t, p, merged); !slices.Equal(a, b) {
				t.Fatalf("outputs differ: %s", diffRows(a, b))
			}
		})
	}
}

func mapsEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// roundTrip encodes every group's state and decodes it into a new table.
func roundTrip(t testing.TB, p *plan, g *groupTable) *groupTable {
	t.Helper()
	out := newGroupTable(p)
	var buf, part []byte
	for i, k := range g.keys {
		buf, part = g.appendState(buf[:0], part, int32(i))
		dst := out.lookup([]byte(k))
		out.sync()
		if err := out.mergeState(dst, buf); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestStateRoundTrip: decoding an encoded state and encoding it again
// gives the same bytes, for every measure.
func TestStateRoundTrip(t *testing.T) {
	p := propPlan(t, propSpec())
	rng := rand.New(rand.NewPCG(1, 2))
	rec := propRecord(rng, 3000, false)
	defer rec.Release()
	g := newGroupTable(p)
	if _, err := p.addBatch(g, rec, nil, &batchState{}); err != nil {
		t.Fatal(err)
	}
	rt := roundTrip(t, p, g)
	var a, b, part []byte
	for i := range g.keys {
		a, part = g.appendState(a[:0], part, int32(i))
		b, part = rt.appendState(b[:0], part, int32(rt.index[g.keys[i]]))
		if !bytes.Equal(a, b) {
			t.Fatalf("group %d: state changed in a round trip", i)
		}
	}
}

// TestRetraction: in a changelog, deleted rows take back what their
// inserts added for count, sum and avg; groups whose rows are all deleted
// disappear; measures that cannot retract reject deletes.
func TestRetraction(t *testing.T) {
	s := propSpec()
	s.Measures = []Measure{{"rows", FnCount, ""}, {"ns", FnCount, "n"}, {"sum_n", FnSum, "n"},
		{"sum_amt", FnSum, "amt"}, {"avg_amt", FnAvg, "amt"}}
	s.Top = nil
	p := propPlan(t, s)
	rng := rand.New(rand.NewPCG(5, 6))
	rec := propRecord(rng, 2000, true)
	defer rec.Release()
	// The changelog: every row inserted, then the DELETE-tagged ones
	// deleted again.
	withDeletes := newGroupTable(p)
	st := &batchState{}
	ins := insertsOnly(t, rec)
	defer ins.Release()
	if _, err := p.addBatch(withDeletes, ins, nil, st); err != nil {
		t.Fatal(err)
	}
	dels := filterRows(t, rec, func(i int) bool { return i%3 == 2 })
	defer dels.Release()
	if _, err := p.addBatch(withDeletes, dels, nil, st); err != nil {
		t.Fatal(err)
	}
	// The rows that survive: inserts not deleted (rows i%3 != 2).
	survivors := newGroupTable(p)
	keep := filterRows(t, rec, func(i int) bool { return i%3 != 2 })
	defer keep.Release()
	kept := dropChange(t, keep)
	defer kept.Release()
	if _, err := p.addBatch(survivors, kept, nil, st); err != nil {
		t.Fatal(err)
	}
	if a, b := outputOf(t, p, survivors), outputOf(t, p, withDeletes); !slices.Equal(a, b) {
		t.Fatalf("retracted output differs from the survivors': %s", diffRows(a, b))
	}

	// Not retractable.
	p2 := propPlan(t, propSpec())
	if _, err := p2.addBatch(newGroupTable(p2), rec, nil, st); !errors.Is(err, ErrNotRetractable) {
		t.Fatalf("deletes into min/max/distinct: %v, want ErrNotRetractable", err)
	} else if !strings.Contains(err.Error(), "min_n (min)") {
		t.Errorf("error does not name the measures: %v", err)
	}
}

// insertsOnly is rec with every row tagged INSERT.
func insertsOnly(t *testing.T, rec arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	for range rec.NumRows() {
		b.Append(reader.ChangeInsert)
	}
	ct := b.NewArray()
	defer ct.Release()
	cols := slices.Clone(rec.Columns())
	cols[len(cols)-1] = ct
	return array.NewRecordBatch(rec.Schema(), cols, rec.NumRows())
}

// dropChange is rec without its change column.
func dropChange(t *testing.T, rec arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	n := rec.NumCols() - 1
	sc := arrow.NewSchema(rec.Schema().Fields()[:n], nil)
	return array.NewRecordBatch(sc, rec.Columns()[:n], rec.NumRows())
}

func filterRows(t *testing.T, rec arrow.RecordBatch, keep func(int) bool) arrow.RecordBatch {
	t.Helper()
	mb := array.NewBooleanBuilder(memory.DefaultAllocator)
	defer mb.Release()
	for i := range int(rec.NumRows()) {
		mb.Append(keep(i))
	}
	mask := mb.NewArray()
	defer mask.Release()
	out, err := compute.FilterRecordBatch(context.Background(), rec, mask, compute.DefaultFilterOptions())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// hllSigma is the standard error of the estimate of n distinct values:
// linear counting's for small n (the estimator's error there is that of
// counting empty registers), 1.04/√m relative above.
func hllSigmaOf(n float64) float64 {
	m := float64(hllM)
	if n <= 2.5*m {
		t := n / m
		return math.Sqrt(m * (math.Exp(t) - t - 1))
	}
	return 1.04 / math.Sqrt(m) * n
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func TestHLLAccuracy(t *testing.T) {
	for _, n := range []int{0, 1, 10, 100, 1000, 5000, 10_000, 50_000, 100_000, 1_000_000} {
		for seed := range uint64(3) {
			var s hll
			for i := range n {
				s.add(splitmix(uint64(i)*1_000_003 + seed<<48))
			}
			est := float64(s.estimate())
			sigma := hllSigmaOf(float64(n))
			if d := math.Abs(est - float64(n)); d > 3*sigma+1 {
				t.Errorf("n=%d seed %d: estimate %.0f, off by %.0f > 3σ = %.1f", n, seed, est, d, 3*sigma)
			}
			if n == 1_000_000 && seed == 0 {
				t.Logf("n=%d: estimate %.0f (relative error %.4f, σ %.4f)", n, est, (est-float64(n))/float64(n), sigma/float64(n))
			}
		}
	}
}

// TestHLLDeterministic: the same values added in any order, or split
// between sketches merged in any order, give identical registers and
// encodings — sparse or dense — and a duplicate changes nothing.
func TestHLLDeterministic(t *testing.T) {
	for _, n := range []int{3, 900, 4096, 4200, 30_000} {
		hashes := make([]uint64, n)
		for i := range hashes {
			hashes[i] = splitmix(uint64(i) + 7)
		}
		var one hll
		for _, h := range hashes {
			one.add(h)
		}
		want := one.appendEncoded(nil)
		rng := rand.New(rand.NewPCG(uint64(n), 1))
		for trial := range 5 {
			rng.Shuffle(len(hashes), func(i, j int) { hashes[i], hashes[j] = hashes[j], hashes[i] })
			parts := make([]*hll, 1+rng.IntN(5))
			for i := range parts {
				parts[i] = &hll{}
			}
			for _, h := range hashes {
				parts[rng.IntN(len(parts))].add(h)
				if rng.IntN(10) == 0 {
					parts[rng.IntN(len(parts))].add(h) // a duplicate
				}
			}
			merged := &hll{}
			for _, i := range rng.Perm(len(parts)) {
				if trial%2 == 1 {
					// Through the encoding.
					d, err := decodeHLL(parts[i].appendEncoded(nil))
					if err != nil {
						t.Fatal(err)
					}
					parts[i] = d
				}
				merged.merge(parts[i])
			}
			if got := merged.appendEncoded(nil); !bytes.Equal(got, want) {
				t.Fatalf("n=%d trial %d: encoding differs (%d vs %d bytes)", n, trial, len(got), len(want))
			}
			if merged.estimate() != one.estimate() {
				t.Fatalf("n=%d: estimate %d vs %d", n, merged.estimate(), one.estimate())
			}
		}
		if n >= 30_000 && want[0] != hllFmtDense {
			t.Errorf("n=%d: encoded sparse", n)
		}
	}
}

func TestHashSetEncoding(t *testing.T) {
	for _, n := range []int{0, 1, 2, 63, 64, 65, 1000, 100_000} {
		var s hashSet
		var want []uint64
		for i := range n {
			h := splitmix(uint64(i))
			s.add(h)
			s.add(h)
			want = append(want, h)
		}
		slices.Sort(want)
		if s.len() != n {
			t.Fatalf("n=%d: len %d", n, s.len())
		}
		enc := s.appendEncoded(nil)
		d, err := decodeHashSet(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.sorted, want) {
			t.Fatalf("n=%d: decoded set differs", n)
		}
	}
	for _, bad := range [][]byte{nil, {2, 1, 0, 0, 0, 0, 0, 0, 0}, {1, 1, 2, 3}, {2, 5, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0}} {
		if _, err := decodeHashSet(bad); err == nil {
			t.Errorf("decodeHashSet(%v): no error", bad)
		}
	}
}

// FuzzMergeState: arbitrary bytes never panic the state decoder, and a
// state it accepts encodes to a state that decodes to the same encoding.
func FuzzMergeState(f *testing.F) {
	p := propPlan(f, propSpec())
	rng := rand.New(rand.NewPCG(3, 4))
	rec := propRecord(rng, 400, false)
	g := newGroupTable(p)
	if _, err := p.addBatch(g, rec, nil, &batchState{}); err != nil {
		f.Fatal(err)
	}
	rec.Release()
	var part []byte
	for i := range min(g.len(), 20) {
		var buf []byte
		buf, part = g.appendState(buf, part, int32(i))
		f.Add(buf)
	}
	f.Add([]byte{})
	f.Add([]byte{stateFormat})
	f.Fuzz(func(t *testing.T, b []byte) {
		g := newGroupTable(p)
		id := g.lookup([]byte("key"))
		g.sync()
		if err := g.mergeState(id, b); err != nil {
			return
		}
		enc, _ := g.appendState(nil, nil, id)
		g2 := newGroupTable(p)
		id2 := g2.lookup([]byte("key"))
		g2.sync()
		if err := g2.mergeState(id2, enc); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		if enc2, _ := g2.appendState(nil, nil, id2); !bytes.Equal(enc, enc2) {
			t.Fatal("re-encoded state is not stable")
		}
	})
}

func TestPartitionFilter(t *testing.T) {
	h := time.Hour.Microseconds()
	f := partitionFilter([]int64{0, h, 2 * h, 5 * h, 7 * h, 8 * h}, h)
	got := f.String()
	for _, want := range []string{"window_start", "Or"} {
		if !strings.Contains(got, want) {
			t.Errorf("filter %s lacks %q", got, want)
		}
	}
	if n := strings.Count(got, "GreaterThanEqual") + strings.Count(got, ">="); n != 3 {
		t.Errorf("filter %s: %d ranges, want 3", got, n)
	}
}
