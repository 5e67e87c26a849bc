//go:build integration

package compaction_test

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// TestSoak runs two writers (two sources, disjoint ids) against the
// compaction daemon — rewrite, manifests, expiry with a short retention
// and orphan removal with a 30 s threshold — for FLOE_SOAK (default 2m),
// then checks every row once, both sources' positions, and that storage
// holds only referenced files after a last sweep.
//
//	go test -tags integration -run TestSoak -timeout 30m ./compaction/
func TestSoak(t *testing.T) {
	soak := 2 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("FLOE_SOAK")); err == nil {
		soak = d
	}
	tabletest.EachWarehouse(t, func(t *testing.T, cat icecat.Catalog) {
		s := spec()
		s.Properties["history.expire.max-snapshot-age-ms"] = "20000"
		s.Properties["history.expire.min-snapshots-to-keep"] = "5"
		ensure(t, cat, s)
		thirty := 30 * time.Second
		c := newCompactor(t, cat, compaction.Config{Interval: time.Second, MinInputFiles: 4, OrphanInterval: 10 * time.Second},
			compaction.Options{TestOrphanOlderThan: &thirty})
		ctx, stop := context.WithCancel(context.Background())
		daemon := make(chan error, 1)
		go func() { daemon <- c.Run(ctx) }()

		var wg sync.WaitGroup
		written := make([][]int64, 2)
		for wi := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := newWriter(t, cat)
				src := []string{"a", "b"}[wi]
				_, sc, err := w.Open(tableName, src)
				if err != nil {
					t.Error(err)
					return
				}
				next := int64(wi) << 40
				for ctx.Err() == nil {
					to := next + 50 + rand.Int64N(150)
					if err := w.Write(writer.Batch{Table: tableName, Source: src, Record: build(sc, next, to), Next: table.Positions{"p": to}}); err != nil {
						t.Error(err)
						return
					}
					if err := w.Commit(context.Background()); err != nil {
						t.Error(err)
						return
					}
					for id := next; id < to; id++ {
						written[wi] = append(written[wi], id)
					}
					next = to
					time.Sleep(50*time.Millisecond + rand.N(50*time.Millisecond))
				}
				if err := w.Close(context.Background()); err != nil {
					t.Error(err)
				}
			}()
		}
		time.Sleep(soak)
		stop()
		wg.Wait()
		if err := <-daemon; err != nil {
			t.Fatal(err)
		}
		zero := time.Duration(0)
		final := newCompactor(t, cat, compaction.Config{}, compaction.Options{TestOrphanOlderThan: &zero})
		rep, err := final.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		tbl := load(t, cat)
		want := slices.Concat(written[0], written[1])
		slices.Sort(want)
		got := readIDs(t, tbl)
		if !slices.Equal(got, want) {
			t.Fatalf("table holds %d rows, writers committed %d", len(got), len(want))
		}
		pm, err := table.CurrentPositions(tbl)
		if err != nil || pm["a"]["p"] != written[0][len(written[0])-1]+1 || pm["b"]["p"] != written[1][len(written[1])-1]+1 {
			t.Errorf("positions %v (%v)", pm, err)
		}
		if extra := diff(tabletest.StoredFiles(t, tbl), tabletest.ReferencedFiles(t, tbl)); len(extra) > 0 {
			t.Errorf("%d unreferenced files after the final sweep", len(extra))
		}
		t.Logf("%d rows from two writers over %s; final pass %+v; %d snapshots retained, files per partition %v",
			len(got), soak, rep.Tables, len(tbl.Metadata().Snapshots()), filesPerPartition(t, tbl))
	})
}
