package table_test

import (
	"iter"
	"slices"
	"testing"

	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/table"
)

// fakeMeta holds snapshots by id with arbitrary parents, including missing
// (expired) parents and cycles, which real metadata builders refuse. Only
// the methods the history helpers call are implemented.
type fakeMeta struct {
	icetable.Metadata
	snaps   map[int64]*icetable.Snapshot
	current int64
}

func (m fakeMeta) SnapshotByID(id int64) *icetable.Snapshot {
	s, ok := m.snaps[id]
	if !ok {
		return nil
	}
	c := *s
	return &c
}

func (m fakeMeta) CurrentSnapshot() *icetable.Snapshot { return m.SnapshotByID(m.current) }

// metaOf builds a fakeMeta from id → parent id (0: no parent).
func metaOf(current int64, parents map[int64]int64) fakeMeta {
	m := fakeMeta{snaps: map[int64]*icetable.Snapshot{}, current: current}
	for id, parent := range parents {
		s := &icetable.Snapshot{SnapshotID: id}
		if parent != 0 {
			s.ParentSnapshotID = &parent
		}
		m.snaps[id] = s
	}
	return m
}

func ids(snaps []icetable.Snapshot) []int64 {
	out := []int64{}
	for _, s := range snaps {
		out = append(out, s.SnapshotID)
	}
	return out
}

func collect(seq iter.Seq[*icetable.Snapshot]) []int64 {
	out := []int64{}
	for s := range seq {
		out = append(out, s.SnapshotID)
	}
	return out
}

// linear is 1 ← 2 ← 3 ← 4, with 4 current.
var linear = map[int64]int64{1: 0, 2: 1, 3: 2, 4: 3}

// expired is linear after 1 and 2 expired.
var expired = map[int64]int64{3: 2, 4: 3}

func TestAncestors(t *testing.T) {
	tests := []struct {
		name    string
		parents map[int64]int64
		from    int64
		want    []int64
	}{
		{"linear from the head", linear, 4, []int64{4, 3, 2, 1}},
		{"linear from the middle", linear, 2, []int64{2, 1}},
		{"root", linear, 1, []int64{1}},
		{"unknown start", linear, 9, []int64{}},
		{"stops before an expired parent", expired, 4, []int64{4, 3}},
		{"branch", map[int64]int64{1: 0, 2: 1, 3: 1}, 3, []int64{3, 1}},
		{"cycle", map[int64]int64{1: 3, 2: 1, 3: 2}, 3, []int64{3, 2, 1}},
		{"self parent", map[int64]int64{1: 1}, 1, []int64{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := collect(table.Ancestors(metaOf(0, tc.parents), tc.from))
			if !slices.Equal(got, tc.want) {
				t.Errorf("Ancestors(%d) = %v, want %v", tc.from, got, tc.want)
			}
		})
	}
}

func TestAncestorsStopsWhenTheLoopBreaks(t *testing.T) {
	meta := metaOf(4, linear)
	var got []int64
	for s := range table.CurrentAncestors(meta) {
		got = append(got, s.SnapshotID)
		if s.SnapshotID == 3 {
			break
		}
	}
	if want := []int64{4, 3}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestCurrentAncestors(t *testing.T) {
	tests := []struct {
		name    string
		parents map[int64]int64
		current int64
		want    []int64
	}{
		{"linear", linear, 4, []int64{4, 3, 2, 1}},
		{"rolled back", linear, 2, []int64{2, 1}},
		{"expired", expired, 4, []int64{4, 3}},
		{"no snapshots", map[int64]int64{}, 0, []int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := collect(table.CurrentAncestors(metaOf(tc.current, tc.parents)))
			if !slices.Equal(got, tc.want) {
				t.Errorf("CurrentAncestors = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAncestorsBetween(t *testing.T) {
	tests := []struct {
		name         string
		parents      map[int64]int64
		from, to     int64
		want         []int64
		wantComplete bool
	}{
		{"from the first snapshot", linear, 0, 4, []int64{1, 2, 3, 4}, true},
		{"after a snapshot", linear, 2, 4, []int64{3, 4}, true},
		{"one snapshot", linear, 3, 4, []int64{4}, true},
		{"same snapshot", linear, 4, 4, []int64{}, true},
		{"up to an older snapshot", linear, 1, 3, []int64{2, 3}, true},
		{"after an expired snapshot", expired, 2, 4, []int64{3, 4}, true},
		{"expired history from the first snapshot", expired, 0, 4, []int64{3, 4}, false},
		{"expired history after a snapshot", expired, 1, 4, []int64{3, 4}, false},
		{"not an ancestor", map[int64]int64{1: 0, 2: 1, 3: 1}, 2, 3, []int64{1, 3}, false},
		{"from a descendant", linear, 4, 2, []int64{1, 2}, false},
		{"unknown end", linear, 0, 9, []int64{}, false},
		{"unknown end and start", linear, 9, 9, []int64{}, false},
		{"cycle", map[int64]int64{1: 3, 2: 1, 3: 2}, 7, 3, []int64{1, 2, 3}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snaps, complete := table.AncestorsBetween(metaOf(0, tc.parents), tc.from, tc.to)
			if got := ids(snaps); !slices.Equal(got, tc.want) || complete != tc.wantComplete {
				t.Errorf("AncestorsBetween(%d, %d) = %v, %t; want %v, %t", tc.from, tc.to, got, complete, tc.want, tc.wantComplete)
			}
		})
	}
}

func TestSummaryInt(t *testing.T) {
	withSummary := func(props map[string]string) *icetable.Snapshot {
		return &icetable.Snapshot{Summary: &icetable.Summary{Operation: icetable.OpAppend, Properties: props}}
	}
	tests := []struct {
		name   string
		snap   *icetable.Snapshot
		want   int64
		wantOK bool
	}{
		{"value", withSummary(map[string]string{"total-records": "1234"}), 1234, true},
		{"zero", withSummary(map[string]string{"total-records": "0"}), 0, true},
		{"negative", withSummary(map[string]string{"total-records": "-3"}), -3, true},
		{"missing key", withSummary(map[string]string{"added-records": "5"}), 0, false},
		{"not a number", withSummary(map[string]string{"total-records": "many"}), 0, false},
		{"out of range", withSummary(map[string]string{"total-records": "99999999999999999999"}), 0, false},
		{"no summary", &icetable.Snapshot{}, 0, false},
		{"no snapshot", nil, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := table.SummaryInt(tc.snap, "total-records")
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("SummaryInt = %d, %t; want %d, %t", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
