package aggregate

import (
	"slices"

	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/table"
)

// stateCache keeps the decoded groups of the output partitions the last
// streaming steps wrote, so that the next step touching them merges into
// them instead of reading and decoding their states from the table again.
// It is valid only while the table holds what this process committed last:
// its current snapshot is that commit, or follows it through replace
// snapshots (compaction rewrites files, not rows). Anything else (another
// writer, a failed commit, a backfill) empties it. Partitions are evicted
// least recently used first once their encoded states exceed the limit.
type stateCache struct {
	limit int
	// snapshot is the output snapshot the cached partitions reflect.
	snapshot int64
	parts    map[int64]*cachedPart
	bytes    int
	clock    uint64
	// first is the first-seen windows of new_users and returning_users,
	// as of snapshot (nil: not loaded). It is kept whatever the limit.
	first firstSeen
}

type cachedPart struct {
	groups  *groupTable
	bytes   int
	lastUse uint64
}

func newStateCache(limit int) *stateCache {
	return &stateCache{limit: limit, parts: map[int64]*cachedPart{}}
}

func (c *stateCache) reset() {
	c.snapshot = 0
	c.parts = map[int64]*cachedPart{}
	c.bytes = 0
	c.first = nil
}

// validate empties the cache unless tbl's current snapshot is the cached
// one or descends from it through replace snapshots only.
func (c *stateCache) validate(tbl *icetable.Table) {
	if len(c.parts) == 0 && c.first == nil {
		return
	}
	for s := range table.CurrentAncestors(tbl.Metadata()) {
		if s.SnapshotID == c.snapshot {
			return
		}
		if s.Summary == nil || s.Summary.Operation != icetable.OpReplace {
			break
		}
	}
	c.reset()
}

// take removes and returns a cached partition (nil when not cached): the
// step mutates it, and puts it back only once its commit succeeded.
func (c *stateCache) take(pt int64) *groupTable {
	p := c.parts[pt]
	if p == nil {
		return nil
	}
	delete(c.parts, pt)
	c.bytes -= p.bytes
	return p.groups
}

// put caches the partitions a commit of snapshot wrote and evicts the
// least recently used ones beyond the limit.
func (c *stateCache) put(snapshot int64, parts map[int64]*groupTable, bytes map[int64]int) {
	c.snapshot = snapshot
	if c.limit <= 0 {
		return
	}
	c.clock++
	for pt, g := range parts {
		if old := c.parts[pt]; old != nil {
			c.bytes -= old.bytes
		}
		c.parts[pt] = &cachedPart{groups: g, bytes: bytes[pt], lastUse: c.clock}
		c.bytes += bytes[pt]
	}
	if c.bytes <= c.limit {
		return
	}
	keys := make([]int64, 0, len(c.parts))
	for pt := range c.parts {
		keys = append(keys, pt)
	}
	slices.SortFunc(keys, func(a, b int64) int { return cmpInt(int64(c.parts[a].lastUse), int64(c.parts[b].lastUse)) })
	for _, pt := range keys {
		if c.bytes <= c.limit {
			break
		}
		c.bytes -= c.parts[pt].bytes
		delete(c.parts, pt)
	}
}
