package aggregate

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// outRowsPerBatch caps the rows of one output record batch.
const outRowsPerBatch = 1 << 16

// outGroup is one output row being built.
type outGroup struct {
	// g is the row's group; -1 for a step of a cumulative window that
	// has no rows of its own (its state is the empty state).
	g    int32
	ws   int64
	we   int64
	dims []scalar
	rank int32
	// first marks the first row of a run whose values are computed
	// together: a cumulative window's steps of one group.
	first bool
}

// order returns the groups of t that have rows, decoded and sorted: by
// window start and dimensions, or, with a Top, by window start, Within
// dimensions and rank, with ranks assigned.
func (p *plan) order(t *groupTable) ([]outGroup, error) {
	out := make([]outGroup, 0, t.len())
	nd := len(p.dims)
	flat := make([]scalar, t.len()*nd)
	for g, k := range t.keys {
		switch r := t.rows[g]; {
		case r == 0:
			continue // every row retracted: the group is gone
		case r < 0:
			return nil, permanent(fmt.Errorf("aggregate %s: group at %s has %d rows: more deletes than inserts reached it",
				p.spec.Name, fmtMicros(windowStart(k)), r))
		}
		i := len(out)
		dims, err := p.decodeDims(k, flat[i*nd:i*nd:(i+1)*nd])
		if err != nil {
			return nil, err
		}
		out = append(out, outGroup{g: int32(g), ws: windowStart(k), dims: dims, first: true})
	}
	cmpDims := func(a, b outGroup, idx []int) int {
		for _, d := range idx {
			if c := compareScalar(p.dims[d].kind, a.dims[d], b.dims[d]); c != 0 {
				return c
			}
		}
		return 0
	}
	all := make([]int, len(p.dims))
	for i := range all {
		all[i] = i
	}
	if p.topBy < 0 {
		slices.SortFunc(out, func(a, b outGroup) int {
			if a.ws != b.ws {
				return cmpInt(a.ws, b.ws)
			}
			if c := cmpDims(a, b, all); c != 0 {
				return c
			}
			return cmpInt(p.stepOf(t.keys[a.g]), p.stepOf(t.keys[b.g]))
		})
		if p.cumulative() {
			return p.expandSteps(t, out, all, cmpDims), nil
		}
		for i := range out {
			out[i].we = p.windowEnd(out[i].ws)
		}
		return out, nil
	}
	acc := t.accs[p.topBy]
	kind := acc.rankKind()
	vals := make(map[int32]scalar, len(out))
	for _, o := range out {
		vals[o.g] = acc.rankValue(o.g)
	}
	slices.SortFunc(out, func(a, b outGroup) int {
		if a.ws != b.ws {
			return cmpInt(a.ws, b.ws)
		}
		if c := cmpDims(a, b, p.within); c != 0 {
			return c
		}
		// Descending by the measure, nulls last.
		if c := compareScalar(kind, vals[b.g], vals[a.g]); c != 0 {
			return c
		}
		return cmpDims(a, b, all)
	})
	var rank int32
	for i := range out {
		out[i].we = p.windowEnd(out[i].ws)
		if i == 0 || out[i].ws != out[i-1].ws || cmpDims(out[i], out[i-1], p.within) != 0 {
			rank = 0
		}
		rank++
		out[i].rank = rank
	}
	return out, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// build returns the output rows of every group of t with rows, as record
// batches of sc (the output table's Arrow schema), and the bytes of their
// states. Columns of the table that the spec does not produce are null.
// New and returning users count against the first-seen windows of t's
// own rows (a backfill's).
func (p *plan) build(t *groupTable, sc *arrow.Schema, mem memory.Allocator) ([]arrow.RecordBatch, int, error) {
	return p.buildWith(t, sc, mem, t.first)
}

// buildWith is build with the first-seen windows fs that new_users and
// returning_users count against (nil without such measures).
func (p *plan) buildWith(t *groupTable, sc *arrow.Schema, mem memory.Allocator, fs firstSeen) ([]arrow.RecordBatch, int, error) {
	groups, err := p.order(t)
	if err != nil {
		return nil, 0, err
	}
	type colSrc struct {
		kind    int // 0 other (null), 1 window start, 2 window end, 3 dim, 4 measure, 5 rank, 6 state, 7 dt, 8 hour
		idx     int
		dimKind valueKind
	}
	local := func(name string) bool { return slices.Contains(p.spec.Window.LocalColumns, name) }
	srcs := make([]colSrc, sc.NumFields())
	for i, f := range sc.Fields() {
		if (f.Name == ColDate || f.Name == ColHour) && local(f.Name) {
			srcs[i] = colSrc{kind: 7}
			if f.Name == ColHour {
				srcs[i].kind = 8
			}
			continue
		}
		switch f.Name {
		case ColWindowStart:
			srcs[i] = colSrc{kind: 1}
		case ColWindowEnd:
			srcs[i] = colSrc{kind: 2}
		case ColState:
			srcs[i] = colSrc{kind: 6}
		case ColRank:
			if p.topBy >= 0 {
				srcs[i] = colSrc{kind: 5}
			}
		default:
			for d, dp := range p.dims {
				if dp.name == f.Name {
					srcs[i] = colSrc{kind: 3, idx: d, dimKind: dp.kind}
				}
			}
			for m, mp := range p.measures {
				if mp.Name == f.Name {
					srcs[i] = colSrc{kind: 4, idx: m}
				}
			}
		}
		if srcs[i].kind == 0 && !f.Nullable {
			return nil, 0, permanent(fmt.Errorf("aggregate %s: output column %q is required but the spec does not produce it", p.spec.Name, f.Name))
		}
	}

	var out []arrow.RecordBatch
	fail := func(i int, err error) ([]arrow.RecordBatch, int, error) {
		releaseAll(out)
		return nil, 0, fmt.Errorf("aggregate %s: column %s: %w", p.spec.Name, sc.Field(i).Name, err)
	}
	stateBytes := 0
	var part []byte
	var vals []scalar
	for start, end := 0, 0; start < len(groups); start = end {
		// A chunk ends at a run's end, so that its values are computed
		// together.
		end = min(start+outRowsPerBatch, len(groups))
		if end < len(groups) && !groups[end].first {
			e := end
			for e > start && !groups[e].first {
				e--
			}
			if e > start {
				end = e
			} else {
				for end < len(groups) && !groups[end].first {
					end++
				}
			}
		}
		chunk := groups[start:end]
		if p.needsValues() {
			vals = p.values(t, chunk, fs, vals[:0])
		}
		nm := len(p.measures)
		cols := make([]arrow.Array, len(srcs))
		releaseCols := func() {
			for _, c := range cols {
				if c != nil {
					c.Release()
				}
			}
		}
		for i, src := range srcs {
			if src.kind == 6 && sc.Field(i).Type.ID() == arrow.BINARY {
				// States are encoded into one buffer that becomes the
				// column's data as it is: no builder growth, no copy.
				offsets := make([]int32, 0, len(chunk)+1)
				size := t.stateBytes*len(chunk)/max(len(groups), 1) + t.stateBytes/8 + 1024
				if t.stateBytes == 0 {
					// No states merged (a backfill's table): bound them,
					// rather than grow the buffer a dozen times.
					for _, o := range chunk {
						if o.g < 0 {
							size += len(p.emptyState)
						} else {
							size += t.stateBound(o.g)
						}
					}
				}
				data := make([]byte, 0, size)
				offsets = append(offsets, 0)
				for _, o := range chunk {
					if o.g < 0 {
						data = append(data, p.emptyState...)
					} else {
						data, part = t.appendState(data, part, o.g)
					}
					if len(data) > math.MaxInt32 {
						releaseCols()
						return fail(i, errors.New("states of one batch exceed 2 GiB"))
					}
					offsets = append(offsets, int32(len(data)))
				}
				stateBytes += len(data)
				d := array.NewData(arrow.BinaryTypes.Binary, len(chunk),
					[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offsets)), memory.NewBufferBytes(data)}, nil, 0, 0)
				cols[i] = array.MakeFromData(d)
				d.Release()
				continue
			}
			fb := array.NewBuilder(mem, sc.Field(i).Type)
			fb.Reserve(len(chunk))
			for r, o := range chunk {
				var err error
				switch src.kind {
				case 0:
					fb.AppendNull()
				case 1:
					err = appendInt(fb, o.ws)
				case 2:
					err = appendInt(fb, o.we)
				case 3:
					err = appendScalar(fb, src.dimKind, o.dims[src.idx])
				case 4:
					if vals != nil {
						err = appendScalar(fb, t.accs[src.idx].rankKind(), vals[r*nm+src.idx])
					} else {
						err = t.accs[src.idx].appendValue(fb, o.g)
					}
				case 7:
					day, _ := localParts(p.loc, o.ws)
					err = appendInt(fb, day)
				case 8:
					_, hour := localParts(p.loc, o.ws)
					err = appendInt(fb, int64(hour))
				case 5:
					err = appendInt(fb, int64(o.rank))
				case 6:
					err = wrongBuilder(fb)
				}
				if err != nil {
					fb.Release()
					releaseCols()
					return fail(i, err)
				}
			}
			cols[i] = fb.NewArray()
			fb.Release()
		}
		out = append(out, array.NewRecordBatch(sc, cols, int64(len(chunk))))
		releaseCols()
	}
	t.stateBytes = stateBytes
	return out, stateBytes, nil
}
