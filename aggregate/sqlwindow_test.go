package aggregate

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hopSQL is a sliding window of size every step over ods.events, with
// extra select items, zone (", 'Zone'" or "") and a QUALIFY.
func hopSQL(step, back, zone, items, qualify string) string {
	return `SELECT w.window_start, province, city, sum(amount) AS gmv, count(*) AS n` + items + `
FROM ods.events e, unnest(generate_series(time_bucket(INTERVAL '` + step + `', e.event_time` + zone + `) - INTERVAL '` + back + `',
  time_bucket(INTERVAL '` + step + `', e.event_time` + zone + `), INTERVAL '` + step + `')) AS w(window_start)
GROUP BY ALL_DIMS ` + qualify
}

func cumSQL(step, stepZone, size, zone, items string) string {
	return `SELECT time_bucket(INTERVAL '` + size + `', event_time` + zone + `) AS window_start, w.window_end, event_type` + items + `, count(*) AS n
FROM ods.events, unnest(generate_series(time_bucket(INTERVAL '` + step + `', event_time` + stepZone + `) + INTERVAL '` + step + `',
  time_bucket(INTERVAL '` + size + `', event_time` + zone + `) + INTERVAL '` + size + `', INTERVAL '` + step + `')) AS w(window_end)
GROUP BY ALL_DIMS`
}

// groupAll fills in GROUP BY ALL_DIMS: the positions of the select
// list's items that are not aggregates (a test shorthand; specs write
// GROUP BY out).
func groupAll(sql string) string {
	i := strings.Index(sql, "\nFROM")
	if !strings.Contains(sql, "ALL_DIMS") || i < 0 {
		return sql
	}
	head := sql[len("SELECT "):i]
	var items []string
	depth, start := 0, 0
	for i := range len(head) {
		switch head[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				items = append(items, head[start:i])
				start = i + 1
			}
		}
	}
	items = append(items, head[start:])
	var pos []string
	for n, it := range items {
		if !strings.Contains(it, "sum(") && !strings.Contains(it, "count(") {
			pos = append(pos, strconv.Itoa(n+1))
		}
	}
	return strings.Replace(sql, "ALL_DIMS", strings.Join(pos, ", "), 1)
}

