package aggregate

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/floe-lake/floe/internal/gentest"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/query"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/source/gen"
)

func TestFromSQL(t *testing.T) {
	s, err := FromSQL(`SELECT time_bucket(INTERVAL '1 day', event_time, 'Asia/Shanghai') AS window_start,
  time_bucket(INTERVAL '1 day', event_time, 'Asia/Shanghai') + INTERVAL '1 day' AS window_end,
  CAST(timezone('Asia/Shanghai', event_time) AS DATE) AS dt,
  e.city, lower(device_id) AS dev,
  count(*) AS n, sum(amount * 2) AS a2, count(DISTINCT user_id) AS uv, approx_count_distinct(e.user_id) AS uv_approx
FROM ods.events e
WHERE city LIKE 'S%' OR event_type IN ('pay', 'order')
GROUP BY 1, 2, 3, e.city, dev`, "", "dws.x")
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{
		Name: "x", Source: "ods.events", Output: "dws.x", Time: "event_time",
		Window:     Window{Size: Duration(24 * time.Hour), TimeZone: "Asia/Shanghai", LocalColumns: []string{"dt"}},
		Dimensions: []string{"city", "dev"},
		Measures: []Measure{{Name: "n", Fn: FnCount}, {Name: "a2", Fn: FnSum, Column: "_m1"},
			{Name: "uv", Fn: FnCountDistinct, Column: "user_id"}, {Name: "uv_approx", Fn: FnApproxCountDistinct, Column: "user_id"}},
	}
	s.SQL = ""
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("got  %+v\nwant %+v", s, want)
	}

	for _, tc := range []struct{ sql, want string }{
		{"SELECT city, count(*) AS n FROM ods.events GROUP BY city", "GROUP BY needs a window"},
		{"SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start, count(*) AS n FROM ods.events GROUP BY 1 HAVING count(*) > 1", "HAVING is not supported by floe aggregate: filter the summary table when reading it: line 1, column 125"},
		{"SELECT time_bucket(INTERVAL '1 hour', o.event_time) AS window_start, count(*) AS n FROM ods.events o LEFT JOIN ods.users u ON u.id = o.user_id GROUP BY 1", "LEFT JOIN belongs in a floe transform spec"},
		{"SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start, count(*) FROM ods.events GROUP BY 1", "name the measure count(*)"},
		{"SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start, lower(city), count(*) AS n FROM ods.events GROUP BY 1, 2", "name the derived dimension lower(city)"},
		{"SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start, city, count(*) AS n FROM ods.events GROUP BY 1", "city is neither aggregated nor in GROUP BY: line 1, column 68"},
		{"SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start, sum(amount) / count(*) AS a FROM ods.events GROUP BY 1", "not an expression over aggregates"},
		{"SELECT time_bucket(INTERVAL '1 hour', event_time) AS w, count(*) AS n FROM ods.events GROUP BY 1", "name the window window_start"},
		{"SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start, count(*) AS n FROM ods.events GROUP BY 1 ORDER BY 1", "ORDER BY is not supported in a spec: line 1, column 109"},
		{"SELECT time_bucket(INTERVAL '1 month', event_time) AS window_start, count(*) AS n FROM ods.events GROUP BY 1", "month and year windows are not supported"},
		{"SELECT time_bucket(INTERVAL '24 hours', event_time, 'Asia/Shanghai') AS window_start, count(*) AS n FROM ods.events GROUP BY 1", "write it in days"},
		{"SELECT time_bucket(INTERVAL '1 hour', x.event_time) AS window_start, count(*) AS n FROM ods.events GROUP BY 1", "no table x in FROM"},
		{"SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start, city, count(*) AS n FROM ods.events GROUP BY 1, lower(city)", "GROUP BY lower(city): every grouping expression must also be in the select list"},
	} {
		_, err := FromSQL(tc.sql, "", "dws.x")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %q", tc.sql, err, tc.want)
		}
	}
	// UTC windows whose width does not divide a day are aligned as
	// DuckDB's time_bucket aligns them (2000-01-03), which the UTC zone's
	// windows are.
	s, err = FromSQL("SELECT time_bucket(INTERVAL '7 days', event_time) AS window_start, count(*) AS n FROM ods.events GROUP BY 1", "", "dws.x")
	if err != nil || s.Window.TimeZone != "UTC" || s.Window.Size.D() != 7*24*time.Hour {
		t.Fatalf("7-day window: %+v, %v", s.Window, err)
	}
	// A spec whose fields contradict its sql is refused when bound.
	bad := s
	bad.Dimensions = []string{"city"}
	sc, err := gen.EventsSpec("ods.events").IcebergSchema()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OutputSpec(bad, sc); !errors.Is(err, ErrSQLSpec) {
		t.Fatalf("contradicting fields: %v", err)
	}
	// GROUP BY a name that is both a source column and an alias: DuckDB
	// takes the column.
	amb, err := FromSQL("SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start, lower(city) AS city, count(*) AS n FROM ods.events GROUP BY 1, city", "", "dws.x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OutputSpec(amb, sc); err == nil || !strings.Contains(err.Error(), "GROUP BY city is ambiguous") {
		t.Fatalf("ambiguous GROUP BY: %v", err)
	}
	if _, err := FromSQL("SELECT 1 FROM", "", "dws.x"); !errors.Is(err, query.ErrSyntax) {
		t.Fatalf("syntax error: %v", err)
	}
}

