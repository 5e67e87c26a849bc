package compaction_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
)

// plantOrphan writes a file no metadata references under the table's data
// directory, as a writer that crashed before its commit leaves.
func plantOrphan(t *testing.T, tbl *icetable.Table) string {
	t.Helper()
	fsys, err := tbl.FS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimSuffix(tbl.Location(), "/") + "/data/ts_day=2026-03-01/00000-0-crashed-writer.parquet"
	f, err := fsys.(iceio.WriteFileIO).Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("not really parquet")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return tabletest.Normalize(path)
}

// TestExpireAndOrphansLeaveOnlyReferencedFiles compacts, expires and
// removes orphans, then lists the table's storage: it must hold exactly
// the files the retained snapshots reference, and time travel to a
// retained snapshot must still read its rows.
func TestExpireAndOrphansLeaveOnlyReferencedFiles(t *testing.T) {
	tabletest.EachWarehouse(t, func(t *testing.T, cat icecat.Catalog) {
		ctx := context.Background()
		s := spec()
		s.Properties["history.expire.max-snapshot-age-ms"] = "3600000"
		s.Properties["history.expire.min-snapshots-to-keep"] = "3"
		ensure(t, cat, s)
		n := ingest(t, cat, 0, 12, 200)

		// Compact without maintenance: the inputs stay referenced by
		// the older snapshots.
		off := false
		c := newCompactor(t, cat, compaction.Config{ExpireSnapshots: &off, RemoveOrphanFiles: &off, RewriteManifests: &off}, compaction.Options{})
		if _, err := c.Table(ctx, tableName); err != nil {
			t.Fatal(err)
		}
		n = ingest(t, cat, n, 2, 200)
		tbl := load(t, cat)
		orphan := plantOrphan(t, tbl)
		if extra := diff(tabletest.StoredFiles(t, tbl), tabletest.ReferencedFiles(t, tbl)); len(extra) != 1 || extra[0] != orphan {
			t.Fatalf("before maintenance, unreferenced files: %v, want only %s", extra, orphan)
		}
		// The oldest snapshot that will be retained: the third newest.
		meta := tbl.Metadata()
		history := slices.Collect(table.CurrentAncestors(meta))
		if len(history) < 3 {
			t.Fatalf("the table's history has %d snapshots, want at least 3", len(history))
		}
		third := history[2]
		thirdIDs := readIDs(t, tbl, icetable.WithSnapshotID(third.SnapshotID))
		snapshotsBefore := len(meta.Snapshots())

		// Two hours later (by the compactor's clock) every snapshot is
		// older than max-snapshot-age-ms. Expiry alone first: iceberg-go
		// deletes the files only the expired snapshots referenced, so
		// the planted orphan is the only unreferenced file left.
		later := func() time.Time { return time.Now().Add(2 * time.Hour) }
		exp := newCompactor(t, cat, compaction.Config{RemoveOrphanFiles: &off, RewriteManifests: &off}, compaction.Options{Now: later})
		rep, err := exp.Table(ctx, tableName)
		if err != nil {
			t.Fatal(err)
		}
		tbl = load(t, cat)
		if got := len(tbl.Metadata().Snapshots()); got != 3 || rep.SnapshotsExpired != snapshotsBefore-3 {
			t.Errorf("%d snapshots retained of %d (%d expired), want 3 (min-snapshots-to-keep)", got, snapshotsBefore, rep.SnapshotsExpired)
		}
		if extra := diff(tabletest.StoredFiles(t, tbl), tabletest.ReferencedFiles(t, tbl)); len(extra) != 1 || extra[0] != orphan {
			t.Errorf("after expiry, unreferenced files: %v, want only the planted %s", extra, orphan)
		}

		// Then orphans of any age go.
		zero := time.Duration(0)
		m := newCompactor(t, cat, compaction.Config{}, compaction.Options{Now: later, TestOrphanOlderThan: &zero})
		rep, err = m.Table(ctx, tableName)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("maintenance: %+v", rep)
		tbl = load(t, cat)
		if rep.OrphansRemoved != 1 {
			t.Errorf("removed %d orphans, want the planted one", rep.OrphansRemoved)
		}
		stored, referenced := tabletest.StoredFiles(t, tbl), tabletest.ReferencedFiles(t, tbl)
		if extra := diff(stored, referenced); len(extra) > 0 {
			t.Errorf("storage holds %d unreferenced files: %v", len(extra), extra)
		}
		if missing := diff(referenced, stored); len(missing) > 0 {
			t.Errorf("%d referenced files are gone: %v", len(missing), missing)
		}
		t.Logf("storage holds %d files, all referenced", len(stored))

		tabletest.CheckIDs(t, readIDs(t, tbl), n)
		if got := readIDs(t, tbl, icetable.WithSnapshotID(third.SnapshotID)); len(got) != len(thirdIDs) {
			t.Errorf("time travel to snapshot %d reads %d rows, it held %d", third.SnapshotID, len(got), len(thirdIDs))
		} else {
			tabletest.CheckIDs(t, got, int64(len(thirdIDs)))
		}
		pm, err := table.CurrentPositions(tbl)
		if err != nil || pm["src"]["p0"] != n {
			t.Errorf("positions after expiry: %v, %v; want p0=%d", pm, err, n)
		}
	})
}

