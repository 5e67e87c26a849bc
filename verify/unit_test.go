package verify

import (
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestRender(t *testing.T) {
	mem := memory.DefaultAllocator
	i32 := array.NewInt32Builder(mem)
	i32.AppendValues([]int32{7}, nil)
	i32.AppendNull()
	i64 := array.NewInt64Builder(mem)
	i64.AppendValues([]int64{7}, nil)
	s := array.NewStringBuilder(mem)
	s.AppendValues([]string{`\N`, ""}, nil)
	d := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 10, Scale: 2})
	d.Append(decimal128.FromI64(-1234))
	ts := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
	ts.Append(arrow.Timestamp(1_000_001))
	bin := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
	bin.Append([]byte{0xab, 0x01})
	a32, a64, as, ad, ats, abin := i32.NewArray(), i64.NewArray(), s.NewArray(), d.NewArray(), ts.NewArray(), bin.NewArray()
	for _, tc := range []struct {
		a    arrow.Array
		i    int
		want string
	}{
		{a32, 0, "7"}, {a64, 0, "7"}, // widths do not matter
		{a32, 1, `\N`}, {as, 0, `"\\N"`}, {as, 1, `""`}, // null differs from any string
		{ad, 0, "-12.34"},
		{ats, 0, "1970-01-01T00:00:01.000001Z"},
		{abin, 0, "0xab01"},
	} {
		if got := renderString(tc.a, tc.i); got != tc.want {
			t.Errorf("%s[%d]: %q, want %q", tc.a.DataType(), tc.i, got, tc.want)
		}
	}
}

func TestMeasureErrors(t *testing.T) {
	for _, tc := range []struct{ want, got, abs, rel float64 }{
		{100, 101, 1, 0.01},
		{100, 100, 0, 0},
		{0, 2, 2, math.Inf(1)},
		{-4, -2, 2, 0.5},
	} {
		abs, rel := measureErrors(tc.want, tc.got)
		if abs != tc.abs || rel != tc.rel {
			t.Errorf("errors(%v, %v) = %v, %v; want %v, %v", tc.want, tc.got, abs, rel, tc.abs, tc.rel)
		}
	}
}

func TestPartCheck(t *testing.T) {
	pc := &partCheck{base: 10, end: 140, seen: make([]uint64, 3), dup: make([]uint64, 3)}
	for _, off := range []int64{3, 10, 11, 11, 139, 139, 139, 140, 500} {
		pc.mark(off)
	}
	if pc.below != 1 {
		t.Errorf("below: %d, want 1", pc.below)
	}
	for off, want := range map[int64]bool{10: true, 11: true, 12: false, 139: true} {
		if pc.has(off) != want {
			t.Errorf("has(%d) = %v", off, !want)
		}
	}
	var dups []int64
	for w, word := range pc.dup {
		for b := range 64 {
			if word&(1<<b) != 0 {
				dups = append(dups, pc.base+int64(w*64+b))
			}
		}
	}
	if len(dups) != 2 || dups[0] != 11 || dups[1] != 139 {
		t.Errorf("duplicates %v, want [11 139]", dups)
	}
}

func TestSplitPartition(t *testing.T) {
	for in, want := range map[string]struct {
		topic string
		p     int32
		ok    bool
	}{
		"clicks/3": {"clicks", 3, true}, "a/b/12": {"a/b", 12, true}, "binlog": {"", 0, false}, "t/x": {"", 0, false},
	} {
		topic, p, ok := splitPartition(in)
		if topic != want.topic || p != want.p || ok != want.ok {
			t.Errorf("splitPartition(%q) = %q, %d, %v", in, topic, p, ok)
		}
	}
}

func TestIntersect(t *testing.T) {
	mk := func(inexact bool, keys ...string) *TableReport {
		tr := newTableReport("t", 100)
		tr.inexact = inexact
		for _, k := range keys {
			tr.add(Difference{Kind: KindDifferent, Key: k, Column: "c"})
		}
		return tr
	}
	for _, tc := range []struct {
		name         string
		first, again *TableReport
		want         int64
	}{
		{"transient differences vanish", mk(true, "id=1", "id=2"), mk(true, "id=2", "id=3"), 1},
		{"an exact recheck stands alone", mk(true, "id=1"), mk(false, "id=2", "id=3"), 2},
		{"nothing in common", mk(true, "id=1"), mk(true, "id=4"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := intersect(tc.first, tc.again).Total(); got != tc.want {
				t.Errorf("differences %d, want %d", got, tc.want)
			}
		})
	}
}
