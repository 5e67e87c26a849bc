package mysql

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// BenchmarkDeleteStrategy measures what the choice of row-level delete
// costs readers: a table of 10,000 keys gets commits of 1,000 random
// updates each, written as
//
//   - equality: equality deletes (Flink's upsert mode: the last image per
//     key in a data file, every updated key in an equality-delete file,
//     one row delta per commit);
//   - position-unmerged: position deletes found through the key index
//     (writer.KeyedTable), one delete file per commit, never merged;
//   - position: the same, with writer.KeyedTable's default maintenance
//     (delete files merged when there are 8, fully deleted data files
//     dropped, in a replace snapshot).
//
// After 25, 50, 100 and 200 commits it reports the time of a full scan
// with iceberg-go (ms, median of 3) and of a changelog read of the last
// row delta with package reader, and the mean write time of a commit.
//
//	go test ./source/mysql -run '^$' -bench DeleteStrategy -benchtime 1x
func BenchmarkDeleteStrategy(b *testing.B) {
	for _, strategy := range []string{"equality", "position-unmerged", "position"} {
		b.Run(strategy, func(b *testing.B) {
			for range b.N {
				measureStrategy(b, strategy)
			}
		})
	}
}

const (
	stratKeys    = 10000
	stratUpdates = 1000
)

func measureStrategy(b *testing.B, strategy string) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(b)
	spec := kvSpec("cdc.kv")
	cfg := writer.DefaultConfig()
	cfg.CommitInterval = time.Hour
	w := writer.New(cat, cfg, writer.Options{})
	defer w.Abort()
	opts := writer.KeyedOptions{}
	if strategy == "position-unmerged" {
		opts.MaxDeleteFiles = 1 << 30
	}
	kt, err := w.OpenKeyed(ctx, spec, "src", opts)
	if err != nil {
		b.Fatal(err)
	}
	defer kt.Abort()
	sc := kt.Schema()
	rng := rand.New(rand.NewPCG(3, 4))
	var writeTime time.Duration
	commit := func(round int, ids []int64, initial bool) {
		vals := make([]kvRow, len(ids))
		ops := make([]writer.Op, len(ids))
		for i := range ids {
			ops[i] = writer.OpUpsert
			vals[i] = kvRow{v: fmt.Sprintf("r%d-%d-%032d", round, i, ids[i]), n: int32(round)}
		}
		start := time.Now()
		defer func() { writeTime += time.Since(start) }()
		if strategy != "equality" {
			rec := kvChanges(b, sc, ids, ops, vals)
			if err := kt.Apply(writer.Changes{Record: rec, Ops: ops, Next: table.Positions{"p": int64(round)}}); err != nil {
				b.Fatal(err)
			}
			if err := kt.Commit(ctx); err != nil {
				b.Fatal(err)
			}
			return
		}
		// Equality deletes: last image per key, then delete every key
		// written by this commit from older files.
		last := map[int64]int{}
		for i, id := range ids {
			last[id] = i
		}
		var keep []int64
		var kv []kvRow
		for i, id := range ids {
			if last[id] == i {
				keep = append(keep, id)
				kv = append(kv, vals[i])
			}
		}
		rec := kvChanges(b, sc, keep, slices.Repeat([]writer.Op{writer.OpUpsert}, len(keep)), kv)
		tbl := tabletest.Load(b, cat, spec.Name)
		txn := tbl.NewTransaction()
		var dfs []iceberg.DataFile
		for df, err := range icetable.WriteRecords(ctx, tbl, sc, func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }) {
			if err != nil {
				b.Fatal(err)
			}
			dfs = append(dfs, df)
		}
		rd := txn.NewRowDelta(nil).AddRows(dfs...)
		if !initial {
			kb := array.NewInt64Builder(memory.DefaultAllocator)
			kb.AppendValues(keep, nil)
			ka := kb.NewArray()
			kb.Release()
			ksc := arrow.NewSchema([]arrow.Field{sc.Field(0)}, nil)
			krec := array.NewRecordBatch(ksc, []arrow.Array{ka}, int64(len(keep)))
			ka.Release()
			eqs, err := txn.WriteEqualityDeletes(ctx, []int{1}, func(yield func(arrow.RecordBatch, error) bool) { yield(krec, nil) })
			if err != nil {
				b.Fatal(err)
			}
			rd.AddDeletes(eqs...)
		}
		if err := rd.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := txn.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	all := make([]int64, stratKeys)
	for i := range all {
		all[i] = int64(i)
	}
	commit(0, all, true)
	checkpoints := map[int]bool{25: true, 50: true, 100: true, 200: true}
	for round := 1; round <= 200; round++ {
		ids := make([]int64, stratUpdates)
		for i := range ids {
			ids[i] = int64(rng.IntN(stratKeys))
		}
		commit(round, ids, false)
		if !checkpoints[round] {
			continue
		}
		scan, n := timeScan(b, cat, spec.Name)
		if n != stratKeys {
			b.Fatalf("%s after %d commits: %d rows, want %d", strategy, round, n, stratKeys)
		}
		cl := timeChangelog(b, cat, spec.Name)
		b.ReportMetric(float64(scan.Microseconds())/1e3, fmt.Sprintf("scan-ms@%d", round))
		b.ReportMetric(float64(cl.Microseconds())/1e3, fmt.Sprintf("changelog-ms@%d", round))
	}
	b.ReportMetric(float64(writeTime.Microseconds())/1e3/200, "write-ms/commit")
}

func timeScan(b testing.TB, cat icecat.Catalog, name string) (time.Duration, int) {
	var times []time.Duration
	n := 0
	for range 3 {
		tbl := tabletest.Load(b, cat, name)
		start := time.Now()
		n = 0
		tabletest.Each(b, tbl, func(rec arrow.RecordBatch) { n += int(rec.NumRows()) })
		times = append(times, time.Since(start))
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	return times[1], n
}

func timeChangelog(b *testing.B, cat icecat.Catalog, name string) time.Duration {
	r, err := reader.New(cat, name, reader.Config{Mode: reader.ModeChangelog})
	if err != nil {
		b.Fatal(err)
	}
	tbl, err := r.Load(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	// The newest row delta (the newest snapshot may be a rewrite of delete
	// files, which changes no rows).
	var cur *icetable.Snapshot
	for s := range table.CurrentAncestors(tbl.Metadata()) {
		if s.Summary != nil && s.Summary.Operation == icetable.OpOverwrite {
			cur = s
			break
		}
	}
	if cur == nil {
		b.Fatal("no row delta in the table's history")
	}
	start := time.Now()
	st, err := r.ChangesIn(context.Background(), tbl, *cur.ParentSnapshotID, cur.SnapshotID)
	if err != nil {
		b.Fatal(err)
	}
	ins, del := 0, 0
	for rec, err := range st.Records() {
		if err != nil {
			b.Fatal(err)
		}
		ct := rec.Column(int(rec.NumCols()) - 3).(*array.String)
		for i := 0; i < ct.Len(); i++ {
			if ct.Value(i) == reader.ChangeInsert {
				ins++
			} else {
				del++
			}
		}
		rec.Release()
	}
	d := time.Since(start)
	if ins == 0 || ins != del {
		b.Fatalf("changelog of the last commit: %d inserts, %d deletes; want equal and non-zero", ins, del)
	}
	return d
}