// TestExpireKeepsPositions expires with min-snapshots-to-keep 1 while the
// head is a snapshot without positions (a manifest rewrite): the snapshot
// holding the positions must survive.
func TestExpireKeepsPositions(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	s := spec()
	s.Properties["history.expire.max-snapshot-age-ms"] = "1"
	ensure(t, cat, s)
	n := ingest(t, cat, 0, 12, 30)
	// Merge the 12 manifests: the head is then iceberg-go's manifest
	// rewrite, which carries no positions.
	off := false
	c := newCompactor(t, cat, compaction.Config{
		MinInputFiles: 1000, ExpireSnapshots: &off, RemoveOrphanFiles: &off,
		RewriteManifestsMaxManifests: 5,
	}, compaction.Options{})
	rep, err := c.Table(ctx, tableName)
	if err != nil {
		t.Fatal(err)
	}
	tbl := load(t, cat)
	head := tbl.CurrentSnapshot()
	if rep.ManifestsRewritten == 0 || head.Summary.Properties[table.PropCommitID] != "" {
		t.Fatalf("want a manifest rewrite without positions at the head; report %+v, head summary %v", rep, head.Summary)
	}
	later := func() time.Time { return time.Now().Add(time.Hour) }
	m := newCompactor(t, cat, compaction.Config{MinInputFiles: 1000, RewriteManifests: &off, RemoveOrphanFiles: &off}, compaction.Options{Now: later})
	if _, err := m.Table(ctx, tableName); err != nil {
		t.Fatal(err)
	}
	tbl = load(t, cat)
	if got := len(tbl.Metadata().Snapshots()); got != 2 {
		t.Errorf("%d snapshots retained, want 2 (the manifest rewrite and the last ingest commit)", got)
	}
	pm, err := table.CurrentPositions(tbl)
	if err != nil || pm["src"]["p0"] != n {
		t.Fatalf("positions after expiry: %v, %v; want p0=%d", pm, err, n)
	}
	tabletest.CheckIDs(t, readIDs(t, tbl), n)
	// The writer resumes from them.
	n = ingest(t, cat, n, 1, 30)
	tabletest.CheckIDs(t, readIDs(t, load(t, cat)), n)
}

var errCrash = errors.New("simulated crash")

// TestCrashMidRewrite stops compaction after output files were written and
// before (or between) commits, as a crash would: nothing is lost or
// duplicated, and the orphan cleaner then removes the leftovers.
func TestCrashMidRewrite(t *testing.T) {
	for _, tc := range []struct {
		name    string
		partial bool
		hooks   func(calls *int) compaction.Hooks
	}{
		{"before-commit", false, func(calls *int) compaction.Hooks {
			return compaction.Hooks{BeforeCommit: func(string) error { return errCrash }}
		}},
		{"after-second-rewrite-partial", true, func(calls *int) compaction.Hooks {
			return compaction.Hooks{AfterRewrite: func(string) error {
				*calls++
				if *calls == 2 {
					return errCrash
				}
				return nil
			}}
		}},
		{"after-commit", false, func(calls *int) compaction.Hooks {
			return compaction.Hooks{AfterCommit: func(string) error { return errCrash }}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cat := tabletest.OpenSQLite(t)
			ensure(t, cat, spec())
			n := ingest(t, cat, 0, 10, 300)
			calls := 0
			c := newCompactor(t, cat, compaction.Config{PartialProgress: tc.partial}, compaction.Options{Hooks: tc.hooks(&calls)})
			rep, err := c.Table(ctx, tableName)
			if !errors.Is(err, errCrash) {
				t.Fatalf("pass: %v, want the crash", err)
			}
			t.Logf("crashed pass: %+v", rep)
			if rep.SnapshotsExpired+rep.OrphansRemoved > 0 {
				t.Errorf("steps ran after the crash: %+v", rep)
			}
			tbl := load(t, cat)
			tabletest.CheckIDs(t, readIDs(t, tbl), n)
			leftovers := diff(tabletest.StoredFiles(t, tbl), tabletest.ReferencedFiles(t, tbl))
			t.Logf("%d files left unreferenced", len(leftovers))
			if tc.name != "after-commit" && len(leftovers) == 0 {
				t.Error("a crash before a commit left no files behind: were outputs written?")
			}

			zero := time.Duration(0)
			off := false
			cleaner := newCompactor(t, cat, compaction.Config{MinInputFiles: 1000, ExpireSnapshots: &off, RewriteManifests: &off},
				compaction.Options{TestOrphanOlderThan: &zero})
			rep, err = cleaner.Table(ctx, tableName)
			if err != nil {
				t.Fatal(err)
			}
			tbl = load(t, cat)
			if extra := diff(tabletest.StoredFiles(t, tbl), tabletest.ReferencedFiles(t, tbl)); len(extra) > 0 {
				t.Fatalf("after orphan removal (%d removed), unreferenced files remain: %v", rep.OrphansRemoved, extra)
			}
			if missing := diff(tabletest.ReferencedFiles(t, tbl), tabletest.StoredFiles(t, tbl)); len(missing) > 0 {
				t.Fatalf("referenced files are gone: %v", missing)
			}
			tabletest.CheckIDs(t, readIDs(t, tbl), n)

			// A clean pass finishes the job.
			if _, err := newCompactor(t, cat, compaction.Config{}, compaction.Options{}).Table(ctx, tableName); err != nil {
				t.Fatal(err)
			}
			tbl = load(t, cat)
			tabletest.CheckIDs(t, readIDs(t, tbl), n)
			if m := maxOf(filesPerPartition(t, tbl)); m > 1 {
				t.Errorf("%d files in a partition after the clean pass", m)
			}
		})
	}
}
