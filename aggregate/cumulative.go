package aggregate

import "encoding/binary"

// A cumulative window (Window.Step) is held as one group per step and
// dimension values that has rows: the group's key is the window start,
// the dimensions and the step's number k (4 bytes), and its state is the
// partial aggregate of the rows in [start + k·step, start + (k+1)·step)
// alone, a delta. Output rows fold the deltas in order: the row of step k
// (window_end = start + (k+1)·step, the window's end for its last step)
// carries the measures of every delta up to k, and the delta of step k as
// its _state (the empty state for a step without rows). Every step from
// the group's first one with rows to the window's last is written, as
// Flink's CUMULATE assigns a row to every window ending after it. So the
// stored state of a day of 1-minute steps is that of the day's minutes,
// not 1,440 growing copies of it; a late row changes one delta and the
// rewrite of its partition recomputes the later steps' values.

// stepOf is the step number of a key of a cumulative plan (0 otherwise).
func (p *plan) stepOf(key string) int64 {
	if !p.cumulative() {
		return 0
	}
	return int64(binary.BigEndian.Uint32([]byte(key[len(key)-4:])))
}

// expandSteps turns the step groups of out (sorted by window start,
// dimensions and step) into the output rows of every step, from each
// group's first step with rows to its window's last.
func (p *plan) expandSteps(t *groupTable, out []outGroup, all []int, cmpDims func(a, b outGroup, idx []int) int) []outGroup {
	var res []outGroup
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].ws == out[i].ws && cmpDims(out[i], out[j], all) == 0 {
			j++
		}
		ws := out[i].ws
		end := p.windowEnd(ws)
		n := (end - ws + p.step - 1) / p.step
		first := p.stepOf(t.keys[out[i].g])
		slot := i
		for k := first; k < n || slot < j; k++ {
			o := outGroup{g: -1, ws: ws, we: min(ws+(k+1)*p.step, end), dims: out[i].dims, first: k == first}
			if slot < j && p.stepOf(t.keys[out[slot].g]) == k {
				o.g = out[slot].g
				slot++
			}
			res = append(res, o)
		}
		i = j
	}
	return res
}

// needsValues reports whether output values are computed apart from the
// accumulators' own: cumulative steps, and new and returning users.
func (p *plan) needsValues() bool { return p.cumulative() || p.hasFirstSeen() }

// values appends the measures' values of the rows of chunk (which holds
// whole runs) to vals, row by row.
func (p *plan) values(t *groupTable, chunk []outGroup, fs firstSeen, vals []scalar) []scalar {
	for r := 0; r < len(chunk); {
		e := r + 1
		for e < len(chunk) && !chunk[e].first {
			e++
		}
		if !p.cumulative() {
			o := chunk[r]
			for m := range p.measures {
				vals = append(vals, p.value(t, m, o, fs))
			}
			r = e
			continue
		}
		folders := make([]folder, len(p.measures))
		for m, mp := range p.measures {
			folders[m] = p.newFolder(m, mp, chunk[r].ws, fs)
		}
		for _, o := range chunk[r:e] {
			if o.g >= 0 {
				for m, f := range folders {
					f.add(t.accs[m], o.g)
				}
			}
			for _, f := range folders {
				vals = append(vals, f.value())
			}
		}
		r = e
	}
	return vals
}

// value is measure m's value of group o.g.
func (p *plan) value(t *groupTable, m int, o outGroup, fs firstSeen) scalar {
	c := p.firstSeen[m]
	if c < 0 {
		return t.accs[m].rankValue(o.g)
	}
	set := exactSets(t.accs[m]).groups[o.g]
	n := newCount(set, fs[c], o.ws)
	if p.measures[m].Fn == FnReturningUsers {
		n = set.cardinality() - n
	}
	return scalar{i: n}
}

func exactSets(a accumulator) *distinctAcc[hashSet, *hashSet] {
	return a.(*distinctAcc[hashSet, *hashSet])
}

// folder accumulates the deltas of a cumulative window's steps.
type folder interface {
	add(a accumulator, g int32)
	value() scalar
}

func (p *plan) newFolder(m int, mp measurePlan, ws int64, fs firstSeen) folder {
	switch mp.Fn {
	case FnCountDistinct, FnNewUsers, FnReturningUsers:
		f := &setFolder{fn: mp.Fn, ws: ws, seen: map[uint64]struct{}{}}
		if c := p.firstSeen[m]; c >= 0 {
			f.fs = fs[c]
		}
		return f
	}
	acc := newAccumulator(mp)
	acc.grow(1)
	return &mergeFolder{acc: acc}
}

// mergeFolder merges the deltas into one group.
type mergeFolder struct{ acc accumulator }

func (f *mergeFolder) add(a accumulator, g int32) { f.acc.mergeGroup(0, a, g) }
func (f *mergeFolder) value() scalar              { return f.acc.rankValue(0) }

// setFolder counts the distinct values of exact sets (and those first
// seen in the window) in a map, so that a day of steps costs its values
// once rather than a sorted merge per step.
type setFolder struct {
	fn      Fn
	ws      int64
	fs      map[uint64]int64
	seen    map[uint64]struct{}
	n, news int64
}

func (f *setFolder) add(a accumulator, g int32) {
	s := exactSets(a).groups[g]
	if s == nil {
		return
	}
	s.compact()
	for _, h := range s.sorted {
		if _, ok := f.seen[h]; ok {
			continue
		}
		f.seen[h] = struct{}{}
		f.n++
		if first, ok := f.fs[h]; ok && first == f.ws {
			f.news++
		}
	}
}

func (f *setFolder) value() scalar {
	switch f.fn {
	case FnNewUsers:
		return scalar{i: f.news}
	case FnReturningUsers:
		return scalar{i: f.n - f.news}
	}
	return scalar{i: f.n}
}
