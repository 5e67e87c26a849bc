package reader_test

import (
	"context"
	"slices"
	"testing"

	"github.com/apache/iceberg-go"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
)

// TestManifestCache checks that a reader decodes a manifest list or a
// manifest once: a second read of the same snapshots, and a follower's next
// poll, open only what is new; that reads planned from the cache return
// the rows iceberg-go's planning returns (a reader with an always-true
// filter plans with iceberg-go); and that a cache too small to hold
// anything still reads correctly.
func TestManifestCache(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	f := newFixture(t, cat, eventsSpec("ods.events"))
	for range 12 {
		f.appendRows(20)
	}
	f.compact()
	for range 3 {
		f.appendRows(20)
	}
	counter := &countingIO{}
	loader := countingLoader(cat, counter)
	cache := reader.NewManifestCache(reader.DefaultManifestCacheBytes)
	r := newReader(t, loader, "ods.events", reader.Config{ManifestCache: cache})
	viaIceberg := newReader(t, loader, "ods.events", reader.Config{Filter: iceberg.GreaterThanEqual(iceberg.Reference("id"), int64(0))})
	uncached := newReader(t, loader, "ods.events", reader.Config{ManifestCache: reader.NewManifestCache(0)})

	snaps := history(f.load())
	for i, s := range snaps {
		var from int64
		if i > 0 {
			from = snaps[i-1].SnapshotID
		}
		var want []row
		for j, rd := range []*reader.Reader{viaIceberg, r, r, uncached} {
			tbl, err := rd.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			counter.reset()
			st, err := rd.ChangesIn(ctx, tbl, from, s.SnapshotID)
			if err != nil {
				t.Fatal(err)
			}
			got := sortRows(readRows(t, st))
			if j == 0 {
				want = got
				continue
			}
			if !slices.Equal(ids(got), ids(want)) {
				t.Fatalf("snapshot %d (%s), reader %d: read ids %v, iceberg-go's planning %v", i, s.Summary.Operation, j, ids(got), ids(want))
			}
			if j == 2 {
				// The same read again: everything is cached.
				if n := len(counter.files("manifest-list")) + len(counter.files("manifest")); n != 0 {
					t.Errorf("snapshot %d: a repeated read opened %d manifest lists and manifests, want 0", i, n)
				}
			}
		}
	}
	stats := cache.Stats()
	if stats.Entries == 0 || stats.Hits == 0 || stats.Bytes <= 0 || stats.Bytes > stats.Max {
		t.Fatalf("cache stats %+v: want entries, hits, and bytes within the budget", stats)
	}

	// A tiny budget evicts: the cache never holds more than it may.
	small := reader.NewManifestCache(stats.Bytes / 2)
	rs := newReader(t, loader, "ods.events", reader.Config{ManifestCache: small})
	for i := 1; i < len(snaps); i++ {
		tbl, err := rs.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, err := rs.ChangesIn(ctx, tbl, snaps[i-1].SnapshotID, snaps[i].SnapshotID)
		if err != nil {
			t.Fatal(err)
		}
		countRows(t, st)
		if s := small.Stats(); s.Bytes > s.Max {
			t.Fatalf("cache holds %d bytes, over its budget of %d", s.Bytes, s.Max)
		}
	}
	if s := reader.NewManifestCache(0).Stats(); s.Entries != 0 {
		t.Fatalf("a zero-budget cache holds %d entries", s.Entries)
	}
}
