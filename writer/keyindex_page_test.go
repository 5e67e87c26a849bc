//go:build linux

package writer

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
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
	sum, n := base.narrow.checksum()
	if sum != base.narrow.sum || n != base.narrow.n {
		t.Errorf("after a remap the checksum is %x (%d slots), the table keeps %x (%d)", sum, n, base.narrow.sum, base.narrow.n)
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
