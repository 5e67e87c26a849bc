package writer

// The key index as a keyed table sees it: the committed index (keyIndex,
// memory-mapped when persistent) under layers of changes not committed
// yet.
//
// The committed index holds exactly what the table's committed snapshots
// say — it is never ahead of the table: changes that Apply and the flushes
// make go to the newest layer; a flush seals it (its changes are now in
// staged files and deletes) and opens a new one; a successful commit folds
// the sealed layers into the committed index, and the table's compaction
// moves committed entries there directly, in its own snapshot. A process
// killed at any point leaves a persisted index that describes a committed
// snapshot, or one between two committed snapshots (keyindex_restore.go
// explains why that is enough).
//
// The layers hold the keys of uncommitted changes only: a flush's worth
// (bounded by the memory budget), in the heap, or a snapshot load's
// (committed at once: 20–30 bytes a key, 200 MiB at 10M keys, 1 GiB at
// 50M). So that a load's keys do not grow the heap without bound, a
// sealed layer that is full (maxLayerKeys, Seal) is spilled when the
// committed index is persistent: its slots move to a mapped file of the
// index directory, unlinked at once (spillAlloc), paged like the
// committed index's (a lookup is a random access, touch; the fold a pass
// in slot order, page), and unmapped once folded or dropped. A snapshot
// load of a truncated table (Changes.NewKeys) looks up no key, so its
// spilled layers cost one sequential copy each.

// indexLayer is one epoch of uncommitted changes, in two heap slot
// tables like the committed index's (about 20–30 bytes a key, so that a
// snapshot load, which commits all its rows at once, costs what the index
// would): a key's value is its location plus one, or 0 for a deleted key.
type indexLayer struct {
	narrow, wide slotTable
	// truncated: every key below this layer is deleted.
	truncated bool
	delta     int // change of the number of keys
}

func newIndexLayer() *indexLayer {
	l := &indexLayer{}
	l.narrow.stride, l.wide.stride = 2, 3
	return l
}

func (l *indexLayer) table(wide bool) *slotTable {
	if wide {
		return &l.wide
	}
	return &l.narrow
}

func (l *indexLayer) bytes() int64 { return l.narrow.bytes() + l.wide.bytes() }

// heapBytes is the memory of l's tables that are in the heap.
func (l *indexLayer) heapBytes() int64 {
	var b int64
	for _, t := range []*slotTable{&l.narrow, &l.wide} {
		if t.mem == nil || !t.mem.mapped(t.slots) {
			b += t.bytes()
		}
	}
	return b
}

// spill moves l's slots to storage of a (spillTo), its tables then paged
// like the committed index's; a table a cannot map stays in the heap.
func (l *indexLayer) spill(a slotAlloc) {
	for _, t := range []*slotTable{&l.narrow, &l.wide} {
		if t.mem != nil || len(t.slots) == 0 {
			continue
		}
		s := a.alloc(t.name, len(t.slots))
		if !a.mapped(s) {
			continue
		}
		// Copied 8 MiB at a time, each dropped from the process before
		// the next: the copy's pages must not come on top of the heap
		// slots it replaces (freed at the next collection).
		p, _ := a.(pager)
		for i := 0; i < len(s); i += spillChunkWords {
			copy(s[i:min(i+spillChunkWords, len(s))], t.slots[i:])
			if p != nil {
				p.drop(s)
			}
		}
		t.slots, t.mem = s, a
	}
}

// spillChunkWords is how much of a layer spill copies between two drops
// of the copy's resident pages: 8 MiB.
const spillChunkWords = 1 << 20

// release unmaps l's spilled tables; l is not used again.
func (l *indexLayer) release() {
	for _, t := range []*slotTable{&l.narrow, &l.wide} {
		if t.mem != nil {
			t.mem.release(t.name, t.slots)
			t.slots, t.cap, t.mem = nil, 0, nil
		}
	}
}

// indexView is the committed index and the uncommitted layers, oldest
// first; the last layer takes new changes.
type indexView struct {
	base   *keyIndex
	layers []*indexLayer
	// layerKeys overrides maxLayerKeys (tests).
	layerKeys int
	// spillTo is the storage of spilled layers; nil: they stay in the
	// heap (a heap index).
	spillTo slotAlloc
}

