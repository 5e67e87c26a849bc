package transform

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/internal/benchutil"
	"github.com/floe-lake/floe/internal/tabletest"
)

// benchSQL is a filter, a projection with derived columns and two
// dimension joins.
const benchSQL = `SELECT o.order_id, o.event_time, o.amount * 2 AS amount2, u.city, r.province
FROM ods.orders o
LEFT JOIN ods.users u ON o.user_id = u.user_id
LEFT JOIN ods.regions r ON u.region_id = r.region_id
WHERE o.amount > 100`

// BenchmarkTransform measures a backfill of benchSQL over FLOE_BENCH_ROWS
// orders (default 1,000,000; 100,000 users, 100 regions) in source rows
// per CPU-second on one core (Concurrency 1), output written and
// committed; "floe-no-write" is the same without writing the output. When
// a Python with duckdb is found under ~/.cache/floe/venv-engines-*, DuckDB
// runs the same SQL on one thread over the same Parquet files, writing
// its result to a zstd Parquet file, and duckdb/floe reports how many
// times Floe's CPU time DuckDB's is (1 = equal; below 1 Floe is slower).
func BenchmarkTransform(b *testing.B) {
	rows := 1_000_000
	if v := os.Getenv("FLOE_BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		rows = n
	}
	ctx := context.Background()
	cat := warehouse(b)
	const users, regions = 100_000, 100
	benchDims(b, cat, users, regions)
	for part := range 4 {
		benchOrders(b, cat, part*rows/4, (part+1)*rows/4, users)
	}
	spec := Spec{Name: "bench", SQL: benchSQL, Output: "dwd.bench"}
	tr, err := New(ctx, cat, spec, Options{Logger: quietLogger(), Concurrency: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	var floeCPU time.Duration
	b.Run("floe", func(b *testing.B) {
		m := benchutil.Start(b)
		c0 := benchutil.CPUTime()
		for range b.N {
			if _, err := tr.Backfill(ctx, BackfillOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		floeCPU = (benchutil.CPUTime() - c0) / time.Duration(b.N)
		m.Stop(b, int64(rows)*int64(b.N))
	})
	b.Run("floe-no-write", func(b *testing.B) {
		m := benchutil.Start(b)
		for range b.N {
			st, err := tr.src.Changes(ctx, 0, 0)
			if err != nil {
				b.Fatal(err)
			}
			s := &appendSink{}
			if _, err := tr.parallel(ctx, st, s); err != nil {
				b.Fatal(err)
			}
			s.release()
		}
		m.Stop(b, int64(rows)*int64(b.N))
	})
	b.Run("duckdb", func(b *testing.B) {
		py := duckdbPython()
		if py == "" {
			b.Skip("no Python with duckdb under ~/.cache/floe/venv-engines-*: DuckDB half skipped")
		}
		views := ""
		for _, name := range []string{"ods.orders", "ods.users", "ods.regions"} {
			views += fmt.Sprintf("CREATE VIEW %s AS SELECT * FROM read_parquet([%s]);\n", name, quotedFiles(b, cat, name))
		}
		out := filepath.Join(b.TempDir(), "out.parquet")
		var cpu, wall float64
		b.ResetTimer()
		for range b.N {
			c, w := runDuckDB(b, py, "CREATE SCHEMA ods;\n"+views,
				fmt.Sprintf("COPY (%s) TO '%s' (FORMAT parquet, COMPRESSION zstd)", benchSQL, out))
			cpu += c
			wall += w
		}
		b.StopTimer()
		b.ReportMetric(float64(rows)*float64(b.N)/cpu, "rows/cpu-s")
		b.ReportMetric(float64(rows)*float64(b.N)/wall, "rows/s")
		if floeCPU > 0 {
			b.ReportMetric(cpu/float64(b.N)/floeCPU.Seconds(), "duckdb/floe")
		}
	})
}

// benchDims writes users (user u in region u%regions) and regions.
func benchDims(b *testing.B, cat icecat.Catalog, users, regions int) {
	mem := memory.DefaultAllocator
	ub := array.NewRecordBuilder(mem, arrowSchema(b, cat, "ods.users"))
	defer ub.Release()
	for u := range users {
		ub.Field(0).(*array.Int64Builder).Append(int64(u))
		ub.Field(1).(*array.StringBuilder).Append("city-" + strconv.Itoa(u%5000))
		ub.Field(2).(*array.Int64Builder).Append(int64(u % regions))
	}
	commitRecord(b, cat, "ods.users", ub.NewRecordBatch())
	rb := array.NewRecordBuilder(mem, arrowSchema(b, cat, "ods.regions"))
	defer rb.Release()
	for r := range regions {
		rb.Field(0).(*array.Int64Builder).Append(int64(r))
		rb.Field(1).(*array.StringBuilder).Append("province-" + strconv.Itoa(r))
	}
	commitRecord(b, cat, "ods.regions", rb.NewRecordBatch())
}

// benchOrders appends orders from..to-1 in one snapshot; 5 % of them name
// a user that does not exist, amounts are 0..999.
func benchOrders(b *testing.B, cat icecat.Catalog, from, to, users int) {
	ob := array.NewRecordBuilder(memory.DefaultAllocator, arrowSchema(b, cat, "ods.orders"))
	defer ob.Release()
	for i := from; i < to; i++ {
		ob.Field(0).(*array.Int64Builder).Append(int64(i))
		ob.Field(1).(*array.Int64Builder).Append(int64((i * 7919) % (users + users/20)))
		ob.Field(2).(*array.Int64Builder).Append(int64((i * 31) % 1000))
		ob.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.UnixMicro() + int64(i)*1000))
	}
	commitRecord(b, cat, "ods.orders", ob.NewRecordBatch())
}

func commitRecord(b *testing.B, cat icecat.Catalog, name string, rec arrow.RecordBatch) {
	b.Helper()
	defer rec.Release()
	tabletest.Append(b, tabletest.Load(b, cat, name), rec)
}

// quotedFiles lists the table's data files as a DuckDB list's items.
func quotedFiles(b *testing.B, cat icecat.Catalog, name string) string {
	b.Helper()
	tasks, err := tabletest.Load(b, cat, name).Scan().PlanFiles(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	for _, t := range tasks {
		out = append(out, "'"+strings.ReplaceAll(strings.TrimPrefix(t.File.FilePath(), "file://"), "'", "''")+"'")
	}
	return strings.Join(out, ",")
}

// duckdbPython returns a Python interpreter that imports duckdb, or "".
func duckdbPython() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	venvs, _ := filepath.Glob(filepath.Join(home, ".cache", "floe", "venv-engines-*", "bin", "python3"))
	for _, py := range venvs {
		if exec.Command(py, "-c", "import duckdb").Run() == nil {
			return py
		}
	}
	return ""
}

// runDuckDB runs setup, then query (timed) on one DuckDB thread, and
// returns the CPU and wall seconds the query took.
func runDuckDB(b *testing.B, py, setup, query string) (cpu, wall float64) {
	b.Helper()
	script := `
import sys, time, duckdb
con = duckdb.connect()
con.execute("SET threads = 1")
con.execute("SET enable_progress_bar = false")
setup, q = sys.stdin.read().split("\n-- query --\n")
con.execute(setup)
c0, w0 = time.process_time(), time.perf_counter()
con.execute(q)
print(time.process_time() - c0, time.perf_counter() - w0)
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(setup + "\n-- query --\n" + query)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("duckdb: %v\n%s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		b.Fatalf("duckdb printed %q", out)
	}
	cpu, _ = strconv.ParseFloat(f[0], 64)
	wall, _ = strconv.ParseFloat(f[1], 64)
	return cpu, wall
}
