package writer_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

var day0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func spec() table.Spec {
	return table.Spec{
		Name: "ods.rows",
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "name", Type: "string"},
			{Name: "amount", Type: "decimal(18,2)"},
		},
		Partition: []table.PartitionField{{Column: "ts", Transform: "day"}},
	}
}

// rowAt is row i: ids 0.., three days of timestamps, every 7th name null.
func rowAt(i int64) (ts time.Time, name string, null bool, cents int64) {
	return day0.Add(time.Duration(i%3)*24*time.Hour + time.Duration(i)*time.Millisecond), fmt.Sprintf("n%d", i), i%7 == 0, i * 3
}

func build(sc *arrow.Schema, from, to int64) arrow.RecordBatch {
	var rows [][]any
	for i := from; i < to; i++ {
		ts, name, null, cents := rowAt(i)
		var n any = name
		if null {
			n = nil
		}
		rows = append(rows, []any{i, ts, n, decimal128FromInt(cents)})
	}
	return tabletest.Record(sc, rows...)
}

func newWriter(t *testing.T, cat icecat.Catalog, cfg writer.Config) *writer.Writer {
	t.Helper()
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w := writer.New(cat, cfg, writer.Options{})
	t.Cleanup(w.Abort)
	return w
}

func ensure(t *testing.T, cat icecat.Catalog) {
	t.Helper()
	if _, err := table.Ensure(context.Background(), cat, spec()); err != nil {
		t.Fatal(err)
	}
}

// openRows opens ods.rows for source src on w, failing the test on error.
func openRows(t *testing.T, w *writer.Writer, src string) (table.Positions, *arrow.Schema) {
	t.Helper()
	pos, sc, err := w.Open("ods.rows", src)
	if err != nil {
		t.Fatal(err)
	}
	return pos, sc
}

// writeRows writes rows [from, to) to ods.rows for source src, moving its
// partition part to to, failing the test on error.
func writeRows(t *testing.T, w *writer.Writer, src, part string, sc *arrow.Schema, from, to int64) {
	t.Helper()
	if err := w.Write(writer.Batch{Table: "ods.rows", Source: src, Record: build(sc, from, to), Next: table.Positions{part: to}}); err != nil {
		t.Fatal(err)
	}
}

