package aggregate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/gentest"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// ordersDayToDate is a cumulative spec over the generator's orders: GMV,
// orders, buyers (exact and approximate) and the largest order of the
// local day in Asia/Shanghai, per province, every step.
func ordersDayToDate(step time.Duration) Spec {
	return Spec{
		Name: "orders_dtd", Source: "ods.orders", Output: "ads.orders_dtd", Time: "created_at",
		Filter:     "status != 'cancelled'",
		Window:     Window{Size: Duration(24 * time.Hour), Step: Duration(step), TimeZone: "Asia/Shanghai", LocalColumns: []string{ColDate}},
		Dimensions: []string{"province"},
		Measures: []Measure{
			{"gmv", FnSum, "amount"}, {"orders", FnCount, ""}, {"buyers", FnCountDistinct, "user_id"},
			{"buyers_approx", FnApproxCountDistinct, "user_id"}, {"max_amount", FnMax, "amount"},
			{"new_buyers", FnNewUsers, "user_id"}, {"returning_buyers", FnReturningUsers, "user_id"},
		},
	}
}

// midnightCrossing generates orders around local midnight in Shanghai
// (16:00 UTC), 10 % of them up to 2 h late, in 12 snapshots.
func midnightCrossing(t *testing.T) icecat.Catalog {
	t.Helper()
	cat := tabletest.OpenSQLite(t)
	cfg := genConfig(0)
	cfg.StartTime = time.Date(2026, 3, 1, 15, 57, 0, 0, time.UTC)
	gentest.Ensure(t, cat, cfg)
	for i := range int64(12) {
		// One snapshot per table and run.
		cfg.RowsPerPartition = (i + 1) * 5_000
		if err := generate(context.Background(), cat, cfg, 1<<40); err != nil {
			t.Fatal(err)
		}
	}
	return cat
}

