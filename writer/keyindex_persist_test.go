package writer_test

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// persistSpec is keyedSpec with a second required column, k2 (always 0),
// that a test can add to the key.
func persistSpec() table.Spec {
	return table.Spec{
		Name: keyedTable,
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "k2", Type: "long", Required: true},
			{Name: "v", Type: "string"},
			{Name: "n", Type: "int"},
		},
		IdentifierFields: []string{"id"},
		Properties:       map[string]string{"write.target-file-size-bytes": "262144"},
	}
}

func persistRecord(sc *arrow.Schema, ids []int64, ops []writer.Op, rows []keyedRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i, id := range ids {
		b.Field(0).(*array.Int64Builder).Append(id)
		b.Field(1).(*array.Int64Builder).Append(0)
		if ops[i] == writer.OpDelete {
			b.Field(2).AppendNull()
			b.Field(3).AppendNull()
			continue
		}
		b.Field(2).(*array.StringBuilder).Append(rows[i].v)
		b.Field(3).(*array.Int32Builder).Append(rows[i].n)
	}
	return b.NewRecordBatch()
}

// persistScan reads the table; a key twice fails the test.
func persistScan(t *testing.T, cat icecat.Catalog) map[int64]keyedRow {
	t.Helper()
	tbl := tabletest.Load(t, cat, keyedTable)
	out := map[int64]keyedRow{}
	tabletest.Each(t, tbl, func(rec arrow.RecordBatch) {
		ids, vs, ns := rec.Column(0).(*array.Int64), rec.Column(2).(*array.String), rec.Column(3).(*array.Int32)
		for i := range int(rec.NumRows()) {
			if _, dup := out[ids.Value(i)]; dup {
				t.Fatalf("key %d is in the table twice", ids.Value(i))
			}
			out[ids.Value(i)] = keyedRow{v: vs.Value(i), n: ns.Value(i)}
		}
	})
	return out
}

// persistRun is one process's keyed table in TestKeyIndexPersisted.
type persistRun struct {
	t    *testing.T
	w    *writer.Writer
	kt   *writer.KeyedTable
	want map[int64]keyedRow
	pos  *int64
	rng  *rand.Rand
}

