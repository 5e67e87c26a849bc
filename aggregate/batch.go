package aggregate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/floe-lake/floe/reader"
)

// batchState is the scratch space of folding batches into a groupTable,
// reused between batches. One per goroutine.
type batchState struct {
	s      scratch
	gids   []int32
	times  []int64
	signs  []int8
	key    []byte
	dimBuf []byte
	dimOff []int
	tnull  []bool
	grid   gridCache
	codes  codeCache
}

// codeCache finds the groups of rows whose dimensions were read as
// dictionary indices (codes) without building and looking up their keys:
// it holds, for each combination of codes, the last group seen in table t
// and its window start in each of codeWays ways chosen by the window (so
// that late rows of the previous windows do not evict the current one).
type codeCache struct {
	t       *groupTable
	gens    []int
	strides []int
	ws      []int64
	g       []int32
}

// maxCodeSlots bounds the combinations of codes a codeCache holds.
const maxCodeSlots = 1 << 16

// codeWays is the windows a codeCache holds per combination of codes.
const codeWays = 4

// codeCache returns the cache for a batch into t whose dimensions are
// dims, reset when the dictionaries or the table changed, or nil when a
// dimension has no codes or they combine in too many ways.
func (st *batchState) codeCache(p *plan, t *groupTable, dims []*colView) *codeCache {
	if len(dims) == 0 || p.cumulative() {
		return nil
	}
	slots := 1
	for _, v := range dims {
		if v.codes == nil {
			return nil
		}
		slots *= v.ncodes + 1
		if slots > maxCodeSlots {
			return nil
		}
	}
	c := &st.codes
	same := c.t == t && len(c.gens) == len(dims) && len(c.ws) == slots*codeWays
	for d, v := range dims {
		same = same && c.gens[d] == v.dictGen
	}
	if same {
		return c
	}
	c.t = t
	c.gens, c.strides = c.gens[:0], c.strides[:0]
	stride := 1
	for _, v := range dims {
		c.gens = append(c.gens, v.dictGen)
		c.strides = append(c.strides, stride)
		stride *= v.ncodes + 1
	}
	c.ws = grow(c.ws, slots*codeWays)
	c.g = grow(c.g, slots*codeWays)
	for i := range c.g {
		c.g[i] = -1
	}
	return c
}

// slot is the cache slot of row i in the window starting at ws.
func (c *codeCache) slot(p *plan, dims []*colView, i int, ws int64) int {
	s := 0
	for d, v := range dims {
		s += int(v.codes[i]+1) * c.strides[d]
	}
	return s*codeWays + int(floorDiv(ws, p.slide)&(codeWays-1))
}

// column returns the column named name of rec.
func column(rec arrow.RecordBatch, name string) (arrow.Array, error) {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil, fmt.Errorf("batch has no column %q", name)
	}
	return rec.Column(idx[0]), nil
}

// micros converts a timestamp column to microseconds since the epoch.
func micros(a *array.Timestamp, out []int64) []int64 {
	out = out[:0]
	unit := a.DataType().(*arrow.TimestampType).Unit
	for _, v := range a.TimestampValues() {
		t := int64(v)
		switch unit {
		case arrow.Second:
			t *= 1e6
		case arrow.Millisecond:
			t *= 1e3
		case arrow.Nanosecond:
			t = floorDiv(t, 1e3)
		}
		out = append(out, t)
	}
	return out
}

// addBatch folds a batch of source rows (the plan's columns, and in a
// changelog read the _change_type column) into t: each row into every
// window that contains its event time, whose start keep accepts (all when
// keep is nil). Rows with a null event time belong to no window and are
// skipped. It returns the number of rows read.
func (p *plan) addBatch(t *groupTable, rec arrow.RecordBatch, keep func(ws int64) bool, st *batchState) (int64, error) {
	if p.proj != nil {
		return p.addProjected(t, rec, keep, st)
	}
	return p.addRows(t, rec, keep, st)
}

