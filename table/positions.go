package table

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"

	icetable "github.com/apache/iceberg-go/table"
)

// Snapshot summary properties Floe writes on every commit.
const (
	// PropPositionsPrefix + source id holds that source's cumulative
	// position map as compact JSON: {"<partition>": <next position>, ...}.
	PropPositionsPrefix = "floe.positions."
	// PropCommitID is unique per logical commit; after an unknown outcome
	// Floe looks for it in the history before retrying.
	PropCommitID = "floe.commit-id"
	// PropWriterID names the process (or component) that committed.
	PropWriterID = "floe.writer-id"
	// PropOperation names Floe's operation: ingest, compact, aggregate.
	PropOperation = "floe.operation"
)

// Positions maps a source partition (a Kafka "topic/partition", a generator
// partition, a binlog stream) to the next position to read in it: every
// record before it is committed. Positions only move forward.
type Positions map[string]int64

// Clone returns a copy; nil stays nil.
func (p Positions) Clone() Positions {
	if p == nil {
		return nil
	}
	return maps.Clone(p)
}

// Merge returns a copy of p with every entry of delta applied.
func (p Positions) Merge(delta Positions) Positions {
	out := make(Positions, len(p)+len(delta))
	maps.Copy(out, p)
	maps.Copy(out, delta)
	return out
}

// String renders positions in a stable order, for logs.
func (p Positions) String() string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, p[k])
	}
	return b.String()
}

// PositionMap holds the positions of every source that writes a table.
type PositionMap map[string]Positions

// Clone deep-copies m.
func (m PositionMap) Clone() PositionMap {
	out := make(PositionMap, len(m))
	for k, v := range m {
		out[k] = v.Clone()
	}
	return out
}

// summaryProps renders m as snapshot summary properties.
func (m PositionMap) summaryProps() (map[string]string, error) {
	out := make(map[string]string, len(m))
	for src, pos := range m {
		b, err := json.Marshal(pos)
		if err != nil {
			return nil, fmt.Errorf("encode positions of %s: %w", src, err)
		}
		out[PropPositionsPrefix+src] = string(b)
	}
	return out, nil
}

// positionsFromSummary reads the position map a snapshot carries, and
// whether it carries one at all (it was committed by Floe).
func positionsFromSummary(s *icetable.Snapshot) (PositionMap, bool, error) {
	if s == nil || s.Summary == nil {
		return nil, false, nil
	}
	if _, ok := s.Summary.Properties[PropCommitID]; !ok {
		return nil, false, nil
	}
	m := PositionMap{}
	for k, v := range s.Summary.Properties {
		src, ok := strings.CutPrefix(k, PropPositionsPrefix)
		if !ok {
			continue
		}
		var p Positions
		if err := json.Unmarshal([]byte(v), &p); err != nil {
			return nil, true, fmt.Errorf("snapshot %d: decode %s: %w", s.SnapshotID, k, err)
		}
		m[src] = p
	}
	return m, true, nil
}

// CurrentPositions returns the position map of the newest Floe snapshot in
// the current snapshot's ancestry. Snapshots written by other engines carry
// none and are walked past. A table Floe never committed to has an empty map.
func CurrentPositions(tbl *icetable.Table) (PositionMap, error) {
	for s := range CurrentAncestors(tbl.Metadata()) {
		m, ok, err := positionsFromSummary(s)
		if err != nil {
			return nil, err
		}
		if ok {
			return m, nil
		}
	}
	return PositionMap{}, nil
}
