package compaction_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/benchutil"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// TestKeyedRewriteWriters: a keyed rewrite writes its inputs' rows but
// the dead ones (in any order, repeated; a whole input dead), in input
// order, and shows onBatch exactly the rows it writes — streamed through
// pqgo and through arrow-go's writer alike.
func TestKeyedRewriteWriters(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	ensure(t, cat, spec())
	ingest(t, cat, 0, 6, 3000)
	tbl := load(t, cat)
	_, sc, err := newWriter(t, cat).Open(tableName, "src")
	if err != nil {
		t.Fatal(err)
	}
	// The partition with the most files.
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byPart := map[string][]iceberg.DataFile{}
	for _, task := range tasks {
		k := compaction.PartitionKey(task.File)
		byPart[k] = append(byPart[k], task.File)
	}
	var files []iceberg.DataFile
	for _, fs := range byPart {
		if len(fs) > len(files) {
			files = fs
		}
	}
	if len(files) < 3 {
		t.Fatalf("%d files in the largest partition, want 3 or more", len(files))
	}
	rng := rand.New(rand.NewPCG(4, 2))
	var want []int64
	inputs := func() []compaction.KeyedInput {
		want = want[:0]
		var ins []compaction.KeyedInput
		for i, df := range files {
			ids := readFile(t, tbl, df)
			var dead []int64
			for p := range ids {
				if i == 1 || rng.IntN(7) == 0 { // input 1: every row dead
					dead = append(dead, int64(p))
					if p%3 == 0 {
						dead = append(dead, int64(p)) // repeated
					}
				}
			}
			rng.Shuffle(len(dead), func(a, b int) { dead[a], dead[b] = dead[b], dead[a] })
			for p, id := range ids {
				if !slices.Contains(dead, int64(p)) {
					want = append(want, id)
				}
			}
			ins = append(ins, compaction.KeyedInput{File: df, Dead: dead})
		}
		return ins
	}
	for _, arrowWriter := range []bool{false, true} {
		t.Run(fmt.Sprintf("arrow=%v", arrowWriter), func(t *testing.T) {
			rw := compaction.NewKeyedRewrite(inputs(), tbl.CurrentSnapshot().SnapshotID)
			rw.ArrowWriter = arrowWriter
			var seen []int64
			onBatch := func(rec arrow.RecordBatch, rows []int32) error {
				ids := rec.Column(0).(*array.Int64).Int64Values()
				if rows == nil {
					seen = append(seen, ids...)
					return nil
				}
				for _, r := range rows {
					seen = append(seen, ids[r])
				}
				return nil
			}
			path := tbl.Location() + fmt.Sprintf("/data/rewrite-%v.parquet", arrowWriter)
			if err := rw.Write(ctx, tbl, sc, path, onBatch); err != nil {
				t.Fatal(err)
			}
			if rw.Output == nil || rw.Output.Count() != int64(len(want)) || rw.LiveRows() != int64(len(want)) {
				t.Fatalf("output %v, want %d rows", rw.Output, len(want))
			}
			if !slices.Equal(seen, want) {
				t.Errorf("onBatch saw %d rows, want the %d written, in order", len(seen), len(want))
			}
			if got := readFile(t, tbl, rw.Output); !slices.Equal(got, want) {
				t.Errorf("the output holds %d rows, want the inputs' %d live ones in order", len(got), len(want))
			}
		})
	}
}

// readFile is the ids of a data file of tbl, in file order.
func readFile(t *testing.T, tbl *icetable.Table, df iceberg.DataFile) []int64 {
	t.Helper()
	_, recs, err := tbl.Scan().ReadTasks(context.Background(), []icetable.FileScanTask{{File: df, Length: df.FileSizeBytes()}})
	if err != nil {
		t.Fatal(err)
	}
	return collectIDs(t, recs)
}

// BenchmarkKeyedRewrite is a keyed writer's compaction step over a snapshot
// load's files: FLOE_BENCH_REWRITE_ROWS rows (default 1M) of the keyed
// benchmark's table (bigint key, int, decimal(12,2), string, timestamp,
// double) in 4 files, 0.5% of the rows dead, rewritten into one file by
// pqgo (pqgo=true) and, as the baseline in the same run, by arrow-go's
// writer (pqgo=false). rows/cpu-s counts the rows read.
//
//	go test -run '^$' -bench BenchmarkKeyedRewrite -benchtime 3x ./compaction
func BenchmarkKeyedRewrite(b *testing.B) {
	ctx := context.Background()
	rows := int64(1_000_000)
	if v, err := strconv.ParseInt(os.Getenv("FLOE_BENCH_REWRITE_ROWS"), 10, 64); err == nil && v > 0 {
		rows = v
	}
	cat := tabletest.OpenSQLite(b)
	s := table.Spec{
		Name: "ods.t",
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true}, {Name: "user_id", Type: "int", Required: true},
			{Name: "amount", Type: "decimal(12,2)", Required: true}, {Name: "label", Type: "string", Required: true},
			{Name: "at", Type: "timestamp", Required: true}, {Name: "score", Type: "double", Required: true},
		},
		IdentifierFields: []string{"id"},
	}
	ensure(b, cat, s)
	w := newWriter(b, cat)
	_, sc, err := w.Open(s.Name, "src")
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const files = 4
	for f := range int64(files) {
		for lo := f * rows / files; lo < (f+1)*rows/files; lo += 100_000 {
			hi := min(lo+100_000, (f+1)*rows/files)
			var rs [][]any
			for id := lo; id < hi; id++ {
				rs = append(rs, []any{id, int32(id % 100000), decimal128.FromI64(id % 10000),
					fmt.Sprintf("label-%d", id%1000), at, float64(id) / 7})
			}
			if err := w.Write(writer.Batch{Table: s.Name, Source: "src", Record: tabletest.Record(sc, rs...), Next: table.Positions{"p": hi}}); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	tbl := tabletest.Load(b, cat, s.Name)
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, usePqgo := range []bool{true, false} {
		b.Run(fmt.Sprintf("pqgo=%v", usePqgo), func(b *testing.B) {
			var read int64
			m := benchutil.Start(b)
			for i := range b.N {
				b.StopTimer()
				var ins []compaction.KeyedInput
				for _, task := range tasks {
					var dead []int64
					for range task.File.Count() / 200 {
						dead = append(dead, rng.Int64N(task.File.Count()))
					}
					ins = append(ins, compaction.KeyedInput{File: task.File, Dead: dead})
					read += task.File.Count()
				}
				rw := compaction.NewKeyedRewrite(ins, tbl.CurrentSnapshot().SnapshotID)
				rw.ArrowWriter = !usePqgo
				b.StartTimer()
				if err := rw.Write(ctx, tbl, sc, tbl.Location()+fmt.Sprintf("/data/bench-%v-%d.parquet", usePqgo, i), nil); err != nil {
					b.Fatal(err)
				}
			}
			m.Stop(b, read)
		})
	}
}
