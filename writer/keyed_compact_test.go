package writer_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

const keyedTable = "cdc.kv"

// keyedSpec is a keyed table with a 256 KiB target file size, so that
// every commit's file is small.
func keyedSpec() table.Spec {
	return table.Spec{
		Name: keyedTable,
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "v", Type: "string"},
			{Name: "n", Type: "int"},
		},
		IdentifierFields: []string{"id"},
		Properties:       map[string]string{"write.target-file-size-bytes": "262144"},
	}
}

type keyedRow struct {
	v string
	n int32
}

func keyedRecord(sc *arrow.Schema, ids []int64, ops []writer.Op, rows []keyedRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i, id := range ids {
		b.Field(0).(*array.Int64Builder).Append(id)
		if ops[i] == writer.OpDelete {
			b.Field(1).AppendNull()
			b.Field(2).AppendNull()
			continue
		}
		b.Field(1).(*array.StringBuilder).Append(rows[i].v)
		b.Field(2).(*array.Int32Builder).Append(rows[i].n)
	}
	return b.NewRecordBatch()
}

// scanKeyed reads the table; a key twice fails the test.
func scanKeyed(t *testing.T, cat icecat.Catalog) (map[int64]keyedRow, *icetable.Table) {
	t.Helper()
	tbl := tabletest.Load(t, cat, keyedTable)
	out := map[int64]keyedRow{}
	tabletest.Each(t, tbl, func(rec arrow.RecordBatch) {
		ids, vs, ns := rec.Column(0).(*array.Int64), rec.Column(1).(*array.String), rec.Column(2).(*array.Int32)
		for i := range int(rec.NumRows()) {
			if _, dup := out[ids.Value(i)]; dup {
				t.Fatalf("key %d is in the table twice", ids.Value(i))
			}
			out[ids.Value(i)] = keyedRow{v: vs.Value(i), n: ns.Value(i)}
		}
	})
	return out, tbl
}

// metricValue sums the samples of a metric whose labels include labels.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

