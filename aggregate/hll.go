package aggregate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"

	"github.com/apache/arrow-go/v18/arrow/array"
)

// HyperLogLog parameters. Precision 14 gives 16,384 registers and a
// relative standard error of 1.04/√16384 ≈ 0.81 %.
const (
	hllP = 14
	hllM = 1 << hllP
	// hllQ is the number of hash bits left after the register index; a
	// register holds the position of the first 1 bit among them (1..q+1).
	hllQ = 64 - hllP
	// hllSparseMax is the most non-zero registers a sketch encodes
	// sparsely (index delta and value per register, about 2–3 bytes each);
	// above it the dense encoding (6 bits per register, 12,288 bytes) is
	// smaller. The encoding depends only on the registers, so equal
	// sketches encode to equal bytes whatever their history.
	hllSparseMax = 4096
	// hllPendingMin is the least number of unsorted sparse entries buffered
	// before they are sorted into the sparse list.
	hllPendingMin = 256
)

// hll is a mergeable HyperLogLog sketch of 64-bit hashes. Small sketches
// keep their non-zero registers as a sorted list (sparse) plus an unsorted
// buffer of new entries; once more than hllSparseMax registers are set
// they switch to an array of all registers (dense). Both hold the same
// registers: the representation never changes an estimate.
type hll struct {
	// sparse holds idx<<8 | value, sorted by idx, one entry per index.
	sparse []uint32
	// pending holds entries not yet merged into sparse.
	pending []uint32
	// dense, when non-nil, holds every register; sparse and pending are
	// then empty.
	dense []uint8
}

// hllEntry maps a hash to its register index and value.
func hllEntry(h uint64) (idx uint32, val uint8) {
	idx = uint32(h >> hllQ)
	w := h<<hllP | 1<<(hllP-1) // guard bit: at most q+1
	return idx, uint8(bits.LeadingZeros64(w)) + 1
}

func (s *hll) cardinality() int64 { return s.estimate() }

func (s *hll) empty() bool { return s.dense == nil && len(s.sparse) == 0 && len(s.pending) == 0 }

// add records one hash.
func (s *hll) add(h uint64) {
	idx, val := hllEntry(h)
	if s.dense != nil {
		if val > s.dense[idx] {
			s.dense[idx] = val
		}
		return
	}
	if s.pending == nil {
		s.pending = make([]uint32, 0, 8)
	}
	s.pending = append(s.pending, idx<<8|uint32(val))
	if len(s.pending) >= max(hllPendingMin, len(s.sparse)) {
		s.compact()
	}
}

// compact merges pending entries into the sorted sparse list, keeping the
// largest value per index, and turns the sketch dense when it grew past
// hllSparseMax registers.
func (s *hll) compact() {
	if len(s.pending) == 0 {
		return
	}
	sortUniform(s.pending, hllP+8)
	merged := make([]uint32, 0, len(s.sparse)+len(s.pending))
	i, j := 0, 0
	for i < len(s.sparse) || j < len(s.pending) {
		var e uint32
		if j >= len(s.pending) || (i < len(s.sparse) && s.sparse[i] <= s.pending[j]) {
			e = s.sparse[i]
			i++
		} else {
			e = s.pending[j]
			j++
		}
		// Entries are sorted by (idx, value): a later entry with the same
		// index has a value at least as large.
		if n := len(merged); n > 0 && merged[n-1]>>8 == e>>8 {
			merged[n-1] = e
			continue
		}
		merged = append(merged, e)
	}
	s.sparse, s.pending = merged, s.pending[:0]
	if len(s.sparse) > hllSparseMax {
		s.toDense()
	}
}

func (s *hll) toDense() {
	d := make([]uint8, hllM)
	for _, e := range s.sparse {
		if v := uint8(e); v > d[e>>8] {
			d[e>>8] = v
		}
	}
	for _, e := range s.pending {
		if v := uint8(e); v > d[e>>8] {
			d[e>>8] = v
		}
	}
	s.dense, s.sparse, s.pending = d, nil, nil
}

// merge folds o into s: the register-wise maximum, which is associative,
// commutative and idempotent.
func (s *hll) merge(o *hll) {
	if o == nil {
		return
	}
	if o.dense != nil {
		if s.dense == nil {
			s.toDense()
		}
		for i, v := range o.dense {
			if v > s.dense[i] {
				s.dense[i] = v
			}
		}
		return
	}
	if s.dense != nil {
		for _, list := range [][]uint32{o.sparse, o.pending} {
			for _, e := range list {
				if v := uint8(e); v > s.dense[e>>8] {
					s.dense[e>>8] = v
				}
			}
		}
		return
	}
	s.pending = append(s.pending, o.sparse...)
	s.pending = append(s.pending, o.pending...)
	s.compact()
}

