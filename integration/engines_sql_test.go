//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/aggregate"
	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/gentest"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/source/gen"
	"github.com/floe-lake/floe/writer"
)

// enginesSQLSpecs are the SQL specs the DuckDB cross-check runs: by name,
// a file of examples/aggregate or the text; top is the N of a spec's
// QUALIFY row_number() … <= N, whose summary table keeps every group
// with its rank: DuckDB's rows are the table's rows with rank <= N.
var enginesSQLSpecs = []struct {
	name, file, sql string
	top             int
}{
	{name: "derived", sql: `SELECT time_bucket(INTERVAL '15 minutes', event_time) AS window_start,
  CASE WHEN event_type IN ('order', 'pay') THEN 'trade' WHEN event_type LIKE 'ad%' THEN 'ad' ELSE 'browse' END AS kind,
  upper(substr(coalesce(province, '?'), 1, 1)) || '-' || coalesce(city, '?') AS place,
  count(*) AS n, sum(amount * 2) AS amount2, count(DISTINCT user_id) AS users, min(event_id) AS first_id,
  max(CAST(user_id AS DOUBLE) / 7) AS u7, avg(length(page_url)) AS url_len
FROM ods.events
WHERE (city LIKE '%州' OR province IN ('四川', '湖北') OR amount BETWEEN 100 AND 500 OR user_id % 10 = 3)
  AND event_type <> 'click' AND NOT (device_id IS NULL)
GROUP BY 1, 2, 3`},
	{name: "json", sql: `SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start,
  json_extract_string(properties, '$.os') AS os, properties->>'$.net' AS net,
  count(*) AS n, count(DISTINCT device_id) AS devices, sum(CAST(properties->>'$.app_ver' LIKE '8.%' AS INTEGER)) AS v8
FROM ods.events
WHERE properties->>'$.app_ver' LIKE '8.%' OR json_extract_string(properties, '$.os') = 'ios'
GROUP BY 1, 2, 3`},
	{name: "shanghai_day", sql: `SELECT time_bucket(INTERVAL '1 day', event_time, 'Asia/Shanghai') AS window_start,
  CAST(timezone('Asia/Shanghai', event_time) AS DATE) AS dt,
  event_type, count(*) AS n, count(DISTINCT user_id) AS dau
FROM ods.events GROUP BY 1, 2, 3`},
	{name: "kathmandu_hour", sql: `SELECT time_bucket(INTERVAL '1 hour', event_time, 'Asia/Kathmandu') AS window_start,
  time_bucket(INTERVAL '1 hour', event_time, 'Asia/Kathmandu') + INTERVAL '1 hour' AS window_end,
  CAST(timezone('Asia/Kathmandu', event_time) AS DATE) AS dt, hour(timezone('Asia/Kathmandu', event_time)) AS hour,
  count(*) AS n
FROM ods.events GROUP BY 1, 2, 3, 4`},
	// A sliding window (HOP: every 5 minutes over the last hour) with the
	// top 3 cities of each province by orders: many ties, broken by a
	// city name that is NULL for some cities (NULLS FIRST).
	{name: "hop_top", top: 3, sql: `SELECT w.window_start, w.window_start + INTERVAL '1 hour' AS window_end, province,
  CASE WHEN city LIKE '%州' THEN NULL ELSE city END AS city_x,
  count(*) AS orders, sum(amount) AS gmv, count(DISTINCT user_id) AS buyers
FROM ods.orders o,
  unnest(generate_series(time_bucket(INTERVAL '5 minutes', o.created_at) - INTERVAL '55 minutes',
                         time_bucket(INTERVAL '5 minutes', o.created_at), INTERVAL '5 minutes')) AS w(window_start)
WHERE status <> 'cancelled'
GROUP BY 1, 2, 3, 4
QUALIFY row_number() OVER (PARTITION BY w.window_start, province ORDER BY count(*) DESC, city_x NULLS FIRST) <= 3`},
	// The same without PARTITION BY province: the top 5 of all provinces
	// and cities, ties broken by province, then city (NULLS FIRST).
	{name: "hop_top_all", top: 5, sql: `SELECT w.window_start, province,
  CASE WHEN city LIKE '%州' THEN NULL ELSE city END AS city_x, count(*) AS orders
FROM ods.orders o,
  unnest(generate_series(time_bucket(INTERVAL '5 minutes', o.created_at) - INTERVAL '25 minutes',
                         time_bucket(INTERVAL '5 minutes', o.created_at), INTERVAL '5 minutes')) AS w(window_start)
GROUP BY 1, 2, 3
QUALIFY row_number() OVER (PARTITION BY w.window_start ORDER BY orders DESC, province NULLS FIRST, city_x NULLS FIRST) <= 5`},
	// A sliding window in a zone: every hour over the last 3, aligned
	// to Kathmandu's hours (+05:45), with the local date and hour of
	// each window's start.
	{name: "hop_kathmandu", sql: `SELECT w.window_start, w.window_start + INTERVAL '3 hours' AS window_end,
  CAST(timezone('Asia/Kathmandu', w.window_start) AS DATE) AS dt, hour(timezone('Asia/Kathmandu', w.window_start)) AS hour,
  event_type, count(*) AS n, count(DISTINCT user_id) AS users
FROM ods.events e,
  unnest(generate_series(time_bucket(INTERVAL '1 hour', e.event_time, 'Asia/Kathmandu') - INTERVAL '2 hours',
                         time_bucket(INTERVAL '1 hour', e.event_time, 'Asia/Kathmandu'), INTERVAL '1 hour')) AS w(window_start)
GROUP BY 1, 2, 3, 4, 5`},
	// A cumulative window (CUMULATE): the local day's GMV and buyers so
	// far in Asia/Shanghai, every 10 minutes, per province.
	{name: "gmv_dtd_shanghai", sql: `SELECT time_bucket(INTERVAL '1 day', created_at, 'Asia/Shanghai') AS window_start, w.window_end,
  CAST(timezone('Asia/Shanghai', created_at) AS DATE) AS dt, province,
  sum(amount) AS gmv, count(*) AS orders, count(DISTINCT user_id) AS buyers
FROM ods.orders,
  unnest(generate_series(time_bucket(INTERVAL '10 minutes', created_at) + INTERVAL '10 minutes',
                         time_bucket(INTERVAL '1 day', created_at, 'Asia/Shanghai') + INTERVAL '1 day',
                         INTERVAL '10 minutes')) AS w(window_end)
WHERE status <> 'cancelled'
GROUP BY 1, 2, 3, 4`},
	{name: "ad_show_local", file: "ad_show_local.sql"},
	{name: "orders_city_15m", file: "orders_city_15m.sql"},
}

