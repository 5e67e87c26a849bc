package compaction_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

const tableName = "ods.events"

var day0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// spec is a day-partitioned table with a small target file size, so that a
// few thousand rows make "small" files and full ones.
func spec() table.Spec {
	return table.Spec{
		Name: tableName,
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "payload", Type: "string"},
		},
		Partition: []table.PartitionField{{Column: "ts", Transform: "day"}},
		Sort:      []table.SortField{{Column: "id"}},
		Properties: map[string]string{
			"write.target-file-size-bytes": "65536",
		},
	}
}

const days = 3

// build makes rows with ids [from, to): spread over three days, with a
// payload that compresses moderately.
func build(sc *arrow.Schema, from, to int64) arrow.RecordBatch {
	var rows [][]any
	for i := from; i < to; i++ {
		var payload any
		if i%11 != 0 {
			payload = fmt.Sprintf("payload-%d-%x", i, i*2654435761)
		}
		rows = append(rows, []any{i, day0.Add(time.Duration(i%days)*24*time.Hour + time.Duration(i)*time.Millisecond), payload})
	}
	return tabletest.Record(sc, rows...)
}

func quietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() && os.Getenv("FLOE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func ensure(t testing.TB, cat icecat.Catalog, s table.Spec) {
	t.Helper()
	if _, err := table.Ensure(context.Background(), cat, s); err != nil {
		t.Fatal(err)
	}
}

func newWriter(t testing.TB, cat icecat.Catalog, opts ...writer.Options) *writer.Writer {
	t.Helper()
	cfg := writer.Config{CommitInterval: time.Hour, WriterID: "test-writer"}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	o := writer.Options{}
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Logger == nil {
		o.Logger = quietLogger(t)
	}
	w := writer.New(cat, cfg, o)
	t.Cleanup(w.Abort)
	return w
}

// ingest writes ids [from, from+commits*perCommit) as commits of perCommit
// rows each, source "src", partition "p0", and returns the next id.
func ingest(t testing.TB, cat icecat.Catalog, from int64, commits, perCommit int) int64 {
	t.Helper()
	ctx := context.Background()
	w := newWriter(t, cat)
	pos, sc, err := w.Open(tableName, "src")
	if err != nil {
		t.Fatal(err)
	}
	if got := pos["p0"]; got != from {
		t.Fatalf("writer resumes at %d, want %d", got, from)
	}
	for range commits {
		to := from + int64(perCommit)
		if err := w.Write(writer.Batch{Table: tableName, Source: "src", Record: build(sc, from, to), Next: table.Positions{"p0": to}}); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		from = to
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return from
}

func load(t testing.TB, cat icecat.Catalog) *icetable.Table {
	t.Helper()
	tbl := tabletest.Load(t, cat, tableName)
	return tbl
}

// readIDs returns every id in the scan, sorted (duplicates kept).
func readIDs(t testing.TB, tbl *icetable.Table, opts ...icetable.ScanOption) []int64 {
	t.Helper()
	return tabletest.Int64s(t, tbl, "id", opts...)
}

// filesPerPartition counts the live data files of each partition.
func filesPerPartition(t testing.TB, tbl *icetable.Table) map[string]int {
	t.Helper()
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	seen := map[string]bool{}
	for _, task := range tasks {
		if seen[task.File.FilePath()] {
			continue
		}
		seen[task.File.FilePath()] = true
		out[fmt.Sprint(task.File.Partition())]++
	}
	return out
}

func maxOf(m map[string]int) int {
	n := 0
	for _, v := range m {
		n = max(n, v)
	}
	return n
}

func newCompactor(t testing.TB, cat icecat.Catalog, cfg compaction.Config, opts compaction.Options) *compaction.Compactor {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger(t)
	}
	c, err := compaction.New(cat, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// diff returns the elements of a not in b.
func diff(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// icetableBatch is a writer batch of ids [from, to) advancing p0 to seq+1.
func icetableBatch(sc *arrow.Schema, from, to, seq int64) writer.Batch {
	return writer.Batch{Table: tableName, Source: "src", Record: build(sc, from, to), Next: table.Positions{"p0": seq + 1}}
}