// histogram counts registers per value: c[k] registers hold k.
func (s *hll) histogram() [hllQ + 2]int {
	var c [hllQ + 2]int
	if s.dense != nil {
		for _, v := range s.dense {
			c[v]++
		}
		return c
	}
	s.compact()
	if s.dense != nil {
		return s.histogram()
	}
	c[0] = hllM - len(s.sparse)
	for _, e := range s.sparse {
		c[uint8(e)]++
	}
	return c
}

// estimate is the cardinality estimate by Ertl's improved estimator
// ("New cardinality estimation algorithms for HyperLogLog sketches", 2017),
// which needs no empirical bias correction and is accurate from 0 up. It
// is a function of the registers alone.
func (s *hll) estimate() int64 {
	c := s.histogram()
	m := float64(hllM)
	z := m * hllTau(1-float64(c[hllQ+1])/m)
	for k := hllQ; k >= 1; k-- {
		z = 0.5 * (z + float64(c[k]))
	}
	z += m * hllSigma(float64(c[0])/m)
	return int64(math.Round(m * m / (2 * math.Ln2) / z))
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if z == prev {
			return z
		}
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == prev {
			return z / 3
		}
	}
}

// Encoding: a format byte, then
//
//	hllFmtSparse: uvarint n, then n × (uvarint index delta, value byte),
//	              indexes ascending (the first delta is from 0);
//	hllFmtDense:  hllM registers, 6 bits each, packed little-endian.
const (
	hllFmtSparse = 1
	hllFmtDense  = 2
	hllDenseLen  = hllM * 6 / 8
)

// encodedBound bounds the length of appendEncoded's encoding from above.
func (s *hll) encodedBound() int {
	if s.dense != nil {
		return 1 + max(hllDenseLen, binary.MaxVarintLen64+4*hllSparseMax)
	}
	// Sparse: a format byte, the count and per register an index delta
	// (≤ 3 bytes) and a value byte; dense past hllSparseMax registers.
	n := len(s.sparse) + len(s.pending)
	if n > hllSparseMax {
		return 1 + max(hllDenseLen, binary.MaxVarintLen64+4*hllSparseMax)
	}
	return 1 + binary.MaxVarintLen64 + 4*n
}

// appendEncoded appends the canonical encoding of the sketch's registers.
func (s *hll) appendEncoded(buf []byte) []byte {
	s.compact()
	if s.dense == nil {
		buf = append(buf, hllFmtSparse)
		buf = binary.AppendUvarint(buf, uint64(len(s.sparse)))
		prev := uint32(0)
		for _, e := range s.sparse {
			idx := e >> 8
			buf = binary.AppendUvarint(buf, uint64(idx-prev))
			buf = append(buf, uint8(e))
			prev = idx
		}
		return buf
	}
	nnz := 0
	for _, v := range s.dense {
		if v != 0 {
			nnz++
		}
	}
	if nnz <= hllSparseMax {
		// A dense sketch that a merge made dense early encodes like the
		// sparse sketch with the same registers.
		buf = append(buf, hllFmtSparse)
		buf = binary.AppendUvarint(buf, uint64(nnz))
		prev := 0
		for i, v := range s.dense {
			if v != 0 {
				buf = binary.AppendUvarint(buf, uint64(i-prev))
				buf = append(buf, v)
				prev = i
			}
		}
		return buf
	}
	buf = append(buf, hllFmtDense)
	var acc uint32
	var nacc uint
	for _, v := range s.dense {
		acc |= uint32(v) << nacc
		nacc += 6
		for nacc >= 8 {
			buf = append(buf, byte(acc))
			acc >>= 8
			nacc -= 8
		}
	}
	return buf
}

var errBadHLL = errors.New("bad HyperLogLog encoding")

// decodeHLL decodes an encoding made by appendEncoded.
func decodeHLL(b []byte) (*hll, error) {
	if len(b) == 0 {
		return nil, errBadHLL
	}
	switch b[0] {
	case hllFmtSparse:
		b = b[1:]
		n, k := binary.Uvarint(b)
		if k <= 0 || n > hllM || n*2 > uint64(len(b)-k) {
			return nil, fmt.Errorf("%w: sparse register count", errBadHLL)
		}
		b = b[k:]
		s := &hll{}
		if n > hllSparseMax {
			return nil, fmt.Errorf("%w: %d sparse registers exceed %d", errBadHLL, n, hllSparseMax)
		}
		s.sparse = make([]uint32, 0, n)
		idx := uint64(0)
		for i := uint64(0); i < n; i++ {
			d, k := binary.Uvarint(b)
			if k <= 0 || len(b) < k+1 {
				return nil, fmt.Errorf("%w: truncated sparse register", errBadHLL)
			}
			if i > 0 && d == 0 {
				return nil, fmt.Errorf("%w: register index repeated", errBadHLL)
			}
			idx += d
			v := b[k]
			b = b[k+1:]
			if idx >= hllM || v == 0 || v > hllQ+1 {
				return nil, fmt.Errorf("%w: register %d=%d out of range", errBadHLL, idx, v)
			}
			s.sparse = append(s.sparse, uint32(idx)<<8|uint32(v))
		}
		if len(b) != 0 {
			return nil, fmt.Errorf("%w: %d trailing bytes", errBadHLL, len(b))
		}
		return s, nil
	case hllFmtDense:
		b = b[1:]
		if len(b) != hllDenseLen {
			return nil, fmt.Errorf("%w: dense length %d, want %d", errBadHLL, len(b), hllDenseLen)
		}
		d := make([]uint8, hllM)
		var acc uint32
		var nacc uint
		j := 0
		for i := range d {
			for nacc < 6 {
				acc |= uint32(b[j]) << nacc
				j++
				nacc += 8
			}
			v := uint8(acc & 63)
			acc >>= 6
			nacc -= 6
			if v > hllQ+1 {
				return nil, fmt.Errorf("%w: register %d=%d out of range", errBadHLL, i, v)
			}
			d[i] = v
		}
		return &hll{dense: d}, nil
	}
	return nil, fmt.Errorf("%w: format %d", errBadHLL, b[0])
}

