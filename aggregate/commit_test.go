package aggregate

import (
	"context"
	"slices"
	"testing"
	"time"

	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
)

// TestBackfillWritesWithPqgo: a full backfill writes the summary table
// with internal/pqgo and commits what Overwrite commits — an append into
// a table without a snapshot, then an overwrite that replaces every data
// file — while a ranged backfill still goes through Overwrite (arrow-go's
// writer); the rows are the same either way.
func TestBackfillWritesWithPqgo(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	directSource(t, cat)
	// No sum of decimals: pqgo writes decimals up to precision 18 only.
	s := Spec{Name: "pqgo", Source: directSrc, Output: "dws.pqgo_all", Time: "ts", Window: Window{Size: Duration(time.Hour)},
		Dimensions: []string{"kind", "ok"}, Measures: []Measure{{Name: "c", Fn: FnCount}, {Name: "sn", Fn: FnSum, Column: "n"},
			{Name: "du", Fn: FnCountDistinct, Column: "u"}, {Name: "dk", Fn: FnApproxCountDistinct, Column: "kind"}}}
	a, err := New(ctx, cat, s, Options{Logger: quietLogger(), Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	// writers reports whether the last commit wrote with pqgo, and the
	// operation of the table's current snapshot.
	writers := func() (bool, icetable.Operation) {
		t.Helper()
		return a.lastPqgo, loadTable(t, cat, s.Output).CurrentSnapshot().Summary.Operation
	}
	files := func() int {
		t.Helper()
		tasks, err := loadTable(t, cat, s.Output).Scan().PlanFiles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(tasks)
	}

	if _, err := a.Backfill(ctx, BackfillOptions{}); err != nil {
		t.Fatal(err)
	}
	n := files()
	if pq, op := writers(); !pq || op != icetable.OpAppend {
		t.Fatalf("first backfill: written by pqgo %t, snapshot %s; want pqgo, append", pq, op)
	}
	first := tableRows(t, cat, s.Output)

	if _, err := a.Backfill(ctx, BackfillOptions{}); err != nil {
		t.Fatal(err)
	}
	if pq, op := writers(); !pq || op != icetable.OpOverwrite || files() != n {
		t.Fatalf("second backfill: written by pqgo %t, snapshot %s, %d files; want pqgo, overwrite, %d files", pq, op, files(), n)
	}
	if got := tableRows(t, cat, s.Output); !slices.Equal(got, first) {
		t.Fatalf("second backfill differs from the first:\n%s", diffRows(first, got))
	}

	ranged := BackfillOptions{From: time.Date(2026, 2, 1, 7, 0, 0, 0, time.UTC), To: time.Date(2026, 2, 1, 20, 0, 0, 0, time.UTC)}
	if _, err := a.Backfill(ctx, ranged); err != nil {
		t.Fatal(err)
	}
	if pq, op := writers(); pq || op != icetable.OpOverwrite {
		t.Fatalf("ranged backfill: written by pqgo %t, snapshot %s; want arrow-go's writer, overwrite", pq, op)
	}
	if got := tableRows(t, cat, s.Output); !slices.Equal(got, first) {
		t.Fatalf("ranged backfill differs from the full one:\n%s", diffRows(first, got))
	}
}