// addRows is addBatch over rows that hold the plan's columns.
func (p *plan) addRows(t *groupTable, rec arrow.RecordBatch, keep func(ws int64) bool, st *batchState) (int64, error) {
	n := int(rec.NumRows())
	if n == 0 {
		return 0, nil
	}
	tcol, err := column(rec, p.spec.Time)
	if err != nil {
		return 0, err
	}
	ts, ok := tcol.(*array.Timestamp)
	if !ok {
		return 0, fmt.Errorf("time column %q is an Arrow %s, not a timestamp", p.spec.Time, tcol.DataType())
	}
	st.times = micros(ts, st.times)

	// Deletes from a changelog read.
	signs := st.signs[:0]
	if idx := rec.Schema().FieldIndices(reader.ColChangeType); len(idx) > 0 {
		ct, ok := rec.Column(idx[0]).(*array.String)
		if !ok {
			return 0, fmt.Errorf("column %s is not a string column", reader.ColChangeType)
		}
		deletes := false
		for i := range n {
			if ct.Value(i) == reader.ChangeDelete {
				deletes = true
				break
			}
		}
		if deletes {
			if !p.retractable {
				return 0, p.notRetractable()
			}
			for i := range n {
				if ct.Value(i) == reader.ChangeDelete {
					signs = append(signs, -1)
				} else {
					signs = append(signs, 1)
				}
			}
		}
	}
	st.signs = signs
	if len(signs) == 0 {
		signs = nil
	}

	// Views of the dimension and measure columns.
	views := map[string]*colView{}
	defer func() {
		for _, v := range views {
			st.s.release(v)
		}
	}()
	view := func(name string, k valueKind) (*colView, error) {
		if v, ok := views[name]; ok {
			return v, nil
		}
		a, err := column(rec, name)
		if err != nil {
			return nil, err
		}
		v, err := newColView(a, k, &st.s)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", name, err)
		}
		views[name] = v
		return v, nil
	}
	dimViews := make([]*colView, len(p.dims))
	for i, d := range p.dims {
		if dimViews[i], err = view(d.name, d.kind); err != nil {
			return 0, err
		}
	}
	measViews := make([]*colView, len(p.measures))
	for i, m := range p.measures {
		if m.Column == "" {
			continue
		}
		if measViews[i], err = view(m.Column, m.kind); err != nil {
			return 0, err
		}
	}

	return p.addViews(t, &batchViews{n: n, times: st.times, tnull: timeNullsOf(ts, st), signs: signs, dims: dimViews, meas: measViews}, keep, st)
}

// timeNullsOf marks the rows of ts whose event time is null; nil when
// none is.
func timeNullsOf(ts *array.Timestamp, st *batchState) []bool {
	if ts.NullN() == 0 {
		return nil
	}
	st.tnull = st.tnull[:0]
	for i := range ts.Len() {
		st.tnull = append(st.tnull, ts.IsNull(i))
	}
	return st.tnull
}

// batchViews is a batch of source rows as addViews folds them, whatever
// they were read from.
type batchViews struct {
	n int
	// times are the event times in microseconds; tnull marks null ones
	// (nil: none).
	times []int64
	tnull []bool
	// signs are +1 (insert) and -1 (delete) per row; nil: all inserts.
	signs []int8
	// dims and meas view the dimension and measure columns (meas[m] nil
	// for count of rows).
	dims, meas []*colView
}

// skip reports whether row i belongs to no window: it has no event time.
func (b *batchViews) skip(i int) bool { return b.tnull != nil && b.tnull[i] }

