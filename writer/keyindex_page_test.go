//go:build linux

package writer

import (
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// residentPages counts the pages of s's mapping resident in the process
// (its Rss in /proc/self/smaps; mincore would count the page cache).
func residentPages(t *testing.T, s []uint64) int {
	t.Helper()
	addr := uint64(uintptr(unsafe.Pointer(&s[0])))
	raw, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && !strings.HasSuffix(f[0], ":") {
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			in = err1 == nil && err2 == nil && a <= addr && addr < b
			continue
		}
		if in && f[0] == "Rss:" {
			kb, _ := strconv.Atoi(f[1])
			return kb * 1024 / syscall.Getpagesize()
		}
	}
	t.Fatalf("no mapping at %x in /proc/self/smaps", addr)
	return 0
}

// TestMappedIndexPagesBounded: a mapped key index drops its resident pages
// every pageEvery slot writes — through inserts and the rehashes they
// cause, a fold of a large layer, and a remap scan — so that however many
// keys a fold or a compaction's move touches, at most that many pages stay
// resident beside the Go heap (issue 17: the index's pages counted in RSS
// on top of the soft memory limit). Without the drops every page of the
// index is resident at the end.
func TestMappedIndexPagesBounded(t *testing.T) {
	f, err := openIndexFiles(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	const every = 256
	base := newKeyIndex()
	base.narrow.mem, base.narrow.name, base.narrow.pageEvery = f, "narrow", every
	v := newIndexView(base)
	key := func(i int) string {
		var b [8]byte
		for j := range b {
			b[j] = byte(uint64(i) >> (56 - 8*j))
		}
		return string(b[:])
	}
	// 400,000 keys: 500,000 slots of 16 bytes, about 1,950 pages.
	const keys = 400_000
	for i := range keys {
		v.Set(key(i), uint64(i))
	}
	v.Seal()
	v.Fold()
	pages := len(base.narrow.slots) * 8 / syscall.Getpagesize()
	// Each slot write touches at most one page (two at a boundary).
	if got := residentPages(t, base.narrow.slots); got > 2*every {
		t.Errorf("after a fold of %d keys: %d of %d pages resident, want at most %d", keys, got, pages, 2*every)
	}
	moved := base.narrow.remap(func(loc uint64) (uint64, bool) { return loc + 1, loc%2 == 0 })
	if moved != keys/2 {
		t.Errorf("remap moved %d, want %d", moved, keys/2)
	}
	if got := residentPages(t, base.narrow.slots); got > 2*every {
		t.Errorf("after a remap: %d of %d pages resident, want at most %d", got, pages, 2*every)
	}
	// A restart's validation reads every slot of the mapped file.
	sum, n := base.narrow.checksum()
	if sum != base.narrow.sum || n != base.narrow.n {
		t.Errorf("after a remap the checksum is %x (%d slots), the table keeps %x (%d)", sum, n, base.narrow.sum, base.narrow.n)
	}
	if got := residentPages(t, base.narrow.slots); got > 2*every {
		t.Errorf("after a checksum scan: %d of %d pages resident, want at most %d", got, pages, 2*every)
	}
	// So does a truncation (every key's location).
	seen := 0
	base.Locations(func(uint64) { seen++ })
	if seen != keys {
		t.Errorf("Locations saw %d keys, want %d", seen, keys)
	}
	if got := residentPages(t, base.narrow.slots); got > 2*every {
		t.Errorf("after a pass over every location: %d of %d pages resident, want at most %d", got, pages, 2*every)
	}
	for _, i := range []int{0, 1, 2, keys - 1} {
		want := uint64(i)
		if i%2 == 0 {
			want++
		}
		if loc, ok := base.Get(key(i)); !ok || loc != want {
			t.Errorf("key %d at %d %v, want %d", i, loc, ok, want)
		}
	}
}

// TestMappedIndexRandomAccessBounded: random lookups and changes of a
// mapped key index (an interval's updates) drop its resident pages once
// they may have made residentMax resident, each counted at the kernel's
// fault-around (64 KiB: one fault maps the cached pages around it), so
// that however many updates an interval holds the index's resident pages
// stay bounded (issue 17, r7: up to 170 MiB of a 191 MiB index between
// two commits). Without the drops every page is resident at the end.
func TestMappedIndexRandomAccessBounded(t *testing.T) {
	f, err := openIndexFiles(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	const resident = 1 << 20
	base := newKeyIndex()
	base.narrow.mem, base.narrow.name, base.narrow.residentMax = f, "narrow", resident
	v := newIndexView(base)
	key := func(i int) string {
		var b [8]byte
		for j := range b {
			b[j] = byte(uint64(i) >> (56 - 8*j))
		}
		return string(b[:])
	}
	const keys = 400_000 // about 1,950 pages
	for i := range keys {
		v.Set(key(i), uint64(i))
	}
	v.Seal()
	v.Fold()
	f.drop(base.narrow.slots)
	pages := len(base.narrow.slots) * 8 / syscall.Getpagesize()
	// What may be resident: the window, one fault's pages beyond it, and
	// a pass's pages (page).
	limit := (resident+keyIndexFaultBytes)/syscall.Getpagesize() + 2*keyIndexPageEvery*16/syscall.Getpagesize()
	for round, op := range []string{"lookups", "changes"} {
		for i := range 5000 {
			k := key((i*7919 + round) % keys)
			if op == "lookups" {
				if _, ok := base.Get(k); !ok {
					t.Fatalf("key %d missing", (i*7919+round)%keys)
				}
				continue
			}
			base.Set(k, uint64(i))
		}
		if got := residentPages(t, base.narrow.slots); got > limit {
			t.Errorf("after 5,000 random %s: %d of %d pages resident, want at most %d", op, got, pages, limit)
		}
	}
	if got, want := v.ResidentBytes(), int64(resident+keyIndexPageEvery*16); got != want {
		t.Errorf("ResidentBytes = %d, want %d", got, want)
	}
}

// TestMappedIndexRandomFaultsNoReadahead: a random lookup of a mapped
// key index whose pages are not in the page cache (written back and
// evicted, as under memory pressure) reads and maps the one page it
// needs, not a readahead window around it (madvise MADV_RANDOM): at 10M
// keys an interval's updates otherwise kept 100–150 MiB of the index
// resident (issue 17, r8). Without the advice, 200 lookups map about 14
// pages each.
func TestMappedIndexRandomFaultsNoReadahead(t *testing.T) {
	dir := t.TempDir()
	f, err := openIndexFiles(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	base := newKeyIndex()
	base.narrow.mem, base.narrow.name = f, "narrow"
	base.reserve(4_000_000, true) // 80 MiB of slots
	base.Set("\x00\x00\x00\x00\x00\x00\x00\x01", 1)
	s := base.narrow.slots
	b := f.maps[&s[0]]
	if err := unix.Msync(b, unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	f.drop(s)
	fd, err := os.Open(filepath.Join(dir, f.cur["narrow"]))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(fd.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	_ = fd.Close()
	const lookups = 200
	rng := rand.New(rand.NewPCG(1, 2))
	for range lookups {
		var k [8]byte
		binary.BigEndian.PutUint64(k[:], rng.Uint64())
		base.Get(string(k[:]))
	}
	// A probe may cross into the next page.
	if got := residentPages(t, s); got > 2*lookups {
		t.Errorf("after %d random lookups of an evicted index: %d pages resident, want at most %d", lookups, got, 2*lookups)
	}
}

// dropCounter is a heap slotAlloc that counts the drops of its pages.
type dropCounter struct{ drops int }

func (*dropCounter) alloc(_ string, words int) []uint64 { return make([]uint64, words) }
func (*dropCounter) release(string, []uint64)           {}
func (*dropCounter) mapped([]uint64) bool               { return true }
func (d *dropCounter) drop([]uint64)                    { d.drops++ }
func (*dropCounter) sequential([]uint64, bool)          {}

// TestMappedIndexBulkBuildKeepsPages: a build of the index (a rebuild,
// a catch-up: every key written at random) does not drop the mapped
// pages every few hundred writes as random access outside a build does,
// which made every write fault again and a 10M-key rebuild take minutes
// (r9); its pages are dropped once at its end.
func TestMappedIndexBulkBuildKeepsPages(t *testing.T) {
	for _, bulk := range []bool{false, true} {
		d := &dropCounter{}
		x := newKeyIndex()
		x.narrow.mem, x.narrow.name = d, "narrow"
		x.reserve(100_000, true)
		x.narrow.bulk = bulk
		for i := range 100_000 {
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], uint64(i)*0x9E3779B97F4A7C15)
			x.Set(string(k[:]), uint64(i))
		}
		if bulk && d.drops != 0 {
			t.Errorf("a bulk build of 100,000 keys dropped the pages %d times, want 0", d.drops)
		}
		if !bulk && d.drops == 0 {
			t.Errorf("100,000 random writes outside a build never dropped the pages")
		}
	}
}

// TestBulkPlacePagesBounded: a build places its keys in batches sorted
// into slot order, dropping the mapped pages as each pass goes, so that a
// rebuilt index is never all resident at once (issue 17: a 50M-key
// rebuild kept its 958 MiB resident until it ended). Placing the same
// keys in arrival order leaves every page resident. The placed index
// equals one built by Set, and a key read twice keeps its later location
// and reports the earlier as a duplicate.
func TestBulkPlacePagesBounded(t *testing.T) {
	f, err := openIndexFiles(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	// 3M keys: 3.75M slots of 16 bytes, 60 MiB mapped: a pass drops
	// its pages every bulkDropBytes (16 MiB).
	const keys = 3_000_000
	x := newKeyIndex()
	x.narrow.mem, x.narrow.name = f, "narrow"
	// As in a build (addKeys): no drops per random access.
	x.narrow.bulk = true
	x.reserve(keys, true)
	rng := rand.New(rand.NewPCG(3, 4))
	key := func(i int) string { return string(binary.BigEndian.AppendUint64(nil, uint64(i))) }
	var batch []bulkEntry
	for _, i := range rng.Perm(keys) {
		tb, h := x.slot(key(i))
		batch = append(batch, bulkEntry{order: slotOrder(h), h: h, loc: uint64(i), wide: tb == &x.wide})
	}
	// Key 7 read again later: it moves, and its first location is a
	// duplicate.
	_, h7 := x.slot(key(7))
	batch = append(batch, bulkEntry{order: slotOrder(h7), h: h7, loc: 1 << 40})
	var dups []uint64
	if n := x.place(batch, func(prev uint64) { dups = append(dups, prev) }); n != 1 || len(dups) != 1 || dups[0] != 7 {
		t.Fatalf("place: %d duplicates %v, want 1 [7]", n, dups)
	}
	pages := len(x.narrow.slots) * 8 / syscall.Getpagesize()
	limit := 2 * bulkDropBytes / syscall.Getpagesize()
	if got := residentPages(t, x.narrow.slots); got > limit {
		t.Errorf("after placing %d keys: %d of %d pages resident, want at most %d", keys, got, pages, limit)
	}
	if x.Len() != keys {
		t.Fatalf("%d keys placed, want %d", x.Len(), keys)
	}
	for _, i := range []int{0, 1, 7, keys / 2, keys - 1} {
		want := uint64(i)
		if i == 7 {
			want = 1 << 40
		}
		if loc, ok := x.Get(key(i)); !ok || loc != want {
			t.Errorf("key %d at %d %v, want %d", i, loc, ok, want)
		}
	}
	if sum, n := x.narrow.checksum(); sum != x.narrow.sum || n != x.narrow.n {
		t.Errorf("checksum %x/%d, kept %x/%d", sum, n, x.narrow.sum, x.narrow.n)
	}
}
