package writer_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/floe-lake/floe/internal/benchutil"
	"github.com/floe-lake/floe/internal/pqgo"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
)

// The parquet-go path on the same rows as BenchmarkEncodeParquet and
// BenchmarkIcebergAppend (eventsData: 1M generator events, day
// partitioning, zstd), reporting rows/cpu-s the same way:
//
//	BenchmarkPqgoEncode   pqgo.Encode to memory: the limit for this path
//	                      (compare BenchmarkEncodeParquet)
//	BenchmarkPqgoWrite    pqgo.Write to the local warehouse plus one
//	                      AddDataFiles commit (compare BenchmarkIcebergAppend)
//
// workers=1 runs the column encoders on one goroutine; workers=0 on
// GOMAXPROCS. rows/cpu-s counts CPU time on every core.

func BenchmarkPqgoEncode(b *testing.B) {
	sc, recs := eventsData(b)
	defer release(recs)
	cat := benchCatalog(b)
	tbl := tabletest.Load(b, cat, "ods.events")
	for _, workers := range []int{1, 0} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			var buf bytes.Buffer
			var n int64
			var err error
			m := benchutil.Start(b)
			for i := 0; i < b.N; i++ {
				buf.Reset()
				if n, err = pqgo.Encode(&buf, tbl, sc, recs, pqgo.Options{Workers: workers}); err != nil {
					b.Fatal(err)
				}
			}
			m.Stop(b, int64(b.N)*benchRows)
			b.ReportMetric(float64(n)/(1<<20), "file-MiB")
		})
	}
}

func BenchmarkPqgoWrite(b *testing.B) {
	sc, recs := eventsData(b)
	defer release(recs)
	ctx := context.Background()
	for _, workers := range []int{1, 0} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			cat := benchCatalog(b)
			ident, _ := table.ParseIdent("ods.events")
			var size int64
			m := benchutil.Start(b)
			for i := 0; i < b.N; i++ {
				tbl, err := cat.LoadTable(ctx, ident)
				if err != nil {
					b.Fatal(err)
				}
				files, err := pqgo.Write(ctx, tbl, sc, recs, pqgo.Options{Workers: workers})
				if err != nil {
					b.Fatal(err)
				}
				size = 0
				for _, f := range files {
					size += f.FileSizeBytes()
				}
				txn := tbl.NewTransaction()
				if err := txn.AddDataFiles(ctx, files, nil); err != nil {
					b.Fatal(err)
				}
				if _, err := txn.Commit(ctx); err != nil {
					b.Fatal(err)
				}
			}
			m.Stop(b, int64(b.N)*benchRows)
			b.ReportMetric(float64(size)/(1<<20), "file-MiB")
		})
	}
}

func release[T interface{ Release() }](xs []T) {
	for _, x := range xs {
		x.Release()
	}
}
