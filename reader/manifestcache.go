package reader

import (
	"container/list"
	"fmt"
	"sync"

	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"
)

// DefaultManifestCacheBytes is the budget of the manifest cache a Reader
// makes for itself when Config.ManifestCache is nil.
const DefaultManifestCacheBytes = 16 << 20

// ManifestCache holds decoded manifest lists and manifests, least recently
// used first out, within a budget of bytes. Both are immutable once
// written (a new snapshot writes a new manifest list; a manifest is never
// rewritten in place), so a decoded one is good for as long as it is kept:
// a read of a snapshot, and each poll of a follower, decodes only the
// manifest list and manifests it has not seen. A manifest is keyed by its
// path and length, a manifest list by its path. The size of an entry is an
// estimate of its decoded form in memory (paths, partition summaries,
// column statistics), which is what Bytes reports and the budget bounds.
//
// A ManifestCache is safe for concurrent use; readers of several tables may
// share one (Config.ManifestCache) so that one budget bounds them all.
type ManifestCache struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List // of *cacheItem, most recently used at the front
	items map[cacheKey]*list.Element

	hits, misses int64
}

type cacheKey struct {
	path   string
	length int64 // -1 for a manifest list
}

type cacheItem struct {
	key       cacheKey
	size      int64
	manifests []iceberg.ManifestFile // a manifest list
	entries   []iceberg.ManifestEntry
}

// NewManifestCache returns a cache of at most maxBytes (estimated); 0 or
// less caches nothing.
func NewManifestCache(maxBytes int64) *ManifestCache {
	return &ManifestCache{max: maxBytes, order: list.New(), items: map[cacheKey]*list.Element{}}
}

// ManifestCacheStats is a snapshot of a cache's counters.
type ManifestCacheStats struct {
	// Bytes is the estimated memory the cached entries hold, Entries their
	// number, Max the budget.
	Bytes, Max int64
	Entries    int
	// Hits and Misses count lookups since the cache was made.
	Hits, Misses int64
}

// Stats returns the cache's size and counters.
func (c *ManifestCache) Stats() ManifestCacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ManifestCacheStats{Bytes: c.used, Max: c.max, Entries: len(c.items), Hits: c.hits, Misses: c.misses}
}

func (c *ManifestCache) get(k cacheKey) *cacheItem {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		c.misses++
		return nil
	}
	c.hits++
	c.order.MoveToFront(el)
	return el.Value.(*cacheItem)
}

func (c *ManifestCache) put(it *cacheItem) {
	if it.size > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[it.key]; ok {
		// Decoded twice at once: keep the first.
		c.order.MoveToFront(el)
		return
	}
	c.items[it.key] = c.order.PushFront(it)
	c.used += it.size
	for c.used > c.max {
		old := c.order.Back()
		o := old.Value.(*cacheItem)
		c.order.Remove(old)
		delete(c.items, o.key)
		c.used -= o.size
	}
}

// manifests returns the manifest list of snapshot s. The slice is shared:
// callers must not modify it.
func (c *ManifestCache) manifests(fs iceio.IO, s *icetable.Snapshot) ([]iceberg.ManifestFile, error) {
	if s.ManifestList == "" {
		// Manifests listed in the metadata itself (format v1).
		return s.Manifests(fs)
	}
	k := cacheKey{path: s.ManifestList, length: -1}
	if it := c.get(k); it != nil {
		return it.manifests, nil
	}
	mfs, err := s.Manifests(fs)
	if err != nil {
		return nil, err
	}
	size := int64(64 + len(k.path))
	for _, mf := range mfs {
		size += manifestFileSize(mf)
	}
	c.put(&cacheItem{key: k, size: size, manifests: mfs})
	return mfs, nil
}

// entries returns the live (added and existing) entries of manifest mf.
// The slice is shared: callers must not modify it.
func (c *ManifestCache) entries(fs iceio.IO, mf iceberg.ManifestFile) ([]iceberg.ManifestEntry, error) {
	k := cacheKey{path: mf.FilePath(), length: mf.Length()}
	if it := c.get(k); it != nil {
		return it.entries, nil
	}
	var es []iceberg.ManifestEntry
	for e, err := range mf.Entries(fs, true) {
		if err != nil {
			return nil, fmt.Errorf("read manifest %s: %w", mf.FilePath(), err)
		}
		es = append(es, e)
	}
	size := int64(64 + len(k.path))
	for _, e := range es {
		size += entrySize(e)
	}
	c.put(&cacheItem{key: k, size: size, entries: es})
	return es, nil
}

// manifestFileSize estimates the memory of one decoded manifest list entry.
func manifestFileSize(mf iceberg.ManifestFile) int64 {
	n := int64(192 + len(mf.FilePath()) + len(mf.KeyMetadata()))
	for _, p := range mf.Partitions() {
		n += 64
		if p.LowerBound != nil {
			n += int64(len(*p.LowerBound))
		}
		if p.UpperBound != nil {
			n += int64(len(*p.UpperBound))
		}
	}
	return n
}

// entrySize estimates the memory of one decoded manifest entry: its data
// file's fixed fields, path, partition and statistics maps.
func entrySize(e iceberg.ManifestEntry) int64 {
	const perMapEntry = 48
	df := e.DataFile()
	n := int64(512 + len(df.FilePath()) + len(df.KeyMetadata()))
	n += perMapEntry * int64(len(df.Partition())+len(df.ColumnSizes())+len(df.ValueCounts())+
		len(df.NullValueCounts())+len(df.NaNValueCounts()))
	for _, b := range df.LowerBoundValues() {
		n += perMapEntry + int64(len(b))
	}
	for _, b := range df.UpperBoundValues() {
		n += perMapEntry + int64(len(b))
	}
	return n
}
