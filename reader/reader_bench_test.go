package reader_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/benchutil"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// benchRowsDefault is one snapshot's rows: a minute of a modest stream
// (33 rows/s). FLOE_BENCH_ROWS overrides it.
const benchRowsDefault = 2000

func benchSpec(name string) table.Spec {
	return table.Spec{
		Name: name,
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "name", Type: "string"},
			{Name: "amount", Type: "double"},
		},
	}
}

func benchBatch(sc *arrow.Schema, from, rows int64) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := from; i < from+rows; i++ {
		b.Field(0).(*array.Int64Builder).Append(i)
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(day0.Add(time.Duration(i) * 30 * time.Millisecond).UnixMicro()))
		b.Field(2).(*array.StringBuilder).Append("event-" + strconv.FormatInt(i%1000, 10))
		b.Field(3).(*array.Float64Builder).Append(float64(i) / 7)
	}
	return b.NewRecordBatch()
}

// buildBenchTable creates name with n append snapshots of rows rows
// each (one data file per snapshot), committed straight through iceberg-go.
func buildBenchTable(b *testing.B, ctx context.Context, cat icecat.Catalog, name string, n int, rows int64) *icetable.Table {
	b.Helper()
	tbl, err := table.Ensure(ctx, cat, benchSpec(name))
	if err != nil {
		b.Fatal(err)
	}
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		b.Fatal(err)
	}
	// Up to 60 snapshots per catalog commit: each AddDataFiles of a
	// transaction stages its own snapshot, so the history is the same as
	// with one commit per snapshot, built without rewriting the growing
	// metadata file for every snapshot.
	for i := 0; i < n; {
		txn := tbl.NewTransaction()
		for end := min(i+60, n); i < end; i++ {
			rec := benchBatch(sc, int64(i)*rows, rows)
			var files []iceberg.DataFile
			for df, err := range icetable.WriteRecords(ctx, tbl, sc, func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }) {
				if err != nil {
					b.Fatal(err)
				}
				files = append(files, df)
			}
			if err := txn.AddDataFiles(ctx, files, nil, icetable.WithoutDuplicateCheck()); err != nil {
				b.Fatal(err)
			}
		}
		if tbl, err = txn.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if got := len(tbl.Metadata().Snapshots()); got != n {
		b.Fatalf("built %d snapshots, want %d", got, n)
	}
	return tbl
}

// fresh returns a new table object over tbl's metadata and IO: nothing
// cached, as after a load.
func fresh(tbl *icetable.Table, fs iceio.IO) *icetable.Table {
	return icetable.New(tbl.Identifier(), tbl.Metadata(), tbl.MetadataLocation(),
		func(context.Context) (iceio.IO, error) { return fs, nil }, nil)
}

// appendBench commits one more append snapshot of rows rows to tbl.
func appendBench(b *testing.B, ctx context.Context, tbl *icetable.Table, from, rows int64) *icetable.Table {
	b.Helper()
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		b.Fatal(err)
	}
	rec := benchBatch(sc, from, rows)
	var files []iceberg.DataFile
	for df, err := range icetable.WriteRecords(ctx, tbl, sc, func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }) {
		if err != nil {
			b.Fatal(err)
		}
		files = append(files, df)
	}
	txn := tbl.NewTransaction()
	if err := txn.AddDataFiles(ctx, files, nil, icetable.WithoutDuplicateCheck()); err != nil {
		b.Fatal(err)
	}
	out, err := txn.Commit(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

func envInt(b *testing.B, name string, def, least int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		b.Fatalf("%s=%q: want a number >= %d", name, v, least)
	}
	return n
}

