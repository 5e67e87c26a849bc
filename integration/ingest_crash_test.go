package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
)

// TestIngestExactlyOnceUnderSIGKILL runs `floe ingest` over one finite
// generator stream and SIGKILLs it again and again — at random moments
// (while buffering, writing files, uploading, committing) and at injected
// points (after files are written, right before and right after a commit) —
// restarting it each time. Afterwards every generated record is in the
// table exactly once, or in the dead-letter table exactly once if it was
// bad.
func TestIngestExactlyOnceUnderSIGKILL(t *testing.T) {
	bin := testenv.FloeBinary(t)
	kills := 20
	if testing.Short() {
		kills = 4
	}
	for _, wh := range testenv.Warehouses(t) {
		t.Run(wh.Name, func(t *testing.T) {
			const partitions, perPartition = 4, 60000
			dir := t.TempDir()
			cfgPath := writeIngestConfig(t, dir, wh.Config, partitions, perPartition)
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
			points := []string{"", "", "after-flush:0.5", "before-commit:0.5", "after-commit:0.5"}
			killed := 0
			for i := 0; i < kills; i++ {
				crash := points[i%len(points)]
				after := time.Duration(500+rng.IntN(2500)) * time.Millisecond
				outcome := runIngest(t, bin, cfgPath, dir, crash, after)
				t.Logf("run %d (crash=%q, kill after %s): %s", i, crash, after, outcome)
				if outcome == "finished" {
					break
				}
				killed++
			}
			if killed < kills && !testing.Short() {
				t.Fatalf("the stream finished after %d kills; make it longer so all %d kills land mid-stream", killed, kills)
			}
			// Run to the end without faults.
			if outcome := runIngest(t, bin, cfgPath, dir, "", 5*time.Minute); outcome != "finished" {
				t.Fatalf("final run: %s", outcome)
			}
			verifyExactlyOnce(t, wh.Config, partitions, perPartition)
		})
	}
}

func writeIngestConfig(t *testing.T, dir string, cc catalog.Config, partitions, perPartition int) string {
	t.Helper()
	cfg := map[string]any{
		"catalog":         catalogYAML(cc),
		"writer":          map[string]any{"commit-interval": "1s", "memory-budget": "64MiB"},
		"metrics-address": "off",
		"sources": []any{map[string]any{"type": "gen", "gen": map[string]any{
			"id": "gen", "seed": 7, "partitions": partitions, "rows-per-partition": perPartition,
			"batch-rows": 1000, "rate": 10000, "bad-fraction": 0.003, "late-fraction": 0.1,
		}}},
	}
	return writeFloeYAML(t, dir, cfg)
}

// runIngest runs floe ingest until it exits ("finished" on exit 0) or
// killAfter passes ("killed"); a crash hook killing it is "crashed by
// hook". Any other exit fails the test with the log's tail.
func runIngest(t *testing.T, bin, cfgPath, dir, crash string, killAfter time.Duration) string {
	t.Helper()
	outcome, err := testenv.RunKilled(bin, filepath.Join(dir, "ingest.log"), crash, killAfter, "ingest", "-config", cfgPath, "-log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	return outcome
}

// verifyExactlyOnce checks that every (partition, offset) the generator
// produced is in ods.events (event_id = partition<<40 | offset) or in the
// dead-letter table, exactly once in all.
func verifyExactlyOnce(t *testing.T, cc catalog.Config, partitions, perPartition int) {
	t.Helper()
	ctx := context.Background()
	cat, err := catalog.Open(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	seen := make([][]uint8, partitions)
	for p := range seen {
		seen[p] = make([]uint8, perPartition)
	}
	var events, dead int
	for _, id := range scanInt64(t, cat, "ods.events", "event_id") {
		p, o := int(id>>40), int(id&(1<<40-1))
		if p >= partitions || o >= perPartition {
			t.Fatalf("event_id %d (p%d/%d) was never generated", id, p, o)
		}
		seen[p][o]++
		events++
	}
	parts := scanString(t, cat, "floe.dead_letters", "partition")
	offs := scanInt64(t, cat, "floe.dead_letters", "position")
	for i := range parts {
		var p int
		if _, err := fmt.Sscanf(parts[i], "p%d", &p); err != nil {
			t.Fatalf("dead letter partition %q: %v", parts[i], err)
		}
		seen[p][offs[i]]++
		dead++
	}
	for p := range seen {
		for o, n := range seen[p] {
			if n != 1 {
				t.Fatalf("record p%d/%d is in the tables %d times, want exactly once (events %d, dead letters %d)", p, o, n, events, dead)
			}
		}
	}
	if dead == 0 {
		t.Fatal("no dead letters: the bad-record path was not exercised")
	}
	t.Logf("%d events and %d dead letters, each exactly once", events, dead)
}

func scanInt64(t *testing.T, cat icecat.Catalog, name, col string) []int64 {
	t.Helper()
	var out []int64
	scanCol(t, cat, name, col, func(a any) { out = append(out, a.(*array.Int64).Int64Values()...) })
	return out
}

func scanString(t *testing.T, cat icecat.Catalog, name, col string) []string {
	t.Helper()
	var out []string
	scanCol(t, cat, name, col, func(a any) {
		s := a.(*array.String)
		for i := 0; i < s.Len(); i++ {
			out = append(out, s.Value(i))
		}
	})
	return out
}

func scanCol(t *testing.T, cat icecat.Catalog, name, col string, f func(any)) {
	t.Helper()
	tabletest.Each(t, tabletest.Load(t, cat, name), func(rec arrow.RecordBatch) { f(rec.Column(0)) }, icetable.WithSelectedFields(col))
}