// changes applies n random upserts and deletes of keys below 1,500 (most
// of them live) and, when commit, commits them into the model too.
func (r *persistRun) changes(n int, commit bool) {
	r.t.Helper()
	var ids []int64
	var ops []writer.Op
	var rows []keyedRow
	next := maps.Clone(r.want)
	seen := map[int64]bool{}
	for len(ids) < n {
		id := r.rng.Int64N(1500)
		if seen[id] {
			continue
		}
		seen[id] = true
		if r.rng.IntN(4) == 0 {
			ids, ops, rows = append(ids, id), append(ops, writer.OpDelete), append(rows, keyedRow{})
			delete(next, id)
			continue
		}
		row := keyedRow{v: "v" + strconv.Itoa(r.rng.IntN(1e6)), n: int32(r.rng.IntN(1000))}
		ids, ops, rows = append(ids, id), append(ops, writer.OpUpsert), append(rows, row)
		next[id] = row
	}
	*r.pos++
	if err := r.kt.Apply(writer.Changes{Record: persistRecord(r.kt.Schema(), ids, ops, rows), Ops: ops, Next: table.Positions{"p": *r.pos}}); err != nil {
		r.t.Fatal(err)
	}
	if !commit {
		return
	}
	if err := r.kt.Commit(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.want = next
}

// copyIndexDir copies what a process killed now leaves of the index
// directory (the page cache keeps every write to the mapped files).
func copyIndexDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		if d.Name() == "lock" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// tableIndexDir is the table's directory under an index root.
func tableIndexDir(t *testing.T, root string) string {
	t.Helper()
	ents, err := os.ReadDir(root)
	if err != nil || len(ents) != 1 {
		t.Fatalf("index root %s: %v, %d entries", root, err, len(ents))
	}
	return filepath.Join(root, ents[0].Name())
}

// TestKeyIndexPersisted runs a keyed table in one "process", does
// something between runs (a clean stop, a kill before or after a commit,
// damage to the index files, a compaction by another writer, a change of
// the key), and reopens it in another: the persisted index is validated
// and caught up, or rebuilt, as the case says; either way the table then
// takes updates of existing keys with exactly one row per key and the
// rows the model expects.
func TestKeyIndexPersisted(t *testing.T) {
	type env struct {
		root    string // the index root the second run uses
		cat     icecat.Catalog
		first   *persistRun
		crashAt *atomic.Int32 // 1: copy at the next AfterFlush, 2: at the next AfterCommit
		crashed chan struct{}
	}
	for _, tc := range []struct {
		name string
		// between ends the first run (it may change the table or files).
		between    func(t *testing.T, e *env)
		opened     string
		reason     string // substring of the rebuild reason
		caughtUpGT int    // a validated index read more than this many files
	}{
		{name: "clean stop", opened: writer.IndexOpenedValidated, caughtUpGT: -1,
			between: func(t *testing.T, e *env) { closeRun(t, e.first) }},
		{name: "killed between flush and commit", opened: writer.IndexOpenedValidated, caughtUpGT: -1,
			between: func(t *testing.T, e *env) {
				// Changes flushed (in the index, in files) but never
				// committed: the copy is what a SIGKILL leaves.
				e.crashAt.Store(1)
				e.first.changes(60, false)
				waitCrash(t, e.crashed)
				e.first.kt.Abort()
			}},
		{name: "killed after commit before the index was written", opened: writer.IndexOpenedValidated, caughtUpGT: 0,
			between: func(t *testing.T, e *env) {
				e.crashAt.Store(2)
				e.first.changes(60, true)
				waitCrash(t, e.crashed)
				e.first.kt.Abort()
			}},
		{name: "corrupt slots", opened: writer.IndexOpenedRebuilt, reason: "checksum",
			between: func(t *testing.T, e *env) {
				closeRun(t, e.first)
				dir := tableIndexDir(t, e.root)
				ents, _ := os.ReadDir(dir)
				for _, f := range ents {
					if strings.HasPrefix(f.Name(), "narrow.") {
						p := filepath.Join(dir, f.Name())
						b, err := os.ReadFile(p)
						if err != nil {
							t.Fatal(err)
						}
						clear(b[len(b)/4 : len(b)/2])
						if err := os.WriteFile(p, b, 0o644); err != nil {
							t.Fatal(err)
						}
					}
				}
			}},
		{name: "corrupt meta", opened: writer.IndexOpenedRebuilt, reason: "corrupt",
			between: func(t *testing.T, e *env) {
				closeRun(t, e.first)
				p := filepath.Join(tableIndexDir(t, e.root), "index.meta")
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				b = []byte(strings.Replace(string(b), `"snapshot-id":`, `"snapshot-id":1`, 1))
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "compaction between runs", opened: writer.IndexOpenedValidated, caughtUpGT: 0,
			between: func(t *testing.T, e *env) {
				closeRun(t, e.first)
				// Another writer, with an index of its own, compacts the
				// table (its own compaction) while changing it.
				reg := prometheus.NewRegistry()
				cfg := writer.DefaultConfig()
				cfg.CommitInterval = time.Hour
				w := writer.New(e.cat, cfg, writer.Options{Logger: quietLog(t), Metrics: writer.NewMetrics(reg)})
				defer w.Abort()
				kt, err := w.OpenKeyed(context.Background(), persistSpec(), "src", writer.KeyedOptions{
					HeapIndex: true, Compaction: compaction.KeyedConfig{MinInputFiles: 2},
				})
				if err != nil {
					t.Fatal(err)
				}
				r := &persistRun{t: t, w: w, kt: kt, want: e.first.want, pos: e.first.pos, rng: e.first.rng}
				for i := 0; i < 40 && metricValue(t, reg, "floe_writer_keyed_compactions_total", map[string]string{"result": writer.CompactionCommitted}) == 0; i++ {
					r.changes(20, true)
					time.Sleep(50 * time.Millisecond)
				}
				if metricValue(t, reg, "floe_writer_keyed_compactions_total", map[string]string{"result": writer.CompactionCommitted}) == 0 {
					t.Fatal("the other writer's compaction never committed")
				}
				closeRun(t, r)
				e.first.want = r.want
			}},
		{name: "key changed", opened: writer.IndexOpenedRebuilt, reason: "key changed",
			between: func(t *testing.T, e *env) {
				closeRun(t, e.first)
				tbl := tabletest.Load(t, e.cat, keyedTable)
				txn := tbl.NewTransaction()
				us := txn.UpdateSchema(true, false)
				us.SetIdentifierField([][]string{{"id"}, {"k2"}})
				if err := us.Commit(); err != nil {
					t.Fatal(err)
				}
				if _, err := txn.Commit(context.Background()); err != nil {
					t.Fatal(err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			e := &env{root: root, cat: tabletest.OpenSQLite(t), crashAt: &atomic.Int32{}, crashed: make(chan struct{})}
			crashRoot := t.TempDir()
			hook := func(at int32) func(string) {
				return func(string) {
					if e.crashAt.CompareAndSwap(at, 0) {
						copyIndexDir(t, root, crashRoot)
						e.root = crashRoot
						close(e.crashed)
					}
				}
			}
			cfg := writer.DefaultConfig()
			cfg.CommitInterval = time.Hour
			cfg.FlushBytes = 1 // every Apply flushes in the background
			w1 := writer.New(e.cat, cfg, writer.Options{Logger: quietLog(t), Hooks: writer.Hooks{AfterFlush: hook(1), AfterCommit: hook(2)}})
			defer w1.Abort()
			kt, err := w1.OpenKeyed(ctx, persistSpec(), "src", writer.KeyedOptions{IndexDir: root, Compaction: compaction.KeyedConfig{Disabled: true}})
			if err != nil {
				t.Fatal(err)
			}
			pos := int64(0)
			e.first = &persistRun{t: t, w: w1, kt: kt, want: map[int64]keyedRow{}, pos: &pos, rng: rand.New(rand.NewPCG(3, 4))}
			if got := kt.Index().Opened; got != writer.IndexOpenedEmpty {
				t.Errorf("first open: %s, want %s", got, writer.IndexOpenedEmpty)
			}
			for range 12 {
				e.first.changes(100, true)
			}
			tc.between(t, e)

			reg := prometheus.NewRegistry()
			w2 := writer.New(e.cat, writer.DefaultConfig(), writer.Options{Logger: quietLog(t), Metrics: writer.NewMetrics(reg)})
			defer w2.Abort()
			spec := persistSpec()
			kt2, err := w2.OpenKeyed(ctx, spec, "src", writer.KeyedOptions{IndexDir: e.root, Compaction: compaction.KeyedConfig{Disabled: true}})
			if err != nil {
				t.Fatal(err)
			}
			info := kt2.Index()
			t.Logf("reopened: %+v", info)
			if info.Opened != tc.opened || !strings.Contains(info.Reason, tc.reason) {
				t.Errorf("reopened: %s (%q), want %s (%q)", info.Opened, info.Reason, tc.opened, tc.reason)
			}
			if tc.opened == writer.IndexOpenedValidated && info.CaughtUpFiles <= tc.caughtUpGT {
				t.Errorf("caught up from %d files, want more than %d", info.CaughtUpFiles, tc.caughtUpGT)
			}
			if info.Dir == "" || info.MappedBytes == 0 {
				t.Errorf("index not persistent: %+v", info)
			}
			want := e.first.want
			if kt2.Len() != len(want) {
				t.Errorf("reopened: %d keys, want %d", kt2.Len(), len(want))
			}
			r := &persistRun{t: t, w: w2, kt: kt2, want: want, pos: e.first.pos, rng: rand.New(rand.NewPCG(5, 6))}
			for range 8 {
				r.changes(150, true)
			}
			if got := persistScan(t, e.cat); !maps.Equal(got, r.want) {
				t.Fatalf("the table holds %d rows, want %d", len(got), len(r.want))
			}
			closeRun(t, r)
			// A third run validates what the second left, with nothing to
			// catch up.
			w3 := writer.New(e.cat, writer.DefaultConfig(), writer.Options{Logger: quietLog(t)})
			defer w3.Abort()
			kt3, err := w3.OpenKeyed(ctx, spec, "src", writer.KeyedOptions{IndexDir: e.root, Compaction: compaction.KeyedConfig{Disabled: true}})
			if err != nil {
				t.Fatal(err)
			}
			if info := kt3.Index(); info.Opened != writer.IndexOpenedValidated || info.CaughtUpFiles != 0 || info.Keys != len(r.want) {
				t.Errorf("third open: %+v, want validated, nothing caught up, %d keys", info, len(r.want))
			}
			kt3.Abort()
		})
	}
}

func closeRun(t *testing.T, r *persistRun) {
	t.Helper()
	if err := r.kt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func waitCrash(t *testing.T, c chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(30 * time.Second):
		t.Fatal("the crash point was never reached")
	}
}

// TestKeyIndexSpill: a persistent index larger than the memory budget
// puts the writer over budget: one WARN, the mapped pages are dropped
// after every commit (spilled), commits go on, and the table stays
// exact.
func TestKeyIndexSpill(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	var logs strings.Builder
	cfg := writer.DefaultConfig()
	cfg.CommitInterval = time.Hour
	cfg.MemoryBudget = 1 << 20
	cfg.FlushBytes = 256 << 10
	w := writer.New(cat, cfg, writer.Options{Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil))})
	defer w.Abort()
	kt, err := w.OpenKeyed(ctx, persistSpec(), "src", writer.KeyedOptions{IndexDir: t.TempDir(), Compaction: compaction.KeyedConfig{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	pos := int64(0)
	r := &persistRun{t: t, w: w, kt: kt, want: map[int64]keyedRow{}, pos: &pos, rng: rand.New(rand.NewPCG(7, 8))}
	// 80,000 keys: 100,000 slots of 16 bytes, over the budget.
	for c := range int64(8) {
		var ids []int64
		var ops []writer.Op
		var rows []keyedRow
		for id := c * 10000; id < (c+1)*10000; id++ {
			row := keyedRow{v: "load", n: int32(id % 1000)}
			ids, ops, rows = append(ids, id), append(ops, writer.OpUpsert), append(rows, row)
			r.want[id] = row
		}
		pos++
		if err := kt.Apply(writer.Changes{Record: persistRecord(kt.Schema(), ids, ops, rows), Ops: ops, Next: table.Positions{"p": pos}}); err != nil {
			t.Fatal(err)
		}
		if err := kt.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		r.changes(200, true)
	}
	if info := kt.Index(); info.MappedBytes <= int64(cfg.MemoryBudget) {
		t.Fatalf("index %+v does not exceed the budget", info)
	}
	if n := strings.Count(logs.String(), "key indexes exceed the writer's memory budget"); n != 1 {
		t.Errorf("%d WARNs about the budget, want 1", n)
	}
	if got := persistScan(t, cat); !maps.Equal(got, r.want) {
		t.Fatalf("the table holds %d rows, want %d", len(got), len(r.want))
	}
	closeRun(t, r)
}

// lockedWriter serializes writes to w (the writer logs from its
// goroutines).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
