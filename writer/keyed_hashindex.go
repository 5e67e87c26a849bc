package writer

// The key index of a keyed table: live key → location (file number<<32 |
// row position). It replaces a map[string]uint64 whose entries cost 52–67
// bytes of RSS each and one heap object per key, which the garbage
// collector marks on every cycle: above ~5M keys under the process's
// memory limit the collector ran back to back.
//
// keyIndex is an open-addressing hash table (linear probing,
// backward-shift deletion, no tombstones) in flat []uint64 slices, which
// hold no pointers: the collector never scans them, whatever their size.
// Keys are not stored:
//
//   - an encoded key of exactly 8 bytes (any single integer, date, time or
//     timestamp column) is stored as itself, in a 16-byte slot (key,
//     location): exact;
//   - any other key is stored as a 128-bit fingerprint (two independent
//     64-bit hashes, seeded per process), in a 24-byte slot. Two distinct
//     keys share a fingerprint with probability about n²/2¹²⁹: 1.5e-21 for
//     a billion keys, far below the rate of undetected memory or disk
//     errors, so no key is confirmed against its row (which would cost a
//     random read of a data file per update).
//
// The table grows by 1.5× when it is 85% full and is sized from the
// table's row count when it is built, so a built index holds about
// 20 bytes per 8-byte key and 30 per other key (keyIndexBytes).
//
// # Why this index (measured, 2 shared cores, CPU-seconds)
//
// Three options were measured on 1M and 10M keys, a bigint key and a
// composite (varchar tenant, varchar order number) key; BenchmarkKeyIndex
// reproduces the first two, Pebble v2.1.7 (block cache 32 MiB, 16 MiB
// memtables, no WAL: the index is a cache validated by snapshot id) was
// measured in a scratch module with the same loop. "GC" is one forced
// collection with the index live: what every cycle costs when the heap
// sits at the memory limit.
//
//	option      keys  key   heap B/key  GC cpu-ms  lookups/cpu-s  cpu-ms/10k upd  build cpu-s  reopen
//	map         1M    big   64          34         25M            9               0.9          rebuild
//	map         10M   big   53          1,959      26M            13              13.7         rebuild
//	map         10M   comp  77          4,250      10M            20              26.6         rebuild
//	keyIndex    1M    big   20          ~3         30M            5               0.2          rebuild
//	keyIndex    10M   big   20          4          23M            6               4.5          rebuild
//	keyIndex    10M   comp  30          2          15M            14              8.7          rebuild
//	Pebble      1M    big   ~0 (+cache) 10         170k           191             0.8          60 ms
//	Pebble      10M   big   ~0 (+cache) 13         31k            504             12.7         4.0 s
//	Pebble      10M   comp  ~0 (+cache) 11         25k            723             22.2         0.2 s
//
// Pebble keeps 9–15 bytes per key on disk and a bounded cache in memory
// (RSS +35–45 MiB at 10M keys), and reopens without a rebuild, but costs
// 40–90× the CPU per update of an in-heap index (0.5–0.7 CPU-s per 10k
// updates at 10M keys, against ~1 CPU-s per 10k for the whole ingest
// path) and brings 30 modules (cgo zstd among them): a program that only
// opens a Pebble store is 24 MB larger than an empty one. Bloom filters
// with key min/max statistics per file (Hudi's bloom index) need no
// memory per key but read the filters of every file whose key range holds
// the key on every update: with keys spread over all files, as CDC of
// random primary keys is, that is every file, so they were not pursued.
// The choice: this compact hash table, whose slot arrays live in a
// memory-mapped file under the cache directory (keyindex_file.go) rather
// than in the Go heap: the kernel pages it out under memory pressure (a
// spill without garbage-collection cost), and a restart validates the file
// against the table's snapshot instead of rebuilding it
// (keyindex_restore.go). Without a cache directory the slots are in the
// heap, as before.
//
// Persisting it was measured against a snapshot dump of the in-heap table
// (BenchmarkKeyIndexPersist, bigint keys, 2 loaded cores): to stay as fresh
// as the mapped files — tagged after every commit — a dump must write the
// whole table every commit: 52 ms at 1M keys, 1.1 s at 10M (190 MiB), where
// the mapped index folds the commit's changes and writes a small meta in
// 1–1.2 ms at either size; opening costs 6 / 166 ms (map, checksum scan)
// against 20 / 234 ms to read a dump back. Pebble (above) reopens without a
// rebuild too, at 40–90× the CPU per update.
//
// The fingerprints are XXH3-128 with a seed drawn per index and stored with
// it, so that a persisted index answers the same after a restart. Every
// slot table keeps an order-independent checksum of its slots (the XOR of a
// mix of each used slot with its number), updated on every write, which a
// restart compares against a scan of the file.

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"

	"github.com/zeebo/xxh3"
)