// TestCumulativeWindows: a day-to-date window per minute in Asia/Shanghai,
// streamed batch by batch (late orders updating earlier minutes), equals
// its backfill; its last step of each day equals the day's tumbling
// window; and every step's value is the sum of the step-sized tumbling
// windows up to it.
func TestCumulativeWindows(t *testing.T) {
	ctx := context.Background()
	cat := midnightCrossing(t)
	cum := ordersDayToDate(time.Minute)
	a, err := New(ctx, cat, cum, Options{Logger: quietLogger(), MaxBatchRows: 1, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	res := catchUp(t, a)
	if res.Commits < 5 {
		t.Fatalf("%d streaming commits; the test wants several batches", res.Commits)
	}
	sameAsBackfill(t, cat, cum, "stream")

	day := cum
	day.Output, day.Window.Step = "ads.orders_day", 0
	minute := cum
	minute.Output, minute.Window.Size, minute.Window.Step = "ads.orders_minute", Duration(time.Minute), 0
	minute.Measures = []Measure{{"gmv", FnSum, "amount"}, {"orders", FnCount, ""}}
	for _, s := range []Spec{day, minute} {
		b, err := New(ctx, cat, s, Options{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Backfill(ctx, BackfillOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	cols := []string{ColWindowStart, ColWindowEnd, ColDate, "province", "gmv", "orders", "buyers", "buyers_approx", "max_amount", "new_buyers", "returning_buyers"}
	steps := tableColumns(t, cat, cum.Output, cols...)
	days := tableColumns(t, cat, day.Output, cols...)
	key := func(r map[string]any) string { return fmt.Sprint(r[ColWindowStart], "/", r["province"]) }
	last := map[string]map[string]any{}
	perGroup := map[string][]map[string]any{}
	for _, r := range steps {
		k := key(r)
		perGroup[k] = append(perGroup[k], r)
		if l := last[k]; l == nil || r[ColWindowEnd].(int64) > l[ColWindowEnd].(int64) {
			last[k] = r
		}
	}
	localDays := map[string]bool{}
	for _, d := range days {
		l := last[key(d)]
		if l == nil {
			t.Fatalf("no cumulative rows for day %v", d)
		}
		for _, c := range cols {
			if fmt.Sprint(l[c]) != fmt.Sprint(d[c]) {
				t.Errorf("group %s: last step's %s = %v, the day's = %v", key(d), c, l[c], d[c])
			}
		}
		localDays[fmt.Sprint(d[ColDate])] = true
	}
	if len(last) != len(days) || len(localDays) != 2 {
		t.Fatalf("%d cumulative groups, %d day groups over local days %v: want the same groups over two local days", len(last), len(days), localDays)
	}

	// Steps: consecutive minutes from the first with orders to the day's
	// end; values are prefix sums of the minutes.
	minutes := map[string]map[string]any{}
	for _, r := range tableColumns(t, cat, minute.Output, ColWindowStart, "province", "gmv", "orders") {
		minutes[fmt.Sprint(r[ColWindowStart], "/", r["province"])] = r
	}
	for k, rows := range perGroup {
		slices.SortFunc(rows, func(a, b map[string]any) int { return int(a[ColWindowEnd].(int64) - b[ColWindowEnd].(int64)) })
		ws := rows[0][ColWindowStart].(int64)
		if end := rows[len(rows)-1][ColWindowEnd].(int64); end != ws+usPerDay {
			t.Fatalf("group %s: last step ends %s, want the day's end", k, fmtMicros(end))
		}
		var orders int64
		for i, r := range rows {
			we := r[ColWindowEnd].(int64)
			if i > 0 && we != rows[i-1][ColWindowEnd].(int64)+time.Minute.Microseconds() {
				t.Fatalf("group %s: step ends %s after %s", k, fmtMicros(we), fmtMicros(rows[i-1][ColWindowEnd].(int64)))
			}
			if m := minutes[fmt.Sprint(we-time.Minute.Microseconds(), "/", r["province"])]; m != nil {
				orders += m["orders"].(int64)
			}
			if r["orders"].(int64) != orders {
				t.Fatalf("group %s, step ending %s: %d orders, the minutes up to it hold %d", k, fmtMicros(we), r["orders"], orders)
			}
			if i == 0 && orders == 0 {
				t.Fatalf("group %s: first step has no orders", k)
			}
		}
	}
	t.Logf("%d cumulative rows in %d groups over %d local days, %d streaming commits", len(steps), len(perGroup), len(localDays), res.Commits)
}

// eventsTable is a small source of (user, ts) events.
type eventsTable struct {
	t   *testing.T
	cat icecat.Catalog
	sc  *arrow.Schema
}

func newEventsTable(t *testing.T, cat icecat.Catalog) *eventsTable {
	tbl, err := table.Ensure(context.Background(), cat, table.Spec{
		Name: "ods.visits",
		Schema: []table.Field{
			{Name: "user_id", Type: "string"},
			{Name: "page", Type: "string"},
			{Name: "ts", Type: "timestamptz", Required: true},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	return &eventsTable{t: t, cat: cat, sc: sc}
}

// add appends one snapshot of events "user page local-time" (local time
// in Asia/Shanghai, "2006-01-02 15:04").
func (e *eventsTable) add(events ...string) {
	e.t.Helper()
	sh, _ := time.LoadLocation("Asia/Shanghai")
	var rows [][]any
	for _, ev := range events {
		var user, page, d, hm string
		if _, err := fmt.Sscan(ev, &user, &page, &d, &hm); err != nil {
			e.t.Fatal(err)
		}
		at, err := time.ParseInLocation("2006-01-02 15:04", d+" "+hm, sh)
		if err != nil {
			e.t.Fatal(err)
		}
		rows = append(rows, []any{user, page, at})
	}
	rec := tabletest.Record(e.sc, rows...)
	defer rec.Release()
	tabletest.Append(e.t, loadTable(e.t, e.cat, "ods.visits"), rec)
}

// dauSpec is DAU per local day in Asia/Shanghai with new and returning
// users.
func dauSpec() Spec {
	return Spec{
		Name: "dau", Source: "ods.visits", Output: "ads.dau", Time: "ts",
		Window: Window{Size: Duration(24 * time.Hour), TimeZone: "Asia/Shanghai", LocalColumns: []string{ColDate}},
		Measures: []Measure{
			{"dau", FnCountDistinct, "user_id"}, {"new_users", FnNewUsers, "user_id"}, {"returning_users", FnReturningUsers, "user_id"},
		},
	}
}

// dauRows reads "dt dau new returning" per day.
func dauRows(t *testing.T, cat icecat.Catalog, name string) []string {
	t.Helper()
	var out []string
	for _, r := range tableColumns(t, cat, name, ColDate, "dau", "new_users", "returning_users") {
		out = append(out, fmt.Sprintf("%v %v %v %v", r[ColDate], r["dau"], r["new_users"], r["returning_users"]))
	}
	slices.Sort(out)
	return out
}

// TestNewAndReturningUsers: DAU per local day with new and returning users
// against everything seen before, streamed across restarts of the
// aggregator and a late event earlier than a user's first-seen day (which
// moves the user's first day: two days change, though the late event's
// batch, read by a restarted aggregator, holds rows of only one), equal to the backfill at every step; and
// the same as a cumulative window and with a dimension.
func TestNewAndReturningUsers(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	ev := newEventsTable(t, cat)
	specs := []Spec{dauSpec()}
	perPage := dauSpec()
	perPage.Name, perPage.Output, perPage.Dimensions = "dau_page", "ads.dau_page", []string{"page"}
	cum := dauSpec()
	cum.Name, cum.Output, cum.Window.Step = "dau_dtd", "ads.dau_dtd", Duration(6*time.Hour)
	specs = append(specs, perPage, cum)

	step := func(name string, want []string) {
		t.Helper()
		for i, s := range specs {
			// A new aggregator each time: a restart, which rebuilds the
			// first-seen windows from the summary table.
			a, err := New(ctx, cat, s, Options{Logger: quietLogger(), Concurrency: 1})
			if err != nil {
				t.Fatal(err)
			}
			catchUp(t, a)
			sameAsBackfill(t, cat, s, name)
			if i == 0 {
				if got := dauRows(t, cat, s.Output); !slices.Equal(got, want) {
					t.Fatalf("%s: dt dau new returning\n%v\nwant\n%v", name, got, want)
				}
			}
		}
	}
	// 00:10 local on 03-02 is 16:10 UTC on 03-01: local day 03-02.
	ev.add("u1 home 2026-03-01 09:00", "u2 home 2026-03-01 23:50", "u1 cart 2026-03-02 00:10", "u3 home 2026-03-02 08:00")
	step("first", []string{"2026-03-01 2 2 0", "2026-03-02 2 1 1"})
	ev.add("u4 cart 2026-03-02 12:00", "u2 home 2026-03-03 07:00")
	step("second", []string{"2026-03-01 2 2 0", "2026-03-02 3 2 1", "2026-03-03 1 0 1"})
	// u3 was first seen on 03-02; a late event puts it on 03-01.
	ev.add("u3 cart 2026-03-01 10:00")
	step("late", []string{"2026-03-01 3 3 0", "2026-03-02 3 1 2", "2026-03-03 1 0 1"})

	// A ranged backfill of the later days counts against the history
	// before its range: u1 and u3 stay returning on 03-02.
	for _, s := range specs {
		before := tableRows(t, cat, s.Output)
		a, err := New(ctx, cat, s, Options{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Backfill(ctx, BackfillOptions{From: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
		if after := tableRows(t, cat, s.Output); !slices.Equal(before, after) {
			t.Fatalf("%s: a ranged backfill changed the table: %s", s.Name, diffRows(before, after))
		}
	}
}

// readerSnapshot reads a's source as of its current snapshot.
func readerSnapshot(ctx context.Context, a *Aggregator) (*reader.Stream, error) {
	r, err := reader.New(a.cat, a.spec.Source, a.readerConfig(nil))
	if err != nil {
		return nil, err
	}
	return r.Snapshot(ctx, reader.At{})
}

// TestCumulativeDayMemory measures the state of a day of 1-minute steps:
// 200,000 events of 20,000 users over one local day, aggregated as a
// per-minute day-to-date window (exact distinct users and new users) and
// as the day's tumbling window.
func TestCumulativeDayMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("memory measurement: not under -short")
	}
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	ev := newEventsTable(t, cat)
	rng := rand.New(rand.NewPCG(1, 2))
	sh, _ := time.LoadLocation("Asia/Shanghai")
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, sh)
	rec := func() arrow.RecordBatch {
		var rows [][]any
		for range 200_000 {
			rows = append(rows, []any{fmt.Sprintf("u%d", rng.IntN(20_000)), "home", start.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))})
		}
		return tabletest.Record(ev.sc, rows...)
	}()
	tabletest.Append(t, loadTable(t, cat, "ods.visits"), rec)
	rec.Release()

	measure := func(s Spec) (heap uint64, stateBytes int64, rows int) {
		a, err := New(ctx, cat, s, Options{Logger: quietLogger(), Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		groups, _, err := func() (*groupTable, int64, error) {
			r := newGroupTable(a.plan)
			stream, err := readerSnapshot(ctx, a)
			if err != nil {
				return nil, 0, err
			}
			n, err := a.addStream(r, stream, nil, &batchState{})
			return r, n, err
		}()
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		runtime.KeepAlive(groups)
		tbl := loadTable(t, cat, s.Output)
		sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
		if err != nil {
			t.Fatal(err)
		}
		recs, n, err := a.plan.build(groups, sc, a.opts.Allocator)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			rows += int(r.NumRows())
			r.Release()
		}
		runtime.KeepAlive(groups)
		return m1.HeapAlloc - min(m1.HeapAlloc, m0.HeapAlloc), int64(n), rows
	}
	cum := dauSpec()
	cum.Name, cum.Output, cum.Window.Step = "dau_minutes", "ads.dau_minutes", Duration(time.Minute)
	measure(withOutput(dauSpec(), "ads.warm_up")) // caches filled, not measured
	hd, sd, rd := measure(dauSpec())
	hc, sc, rc := measure(cum)
	t.Logf("day of 1-minute steps: %d rows, states %.1f MiB, heap after aggregating %.1f MiB", rc, float64(sc)/(1<<20), float64(hc)/(1<<20))
	t.Logf("the day's tumbling window: %d rows, states %.1f MiB, heap after aggregating %.1f MiB", rd, float64(sd)/(1<<20), float64(hd)/(1<<20))
	// Deltas: each step holds its minute's users (≈ 139 events of
	// distinct users per minute), so the states of the day are about the
	// events' hashes, not 1,440 growing copies of the day's set (which
	// would be ~1,440 × 10,000 × 8 bytes / 2 ≈ 55 MiB per measure).
	if sc > 16<<20 {
		t.Errorf("states of a day of steps %.1f MiB: want deltas (a few MiB), not cumulative sets", float64(sc)/(1<<20))
	}
}
