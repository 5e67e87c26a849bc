package transform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
)

// TestDimensionVersions: a fact joins the dimension rows current when its
// source snapshot was committed; streaming and backfill agree; a late
// dimension update changes neither the streamed rows nor a backfill.
func TestDimensionVersions(t *testing.T) {
	cat := warehouse(t)
	appendRows(t, cat, "ods.regions", []any{int64(1), "Zhejiang"}, []any{int64(2), "Jiangsu"})
	appendRows(t, cat, "ods.users", []any{int64(10), "Hangzhou", int64(1)}, []any{int64(11), "Nanjing", int64(2)})
	appendRows(t, cat, "ods.orders", order(1, 10, 100, 0), order(2, 11, 200, time.Minute), order(3, 99, 300, 2*time.Minute))

	stream := newT(t, cat, Spec{SQL: detailSQL, Output: "dwd.order_detail"})
	catchUp(t, stream)

	// User 10 moves to Suzhou (region 2); later facts join the new row.
	replaceRows(t, cat, "ods.users", []any{int64(10), "Suzhou", int64(2)}, []any{int64(11), "Nanjing", int64(2)})
	appendRows(t, cat, "ods.orders", order(4, 10, 400, 3*time.Minute), []any{int64(5), nil, int64(500), t0.Add(4 * time.Minute)})
	catchUp(t, stream)

	want := []string{
		"1|2026-03-01T10:00:00Z|100|10|Hangzhou|Zhejiang",
		"2|2026-03-01T10:01:00Z|200|11|Nanjing|Jiangsu",
		"3|2026-03-01T10:02:00Z|300|99|<nil>|<nil>",
		"4|2026-03-01T10:03:00Z|400|10|Suzhou|Jiangsu",
		"5|2026-03-01T10:04:00Z|500|<nil>|<nil>|<nil>",
	}
	got := rowsOf(t, cat, "dwd.order_detail")
	if !slices.Equal(got, want) {
		t.Fatalf("streamed rows:%s", diff(want, got))
	}
	bf := newT(t, cat, Spec{SQL: detailSQL, Output: "dwd.order_detail_backfill"})
	backfill(t, bf)
	if got := rowsOf(t, cat, "dwd.order_detail_backfill"); !slices.Equal(got, want) {
		t.Fatalf("backfill differs from streaming:%s", diff(want, got))
	}

	// A late dimension update: user 11 and region 2 change after every
	// fact. Already joined facts are not rewritten, and a re-run backfill
	// finds the versions of their own times again.
	replaceRows(t, cat, "ods.users", []any{int64(10), "Suzhou", int64(2)}, []any{int64(11), "Wuxi", int64(2)})
	replaceRows(t, cat, "ods.regions", []any{int64(1), "Zhejiang"}, []any{int64(2), "JS"})
	catchUp(t, stream)
	if got := rowsOf(t, cat, "dwd.order_detail"); !slices.Equal(got, want) {
		t.Fatalf("a late dimension update changed streamed rows:%s", diff(want, got))
	}
	backfill(t, bf)
	if got := rowsOf(t, cat, "dwd.order_detail_backfill"); !slices.Equal(got, want) {
		t.Fatalf("a re-run backfill after a late dimension update:%s", diff(want, got))
	}
	// A fact after the update joins it.
	appendRows(t, cat, "ods.orders", order(6, 11, 600, 5*time.Minute))
	catchUp(t, stream)
	got = rowsOf(t, cat, "dwd.order_detail")
	if w := "6|2026-03-01T10:05:00Z|600|11|Wuxi|JS"; !slices.Contains(got, w) {
		t.Fatalf("a fact after the update: want %s in%s", w, diff(nil, got))
	}
}

