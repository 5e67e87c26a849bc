package compaction_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	icecompaction "github.com/apache/iceberg-go/table/compaction"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/benchutil"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
)

// The benchmark's scale. The spec is 1,000 files of ~1 MB into ~128 MB
// files; by default it runs 100 files of ~1 MB (one ~100 MB output) so the
// whole benchmark stays under two minutes on two cores. FLOE_BENCH_FILES
// and FLOE_BENCH_FILE_BYTES change it.
func benchScale() (files int, fileBytes int64) {
	files, fileBytes = 100, 1<<20
	if v, err := strconv.Atoi(os.Getenv("FLOE_BENCH_FILES")); err == nil && v > 0 {
		files = v
	}
	if v, err := strconv.ParseInt(os.Getenv("FLOE_BENCH_FILE_BYTES"), 10, 64); err == nil && v > 0 {
		fileBytes = v
	}
	return files, fileBytes
}

const benchTarget = 128 << 20

func benchSpec(name string) table.Spec {
	return table.Spec{
		Name: name,
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "user_id", Type: "long"},
			{Name: "url", Type: "string"},
			{Name: "amount", Type: "double"},
		},
		Properties: map[string]string{"write.target-file-size-bytes": strconv.Itoa(benchTarget)},
	}
}

// benchInput is the small files every contender rewrites.
type benchInput struct {
	cat   icecat.Catalog
	files []iceberg.DataFile
	rows  int64
	bytes int64
	// pqarrow's result, for the ratio the Floe run reports.
	pqRowsPerSec, pqRowsPerCPU float64
	// copies numbers the tables copyTable makes; -count reruns the
	// sub-benchmarks with the same input.
	copies int
}

func buildBenchInput(b *testing.B) *benchInput {
	b.Helper()
	ctx := context.Background()
	nfiles, fileBytes := benchScale()
	cat := tabletest.OpenSQLite(b)
	tbl, err := table.Ensure(ctx, cat, benchSpec("bench.src"))
	if err != nil {
		b.Fatal(err)
	}
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		b.Fatal(err)
	}
	// One WriteRecords call per file; the rows per file are measured on a
	// first sample file.
	var next int64
	batchOf := func(n int64) arrow.RecordBatch {
		rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		defer rb.Release()
		for i := next; i < next+n; i++ {
			h := uint64(i) * 0x9E3779B97F4A7C15
			rb.Field(0).(*array.Int64Builder).Append(i)
			rb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(day0.UnixMicro() + i*1000))
			rb.Field(2).(*array.Int64Builder).Append(int64(h>>40) % 100000)
			rb.Field(3).(*array.StringBuilder).Append(fmt.Sprintf("https://shop.example.com/p/%d?s=%08x", (i*40503)%50000, uint32(h>>32)))
			rb.Field(4).(*array.Float64Builder).Append(float64(i%10000) / 100)
		}
		next += n
		return rb.NewRecordBatch()
	}
	writeFile := func(rows int64) iceberg.DataFile {
		var out iceberg.DataFile
		recs := func(yield func(arrow.RecordBatch, error) bool) {
			for left := rows; left > 0; left -= min(left, 16384) {
				if !yield(batchOf(min(left, 16384)), nil) {
					return
				}
			}
		}
		for df, err := range icetable.WriteRecords(ctx, tbl, sc, recs, icetable.WithTargetFileSize(1<<40)) {
			if err != nil {
				b.Fatal(err)
			}
			out = df
		}
		return out
	}
	sample := writeFile(65536)
	rowsPerFile := max(1, int64(float64(fileBytes)/float64(sample.FileSizeBytes())*65536))
	in := &benchInput{cat: cat}
	for range nfiles {
		df := writeFile(rowsPerFile)
		in.files = append(in.files, df)
		in.rows += df.Count()
		in.bytes += df.FileSizeBytes()
	}
	b.Logf("input: %d files, %d rows, %.1f MB (%.2f MB per file)", len(in.files), in.rows, float64(in.bytes)/1e6, float64(in.bytes)/1e6/float64(len(in.files)))
	return in
}

