package writer

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"
)

// BenchmarkKeyIndexPersist compares the persistent index (mapped slot
// files, a meta written after every commit, validated by a checksum scan
// at open) with a snapshot dump of the in-heap index (the slots written
// to a file at a checkpoint, read back at open), for n bigint keys:
//
//   - commit: what persisting costs per commit of 1,000 changes — for
//     the mapped index the fold and the meta, for the dump a whole dump
//     (a dump every commit is the only way it stays as fresh);
//   - open: from the files to a usable index (mapped: map, checksum scan;
//     dump: read).
//
// Run with -benchtime 1x; it reports ms per operation as metrics.
func BenchmarkKeyIndexPersist(b *testing.B) {
	for _, n := range []int{1_000_000, 10_000_000} {
		b.Run(fmt.Sprintf("keys=%dM", n/1_000_000), func(b *testing.B) {
			key := func(i int) string { return string(binary.BigEndian.AppendUint64(nil, uint64(i))) }
			dir := b.TempDir()
			f, err := openIndexFiles(filepath.Join(dir, "t"), slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			base := newKeyIndex()
			base.narrow.mem, base.narrow.name = f, "narrow"
			base.reserve(n, true)
			for i := range n {
				base.Set(key(i), uint64(i))
			}
			v := newIndexView(base)
			meta := func() *indexMeta {
				return &indexMeta{Version: indexMetaVersion, Seed: base.seed,
					Narrow: slotMeta{File: f.cur["narrow"], Cap: base.narrow.cap, N: base.narrow.n, Sum: base.narrow.sum}}
			}
			for b.Loop() {
				// The mapped index: 10 commits of 1,000 updates.
				start := time.Now()
				for c := range 10 {
					for j := range 1000 {
						k := key((c*7919 + j*104729) % n)
						v.Delete(k)
						v.Set(k, uint64(n+j))
					}
					v.Seal()
					v.Fold()
					if err := f.writeMeta(meta()); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(time.Since(start).Milliseconds())/10, "mapped-commit-ms")
				// Reopen: map and scan.
				start = time.Now()
				m, err := f.readMeta()
				if err != nil {
					b.Fatal(err)
				}
				g := &indexFiles{dir: f.dir, log: f.log, cur: map[string]string{}, maps: map[*uint64][]byte{}}
				s, err := g.mapExisting("narrow", m.Narrow.File, m.Narrow.Cap*2)
				if err != nil {
					b.Fatal(err)
				}
				t := slotTable{stride: 2, slots: s, cap: m.Narrow.Cap}
				if sum, cnt := t.checksum(); sum != m.Narrow.Sum || cnt != m.Narrow.N {
					b.Fatal("checksum mismatch")
				}
				b.ReportMetric(float64(time.Since(start).Milliseconds()), "mapped-open-ms")
				g.close()

				// The dump: the whole slot array to a file, and back.
				raw := unsafe.Slice((*byte)(unsafe.Pointer(&base.narrow.slots[0])), len(base.narrow.slots)*8)
				path := filepath.Join(dir, "dump")
				start = time.Now()
				if err := os.WriteFile(path, raw, 0o644); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(time.Since(start).Milliseconds()), "dump-commit-ms")
				start = time.Now()
				back, err := os.ReadFile(path)
				if err != nil || len(back) != len(raw) {
					b.Fatal(err)
				}
				b.ReportMetric(float64(time.Since(start).Milliseconds()), "dump-open-ms")
				b.ReportMetric(float64(len(raw))/(1<<20), "slot-MiB")
			}
			f.close()
		})
	}
}
