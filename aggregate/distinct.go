package aggregate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"unsafe"
)

// hashSet is an exact set of 64-bit value hashes: a sorted list plus an
// unsorted buffer of new hashes, sorted into the list once it is as long
// as the list (amortised O(log n) per insert, 8 bytes per element).
type hashSet struct {
	sorted  []uint64
	pending []uint64
}

const hashSetPendingMin = 64

func (s *hashSet) add(h uint64) {
	if s.pending == nil {
		// Small sets are the many: start them at 4 hashes rather than
		// growing 1, 2, 4.
		s.pending = make([]uint64, 0, 4)
	}
	s.pending = append(s.pending, h)
	if len(s.pending) >= max(hashSetPendingMin, len(s.sorted)) {
		s.compact()
	}
}

func (s *hashSet) compact() {
	if len(s.pending) == 0 {
		return
	}
	sortHashes(s.pending)
	s.pending = slices.Compact(s.pending)
	if len(s.sorted) == 0 {
		// The sorted hashes become the list: no copy.
		s.sorted, s.pending = s.pending, s.sorted[:0]
		return
	}
	// Keep the new hashes only, then merge them in from the back, in
	// place: a set growing by a few hashes is not copied. A few hashes
	// are looked up; many are found in one walk along both lists.
	fresh := s.pending[:0]
	if len(s.pending)*16 < len(s.sorted) {
		for _, h := range s.pending {
			if _, found := slices.BinarySearch(s.sorted, h); !found {
				fresh = append(fresh, h)
			}
		}
	} else {
		i := 0
		for _, h := range s.pending {
			for i < len(s.sorted) && s.sorted[i] < h {
				i++
			}
			if i == len(s.sorted) || s.sorted[i] != h {
				fresh = append(fresh, h)
			}
		}
	}
	n, k := len(s.sorted), len(fresh)
	if k > 0 {
		s.sorted = slices.Grow(s.sorted, k)[:n+k]
		i, j := n-1, k-1
		for w := n + k - 1; j >= 0; w-- {
			if i >= 0 && s.sorted[i] > fresh[j] {
				s.sorted[w] = s.sorted[i]
				i--
			} else {
				s.sorted[w] = fresh[j]
				j--
			}
		}
	}
	s.pending = s.pending[:0]
}

// sortHashes sorts a list of hashes, or (sortUniform) of other values
// whose top bits are uniformly distributed (HyperLogLog entries, whose top
// bits are a hash's). It distributes them into buckets by their top bits in place (a
// pass to count, one to permute) and sorts the few values of each bucket
// by insertion: linear time, where a comparison sort takes log₂ n passes.
func sortHashes[T uint32 | uint64](a []T) { sortUniform(a, uint(8*unsafe.Sizeof(a[0]))) }

// sortUniform is sortHashes of values below 2^width.
func sortUniform[T uint32 | uint64](a []T, width uint) {
	if len(a) < 64 {
		slices.Sort(a)
		return
	}
	// About two values a bucket, at most 2¹¹ buckets.
	b := min(bits.Len(uint(len(a)))-2, 11)
	shift := width - uint(b)
	nb := 1 << b
	var starts, next [1<<11 + 1]int
	for _, v := range a {
		starts[v>>shift+1]++
	}
	for i := 1; i <= nb; i++ {
		starts[i] += starts[i-1]
	}
	copy(next[:nb], starts[:nb])
	for bk := range nb {
		for next[bk] < starts[bk+1] {
			v := a[next[bk]]
			for vb := int(v >> shift); vb != bk; vb = int(v >> shift) {
				a[next[vb]], v = v, a[next[vb]]
				next[vb]++
			}
			a[next[bk]] = v
			next[bk]++
		}
	}
	for bk := range nb {
		bucket := a[starts[bk]:starts[bk+1]]
		if len(bucket) > 24 {
			slices.Sort(bucket)
			continue
		}
		for i := 1; i < len(bucket); i++ {
			v := bucket[i]
			j := i
			for ; j > 0 && bucket[j-1] > v; j-- {
				bucket[j] = bucket[j-1]
			}
			bucket[j] = v
		}
	}
}

// merge folds o into s (set union).
func (s *hashSet) merge(o *hashSet) {
	if o == nil {
		return
	}
	s.pending = append(s.pending, o.sorted...)
	s.pending = append(s.pending, o.pending...)
	s.compact()
}

func (s *hashSet) len() int {
	s.compact()
	return len(s.sorted)
}

func (s *hashSet) cardinality() int64 { return int64(s.len()) }

func (s *hashSet) empty() bool { return len(s.sorted) == 0 && len(s.pending) == 0 }

// encodedBound bounds the length of appendEncoded's encoding from above.
func (s *hashSet) encodedBound() int {
	return binary.MaxVarintLen64 + 8*(len(s.sorted)+len(s.pending))
}

// appendEncoded appends uvarint n and the n hashes ascending, 8 bytes
// little-endian each: canonical, and as fast to write and read as a copy.
// (Delta varints would save nothing: n hashes spread over 2^64 are 2^64/n
// apart, 8 varint bytes for sets up to 128 and 7 up to 16,384.)
func (s *hashSet) appendEncoded(buf []byte) []byte {
	s.compact()
	buf = binary.AppendUvarint(buf, uint64(len(s.sorted)))
	buf = slices.Grow(buf, 8*len(s.sorted))
	for _, h := range s.sorted {
		buf = binary.LittleEndian.AppendUint64(buf, h)
	}
	return buf
}

var errBadSet = errors.New("bad distinct set encoding")

func decodeHashSet(b []byte) (*hashSet, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k)/8 || uint64(len(b)-k) != 8*n {
		return nil, fmt.Errorf("%w: %d bytes for the elements", errBadSet, len(b)-max(k, 0))
	}
	b = b[k:]
	s := &hashSet{sorted: make([]uint64, n)}
	for i := range s.sorted {
		h := binary.LittleEndian.Uint64(b[8*i:])
		if i > 0 && h <= s.sorted[i-1] {
			return nil, fmt.Errorf("%w: elements not ascending", errBadSet)
		}
		s.sorted[i] = h
	}
	return s, nil
}
