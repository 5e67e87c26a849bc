package aggregate

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/reader"
)

// firstSeen maps, per tracked column (plan.fsCols), the hash of each value
// (user) to the start of the first window it appears in: the least window
// start over every row of the source the spec keeps. Merging takes the
// least start per value, which is associative, commutative and idempotent.
//
// It is not stored on its own: it is a function of the summary table's
// states, because each new_users or returning_users measure keeps the
// exact set of its group's values (as count_distinct does), so the least
// window start of a value over the stored sets is its first window. A
// backfill builds it from the rows it reads, a streaming aggregator from
// the whole summary table when it starts (then keeps it in memory, and
// merges every batch into it), so it always matches the committed cursor.
type firstSeen []map[uint64]int64

func newFirstSeen(n int) firstSeen {
	f := make(firstSeen, n)
	for i := range f {
		f[i] = map[uint64]int64{}
	}
	return f
}

// note records value h of column c seen in the window starting at ws and
// reports the window it was first seen in before (ok false when new, or
// when it was not earlier than ws).
func (f firstSeen) note(c int, h uint64, ws int64) (old int64, moved bool) {
	prev, seen := f[c][h]
	if seen && prev <= ws {
		return 0, false
	}
	f[c][h] = ws
	return prev, seen
}

// merge folds o into f and returns the earlier first windows that values
// moved away from (their windows' counts of new and returning users
// change).
func (f firstSeen) merge(o firstSeen) []int64 {
	var moved []int64
	for c, m := range o {
		for h, ws := range m {
			if old, ok := f.note(c, h, ws); ok {
				moved = append(moved, old)
			}
		}
	}
	return moved
}

// addFirstSeen notes the first-seen window of every non-null value of the
// tracked columns of a batch, whether or not
// its window is kept: a ranged backfill needs the history before its range.
func (p *plan) addFirstSeen(t *groupTable, st *batchState, b *batchViews) {
	for c := range p.fsCols {
		m := 0
		for m < len(p.firstSeen) && p.firstSeen[m] != c {
			m++
		}
		v := b.meas[m]
		hs := v.hashAll(&st.s)
		for i, tm := range b.times[:b.n] {
			if b.skip(i) || !v.valid(i) {
				continue
			}
			t.first.note(c, hs[i], p.windowStartCached(tm, 0, &st.grid))
		}
	}
}

// firstSeenFromState notes the values of the tracked measures' sets of
// one stored state (the group at window start ws).
func (p *plan) firstSeenFromState(f firstSeen, ws int64, b []byte) error {
	if len(b) == 0 || b[0] != stateFormat {
		return fmt.Errorf("%w: format byte", errBadState)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n != uint64(len(p.measures)) {
		return fmt.Errorf("%w: %d measures, the spec has %d", errBadState, n, len(p.measures))
	}
	b = b[k:]
	if _, k = binary.Varint(b); k <= 0 {
		return fmt.Errorf("%w: row count", errBadState)
	}
	b = b[k:]
	for m := range p.measures {
		if len(b) == 0 {
			return fmt.Errorf("%w: measure %d missing", errBadState, m)
		}
		l, k := binary.Uvarint(b[1:])
		if k <= 0 || l > uint64(len(b)-1-k) {
			return fmt.Errorf("%w: measure %d length", errBadState, m)
		}
		part := b[1+k : 1+k+int(l)]
		b = b[1+k+int(l):]
		c := p.firstSeen[m]
		if c < 0 || (len(part) == 1 && part[0] == 0) {
			continue
		}
		s, err := decodeHashSet(part)
		if err != nil {
			return fmt.Errorf("%w: %w", errBadState, err)
		}
		for _, h := range s.sorted {
			f.note(c, h, ws)
		}
	}
	return nil
}

// loadFirstSeen builds the first-seen windows from every stored state of
// the summary table as loaded.
func (a *Aggregator) loadFirstSeen(ctx context.Context, tbl *icetable.Table) (firstSeen, error) {
	f := newFirstSeen(len(a.plan.fsCols))
	if tbl.CurrentSnapshot() == nil {
		return f, nil
	}
	r, err := reader.New(a.cat, a.spec.Output, reader.Config{
		Columns: []string{ColWindowStart, ColState}, Concurrency: a.opts.Concurrency, Logger: a.log, Clock: a.opts.Clock,
	})
	if err != nil {
		return nil, err
	}
	stream, err := r.SnapshotIn(ctx, tbl, reader.At{})
	if err != nil {
		return nil, fmt.Errorf("read first-seen users of %s: %w", a.spec.Output, err)
	}
	var times []int64
	for rec, err := range stream.Records() {
		if err != nil {
			return nil, fmt.Errorf("read first-seen users of %s: %w", a.spec.Output, err)
		}
		err = func(rec arrow.RecordBatch) error {
			defer rec.Release()
			wcol, err := column(rec, ColWindowStart)
			if err != nil {
				return err
			}
			scol, err := column(rec, ColState)
			if err != nil {
				return err
			}
			ws, ok1 := wcol.(*array.Timestamp)
			state, ok2 := scol.(*array.Binary)
			if !ok1 || !ok2 {
				return fmt.Errorf("columns %s and %s are Arrow %s and %s", ColWindowStart, ColState, wcol.DataType(), scol.DataType())
			}
			times = micros(ws, times)
			for i := range int(rec.NumRows()) {
				if ws.IsNull(i) || state.IsNull(i) {
					return fmt.Errorf("row %d has no %s or %s", i, ColWindowStart, ColState)
				}
				if err := a.plan.firstSeenFromState(f, times[i], state.Value(i)); err != nil {
					return fmt.Errorf("group at %s: %w", fmtMicros(times[i]), err)
				}
			}
			return nil
		}(rec)
		if err != nil {
			return nil, permanent(fmt.Errorf("stored groups of %s: %w", a.spec.Output, err))
		}
	}
	return f, nil
}

// newCount counts the values of set s first seen in the window starting
// at ws.
func newCount(s *hashSet, fs map[uint64]int64, ws int64) int64 {
	if s == nil {
		return 0
	}
	s.compact()
	var n int64
	for _, h := range s.sorted {
		if first, ok := fs[h]; ok && first == ws {
			n++
		}
	}
	return n
}