func newIndexView(base *keyIndex) *indexView {
	return &indexView{base: base, layers: []*indexLayer{newIndexLayer()}}
}

func (v *indexView) lkey(key string) (*slotTable, [2]uint64, bool) {
	t, h := v.base.slot(key)
	return t, h, t == &v.base.wide
}

func (v *indexView) get(t *slotTable, h [2]uint64, wide bool) (uint64, bool) {
	for i := len(v.layers) - 1; i >= 0; i-- {
		l := v.layers[i]
		if x, ok := l.table(wide).get(h); ok {
			return x - 1, x != 0
		}
		if l.truncated {
			return 0, false
		}
	}
	return t.get(h)
}

// Get returns key's location.
func (v *indexView) Get(key string) (uint64, bool) {
	return v.get(v.lkey(key))
}

// Set makes loc key's location; it reports whether key was new.
func (v *indexView) Set(key string, loc uint64) bool {
	t, h, wide := v.lkey(key)
	_, had := v.get(t, h, wide)
	cur := v.layers[len(v.layers)-1]
	cur.table(wide).set(h, loc+1)
	if !had {
		cur.delta++
	}
	return !had
}

// Add makes loc the location of key, which has none: a key a flush
// places (its Apply took it out of the index, and nothing puts it back
// before the flush). Unlike Set it does not look the key up.
func (v *indexView) Add(key string, loc uint64) {
	_, h, wide := v.lkey(key)
	cur := v.layers[len(v.layers)-1]
	cur.table(wide).set(h, loc+1)
	cur.delta++
}

// Reserve makes room in the newest layer for narrow more keys of 8 bytes
// and wide more of other sizes, so that it does not grow step by step.
func (v *indexView) Reserve(narrow, wide int) {
	cur := v.layers[len(v.layers)-1]
	cur.narrow.reserve(cur.narrow.n + narrow)
	cur.wide.reserve(cur.wide.n + wide)
}

// Delete removes key, returning its location.
func (v *indexView) Delete(key string) (uint64, bool) {
	t, h, wide := v.lkey(key)
	loc, had := v.get(t, h, wide)
	if !had {
		return 0, false
	}
	cur := v.layers[len(v.layers)-1]
	cur.table(wide).set(h, 0)
	cur.delta--
	return loc, true
}

// Len is the number of keys.
func (v *indexView) Len() int {
	n := 0
	for i := len(v.layers) - 1; i >= 0; i-- {
		n += v.layers[i].delta
		if v.layers[i].truncated {
			return n
		}
	}
	return v.base.Len() + n
}

// HeapBytes is the memory of the layers (and of the committed index when
// it is in the heap).
func (v *indexView) HeapBytes() int64 {
	var b int64
	for _, l := range v.layers {
		b += l.heapBytes()
	}
	for _, t := range []*slotTable{&v.base.narrow, &v.base.wide} {
		if t.mem == nil || !t.mem.mapped(t.slots) {
			b += t.bytes()
		}
	}
	return b
}

// MappedBytes is the size of the mapped slots: the committed index's and
// the spilled layers'.
func (v *indexView) MappedBytes() int64 {
	var b int64
	for _, t := range v.tables() {
		if t.mem != nil && t.mem.mapped(t.slots) {
			b += t.bytes()
		}
	}
	return b
}

// ResidentBytes is what the mapped slots may hold resident in the
// process at most (slotTable.residentBytes).
func (v *indexView) ResidentBytes() int64 {
	var b int64
	for _, t := range v.tables() {
		b += t.residentBytes()
	}
	return b
}

// tables are the committed index's slot tables and the layers'.
func (v *indexView) tables() []*slotTable {
	ts := []*slotTable{&v.base.narrow, &v.base.wide}
	for _, l := range v.layers {
		ts = append(ts, &l.narrow, &l.wide)
	}
	return ts
}