const (
	// keyIndexMaxLoad is the fill (in 1/100) at which the table grows.
	keyIndexMaxLoad = 85
	// keyIndexMinSlots is the smallest table.
	keyIndexMinSlots = 64
)

// keyIndex maps encoded keys to locations. The zero value is not usable;
// use newKeyIndex.
type keyIndex struct {
	narrow slotTable // 8-byte keys: stride 2 (key, loc+1)
	wide   slotTable // other keys: stride 3 (h1, h2, loc+1)
	seed   uint64    // of the fingerprints
}

// newKeyIndex returns an empty index in the heap.
func newKeyIndex() *keyIndex {
	x := &keyIndex{seed: rand.Uint64()}
	x.narrow.stride, x.wide.stride = 2, 3
	return x
}

// slotAlloc provides a slot table's storage: words zeroed uint64s, and
// releases it again. The heap's is nil (make, and the collector).
type slotAlloc interface {
	alloc(table string, words int) []uint64
	release(table string, words []uint64)
	mapped(words []uint64) bool
}

// reserve makes room for n more keys of the given kind without growing
// step by step (the build knows the table's row count).
func (x *keyIndex) reserve(n int, narrow bool) {
	if narrow {
		x.narrow.reserve(x.narrow.n + n)
	} else {
		x.wide.reserve(x.wide.n + n)
	}
}

func (x *keyIndex) slot(key string) (*slotTable, [2]uint64) {
	if len(key) == 8 {
		return &x.narrow, [2]uint64{binary.BigEndian.Uint64([]byte(key))}
	}
	h := xxh3.HashString128Seed(key, x.seed)
	return &x.wide, [2]uint64{h.Hi, h.Lo}
}

// table is the narrow or the wide slot table.
func (x *keyIndex) table(wide bool) *slotTable {
	if wide {
		return &x.wide
	}
	return &x.narrow
}

// Get returns key's location.
func (x *keyIndex) Get(key string) (uint64, bool) {
	t, h := x.slot(key)
	return t.get(h)
}

// Set makes loc key's location; it reports whether key was new.
func (x *keyIndex) Set(key string, loc uint64) bool {
	t, h := x.slot(key)
	return t.set(h, loc)
}

// Delete removes key, returning its location.
func (x *keyIndex) Delete(key string) (uint64, bool) {
	t, h := x.slot(key)
	return t.del(h)
}

// Len is the number of keys.
func (x *keyIndex) Len() int { return x.narrow.n + x.wide.n }

// Bytes is the memory the index holds (its slot arrays).
func (x *keyIndex) Bytes() int64 { return x.narrow.bytes() + x.wide.bytes() }

// Locations calls fn with every key's location, in no order.
func (x *keyIndex) Locations(fn func(loc uint64)) {
	x.narrow.each(fn)
	x.wide.each(fn)
}

