package table_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
)

func testSpec() table.Spec {
	return table.Spec{Name: "ns.t", Schema: []table.Field{{Name: "id", Type: "long", Required: true}}}
}

// testTable creates ns.t (testSpec) in a fresh SQLite catalog.
func testTable(t *testing.T) (icecat.Catalog, icetable.Identifier) {
	t.Helper()
	cat := tabletest.OpenSQLite(t)
	if _, err := table.Ensure(context.Background(), cat, testSpec()); err != nil {
		t.Fatal(err)
	}
	ident, err := table.ParseIdent("ns.t")
	if err != nil {
		t.Fatal(err)
	}
	return cat, ident
}

func snapshotsWithCommit(t *testing.T, tbl *icetable.Table, id string) int {
	t.Helper()
	n := 0
	for _, s := range tbl.Metadata().Snapshots() {
		if s.Summary != nil && s.Summary.Properties[table.PropCommitID] == id {
			n++
		}
	}
	return n
}

func TestCommitCarriesPositionsForward(t *testing.T) {
	ctx := context.Background()
	cat, ident := testTable(t)
	c := table.NewCommitter(cat, ident, table.CommitterConfig{WriterID: "w1"})
	fs := appendOne(t, cat, ident)

	res, err := c.Commit(ctx, table.Commit{Advances: map[string]table.Advance{"a": {Next: table.Positions{"p0": 10}}}, Apply: fs})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Positions["a"]["p0"]; got != 10 {
		t.Fatalf("positions after first commit: %v", res.Positions)
	}
	// Another source commits; a's positions are carried forward.
	res, err = c.Commit(ctx, table.Commit{Advances: map[string]table.Advance{"b": {Next: table.Positions{"x": 5}}}, Apply: fs})
	if err != nil {
		t.Fatal(err)
	}
	// A commit with no advances (compaction) carries everything.
	if _, err = c.Commit(ctx, table.Commit{Operation: "compact", Apply: fs}); err != nil {
		t.Fatal(err)
	}
	pm, err := c.Positions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pm["a"]["p0"] != 10 || pm["b"]["x"] != 5 {
		t.Fatalf("positions not carried forward: %v", pm)
	}
}

func TestCommitFencesZombie(t *testing.T) {
	ctx := context.Background()
	cat, ident := testTable(t)
	c := table.NewCommitter(cat, ident, table.CommitterConfig{})
	fs := appendOne(t, cat, ident)
	// The new owner of p0 committed up to 100.
	if _, err := c.Commit(ctx, table.Commit{Advances: map[string]table.Advance{"k": {Next: table.Positions{"p0": 100}}}, Apply: fs}); err != nil {
		t.Fatal(err)
	}
	// A zombie that started from nothing tries to commit p0 up to 50.
	_, err := c.Commit(ctx, table.Commit{Advances: map[string]table.Advance{"k": {Next: table.Positions{"p0": 50}}}, Apply: fs})
	if !errors.Is(err, table.ErrFenced) {
		t.Fatalf("zombie commit: got %v, want ErrFenced", err)
	}
	// And one that started from an old position.
	_, err = c.Commit(ctx, table.Commit{Advances: map[string]table.Advance{"k": {Base: table.Positions{"p0": 40}, Next: table.Positions{"p0": 150}}}, Apply: fs})
	if !errors.Is(err, table.ErrFenced) {
		t.Fatalf("stale commit: got %v, want ErrFenced", err)
	}
	// The owner continues.
	if _, err := c.Commit(ctx, table.Commit{Advances: map[string]table.Advance{"k": {Base: table.Positions{"p0": 100}, Next: table.Positions{"p0": 150}}}, Apply: fs}); err != nil {
		t.Fatal(err)
	}
}

func TestCommitRetriesConflict(t *testing.T) {
	ctx := context.Background()
	base, ident := testTable(t)
	other := table.NewCommitter(base, ident, table.CommitterConfig{WriterID: "other"})
	fc := &tabletest.FaultCatalog{Catalog: base}
	fs := appendOne(t, base, ident)
	// Before our first two attempts reach the catalog, another writer
	// commits: a real conflict each time.
	fc.Before = func(n int) error {
		if n > 2 {
			return nil
		}
		var base table.Positions
		if n == 2 {
			base = table.Positions{"p": 1}
		}
		if _, err := other.Commit(ctx, table.Commit{Advances: map[string]table.Advance{"o": {Base: base, Next: table.Positions{"p": int64(n)}}}, Apply: fs}); err != nil {
			t.Errorf("concurrent commit %d: %v", n, err)
		}
		return nil
	}
	c := table.NewCommitter(fc, ident, table.CommitterConfig{WriterID: "me"})
	res, err := c.Commit(ctx, table.Commit{Advances: map[string]table.Advance{"me": {Next: table.Positions{"q": 7}}}, Apply: fs})
	if err != nil {
		t.Fatal(err)
	}
	if res.Conflicts != 2 || res.Attempts != 3 {
		t.Fatalf("conflicts=%d attempts=%d, want 2 and 3", res.Conflicts, res.Attempts)
	}
	// Positions of both writers survive the merge.
	if res.Positions["me"]["q"] != 7 || res.Positions["o"]["p"] != 2 {
		t.Fatalf("merged positions: %v", res.Positions)
	}
}