// copyTable makes a new table holding exactly the input files, one commit,
// and returns it and its name.
func (in *benchInput) copyTable(b *testing.B, prefix string) (*icetable.Table, string) {
	b.Helper()
	ctx := context.Background()
	in.copies++
	name := fmt.Sprintf("bench.%s_%d", prefix, in.copies)
	tbl, err := table.Ensure(ctx, in.cat, benchSpec(name))
	if err != nil {
		b.Fatal(err)
	}
	txn := tbl.NewTransaction()
	if err := txn.AddDataFiles(ctx, in.files, nil); err != nil {
		b.Fatal(err)
	}
	if tbl, err = txn.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	return tbl, name
}

// heapSampler records the peak HeapInuse while it runs.
type heapSampler struct {
	stop chan struct{}
	done chan struct{}
	peak uint64
}

func startHeapSampler() *heapSampler {
	runtime.GC()
	s := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			s.peak = max(s.peak, ms.HeapInuse)
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *heapSampler) Stop() uint64 {
	close(s.stop)
	<-s.done
	return s.peak
}

// fullScan reads every row of the table and returns the time it took.
func fullScan(b *testing.B, cat icecat.Catalog, name string) time.Duration {
	b.Helper()
	tbl := tabletest.Load(b, cat, name)
	start := time.Now()
	tabletest.Each(b, tbl, func(arrow.RecordBatch) {})
	return time.Since(start)
}

func dataFileCount(b *testing.B, cat icecat.Catalog, name string) int {
	b.Helper()
	tbl := tabletest.Load(b, cat, name)
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return len(tasks)
}

// report reports throughput per wall second and per CPU second (the
// latter holds up on a shared machine), and the peak heap.
func report(b *testing.B, in *benchInput, elapsed, cpu time.Duration, peak uint64) float64 {
	rowsPerSec := float64(in.rows) * float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rowsPerSec, "rows/s")
	b.ReportMetric(float64(in.rows)*float64(b.N)/cpu.Seconds(), "rows/cpu-s")
	b.ReportMetric(float64(in.bytes)*float64(b.N)/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	return rowsPerSec
}

