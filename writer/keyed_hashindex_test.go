package writer

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/iceberg-go"
)

// TestKeyIndexMatchesMap applies random sets and deletes to a keyIndex and
// a map and compares them after every step, for 8-byte keys (stored
// exactly) and other keys (fingerprints), through growth and deletion
// runs that wrap around the end of the table.
func TestKeyIndexMatchesMap(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  func(int) string
	}{
		{"bigint", func(i int) string { return string(binary.BigEndian.AppendUint64(nil, uint64(i))) }},
		{"composite", func(i int) string { return fmt.Sprintf("\x05tenant%d\x08%08d", i%7, i) }},
		{"mixed", func(i int) string {
			if i%2 == 0 {
				return string(binary.BigEndian.AppendUint64(nil, uint64(i)))
			}
			return fmt.Sprint(i)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			x := newKeyIndex()
			want := map[string]uint64{}
			for step := range 200000 {
				key := tc.key(rng.IntN(5000))
				switch rng.IntN(3) {
				case 0, 1:
					loc := rng.Uint64() >> 1
					_, had := want[key]
					if isNew := x.Set(key, loc); isNew == had {
						t.Fatalf("step %d: Set(%q) new=%v, map had it=%v", step, key, isNew, had)
					}
					want[key] = loc
				case 2:
					wl, had := want[key]
					gl, ok := x.Delete(key)
					if ok != had || gl != wl {
						t.Fatalf("step %d: Delete(%q) = %d,%v, want %d,%v", step, key, gl, ok, wl, had)
					}
					delete(want, key)
				}
				if x.Len() != len(want) {
					t.Fatalf("step %d: Len %d, want %d", step, x.Len(), len(want))
				}
			}
			for i := range 5000 {
				key := tc.key(i)
				wl, had := want[key]
				gl, ok := x.Get(key)
				if ok != had || gl != wl {
					t.Fatalf("Get(%q) = %d,%v, want %d,%v", key, gl, ok, wl, had)
				}
			}
			n := 0
			x.Locations(func(uint64) { n++ })
			if n != len(want) {
				t.Fatalf("Locations saw %d, want %d", n, len(want))
			}
			// Removing everything leaves an empty table.
			for key := range want {
				if _, ok := x.Delete(key); !ok {
					t.Fatalf("Delete(%q) found nothing", key)
				}
			}
			if x.Len() != 0 {
				t.Fatalf("Len %d after deleting all", x.Len())
			}
		})
	}
}

// TestKeyIndexReserve checks that a reserved table does not grow while it
// is filled up to the reservation.
func TestKeyIndexReserve(t *testing.T) {
	x := newKeyIndex()
	x.reserve(100000, true)
	b := x.Bytes()
	for i := range 100000 {
		x.Set(string(binary.BigEndian.AppendUint64(nil, uint64(i))), uint64(i))
	}
	if x.Bytes() != b {
		t.Fatalf("index grew from %d to %d bytes within its reservation", b, x.Bytes())
	}
	if got, want := b, keyIndexBytes(100000, true); got != want {
		t.Fatalf("Bytes %d, keyIndexBytes %d", got, want)
	}
	if per := float64(b) / 100000; per > 21 {
		t.Fatalf("%.1f bytes per 8-byte key, want at most 21", per)
	}
}

// TestEstimateKeyIndexBytes checks the estimate against a built index, for
// a bigint key and a composite string key.
func TestEstimateKeyIndexBytes(t *testing.T) {
	bigint := iceberg.NewSchemaWithIdentifiers(0, []int{1}, iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true})
	composite := iceberg.NewSchemaWithIdentifiers(0, []int{1, 2},
		iceberg.NestedField{ID: 1, Name: "tenant", Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: 2, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true})
	for _, tc := range []struct {
		name string
		sc   *iceberg.Schema
		key  func(int) string
	}{
		{"bigint", bigint, func(i int) string { return string(binary.BigEndian.AppendUint64(nil, uint64(i))) }},
		{"composite", composite, func(i int) string {
			return string(binary.BigEndian.AppendUint64(appendBytesKey(nil, []byte("tenant")), uint64(i)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 50000
			x := newKeyIndex()
			x.reserve(n, len(tc.key(0)) == 8)
			for i := range n {
				x.Set(tc.key(i), uint64(i))
			}
			if got, want := EstimateKeyIndexBytes(tc.sc, n), x.Bytes(); got != want {
				t.Fatalf("estimate %d, built %d", got, want)
			}
		})
	}
}
