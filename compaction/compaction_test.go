package compaction_test

import (
	"context"
	"maps"
	"testing"

	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
)

// TestRewriteKeepsRowsAndPositions compacts many small commits and checks
// that the rows, the positions and the writer's resume point survive.
func TestRewriteKeepsRowsAndPositions(t *testing.T) {
	tabletest.EachWarehouse(t, func(t *testing.T, cat icecat.Catalog) {
		ctx := context.Background()
		ensure(t, cat, spec())
		n := ingest(t, cat, 0, 12, 300) // 12 commits × 3 days = 36 small files

		before := load(t, cat)
		posBefore, err := table.CurrentPositions(before)
		if err != nil {
			t.Fatal(err)
		}
		filesBefore := filesPerPartition(t, before)
		if maxOf(filesBefore) != 12 {
			t.Fatalf("files per partition before compaction: %v, want 12 each", filesBefore)
		}

		var groups []compaction.GroupReport
		c := newCompactor(t, cat, compaction.Config{}, compaction.Options{
			OnGroup: func(g compaction.GroupReport) { groups = append(groups, g) },
		})
		rep, err := c.Table(ctx, tableName)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("report: %+v", rep)
		for _, g := range groups {
			t.Logf("group: %+v", g)
			if g.Result != compaction.ResultCommitted {
				t.Errorf("group %d: %s (%s)", g.Index, g.Result, g.Reason)
			}
		}
		if rep.Committed != 3 || rep.FilesRewritten != 36 {
			t.Fatalf("rewrote %d files in %d groups, want all 36 in 3", rep.FilesRewritten, rep.Committed)
		}

		after := load(t, cat)
		tabletest.CheckIDs(t, readIDs(t, after), n)
		filesAfter := filesPerPartition(t, after)
		t.Logf("files per partition: before %v, after %v", filesBefore, filesAfter)
		if maxOf(filesAfter) > 2 {
			t.Errorf("files per partition after compaction: %v", filesAfter)
		}
		snap := after.CurrentSnapshot()
		if snap.Summary.Operation != icetable.OpReplace || snap.Summary.Properties[table.PropOperation] != compaction.OperationCompact {
			t.Errorf("compaction snapshot: %s %v", snap.Summary.Operation, snap.Summary.Properties)
		}
		posAfter, err := table.CurrentPositions(after)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.EqualFunc(posBefore, posAfter, maps.Equal) {
			t.Fatalf("positions changed by compaction: %v → %v", posBefore, posAfter)
		}

		// A writer restarting resumes where ingest stopped (ingest
		// checks the position it opens at) and nothing repeats.
		n = ingest(t, cat, n, 3, 300)
		tabletest.CheckIDs(t, readIDs(t, load(t, cat)), n)

		// A second pass has little left to do and changes no rows.
		if _, err := c.Table(ctx, tableName); err != nil {
			t.Fatal(err)
		}
		tabletest.CheckIDs(t, readIDs(t, load(t, cat)), n)
	})
}
