package aggregate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/internal/benchutil"
	"github.com/floe-lake/floe/internal/gentest"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/source/gen"
)

// rowsPerMinute is one minute of one generator partition: an event every
// 10 ms.
const rowsPerMinute = int64(time.Minute / gen.TimeStep)

// benchEnvInt reads an integer override of a benchmark size.
func benchEnvInt(b *testing.B, name string, def int64) int64 {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		return n
	}
	return def
}

// BenchmarkStreamingMinuteOverDay measures the streaming update cost of
// one minute of new rows (one generator partition: 6,000 events, 10 % of
// them up to 2 h late) into a summary table holding a day of state,
// against aggregating the same minute alone (the same streaming step into
// an empty summary table). The day ends half past an hour, so the minute's
// current hour holds half an hour of state (a step's cost grows with it
// through the hour). FLOE_BENCH_DAY_MINUTES changes the day's length.
// Reported: ns/op and cpu-ms/op of the step over a day, alone-ms and
// alone-cpu-ms of the step alone, and x-alone, their CPU ratio.
func BenchmarkStreamingMinuteOverDay(b *testing.B) {
	minutes := benchEnvInt(b, "FLOE_BENCH_DAY_MINUTES", 24*60+30)
	ctx := context.Background()
	cat := tabletest.OpenSQLite(b)
	cfg := genConfig(minutes * rowsPerMinute)
	cfg.StartTime = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	cfg.BatchRows = 65536
	gentest.Ensure(b, cat, cfg)
	start := time.Now()
	if err := generate(ctx, cat, cfg, 2_000_000); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d minutes (%d events) in %s", minutes, minutes*rowsPerMinute, time.Since(start).Round(time.Second))

	// The offsets generated so far, and a counter naming the tables of
	// the minutes alone, shared by every run of the sub-benchmarks.
	next := minutes * rowsPerMinute
	aloneTables := 0
	for _, file := range []string{"orders_city_5m.yaml", "page_traffic_hourly.yaml", "ad_show_hourly.yaml"} {
		spec := exampleSpec(b, file)
		b.Run(spec.Name, func(b *testing.B) {
			opts := Options{Logger: quietLogger(), Concurrency: 1}
			day, err := New(ctx, cat, withOutput(spec, spec.Output+"_day"), opts)
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			res, err := day.Backfill(ctx, BackfillOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("day of state: %d groups from %d rows, backfilled in %s", res.Groups, res.SourceRows, time.Since(t0).Round(time.Millisecond))
			var aloneWall, aloneCPU, dayCPU time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				// Append the next minute as one source snapshot.
				prev := currentSnapshot(b, cat, spec.Source)
				mcfg := cfg
				mcfg.RowsPerPartition = next + rowsPerMinute
				if err := generate(ctx, cat, mcfg, 1<<40); err != nil {
					b.Fatal(err)
				}
				next += rowsPerMinute
				// The same minute alone: an empty summary table whose
				// cursor is at the snapshot before the minute.
				aloneTables++
				alone, err := New(ctx, cat, withOutput(spec, fmt.Sprintf("%s_alone_%d", spec.Output, aloneTables)), opts)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := alone.commit(ctx, commitReq{kind: "cursor", next: prev, started: time.Now()}); err != nil {
					b.Fatal(err)
				}
				c0, w0 := benchutil.CPUTime(), time.Now()
				pprof.Do(ctx, pprof.Labels("step", "alone"), func(ctx context.Context) {
					_, err = alone.CatchUp(ctx)
				})
				if err != nil {
					b.Fatal(err)
				}
				aloneCPU += benchutil.CPUTime() - c0
				aloneWall += time.Since(w0)

				b.StartTimer()
				c0 = benchutil.CPUTime()
				var r Result
				pprof.Do(ctx, pprof.Labels("step", "day"), func(ctx context.Context) {
					r, err = day.CatchUp(ctx)
				})
				if err != nil {
					b.Fatal(err)
				}
				dayCPU += benchutil.CPUTime() - c0
				if r.Commits != 1 {
					b.Fatalf("%d commits for one minute, want 1", r.Commits)
				}
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64(dayCPU.Milliseconds())/n, "cpu-ms/op")
			b.ReportMetric(float64(aloneWall.Milliseconds())/n, "alone-ms")
			b.ReportMetric(float64(aloneCPU.Milliseconds())/n, "alone-cpu-ms")
			if aloneCPU > 0 {
				b.ReportMetric(float64(dayCPU)/float64(aloneCPU), "x-alone")
			}
		})
	}
}

func currentSnapshot(b *testing.B, cat icecat.Catalog, name string) int64 {
	b.Helper()
	tbl := tabletest.Load(b, cat, name)
	return reader.Current(tbl)
}