// keyIndexBytes estimates the bytes of an index of n keys built at once
// (slots at the build's fill), for reporting without an index at hand.
func keyIndexBytes(n int64, narrow bool) int64 {
	stride := int64(3)
	if narrow {
		stride = 2
	}
	return int64(slotsFor(int(n))) * stride * 8
}

// slotTable is one open-addressing table of stride-word slots: stride-1
// words of hash (or key) then loc+1; a slot whose last word is 0 is free.
type slotTable struct {
	stride int
	slots  []uint64
	cap    int // slots
	n      int
	sum    uint64    // checksum of the used slots (slotSum)
	mem    slotAlloc // nil: the heap
	name   string    // for mem: "narrow" or "wide"
	// touched counts the slots written (or copied by a rehash) since the
	// mapped pages were last dropped (page).
	touched int
	// pageEvery overrides keyIndexPageEvery (tests).
	pageEvery int
	// random is what random access (get, set, del) may have made
	// resident since the mapped pages were last dropped (touch), in
	// bytes; residentMax overrides keyIndexResidentBytes (tests).
	random, residentMax int
	// bulk: a build writes every key at random (buildIndex); its pages
	// are not dropped as it goes (touch), which would fault every write
	// again, but after it.
	bulk bool
	// jr, when the table's file is the one index.meta names, records
	// every slot's old words before it changes (keyindex_journal.go);
	// nil otherwise (a new file, the heap, a layer).
	jr *undoJournal
}

// keyIndexPageEvery is how many slots a pass over a mapped table in slot
// order (a rehash, a fold, a compaction's scan) visits between two drops
// of its resident pages: a pass over a 10M-key index then keeps about 1
// MiB of it resident, not 200 MiB. Random access (lookups, an interval's
// changes) is not paged as it goes — a page dropped and touched again
// costs a fault, about 10 µs on a shared file mapping — its pages are
// dropped after every commit (persistIndexLocked).
const keyIndexPageEvery = 65536

// keyIndexFaultBytes is what one random access to a mapped table may
// make resident: on a fault the kernel maps the pages around the faulting
// one that are in the page cache (Linux's fault-around, 64 KiB by default;
// madvise MADV_RANDOM does not turn it off), so 1,000 random lookups in a
// 191 MiB index made 55 MiB resident, not 4 MiB, and an interval's updates
// up to 170 MiB between two commits (issue 17, run r7).
const keyIndexFaultBytes = 64 << 10

// keyIndexResidentBytes bounds what random access may make resident of a
// mapped table before its pages are dropped (touch): 256 random accesses
// at most. It counts in the writer's memory budget as long as the index
// is mapped (ResidentBytes).
const keyIndexResidentBytes = 16 << 20

// touch counts one random access to a mapped table and drops its resident
// pages once the accesses since the last drop may have made
// keyIndexResidentBytes resident. A dropped page touched again costs a
// minor fault (it stays in the page cache): about 8 per 256 updates.
func (t *slotTable) touch() {
	if t.mem == nil || t.bulk {
		return
	}
	lim := t.residentMax
	if lim == 0 {
		lim = keyIndexResidentBytes
	}
	if t.random += keyIndexFaultBytes; t.random < lim {
		return
	}
	t.random = 0
	if p, ok := t.mem.(pager); ok {
		p.drop(t.slots)
	}
}

// residentBytes is what t may hold resident outside the heap when it is
// mapped: the window of random access (touch) and of a pass (page).
func (t *slotTable) residentBytes() int64 {
	if t.mem == nil || !t.mem.mapped(t.slots) {
		return 0
	}
	lim := t.residentMax
	if lim == 0 {
		lim = keyIndexResidentBytes
	}
	every := t.pageEvery
	if every == 0 {
		every = keyIndexPageEvery
	}
	return min(t.bytes(), int64(lim)+int64(every*t.stride*8))
}

// pager is a slotAlloc whose storage is mapped: drop drops the resident
// pages of words from the process (they stay in the page cache).
type pager interface {
	drop(words []uint64)
	sequential(words []uint64, on bool)
}

