package writer

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// TestIndexViewLayers applies random sets, deletes, truncations, seals
// and folds to an indexView and to two maps (what the view shows; what is
// committed) and checks after every step that the view answers as the
// first and that the committed index holds exactly the second: changes
// reach it only when their layer folds.
func TestIndexViewLayers(t *testing.T) {
	bigint := func(i int) string { return string(binary.BigEndian.AppendUint64(nil, uint64(i))) }
	for _, tc := range []struct {
		name string
		key  func(int) string
		// layerKeys: sealed layers beyond this many keys stay apart
		// (several sealed layers before a fold).
		layerKeys int
		// spill: a persistent index whose full sealed layers spill to
		// mapped files.
		spill bool
	}{
		{name: "bigint, small layers", key: bigint, layerKeys: 40},
		{name: "bigint, small layers spilled", key: bigint, layerKeys: 40, spill: true},
		{name: "mixed, spilled", key: func(i int) string {
			if i%3 == 0 {
				return fmt.Sprint(i)
			}
			return bigint(i)
		}, layerKeys: 40, spill: true},
		{name: "bigint", key: func(i int) string { return string(binary.BigEndian.AppendUint64(nil, uint64(i))) }},
		{name: "mixed", key: func(i int) string {
			if i%2 == 0 {
				return string(binary.BigEndian.AppendUint64(nil, uint64(i)))
			}
			return fmt.Sprint(i)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(9, 10))
			base := newKeyIndex()
			var f *indexFiles
			if tc.spill {
				var err error
				f, err = openIndexFiles(t.TempDir(), slog.New(slog.DiscardHandler))
				if err != nil {
					t.Fatal(err)
				}
				defer f.close()
				base.narrow.mem, base.narrow.name = f, "narrow"
				base.wide.mem, base.wide.name = f, "wide"
			}
			v := newIndexView(base)
			if f != nil {
				v.spillTo = spillAlloc{f}
			}
			v.layerKeys = tc.layerKeys
			maxLayers, maxSpilled := 0, 0
			view := map[string]uint64{}
			committed := map[string]uint64{}
			// sealed: the view as of each seal not folded yet.
			var sealed []map[string]uint64
			for step := range 30000 {
				key := tc.key(rng.IntN(3000))
				switch r := rng.IntN(100); {
				case r < 50:
					loc := rng.Uint64() >> 1
					_, had := view[key]
					if isNew := v.Set(key, loc); isNew == had {
						t.Fatalf("step %d: Set new=%v, key present=%v", step, isNew, had)
					}
					view[key] = loc
				case r < 80:
					loc, ok := v.Delete(key)
					want, had := view[key]
					if ok != had || loc != want {
						t.Fatalf("step %d: Delete = %d %v, want %d %v", step, loc, ok, want, had)
					}
					delete(view, key)
				case r < 81:
					v.Truncate()
					clear(view)
				case r < 92:
					v.Seal()
					sealed = append(sealed, maps.Clone(view))
				default:
					v.Fold()
					if len(sealed) > 0 {
						committed = sealed[len(sealed)-1]
					}
					sealed = nil
				}
				maxLayers = max(maxLayers, len(v.layers))
				spilled := 0
				for _, l := range v.layers {
					if l.heapBytes() < l.bytes() {
						spilled++
					}
				}
				maxSpilled = max(maxSpilled, spilled)
				if v.Len() != len(view) {
					t.Fatalf("step %d: Len %d, want %d", step, v.Len(), len(view))
				}
				if step%500 == 0 || step == 29999 {
					for k, want := range view {
						if got, ok := v.Get(k); !ok || got != want {
							t.Fatalf("step %d: Get = %d %v, want %d", step, got, ok, want)
						}
					}
					n := 0
					v.Locations(func(uint64) { n++ })
					if n != len(view) {
						t.Fatalf("step %d: %d locations, want %d", step, n, len(view))
					}
					if v.base.Len() != len(committed) {
						t.Fatalf("step %d: committed index has %d keys, want %d", step, v.base.Len(), len(committed))
					}
					for k, want := range committed {
						if got, ok := v.base.Get(k); !ok || got != want {
							t.Fatalf("step %d: committed Get = %d %v, want %d", step, got, ok, want)
						}
					}
					for _, tb := range []*slotTable{&v.base.narrow, &v.base.wide} {
						if sum, n := tb.checksum(); sum != tb.sum || n != tb.n {
							t.Fatalf("step %d: checksum %x/%d, kept %x/%d", step, sum, n, tb.sum, tb.n)
						}
					}
				}
			}
			if tc.layerKeys > 0 && maxLayers < 3 {
				t.Errorf("at most %d layers at once, want several sealed ones", maxLayers)
			}
			if tc.spill {
				if maxSpilled == 0 {
					t.Error("no layer was spilled")
				}
				// Folded and dropped layers are unmapped: only the
				// committed index's tables stay mapped, and the spill
				// files were unlinked when mapped.
				v.Seal()
				v.Fold()
				if len(f.maps) > 2 {
					t.Errorf("%d mappings after the last fold, want the committed index's 2 at most", len(f.maps))
				}
				ents, _ := os.ReadDir(f.dir)
				for _, e := range ents {
					if strings.HasPrefix(e.Name(), "spill.") {
						t.Errorf("spill file %s left in the index directory", e.Name())
					}
				}
			}
		})
	}
}

// TestSpilledLayersCrashAndClose: while spilled layers are mapped, the
// index directory holds no spill file (each is unlinked once mapped, so
// a process killed then leaves nothing behind and its next start sees
// only the persisted index), and closing the index (release, as
// closeIndexLocked does) unmaps them without a fold.
func TestSpilledLayersCrashAndClose(t *testing.T) {
	f, err := openIndexFiles(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	base := newKeyIndex()
	base.narrow.mem, base.narrow.name = f, "narrow"
	v := newIndexView(base)
	v.spillTo = spillAlloc{f}
	v.layerKeys = 100
	key := func(i int) string { return string(binary.BigEndian.AppendUint64(nil, uint64(i))) }
	for i := range 1000 {
		v.Set(key(i), uint64(i))
		if i%80 == 79 {
			v.Seal()
		}
	}
	spilled := 0
	for _, l := range v.layers {
		if l.heapBytes() < l.bytes() {
			spilled++
		}
	}
	if spilled == 0 {
		t.Fatal("no layer was spilled")
	}
	for _, i := range []int{0, 500, 999} {
		if loc, ok := v.Get(key(i)); !ok || loc != uint64(i) {
			t.Fatalf("key %d at %d %v, want %d", i, loc, ok, i)
		}
	}
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "spill.") {
			t.Errorf("spill file %s in the index directory while its layer is mapped", e.Name())
		}
	}
	if len(f.maps) < spilled {
		t.Fatalf("%d mappings for %d spilled layers", len(f.maps), spilled)
	}
	v.release()
	if len(f.maps) > 1 {
		t.Errorf("%d mappings after release, want the committed index's 1 at most", len(f.maps))
	}
}