// commit commits w, failing the test on error.
func commit(t *testing.T, w *writer.Writer) {
	t.Helper()
	if err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// readIDs scans the table and returns every id, sorted.
func readIDs(t *testing.T, cat icecat.Catalog, name string) []int64 {
	t.Helper()
	return tabletest.Int64s(t, tabletest.Load(t, cat, name), "id")
}

func TestRoundTrip(t *testing.T) {
	tabletest.EachWarehouse(t, func(t *testing.T, cat icecat.Catalog) {
		ctx := context.Background()
		ensure(t, cat)
		w := newWriter(t, cat, writer.Config{CommitInterval: time.Hour})
		pos, sc := openRows(t, w, "src")
		if len(pos) != 0 {
			t.Fatalf("new table has positions %v", pos)
		}
		const n = 20000
		for from := int64(0); from < n; from += 1000 {
			writeRows(t, w, "src", "p0", sc, from, from+1000)
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		tabletest.CheckIDs(t, readIDs(t, cat, "ods.rows"), n)

		tbl := tabletest.Load(t, cat, "ods.rows")
		if got := len(tbl.Metadata().Snapshots()); got != 1 {
			t.Fatalf("%d snapshots, want one commit", got)
		}
		pm, _ := table.CurrentPositions(tbl)
		if pm["src"]["p0"] != n {
			t.Fatalf("positions in the snapshot: %v", pm)
		}
		checkFileStats(t, tbl)
	})
}

// checkFileStats reads each data file's rows and compares them with its
// partition value and manifest column stats.
func checkFileStats(t *testing.T, tbl *icetable.Table) {
	t.Helper()
	ctx := context.Background()
	scan := tbl.Scan()
	tasks, err := scan.PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) < 3 {
		t.Fatalf("%d files for 3 days of rows, want one per day at least", len(tasks))
	}
	idField, nameField := 1, 3
	for _, task := range tasks {
		df := task.File
		_, recs, err := scan.ReadTasks(ctx, []icetable.FileScanTask{task})
		if err != nil {
			t.Fatal(err)
		}
		var rows, nulls int64
		minID, maxID := int64(1<<62), int64(-1)
		days := map[int32]bool{}
		for rec, err := range recs {
			if err != nil {
				t.Fatal(err)
			}
			ids := rec.Column(0).(*array.Int64)
			ts := rec.Column(1).(*array.Timestamp)
			names := rec.Column(2).(*array.String)
			for i := 0; i < int(rec.NumRows()); i++ {
				rows++
				minID, maxID = min(minID, ids.Value(i)), max(maxID, ids.Value(i))
				if names.IsNull(i) {
					nulls++
				}
				days[int32(int64(ts.Value(i))/86_400_000_000)] = true
			}
			rec.Release()
		}
		if df.Count() != rows {
			t.Errorf("%s: record count %d, file has %d rows", df.FilePath(), df.Count(), rows)
		}
		if len(days) != 1 {
			t.Errorf("%s: rows from %d days in one day partition", df.FilePath(), len(days))
		}
		for d := range days {
			if got := df.Partition()[1000]; fmt.Sprint(got) != fmt.Sprint(d) {
				t.Errorf("%s: partition value %v, rows are on day %d", df.FilePath(), got, d)
			}
		}
		lo := int64(binary.LittleEndian.Uint64(df.LowerBoundValues()[idField]))
		hi := int64(binary.LittleEndian.Uint64(df.UpperBoundValues()[idField]))
		if lo != minID || hi != maxID {
			t.Errorf("%s: id bounds [%d, %d], rows span [%d, %d]", df.FilePath(), lo, hi, minID, maxID)
		}
		if got := df.NullValueCounts()[nameField]; got != nulls {
			t.Errorf("%s: name null count %d, rows have %d", df.FilePath(), got, nulls)
		}
	}
}

func TestResumeFromTablePositions(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	ensure(t, cat)
	w := newWriter(t, cat, writer.Config{CommitInterval: time.Hour})
	_, sc := openRows(t, w, "src")
	writeRows(t, w, "src", "p0", sc, 0, 100)
	commit(t, w)
	writeRows(t, w, "src", "p0", sc, 100, 150) // buffered, never committed: the process "dies"
	w.Abort()

	w2 := newWriter(t, cat, writer.Config{CommitInterval: time.Hour})
	pos, _ := openRows(t, w2, "src")
	if pos["p0"] != 100 {
		t.Fatalf("resumed at %v, want p0=100", pos)
	}
	writeRows(t, w2, "src", "p0", sc, pos["p0"], 200)
	if err := w2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	tabletest.CheckIDs(t, readIDs(t, cat, "ods.rows"), 200)
}

func TestZombieIsFenced(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	ensure(t, cat)
	zombie := newWriter(t, cat, writer.Config{CommitInterval: time.Hour})
	_, sc := openRows(t, zombie, "src")
	// The zombie buffers p0 [0,100) but loses the partition before it commits.
	writeRows(t, zombie, "src", "p0", sc, 0, 100)
	owner := newWriter(t, cat, writer.Config{CommitInterval: time.Hour})
	openRows(t, owner, "src")
	writeRows(t, owner, "src", "p0", sc, 0, 120)
	commit(t, owner)
	if err := zombie.Commit(ctx); !errors.Is(err, table.ErrFenced) {
		t.Fatalf("zombie commit: %v, want ErrFenced", err)
	}
	// Once failed, the zombie refuses further writes.
	if err := zombie.Write(writer.Batch{Table: "ods.rows", Source: "src", Next: table.Positions{"p0": 130}}); !errors.Is(err, table.ErrFenced) {
		t.Fatalf("write after fencing: %v", err)
	}
	tabletest.CheckIDs(t, readIDs(t, cat, "ods.rows"), 120)
}

func TestConcurrentWriters(t *testing.T) {
	tabletest.EachWarehouse(t, func(t *testing.T, cat icecat.Catalog) {
		ctx := context.Background()
		ensure(t, cat)
		const writers, commits, per = 2, 8, 50
		var wg sync.WaitGroup
		var mu sync.Mutex
		snapshots := map[int64]bool{}
		for k := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				src := fmt.Sprintf("w%d", k)
				w := writer.New(cat, writer.Config{CommitInterval: time.Hour, WriterID: src}, writer.Options{OnCommit: func(ci writer.CommitInfo) {
					mu.Lock()
					snapshots[ci.SnapshotID] = true
					mu.Unlock()
				}})
				defer w.Abort()
				_, sc, err := w.Open("ods.rows", src)
				if err != nil {
					t.Error(err)
					return
				}
				for c := range commits {
					from := int64(k*commits*per + c*per)
					if err := w.Write(writer.Batch{Table: "ods.rows", Source: src, Record: build(sc, from, from+per), Next: table.Positions{"p": int64(c+1) * per}}); err != nil {
						t.Error(err)
						return
					}
					if err := w.Commit(ctx); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		tabletest.CheckIDs(t, readIDs(t, cat, "ods.rows"), writers*commits*per)
		tbl := tabletest.Load(t, cat, "ods.rows")
		if got := len(tbl.Metadata().Snapshots()); got != writers*commits || len(snapshots) != writers*commits {
			t.Fatalf("%d snapshots in the table, %d reported, want %d", got, len(snapshots), writers*commits)
		}
		pm, _ := table.CurrentPositions(tbl)
		for k := range writers {
			if got := pm[fmt.Sprintf("w%d", k)]["p"]; got != commits*per {
				t.Errorf("writer %d position %d, want %d", k, got, commits*per)
			}
		}
	})
}

func TestBackpressureBoundsMemory(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	ensure(t, cat)
	budget := writer.Bytes(2 << 20)
	w := newWriter(t, cat, writer.Config{CommitInterval: time.Hour, MemoryBudget: budget, FlushBytes: budget / 4})
	_, sc := openRows(t, w, "src")
	probe := build(sc, 0, 2000)
	batchBytes := int64(0)
	for _, c := range probe.Columns() {
		for _, b := range c.Data().Buffers() {
			if b != nil {
				batchBytes += int64(b.Len())
			}
		}
	}
	probe.Release()
	reg := w // keep the same writer
	const n = 200000
	for from := int64(0); from < n; from += 2000 {
		if err := reg.Write(writer.Batch{Table: "ods.rows", Source: "src", Record: build(sc, from, from+2000), Next: table.Positions{"p0": from + 2000}}); err != nil {
			t.Fatal(err)
		}
		if got := w.Buffered(); got > int64(budget)+batchBytes {
			t.Fatalf("buffered %d bytes, budget %d", got, budget)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	tabletest.CheckIDs(t, readIDs(t, cat, "ods.rows"), n)
}

// TestBudgetCountsCapacity: the memory budget counts what a batch's
// buffers hold, not the bytes in use: a builder that reserved ahead holds
// its whole reservation until the batch is released.
func TestBudgetCountsCapacity(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	ensure(t, cat)
	w := newWriter(t, cat, writer.Config{CommitInterval: time.Hour})
	_, sc := openRows(t, w, "src")
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	b.Reserve(100000)
	b.Field(2).(*array.StringBuilder).ReserveData(1 << 20)
	b.Field(0).(*array.Int64Builder).Append(1)
	b.Field(1).(*array.TimestampBuilder).Append(0)
	b.Field(2).(*array.StringBuilder).Append("one")
	b.Field(3).(*array.Decimal128Builder).Append(decimal128FromInt(1))
	rec := b.NewRecordBatch()
	var used, held int64
	for _, c := range rec.Columns() {
		for _, buf := range c.Data().Buffers() {
			if buf != nil {
				used += int64(buf.Len())
				held += int64(buf.Cap())
			}
		}
	}
	if held < 4*used {
		t.Fatalf("the batch holds %d bytes and uses %d: the builder did not reserve ahead", held, used)
	}
	if err := w.Write(writer.Batch{Table: "ods.rows", Source: "src", Record: rec, Next: table.Positions{"p0": 1}}); err != nil {
		t.Fatal(err)
	}
	if got := w.Buffered(); got != held {
		t.Fatalf("buffered %d bytes, want the %d the batch holds (it uses %d)", got, held, used)
	}
}

func decimal128FromInt(v int64) decimal128Num { return decimal128New(v) }

func TestResyncAfterAnotherProcessCommitted(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	ensure(t, cat)
	a := newWriter(t, cat, writer.Config{CommitInterval: time.Hour})
	_, sc := openRows(t, a, "k")
	writeRows(t, a, "k", "t/0", sc, 0, 10)
	commit(t, a)
	// t/0 moves to process b, which commits up to 30, then comes back.
	b := newWriter(t, cat, writer.Config{CommitInterval: time.Hour})
	pos, _ := openRows(t, b, "k")
	writeRows(t, b, "k", "t/0", sc, pos["t/0"], 30)
	commit(t, b)
	got, err := a.Resync(ctx, "ods.rows", "k", []string{"t/0"})
	if err != nil {
		t.Fatal(err)
	}
	if got["t/0"] != 30 {
		t.Fatalf("resync returned %v, want t/0=30", got)
	}
	writeRows(t, a, "k", "t/0", sc, 30, 40)
	if err := a.Commit(ctx); err != nil {
		t.Fatalf("commit after resync: %v", err)
	}
	tabletest.CheckIDs(t, readIDs(t, cat, "ods.rows"), 40)
}