// hllOfSorted is the sketch of a list of distinct hashes, ascending: their
// entries come sorted by register (a hash's top bits), so the sparse list
// is built in one pass, keeping each register's largest value, as compact
// keeps it.
func hllOfSorted(hs []uint64) *hll {
	sparse := make([]uint32, 0, min(len(hs), hllSparseMax+1))
	for _, h := range hs {
		idx, val := hllEntry(h)
		e := idx<<8 | uint32(val)
		if n := len(sparse); n > 0 && sparse[n-1]>>8 == idx {
			sparse[n-1] = max(sparse[n-1], e)
			continue
		}
		sparse = append(sparse, e)
	}
	s := &hll{sparse: sparse}
	if len(sparse) > hllSparseMax {
		s.toDense()
	}
	return s
}

// hllOfSet is a batch aggregation's (a backfill's) approximate distinct
// count of a column that an exact distinct count of the spec also counts:
// a sketch's registers are a function of the distinct hashes added, which
// the exact set holds (the same hashes: a value's hash depends on the value
// alone), so a group's sketch is built from its set when it is read
// (hllOfSorted) instead of updated row by row, and merged with the states
// merged into it (extra). Registers, estimates and encodings are those the
// row-by-row sketch has.
type hllOfSet struct {
	set   *distinctAcc[hashSet, *hashSet]
	extra *distinctAcc[hll, *hll]
}

func (a *hllOfSet) grow(n int) { a.extra.grow(n) }

func (a *hllOfSet) update(_ []int32, _ *colView, signs []int8, _ *scratch) error {
	if hasDeletes(signs) {
		return ErrNotRetractable
	}
	return nil
}

func (a *hllOfSet) mergeGroup(dst int32, src accumulator, sg int32) {
	// The sets merge on their own.
	a.extra.mergeGroup(dst, src.(*hllOfSet).extra, sg)
}

// sketch is group g's sketch (nil: no values).
func (a *hllOfSet) sketch(g int32) *hll {
	var h *hll
	if int(g) < len(a.set.groups) && a.set.groups[g] != nil {
		s := a.set.groups[g]
		s.compact()
		h = hllOfSorted(s.sorted)
	}
	if e := a.extra.groups[g]; e != nil {
		if h == nil {
			h = &hll{}
		}
		h.merge(e)
	}
	return h
}

func (a *hllOfSet) appendState(buf []byte, g int32) []byte {
	h := a.sketch(g)
	if h == nil {
		return append(buf, 0)
	}
	return h.appendEncoded(buf)
}

func (a *hllOfSet) stateBound(g int32) int {
	// Registers set: at most the hashes, and the registers merged in.
	n := 0
	if int(g) < len(a.set.groups) && a.set.groups[g] != nil {
		n = len(a.set.groups[g].sorted) + len(a.set.groups[g].pending)
	}
	if e := a.extra.groups[g]; e != nil {
		n += len(e.sparse) + len(e.pending) + len(e.dense)
	}
	if n > hllSparseMax {
		return 1 + max(hllDenseLen, binary.MaxVarintLen64+4*hllSparseMax)
	}
	return 1 + binary.MaxVarintLen64 + 4*n
}

func (a *hllOfSet) mergeState(g int32, b []byte) error { return a.extra.mergeState(g, b) }

func (a *hllOfSet) count(g int32) int64 {
	h := a.sketch(g)
	if h == nil {
		return 0
	}
	return h.cardinality()
}

func (a *hllOfSet) appendValue(b array.Builder, g int32) error { return appendInt(b, a.count(g)) }
func (a *hllOfSet) rankValue(g int32) scalar                   { return scalar{i: a.count(g)} }
func (a *hllOfSet) rankKind() valueKind                        { return kInt }