// Locations calls fn with every key's location, in no order.
func (v *indexView) Locations(fn func(loc uint64)) {
	type seenKey struct {
		h    [2]uint64
		wide bool
	}
	seen := map[seenKey]bool{}
	for i := len(v.layers) - 1; i >= 0; i-- {
		l := v.layers[i]
		for _, wide := range []bool{false, true} {
			l.table(wide).entries(func(_ int, h [2]uint64, x uint64) {
				if seen[seenKey{h, wide}] {
					return
				}
				seen[seenKey{h, wide}] = true
				if x != 0 {
					fn(x - 1)
				}
			})
		}
		if l.truncated {
			return
		}
	}
	for _, wide := range []bool{false, true} {
		t := &v.base.narrow
		if wide {
			t = &v.base.wide
		}
		t.entries(func(_ int, h [2]uint64, loc uint64) {
			if !seen[seenKey{h, wide}] {
				fn(loc)
			}
		})
	}
}

// Truncate deletes every key.
func (v *indexView) Truncate() {
	l := newIndexLayer()
	l.truncated = true // its delta counts from no keys
	// The sealed layers below stay: their changes are staged, and fold in
	// order before the truncation.
	v.layers[len(v.layers)-1] = l
}

// Seal ends the newest layer: its changes are staged for the next
// commit. Later changes go to a new layer. A commit folds every sealed
// layer at once, so they are few: the newest is merged into the sealed
// one below it (a snapshot load flushes many times before its one commit,
// and every lookup probes every layer) while the two hold at most
// maxLayerKeys keys, and starts a sealed layer of its own beyond that:
// growing one layer to a snapshot load's every key would rehash it at
// every flush, its old and new tables both in the heap (380 MiB at 10M
// keys, beside the buffered rows, at the soft memory limit).
func (v *indexView) Seal() {
	if n := len(v.layers); n >= 2 {
		sealed, cur := v.layers[n-2], v.layers[n-1]
		switch {
		case cur.truncated:
			// The truncation hides (and, folded, clears) the older
			// changes.
			for _, l := range v.layers[:n-1] {
				l.release()
			}
			v.layers = append(v.layers[:0], cur)
		case sealed.keys()+cur.keys() <= v.maxKeys():
			for _, wide := range []bool{false, true} {
				t := sealed.table(wide)
				ct := cur.table(wide)
				t.reserve(t.n + ct.n)
				ct.entries(func(_ int, h [2]uint64, x uint64) { t.set(h, x) })
			}
			sealed.delta += cur.delta
			v.layers = v.layers[:n-1]
		default:
			// sealed is full: no more merges into it.
			if v.spillTo != nil {
				sealed.spill(v.spillTo)
			}
		}
	}
	v.layers = append(v.layers, newIndexLayer())
}

// maxLayerKeys is how many keys (changes) a sealed layer grows to before
// the next seal starts another: 4M keys are about 80 MiB of slots.
const maxLayerKeys = 1 << 22

func (v *indexView) maxKeys() int {
	if v.layerKeys > 0 {
		return v.layerKeys
	}
	return maxLayerKeys
}

func (l *indexLayer) keys() int { return l.narrow.n + l.wide.n }

// Fold applies the sealed layers to the committed index, oldest first:
// the commit that holds their changes succeeded.
func (v *indexView) Fold() {
	sealed := v.layers[:len(v.layers)-1]
	for _, l := range sealed {
		if l.truncated {
			v.base.narrow.reset()
			v.base.wide.reset()
		}
		for _, wide := range []bool{false, true} {
			t := &v.base.narrow
			if wide {
				t = &v.base.wide
			}
			lt := l.table(wide)
			// Room for every key at once, not step by step.
			t.reserve(t.n + lt.n)
			t.pass(true)
			// In the layer's slot order, which is the committed table's
			// too (both place a key by the same hash, scaled to their
			// size): a pass over t, paged as it goes.
			lt.entries(func(_ int, h [2]uint64, x uint64) {
				if x == 0 {
					t.del(h)
				} else {
					t.set(h, x-1)
				}
				t.page()
			})
			t.pass(false)
		}
		l.release()
	}
	v.layers = append(v.layers[:0], v.layers[len(v.layers)-1])
}

// release unmaps the spilled layers (the index's files are closing).
func (v *indexView) release() {
	for _, l := range v.layers {
		l.release()
	}
}
