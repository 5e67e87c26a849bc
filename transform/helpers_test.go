package transform

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// The test warehouse: orders (facts), users and regions (keyed
// dimensions).
var (
	ordersSpec = table.Spec{Name: "ods.orders", Schema: []table.Field{
		{Name: "order_id", Type: "long", Required: true},
		{Name: "user_id", Type: "long"},
		{Name: "amount", Type: "long"},
		{Name: "event_time", Type: "timestamptz"},
	}}
	usersSpec = table.Spec{Name: "ods.users", Schema: []table.Field{
		{Name: "user_id", Type: "long", Required: true},
		{Name: "city", Type: "string"},
		{Name: "region_id", Type: "long"},
	}, IdentifierFields: []string{"user_id"}}
	regionsSpec = table.Spec{Name: "ods.regions", Schema: []table.Field{
		{Name: "region_id", Type: "long", Required: true},
		{Name: "province", Type: "string"},
	}, IdentifierFields: []string{"region_id"}}
)

// detailSQL joins orders with users and regions.
const detailSQL = `SELECT o.order_id, o.event_time, o.amount, o.user_id, u.city, r.province
FROM ods.orders o
LEFT JOIN ods.users u ON o.user_id = u.user_id
LEFT JOIN ods.regions r ON u.region_id = r.region_id`

// warehouse creates the three tables.
func warehouse(t testing.TB) icecat.Catalog {
	t.Helper()
	cat := tabletest.OpenSQLite(t)
	for _, s := range []table.Spec{ordersSpec, usersSpec, regionsSpec} {
		if _, err := table.Ensure(context.Background(), cat, s); err != nil {
			t.Fatal(err)
		}
	}
	return cat
}

func arrowSchema(t testing.TB, cat icecat.Catalog, name string) *arrow.Schema {
	t.Helper()
	tbl := tabletest.Load(t, cat, name)
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// appendRows commits rows to the table name in one snapshot, then waits
// a few milliseconds so that snapshots of different tables have distinct
// commit times.
func appendRows(t testing.TB, cat icecat.Catalog, name string, rows ...[]any) {
	t.Helper()
	rec := tabletest.Record(arrowSchema(t, cat, name), rows...)
	defer rec.Release()
	tabletest.Append(t, tabletest.Load(t, cat, name), rec)
	time.Sleep(5 * time.Millisecond)
}

// replaceRows replaces every row of the table name (a new version of a
// dimension) in one snapshot.
func replaceRows(t testing.TB, cat icecat.Catalog, name string, rows ...[]any) {
	t.Helper()
	rec := tabletest.Record(arrowSchema(t, cat, name), rows...)
	defer rec.Release()
	rdr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	txn := tabletest.Load(t, cat, name).NewTransaction()
	if err := txn.Overwrite(context.Background(), rdr, nil, icetable.WithOverwriteFilter(iceberg.AlwaysTrue{})); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// order is a row of ods.orders.
func order(id, user, amount int64, at time.Duration) []any {
	return []any{id, user, amount, t0.Add(at)}
}

// rowsOf reads every row of the table name as strings, sorted.
func rowsOf(t testing.TB, cat icecat.Catalog, name string) []string {
	t.Helper()
	var out []string
	tabletest.Each(t, tabletest.Load(t, cat, name), func(rec arrow.RecordBatch) {
		for i := range int(rec.NumRows()) {
			parts := make([]string, rec.NumCols())
			for c, col := range rec.Columns() {
				switch a := col.(type) {
				case *array.Timestamp:
					if a.IsValid(i) {
						parts[c] = a.Value(i).ToTime(arrow.Microsecond).UTC().Format(time.RFC3339)
						continue
					}
				}
				parts[c] = "<nil>"
				if col.IsValid(i) {
					parts[c] = col.ValueStr(i)
				}
			}
			out = append(out, strings.Join(parts, "|"))
		}
	})
	slices.Sort(out)
	return out
}

func newT(t testing.TB, cat icecat.Catalog, s Spec) *Transformer {
	t.Helper()
	if s.Name == "" {
		s.Name = s.Output
	}
	tr, err := New(context.Background(), cat, s, Options{Logger: quietLogger(), PollInterval: 10 * time.Millisecond, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

func catchUp(t testing.TB, tr *Transformer) Result {
	t.Helper()
	res, err := tr.CatchUp(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func backfill(t testing.TB, tr *Transformer) Result {
	t.Helper()
	res, err := tr.Backfill(context.Background(), BackfillOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func diff(want, got []string) string {
	var b strings.Builder
	for _, w := range want {
		if !slices.Contains(got, w) {
			fmt.Fprintf(&b, "\n- %s", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			fmt.Fprintf(&b, "\n+ %s", g)
		}
	}
	return b.String()
}