// TestDedupAcrossRestart: the first row per key within the window is kept,
// across a restart (a new Transformer rebuilds the seen keys from the
// output), and a backfill keeps the same rows.
func TestDedupAcrossRestart(t *testing.T) {
	cat := warehouse(t)
	spec := Spec{
		SQL:    "SELECT order_id, user_id, amount, event_time FROM ods.orders",
		Output: "dwd.orders_dedup",
		Dedup:  &Dedup{Key: []string{"order_id"}, Time: "event_time", Window: Duration(time.Hour)},
	}
	appendRows(t, cat, "ods.orders", order(1, 10, 100, 0), order(2, 10, 200, time.Minute), order(1, 10, 101, 2*time.Minute))
	catchUp(t, newT(t, cat, spec))

	// A restarted transform: order 1 again within the hour is a
	// duplicate; order 2 again two hours later is not; order 3 is new.
	appendRows(t, cat, "ods.orders", order(1, 10, 102, 30*time.Minute), order(2, 10, 201, 3*time.Hour), order(3, 10, 300, 3*time.Hour))
	catchUp(t, newT(t, cat, spec))
	// Once more: order 2 within the hour of its second kept row.
	appendRows(t, cat, "ods.orders", order(2, 10, 202, 3*time.Hour+10*time.Minute), order(3, 10, 301, 5*time.Hour))
	catchUp(t, newT(t, cat, spec))

	want := []string{
		"1|10|100|2026-03-01T10:00:00Z",
		"2|10|200|2026-03-01T10:01:00Z",
		"2|10|201|2026-03-01T13:00:00Z",
		"3|10|300|2026-03-01T13:00:00Z",
		"3|10|301|2026-03-01T15:00:00Z",
	}
	if got := rowsOf(t, cat, spec.Output); !slices.Equal(got, want) {
		t.Fatalf("dedup across restarts:%s", diff(want, got))
	}
	bs := spec
	bs.Output = "dwd.orders_dedup_backfill"
	backfill(t, newT(t, cat, bs))
	if got := rowsOf(t, cat, bs.Output); !slices.Equal(got, want) {
		t.Fatalf("backfill differs from streaming:%s", diff(want, got))
	}
}

// TestDedupKeyHoldsTime: a dedup key that holds the time column (the
// warehouse example's [order_id, created_at]) survives a restart: the
// state is read back from the output (the time column once) and a
// duplicate after the restart is dropped, as the backfill drops it.
func TestDedupKeyHoldsTime(t *testing.T) {
	cat := warehouse(t)
	spec := Spec{
		SQL:    "SELECT order_id, user_id, amount, event_time FROM ods.orders",
		Output: "dwd.orders_dedup_time",
		Dedup:  &Dedup{Key: []string{"order_id", "event_time"}, Time: "event_time", Window: Duration(time.Hour)},
	}
	appendRows(t, cat, "ods.orders", order(1, 10, 100, 0), order(2, 10, 200, time.Minute))
	catchUp(t, newT(t, cat, spec))
	// Restarted: order 1 at the same time is a duplicate, at another
	// time a new key.
	appendRows(t, cat, "ods.orders", order(1, 10, 101, 0), order(1, 10, 102, 2*time.Minute))
	catchUp(t, newT(t, cat, spec))

	want := []string{
		"1|10|100|2026-03-01T10:00:00Z",
		"1|10|102|2026-03-01T10:02:00Z",
		"2|10|200|2026-03-01T10:01:00Z",
	}
	if got := rowsOf(t, cat, spec.Output); !slices.Equal(got, want) {
		t.Fatalf("dedup on a key holding the time, across a restart:%s", diff(want, got))
	}
	bs := spec
	bs.Output = "dwd.orders_dedup_time_backfill"
	backfill(t, newT(t, cat, bs))
	if got := rowsOf(t, cat, bs.Output); !slices.Equal(got, want) {
		t.Fatalf("backfill differs from streaming:%s", diff(want, got))
	}
}

// TestRefusals: a dimension without a key, or joined on columns that do
// not cover it, is refused before anything is written; so is a source that
// deletes rows, naming its snapshot.
func TestRefusals(t *testing.T) {
	cat := warehouse(t)
	ctx := context.Background()
	for _, sql := range []string{
		"SELECT o.order_id FROM ods.orders o LEFT JOIN ods.orders p ON o.user_id = p.order_id",
		"SELECT o.order_id, u.city FROM ods.orders o LEFT JOIN ods.users u ON o.user_id = u.region_id",
	} {
		_, err := New(ctx, cat, Spec{SQL: sql, Output: "dwd.x"}, Options{Logger: quietLogger()})
		if !errors.Is(err, ErrNotKeyed) || !IsPermanent(err) {
			t.Errorf("%s: got %v, want a permanent ErrNotKeyed", sql, err)
		}
	}

	// A source that deletes (the keyed-table path: a row delta).
	items := table.Spec{Name: "ods.items", Schema: []table.Field{{Name: "id", Type: "long", Required: true}, {Name: "v", Type: "string"}}}
	if _, err := table.Ensure(ctx, cat, items); err != nil {
		t.Fatal(err)
	}
	appendRows(t, cat, "ods.items", []any{int64(1), "a"}, []any{int64(2), "b"})
	tr := newT(t, cat, Spec{SQL: "SELECT id, v FROM ods.items", Output: "dwd.items"})
	catchUp(t, tr)
	tbl := tabletest.RowDelta(t, tabletest.Load(t, cat, "ods.items"), []int64{1}, nil)
	_, err := tr.CatchUp(ctx)
	snap := tbl.CurrentSnapshot().SnapshotID
	if !errors.Is(err, ErrSourceDeletes) || !IsPermanent(err) || !strings.Contains(err.Error(), fmt.Sprint(snap)) {
		t.Fatalf("a source delete: got %v, want a permanent ErrSourceDeletes naming snapshot %d", err, snap)
	}
	if got := rowsOf(t, cat, "dwd.items"); len(got) != 2 {
		t.Fatalf("output after the refused delete: %v", got)
	}
}