// BenchmarkCompaction rewrites the same small files three ways, in one
// run: a plain Parquet read+write with arrow-go's pqarrow (the floor),
// iceberg-go's own compaction (compaction.Analyze + Table.RewriteDataFiles)
// and Floe's (Compactor.Table, rewrite step only). It reports rows/s, MB/s
// of input, peak heap, and for the table paths the full-scan time before
// and after. Run with:
//
//	go test -run '^$' -bench BenchmarkCompaction -benchtime 1x ./compaction/
func BenchmarkCompaction(b *testing.B) {
	in := buildBenchInput(b)

	b.Run("pqarrow", func(b *testing.B) {
		dir := b.TempDir()
		var elapsed, cpu time.Duration
		var peak uint64
		b.StopTimer()
		for i := 0; i < b.N; i++ {
			s := startHeapSampler()
			b.StartTimer()
			start, cpu0 := time.Now(), benchutil.CPUTime()
			if err := pqarrowRewrite(in.files, filepath.Join(dir, fmt.Sprintf("out-%d.parquet", i))); err != nil {
				b.Fatal(err)
			}
			elapsed += time.Since(start)
			cpu += benchutil.CPUTime() - cpu0
			b.StopTimer()
			peak = max(peak, s.Stop())
		}
		in.pqRowsPerSec = report(b, in, elapsed, cpu, peak)
		in.pqRowsPerCPU = float64(in.rows) * float64(b.N) / cpu.Seconds()
	})

	b.Run("iceberg-go", func(b *testing.B) {
		var elapsed, cpu time.Duration
		var peak uint64
		var before, after time.Duration
		var filesAfter int
		b.StopTimer()
		for i := 0; i < b.N; i++ {
			tbl, name := in.copyTable(b, "icego")
			before += fullScan(b, in.cat, name)
			ctx := context.Background()
			cfg := icecompaction.DefaultConfig()
			cfg.TargetFileSizeBytes = benchTarget
			cfg.MinFileSizeBytes = benchTarget * 3 / 4
			cfg.MaxFileSizeBytes = benchTarget * 9 / 5
			s := startHeapSampler()
			b.StartTimer()
			start, cpu0 := time.Now(), benchutil.CPUTime()
			plan, err := icecompaction.Analyze(ctx, tbl, cfg)
			if err != nil {
				b.Fatal(err)
			}
			groups := make([]icetable.CompactionTaskGroup, len(plan.Groups))
			for j, g := range plan.Groups {
				groups[j] = icetable.CompactionTaskGroup{PartitionKey: g.PartitionKey, Tasks: g.Tasks, TotalSizeBytes: g.TotalSizeBytes}
			}
			if _, err := tbl.RewriteDataFiles(ctx, groups, icetable.RewriteDataFilesOptions{
				GroupOptions: []icetable.CompactionGroupOption{icetable.WithCompactionTargetFileSize(benchTarget)},
			}); err != nil {
				b.Fatal(err)
			}
			elapsed += time.Since(start)
			cpu += benchutil.CPUTime() - cpu0
			b.StopTimer()
			peak = max(peak, s.Stop())
			after += fullScan(b, in.cat, name)
			filesAfter = dataFileCount(b, in.cat, name)
		}
		report(b, in, elapsed, cpu, peak)
		b.ReportMetric(float64(before.Milliseconds())/float64(b.N), "scan-before-ms")
		b.ReportMetric(float64(after.Milliseconds())/float64(b.N), "scan-after-ms")
		b.ReportMetric(float64(filesAfter), "files-after")
	})

	b.Run("floe", func(b *testing.B) {
		var elapsed, cpu time.Duration
		var peak uint64
		var before, after time.Duration
		var filesAfter int
		off := false
		b.StopTimer()
		for i := 0; i < b.N; i++ {
			_, name := in.copyTable(b, "floe")
			before += fullScan(b, in.cat, name)
			c, err := compaction.New(in.cat, compaction.Config{
				Tables: []string{name}, RewriteManifests: &off, ExpireSnapshots: &off, RemoveOrphanFiles: &off,
			}, compaction.Options{Logger: quietLogger(b)})
			if err != nil {
				b.Fatal(err)
			}
			s := startHeapSampler()
			b.StartTimer()
			start, cpu0 := time.Now(), benchutil.CPUTime()
			rep, err := c.Table(context.Background(), name)
			if err != nil {
				b.Fatal(err)
			}
			elapsed += time.Since(start)
			cpu += benchutil.CPUTime() - cpu0
			b.StopTimer()
			peak = max(peak, s.Stop())
			if rep.FilesRewritten != len(in.files) {
				b.Logf("rewrote %d of %d files", rep.FilesRewritten, len(in.files))
			}
			after += fullScan(b, in.cat, name)
			filesAfter = dataFileCount(b, in.cat, name)
		}
		rowsPerSec := report(b, in, elapsed, cpu, peak)
		if in.pqRowsPerCPU > 0 {
			b.ReportMetric(float64(in.rows)*float64(b.N)/cpu.Seconds()/in.pqRowsPerCPU, "x-pqarrow-cpu")
		}
		b.ReportMetric(float64(before.Milliseconds())/float64(b.N), "scan-before-ms")
		b.ReportMetric(float64(after.Milliseconds())/float64(b.N), "scan-after-ms")
		b.ReportMetric(float64(filesAfter), "files-after")
		if in.pqRowsPerSec > 0 {
			b.ReportMetric(rowsPerSec/in.pqRowsPerSec, "x-pqarrow")
		}
	})
}

// pqarrowRewrite reads the files with pqarrow and writes their rows into
// out, zstd as the tables are, in row groups as iceberg-go writes them.
func pqarrowRewrite(files []iceberg.DataFile, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close() //nolint:errcheck // closed explicitly below on success
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithMaxRowGroupLength(1<<20),
		parquet.WithDataPageSize(1<<20),
	)
	var w *pqarrow.FileWriter
	for _, df := range files {
		path := strings.TrimPrefix(df.FilePath(), "file://")
		pr, err := file.OpenParquetFile(path, false)
		if err != nil {
			return err
		}
		fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
		if err != nil {
			return err
		}
		rr, err := fr.GetRecordReader(context.Background(), nil, nil)
		if err != nil {
			return err
		}
		for rr.Next() {
			rec := rr.RecordBatch()
			if w == nil {
				if w, err = pqarrow.NewFileWriter(rec.Schema(), f, props, pqarrow.DefaultWriterProps()); err != nil {
					return err
				}
			}
			if err := w.WriteBuffered(rec); err != nil {
				return err
			}
		}
		if err := rr.Err(); err != nil {
			return err
		}
		rr.Release()
		if err := pr.Close(); err != nil {
			return err
		}
	}
	if w != nil {
		if err := w.Close(); err != nil {
			return err
		}
	}
	return nil
}