// sqlSpecs are SQL specs over the generator's events, and YAML specs
// that must give the same summary (nil when there is none).
var sqlSpecs = []struct {
	name, sql string
	yaml      *Spec
}{
	{"ad_show_sql", `SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start, ad_id, event_type,
  count(*) AS cnt, count(DISTINCT user_id) AS u_cnt, count(DISTINCT device_id) AS device_cnt
FROM ods.events WHERE ad_id IS NOT NULL GROUP BY 1, 2, 3`,
		&Spec{Name: "ad_show_yaml", Source: "ods.events", Output: "dws.ad_show_yaml", Filter: "ad_id != null", Time: "event_time",
			Window: Window{Size: Duration(time.Hour)}, Dimensions: []string{"ad_id", "event_type"},
			Measures: []Measure{{Name: "cnt", Fn: FnCount}, {Name: "u_cnt", Fn: FnCountDistinct, Column: "user_id"}, {Name: "device_cnt", Fn: FnCountDistinct, Column: "device_id"}}}},
	{"derived_sql", `SELECT time_bucket(INTERVAL '15 minutes', event_time) AS window_start,
  CASE WHEN event_type IN ('order', 'pay') THEN 'trade' WHEN event_type LIKE 'ad_%' THEN 'ad' ELSE 'browse' END AS kind,
  upper(substr(province, 1, 2)) AS prov,
  json_extract_string(properties, '$.os') AS os,
  count(*) AS n, sum(amount * 2) AS amount2, max(length(page_url)) AS max_url, avg(user_id % 7) AS a
FROM ods.events
WHERE (city LIKE '%an%' OR province BETWEEN 'A' AND 'M' OR amount > 100) AND properties->>'$.net' <> '2g'
GROUP BY 1, kind, prov, os`, nil},
	{"zoned_sql", `SELECT time_bucket(INTERVAL '1 hour', event_time, 'Asia/Kathmandu') AS window_start,
  CAST(timezone('Asia/Kathmandu', event_time) AS DATE) AS dt, hour(timezone('Asia/Kathmandu', event_time)) AS hour,
  count(*) AS n, approx_count_distinct(user_id) AS uv
FROM ods.events GROUP BY 1, 2, 3`, nil},
	{"hop_top_sql", `SELECT w.window_start, w.window_start + INTERVAL '30 minutes' AS window_end, province, city,
  sum(amount) AS gmv, count(*) AS n
FROM ods.events e,
  unnest(generate_series(time_bucket(INTERVAL '10 minutes', e.event_time) - INTERVAL '20 minutes',
                         time_bucket(INTERVAL '10 minutes', e.event_time), INTERVAL '10 minutes')) AS w(window_start)
GROUP BY 1, 2, 3, 4
QUALIFY row_number() OVER (PARTITION BY w.window_start, province ORDER BY gmv DESC, city NULLS FIRST) <= 3`,
		&Spec{Name: "hop_top_yaml", Source: "ods.events", Output: "dws.hop_top_yaml", Time: "event_time",
			Window: Window{Size: Duration(30 * time.Minute), Slide: Duration(10 * time.Minute)}, Dimensions: []string{"province", "city"},
			Measures: []Measure{{Name: "gmv", Fn: FnSum, Column: "amount"}, {Name: "n", Fn: FnCount}},
			Top:      &Top{N: 3, By: "gmv", Within: []string{"province"}}}},
	{"cumulative_sql", `SELECT time_bucket(INTERVAL '1 day', event_time, 'Asia/Shanghai') AS window_start, w.window_end,
  CAST(timezone('Asia/Shanghai', event_time) AS DATE) AS dt, event_type, count(*) AS n, count(DISTINCT user_id) AS uv
FROM ods.events,
  unnest(generate_series(time_bucket(INTERVAL '1 hour', event_time) + INTERVAL '1 hour',
                         time_bucket(INTERVAL '1 day', event_time, 'Asia/Shanghai') + INTERVAL '1 day', INTERVAL '1 hour')) AS w(window_end)
GROUP BY 1, 2, 3, 4`,
		&Spec{Name: "cumulative_yaml", Source: "ods.events", Output: "dws.cumulative_yaml", Time: "event_time",
			Window:     Window{Size: Duration(24 * time.Hour), Step: Duration(time.Hour), TimeZone: "Asia/Shanghai", LocalColumns: []string{"dt"}},
			Dimensions: []string{"event_type"},
			Measures:   []Measure{{Name: "n", Fn: FnCount}, {Name: "uv", Fn: FnCountDistinct, Column: "user_id"}}}},
}

