package compaction_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// TestCompactionWhileIngesting runs compaction passes over and over while a
// writer commits every 50–100 ms, then checks that every row written is in
// the table exactly once, that every ingest commit is in the table's
// history, that the positions are the writer's, and that the files per
// partition stayed bounded.
func TestCompactionWhileIngesting(t *testing.T) {
	run := 6 * time.Second
	if testing.Short() {
		run = 3 * time.Second
	}
	tabletest.EachWarehouse(t, func(t *testing.T, cat icecat.Catalog) {
		ensure(t, cat, spec())

		var (
			mu      sync.Mutex
			commits []writer.CommitInfo
		)
		w := newWriter(t, cat, writer.Options{OnCommit: func(ci writer.CommitInfo) {
			mu.Lock()
			commits = append(commits, ci)
			mu.Unlock()
		}})
		_, sc, err := w.Open(tableName, "src")
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		var next int64
		ingestDone := make(chan error, 1)
		go func() {
			for ctx.Err() == nil {
				to := next + 100 + rand.Int64N(200)
				if err := w.Write(writer.Batch{Table: tableName, Source: "src", Record: build(sc, next, to), Next: table.Positions{"p0": to}}); err != nil {
					ingestDone <- err
					return
				}
				if err := w.Commit(context.Background()); err != nil {
					ingestDone <- err
					return
				}
				next = to
				time.Sleep(50*time.Millisecond + rand.N(50*time.Millisecond))
			}
			ingestDone <- nil
		}()

		// The compactor runs passes back to back; every other pass
		// commits group by group with two rewrites in flight.
		// A pass whose commit cannot land within 10 s of conflicts
		// fails and the next pass retries.
		base := compaction.Config{MinInputFiles: 4, CommitTimeout: 10 * time.Second}
		partial := base
		partial.PartialProgress = true
		partial.MaxConcurrentFileGroupRewrites = 2
		var groups [3]int // committed, dropped, failed
		onGroup := func(g compaction.GroupReport) {
			mu.Lock()
			defer mu.Unlock()
			switch g.Result {
			case compaction.ResultCommitted:
				groups[0]++
			case compaction.ResultDropped:
				groups[1]++
			default:
				groups[2]++
			}
		}
		cs := []*compaction.Compactor{
			newCompactor(t, cat, base, compaction.Options{OnGroup: onGroup}),
			newCompactor(t, cat, partial, compaction.Options{OnGroup: onGroup}),
		}
		deadline := time.Now().Add(run)
		passes, failedPasses, maxFiles, conflicts := 0, 0, 0, 0
		for i := 0; time.Now().Before(deadline); i++ {
			rep, err := cs[i%2].RunOnce(context.Background())
			passes++
			if err != nil {
				// A pass may fail (conflicts until commit-timeout); it
				// must never lose data, and the next pass retries.
				failedPasses++
				t.Logf("pass %d: %v (class %s)", i, err, compaction.Classify(err))
			}
			for _, tr := range rep.Tables {
				maxFiles = max(maxFiles, tr.MaxFilesPerPartition)
				conflicts += tr.Conflicts
			}
		}
		mu.Lock()
		duringIngest := groups[0]
		mu.Unlock()
		stop()
		if err := <-ingestDone; err != nil {
			t.Fatalf("ingest failed while compacting: %v", err)
		}
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		// A last pass once ingest has stopped must succeed.
		rep, err := cs[0].RunOnce(context.Background())
		if err != nil {
			t.Fatalf("final pass: %v", err)
		}

		tbl := load(t, cat)
		tabletest.CheckIDs(t, readIDs(t, tbl), next)
		pm, err := table.CurrentPositions(tbl)
		if err != nil {
			t.Fatal(err)
		}
		if pm["src"]["p0"] != next {
			t.Errorf("table positions %v, want p0=%d", pm, next)
		}
		// Every ingest commit is in the current snapshot's ancestry.
		ancestors := map[int64]bool{}
		for s := range table.CurrentAncestors(tbl.Metadata()) {
			ancestors[s.SnapshotID] = true
		}
		var rows int64
		ingestConflicts := 0
		for _, ci := range commits {
			rows += ci.Rows
			ingestConflicts += ci.Conflicts
			if !ancestors[ci.SnapshotID] {
				t.Errorf("ingest commit %d (%d rows) is not in the table's history", ci.SnapshotID, ci.Rows)
			}
		}
		if rows != next {
			t.Errorf("writer committed %d rows, wrote %d", rows, next)
		}
		final := filesPerPartition(t, tbl)
		t.Logf("%d ingest commits (%d conflicts), %d rows; %d passes (%d failed, %d conflicts); groups committed %d while ingesting and %d in all, dropped %d, failed %d; max files per partition during the run %d, after %v (final pass: %+v)",
			len(commits), ingestConflicts, next, passes, failedPasses, conflicts, duringIngest, groups[0], groups[1], groups[2], maxFiles, final, rep.Tables)
		// Per partition: fewer than min-input-files small files, plus
		// what the last pass's outputs left.
		if m := maxOf(final); m > 8 {
			t.Errorf("files per partition after the final pass: %v", final)
		}
	})
}
