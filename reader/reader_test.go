package reader_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
)

// TestConsecutiveSnapshotsCoverTable: a table with 100 append snapshots
// interleaved with 5 compactions; reading every consecutive pair of
// snapshots and concatenating the results gives the full table row by row,
// with no duplicate and no gap, and each append's read holds exactly its
// own rows.
func TestConsecutiveSnapshotsCoverTable(t *testing.T) {
	tabletest.EachWarehouse(t, func(t *testing.T, cat icecat.Catalog) {
		ctx := context.Background()
		f := newFixture(t, cat, eventsSpec("ods.events"))
		const appends, perAppend = 100, 30
		compactAfter := map[int]bool{17: true, 34: true, 51: true, 68: true, 85: true}
		wantRows := map[int64][]int64{} // snapshot → ids it appended
		var replaces []int64
		for i := 1; i <= appends; i++ {
			first := f.next
			id := f.appendRows(perAppend)
			wantRows[id] = tabletest.IDs(first, f.next)
			if compactAfter[i] {
				replaces = append(replaces, f.compact())
			}
		}
		r := newReader(t, cat, "ods.events", reader.Config{})
		tbl, err := r.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hist := history(tbl)
		if len(hist) != appends+len(compactAfter) {
			t.Fatalf("%d snapshots in the history, want %d", len(hist), appends+len(compactAfter))
		}

		var all []row
		prev := int64(0)
		for _, s := range hist {
			st, err := r.ChangesIn(ctx, tbl, prev, s.SnapshotID)
			if err != nil {
				t.Fatalf("read (%d, %d]: %v", prev, s.SnapshotID, err)
			}
			got := readRows(t, st)
			want := wantRows[s.SnapshotID] // nil for a replace snapshot
			gotIDs := ids(got)
			slices.Sort(gotIDs)
			if !slices.Equal(gotIDs, want) {
				t.Fatalf("snapshot %d (%s): read ids %v, want %v", s.SnapshotID, s.Summary.Operation, gotIDs, want)
			}
			if s.Summary.Operation == icetable.OpReplace && st.Files != 0 {
				t.Fatalf("replace snapshot %d plans %d files, want none", s.SnapshotID, st.Files)
			}
			all = append(all, got...)
			prev = s.SnapshotID
		}

		full, err := r.SnapshotIn(ctx, tbl, reader.At{})
		if err != nil {
			t.Fatal(err)
		}
		fullRows := sortRows(readRows(t, full))
		if int64(len(fullRows)) != appends*perAppend {
			t.Fatalf("full table has %d rows, want %d", len(fullRows), appends*perAppend)
		}
		concat := sortRows(all)
		if len(concat) != len(fullRows) {
			t.Fatalf("consecutive reads gave %d rows, the table has %d", len(concat), len(fullRows))
		}
		for i := range concat {
			if concat[i].json != fullRows[i].json {
				t.Fatalf("row %d: consecutive reads gave %s, the table holds %s", i, concat[i].json, fullRows[i].json)
			}
		}

		// One read of the whole history, and one across a compaction.
		st, err := r.ChangesIn(ctx, tbl, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := sortRows(readRows(t, st)); len(got) != len(fullRows) {
			t.Fatalf("read of the whole history gave %d rows, want %d", len(got), len(fullRows))
		}
		cur := slices.Index(historyIDs(hist), replaces[0])
		st, err = r.ChangesIn(ctx, tbl, hist[cur-2].SnapshotID, hist[cur+2].SnapshotID)
		if err != nil {
			t.Fatal(err)
		}
		want := append(append(slices.Clone(wantRows[hist[cur-1].SnapshotID]), wantRows[hist[cur+1].SnapshotID]...), wantRows[hist[cur+2].SnapshotID]...)
		got := ids(readRows(t, st))
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("read across the compaction: ids %v, want %v", got, want)
		}
	})
}

func historyIDs(h []icetable.Snapshot) []int64 {
	out := make([]int64, len(h))
	for i, s := range h {
		out[i] = s.SnapshotID
	}
	return out
}