// TestKeyedCompactionBesideUpdates: a keyed table takes many small commits
// of random upserts and deletes while its own compaction rewrites its
// small files; each compaction step is held after writing its file until
// three more commits (deleting rows it copied) have landed. The steps
// commit replace snapshots, the file count stays bounded, the index is
// never rebuilt, and the table holds exactly the expected row of every
// key at every check.
func TestKeyedCompactionBesideUpdates(t *testing.T) {
	for _, wh := range testenv.Warehouses(t) {
		t.Run(wh.Name, func(t *testing.T) {
			ctx := context.Background()
			cat := tabletest.Open(t, wh.Config)
			reg := prometheus.NewRegistry()
			var commits atomic.Int64
			var updating atomic.Bool
			updating.Store(true)
			var held atomic.Int64
			hooks := writer.Hooks{
				AfterCommit: func(string) { commits.Add(1) },
				CompactionWritten: func(string) {
					// Let the table commit three times before the step
					// commits: its inputs lose rows meanwhile.
					target := commits.Load() + 3
					for deadline := time.Now().Add(10 * time.Second); updating.Load() && commits.Load() < target && time.Now().Before(deadline); {
						time.Sleep(2 * time.Millisecond)
					}
					if commits.Load() >= target {
						held.Add(1)
					}
				},
			}
			cfg := writer.DefaultConfig()
			cfg.CommitInterval = time.Hour
			w := writer.New(cat, cfg, writer.Options{Metrics: writer.NewMetrics(reg), Hooks: hooks, Logger: quietLog(t)})
			defer w.Abort()
			kt, err := w.OpenKeyed(ctx, keyedSpec(), "src", writer.KeyedOptions{
				MaxDeleteFiles: 4,
				Compaction:     compaction.KeyedConfig{MinInputFiles: 4},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer kt.Abort()

			rng := rand.New(rand.NewPCG(7, uint64(len(wh.Name))))
			want := map[int64]keyedRow{}
			pos := int64(0)
			apply := func(ids []int64, ops []writer.Op, rows []keyedRow) {
				t.Helper()
				pos++
				if err := kt.Apply(writer.Changes{Record: keyedRecord(kt.Schema(), ids, ops, rows), Ops: ops, Next: table.Positions{"p": pos}}); err != nil {
					t.Fatal(err)
				}
				if err := kt.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			}
			// 2,000 rows in four commits.
			for c := range int64(4) {
				var ids []int64
				var ops []writer.Op
				var rows []keyedRow
				for id := c * 500; id < (c+1)*500; id++ {
					r := keyedRow{v: "load-" + strconv.FormatInt(id, 10), n: int32(id)}
					ids, ops, rows = append(ids, id), append(ops, writer.OpUpsert), append(rows, r)
					want[id] = r
				}
				apply(ids, ops, rows)
			}
			// 160 commits of 40 random changes each, over 2,500 keys.
			const rounds = 160
			for round := range rounds {
				var ids []int64
				var ops []writer.Op
				var rows []keyedRow
				for i := range 40 {
					id := rng.Int64N(2500)
					if rng.IntN(5) == 0 {
						ids, ops, rows = append(ids, id), append(ops, writer.OpDelete), append(rows, keyedRow{})
						delete(want, id)
						continue
					}
					r := keyedRow{v: fmt.Sprintf("r%d-%d", round, i), n: int32(rng.IntN(1 << 20))}
					ids, ops, rows = append(ids, id), append(ops, writer.OpUpsert), append(rows, r)
					want[id] = r
				}
				apply(ids, ops, rows)
				if round%40 == 39 {
					if got, _ := scanKeyed(t, cat); !maps.Equal(got, want) {
						t.Fatalf("after round %d: the table holds %d rows, want %d", round, len(got), len(want))
					}
				}
			}
			updating.Store(false)
			if err := kt.Close(ctx); err != nil {
				t.Fatal(err)
			}

			got, tbl := scanKeyed(t, cat)
			if !maps.Equal(got, want) {
				for id, r := range want {
					if got[id] != r {
						t.Errorf("key %d: %+v, want %+v", id, got[id], r)
						break
					}
				}
				t.Fatalf("the table holds %d rows, want %d", len(got), len(want))
			}
			if v := tbl.Properties()[compaction.PropCompactionOwner]; v != compaction.OwnerWriter {
				t.Errorf("%s=%q, want %q", compaction.PropCompactionOwner, v, compaction.OwnerWriter)
			}
			replaces, lateMerged := 0, 0
			for _, s := range tbl.Metadata().Snapshots() {
				if s.Summary == nil || s.Summary.Properties[table.PropOperation] != compaction.OperationCompact {
					continue
				}
				if s.Summary.Operation != icetable.OpReplace {
					t.Errorf("compaction snapshot %d is %s, want replace", s.SnapshotID, s.Summary.Operation)
				}
				replaces++
				if n, _ := table.SummaryInt(&s, "added-delete-files"); n > 0 {
					lateMerged++
				}
			}
			data := liveDataFiles(t, tbl)
			committed := metricValue(t, reg, "floe_writer_keyed_compactions_total", map[string]string{"table": keyedTable, "result": writer.CompactionCommitted})
			t.Logf("%d commits; %d compaction snapshots (%d carrying late deletes, %d steps held over commits); %d live data files; compactions %v committed, %v failed",
				commits.Load(), replaces, lateMerged, held.Load(), data, committed,
				metricValue(t, reg, "floe_writer_keyed_compactions_total", map[string]string{"table": keyedTable, "result": writer.CompactionFailed}))
			if replaces == 0 || committed == 0 {
				t.Fatalf("no compaction committed (%d replace snapshots, metric %v)", replaces, committed)
			}
			if lateMerged == 0 {
				t.Error("no compaction step committed beside deletes of its inputs")
			}
			// 164 commits wrote a data file each; compaction keeps a few.
			if data > 16 {
				t.Errorf("%d live data files after %d commits, want at most 16", data, rounds+4)
			}
			if n := metricValue(t, reg, "floe_writer_keyed_index_rebuilds_total", map[string]string{"table": keyedTable}); n != 1 {
				t.Errorf("key index built %v times, want once (at open)", n)
			}
			if n := metricValue(t, reg, "floe_writer_keyed_index_keys", map[string]string{"table": keyedTable}); int(n) != len(want) {
				t.Errorf("index keys gauge %v, want %d", n, len(want))
			}
			if n := metricValue(t, reg, "floe_writer_keyed_index_bytes", map[string]string{"table": keyedTable}); n < float64(len(want)*8) {
				t.Errorf("index bytes gauge %v for %d keys", n, len(want))
			}
			pm, err := table.CurrentPositions(tbl)
			if err != nil || pm["src"]["p"] != pos {
				t.Errorf("positions %v (%v), want p=%d", pm, err, pos)
			}

			// Reopened, the index built from the compacted table takes
			// more changes correctly.
			kt, err = w.OpenKeyed(ctx, keyedSpec(), "src", writer.KeyedOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if kt.Len() != len(want) {
				t.Errorf("reopened: %d keys, want %d", kt.Len(), len(want))
			}
			ids := []int64{0, 1, 2, 2499}
			ops := []writer.Op{writer.OpDelete, writer.OpUpsert, writer.OpUpsert, writer.OpUpsert}
			rows := []keyedRow{{}, {"one", 1}, {"two", 2}, {"last", 3}}
			delete(want, 0)
			want[1], want[2], want[2499] = rows[1], rows[2], rows[3]
			apply(ids, ops, rows)
			if got, _ := scanKeyed(t, cat); !maps.Equal(got, want) {
				t.Fatalf("after reopening: the table holds %d rows, want %d", len(got), len(want))
			}
			if err := kt.Close(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// liveDataFiles counts the data files of the table's current snapshot.
func liveDataFiles(t testing.TB, tbl *icetable.Table) int {
	t.Helper()
	data, _ := tabletest.LiveFiles(t, tbl)
	return len(data)
}

// quietLog discards logs unless FLOE_TEST_LOG is set with -v.
func quietLog(t *testing.T) *slog.Logger {
	if testing.Verbose() && os.Getenv("FLOE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// TestKeyedCompactionMovesByScan: a compaction step too large to note its
// output's keys (forced here for every step) moves the index entries with
// one scan of the persistent index. Steps commit beside updates that
// delete rows they copied, the table stays exact, and a reopened table
// validates the persisted index (its checksum kept through the scan) and
// takes more changes correctly.
func TestKeyedCompactionMovesByScan(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	reg := prometheus.NewRegistry()
	var commits atomic.Int64
	var updating atomic.Bool
	updating.Store(true)
	hooks := writer.Hooks{
		AfterCommit: func(string) { commits.Add(1) },
		CompactionWritten: func(string) {
			target := commits.Load() + 2
			for deadline := time.Now().Add(10 * time.Second); updating.Load() && commits.Load() < target && time.Now().Before(deadline); {
				time.Sleep(2 * time.Millisecond)
			}
		},
	}
	cfg := writer.DefaultConfig()
	cfg.CommitInterval = time.Hour
	w := writer.New(cat, cfg, writer.Options{Metrics: writer.NewMetrics(reg), Hooks: hooks, Logger: quietLog(t)})
	defer w.Abort()
	dir := t.TempDir()
	opts := writer.KeyedOptions{MaxDeleteFiles: 4, Compaction: compaction.KeyedConfig{MinInputFiles: 4}, IndexDir: dir}
	kt, err := w.OpenKeyed(ctx, keyedSpec(), "src", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer kt.Abort()
	writer.SetStepMaxKeys(kt, -1)
	rng := rand.New(rand.NewPCG(11, 12))
	want := map[int64]keyedRow{}
	pos := int64(0)
	apply := func(kt *writer.KeyedTable, ids []int64, ops []writer.Op, rows []keyedRow) {
		t.Helper()
		pos++
		if err := kt.Apply(writer.Changes{Record: keyedRecord(kt.Schema(), ids, ops, rows), Ops: ops, Next: table.Positions{"p": pos}}); err != nil {
			t.Fatal(err)
		}
		if err := kt.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for c := range int64(4) {
		var ids []int64
		var ops []writer.Op
		var rows []keyedRow
		for id := c * 500; id < (c+1)*500; id++ {
			r := keyedRow{v: "load-" + strconv.FormatInt(id, 10), n: int32(id)}
			ids, ops, rows = append(ids, id), append(ops, writer.OpUpsert), append(rows, r)
			want[id] = r
		}
		apply(kt, ids, ops, rows)
	}
	for round := range 80 {
		var ids []int64
		var ops []writer.Op
		var rows []keyedRow
		for i := range 40 {
			id := rng.Int64N(2500)
			if rng.IntN(5) == 0 {
				ids, ops, rows = append(ids, id), append(ops, writer.OpDelete), append(rows, keyedRow{})
				delete(want, id)
				continue
			}
			r := keyedRow{v: fmt.Sprintf("r%d-%d", round, i), n: int32(rng.IntN(1 << 20))}
			ids, ops, rows = append(ids, id), append(ops, writer.OpUpsert), append(rows, r)
			want[id] = r
		}
		apply(kt, ids, ops, rows)
	}
	updating.Store(false)
	if err := kt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := scanKeyed(t, cat); !maps.Equal(got, want) {
		t.Fatalf("the table holds %d rows, want %d", len(got), len(want))
	}
	committed := metricValue(t, reg, "floe_writer_keyed_compactions_total", map[string]string{"table": keyedTable, "result": writer.CompactionCommitted})
	failed := metricValue(t, reg, "floe_writer_keyed_compactions_total", map[string]string{"table": keyedTable, "result": writer.CompactionFailed})
	if committed == 0 || failed != 0 {
		t.Fatalf("compactions: %v committed, %v failed", committed, failed)
	}
	// Reopened: the persisted index validates (no rebuild) and is right.
	kt, err = w.OpenKeyed(ctx, keyedSpec(), "src", opts)
	if err != nil {
		t.Fatal(err)
	}
	if info := kt.Index(); info.Opened != writer.IndexOpenedValidated {
		t.Errorf("reopened index: %+v, want it validated", info)
	}
	if kt.Len() != len(want) {
		t.Errorf("reopened: %d keys, want %d", kt.Len(), len(want))
	}
	ids := []int64{0, 1, 2, 2499}
	ops := []writer.Op{writer.OpDelete, writer.OpUpsert, writer.OpUpsert, writer.OpUpsert}
	rows := []keyedRow{{}, {"one", 1}, {"two", 2}, {"last", 3}}
	delete(want, 0)
	want[1], want[2], want[2499] = rows[1], rows[2], rows[3]
	apply(kt, ids, ops, rows)
	if err := kt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := scanKeyed(t, cat); !maps.Equal(got, want) {
		t.Fatalf("after reopening: the table holds %d rows, want %d", len(got), len(want))
	}
}
