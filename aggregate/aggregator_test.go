package aggregate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/gentest"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/source/gen"
	"github.com/floe-lake/floe/table"
)

// catchUp runs CatchUp and fails the test on error.
func catchUp(t *testing.T, a *Aggregator) Result {
	t.Helper()
	r, err := a.CatchUp(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sameAsBackfill backfills s into a fresh table and compares it with s's
// output.
func sameAsBackfill(t *testing.T, cat icecat.Catalog, s Spec, suffix string) {
	t.Helper()
	ctx := context.Background()
	bs := withOutput(s, s.Output+"_check_"+suffix)
	b, err := New(ctx, cat, bs, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Backfill(ctx, BackfillOptions{}); err != nil {
		t.Fatal(err)
	}
	got, want := tableRows(t, cat, s.Output), tableRows(t, cat, bs.Output)
	if !slices.Equal(got, want) {
		t.Fatalf("%s differs from a backfill: %s", s.Output, diffRows(got, want))
	}
}

func loadTable(t *testing.T, cat icecat.Catalog, name string) *icetable.Table {
	t.Helper()
	tbl := tabletest.Load(t, cat, name)
	return tbl
}

// compactAll rewrites every data file of a table, one group per file, as
// one replace snapshot.
func compactAll(t *testing.T, cat icecat.Catalog, name string) {
	t.Helper()
	ctx := context.Background()
	tbl := loadTable(t, cat, name)
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var groups []icetable.CompactionTaskGroup
	for i, task := range tasks {
		groups = append(groups, icetable.CompactionTaskGroup{PartitionKey: fmt.Sprint(i), Tasks: []icetable.FileScanTask{task}, TotalSizeBytes: task.File.FileSizeBytes()})
	}
	res, err := tbl.RewriteDataFiles(ctx, groups, icetable.RewriteDataFilesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if op := res.Table.CurrentSnapshot().Summary.Operation; op != icetable.OpReplace {
		t.Fatalf("compaction committed a %s", op)
	}
}

// TestRestartsCompactionAndOtherWriters: streaming survives a new process
// (no state cache), a compaction of the summary table (its cache stays
// valid through a replace snapshot), and a backfill by another aggregator
// (which moves the cursor: the cache is dropped); every time the output
// equals a backfill. A ranged backfill leaves an up-to-date output as it
// is.
func TestRestartsCompactionAndOtherWriters(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	cfg := genConfig(0)
	gentest.Ensure(t, cat, cfg)
	s := exampleSpec(t, "orders_city_5m.yaml")
	s.Source, s.Time = "ods.events", "event_time"
	s.Filter = "event_type = 'page_view'"
	s.Dimensions = []string{"province", "city"}
	more := func(rows int64) {
		t.Helper()
		cfg.RowsPerPartition = rows
		if err := generate(ctx, cat, cfg, 7_000); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int64{15_000, 30_000, 40_000} {
		more(n) // a snapshot each, at least
	}
	opts := Options{Logger: quietLogger(), MaxBatchRows: 8_000}
	a, err := New(ctx, cat, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	if r := catchUp(t, a); r.Commits < 2 {
		t.Fatalf("%d commits, want several batches", r.Commits)
	}
	sameAsBackfill(t, cat, s, "1")

	// Compaction: a replace snapshot keeps the cache valid.
	compactAll(t, cat, s.Output)
	more(60_000)
	catchUp(t, a)
	if len(a.cache.parts) == 0 {
		t.Error("the state cache was dropped by a compaction")
	}
	sameAsBackfill(t, cat, s, "2")

	// Another aggregator of the same spec backfills: a's cache is stale.
	c, err := New(ctx, cat, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Backfill(ctx, BackfillOptions{}); err != nil {
		t.Fatal(err)
	}
	more(80_000)
	catchUp(t, a)
	sameAsBackfill(t, cat, s, "3")

	// A new process (empty cache) continues from the cursor.
	more(100_000)
	b, err := New(ctx, cat, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	catchUp(t, b)
	sameAsBackfill(t, cat, s, "4")
	cursor, _, err := b.Cursor(ctx)
	if err != nil || cursor != reader.Current(loadTable(t, cat, s.Source)) {
		t.Fatalf("cursor %d (%v), want the source's current snapshot", cursor, err)
	}

	// A ranged backfill reads the cursor's snapshot: nothing changes.
	before := tableRows(t, cat, s.Output)
	from := cfg.StartTime.Add(30 * time.Minute)
	res, err := b.Backfill(ctx, BackfillOptions{From: from, To: from.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Cursor != cursor {
		t.Fatalf("ranged backfill moved the cursor to %d from %d", res.Cursor, cursor)
	}
	if after := tableRows(t, cat, s.Output); !slices.Equal(before, after) {
		t.Fatalf("ranged backfill changed an up-to-date output: %s", diffRows(before, after))
	}
	if _, err := b.Backfill(ctx, BackfillOptions{From: from, To: from.Add(time.Hour), SnapshotID: cursor + 1}); err == nil || !strings.Contains(err.Error(), "ranged backfill reads the snapshot the cursor") {
		t.Fatalf("ranged backfill of another snapshot: %v", err)
	}
}

// TestCursorOnlyCommits: changes without rows for the output still move
// the cursor, so a stream is seen as caught up.
func TestCursorOnlyCommits(t *testing.T) {
	ctx := context.Background()
	cat, _ := generated(t)
	s := exampleSpec(t, "page_traffic_hourly.yaml")
	s.Filter = "event_type = 'no such type'"
	var kinds []string
	a, err := New(ctx, cat, s, Options{Logger: quietLogger(), OnCommit: func(ci CommitInfo) { kinds = append(kinds, ci.Kind) }})
	if err != nil {
		t.Fatal(err)
	}
	r := catchUp(t, a)
	if want := reader.Current(loadTable(t, cat, s.Source)); r.Cursor != want {
		t.Fatalf("cursor %d, want %d", r.Cursor, want)
	}
	if len(kinds) == 0 || kinds[0] != "cursor" {
		t.Fatalf("commits %v, want cursor commits", kinds)
	}
	if rows := tableRows(t, cat, s.Output); len(rows) != 0 {
		t.Fatalf("%d output rows, want none", len(rows))
	}
	// Caught up: nothing more to do.
	if r := catchUp(t, a); r.Commits != 0 {
		t.Fatalf("%d commits when caught up", r.Commits)
	}
}

// TestFingerprint: a summary table made with another spec is not merged
// into; a full backfill rebuilds it for the new spec.
func TestFingerprint(t *testing.T) {
	ctx := context.Background()
	cat, cfg := generated(t)
	s := exampleSpec(t, "page_traffic_hourly.yaml")
	a, err := New(ctx, cat, s, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	catchUp(t, a)
	s2 := s
	s2.Measures = append(s2.Measures[:1:1], Measure{Name: "users", Fn: FnCountDistinct, Column: "user_id"})
	b, err := New(ctx, cat, s2, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CatchUp(ctx); err == nil || !strings.Contains(err.Error(), "run a full backfill") {
		t.Fatalf("catch-up over another spec's states: %v", err)
	}
	if _, err := b.Backfill(ctx, BackfillOptions{From: cfg.StartTime, To: cfg.StartTime.Add(time.Hour)}); err == nil {
		t.Fatal("ranged backfill over another spec's states: no error")
	}
	if _, err := b.Backfill(ctx, BackfillOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := generate(ctx, cat, func() gen.Config { c := cfg; c.RowsPerPartition = 30_000; return c }(), 5_000); err != nil {
		t.Fatal(err)
	}
	catchUp(t, b)
	if got := loadTable(t, cat, s.Output).Properties()[PropFingerprint]; got != s2.Fingerprint() {
		t.Fatalf("fingerprint %q, want the new spec's %q", got, s2.Fingerprint())
	}
	// The table keeps the old spec's columns (null in rebuilt rows);
	// compare the new spec's.
	cols := []string{ColWindowStart, ColWindowEnd, "page_url", "pv", "users", ColState}
	bs := withOutput(s2, "dws.fp_check")
	c, err := New(ctx, cat, bs, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Backfill(ctx, BackfillOptions{}); err != nil {
		t.Fatal(err)
	}
	// Columns in name order: the old table has users last.
	norm := func(rows []string) []string {
		for i, r := range rows {
			f := strings.Split(r, " | ")
			slices.Sort(f)
			rows[i] = strings.Join(f, " | ")
		}
		slices.Sort(rows)
		return rows
	}
	got, want := norm(tableRows(t, cat, s.Output, cols...)), norm(tableRows(t, cat, bs.Output, cols...))
	if !slices.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("rebuilt table differs from a backfill at row %d:\n%s\n%s", i, got[i], want[i])
			}
		}
	}
}

// cdcSource is a table with row-level deletes: rows (id, ts, k, amt)
// appended, updated and deleted with equality deletes.
type cdcSource struct {
	t   *testing.T
	cat icecat.Catalog
	sc  *arrow.Schema
}

const cdcName = "cdc.orders"

func newCDCSource(t *testing.T, cat icecat.Catalog) *cdcSource {
	spec := table.Spec{
		Name: cdcName,
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "k", Type: "string"},
			{Name: "amt", Type: "decimal(18,2)"},
		},
		IdentifierFields: []string{"id"},
	}
	tbl, err := table.Ensure(context.Background(), cat, spec)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	return &cdcSource{t: t, cat: cat, sc: sc}
}

func (c *cdcSource) rows(ids []int64, version int64) arrow.RecordBatch {
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	var rows [][]any
	for _, id := range ids {
		rows = append(rows, []any{id, base.Add(time.Duration(id) * 7 * time.Minute), fmt.Sprintf("k%d", id%4), decimal128.FromI64(id*100 + version)})
	}
	return tabletest.Record(c.sc, rows...)
}

// commit writes a snapshot: equality deletes of del, then rows ins (at
// version) — an append when there are no deletes, a row delta otherwise.
func (c *cdcSource) commit(del, ins []int64, version int64) {
	c.t.Helper()
	var rec arrow.RecordBatch
	if len(ins) > 0 {
		rec = c.rows(ins, version)
	}
	tabletest.RowDelta(c.t, loadTable(c.t, c.cat, cdcName), del, rec)
}

// TestCDCRetraction: over a table with updates and deletes, count, sum and
// avg retract the deleted rows, so streaming equals the backfill of the
// final table; specs with min, max or distinct counts are refused.
func TestCDCRetraction(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	src := newCDCSource(t, cat)
	src.commit(nil, tabletest.IDs(0, 60), 0)
	s := Spec{
		Name: "cdc", Source: cdcName, Output: "dws.cdc_hourly", Time: "ts",
		Window:     Window{Size: Duration(time.Hour)},
		Dimensions: []string{"k"},
		Measures: []Measure{{Name: "n", Fn: FnCount}, {Name: "amt", Fn: FnSum, Column: "amt"},
			{Name: "avg_amt", Fn: FnAvg, Column: "amt"}},
		Top: &Top{N: 1, By: "amt"},
	}
	a, err := New(ctx, cat, s, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	strict := withOutput(s, "dws.cdc_strict")
	strict.Measures = append(strict.Measures, Measure{Name: "mx", Fn: FnMax, Column: "amt"})
	st, err := New(ctx, cat, strict, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	catchUp(t, a)
	catchUp(t, st)

	src.commit([]int64{3, 4, 5}, []int64{3, 4}, 1)   // updates 3 and 4, deletes 5
	src.commit(nil, tabletest.IDs(60, 80), 0)        // appends
	src.commit([]int64{0, 1, 2, 6, 7, 8, 9}, nil, 0) // deletes a whole group's hour
	src.commit([]int64{70}, []int64{70, 5}, 2)       // updates 70, re-inserts 5
	catchUp(t, a)
	sameAsBackfill(t, cat, s, "cdc")

	if _, err := st.CatchUp(ctx); !errors.Is(err, ErrNotRetractable) {
		t.Fatalf("max over deletes: %v, want ErrNotRetractable", err)
	}
	if _, err := New(ctx, cat, withOutput(strict, "dws.cdc_strict2"), Options{Logger: quietLogger()}); !errors.Is(err, ErrNotRetractable) {
		t.Fatalf("New with max over a table with deletes: %v, want ErrNotRetractable", err)
	} else if !strings.Contains(err.Error(), "mx (max)") {
		t.Errorf("error does not name the measure: %v", err)
	}
}
