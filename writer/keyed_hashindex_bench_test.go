package writer

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/floe-lake/floe/internal/benchutil"
)

// BenchmarkKeyIndex compares the key index (keyIndex) with the
// map[string]uint64 it replaced, for a bigint key and a composite string
// key (tenant, order number), at FLOE_BENCH_INDEX_KEYS keys (default 1M).
// It reports heap bytes per key, CPU-ms of one forced GC cycle with the
// index live (what every cycle costs once the heap nears the memory limit),
// lookups per CPU-second, CPU-ms per 10k updates (delete + set) and the
// CPU-s of building it. The figures behind the design are in
// keyed_hashindex.go.
func BenchmarkKeyIndex(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("FLOE_BENCH_INDEX_KEYS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	keyOf := map[string]func(int) string{
		"bigint": func(i int) string { return string(binary.BigEndian.AppendUint64(nil, uint64(i)*2654435761%(1<<40))) },
		"composite": func(i int) string {
			b := appendBytesKey(nil, fmt.Appendf(nil, "tenant-%04d", i%5000))
			return string(appendBytesKey(b, fmt.Appendf(nil, "ORD-%010d", i)))
		},
	}
	type index struct {
		get func(string) (uint64, bool)
		set func(string, uint64)
		del func(string)
	}
	impls := map[string]func(n int, narrow bool) index{
		"map": func(int, bool) index {
			m := map[string]uint64{}
			return index{
				get: func(k string) (uint64, bool) { v, ok := m[k]; return v, ok },
				set: func(k string, v uint64) { m[k] = v },
				del: func(k string) { delete(m, k) },
			}
		},
		"keyIndex": func(n int, narrow bool) index {
			x := newKeyIndex()
			x.reserve(n, narrow)
			return index{get: x.Get, set: func(k string, v uint64) { x.Set(k, v) }, del: func(k string) { x.Delete(k) }}
		},
	}
	for _, kind := range []string{"bigint", "composite"} {
		for _, impl := range []string{"map", "keyIndex"} {
			b.Run(kind+"/"+impl, func(b *testing.B) {
				for range b.N {
					key := keyOf[kind]
					var ms runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&ms)
					heap0 := ms.HeapAlloc
					c0 := benchutil.CPUTime()
					x := impls[impl](n, kind == "bigint")
					for i := range n {
						x.set(key(i), uint64(i))
					}
					build := benchutil.CPUTime() - c0
					runtime.GC()
					runtime.ReadMemStats(&ms)
					heap := float64(ms.HeapAlloc - heap0)
					c0 = benchutil.CPUTime()
					runtime.GC()
					gc := benchutil.CPUTime() - c0
					rng := rand.New(rand.NewPCG(1, 1))
					probe := make([]string, 1024)
					for i := range probe {
						probe[i] = key(rng.IntN(n))
					}
					c0 = benchutil.CPUTime()
					const lookups = 1 << 20
					for i := range lookups {
						x.get(probe[i%len(probe)])
					}
					look := benchutil.CPUTime() - c0
					c0 = benchutil.CPUTime()
					for i := range 10000 {
						k := key(rng.IntN(n))
						x.del(k)
						x.set(k, uint64(n+i))
					}
					upd := benchutil.CPUTime() - c0
					b.ReportMetric(heap/float64(n), "heap-B/key")
					b.ReportMetric(float64(gc)/float64(time.Millisecond), "gc-cycle-cpu-ms")
					b.ReportMetric(lookups/look.Seconds(), "lookups/cpu-s")
					b.ReportMetric(float64(upd)/float64(time.Millisecond), "cpu-ms/10k-updates")
					b.ReportMetric(build.Seconds(), "build-cpu-s")
					runtime.KeepAlive(x)
				}
			})
		}
	}
}
