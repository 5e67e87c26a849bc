package writer

import (
	"context"
	"fmt"

	"github.com/floe-lake/floe/table"
)

// Resync commits what tbl has buffered, then reloads source's positions
// for partitions from the table and makes them the positions the next
// batches start from. A source calls it when it is (re)assigned partitions
// that another process may have committed meanwhile — a Kafka rebalance —
// before it seeks to the returned positions. The source must not write
// batches for those partitions while Resync runs.
//
// Without it, a regained partition's stale base would fence every later
// commit of the table, which is safe but restarts the pipeline.
func (w *Writer) Resync(ctx context.Context, tbl, source string, partitions []string) (table.Positions, error) {
	w.mu.Lock()
	ts := w.tables[tbl]
	w.mu.Unlock()
	if ts == nil {
		return nil, fmt.Errorf("resync %s: table not opened", tbl)
	}
	if err := w.commitTable(ctx, ts); err != nil {
		return nil, err
	}
	ts.io.Lock()
	defer ts.io.Unlock()
	pm, err := ts.committer.Positions(ctx)
	if err != nil {
		return nil, fmt.Errorf("resync %s: %w", tbl, err)
	}
	fresh := pm[source]
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.failedLocked(); err != nil {
		return nil, err
	}
	for _, m := range []map[string]table.Positions{ts.committed, ts.pending, ts.filesPos} {
		p := m[source]
		if p == nil {
			p = table.Positions{}
			m[source] = p
		}
		for _, part := range partitions {
			if v, ok := fresh[part]; ok {
				p[part] = v
			} else {
				delete(p, part)
			}
		}
	}
	out := table.Positions{}
	for _, part := range partitions {
		if v, ok := fresh[part]; ok {
			out[part] = v
		}
	}
	return out, nil
}
