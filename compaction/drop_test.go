package compaction_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
)

// bothProgressModes runs fn in a subtest for atomic and for
// partial-progress commits, each over a fresh table holding n rows in
// eight commits and with other, a second compactor over it.
func bothProgressModes(t *testing.T, fn func(t *testing.T, partial bool, cat icecat.Catalog, n int64, other *compaction.Compactor)) {
	for _, partial := range []bool{false, true} {
		name := "atomic"
		if partial {
			name = "partial-progress"
		}
		t.Run(name, func(t *testing.T) {
			cat := tabletest.OpenSQLite(t)
			ensure(t, cat, spec())
			n := ingest(t, cat, 0, 8, 300)
			other := newCompactor(t, cat, compaction.Config{}, compaction.Options{})
			fn(t, partial, cat, n, other)
		})
	}
}

// otherFirst returns an AfterRewrite hook that has other compact the
// table the first time it is called, replacing the files being rewritten.
func otherFirst(t *testing.T, other *compaction.Compactor) func(string) error {
	ran := false
	return func(string) error {
		if !ran {
			ran = true
			if _, err := other.Table(context.Background(), tableName); err != nil {
				t.Errorf("the other compactor: %v", err)
			}
		}
		return nil
	}
}

// TestGroupDroppedWhenInputsGone lets a second compactor replace the same
// files while the first is between rewriting and committing: the first
// must drop its groups (committing would duplicate rows) and leave its
// outputs to the orphan cleaner.
func TestGroupDroppedWhenInputsGone(t *testing.T) {
	bothProgressModes(t, func(t *testing.T, partial bool, cat icecat.Catalog, n int64, other *compaction.Compactor) {
		ctx := context.Background()
		var reports []compaction.GroupReport
		first := newCompactor(t, cat, compaction.Config{PartialProgress: partial}, compaction.Options{
			OnGroup: func(g compaction.GroupReport) { reports = append(reports, g) },
			Hooks:   compaction.Hooks{AfterRewrite: otherFirst(t, other)},
		})
		rep, err := first.Table(ctx, tableName)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range reports {
			t.Logf("group %d/%d %s: %s %s", g.Index, g.Of, g.Partition, g.Result, g.Reason)
		}
		if rep.Dropped != 3 || rep.Committed != 0 {
			t.Errorf("first compactor: %d groups committed, %d dropped; want all 3 dropped", rep.Committed, rep.Dropped)
		}
		tbl := load(t, cat)
		tabletest.CheckIDs(t, readIDs(t, tbl), n)
		leftovers := diff(tabletest.StoredFiles(t, tbl), tabletest.ReferencedFiles(t, tbl))
		if len(leftovers) == 0 {
			t.Error("the dropped groups left no output files behind")
		}
		zero := time.Duration(0)
		off := false
		cleaner := newCompactor(t, cat, compaction.Config{RewriteManifests: &off, ExpireSnapshots: &off}, compaction.Options{TestOrphanOlderThan: &zero})
		if _, err := cleaner.Table(ctx, tableName); err != nil {
			t.Fatal(err)
		}
		tbl = load(t, cat)
		if extra := diff(tabletest.StoredFiles(t, tbl), tabletest.ReferencedFiles(t, tbl)); len(extra) > 0 {
			t.Errorf("unreferenced files after orphan removal: %v", extra)
		}
		tabletest.CheckIDs(t, readIDs(t, tbl), n)
	})
}

// TestGroupDroppedOnConcurrentDelete commits a merge-on-read delete while a
// rewrite is in flight: the rewritten copies would bring the deleted row
// back, so the group is dropped; the next pass folds the delete away.
func TestGroupDroppedOnConcurrentDelete(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	s := spec()
	s.Properties["write.delete.mode"] = "merge-on-read"
	ensure(t, cat, s)
	n := ingest(t, cat, 0, 12, 300)
	const victim = 4 // in partition ts_day=2026-03-02
	deleted := false
	// The manifest step does not trigger; the replace merges the 13
	// manifests (the delete's included) in its own commit.
	c := newCompactor(t, cat, compaction.Config{RewriteManifestsMaxManifests: 1000, RewriteManifestsMinAverageBytes: 1}, compaction.Options{
		Hooks: compaction.Hooks{BeforeCommit: func(string) error {
			if deleted {
				return nil
			}
			deleted = true
			tbl := load(t, cat)
			txn := tbl.NewTransaction()
			if err := txn.Delete(ctx, iceberg.EqualTo(iceberg.Reference("id"), int64(victim)), nil); err != nil {
				return err
			}
			_, err := txn.Commit(ctx)
			return err
		}},
	})
	rep, err := c.Table(ctx, tableName)
	if err != nil {
		t.Fatal(err)
	}
	head := load(t, cat).CurrentSnapshot()
	t.Logf("pass with a concurrent delete: %+v; head %s %v", rep, head.Summary.Operation, head.Summary.Properties)
	if rep.Dropped != 3 || rep.Committed != 0 {
		t.Errorf("%d groups committed, %d dropped; want all 3 dropped", rep.Committed, rep.Dropped)
	}
	want := func(ids []int64) {
		t.Helper()
		if int64(len(ids)) != n-1 {
			t.Fatalf("%d rows, want %d", len(ids), n-1)
		}
		for i, id := range ids {
			exp := int64(i)
			if exp >= victim {
				exp++
			}
			if id != exp {
				t.Fatalf("row %d is id %d, want %d", i, id, exp)
			}
		}
	}
	want(readIDs(t, load(t, cat)))

	// The next pass rewrites with the delete applied and drops the delete
	// file, which applied only to the rewritten files.
	rep, err = c.Table(ctx, tableName)
	if err != nil {
		t.Fatal(err)
	}
	tbl := load(t, cat)
	want(readIDs(t, tbl))
	if v := tbl.CurrentSnapshot().Summary.Properties["total-delete-files"]; v != "0" {
		t.Errorf("delete files left after the rewrite: %q (report %+v)", v, rep)
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if mans, err := tbl.CurrentSnapshot().Manifests(fsys); err != nil || len(mans) > 3 {
		t.Errorf("%d manifests after a replace that merges them (%v)", len(mans), err)
	}
}