// BenchmarkBackfill measures batch backfill throughput, in source rows
// per CPU-second, on one core (Concurrency 1), and DuckDB computing the
// same aggregates over the same Parquet files (one thread) when a Python
// with duckdb is found under ~/.cache/floe/venv-engines-*.
// FLOE_BENCH_ROWS sets the events generated (default 2,000,000).
func BenchmarkBackfill(b *testing.B) {
	rows := benchEnvInt(b, "FLOE_BENCH_ROWS", 2_000_000)
	ctx := context.Background()
	cat := tabletest.OpenSQLite(b)
	cfg := genConfig(rows)
	cfg.BatchRows = 65536
	gentest.Ensure(b, cat, cfg)
	if err := generate(ctx, cat, cfg, 1_000_000); err != nil {
		b.Fatal(err)
	}
	for _, file := range []string{"page_traffic_hourly.yaml", "ad_show_hourly.yaml", "orders_city_5m.yaml"} {
		spec := exampleSpec(b, file)
		srcRows := tableRowCount(b, cat, spec.Source)
		b.Run(spec.Name+"/floe", func(b *testing.B) {
			a, err := New(ctx, cat, spec, Options{Logger: quietLogger(), Concurrency: 1})
			if err != nil {
				b.Fatal(err)
			}
			m := benchutil.Start(b)
			for range b.N {
				var err error
				pprof.Do(ctx, pprof.Labels("step", "backfill"), func(ctx context.Context) {
					_, err = a.Backfill(ctx, BackfillOptions{})
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			m.Stop(b, srcRows*int64(b.N))
		})
		b.Run(spec.Name+"/duckdb", func(b *testing.B) {
			py := duckdbPython()
			if py == "" {
				b.Skip("no Python with duckdb under ~/.cache/floe/venv-engines-*: DuckDB half skipped")
			}
			files := dataFiles(b, cat, spec.Source)
			query, err := duckdbQuery(spec, files)
			if err != nil {
				b.Skip(err)
			}
			b.ResetTimer()
			var cpu, wall float64
			for range b.N {
				c, w := runDuckDB(b, py, query)
				cpu += c
				wall += w
			}
			b.StopTimer()
			b.ReportMetric(float64(srcRows)*float64(b.N)/cpu, "rows/cpu-s")
			b.ReportMetric(float64(srcRows)*float64(b.N)/wall, "rows/s")
		})
	}
}

func tableRowCount(b *testing.B, cat icecat.Catalog, name string) int64 {
	b.Helper()
	tbl := tabletest.Load(b, cat, name)
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, t := range tasks {
		n += t.File.Count()
	}
	return n
}

func dataFiles(b *testing.B, cat icecat.Catalog, name string) []string {
	b.Helper()
	tbl := tabletest.Load(b, cat, name)
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	for _, t := range tasks {
		out = append(out, strings.TrimPrefix(t.File.FilePath(), "file://"))
	}
	return out
}

// duckdbPython returns a Python interpreter that imports duckdb, or "".
func duckdbPython() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	venvs, _ := filepath.Glob(filepath.Join(home, ".cache", "floe", "venv-engines-*", "bin", "python3"))
	for _, py := range append(venvs, "python3") {
		if exec.Command(py, "-c", "import duckdb").Run() == nil {
			return py
		}
	}
	return ""
}

// duckdbQuery is the spec's aggregation in DuckDB SQL over the files.
func duckdbQuery(s Spec, files []string) (string, error) {
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = "'" + strings.ReplaceAll(f, "'", "''") + "'"
	}
	src := "read_parquet([" + strings.Join(quoted, ",") + "])"
	where := ""
	if s.Filter != "" {
		// The example filters are valid SQL but for != null.
		where = " WHERE " + strings.ReplaceAll(strings.ReplaceAll(s.Filter, "!= null", "IS NOT NULL"), "= null", "IS NULL")
	}
	var sel []string
	for _, m := range s.Measures {
		col := m.Column
		switch m.Fn {
		case FnCount:
			if col == "" {
				col = "*"
			}
			sel = append(sel, "count("+col+") AS "+m.Name)
		case FnSum, FnMin, FnMax, FnAvg:
			sel = append(sel, string(m.Fn)+"("+col+") AS "+m.Name)
		case FnCountDistinct:
			sel = append(sel, "count(DISTINCT "+col+") AS "+m.Name)
		case FnApproxCountDistinct:
			sel = append(sel, "approx_count_distinct("+col+") AS "+m.Name)
		}
	}
	dims := strings.Join(s.Dimensions, ", ")
	if dims != "" {
		dims += ", "
	}
	size := s.Window.Size.D()
	slide := s.slideOrSize()
	var q string
	if slide == size {
		q = fmt.Sprintf("SELECT time_bucket(INTERVAL '%d seconds', %s) AS window_start, %s%s FROM %s%s GROUP BY ALL",
			int64(size.Seconds()), s.Time, dims, strings.Join(sel, ", "), src, where)
	} else {
		// Each row into size/slide windows.
		n := int64(size / slide)
		q = fmt.Sprintf("SELECT time_bucket(INTERVAL '%d seconds', %s) - k * INTERVAL '%d seconds' AS window_start, %s%s FROM %s, range(%d) r(k)%s GROUP BY ALL",
			int64(slide.Seconds()), s.Time, int64(slide.Seconds()), dims, strings.Join(sel, ", "), src, n, where)
	}
	if s.Top != nil {
		// Rank every group, as the summary table does.
		within := strings.Join(append([]string{"window_start"}, s.Top.Within...), ", ")
		q = fmt.Sprintf("SELECT *, row_number() OVER (PARTITION BY %s ORDER BY %s DESC) AS rank FROM (%s)",
			within, s.Top.By, q)
	}
	return q, nil
}

// runDuckDB runs query once on one DuckDB thread, materialising the
// result, and returns the CPU and wall seconds DuckDB took.
func runDuckDB(b *testing.B, py, query string) (cpu, wall float64) {
	b.Helper()
	script := `
import sys, time, duckdb
con = duckdb.connect()
con.execute("SET threads = 1")
con.execute("SET enable_progress_bar = false")
q = sys.stdin.read()
c0, w0 = time.process_time(), time.perf_counter()
rows = con.execute(q).fetchall()
print(time.process_time() - c0, time.perf_counter() - w0, len(rows))
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(query)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	// Stdout only: DuckDB draws a progress bar on stderr when a query
	// takes over 2 s (on a loaded machine), which broke the parsing.
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("duckdb: %v\n%s%s\n%s", err, out, stderr.String(), query)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		b.Fatalf("duckdb printed %q", out)
	}
	cpu, _ = strconv.ParseFloat(f[0], 64)
	wall, _ = strconv.ParseFloat(f[1], 64)
	return cpu, wall
}