// TestSQLSpecs: a SQL spec gives the same summary table, states
// included, as the YAML spec it translates; SQL specs with derived
// dimensions, a filter of OR/IN/LIKE/CASE/BETWEEN, JSON extraction and a
// zoned window, followed while the generator writes, equal their
// backfill row for row.
func TestSQLSpecs(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	cfg := genConfig(60_000)
	cfg.Rate = 60_000 / 2
	gentest.Ensure(t, cat, cfg)
	opts := Options{
		Logger: quietLogger(), PollInterval: 20 * time.Millisecond,
		MaxBatchDelay: 30 * time.Millisecond, MaxBatchRows: 8_000, Concurrency: 2,
	}
	var aggs []*Aggregator
	for _, c := range sqlSpecs {
		s, err := FromSQL(c.sql, c.name, "dws."+c.name)
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(ctx, cat, s, opts)
		if err != nil {
			t.Fatal(err)
		}
		aggs = append(aggs, a)
	}
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
	if err := generate(ctx, cat, cfg, 6_000); err != nil {
		stop()
		wg.Wait()
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for i, a := range aggs {
		srcTbl, err := a.src.Load(ctx)
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
				t.Fatalf("%s: cursor %d (follow: %v)", a.spec.Name, got, errs[i])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stop()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: follow: %v", aggs[i].spec.Name, err)
		}
	}
	for i, c := range sqlSpecs {
		t.Run(c.name, func(t *testing.T) {
			s := aggs[i].spec
			streamed := tableRows(t, cat, s.Output)
			if len(streamed) < 3 {
				t.Fatalf("%d output rows", len(streamed))
			}
			bs := withOutput(s, s.Output+"_backfill")
			b, err := New(ctx, cat, bs, Options{Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Backfill(ctx, BackfillOptions{}); err != nil {
				t.Fatal(err)
			}
			if backfilled := tableRows(t, cat, bs.Output); !slices.Equal(streamed, backfilled) {
				t.Fatalf("streaming differs from the backfill: %s", diffRows(streamed, backfilled))
			}
			if c.yaml == nil {
				t.Logf("%d rows: streaming = backfill", len(streamed))
				return
			}
			y, err := New(ctx, cat, *c.yaml, Options{Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := y.Backfill(ctx, BackfillOptions{}); err != nil {
				t.Fatal(err)
			}
			if yr := tableRows(t, cat, c.yaml.Output); !slices.Equal(streamed, yr) {
				t.Fatalf("the SQL spec's summary differs from the YAML spec's: %s", diffRows(streamed, yr))
			}
			t.Logf("%d rows: streaming = backfill = the YAML spec's", len(streamed))
		})
	}
}

// TestSQLEvalErrorIsPermanent: an expression that fails on the source's
// rows (device ids are not numbers) fails the backfill with an error that
// halts a follower rather than being retried, naming the cause.
func TestSQLEvalErrorIsPermanent(t *testing.T) {
	ctx := context.Background()
	cat, _ := generated(t)
	s, err := FromSQL("SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start, sum(CAST(device_id AS BIGINT)) AS d FROM ods.events GROUP BY 1", "", "dws.bad_cast")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, cat, s, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Backfill(ctx, BackfillOptions{})
	if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "cast") {
		t.Fatalf("backfill: %v (permanent: %v)", err, IsPermanent(err))
	}
}