func TestCommitUnknownOutcomeIsNotRepeated(t *testing.T) {
	ctx := context.Background()
	base, ident := testTable(t)
	fc := &tabletest.FaultCatalog{Catalog: base}
	fc.After = func(n int) error {
		if n == 1 {
			return tabletest.ErrInjected // the commit landed, the caller is told it failed
		}
		return nil
	}
	fs := appendOne(t, base, ident)
	c := table.NewCommitter(fc, ident, table.CommitterConfig{})
	res, err := c.Commit(ctx, table.Commit{Advances: map[string]table.Advance{"s": {Next: table.Positions{"p": 1}}}, Apply: fs})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Recovered {
		t.Fatalf("want the commit recovered from history, got %+v", res)
	}
	tbl, err := base.LoadTable(ctx, ident)
	if err != nil {
		t.Fatal(err)
	}
	if n := snapshotsWithCommit(t, tbl, res.CommitID); n != 1 {
		t.Fatalf("commit %s is in %d snapshots, want exactly 1", res.CommitID, n)
	}
	if got := len(tbl.Metadata().Snapshots()); got != 1 {
		t.Fatalf("table has %d snapshots, want 1", got)
	}
}

func TestCommitUnknownOutcomeNotLandedIsRetried(t *testing.T) {
	ctx := context.Background()
	base, ident := testTable(t)
	fc := &tabletest.FaultCatalog{Catalog: base}
	fc.Before = func(n int) error {
		if n == 1 {
			return tabletest.ErrInjected // never reached the catalog
		}
		return nil
	}
	c := table.NewCommitter(fc, ident, table.CommitterConfig{})
	res, err := c.Commit(ctx, table.Commit{Advances: map[string]table.Advance{"s": {Next: table.Positions{"p": 1}}}, Apply: appendOne(t, base, ident)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Recovered || res.Attempts != 2 {
		t.Fatalf("want a second real attempt, got %+v", res)
	}
	tbl, _ := base.LoadTable(ctx, ident)
	if n := snapshotsWithCommit(t, tbl, res.CommitID); n != 1 {
		t.Fatalf("commit in %d snapshots, want 1", n)
	}
}

func TestIsConflict(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New(`requirement failed: branch "main" has changed: expected id 1, found 2`), true},
		{icetable.ErrCommitFailed, true},
		{errors.New("connection reset"), false},
		{errors.New("Requirement failed: current schema id has changed: expected 0, found 1"), true},
		{errors.New(`requirement failed: branch "main" was created concurrently`), true},
		{errors.New("Requirement failed: table already exists"), false},
		{errors.New("Requirement failed: UUID mismatch: a != b"), false},
	} {
		if got := table.IsConflict(tc.err); got != tc.want {
			t.Errorf("IsConflict(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestCommitterIOOutlivesFirstUse: the committer's shared IO is opened on
// its first use, here inside a commit whose context ends with it; later
// commits must not inherit that context (on S3, iceberg-go's object-store
// IO keeps the context it was opened with, and every later commit failed
// with "context canceled").
func TestCommitterIOOutlivesFirstUse(t *testing.T) {
	tabletest.EachWarehouse(t, func(t *testing.T, cat icecat.Catalog) {
		if _, err := table.Ensure(context.Background(), cat, testSpec()); err != nil {
			t.Fatal(err)
		}
		ident, err := table.ParseIdent("ns.t")
		if err != nil {
			t.Fatal(err)
		}
		c := table.NewCommitter(cat, ident, table.CommitterConfig{WriterID: "w1"})
		fs := appendOne(t, cat, ident)
		for i := range 2 {
			ctx, cancel := context.WithCancel(context.Background())
			_, err := c.Commit(ctx, table.Commit{Advances: map[string]table.Advance{fmt.Sprint("s", i): {Next: table.Positions{"p0": 1}}}, Apply: fs})
			cancel()
			if err != nil {
				t.Fatalf("commit %d: %v", i+1, err)
			}
		}
	})
}