// enginesSQLPy runs SQL texts on DuckDB over Floe's tables: each table
// of the catalog is a view of iceberg_scan on its current metadata, named
// as in the catalog, so the texts run unchanged. It prints, per text, the
// column names and the rows (timestamps as {"ts": µs}, dates as
// {"date": "YYYY-MM-DD"}, decimals as numbers).
const enginesSQLPy = `
import datetime, decimal, json, os, sys
sys.path.insert(0, os.environ["FLOE_ENGINES_DIR"])
import canon
cat, tables, texts = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.stdin.read())
con = canon.duckdb_connect(cat)
for name, loc in tables.items():
    ns, t = name.split(".")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {ns}")
    con.execute(f"CREATE VIEW {ns}.{t} AS SELECT * FROM iceberg_scan('{canon.local_path(loc)}')")
def cell(v):
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        d = v - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        return {"ts": (d.days * 86400 + d.seconds) * 1000000 + d.microseconds}
    if isinstance(v, datetime.date):
        return {"date": v.isoformat()}
    if isinstance(v, decimal.Decimal):
        return float(v)
    return v
out = []
for text in texts:
    cur = con.execute(text)
    cols = [d[0] for d in cur.description]
    out.append({"columns": cols, "rows": [[cell(v) for v in r] for r in cur.fetchall()]})
print(json.dumps(out))
`