// TestFenced: a backfill commits while a stream runs; the stream's next
// commit is fenced, its batch dropped, and it resumes from the backfill's
// cursor: no row is lost or doubled.
func TestFenced(t *testing.T) {
	cat := warehouse(t)
	spec := Spec{SQL: "SELECT order_id, amount FROM ods.orders", Output: "dwd.orders"}
	appendRows(t, cat, "ods.orders", order(1, 10, 100, 0))
	stream := newT(t, cat, spec)
	catchUp(t, stream)
	appendRows(t, cat, "ods.orders", order(2, 10, 200, 0))
	fenced := false
	stream.opts.Hooks.BeforeCommit = func() {
		if !fenced {
			fenced = true
			appendRows(t, cat, "ods.orders", order(3, 10, 300, 0))
			backfill(t, newT(t, cat, spec))
		}
	}
	res := catchUp(t, stream)
	if !fenced {
		t.Fatal("the hook did not run")
	}
	want := []string{"1|100", "2|200", "3|300"}
	if got := rowsOf(t, cat, spec.Output); !slices.Equal(got, want) {
		t.Fatalf("after a fenced commit (result %+v):%s", res, diff(want, got))
	}
}

// TestFilterAndDerivedColumns: WHERE conjuncts over the source run before
// the joins and those over a dimension after them; derived columns take
// their types from the expressions.
func TestFilterAndDerivedColumns(t *testing.T) {
	cat := warehouse(t)
	appendRows(t, cat, "ods.regions", []any{int64(1), "Zhejiang"}, []any{int64(2), "Jiangsu"})
	appendRows(t, cat, "ods.users", []any{int64(10), "Hangzhou", int64(1)}, []any{int64(11), "Nanjing", int64(2)})
	appendRows(t, cat, "ods.orders", order(1, 10, 100, 0), order(2, 11, 200, time.Minute), order(3, 10, 5, 2*time.Minute),
		order(4, 12, 400, 3*time.Minute), order(5, 10, 50, 13*time.Hour+30*time.Minute))
	sql := `SELECT o.order_id AS id, o.amount * 2 AS doubled, CAST(o.event_time AS DATE) AS dt,
  CAST(timezone('Asia/Shanghai', o.event_time) AS DATE) AS local_dt,
  CASE WHEN o.amount >= 200 THEN 'big' ELSE 'small' END AS size, coalesce(r.province, 'unknown') AS province
FROM ods.orders o
LEFT JOIN ods.users u ON o.user_id = u.user_id
LEFT JOIN ods.regions r ON u.region_id = r.region_id
WHERE o.amount > 10 AND (r.province IS NULL OR r.province <> 'Jiangsu')`
	tr := newT(t, cat, Spec{SQL: sql, Output: "dwd.filtered", Partition: []table.PartitionField{{Column: "dt"}}})
	if tr.plan.early == nil || tr.plan.where == nil {
		t.Fatalf("WHERE split: early %v, late %v; want both", tr.plan.early, tr.plan.where)
	}
	catchUp(t, tr)
	want := []string{
		"1|200|2026-03-01|2026-03-01|small|Zhejiang",
		"4|800|2026-03-01|2026-03-01|big|unknown",
		"5|100|2026-03-01|2026-03-02|small|Zhejiang",
	}
	got := rowsOf(t, cat, "dwd.filtered")
	if !slices.Equal(got, want) {
		t.Fatalf("rows:%s", diff(want, got))
	}
	tbl := tabletest.Load(t, cat, "dwd.filtered")
	for col, typ := range map[string]string{"id": "long", "doubled": "long", "dt": "date", "local_dt": "date", "size": "string"} {
		f, ok := tbl.Schema().FindFieldByName(col)
		if !ok || f.Type.String() != typ {
			t.Errorf("column %s: %v, want %s", col, f.Type, typ)
		}
	}
	backfill(t, newT(t, cat, Spec{SQL: sql, Output: "dwd.filtered_backfill"}))
	if got := rowsOf(t, cat, "dwd.filtered_backfill"); !slices.Equal(got, want) {
		t.Fatalf("backfill:%s", diff(want, got))
	}
}

