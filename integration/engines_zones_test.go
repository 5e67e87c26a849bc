//go:build integration

package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/aggregate"
	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/gentest"
	"github.com/floe-lake/floe/internal/readertest"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/source/gen"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// TestEnginesWindows: zoned, cumulative and new/returning-user windows
// computed by floe aggregate equal DuckDB's answer to the same question
// over the source's data files: time_bucket(interval, ts, zone) for the
// windows, timezone() for dt and hour, a range() join for the cumulative
// steps (Flink's CUMULATE) and each user's least window for new and
// returning users. Sources: the generator's events and orders around local
// midnight in Asia/Shanghai (the examples ad_show_hourly, dau_daily and
// gmv_day_to_date), and visits across New York's spring-forward day, in
// New York and in Asia/Kathmandu (+05:45). Approximate distinct counts are
// not compared (DuckDB's sketch is another one).
func TestEnginesWindows(t *testing.T) {
	if testing.Short() {
		t.Skip("engines: not under -short")
	}
	env := enginesEnv(t)
	ctx := context.Background()
	cat, err := catalog.Open(ctx, localWarehouse(t))
	if err != nil {
		t.Fatal(err)
	}

	gc := gen.DefaultConfig()
	gc.Seed, gc.Partitions, gc.RowsPerPartition, gc.BatchRows = 5, 1, 60_000, 4096
	gc.LateFraction, gc.BadFraction = 0.1, 0
	gc.StartTime = time.Date(2026, 3, 1, 15, 55, 0, 0, time.UTC)
	g := gentest.Ensure(t, cat, gc)
	wc := writer.Config{CommitInterval: time.Hour, CommitRows: 20_000}
	wc.ApplyDefaults()
	w := writer.New(cat, wc, writer.Options{Logger: quietLog()})
	if err := g.Run(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	writeVisits(t, cat)

	var specs []aggregate.Spec
	for _, f := range []string{"ad_show_hourly.yaml", "dau_daily.yaml", "gmv_day_to_date.yaml"} {
		s, err := aggregate.LoadSpec(filepath.Join("..", "examples", "aggregate", f))
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, s)
	}
	visits := func(name, tz string, size, step time.Duration, dims []string, local ...string) aggregate.Spec {
		return aggregate.Spec{
			Name: name, Source: "ods.visits", Output: "ads." + name, Time: "ts", Dimensions: dims,
			Window: aggregate.Window{Size: aggregate.Duration(size), Step: aggregate.Duration(step), TimeZone: tz, LocalColumns: local},
			Measures: []aggregate.Measure{
				{Name: "visits", Fn: aggregate.FnCount}, {Name: "users", Fn: aggregate.FnCountDistinct, Column: "user_id"},
				{Name: "new_users", Fn: aggregate.FnNewUsers, Column: "user_id"},
				{Name: "returning_users", Fn: aggregate.FnReturningUsers, Column: "user_id"},
			},
		}
	}
	day := 24 * time.Hour
	specs = append(specs,
		visits("visits_ny_daily", "America/New_York", day, 0, []string{"page"}, "dt", "hour"),
		visits("visits_ny_2h", "America/New_York", 2*time.Hour, 0, nil, "dt", "hour"),
		visits("visits_kathmandu_hourly", "Asia/Kathmandu", time.Hour, 0, []string{"page"}, "dt", "hour"),
		visits("visits_ny_dtd", "America/New_York", day, time.Hour, nil, "dt"),
		visits("visits_shanghai_weekly", "Asia/Shanghai", 7*day, 0, nil, "dt"),
	)

	for _, s := range specs {
		t.Run(s.Name, func(t *testing.T) {
			a, err := aggregate.New(ctx, cat, s, aggregate.Options{Logger: quietLog(), Concurrency: 2})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Backfill(ctx, aggregate.BackfillOptions{}); err != nil {
				t.Fatal(err)
			}
			cols, query := windowsQuery(t, s, sourceFiles(t, cat, s.Source))
			got := floeRows(t, cat, s.Output, cols)
			dir := t.TempDir()
			qf, of := filepath.Join(dir, "query.sql"), filepath.Join(dir, "rows.txt")
			if err := os.WriteFile(qf, []byte(query), 0o644); err != nil {
				t.Fatal(err)
			}
			env.python(t, "duckdb_query.py", qf, of)
			b, err := os.ReadFile(of)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Split(strings.TrimSpace(string(b)), "\n")
			slices.Sort(want)
			if len(got) == 0 || !slices.Equal(got, want) {
				missing, extra := enginesDiff(want, got)
				t.Fatalf("floe and DuckDB differ (%s): %d rows vs %d; DuckDB only %v; floe only %v\n%s",
					strings.Join(cols, "|"), len(got), len(want), head(missing, 5), head(extra, 5), query)
			}
			t.Logf("%d rows equal (%s)", len(got), strings.Join(cols, "|"))
		})
	}
}