func TestFromSQLWindows(t *testing.T) {
	const topQ = "QUALIFY row_number() OVER (PARTITION BY w.window_start, province ORDER BY sum(amount) DESC, city NULLS FIRST) <= 3"
	for _, tc := range []struct {
		name, sql string
		window    Window
		top       *Top
	}{
		{"hop", hopSQL("5 minutes", "55 minutes", "", ", w.window_start + INTERVAL '1 hour' AS window_end", ""),
			Window{Size: Duration(time.Hour), Slide: Duration(5 * time.Minute)}, nil},
		{"hop grouped by the column's bare name", strings.Replace(hopSQL("5 minutes", "55 minutes", "", "", ""), "ALL_DIMS", "window_start, province, city", 1),
			Window{Size: Duration(time.Hour), Slide: Duration(5 * time.Minute)}, nil},
		{"cumulative grouped by names", strings.Replace(cumSQL("1 hour", "", "1 day", "", ""), "ALL_DIMS", "window_start, window_end, event_type", 1),
			Window{Size: Duration(24 * time.Hour), Step: Duration(time.Hour)}, nil},
		{"hop end of the bare start", hopSQL("5 minutes", "55 minutes", "", ", window_start + INTERVAL '1 hour' AS window_end", ""),
			Window{Size: Duration(time.Hour), Slide: Duration(5 * time.Minute)}, nil},
		{"hop top", hopSQL("5 minutes", "55 minutes", "", "", topQ),
			Window{Size: Duration(time.Hour), Slide: Duration(5 * time.Minute)}, &Top{N: 3, By: "gmv", Within: []string{"province"}}},
		{"hop top by name, window by bare name, desc nulls last", hopSQL("5 minutes", "55 minutes", "", "",
			"QUALIFY row_number() OVER (PARTITION BY province, window_start ORDER BY gmv DESC NULLS LAST, city ASC NULLS FIRST) <= 10"),
			Window{Size: Duration(time.Hour), Slide: Duration(5 * time.Minute)}, &Top{N: 10, By: "gmv", Within: []string{"province"}}},
		{"hop top partitioned by start and end", hopSQL("5 minutes", "55 minutes", "", ", w.window_start + INTERVAL '1 hour' AS window_end",
			"QUALIFY row_number() OVER (PARTITION BY window_start, window_end, province ORDER BY gmv DESC, city NULLS FIRST) <= 3"),
			Window{Size: Duration(time.Hour), Slide: Duration(5 * time.Minute)}, &Top{N: 3, By: "gmv", Within: []string{"province"}}},
		{"hop top over every dimension", hopSQL("5 minutes", "55 minutes", "", "",
			"QUALIFY row_number() OVER (PARTITION BY w.window_start ORDER BY n DESC, province NULLS FIRST, city NULLS FIRST) <= 1"),
			Window{Size: Duration(time.Hour), Slide: Duration(5 * time.Minute)}, &Top{N: 1, By: "n"}},
		{"hop in a zone with dt and hour", hopSQL("1 hour", "23 hours", ", 'Asia/Kathmandu'",
			", w.window_start + INTERVAL '24 hours' AS window_end, CAST(timezone('Asia/Kathmandu', w.window_start) AS DATE) AS dt, hour(timezone('Asia/Kathmandu', w.window_start)) AS hour", ""),
			Window{Size: Duration(24 * time.Hour), Slide: Duration(time.Hour), TimeZone: "Asia/Kathmandu", LocalColumns: []string{"dt", "hour"}}, nil},
		{"hop of days", hopSQL("1 day", "6 days", ", 'Asia/Shanghai'", ", w.window_start + INTERVAL '7 days' AS window_end", ""),
			Window{Size: Duration(7 * 24 * time.Hour), Slide: Duration(24 * time.Hour), TimeZone: "Asia/Shanghai"}, nil},
		{"hop whose step does not divide a day", hopSQL("7 hours", "14 hours", "", "", ""),
			Window{Size: Duration(21 * time.Hour), Slide: Duration(7 * time.Hour), TimeZone: "UTC"}, nil},
		{"tumbling top", `SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start, city, count(*) AS n FROM ods.events GROUP BY 1, 2
QUALIFY row_number() OVER (PARTITION BY time_bucket(INTERVAL '1 hour', event_time) ORDER BY count(*) DESC, city NULLS FIRST) <= 5`,
			Window{Size: Duration(time.Hour)}, &Top{N: 5, By: "n"}},
		{"cumulative", cumSQL("1 minute", "", "1 day", ", 'Asia/Shanghai'", ", CAST(timezone('Asia/Shanghai', event_time) AS DATE) AS dt"),
			Window{Size: Duration(24 * time.Hour), Step: Duration(time.Minute), TimeZone: "Asia/Shanghai", LocalColumns: []string{"dt"}}, nil},
		{"cumulative, the step zoned", cumSQL("1 hour", ", 'America/New_York'", "1 day", ", 'America/New_York'", ""),
			Window{Size: Duration(24 * time.Hour), Step: Duration(time.Hour), TimeZone: "America/New_York"}, nil},
		{"cumulative in UTC", cumSQL("10 minutes", "", "1 hour", "", ""),
			Window{Size: Duration(time.Hour), Step: Duration(10 * time.Minute)}, nil},
		{"cumulative hour in Kathmandu", cumSQL("15 minutes", "", "1 hour", ", 'Asia/Kathmandu'", ", hour(timezone('Asia/Kathmandu', event_time)) AS hour"),
			Window{Size: Duration(time.Hour), Step: Duration(15 * time.Minute), TimeZone: "Asia/Kathmandu", LocalColumns: []string{"hour"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := FromSQL(groupAll(tc.sql), "", "dws.x")
			if err != nil {
				t.Fatalf("%s\n%v", groupAll(tc.sql), err)
			}
			if !reflect.DeepEqual(s.Window, tc.window) || !reflect.DeepEqual(s.Top, tc.top) {
				t.Fatalf("window %+v top %+v\nwant   %+v top %+v", s.Window, s.Top, tc.window, tc.top)
			}
		})
	}
}

func TestFromSQLWindowErrors(t *testing.T) {
	hop := func(q string) string { return groupAll(hopSQL("5 minutes", "55 minutes", "", "", q)) }
	for _, tc := range []struct{ name, sql, want string }{
		{"hop bounds differ", strings.Replace(hop(""), "time_bucket(INTERVAL '5 minutes', e.event_time), INTERVAL", "time_bucket(INTERVAL '5 minutes', e.amount), INTERVAL", 1),
			"the lower bound (time_bucket(INTERVAL '5 minutes', event_time) - INTERVAL '55 minutes') does not start from the upper bound time_bucket(INTERVAL '5 minutes', amount)"},
		{"hop step does not divide", groupAll(hopSQL("5 minutes", "52 minutes", "", "", "")),
			"INTERVAL '52 minutes' is not a whole number of steps of 5 minutes: the step must divide the window's size: line 2, column 93"},
		{"hop series step", strings.Replace(hop(""), "INTERVAL '5 minutes')) AS", "INTERVAL '1 minute')) AS", 1),
			"generate_series's step INTERVAL '1 minute' differs from time_bucket's width"},
		{"hop of one step", groupAll(hopSQL("5 minutes", "0 minutes", "", "", "")), "a window of one step is a tumbling window"},
		{"hop units", groupAll(hopSQL("1 day", "23 hours", "", "", "")), "write SIZE - STEP in the step's unit"},
		{"hop months", groupAll(hopSQL("1 day", "1 month", "", "", "")), "month and year windows are not supported"},
		{"hop too many windows", groupAll(hopSQL("1 second", "1 hour", "", "", "")), "puts each row into 3601 windows, more than 1440"},
		{"hop column name", strings.ReplaceAll(hop(""), "window_start", "ws"), "name a sliding window's column window_start: unnest(…) AS w(window_start)"},
		{"hop end width", groupAll(hopSQL("5 minutes", "55 minutes", "", ", w.window_start + INTERVAL '30 minutes' AS window_end", "")),
			"(w.window_start + INTERVAL '30 minutes'): a sliding window's end is its start + its size, 1h, as an INTERVAL in the step's unit (INTERVAL '5 minutes')"},
		{"hop end of a day in a zone", groupAll(hopSQL("1 hour", "23 hours", ", 'Asia/Shanghai'", ", w.window_start + INTERVAL '1 day' AS window_end", "")),
			"a sliding window's end is its start + its size, 1d, as an INTERVAL in the step's unit (INTERVAL '1 hour')"},
		{"hop not grouped", strings.Replace(hop(""), "GROUP BY 1, ", "GROUP BY ", 1), "GROUP BY w.window_start: a sliding window's start groups the rows"},
		{"hop and time_bucket", strings.Replace(hop(""), "GROUP BY 1, ", "GROUP BY time_bucket(INTERVAL '1 hour', event_time), 1, ", 1), "with a sliding window (the unnest): group by w.window_start alone"},
		{"window column in a measure", strings.Replace(hop(""), "count(*) AS n", "max(w.window_start) AS n", 1), "the window column is selected and grouped by as it is"},
		{"window column in WHERE", strings.Replace(hop(""), "GROUP BY", "WHERE w.window_start > event_time GROUP BY", 1), "WHERE w.window_start: the window column is not a column of the source"},
		{"other unnest column", strings.Replace(hop(""), "SELECT w.window_start", "SELECT w.x AS window_start", 1), "w.x: w has one column, window_start"},
		{"unnest named as the table", strings.Replace(strings.ReplaceAll(hop(""), "w.", "e."), "AS w(", "AS e(", 1), "unnest(…) AS e: the name of the FROM table"},
		{"unnest of something else", `SELECT x, count(*) AS n FROM ods.events, unnest(range(3)) AS r(x) GROUP BY 1`, "the only unnest of a spec is its window"},
		{"neither shape", strings.Replace(hop(""), ") - INTERVAL '55 minutes'", ")", 1), "is neither window shape"},
		{"rank()", hop("QUALIFY rank() OVER (PARTITION BY w.window_start ORDER BY gmv DESC) <= 3"), "Floe's rank is row_number()"},
		{"not <=", hop("QUALIFY row_number() OVER (PARTITION BY w.window_start ORDER BY gmv DESC) < 3"), "the one QUALIFY of a spec is the top N of each window"},
		{"N", hop("QUALIFY row_number() OVER (PARTITION BY w.window_start ORDER BY gmv DESC) <= 0"), "N must be a positive integer literal"},
		{"no window partition", hop("QUALIFY row_number() OVER (PARTITION BY province ORDER BY gmv DESC, city NULLS FIRST) <= 3"), "PARTITION BY the window's start first"},
		{"partition by other", hop("QUALIFY row_number() OVER (PARTITION BY w.window_start, event_type ORDER BY gmv DESC) <= 3"), "PARTITION BY event_type: partition by the window's start and dimensions of the select list only"},
		{"ascending", hop("QUALIFY row_number() OVER (PARTITION BY w.window_start, province ORDER BY gmv, city NULLS FIRST) <= 3"), "Floe ranks by the measure descending"},
		{"nulls first measure", hop("QUALIFY row_number() OVER (PARTITION BY w.window_start, province ORDER BY gmv DESC NULLS FIRST, city NULLS FIRST) <= 3"), "Floe ranks NULL measures last"},
		{"rank by a dimension", hop("QUALIFY row_number() OVER (PARTITION BY w.window_start ORDER BY city DESC) <= 3"), "rank by a measure of the select list"},
		{"no tie-breaker", hop("QUALIFY row_number() OVER (PARTITION BY w.window_start, province ORDER BY gmv DESC) <= 3"),
			"ties must be broken by every dimension not in PARTITION BY, or DuckDB's row_number() is arbitrary among equal measures: add city NULLS FIRST"},
		{"tie-breaker nulls last", hop("QUALIFY row_number() OVER (PARTITION BY w.window_start, province ORDER BY gmv DESC, city) <= 3"),
			"write city NULLS FIRST: Floe (as Spark and Flink) breaks ties with NULLs first"},
		{"tie-breaker desc", hop("QUALIFY row_number() OVER (PARTITION BY w.window_start, province ORDER BY gmv DESC, city DESC NULLS FIRST) <= 3"), "drop DESC"},
		{"tie-breaker order", hop("QUALIFY row_number() OVER (PARTITION BY w.window_start ORDER BY gmv DESC, city NULLS FIRST, province NULLS FIRST) <= 3"),
			"break ties by the dimensions in the select list's order: province NULLS FIRST, city NULLS FIRST"},
		{"window frame", hop("QUALIFY row_number() OVER (PARTITION BY w.window_start ORDER BY gmv DESC ROWS UNBOUNDED PRECEDING) <= 3"), "a window frame (ROWS) is not supported"},
		{"window function in the select list", strings.Replace(hop(""), "count(*) AS n", "row_number() OVER () AS n", 1), "a window function (OVER) is not supported in a spec"},
		{"cumulative top", groupAll(cumSQL("1 hour", "", "1 day", "", "")) + " QUALIFY row_number() OVER (PARTITION BY window_start ORDER BY n DESC, event_type NULLS FIRST) <= 3",
			"top N is not supported with a cumulative window"},
		{"cumulative step does not divide", groupAll(cumSQL("7 hours", "", "1 day", "", "")), "the step 7 hours does not divide the window 1 day"},
		{"cumulative step not shorter", groupAll(cumSQL("1 day", "", "1 day", "", "")), "is not shorter than the window"},
		{"cumulative step in days in a zone", groupAll(cumSQL("1 day", ", 'Asia/Shanghai'", "7 days", ", 'Asia/Shanghai'", "")), "write the step in hours"},
		{"cumulative step off the grid", groupAll(cumSQL("1 hour", "", "1 day", ", 'Asia/Kathmandu'", "")),
			"in Asia/Kathmandu the window starting 1999-12-31T18:15:00Z (local midnight) is not on the step's buckets of 1h"},
		{"cumulative step across DST", groupAll(cumSQL("2 hours", ", 'America/New_York'", "1 day", ", 'America/New_York'", "")), "choose a step that divides the zone's offset changes"},
		{"cumulative zones differ", groupAll(cumSQL("1 hour", ", 'UTC'", "1 day", ", 'Asia/Shanghai'", "")), "give the step the size's zone or none"},
		{"cumulative lower bound", strings.Replace(groupAll(cumSQL("1 hour", "", "1 day", "", "")), "+ INTERVAL '1 hour',", "+ INTERVAL '2 hours',", 1), "is not time_bucket(STEP, ts) + STEP"},
		{"cumulative upper bound", strings.Replace(groupAll(cumSQL("1 hour", "", "1 day", "", "")), "+ INTERVAL '1 day',", "+ INTERVAL '24 hours',", 1), "is not time_bucket(SIZE, ts) + SIZE"},
		{"cumulative window differs", strings.Replace(groupAll(cumSQL("1 hour", "", "1 day", "", "")), "SELECT time_bucket(INTERVAL '1 day', event_time)", "SELECT time_bucket(INTERVAL '2 days', event_time)", 1),
			"differs from the size's time_bucket in the unnest"},
		{"cumulative without window", `SELECT w.window_end, count(*) AS n FROM ods.events, unnest(generate_series(time_bucket(INTERVAL '1 hour', event_time) + INTERVAL '1 hour', time_bucket(INTERVAL '1 day', event_time) + INTERVAL '1 day', INTERVAL '1 hour')) AS w(window_end) GROUP BY 1`,
			"a cumulative window groups by the window's start"},
		{"cumulative column name", strings.Replace(groupAll(cumSQL("1 hour", "", "1 day", "", "")), "window_end", "step_end", 2), "name a cumulative window's column window_end"},
		{"cumulative hour of a day", groupAll(cumSQL("1 hour", "", "1 day", ", 'Asia/Shanghai'", ", hour(timezone('Asia/Shanghai', event_time)) AS hour")), "hour (the local hour of a row) is the window's only for windows of an hour or less"},
		{"tumbling day with the hour", "SELECT time_bucket(INTERVAL '1 day', event_time, 'Asia/Shanghai') AS window_start, hour(timezone('Asia/Shanghai', event_time)) AS hour, count(*) AS n FROM ods.events GROUP BY 1, 2",
			"hour (the local hour of a row) is the window's only for windows of an hour or less"},
		{"tumbling week with the date", "SELECT time_bucket(INTERVAL '7 days', event_time, 'Asia/Shanghai') AS window_start, CAST(timezone('Asia/Shanghai', event_time) AS DATE) AS dt, count(*) AS n FROM ods.events GROUP BY 1, 2",
			"dt (the local date of a row) is the window's only for windows of a day or less"},
		{"cumulative steps not grouped", strings.Replace(groupAll(cumSQL("1 hour", "", "1 day", "", "")), "GROUP BY 1, 2, 3", "GROUP BY 1, 3", 1), "GROUP BY w.window_end: each step's end groups a cumulative window's rows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromSQL(tc.sql, "", "dws.x")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s\n got %v\nwant %q", tc.sql, err, tc.want)
			}
		})
	}
}

// TestWarehouseSQLSpecs: the warehouse example's SQL specs translate to
// their YAML twins.
func TestWarehouseSQLSpecs(t *testing.T) {
	for _, name := range []string{"dws/gmv_city_5m", "ads/gmv_dtd"} {
		t.Run(name, func(t *testing.T) {
			base := filepath.Join("..", "examples", "warehouse", name)
			y, err := LoadSpec(base + ".yaml")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(base + ".sql"); err != nil {
				t.Fatal(err)
			}
			s, err := LoadSpecFile(base+".sql", y.Output)
			if err != nil {
				t.Fatal(err)
			}
			s.SQL = ""
			if !reflect.DeepEqual(s, y) {
				t.Fatalf("%s.sql: %+v\nthe YAML twin: %+v", name, s, y)
			}
		})
	}
}