// TestKeyedSource: a keyed source whose key the select list keeps writes a
// keyed output and applies the source's deletes and updates (an update
// whose new image fails WHERE removes the row); streaming equals the
// backfill.
func TestKeyedSource(t *testing.T) {
	cat := warehouse(t)
	ctx := context.Background()
	accounts := table.Spec{Name: "ods.accounts", Schema: []table.Field{
		{Name: "id", Type: "long", Required: true}, {Name: "name", Type: "string"}, {Name: "user_id", Type: "long"},
	}, IdentifierFields: []string{"id"}}
	if _, err := table.Ensure(ctx, cat, accounts); err != nil {
		t.Fatal(err)
	}
	appendRows(t, cat, "ods.users", []any{int64(10), "Hangzhou", int64(1)}, []any{int64(11), "Nanjing", int64(2)})
	appendRows(t, cat, "ods.accounts", []any{int64(1), "a", int64(10)}, []any{int64(2), "b", int64(11)}, []any{int64(3), "c", int64(10)})
	sql := "SELECT a.id, a.name, u.city FROM ods.accounts a LEFT JOIN ods.users u ON a.user_id = u.user_id WHERE a.name <> 'skip'"
	fc := &tabletest.FaultCatalog{Catalog: cat}
	stream := newT(t, fc, Spec{SQL: sql, Output: "dwd.accounts"})
	catchUp(t, stream)
	sc := arrowSchema(t, cat, "ods.accounts")
	delta := func(ids []int64, rows ...[]any) {
		var rec arrow.RecordBatch
		if len(rows) > 0 {
			rec = tabletest.Record(sc, rows...)
			defer rec.Release()
		}
		tabletest.RowDelta(t, tabletest.Load(t, cat, "ods.accounts"), ids, rec)
		time.Sleep(5 * time.Millisecond)
	}
	// Delete 2, update 1 (moves to user 11), insert 4; the output's
	// commit conflicts twice, then lands unknown (the catalog says it
	// failed), so the row delta is staged again from the same batches.
	delta([]int64{2, 1}, []any{int64(1), "a2", int64(11)}, []any{int64(4), "d", int64(10)})
	faults := 0
	fc.Before = func(int) error {
		if faults++; faults <= 2 {
			return fmt.Errorf("requirement failed: branch main has changed: %w", tabletest.ErrInjected)
		}
		return nil
	}
	fc.After = func(int) error {
		if faults++; faults == 4 {
			return tabletest.ErrInjected
		}
		return nil
	}
	catchUp(t, stream)
	fc.Before, fc.After = nil, nil
	if faults < 4 {
		t.Fatalf("%d faults injected, want 4", faults)
	}
	// Delete 3, update 4 to a name the filter drops, insert 5.
	delta([]int64{3, 4}, []any{int64(4), "skip", int64(10)}, []any{int64(5), "e", int64(99)})
	catchUp(t, stream)

	want := []string{"1|a2|Nanjing", "5|e|<nil>"}
	if got := rowsOf(t, cat, "dwd.accounts"); !slices.Equal(got, want) {
		t.Fatalf("streamed keyed output:%s", diff(want, got))
	}
	out := tabletest.Load(t, cat, "dwd.accounts")
	if ids := out.Schema().IdentifierFieldIDs; len(ids) != 1 {
		t.Fatalf("output identifier fields %v, want [id]", ids)
	}
	backfill(t, newT(t, cat, Spec{SQL: sql, Output: "dwd.accounts_backfill"}))
	if got := rowsOf(t, cat, "dwd.accounts_backfill"); !slices.Equal(got, want) {
		t.Fatalf("backfill:%s", diff(want, got))
	}

	// Dropping the key from the select list makes the output append-only,
	// and the deletes are refused.
	_, err := newT(t, cat, Spec{SQL: "SELECT a.name FROM ods.accounts a", Output: "dwd.names"}).CatchUp(ctx)
	if !errors.Is(err, ErrSourceDeletes) || !strings.Contains(err.Error(), "keep its key [id]") {
		t.Fatalf("without the key: got %v, want ErrSourceDeletes with a hint", err)
	}
}
