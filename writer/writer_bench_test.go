package writer_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/benchutil"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/source/gen"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// The writer benchmarks write the same clickstream rows (the generator's
// events, 4 partitions, day partitioning, zstd) four ways in one run, so
// their ratios are comparable:
//
//	BenchmarkEncodeParquet      plain pqarrow encode to memory: the limit
//	BenchmarkIcebergAppend      iceberg-go's own Table.Append: the baseline
//	BenchmarkWriter             Floe's writer, one commit
//	BenchmarkGenerateAndWrite   generator → writer → local warehouse
//
// Each reports rows/cpu-s (CPU time of the whole process: work on both
// cores counts), rows/s and peak-rss-MiB.

const benchRows = 1 << 20

// collect is a Sink that keeps the generator's event batches in memory.
type collect struct {
	writer.Sink // the generator only opens and writes

	sc   *arrow.Schema
	recs []arrow.RecordBatch
	rows int64
}

func (c *collect) Open(tbl, source string) (table.Positions, *arrow.Schema, error) {
	return nil, c.sc, nil
}

func (c *collect) Write(b writer.Batch) error {
	if b.Record == nil {
		return nil
	}
	if b.Table != "ods.events" {
		b.Record.Release()
		return nil
	}
	c.recs = append(c.recs, b.Record)
	c.rows += b.Record.NumRows()
	return nil
}

var benchData struct {
	once sync.Once
	sc   *arrow.Schema
	recs []arrow.RecordBatch
	err  error
}

func genConfig(rowsPerPartition int64) gen.Config {
	cfg := gen.DefaultConfig()
	cfg.Partitions = 4
	cfg.RowsPerPartition = rowsPerPartition
	cfg.BadFraction = 0
	cfg.OrdersTable = ""
	return cfg
}

// eventsData generates benchRows events once per benchmark binary.
func eventsData(b *testing.B) (*arrow.Schema, []arrow.RecordBatch) {
	b.Helper()
	benchData.once.Do(func() {
		sc, err := table.Spec(gen.EventsSpec("ods.events")).IcebergSchema()
		if err != nil {
			benchData.err = err
			return
		}
		asc, err := icetable.SchemaToArrowSchema(sc, nil, true, false)
		if err != nil {
			benchData.err = err
			return
		}
		g, err := gen.New(genConfig(benchRows / 4))
		if err != nil {
			benchData.err = err
			return
		}
		c := &collect{sc: asc}
		if err := g.Run(context.Background(), c); err != nil {
			benchData.err = err
			return
		}
		benchData.sc, benchData.recs = asc, c.recs
	})
	if benchData.err != nil {
		b.Fatal(benchData.err)
	}
	for _, r := range benchData.recs {
		r.Retain()
	}
	return benchData.sc, benchData.recs
}