// pass marks the start (on) or the end of a pass over t in slot order,
// for the kernel's readahead (pager.sequential).
func (t *slotTable) pass(on bool) {
	if t.mem == nil {
		return
	}
	if p, ok := t.mem.(pager); ok {
		p.sequential(t.slots, on)
	}
}

// page counts one slot visited by a pass in slot order and drops the
// mapped table's resident pages every keyIndexPageEvery: they are outside
// the Go heap and its soft limit, and a fold, a rehash or a compaction's
// scan of millions of keys would otherwise make the whole index resident
// beside the heap.
func (t *slotTable) page() {
	if t.mem == nil {
		return
	}
	every := t.pageEvery
	if every == 0 {
		every = keyIndexPageEvery
	}
	if t.touched++; t.touched < every {
		return
	}
	t.touched = 0
	if p, ok := t.mem.(pager); ok {
		p.drop(t.slots)
	}
}

// slotSum is slot i's share of a table's checksum (XORed): a mix of its
// number and words.
func slotSum(i int, s []uint64) uint64 {
	h := uint64(i)*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
	for _, w := range s {
		h ^= w
		h *= 0xBF58476D1CE4E5B9
		h ^= h >> 31
	}
	return h
}

// checksum recomputes the checksum and count of the used slots.
func (t *slotTable) checksum() (uint64, int) {
	var sum uint64
	n := 0
	t.pass(true)
	defer t.pass(false)
	for i := 0; i < t.cap; i++ {
		// A pass in slot order (a restart's validation reads every
		// slot): paged as it goes.
		t.page()
		s := t.slots[i*t.stride : (i+1)*t.stride]
		if s[t.stride-1] != 0 {
			sum ^= slotSum(i, s)
			n++
		}
	}
	return sum, n
}

// slotsFor is the slot count for n keys: 80% full, as a build leaves it.
func slotsFor(n int) int {
	return max(keyIndexMinSlots, n*100/80+1)
}

func (t *slotTable) bytes() int64 { return int64(len(t.slots)) * 8 }

func (t *slotTable) reserve(n int) {
	if n == 0 || n*100 <= t.cap*keyIndexMaxLoad {
		return
	}
	t.rehash(slotsFor(n))
}

// home is the first slot probed for h: Lemire's multiply-shift range
// reduction of a mixed hash, so the capacity need not be a power of two.
func (t *slotTable) home(h [2]uint64) int {
	hi, _ := bits.Mul64(slotOrder(h), uint64(t.cap))
	return int(hi)
}

// slotOrder is the mixed hash home scales to a table's size: keys in its
// order have their home slots in slot order, at any capacity.
func slotOrder(h [2]uint64) uint64 {
	m := (h[0] ^ h[1]) * 0x9E3779B97F4A7C15
	return m ^ m>>29
}

func (t *slotTable) match(i int, h [2]uint64) bool {
	s := t.slots[i*t.stride:]
	if s[0] != h[0] {
		return false
	}
	return t.stride == 2 || s[1] == h[1]
}

func (t *slotTable) used(i int) bool { return t.slots[i*t.stride+t.stride-1] != 0 }

// find returns the slot holding h, or the free slot where it would go.
func (t *slotTable) find(h [2]uint64) (int, bool) {
	i := t.home(h)
	for {
		if !t.used(i) {
			return i, false
		}
		if t.match(i, h) {
			return i, true
		}
		if i++; i == t.cap {
			i = 0
		}
	}
}

func (t *slotTable) get(h [2]uint64) (uint64, bool) {
	if t.n == 0 {
		return 0, false
	}
	t.touch()
	i, ok := t.find(h)
	if !ok {
		return 0, false
	}
	return t.slots[i*t.stride+t.stride-1] - 1, true
}