// TestEnginesSQLAggregate: SQL specs (a CASE/IN/LIKE/BETWEEN filter with
// derived dimensions; JSON extraction; daily windows in Asia/Shanghai
// and hourly ones in Asia/Kathmandu, with dt and hour; sliding windows
// (HOP) with a top N and in Kathmandu; a cumulative window (CUMULATE) in
// Asia/Shanghai; the .sql examples)
// followed by floe aggregate while the generator writes equal their
// backfill row for row, and DuckDB running the same SQL text over the
// same Iceberg tables returns the same rows (DOUBLE values within 1e-9
// relative). A top N's summary table keeps every group ranked: its rows
// with rank <= N are DuckDB's QUALIFY rows.
func TestEnginesSQLAggregate(t *testing.T) {
	if testing.Short() {
		t.Skip("engines: not under -short")
	}
	env := enginesEnv(t)
	ctx := context.Background()
	cc := localWarehouse(t)
	cat, err := catalog.Open(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	gc := gen.DefaultConfig()
	gc.Seed, gc.Partitions, gc.RowsPerPartition, gc.BatchRows = 12, 1, 40_000, 2048
	gc.LateFraction, gc.BadFraction = 0.1, 0
	// 00:01 in Shanghai: late events fall on the previous local day.
	gc.StartTime = time.Date(2026, 3, 1, 16, 1, 0, 0, time.UTC)
	gc.Rate = 40_000 / 3
	g := gentest.Ensure(t, cat, gc)

	var aggs []*aggregate.Aggregator
	var texts []string
	for _, c := range enginesSQLSpecs {
		text := c.sql
		if c.file != "" {
			b, err := os.ReadFile(filepath.Join("..", "examples", "aggregate", c.file))
			if err != nil {
				t.Fatal(err)
			}
			text = string(b)
		}
		s, err := aggregate.FromSQL(text, c.name, "dws.sql_"+c.name)
		if err != nil {
			t.Fatal(err)
		}
		a, err := aggregate.New(ctx, cat, s, aggregate.Options{Logger: quietLog(), PollInterval: 20 * time.Millisecond,
			MaxBatchDelay: 50 * time.Millisecond, MaxBatchRows: 10_000, Concurrency: 2})
		if err != nil {
			t.Fatal(err)
		}
		aggs, texts = append(aggs, a), append(texts, text)
	}
	// Follow while the generator writes.
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make([]error, len(aggs))
	for i, a := range aggs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = a.Follow(fctx)
		}()
	}
	wc := writer.Config{CommitInterval: time.Hour, CommitRows: 5_000}
	wc.ApplyDefaults()
	w := writer.New(cat, wc, writer.Options{Logger: quietLog()})
	runErr := g.Run(ctx, w)
	if err := w.Close(ctx); runErr == nil {
		runErr = err
	}
	if runErr != nil {
		stop()
		wg.Wait()
		t.Fatal(runErr)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for i, a := range aggs {
		srcTbl, err := cat.LoadTable(ctx, icetable.Identifier(strings.Split(a.Spec().Source, ".")))
		if err != nil {
			t.Fatal(err)
		}
		for {
			got, _, err := a.Cursor(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got == reader.Current(srcTbl) {
				break
			}
			if time.Now().After(deadline) || errs[i] != nil {
				stop()
				wg.Wait()
				t.Fatalf("%s: cursor %d (follow: %v)", a.Spec().Name, got, errs[i])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	stop()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: follow: %v", aggs[i].Spec().Name, err)
		}
	}

	// DuckDB over the same tables.
	tables := map[string]string{}
	for _, name := range []string{gc.EventsTable, gc.OrdersTable} {
		tbl, err := cat.LoadTable(ctx, icetable.Identifier(strings.Split(name, ".")))
		if err != nil {
			t.Fatal(err)
		}
		tables[name] = tbl.MetadataLocation()
	}
	tj, _ := json.Marshal(tables)
	in, _ := json.Marshal(texts)
	script := filepath.Join(t.TempDir(), "sql_duckdb.py")
	if err := os.WriteFile(script, []byte(enginesSQLPy), 0o644); err != nil {
		t.Fatal(err)
	}
	var python string
	for _, kv := range env.vars {
		if v, ok := strings.CutPrefix(kv, "FLOE_ENGINES_PYTHON="); ok {
			python = v
		}
	}
	cmd := exec.Command(python, script, enginesPythonCatalog(t, cc), string(tj))
	cmd.Env = append(append(os.Environ(), env.vars...), "FLOE_ENGINES_DIR="+env.dir)
	cmd.Stdin = strings.NewReader(string(in))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckdb: %v", err)
	}
	var duck []struct {
		Columns []string `json:"columns"`
		Rows    [][]any  `json:"rows"`
	}
	if err := json.Unmarshal(out, &duck); err != nil {
		t.Fatalf("duckdb output: %v", err)
	}

	for i, a := range aggs {
		s := a.Spec()
		t.Run(s.Name, func(t *testing.T) {
			cols := duck[i].Columns
			if n := enginesSQLSpecs[i].top; n > 0 {
				// Streaming and backfill compare every ranked group;
				// DuckDB's rows are those ranked in the top N.
				all := append(slices.Clone(cols), aggregate.ColRank)
				if d := diffSQLRows(sqlTableRows(t, cat, s.Output, all), backfilledRows(t, cat, s, all), 0); d != "" {
					t.Fatalf("streaming differs from the backfill (ranks included): %s", d)
				}
				top := topRows(sqlTableRows(t, cat, s.Output, all), n)
				if d := diffSQLRows(top, canonSQLRows(duck[i].Rows), 1e-9); d != "" {
					t.Fatalf("Floe's rows with rank <= %d (-) differ from DuckDB's (+) running the same SQL: %s", n, d)
				}
				t.Logf("%d rows ranked <= %d: streaming = backfill = DuckDB", len(top), n)
				return
			}
			streamed := sqlTableRows(t, cat, s.Output, cols)
			bs := s
			bs.Output += "_backfill"
			b, err := aggregate.New(ctx, cat, bs, aggregate.Options{Logger: quietLog(), Concurrency: 2})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Backfill(ctx, aggregate.BackfillOptions{}); err != nil {
				t.Fatal(err)
			}
			backfilled := sqlTableRows(t, cat, bs.Output, cols)
			if d := diffSQLRows(streamed, backfilled, 0); d != "" {
				t.Fatalf("streaming differs from the backfill: %s", d)
			}
			want := canonSQLRows(duck[i].Rows)
			if d := diffSQLRows(streamed, want, 1e-9); d != "" {
				t.Fatalf("Floe (-) differs from DuckDB (+) running the same SQL: %s", d)
			}
			t.Logf("%d rows: streaming = backfill = DuckDB", len(streamed))
		})
	}
}

// backfilledRows backfills s into a table of its own and reads cols of
// its rows as sqlTableRows does.
func backfilledRows(t *testing.T, cat icecat.Catalog, s aggregate.Spec, cols []string) [][]any {
	t.Helper()
	ctx := context.Background()
	s.Output += "_backfill"
	b, err := aggregate.New(ctx, cat, s, aggregate.Options{Logger: quietLog(), Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Backfill(ctx, aggregate.BackfillOptions{}); err != nil {
		t.Fatal(err)
	}
	return sqlTableRows(t, cat, s.Output, cols)
}

// topRows keeps the rows whose last column, the rank, is at most n, and
// drops that column.
func topRows(rows [][]any, n int) [][]any {
	var out [][]any
	for _, r := range rows {
		if rank, ok := r[len(r)-1].(float64); ok && rank <= float64(n) {
			out = append(out, r[:len(r)-1])
		}
	}
	return canonSQLRows(out)
}

// sqlTableRows reads cols of every row of a table in the canonical form
// of enginesSQLPy's output, sorted.
func sqlTableRows(t *testing.T, cat interface {
	LoadTable(context.Context, icetable.Identifier) (*icetable.Table, error)
}, name string, cols []string) [][]any {
	t.Helper()
	ctx := context.Background()
	tbl, err := cat.LoadTable(ctx, icetable.Identifier(strings.Split(name, ".")))
	if err != nil {
		t.Fatal(err)
	}
	_, recs, err := tbl.Scan(icetable.WithSelectedFields(cols...)).ToArrowRecords(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for rec, err := range recs {
		if err != nil {
			t.Fatal(err)
		}
		for r := range int(rec.NumRows()) {
			row := make([]any, len(cols))
			for c, col := range cols {
				row[c] = sqlCell(rec.Column(rec.Schema().FieldIndices(col)[0]), r)
			}
			rows = append(rows, row)
		}
		rec.Release()
	}
	return canonSQLRows(rows)
}

func sqlCell(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch x := a.(type) {
	case *array.Int64:
		return float64(x.Value(i))
	case *array.Int32:
		return float64(x.Value(i))
	case *array.Float64:
		return x.Value(i)
	case *array.Decimal128:
		return x.Value(i).ToFloat64(x.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Boolean:
		return x.Value(i)
	case *array.String:
		return x.Value(i)
	case *array.LargeString:
		return x.Value(i)
	case *array.Date32:
		return map[string]any{"date": x.Value(i).ToTime().Format(time.DateOnly)}
	case *array.Timestamp:
		toTime, _ := x.DataType().(*arrow.TimestampType).GetToTimeFunc()
		return map[string]any{"ts": float64(toTime(x.Value(i)).UnixMicro())}
	}
	return fmt.Sprintf("unhandled %T", a)
}

// canonSQLRows sorts rows by their rendering with numbers rounded.
func canonSQLRows(rows [][]any) [][]any {
	key := func(r []any) string {
		var b strings.Builder
		for _, v := range r {
			if f, ok := v.(float64); ok {
				fmt.Fprintf(&b, "%.6g|", f)
			} else {
				fmt.Fprintf(&b, "%v|", v)
			}
		}
		return b.String()
	}
	sort.SliceStable(rows, func(i, j int) bool { return key(rows[i]) < key(rows[j]) })
	return rows
}

// diffSQLRows compares two sorted row sets, numbers within tol relative.
func diffSQLRows(got, want [][]any, tol float64) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d rows, want %d", len(got), len(want))
	}
	var diffs []string
	for i := range got {
		for c := range got[i] {
			g, w := got[i][c], want[i][c]
			gf, gok := g.(float64)
			wf, wok := w.(float64)
			same := fmt.Sprint(g) == fmt.Sprint(w)
			if gok && wok {
				same = gf == wf || math.Abs(gf-wf) <= tol*math.Max(math.Abs(gf), math.Abs(wf))
			}
			if !same {
				diffs = append(diffs, fmt.Sprintf("row %d:\n- %v\n+ %v", i, got[i], want[i]))
				break
			}
		}
		if len(diffs) >= 5 {
			break
		}
	}
	return strings.Join(diffs, "\n")
}
