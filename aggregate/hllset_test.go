package aggregate

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestHLLOfSorted: a sketch built from a list of distinct hashes has the
// registers, encoding and estimate of one that added them one by one (with
// repeats, in any order), sparse and dense; hllOfSet, with a state merged
// in, encodes and counts as the row-by-row accumulator does.
func TestHLLOfSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 2, 100, hllSparseMax, hllSparseMax + 1, 6000, 50_000} {
		var added []uint64
		byRow := &hll{}
		for range n {
			h := r.Uint64()
			added = append(added, h)
			byRow.add(h)
			if r.IntN(4) == 0 {
				// A repeat.
				byRow.add(added[r.IntN(len(added))])
			}
		}
		distinct := slices.Clone(added)
		slices.Sort(distinct)
		distinct = slices.Compact(distinct)
		built := hllOfSorted(distinct)
		if got, want := built.appendEncoded(nil), byRow.appendEncoded(nil); !bytes.Equal(got, want) {
			t.Fatalf("%d hashes: built from the set encodes to %d bytes, row by row to %d, or differs", n, len(got), len(want))
		}
		if got, want := built.estimate(), byRow.estimate(); got != want {
			t.Fatalf("%d hashes: estimate %d built from the set, %d row by row", n, got, want)
		}

		// The accumulators: a set and a derived sketch against a
		// row-by-row sketch, each with the same state merged into group 1.
		set := newDistinctAcc().(*distinctAcc[hashSet, *hashSet])
		derived := &hllOfSet{set: set, extra: newHLLAcc().(*distinctAcc[hll, *hll])}
		plain := newHLLAcc().(*distinctAcc[hll, *hll])
		for _, a := range []accumulator{set, derived, plain} {
			a.grow(2)
		}
		for _, h := range added {
			for g := range int32(2) {
				set.sketch(g).add(h)
				plain.sketch(g).add(h)
			}
		}
		other := &hll{}
		for range 300 {
			other.add(r.Uint64())
		}
		state := other.appendEncoded(nil)
		for _, a := range []accumulator{derived, plain} {
			if err := a.mergeState(1, state); err != nil {
				t.Fatal(err)
			}
		}
		for g := range int32(2) {
			if got, want := derived.appendState(nil, g), plain.appendState(nil, g); !bytes.Equal(got, want) {
				t.Fatalf("%d hashes, group %d: derived state of %d bytes, row by row %d, or differs", n, g, len(got), len(want))
			}
			if got, want := derived.rankValue(g), plain.rankValue(g); got != want {
				t.Fatalf("%d hashes, group %d: derived count %v, row by row %v", n, g, got, want)
			}
		}
	}
}
