package transform

import (
	"math"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestDimIndexIntKeys: an integer join key finds the last dimension row
// of its key, -1 for a missing or null key, whether the keys are dense
// (an array index) or sparse (a hash index).
func TestDimIndexIntKeys(t *testing.T) {
	facts := []*int64{p(0), p(1), p(2), p(3), nil, p(-1), p(1 << 40), p(math.MinInt64), p(math.MaxInt64), p(5), p(-3)}
	for _, tc := range []struct {
		name  string
		dim   []*int64
		dense bool
		want  []int32
	}{
		{"dense", []*int64{p(1), p(2), nil, p(2), p(5), p(3)}, true,
			[]int32{-1, 0, 3, 5, -1, -1, -1, -1, -1, 4, -1}},
		{"dense with negative keys", []*int64{p(-3), p(-1), p(0)}, true,
			[]int32{2, -1, -1, -1, -1, 1, -1, -1, -1, -1, 0}},
		{"sparse", []*int64{p(1), p(1 << 40), p(2), p(math.MinInt64)}, false,
			[]int32{-1, 0, 2, -1, -1, -1, 1, 3, -1, -1, -1}},
		{"extremes", []*int64{p(math.MaxInt64), p(math.MinInt64)}, false,
			[]int32{-1, -1, -1, -1, -1, -1, -1, 1, 0, -1, -1}},
		{"only nulls", []*int64{nil, nil}, false,
			[]int32{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := int64Array(tc.dim)
			defer keys.Release()
			x := &dimIndex{rows: len(tc.dim)}
			if err := x.index([]arrow.Array{keys}); err != nil {
				t.Fatal(err)
			}
			if got := x.dense != nil; got != tc.dense {
				t.Errorf("dense index: %v, want %v", got, tc.dense)
			}
			f := int64Array(facts)
			defer f.Release()
			got, err := x.lookup([]arrow.Array{f}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("lookup: %v, want %v", got, tc.want)
			}
		})
	}
}

func p(v int64) *int64 { return &v }

func int64Array(vs []*int64) arrow.Array {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	for _, v := range vs {
		if v == nil {
			b.AppendNull()
		} else {
			b.Append(*v)
		}
	}
	return b.NewArray()
}