// addViews folds a batch into t: each row into every window that contains
// its event time, whose start keep accepts (all when keep is nil).
func (p *plan) addViews(t *groupTable, b *batchViews, keep func(ws int64) bool, st *batchState) (int64, error) {
	n, signs := b.n, b.signs
	cc := st.codeCache(p, t, b.dims)
	// Each row's dimension key part, once for all its windows (with a
	// code cache: only for the rows it misses).
	st.dimBuf, st.dimOff = st.dimBuf[:0], append(st.dimOff[:0], 0)
	if cc == nil {
		for i := range n {
			if !b.skip(i) {
				for _, v := range b.dims {
					st.dimBuf = appendDim(st.dimBuf, v, i)
				}
			}
			st.dimOff = append(st.dimOff, len(st.dimBuf))
		}
	}

	if cap(st.gids) < n {
		st.gids = make([]int32, n)
	}
	gids := st.gids[:n]
	for k := range p.nWin {
		for i := range n {
			if b.skip(i) {
				gids[i] = -1
				continue
			}
			ws := p.windowStartCached(b.times[i], k, &st.grid)
			if keep != nil && !keep(ws) {
				gids[i] = -1
				continue
			}
			slot := -1
			if cc != nil {
				slot = cc.slot(p, b.dims, i, ws)
				if g := cc.g[slot]; g >= 0 && cc.ws[slot] == ws {
					gids[i] = g
					t.rows[g] += sign(signs, i)
					continue
				}
			}
			st.key = appendWindow(st.key[:0], ws)
			if cc == nil {
				st.key = append(st.key, st.dimBuf[st.dimOff[i]:st.dimOff[i+1]]...)
			} else {
				for _, v := range b.dims {
					st.key = appendDim(st.key, v, i)
				}
			}
			if p.cumulative() {
				st.key = binary.BigEndian.AppendUint32(st.key, uint32((b.times[i]-ws)/p.step))
			}
			g := t.lookup(st.key)
			if slot >= 0 {
				cc.g[slot], cc.ws[slot] = g, ws
			}
			gids[i] = g
			t.rows[g] += sign(signs, i)
		}
		t.sync()
		if k == 0 && p.hasFirstSeen() {
			p.addFirstSeen(t, st, b)
		}
		for m, a := range t.accs {
			if err := a.update(gids, b.meas[m], signs, &st.s); err != nil {
				if errors.Is(err, ErrNotRetractable) {
					return 0, p.notRetractable()
				}
				return 0, fmt.Errorf("measure %s: %w", p.measures[m].Name, err)
			}
		}
	}
	return int64(n), nil
}

// windowStart is the start of the k-th window (0 ≤ k < nWin) holding
// event time t (µs): windows start at the points of the plan's grid (every
// slide, aligned to the epoch without a time zone), and the k-th starts k
// points before the last one at or before t.
func (p *plan) windowStart(t int64, k int) int64 {
	if p.grid.loc == nil {
		return floorDiv(t, p.slide)*p.slide - int64(k)*p.slide
	}
	return p.grid.point(p.grid.index(t) - int64(k))
}

// windowStartCached is windowStart through a gridCache.
func (p *plan) windowStartCached(t int64, k int, c *gridCache) int64 {
	if p.grid.loc == nil {
		return floorDiv(t, p.slide)*p.slide - int64(k)*p.slide
	}
	i := p.grid.indexCached(t, c)
	if k == 0 && c.ok && c.i == i {
		return c.start
	}
	return p.grid.point(i - int64(k))
}

// windowEnd is the end of the window starting at ws (for a cumulative
// window: of the whole window, its last step's end).
func (p *plan) windowEnd(ws int64) int64 {
	if p.grid.loc == nil || p.grid.days == 0 {
		return ws + p.size
	}
	// A window spans nWin points (1 for tumbling and cumulative ones).
	return p.grid.point(p.grid.index(ws) + int64(p.nWin))
}

// readEnd is an upper bound of the event times in the windows starting
// before to: where a ranged read can stop.
func (p *plan) readEnd(to int64) int64 {
	end := to - p.slide + p.size
	if p.grid.loc != nil {
		// Zoned days are up to an hour longer (and a few zones shift by
		// more than an hour once).
		end += 3 * int64(time.Hour/time.Microsecond)
	}
	return end
}

// notRetractable is the error for deleted rows reaching measures that
// cannot take them back.
func (p *plan) notRetractable() error {
	var names []string
	for _, m := range p.measures {
		if !m.Fn.Retractable() {
			names = append(names, fmt.Sprintf("%s (%s)", m.Name, m.Fn))
		}
	}
	return fmt.Errorf("aggregate %s: source %s deleted rows, which measures %s cannot retract: %w; "+
		"use only count, sum and avg on a table with deletes, or rebuild the affected windows with a backfill",
		p.spec.Name, p.spec.Source, strings.Join(names, ", "), ErrNotRetractable)
}
