package transform

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
)

// TestOutputFiles: an append-only output's data files are written by the
// parquet-go encoder, and their manifest entries carry the statistics
// iceberg-go's writer gives the same rows (counts, sizes, bounds); a
// re-run backfill replaces every data file, a stream appends.
func TestOutputFiles(t *testing.T) {
	cat := warehouse(t)
	appendRows(t, cat, "ods.regions", []any{int64(1), "Zhejiang"})
	appendRows(t, cat, "ods.users", []any{int64(10), "Hangzhou", int64(1)})
	appendRows(t, cat, "ods.orders", order(1, 10, 100, 0), order(2, 99, 200, time.Minute), order(3, 10, 300, 2*time.Minute))
	tr := newT(t, cat, Spec{SQL: detailSQL, Output: "dwd.order_detail"})
	backfill(t, tr)
	first := checkFiles(t, tr, "dwd.order_detail", 3)

	backfill(t, tr)
	second := checkFiles(t, tr, "dwd.order_detail", 3)
	tbl := tabletest.Load(t, cat, "dwd.order_detail")
	if op := tbl.CurrentSnapshot().Summary.Operation; op != icetable.OpOverwrite {
		t.Errorf("re-run backfill: operation %s, want overwrite", op)
	}
	for p := range first {
		if _, ok := second[p]; ok {
			t.Errorf("re-run backfill kept %s", p)
		}
	}

	appendRows(t, cat, "ods.orders", order(4, 10, 400, 3*time.Minute))
	catchUp(t, tr)
	checkFiles(t, tr, "dwd.order_detail", 4)
	tbl = tabletest.Load(t, cat, "dwd.order_detail")
	if op := tbl.CurrentSnapshot().Summary.Operation; op != icetable.OpAppend {
		t.Errorf("stream: operation %s, want append", op)
	}
}

// checkFiles checks the output's data files (rows in all) and returns
// them by path.
func checkFiles(t *testing.T, tr *Transformer, name string, rows int64) map[string]iceberg.DataFile {
	t.Helper()
	ctx := context.Background()
	tbl := tabletest.Load(t, tr.cat, name)
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]iceberg.DataFile{}
	var n int64
	for _, task := range tasks {
		files[task.File.FilePath()] = task.File
		n += task.File.Count()
	}
	if n != rows {
		t.Fatalf("%d rows in the data files, want %d", n, rows)
	}
	// Reference: iceberg-go's writer over the same rows.
	var recs []arrow.RecordBatch
	tabletest.Each(t, tbl, func(rec arrow.RecordBatch) {
		rec.Retain()
		recs = append(recs, rec)
	})
	defer releaseAll(recs)
	want := map[string]any{}
	var got map[string]any
	for df, err := range icetable.WriteRecords(ctx, tbl, tr.out, seqOf(recs)) {
		if err != nil {
			t.Fatal(err)
		}
		want = fileStats(df)
	}
	for _, df := range files {
		if by := createdBy(t, tbl, df); !strings.HasPrefix(by, "github.com/parquet-go/parquet-go") {
			t.Errorf("%s was written by %q, not by the parquet-go encoder", df.FilePath(), by)
		}
		if len(files) == 1 {
			got = fileStats(df)
		}
	}
	if len(files) == 1 && !maps.EqualFunc(got, want, func(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
		t.Errorf("manifest statistics %v, iceberg-go's writer gives %v", got, want)
	}
	return files
}

func fileStats(df iceberg.DataFile) map[string]any {
	return map[string]any{
		"count": df.Count(), "format": df.FileFormat(),
		"values": df.ValueCounts(), "nulls": df.NullValueCounts(), "nans": df.NaNValueCounts(),
		"lower": df.LowerBoundValues(), "upper": df.UpperBoundValues(),
		"sizes": slices.Sorted(maps.Keys(df.ColumnSizes())),
	}
}

func createdBy(t *testing.T, tbl *icetable.Table, df iceberg.DataFile) string {
	t.Helper()
	fsys, err := tbl.FS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Open(df.FilePath())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	rdr, err := file.NewParquetReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rdr.Close() }()
	return rdr.MetaData().GetCreatedBy()
}