func (t *slotTable) set(h [2]uint64, loc uint64) bool {
	if (t.n+1)*100 > t.cap*keyIndexMaxLoad {
		t.rehash(max(slotsFor(t.n+1), t.cap*3/2))
	}
	t.guard()
	t.touch()
	i, ok := t.find(h)
	s := t.slots[i*t.stride : (i+1)*t.stride]
	t.save(i)
	if ok {
		t.sum ^= slotSum(i, s)
	}
	copy(s, h[:t.stride-1])
	s[t.stride-1] = loc + 1
	t.sum ^= slotSum(i, s)
	if !ok {
		t.n++
	}
	return !ok
}

func (t *slotTable) del(h [2]uint64) (uint64, bool) {
	if t.n == 0 {
		return 0, false
	}
	t.guard()
	t.touch()
	i, ok := t.find(h)
	if !ok {
		return 0, false
	}
	loc := t.slots[i*t.stride+t.stride-1] - 1
	t.delAt(i)
	return loc, true
}

// delAt removes the entry in slot i, which must be used.
func (t *slotTable) delAt(i int) {
	// Backward-shift deletion: move later entries of the probe run back
	// so that no lookup stops early at the freed slot.
	j := i
	for {
		t.clear(i)
		for {
			if j++; j == t.cap {
				j = 0
			}
			if !t.used(j) {
				t.n--
				return
			}
			k := t.home(t.hashAt(j))
			// Move j to i unless its home lies cyclically in (i, j].
			if (i <= j && (i < k && k <= j)) || (i > j && (i < k || k <= j)) {
				continue
			}
			// clear(i) journaled slot i.
			copy(t.slots[i*t.stride:(i+1)*t.stride], t.slots[j*t.stride:(j+1)*t.stride])
			t.sum ^= slotSum(i, t.slots[i*t.stride:(i+1)*t.stride])
			i = j
			break
		}
	}
}

func (t *slotTable) hashAt(i int) [2]uint64 {
	s := t.slots[i*t.stride:]
	if t.stride == 2 {
		return [2]uint64{s[0]}
	}
	return [2]uint64{s[0], s[1]}
}

func (t *slotTable) clear(i int) {
	s := t.slots[i*t.stride : (i+1)*t.stride]
	if s[t.stride-1] != 0 {
		t.save(i)
		t.sum ^= slotSum(i, s)
	}
	clear(s)
}

func (t *slotTable) each(fn func(loc uint64)) {
	t.pass(true)
	defer t.pass(false)
	for i := 0; i < t.cap; i++ {
		t.page()
		if v := t.slots[i*t.stride+t.stride-1]; v != 0 {
			fn(v - 1)
		}
	}
}

func (t *slotTable) rehash(slots int) {
	old, oldCap := t.slots, t.cap
	t.jr = nil // a new file, which no meta names yet
	if t.mem != nil {
		t.slots = t.mem.alloc(t.name, slots*t.stride)
	} else {
		t.slots = make([]uint64, slots*t.stride)
	}
	t.cap, t.sum = slots, 0
	if t.mem != nil && old != nil {
		if p, ok := t.mem.(pager); ok {
			p.sequential(old, true)
		}
	}
	for i := 0; i < oldCap; i++ {
		// Every slot read counts: the old table's pages are dropped
		// with the new one's.
		if t.page(); t.touched == 0 && t.mem != nil {
			if p, ok := t.mem.(pager); ok {
				p.drop(old)
			}
		}
		s := old[i*t.stride : (i+1)*t.stride]
		if s[t.stride-1] == 0 {
			continue
		}
		var h [2]uint64
		copy(h[:], s[:t.stride-1])
		j, _ := t.find(h)
		copy(t.slots[j*t.stride:(j+1)*t.stride], s)
		t.sum ^= slotSum(j, s)
	}
	if t.mem != nil && old != nil {
		t.mem.release(t.name, old)
	}
}

