package writer

import (
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestUndoJournal changes a persisted index in every way the committed
// index changes (sets and deletes of a fold, a compaction's remap, a
// catch-up's sweep, a truncation, a growth, a change too large for the
// journal), stops partway as a killed process would — the mappings go,
// no meta is written — and reopens the directory: the journal undoes the
// change and the slots match the meta, holding exactly what it describes.
// Without the journal (removed before the reopen) every case that wrote
// the meta's files fails its checksum: the crash hit the slots.
func TestUndoJournal(t *testing.T) {
	const keys = 20000
	type change func(x *keyIndex, rng *rand.Rand, stop int)
	setsDeletes := func(x *keyIndex, rng *rand.Rand, stop int) {
		for n := range stop {
			k := testKey(rng.IntN(keys*2), rng.IntN(2) == 0)
			if n%3 == 0 {
				x.Delete(k)
			} else {
				x.Set(k, uint64(rng.Uint32()))
			}
		}
	}
	for _, tc := range []struct {
		name    string
		change  change
		ops     int  // the change's length; it stops after 1..ops
		max     int  // journalMaxRecords (0: the default)
		touches bool // the meta's files change (not only new ones)
	}{
		{name: "fold", change: setsDeletes, ops: 3000, touches: true},
		{name: "fold past the journal's first size", change: setsDeletes, ops: 40000, touches: true},
		{name: "remap", ops: keys, touches: true, change: func(x *keyIndex, _ *rand.Rand, stop int) {
			moved := 0
			fn := func(loc uint64) (uint64, bool) {
				if loc>>32 != 3 || moved >= stop {
					return 0, false
				}
				moved++
				return 9<<32 | uint64(moved), true
			}
			x.narrow.remap(fn)
			x.wide.remap(fn)
		}},
		{name: "sweep", ops: keys, touches: true, change: func(x *keyIndex, _ *rand.Rand, stop int) {
			dropped := 0
			drop := func(loc uint64) bool {
				if loc>>32 != 2 || dropped >= stop {
					return false
				}
				dropped++
				return true
			}
			x.narrow.sweep(drop)
			x.wide.sweep(drop)
		}},
		{name: "journal full: detached midway", change: setsDeletes, ops: 3000, max: 200, touches: true},
		{name: "journal full: remap detached midway", ops: keys, max: 300, touches: true, change: func(x *keyIndex, _ *rand.Rand, stop int) {
			moved := 0
			fn := func(loc uint64) (uint64, bool) {
				if moved >= stop {
					return 0, false
				}
				moved++
				return loc + 1<<40, true
			}
			x.narrow.remap(fn)
			x.wide.remap(fn)
		}},
		{name: "truncate, then sets", ops: 500, change: func(x *keyIndex, rng *rand.Rand, stop int) {
			x.narrow.reset()
			x.wide.reset()
			setsDeletes(x, rng, stop)
		}},
		{name: "growth", ops: keys * 2, change: func(x *keyIndex, _ *rand.Rand, stop int) {
			for n := range stop {
				x.Set(testKey(keys*3+n, n%2 == 0), uint64(n))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.max > 0 {
				old := journalMaxRecords
				journalMaxRecords = tc.max
				defer func() { journalMaxRecords = old }()
			}
			rng := rand.New(rand.NewPCG(7, uint64(len(tc.name))))
			for round := range 3 {
				dir := t.TempDir()
				x, f, want := persistedTestIndex(t, dir, keys, rng)
				stop := 1 + rng.IntN(tc.ops)
				if round == 0 {
					stop = tc.ops
				}
				tc.change(x, rng, stop)
				f.close() // killed: no meta
				bare := filepath.Join(t.TempDir(), "bare")
				copyDir(t, dir, bare)
				if err := os.Remove(filepath.Join(bare, journalName)); err != nil {
					t.Fatal(err)
				}

				got, undone := reopenTestIndex(t, dir, "")
				defer got.close()
				checkTestIndex(t, got.x, want)
				if tc.touches && undone == 0 {
					t.Errorf("round %d: nothing undone", round)
				}
				if tc.max > 0 && undone > tc.max+64 {
					t.Errorf("round %d: %d slot changes undone: the table was not detached at %d", round, undone, tc.max)
				}
				if tc.touches {
					b, _ := reopenTestIndex(t, bare, "checksum")
					b.close()
				}
			}
		})
	}
}

// TestUndoJournalStale: a process killed after writing a meta but before
// emptying the journal leaves records of the meta before: they are
// ignored, the new meta holds.
func TestUndoJournalStale(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	x, f, _ := persistedTestIndex(t, dir, 5000, rng)
	for n := range 2000 {
		x.Set(testKey(n, n%2 == 0), uint64(n)+7)
	}
	old, err := os.ReadFile(filepath.Join(dir, journalName))
	if err != nil {
		t.Fatal(err)
	}
	want := writeTestMeta(t, f, x)
	// The journal as it was before the meta: a crash between the rename
	// and the reset.
	if err := os.WriteFile(filepath.Join(dir, journalName), old, 0o644); err != nil {
		t.Fatal(err)
	}
	if n := binary.LittleEndian.Uint64(old[16:]); n < 2000 {
		t.Fatalf("the journal held %d records, want at least 2000", n)
	}
	f.close()
	got, undone := reopenTestIndex(t, dir, "")
	defer got.close()
	if undone != 0 {
		t.Errorf("undid %d slot changes of an older meta", undone)
	}
	checkTestIndex(t, got.x, want)
}

// TestSlotSweep: a sweep removes exactly the entries it is asked to, and
// every other key is still found (the backward shifts kept the runs).
func TestSlotSweep(t *testing.T) {
	for _, n := range []int{10, 1000, 50000} {
		rng := rand.New(rand.NewPCG(uint64(n), 3))
		x := newKeyIndex()
		want := map[string]uint64{}
		for i := range n {
			k := testKey(rng.IntN(n*4), i%2 == 0)
			loc := uint64(rng.IntN(4))<<32 | uint64(i)
			x.Set(k, loc)
			want[k] = loc
		}
		drop := func(loc uint64) bool { return loc>>32 == 2 }
		removed := x.narrow.sweep(drop) + x.wide.sweep(drop)
		kept := 0
		for k, loc := range want {
			got, ok := x.Get(k)
			switch {
			case drop(loc) && ok:
				t.Fatalf("%d keys: a dropped key is still there", n)
			case !drop(loc) && (!ok || got != loc):
				t.Fatalf("%d keys: a kept key is lost (%v) or moved", n, ok)
			case !drop(loc):
				kept++
			}
		}
		if removed != len(want)-kept || x.Len() != kept {
			t.Fatalf("%d keys: removed %d, %d left, want %d and %d", n, removed, x.Len(), len(want)-kept, kept)
		}
		if sum, c := x.narrow.checksum(); sum != x.narrow.sum || c != x.narrow.n {
			t.Fatalf("%d keys: the checksum was not kept", n)
		}
	}
}

func testKey(n int, narrow bool) string {
	if narrow {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(n))
		return string(b[:])
	}
	return "wide-key-" + strconv.Itoa(n)
}

type testIndex struct {
	x *keyIndex
	f *indexFiles
}

func (ti testIndex) close() { ti.f.close() }

// persistedTestIndex builds an index of n keys (half narrow) in files of
// dir, locations in files 1–4, and writes its meta; it returns what the
// meta describes.
func persistedTestIndex(t *testing.T, dir string, n int, rng *rand.Rand) (*keyIndex, *indexFiles, map[string]uint64) {
	t.Helper()
	f, err := openIndexFiles(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if f.jr == nil {
		t.Skip("no memory-mapped files here")
	}
	x := newKeyIndex()
	x.narrow.mem, x.narrow.name = f, "narrow"
	x.wide.mem, x.wide.name = f, "wide"
	for i := range n {
		x.Set(testKey(i, i%2 == 0), uint64(1+rng.IntN(4))<<32|uint64(i))
	}
	return x, f, writeTestMeta(t, f, x)
}

func writeTestMeta(t *testing.T, f *indexFiles, x *keyIndex) map[string]uint64 {
	t.Helper()
	m := &indexMeta{
		Version: indexMetaVersion, Seed: x.seed,
		Narrow: slotMeta{File: f.cur["narrow"], Cap: x.narrow.cap, N: x.narrow.n, Sum: x.narrow.sum},
		Wide:   slotMeta{File: f.cur["wide"], Cap: x.wide.cap, N: x.wide.n, Sum: x.wide.sum},
	}
	if err := f.writeMeta(m); err != nil {
		t.Fatal(err)
	}
	f.journal(x)
	if x.narrow.jr == nil || x.wide.jr == nil {
		t.Fatal("the tables are not journaled after the meta")
	}
	return entriesOf(x)
}

// entriesOf is every slot's hash (or key) and location, by table.
func entriesOf(x *keyIndex) map[string]uint64 {
	out := map[string]uint64{}
	for _, wide := range []bool{false, true} {
		x.table(wide).entries(func(_ int, h [2]uint64, loc uint64) {
			k := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, h[0]), h[1])
			if wide {
				k = append(k, 'w')
			}
			out[string(k)] = loc
		})
	}
	return out
}

// reopenTestIndex opens dir's index as a restart does; a non-empty
// problem is a substring of the reason it must be refused for.
func reopenTestIndex(t *testing.T, dir, problem string) (testIndex, int) {
	t.Helper()
	f, err := openIndexFiles(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.readMeta()
	if err != nil {
		t.Fatal(err)
	}
	x, undone, why := f.open(m)
	switch {
	case problem == "" && x == nil:
		t.Fatalf("reopen: %s", why)
	case problem != "" && (x != nil || !strings.Contains(why, problem)):
		t.Fatalf("reopen: %q, want a refusal for %q", why, problem)
	}
	return testIndex{x: x, f: f}, undone
}

func checkTestIndex(t *testing.T, x *keyIndex, want map[string]uint64) {
	t.Helper()
	got := entriesOf(x)
	if len(got) != len(want) {
		t.Fatalf("reopened: %d entries, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("reopened: an entry points at %x, want %x", got[k], v)
		}
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