// BenchmarkReader compares an incremental read of one snapshot's rows from
// a table with a long history (FLOE_BENCH_SNAPSHOTS append snapshots,
// default 1440: a day of one-minute commits, of FLOE_BENCH_ROWS rows each,
// default 2000) with the same read from a table with one snapshot; then the
// same after the long table's manifests were rewritten (as manifest
// maintenance keeps them) and one more snapshot appended; and a full scan of
// the long table with plain Parquet decoding (pqarrow) of the same files.
// Each read uses a new table object over the loaded metadata, so nothing is
// cached between iterations; loading the metadata is reported separately
// (load-ms). The ratio sub-benchmarks alternate the two reads and report
// wall and CPU time.
//
//	go test -run '^$' -bench BenchmarkReader -benchtime 200x ./reader/
func BenchmarkReader(b *testing.B) {
	ctx := context.Background()
	n := envInt(b, "FLOE_BENCH_SNAPSHOTS", 1440, 2)
	rows := int64(envInt(b, "FLOE_BENCH_ROWS", benchRowsDefault, 1))
	cat := tabletest.OpenSQLite(b)
	start := time.Now()
	many := buildBenchTable(b, ctx, cat, "bench.many", n, rows)
	b.Logf("built a table with %d snapshots of %d rows in %s", n, rows, time.Since(start).Round(time.Millisecond))
	one := buildBenchTable(b, ctx, cat, "bench.one", 1, rows)
	fs, err := many.FS(ctx)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC() // the build's garbage is not the reads' cost
	r := newReader(b, cat, "bench.many", reader.Config{})
	rOne := newReader(b, cat, "bench.one", reader.Config{})

	readOnce := func(b *testing.B, r *reader.Reader, tbl *icetable.Table, last *icetable.Snapshot) {
		var from int64
		if last.ParentSnapshotID != nil {
			from = *last.ParentSnapshotID
		}
		st, err := r.ChangesIn(ctx, fresh(tbl, fs), from, last.SnapshotID)
		if err != nil {
			b.Fatal(err)
		}
		if got := countRows(b, st); got != rows {
			b.Fatalf("read %d rows, want %d", got, rows)
		}
	}
	loadMs := func(b *testing.B, name string) {
		ident, _ := table.ParseIdent(name)
		t0 := time.Now()
		const loads = 5
		for range loads {
			if _, err := cat.LoadTable(ctx, ident); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(time.Since(t0).Milliseconds())/loads, "load-ms")
	}
	ratio := func(b *testing.B, tbl *icetable.Table) {
		// Alternate the two reads so both see the same machine load; CPU
		// time is reported too, as other processes do not inflate it.
		var wallMany, wallOne, cpuMany, cpuOne time.Duration
		last, oneLast := tbl.CurrentSnapshot(), one.CurrentSnapshot()
		for b.Loop() {
			w0, c0 := time.Now(), benchutil.CPUTime()
			readOnce(b, r, tbl, last)
			w1, c1 := time.Now(), benchutil.CPUTime()
			readOnce(b, rOne, one, oneLast)
			wallMany += w1.Sub(w0)
			cpuMany += c1 - c0
			wallOne += time.Since(w1)
			cpuOne += benchutil.CPUTime() - c1
		}
		nOps := float64(b.N)
		b.ReportMetric(float64(wallMany.Nanoseconds())/nOps, "many-ns/op")
		b.ReportMetric(float64(wallOne.Nanoseconds())/nOps, "one-ns/op")
		b.ReportMetric(float64(wallMany)/float64(wallOne), "many/one")
		if cpuOne > 0 {
			b.ReportMetric(float64(cpuMany.Nanoseconds())/nOps, "many-cpu-ns/op")
			b.ReportMetric(float64(cpuOne.Nanoseconds())/nOps, "one-cpu-ns/op")
			b.ReportMetric(float64(cpuMany)/float64(cpuOne), "many/one-cpu")
		}
		b.ReportMetric(float64(len(tbl.Metadata().Snapshots())), "snapshots")
	}

	b.Run("incremental/many-snapshots", func(b *testing.B) {
		last := many.CurrentSnapshot()
		for b.Loop() {
			readOnce(b, r, many, last)
		}
		loadMs(b, "bench.many")
	})
	b.Run("incremental/one-snapshot", func(b *testing.B) {
		last := one.CurrentSnapshot()
		for b.Loop() {
			readOnce(b, rOne, one, last)
		}
		loadMs(b, "bench.one")
	})
	b.Run("incremental/ratio", func(b *testing.B) { ratio(b, many) })

	// Manifest maintenance: one manifest list entry per 8MB of manifests
	// instead of one per snapshot; then one more minute of rows.
	txn := many.NewTransaction()
	if _, err := txn.RewriteManifests(ctx); err != nil {
		b.Fatal(err)
	}
	if many, err = txn.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	many = appendBench(b, ctx, many, int64(n)*rows, rows)
	manifests, err := many.CurrentSnapshot().Manifests(fs)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	b.Run("incremental/ratio-rewritten-manifests", func(b *testing.B) {
		ratio(b, many)
		b.ReportMetric(float64(len(manifests)), "manifests")
	})

	// Full scans of the long table: Floe's reader vs pqarrow alone.
	total := int64(n+1) * rows
	var paths []string
	tasks, err := many.Scan().PlanFiles(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range tasks {
		paths = append(paths, strings.TrimPrefix(t.File.FilePath(), "file://"))
	}
	var floeRate float64
	b.Run("fullscan/floe", func(b *testing.B) {
		var elapsed time.Duration
		for b.Loop() {
			t0 := time.Now()
			st, err := r.SnapshotIn(ctx, fresh(many, fs), reader.At{})
			if err != nil {
				b.Fatal(err)
			}
			got := countRows(b, st)
			elapsed += time.Since(t0)
			if got != total {
				b.Fatalf("scanned %d rows, want %d", got, total)
			}
		}
		floeRate = float64(total) * float64(b.N) / elapsed.Seconds()
		b.ReportMetric(floeRate, "rows/s")
	})
	b.Run("fullscan/pqarrow", func(b *testing.B) {
		workers := r.Config().Concurrency
		var elapsed time.Duration
		for b.Loop() {
			t0 := time.Now()
			got := decodeParquet(b, paths, workers)
			elapsed += time.Since(t0)
			if got != total {
				b.Fatalf("decoded %d rows, want %d", got, total)
			}
		}
		pqRate := float64(total) * float64(b.N) / elapsed.Seconds()
		b.ReportMetric(pqRate, "rows/s")
		if floeRate > 0 {
			b.ReportMetric(floeRate/pqRate, "floe/pqarrow")
		}
	})
}

// decodeParquet decodes every file with pqarrow, workers files at a time,
// and returns the rows.
func decodeParquet(b *testing.B, paths []string, workers int) int64 {
	var rows atomic.Int64
	work := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				pf, err := file.OpenParquetFile(p, false)
				if err != nil {
					b.Error(err)
					continue
				}
				fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 17}, memory.DefaultAllocator)
				if err != nil {
					b.Error(err)
					continue
				}
				rr, err := fr.GetRecordReader(context.Background(), nil, nil)
				if err != nil {
					b.Error(err)
					continue
				}
				for rr.Next() {
					rows.Add(rr.RecordBatch().NumRows())
				}
				if err := rr.Err(); err != nil {
					b.Error(err)
				}
				rr.Release()
				_ = pf.Close()
			}
		}()
	}
	for _, p := range paths {
		work <- p
	}
	close(work)
	wg.Wait()
	return rows.Load()
}
