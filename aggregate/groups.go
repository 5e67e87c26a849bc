package aggregate

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// groupTable holds the partial aggregates of a set of groups, one group per
// (window start, dimension values), keyed by their encoded key.
type groupTable struct {
	p     *plan
	index map[string]int32
	keys  []string
	// rows is each group's net number of source rows (inserts less
	// deletes); a group whose rows reach 0 has no output row.
	rows []int64
	accs []accumulator
	// stateBytes estimates the bytes of the groups' encoded states (from
	// the states decoded and built), to size buffers.
	stateBytes int
	// first is the first-seen window of the tracked columns' values of
	// the rows added (nil without new_users or returning_users).
	first firstSeen
}

func newGroupTable(p *plan) *groupTable {
	t := &groupTable{p: p, index: map[string]int32{}}
	for _, m := range p.measures {
		t.accs = append(t.accs, newAccumulator(m))
	}
	if p.hasFirstSeen() {
		t.first = newFirstSeen(len(p.fsCols))
	}
	return t
}

// newBatchTable is newGroupTable for a batch aggregation (a backfill, a
// recompute), whose states start empty: an approximate distinct count of
// a column that an exact distinct count also counts is derived from the
// exact sets (hllOfSet) rather than updated row by row. (Cumulative
// windows fold their steps' accumulators, and keep their own.)
func newBatchTable(p *plan) *groupTable {
	t := newGroupTable(p)
	if p.cumulative() {
		return t
	}
	for m, mp := range p.measures {
		if mp.Fn != FnApproxCountDistinct {
			continue
		}
		for e, ep := range p.measures {
			set, ok := t.accs[e].(*distinctAcc[hashSet, *hashSet])
			if ep.Fn == FnCountDistinct && ep.Column == mp.Column && ok {
				t.accs[m] = &hllOfSet{set: set, extra: newHLLAcc().(*distinctAcc[hll, *hll])}
				break
			}
		}
	}
	return t
}

func (t *groupTable) len() int { return len(t.keys) }

// lookup returns the group of an encoded key, adding it when new. Callers
// call sync before touching accumulators.
func (t *groupTable) lookup(key []byte) int32 {
	if g, ok := t.index[string(key)]; ok {
		return g
	}
	k := string(key)
	g := int32(len(t.keys))
	t.index[k] = g
	t.keys = append(t.keys, k)
	t.rows = append(t.rows, 0)
	return g
}

// sync grows the accumulators to the groups.
func (t *groupTable) sync() {
	for _, a := range t.accs {
		a.grow(len(t.keys))
	}
}

// windowStart is the window start of an encoded key, in microseconds.
func windowStart(key string) int64 {
	return int64(binary.BigEndian.Uint64([]byte(key[:8])) ^ 1<<63)
}

// Key encoding: the window start as 8 bytes big-endian with the sign bit
// flipped (so keys of one dimension-free spec sort by time), then each
// dimension: 0 for null, or 1 and the value: 8 bytes (integers, sign bit
// flipped; doubles), 16 bytes (decimals), 1 byte (booleans), or uvarint
// length and bytes (strings, binary).

func appendWindow(buf []byte, ws int64) []byte {
	return binary.BigEndian.AppendUint64(buf, uint64(ws)^1<<63)
}

// appendDim appends row i of c as a key part.
func appendDim(buf []byte, c *colView, i int) []byte {
	if !c.valid(i) {
		return append(buf, 0)
	}
	buf = append(buf, 1)
	switch c.kind {
	case kInt:
		return binary.BigEndian.AppendUint64(buf, uint64(c.ints[i])^1<<63)
	case kFloat:
		return binary.BigEndian.AppendUint64(buf, canonicalFloatBits(c.floats[i]))
	case kDecimal:
		d := c.decs[i]
		buf = binary.BigEndian.AppendUint64(buf, uint64(d.HighBits()))
		return binary.BigEndian.AppendUint64(buf, d.LowBits())
	case kBool:
		if c.boolAt(i) {
			return append(buf, 1)
		}
		return append(buf, 0)
	}
	v := c.bytesAt(i)
	buf = binary.AppendUvarint(buf, uint64(len(v)))
	return append(buf, v...)
}

// decodeDims decodes the dimension values of a key.
func (p *plan) decodeDims(key string, out []scalar) ([]scalar, error) {
	out = out[:0]
	b := []byte(key[8:])
	if p.cumulative() {
		// The step's number follows the dimensions.
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: key truncated", errBadState)
		}
		b = b[:len(b)-4]
	}
	for _, d := range p.dims {
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: key truncated", errBadState)
		}
		null := b[0] == 0
		b = b[1:]
		if null {
			out = append(out, scalar{null: true})
			continue
		}
		var v scalar
		switch d.kind {
		case kInt, kFloat:
			if len(b) < 8 {
				return nil, fmt.Errorf("%w: key truncated", errBadState)
			}
			u := binary.BigEndian.Uint64(b)
			if d.kind == kInt {
				v.i = int64(u ^ 1<<63)
			} else {
				v.f = math.Float64frombits(u)
			}
			b = b[8:]
		case kDecimal:
			if len(b) < 16 {
				return nil, fmt.Errorf("%w: key truncated", errBadState)
			}
			v.d = decimal128.New(int64(binary.BigEndian.Uint64(b)), binary.BigEndian.Uint64(b[8:]))
			b = b[16:]
		case kBool:
			if len(b) < 1 {
				return nil, fmt.Errorf("%w: key truncated", errBadState)
			}
			v.b = b[0] == 1
			b = b[1:]
		case kBytes:
			n, k := binary.Uvarint(b)
			if k <= 0 || n > uint64(len(b)-k) {
				return nil, fmt.Errorf("%w: key truncated", errBadState)
			}
			v.s = string(b[k : k+int(n)])
			b = b[k+int(n):]
		}
		out = append(out, v)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: key has %d trailing bytes", errBadState, len(b))
	}
	return out, nil
}