func head(s []string, n int) []string { return s[:min(n, len(s))] }

// writeVisits writes ods.visits: 40,000 visits of 3,000 users on five
// pages from 2026-03-06 to 2026-03-11 UTC, across New York's
// spring-forward night (2026-03-08), in four snapshots.
func writeVisits(t *testing.T, cat icecat.Catalog) {
	t.Helper()
	tbl, err := table.Ensure(context.Background(), cat, table.Spec{
		Name: "ods.visits",
		Schema: []table.Field{
			{Name: "user_id", Type: "string"}, {Name: "page", Type: "string"}, {Name: "ts", Type: "timestamptz", Required: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC)
	for range 4 {
		var rows [][]any
		for range 10_000 {
			var page any = fmt.Sprintf("p%d", rng.IntN(5))
			if rng.IntN(50) == 0 {
				page = nil
			}
			rows = append(rows, []any{fmt.Sprintf("u%d", rng.IntN(3_000)), page, start.Add(time.Duration(rng.Int64N(int64(5 * 24 * time.Hour))))})
		}
		rec := tabletest.Record(sc, rows...)
		tbl = tabletest.Append(t, tbl, rec)
		rec.Release()
	}
}

// sourceFiles lists the data files of a table's current snapshot.
func sourceFiles(t *testing.T, cat icecat.Catalog, name string) []string {
	t.Helper()
	tbl := tabletest.Load(t, cat, name)
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, task := range tasks {
		if len(task.DeleteFiles) > 0 {
			t.Fatalf("%s has delete files", name)
		}
		out = append(out, strings.TrimPrefix(task.File.FilePath(), "file://"))
	}
	return out
}

// windowsQuery is spec s in DuckDB SQL over files, and the output columns
// it returns (timestamps as epoch microseconds, dt as days since
// 1970-01-01).
func windowsQuery(t *testing.T, s aggregate.Spec, files []string) ([]string, string) {
	t.Helper()
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = "'" + strings.ReplaceAll(f, "'", "''") + "'"
	}
	where := ""
	if s.Filter != "" {
		where = " WHERE " + strings.ReplaceAll(s.Filter, "!= null", "IS NOT NULL")
	}
	tz := s.Window.TimeZone
	size := s.Window.Size.D()
	interval := func(d time.Duration) string {
		if d%(24*time.Hour) == 0 {
			return fmt.Sprintf("INTERVAL '%d day'", d/(24*time.Hour))
		}
		return fmt.Sprintf("INTERVAL '%d seconds'", int64(d.Seconds()))
	}
	bucket := func(expr string) string { return fmt.Sprintf("time_bucket(%s, %s, '%s')", interval(size), expr, tz) }
	end := "window_start + " + interval(size)
	if size%(24*time.Hour) == 0 {
		// The next local day's start: days are 23 to 25 hours long.
		end = bucket(fmt.Sprintf("window_start + INTERVAL '%d hours'", int64(size/time.Hour)+12))
	}
	var fsCol string
	for _, m := range s.Measures {
		if m.Fn == aggregate.FnNewUsers || m.Fn == aggregate.FnReturningUsers {
			fsCol = m.Column
		}
	}
	cols := []string{aggregate.ColWindowStart, aggregate.ColWindowEnd}
	sel := []string{"epoch_us(window_start)", "epoch_us(window_end)"}
	for _, c := range s.Window.LocalColumns {
		cols = append(cols, c)
		if c == aggregate.ColDate {
			sel = append(sel, fmt.Sprintf("CAST(timezone('%s', window_start) AS DATE) - DATE '1970-01-01'", tz))
		} else {
			sel = append(sel, fmt.Sprintf("hour(timezone('%s', window_start))", tz))
		}
	}
	for _, d := range s.Dimensions {
		cols = append(cols, d)
		sel = append(sel, "b."+d)
	}
	for _, m := range s.Measures {
		col := "b." + m.Column
		var e string
		switch m.Fn {
		case aggregate.FnCount:
			e = "count(*)"
			if m.Column != "" {
				e = "count(" + col + ")"
			}
		case aggregate.FnSum, aggregate.FnMin, aggregate.FnMax:
			e = string(m.Fn) + "(" + col + ")"
		case aggregate.FnCountDistinct:
			e = "count(DISTINCT " + col + ")"
		case aggregate.FnNewUsers:
			e = "count(DISTINCT CASE WHEN f.first_ws = window_start THEN " + col + " END)"
		case aggregate.FnReturningUsers:
			e = "count(DISTINCT CASE WHEN f.first_ws < window_start THEN " + col + " END)"
		default:
			continue // approximate counts: another sketch
		}
		cols = append(cols, m.Name)
		sel = append(sel, e)
	}
	q := fmt.Sprintf("WITH src AS (SELECT * FROM read_parquet([%s])%s),\nw AS (SELECT *, %s AS window_start FROM src WHERE %s IS NOT NULL),\n",
		strings.Join(quoted, ","), where, bucket(s.Time), s.Time)
	if step := s.Window.Step.D(); step > 0 {
		// Each row into every step of its day ending after it.
		n := int64(size/step) + int64(2*time.Hour/step) + 1
		stepEnd := fmt.Sprintf("least(window_start + k * %s, day_end)", interval(step))
		q += fmt.Sprintf("d AS (SELECT *, %s AS day_end FROM w),\n", end)
		q += fmt.Sprintf("b AS (SELECT d.*, %s AS window_end FROM d, range(1, %d) r(k) WHERE window_start + (k - 1) * %s < day_end AND %s < %s)",
			stepEnd, n, interval(step), s.Time, stepEnd)
	} else {
		q += fmt.Sprintf("b AS (SELECT *, %s AS window_end FROM w)", end)
	}
	from := "b"
	if fsCol != "" {
		q += fmt.Sprintf(",\nf AS (SELECT %s AS u, min(window_start) AS first_ws FROM w WHERE %s IS NOT NULL GROUP BY 1)", fsCol, fsCol)
		from = "b LEFT JOIN f ON b." + fsCol + " = f.u"
	}
	q += fmt.Sprintf("\nSELECT %s FROM %s GROUP BY ALL", strings.Join(sel, ", "), from)
	return cols, q
}

// floeRows reads cols of a summary table as DuckDB's rows are written.
func floeRows(t *testing.T, cat icecat.Catalog, name string, cols []string) []string {
	t.Helper()
	var out []string
	readertest.Each(t, cat, name, nil, reader.Config{Logger: quietLog(), Columns: cols}, func(rec arrow.RecordBatch) {
		for i := range int(rec.NumRows()) {
			vals := make([]string, len(cols))
			for c, name := range cols {
				col := rec.Column(rec.Schema().FieldIndices(name)[0])
				switch a := col.(type) {
				case *array.Timestamp:
					if !a.IsNull(i) {
						vals[c] = fmt.Sprint(int64(a.Value(i)))
					}
				case *array.Date32:
					if !a.IsNull(i) {
						vals[c] = fmt.Sprint(int32(a.Value(i)))
					}
				case *array.Decimal128:
					if !a.IsNull(i) {
						vals[c] = fixedScale(a.Value(i).BigInt().String(), int(a.DataType().(*arrow.Decimal128Type).Scale))
					}
				default:
					if !col.IsNull(i) {
						vals[c] = col.ValueStr(i)
					}
				}
				if col.IsNull(i) {
					vals[c] = "null"
				}
			}
			out = append(out, strings.Join(vals, "|"))
		}
	})
	slices.Sort(out)
	return out
}

// fixedScale writes an unscaled integer with scale digits after the point,
// as Python writes a Decimal.
func fixedScale(digits string, scale int) string {
	if scale == 0 {
		return digits
	}
	neg := strings.HasPrefix(digits, "-")
	digits = strings.TrimPrefix(digits, "-")
	for len(digits) <= scale {
		digits = "0" + digits
	}
	out := digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	if neg {
		out = "-" + out
	}
	return out
}