// TestIncrementalOpensOnlyNewFiles counts the files the table's IO opens:
// reading between two snapshots opens exactly the data files the newer
// snapshot added, one manifest list, and only manifests that snapshot
// added; partition and column-stats pruning open fewer.
func TestIncrementalOpensOnlyNewFiles(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	f := newFixture(t, cat, eventsSpec("ods.events"))
	for range 30 {
		f.appendRows(30)
	}
	f.compact()
	last := f.appendRows(30) // 3 files, one per day
	counter := &countingIO{}
	loader := countingLoader(cat, counter)
	r := newReader(t, loader, "ods.events", reader.Config{})
	plain := f.load()
	parent := *plain.SnapshotByID(last).ParentSnapshotID
	added := addedFiles(t, plain, parent, last)
	if len(added) != 3 {
		t.Fatalf("the last append added %d files, want 3 (one per day)", len(added))
	}
	tbl, err := r.Load(ctx) // a fresh table: nothing cached
	if err != nil {
		t.Fatal(err)
	}

	counter.reset()
	st, err := r.ChangesIn(ctx, tbl, parent, last)
	if err != nil {
		t.Fatal(err)
	}
	if got := readRows(t, st); len(got) != 30 {
		t.Fatalf("read %d rows, want 30", len(got))
	}
	opened := counter.files("data")
	slices.Sort(opened)
	if !slices.Equal(opened, added) {
		t.Fatalf("opened data files %v, want exactly the %d files the snapshot added %v", opened, len(added), added)
	}
	if n := len(counter.files("manifest-list")); n != 1 {
		t.Fatalf("opened %d manifest lists, want 1", n)
	}
	if n := len(counter.files("manifest")); n != 1 {
		t.Fatalf("opened %d manifests, want the 1 the snapshot added", n)
	}
	t.Logf("opened %d data files, %d manifest lists, %d manifests of a table with %d snapshots",
		len(opened), len(counter.files("manifest-list")), len(counter.files("manifest")), len(tbl.Metadata().Snapshots()))

	// Partition pruning: one day of three.
	counter.reset()
	day := rowTime(f.next - 1)
	dayStart := day.Truncate(24 * 60 * 60 * 1e9)
	rd := newReader(t, loader, "ods.events", reader.Config{EventTime: &reader.TimeRange{Column: "ts", Start: dayStart, End: dayStart.AddDate(0, 0, 1)}})
	st, err = rd.ChangesIn(ctx, tbl, parent, last)
	if err != nil {
		t.Fatal(err)
	}
	if got := readRows(t, st); len(got) != 10 {
		t.Fatalf("one day of the snapshot: %d rows, want 10", len(got))
	}
	if n := len(counter.files("data")); n != 1 {
		t.Fatalf("a one-day filter opened %d data files, want 1", n)
	}

	// Column statistics: no file holds ids above the maximum.
	counter.reset()
	filter, err := reader.ParseFilter("id > 1000000")
	if err != nil {
		t.Fatal(err)
	}
	rs := newReader(t, loader, "ods.events", reader.Config{Filter: filter})
	st, err = rs.ChangesIn(ctx, tbl, parent, last)
	if err != nil {
		t.Fatal(err)
	}
	if got := readRows(t, st); len(got) != 0 || st.Files != 0 {
		t.Fatalf("id > max: %d rows from %d files, want none", len(got), st.Files)
	}
	if n := len(counter.files("data")); n != 0 {
		t.Fatalf("a filter no file can match opened %d data files", n)
	}
}