// mergeGroupFrom folds group sg of o into t.
func (t *groupTable) mergeGroupFrom(o *groupTable, sg int32) {
	dst := t.lookup([]byte(o.keys[sg]))
	t.sync()
	t.rows[dst] += o.rows[sg]
	for m, a := range t.accs {
		a.mergeGroup(dst, o.accs[m], sg)
	}
}

// mergeFrom folds every group of o into t.
func (t *groupTable) mergeFrom(o *groupTable) {
	ids := make([]int32, len(o.keys))
	for sg, k := range o.keys {
		ids[sg] = t.lookup([]byte(k))
	}
	t.sync()
	for sg, dst := range ids {
		t.rows[dst] += o.rows[sg]
		for m, a := range t.accs {
			a.mergeGroup(dst, o.accs[m], int32(sg))
		}
	}
	if t.first != nil {
		t.first.merge(o.first)
	}
}

// State encoding of one group (the _state column): a format byte
// (stateFormat), uvarint measure count, varint net row count, then per
// measure its function code, uvarint length and the measure's state.

func fnCode(f Fn) byte {
	switch f {
	case FnCount:
		return 1
	case FnSum:
		return 2
	case FnMin:
		return 3
	case FnMax:
		return 4
	case FnAvg:
		return 5
	case FnCountDistinct:
		return 6
	case FnApproxCountDistinct:
		return 7
	case FnNewUsers:
		return 8
	case FnReturningUsers:
		return 9
	}
	return 0
}

// appendState appends group g's state; part is scratch space.
func (t *groupTable) appendState(buf, part []byte, g int32) ([]byte, []byte) {
	buf = append(buf, stateFormat)
	buf = binary.AppendUvarint(buf, uint64(len(t.accs)))
	buf = binary.AppendVarint(buf, t.rows[g])
	for m, a := range t.accs {
		part = a.appendState(part[:0], g)
		buf = append(buf, fnCode(t.p.measures[m].Fn))
		buf = binary.AppendUvarint(buf, uint64(len(part)))
		buf = append(buf, part...)
	}
	return buf, part
}

// stateBound estimates the bytes of group g's encoded state from above
// (closely for distinct counts, whose states are the large ones), to size
// the buffer states are encoded into.
func (t *groupTable) stateBound(g int32) int {
	n := 1 + 2*binary.MaxVarintLen64
	for _, a := range t.accs {
		n += 1 + binary.MaxVarintLen64
		if b, ok := a.(interface{ stateBound(g int32) int }); ok {
			n += b.stateBound(g)
		} else {
			n += 32
		}
	}
	return n
}

// mergeState folds a serialised state into group g. On error the group
// may hold part of the state.
func (t *groupTable) mergeState(g int32, b []byte) error {
	size := len(b)
	if len(b) == 0 || b[0] != stateFormat {
		return fmt.Errorf("%w: format byte", errBadState)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n != uint64(len(t.accs)) {
		return fmt.Errorf("%w: %d measures, the spec has %d", errBadState, n, len(t.accs))
	}
	b = b[k:]
	rows, k := binary.Varint(b)
	if k <= 0 {
		return fmt.Errorf("%w: row count", errBadState)
	}
	b = b[k:]
	for m, a := range t.accs {
		if len(b) == 0 || b[0] != fnCode(t.p.measures[m].Fn) {
			return fmt.Errorf("%w: measure %d is not %s", errBadState, m, t.p.measures[m].Fn)
		}
		l, k := binary.Uvarint(b[1:])
		if k <= 0 || l > uint64(len(b)-1-k) {
			return fmt.Errorf("%w: measure %d length", errBadState, m)
		}
		part := b[1+k : 1+k+int(l)]
		b = b[1+k+int(l):]
		if err := a.mergeState(g, part); err != nil {
			return fmt.Errorf("measure %s: %w", t.p.measures[m].Name, err)
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errBadState, len(b))
	}
	t.rows[g] += rows
	t.stateBytes += size
	return nil
}

// partitions returns the output partitions (window start floored to the
// partition unit, in microseconds) of the table's groups, ascending.
func (t *groupTable) partitions() []int64 {
	seen := map[int64]bool{}
	var out []int64
	for _, k := range t.keys {
		pt := floorDiv(windowStart(k), t.p.unit) * t.p.unit
		if !seen[pt] {
			seen[pt] = true
			out = append(out, pt)
		}
	}
	slices.Sort(out)
	return out
}

// floorDiv is a/b rounded toward negative infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