// reset empties the table, keeping its storage; a persisted table gets
// a new, empty file instead (the meta's file keeps what it describes).
func (t *slotTable) reset() {
	t.n, t.sum = 0, 0
	if t.jr != nil && t.mem != nil {
		t.jr = nil
		old := t.slots
		t.slots = t.mem.alloc(t.name, len(old))
		t.mem.release(t.name, old)
		return
	}
	clear(t.slots)
}

// remap replaces the location of every used slot with what fn returns
// for it (when its second result is true), in slot order, keeping the
// checksum, and returns how many it changed.
func (t *slotTable) remap(fn func(loc uint64) (uint64, bool)) int {
	n := 0
	t.pass(true)
	defer t.pass(false)
	for i := 0; i < t.cap; i++ {
		t.page() // every slot read counts
		s := t.slots[i*t.stride : (i+1)*t.stride]
		v := s[t.stride-1]
		if v == 0 {
			continue
		}
		nl, ok := fn(v - 1)
		if !ok || nl == v-1 {
			continue
		}
		if t.jr != nil {
			t.guard()
			s = t.slots[i*t.stride : (i+1)*t.stride]
			t.save(i)
		}
		t.sum ^= slotSum(i, s)
		s[t.stride-1] = nl + 1
		t.sum ^= slotSum(i, s)
		n++
	}
	if t.mem != nil {
		if p, ok := t.mem.(pager); ok {
			t.touched = 0
			p.drop(t.slots)
		}
	}
	return n
}

// entries calls fn with every used slot's number, hash (or key) and
// location, in slot order.
func (t *slotTable) entries(fn func(i int, h [2]uint64, loc uint64)) {
	t.pass(true)
	defer t.pass(false)
	for i := 0; i < t.cap; i++ {
		t.page()
		if v := t.slots[i*t.stride+t.stride-1]; v != 0 {
			fn(i, t.hashAt(i), v-1)
		}
	}
}

// save records slot i's words in the undo journal, before they change.
func (t *slotTable) save(i int) {
	if t.jr != nil {
		t.jr.save(t.stride == 3, i, t.slots[i*t.stride:(i+1)*t.stride])
	}
}

// guard, before a change of a persisted table, detaches the table when
// its journal is full: a change too large to journal goes on in a copy.
func (t *slotTable) guard() {
	if t.jr != nil && t.jr.full() {
		t.detach()
	}
}

// detach copies the table into a new file of its allocator (one no meta
// names: its changes need no journal) and goes on there; the old file,
// which the meta names, keeps the state the journal's records undo to.
// Slot numbers do not change, so a pass over the table may detach midway.
func (t *slotTable) detach() {
	t.jr = nil
	if t.mem == nil {
		return
	}
	old := t.slots
	t.slots = t.mem.alloc(t.name, len(old))
	p, _ := t.mem.(pager)
	if p != nil {
		p.sequential(old, true)
	}
	const chunk = bulkDropBytes / 8
	for from := 0; from < len(old); from += chunk {
		to := min(from+chunk, len(old))
		copy(t.slots[from:to], old[from:to])
		if p != nil {
			p.drop(old)
			p.drop(t.slots)
		}
	}
	t.touched = 0
	t.mem.release(t.name, old)
}

// sweep removes every entry for whose location drop is true, in one pass
// in slot order, and returns how many it removed. A removal shifts later
// entries of its run back, so the freed slot is looked at again; an entry
// shifted from the table's start to its end is looked at twice.
func (t *slotTable) sweep(drop func(loc uint64) bool) int {
	removed := 0
	t.pass(true)
	defer t.pass(false)
	for i := 0; i < t.cap; {
		t.page()
		v := t.slots[i*t.stride+t.stride-1]
		if v == 0 || !drop(v-1) {
			i++
			continue
		}
		t.guard()
		t.delAt(i)
		removed++
	}
	return removed
}
