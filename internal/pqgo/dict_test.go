package pqgo

import (
	"hash/maphash"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// dictPaysMap is dictPays as it was before keySet and the early stop (for
// the two column types the tests use): a map of every sampled key, decided
// at the end.
func dictPaysMap(arrs []arrow.Array) bool {
	seen := make(map[uint64]struct{}, sampleRows/4)
	var n, plain, dictBytes int64
	varlen := false
	for _, arr := range arrs {
		var key func(i int) uint64
		width := int64(0)
		var get func(i int) []byte
		switch a := arr.(type) {
		case *array.Int64:
			v := a.Int64Values()
			width = 8
			key = func(i int) uint64 { return uint64(v[i]) }
		default:
			get, _ = bytesOf(arr)
			varlen = true
			key = func(i int) uint64 { return maphash.Bytes(sampleSeed, get(i)) }
		}
		for i := 0; i < arr.Len() && n < sampleRows; i++ {
			if arr.IsNull(i) {
				continue
			}
			n++
			k := key(i)
			w := width
			if get != nil {
				w = int64(len(get(i))) + 4
			}
			plain += w
			if _, ok := seen[k]; !ok {
				seen[k] = struct{}{}
				dictBytes += w
			}
		}
	}
	if n == 0 {
		return true
	}
	est := dictBytes + n*int64(bits.Len(uint(len(seen))))/8
	if !varlen {
		return 2*est < plain
	}
	return est < plain
}

// TestDictPaysMatchesMap checks dictPays against the plain map version over
// columns from all-equal to all-distinct, with nulls, split over batches
// and longer than the sample.
func TestDictPaysMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var scratch keySet
	for _, rows := range []int{0, 1, 7, 1000, 40000, 70000} {
		for _, distinct := range []int{1, 2, 100, 3000, 20000, 1 << 30} {
			for _, nullEvery := range []int{0, 3} {
				var ints, strs []arrow.Array
				for part := 0; part < 3; part++ {
					ib := array.NewInt64Builder(memory.DefaultAllocator)
					sb := array.NewStringBuilder(memory.DefaultAllocator)
					for i := 0; i < rows/3+part; i++ {
						if nullEvery > 0 && i%nullEvery == 0 {
							ib.AppendNull()
							sb.AppendNull()
							continue
						}
						v := rng.Int64N(int64(distinct))
						ib.Append(v)
						sb.Append("v" + strconv.FormatInt(v, 10))
					}
					ints = append(ints, ib.NewArray())
					strs = append(strs, sb.NewArray())
					ib.Release()
					sb.Release()
				}
				for _, arrs := range [][]arrow.Array{ints, strs} {
					if got, want := dictPays(arrs, &scratch), dictPaysMap(arrs); got != want {
						t.Errorf("rows %d, distinct %d, nulls every %d, %s: dictPays %v, map version %v",
							rows, distinct, nullEvery, arrs[0].DataType(), got, want)
					}
				}
				for _, a := range append(ints, strs...) {
					a.Release()
				}
			}
		}
	}
}

func TestKeySet(t *testing.T) {
	var s keySet
	s.reset(100)
	for _, k := range []uint64{0, 1, 0, 1 << 63, 5, 5, 1 << 63} {
		s.add(k)
	}
	if s.len != 4 {
		t.Fatalf("len %d, want 4", s.len)
	}
	s.reset(3)
	if s.len != 0 || !s.add(0) || s.add(0) {
		t.Fatal("reset did not empty the set")
	}
}

// BenchmarkDictPays samples a flush's leading 32k values of a unique id
// column and of a low-cardinality string column, with dictPays and with
// the map version it replaced:
//
//	go test -run '^$' -bench DictPays ./internal/pqgo/
func BenchmarkDictPays(b *testing.B) {
	ib := array.NewInt64Builder(memory.DefaultAllocator)
	sb := array.NewStringBuilder(memory.DefaultAllocator)
	for i := range sampleRows {
		ib.Append(int64(i) * 7919)
		sb.Append("https://shop.example.com/item/" + strconv.Itoa(i%50))
	}
	ids, urls := []arrow.Array{ib.NewArray()}, []arrow.Array{sb.NewArray()}
	var seen keySet
	for _, c := range []struct {
		name string
		f    func([]arrow.Array) bool
	}{
		{"keyset", func(a []arrow.Array) bool { return dictPays(a, &seen) }},
		{"map", dictPaysMap},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				c.f(ids)
				c.f(urls)
			}
		})
	}
}