func BenchmarkEncodeParquet(b *testing.B) {
	sc, recs := eventsData(b)
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithStats(true))
	var buf bytes.Buffer
	m := benchutil.Start(b)
	for i := 0; i < b.N; i++ {
		buf.Reset()
		w, err := pqarrow.NewFileWriter(sc, &buf, props, pqarrow.DefaultWriterProps())
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range recs {
			if err := w.WriteBuffered(r); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	m.Stop(b, int64(b.N)*benchRows)
}

func benchCatalog(b *testing.B) icecat.Catalog {
	b.Helper()
	cat := tabletest.OpenSQLite(b)
	if _, err := table.Ensure(context.Background(), cat, gen.EventsSpec("ods.events")); err != nil {
		b.Fatal(err)
	}
	return cat
}

func BenchmarkIcebergAppend(b *testing.B) {
	sc, recs := eventsData(b)
	cat := benchCatalog(b)
	ident, _ := table.ParseIdent("ods.events")
	ctx := context.Background()
	m := benchutil.Start(b)
	for i := 0; i < b.N; i++ {
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range recs {
			r.Retain()
		}
		rdr, err := array.NewRecordReader(sc, recs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tbl.Append(ctx, rdr, nil); err != nil {
			b.Fatal(err)
		}
		rdr.Release()
	}
	m.Stop(b, int64(b.N)*benchRows)
}

func BenchmarkWriter(b *testing.B) {
	benchWriter(b, writer.Config{CommitInterval: time.Hour})
}

// BenchmarkZstdLevel is BenchmarkWriter at zstd level 1 (ingest's
// default, writer.zstd-level) and 3 (zstd's default, what the table's
// files get from compaction and from the baselines above): rows/cpu-s and
// the MiB of data files each writes.
func BenchmarkZstdLevel(b *testing.B) {
	for _, level := range []int{1, 3} {
		b.Run(fmt.Sprintf("level-%d", level), func(b *testing.B) {
			benchWriter(b, writer.Config{CommitInterval: time.Hour, ZstdLevel: level})
		})
	}
}

// benchWriter writes the benchmark's rows through a writer with cfg, one
// commit per iteration, and reports rows/cpu-s and file-MiB per iteration.
func benchWriter(b *testing.B, cfg writer.Config) {
	_, recs := eventsData(b)
	cat := benchCatalog(b)
	ctx := context.Background()
	var nbytes int64
	m := benchutil.Start(b)
	for i := 0; i < b.N; i++ {
		w := writer.New(cat, cfg, writer.Options{OnCommit: func(ci writer.CommitInfo) { nbytes += ci.Bytes }})
		if _, _, err := w.Open("ods.events", "bench"); err != nil {
			b.Fatal(err)
		}
		for j, r := range recs {
			r.Retain()
			if err := w.Write(writer.Batch{Table: "ods.events", Source: "bench", Record: r, Next: table.Positions{"p": int64(i*len(recs) + j + 1)}}); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	m.Stop(b, int64(b.N)*benchRows)
	b.ReportMetric(float64(nbytes)/float64(b.N)/(1<<20), "file-MiB")
}

// BenchmarkGenerateAndWrite runs under the memory limit floe ingest sets
// for the default writer config (writer.Config.MemoryLimit), on top of
// what the process holds already, unless GOMEMLIMIT is set. Its peak RSS
// is the writer's only when it runs alone (-bench 'GenerateAndWrite$'):
// the other benchmarks keep a million rows in memory.
func BenchmarkGenerateAndWrite(b *testing.B) {
	cat := benchCatalog(b)
	ctx := context.Background()
	if os.Getenv("GOMEMLIMIT") == "" {
		cfg := writer.DefaultConfig()
		cfg.ApplyDefaults()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		// What floe ingest's limit comes to beside ~64 MiB of the
		// binary's pages (internal/memlimit).
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(ms.HeapAlloc) + int64(cfg.MemoryLimit) - 64<<20))
	}
	m := benchutil.Start(b)
	for i := 0; i < b.N; i++ {
		// A fresh source id per iteration: each writes benchRows new rows.
		cfg := genConfig(benchRows / 4)
		cfg.ID = fmt.Sprintf("gen%d", i)
		g, err := gen.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		w := writer.New(cat, writer.Config{CommitInterval: time.Hour}, writer.Options{})
		if err := g.Run(ctx, w); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	m.Stop(b, int64(b.N)*benchRows)
}

// BenchmarkCommitLatency commits 1,000 rows at a time, 100 times, and
// reports the commit latency's p50 and p99 on SQLite with a local
// warehouse and with MinIO.
func BenchmarkCommitLatency(b *testing.B) {
	whs := []struct {
		name string
		open func(b *testing.B) icecat.Catalog
	}{
		{"local", func(b *testing.B) icecat.Catalog { return tabletest.OpenSQLite(b) }},
		{"minio", func(b *testing.B) icecat.Catalog {
			s3 := testenv.MinIO(b)
			dir := b.TempDir()
			return tabletest.Open(b, testenvConfig(dir, s3, s3.Bucket(b)))
		}},
	}
	for _, wh := range whs {
		b.Run(wh.name, func(b *testing.B) {
			_, recs := eventsData(b)
			cat := wh.open(b)
			if _, err := table.Ensure(context.Background(), cat, gen.EventsSpec("ods.events")); err != nil {
				b.Fatal(err)
			}
			small := recs[0].NewSlice(0, 1000)
			var lat []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w := writer.New(cat, writer.Config{CommitInterval: time.Hour}, writer.Options{OnCommit: func(ci writer.CommitInfo) { lat = append(lat, ci.Duration) }})
				if _, _, err := w.Open("ods.events", "bench"); err != nil {
					b.Fatal(err)
				}
				for j := 0; j < 100; j++ {
					small.Retain()
					if err := w.Write(writer.Batch{Table: "ods.events", Source: "bench", Record: small, Next: table.Positions{"p": int64(i*100 + j + 1)}}); err != nil {
						b.Fatal(err)
					}
					if err := w.Commit(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				w.Abort()
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1e3, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1e3, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func testenvConfig(dir string, s3 testenv.S3, bucket string) catalog.Config {
	return catalog.Config{
		Type: catalog.TypeSQLite, Name: "bench", URI: dir + "/catalog.db", Warehouse: "s3://" + bucket + "/wh",
		S3: catalog.S3Config{Endpoint: s3.Endpoint, Region: "us-east-1", AccessKeyID: s3.AccessKeyID, SecretAccessKey: s3.SecretAccessKey},
	}
}