// addedFiles lists the data files live at to and not at from, sorted.
func addedFiles(t *testing.T, tbl *icetable.Table, from, to int64) []string {
	t.Helper()
	live := func(id int64) map[string]bool {
		tasks, err := tbl.Scan(icetable.WithSnapshotID(id)).PlanFiles(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, task := range tasks {
			m[task.File.FilePath()] = true
		}
		return m
	}
	before, after := live(from), live(to)
	var out []string
	for p := range after {
		if !before[p] {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// TestProjectionAndFilter reads selected columns of matching rows.
func TestProjectionAndFilter(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	f := newFixture(t, cat, eventsSpec("ods.events"))
	f.appendRows(100)
	filter, err := reader.ParseFilter("id >= 10 and id < 20 and name != 'n15'")
	if err != nil {
		t.Fatal(err)
	}
	r := newReader(t, cat, "ods.events", reader.Config{Columns: []string{"name", "id"}, Filter: filter})
	st, err := r.Changes(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if names := st.Schema.Fields(); len(names) != 2 {
		t.Fatalf("schema %s, want 2 columns", st.Schema)
	}
	got := ids(readRows(t, st))
	slices.Sort(got)
	// 14 has a null name (every 7th): != excludes nulls, as in SQL.
	want := []int64{10, 11, 12, 13, 16, 17, 18, 19}
	if !slices.Equal(got, want) {
		t.Fatalf("ids %v, want %v", got, want)
	}
}

// TestExpiredCursor: a start older than the oldest retained snapshot fails
// with ErrCursorExpired and says how to restart; a start whose child is
// retained still reads.
func TestExpiredCursor(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	f := newFixture(t, cat, eventsSpec("ods.events"))
	var snaps []int64
	for range 6 {
		snaps = append(snaps, f.appendRows(10))
	}
	tbl := f.load()
	txn := tbl.NewTransaction()
	if err := txn.ExpireSnapshots(icetable.WithOlderThan(0), icetable.WithRetainLast(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := newReader(t, cat, "ods.events", reader.Config{})
	_, err := r.Changes(ctx, snaps[0], 0)
	if !errors.Is(err, reader.ErrCursorExpired) {
		t.Fatalf("read after an expired snapshot: %v, want ErrCursorExpired", err)
	}
	for _, want := range []string{"Restart from the current snapshot", "backfill", "oldest snapshot"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := r.Changes(ctx, 0, 0); !errors.Is(err, reader.ErrCursorExpired) {
		t.Fatalf("read from the beginning of an expired history: %v, want ErrCursorExpired", err)
	}
	// snaps[2] expired but its child snaps[3] is retained: readable.
	st, err := r.Changes(ctx, snaps[2], 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := readRows(t, st); len(got) != 30 {
		t.Fatalf("read after snapshot %d: %d rows, want 30", snaps[2], len(got))
	}
	if _, err := r.Changes(ctx, 12345, 0); !errors.Is(err, reader.ErrCursorExpired) {
		t.Fatalf("unknown start: %v", err)
	}
	if _, err := r.Changes(ctx, 0, 12345); !errors.Is(err, reader.ErrSnapshotNotFound) {
		t.Fatalf("unknown end: %v", err)
	}
}

// TestBackfill reads snapshots by id and time, and an event-time range.
func TestBackfill(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	f := newFixture(t, cat, eventsSpec("ods.events"))
	first := f.appendRows(30)
	f.appendRows(30)
	tbl := f.load()
	r := newReader(t, cat, "ods.events", reader.Config{Concurrency: 4})

	st, err := r.SnapshotIn(ctx, tbl, reader.At{SnapshotID: first})
	if err != nil {
		t.Fatal(err)
	}
	if got := readRows(t, st); len(got) != 30 {
		t.Fatalf("as of the first snapshot: %d rows, want 30", len(got))
	}
	at := tbl.SnapshotByID(first).TimestampMs
	st, err = r.SnapshotIn(ctx, tbl, reader.At{Time: timeMs(at)})
	if err != nil {
		t.Fatal(err)
	}
	if got := readRows(t, st); len(got) != 30 {
		t.Fatalf("as of the first snapshot's time: %d rows, want 30", len(got))
	}
	if _, err := r.SnapshotIn(ctx, tbl, reader.At{Time: timeMs(at - 60_000)}); !errors.Is(err, reader.ErrSnapshotNotFound) {
		t.Fatalf("as of before the table: %v, want ErrSnapshotNotFound", err)
	}
	// Event-time range: the second day only.
	re := newReader(t, cat, "ods.events", reader.Config{EventTime: &reader.TimeRange{Column: "ts", Start: day0.AddDate(0, 0, 1), End: day0.AddDate(0, 0, 2)}})
	st, err = re.SnapshotIn(ctx, tbl, reader.At{})
	if err != nil {
		t.Fatal(err)
	}
	got := readRows(t, st)
	if len(got) != 20 {
		t.Fatalf("one day of 60 rows over 3 days: %d rows, want 20", len(got))
	}
	for _, row := range got {
		if row.id%3 != 1 {
			t.Fatalf("row %d is not on the second day", row.id)
		}
	}
	if st.Files != 2 {
		t.Fatalf("one day's read plans %d files, want 2 (one per append)", st.Files)
	}
}

func TestFilterBindErrors(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	f := newFixture(t, cat, eventsSpec("ods.events"))
	f.appendRows(3)
	filter, err := reader.ParseFilter("nosuch = 1")
	if err != nil {
		t.Fatal(err)
	}
	r := newReader(t, cat, "ods.events", reader.Config{Filter: filter})
	if _, err := r.Changes(context.Background(), 0, 0); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("filter on a missing column: %v", err)
	}
	_ = iceberg.AlwaysTrue{}
}
