//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/aggregate"
	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/gentest"
	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/source/gen"
	"github.com/floe-lake/floe/source/mysql"
	"github.com/floe-lake/floe/verify"
	"github.com/floe-lake/floe/writer"
)

// verifyEditPy edits one Iceberg table with PyIceberg, as another engine
// would: argv[1] is the catalog JSON, argv[2] the table, argv[3] the edit,
// {"op": "delete"|"overwrite", "where": [[column, value], ...]} and for
// overwrite "column" with "add" (a number added) or "set" (a new value):
// the one matching row is read, changed and written back by an overwrite
// with the same filter (PyIceberg's delete and append of that row). A
// commit that loses the race to a concurrent Floe commit is retried.
const verifyEditPy = `
import json, sys, time
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.expressions import AlwaysTrue, And, EqualTo
from canon import pyiceberg_catalog

cat = pyiceberg_catalog(json.loads(sys.argv[1]))
name, op = sys.argv[2], json.loads(sys.argv[3])
expr = AlwaysTrue()
for col, val in op["where"]:
    expr = And(expr, EqualTo(col, val))
for attempt in range(50):
    tbl = cat.load_table(name)
    try:
        if op["op"] == "delete":
            tbl.delete(expr)
        else:
            rows = tbl.scan(row_filter=expr).to_arrow()
            if rows.num_rows != 1:
                sys.exit(f"{name}: {op['where']} matches {rows.num_rows} rows, want 1")
            i = rows.schema.get_field_index(op["column"])
            col = rows.column(i)
            if "add" in op:
                new = pc.add(col, pa.scalar(op["add"], col.type)).cast(col.type)
            else:
                new = pa.chunked_array([pa.array([op["set"]], col.type)])
            tbl.overwrite(rows.set_column(i, rows.schema.field(i), new), overwrite_filter=expr)
        break
    except CommitFailedException:
        time.sleep(0.2)
else:
    sys.exit(f"{name}: every commit lost the race")
print(f"verify-edit: PyIceberg {op['op']} {name} where {op['where']}", file=sys.stderr)
`

// pyIcebergEdit runs verifyEditPy on table name of cc.
func pyIcebergEdit(t *testing.T, env *enginesEnvT, cc catalog.Config, name string, edit map[string]any) {
	t.Helper()
	script := filepath.Join(t.TempDir(), "verify_edit.py")
	if err := os.WriteFile(script, []byte(verifyEditPy), 0o644); err != nil {
		t.Fatal(err)
	}
	var python string
	for _, kv := range env.vars {
		if v, ok := strings.CutPrefix(kv, "FLOE_ENGINES_PYTHON="); ok {
			python = v
		}
	}
	b, err := json.Marshal(edit)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, script, enginesPythonCatalog(t, cc), name, string(b))
	cmd.Env = append(append(os.Environ(), env.vars...), "PYTHONPATH="+env.dir)
	enginesRunLogged(t, cmd)
	t.Logf("PyIceberg: %s %s %v", edit["op"], name, edit["where"])
}

// verifyText renders rep for a failure message.
func verifyText(rep *verify.Report) string {
	var b strings.Builder
	_ = rep.WriteText(&b)
	return b.String()
}

// TestEnginesVerifyAggregate: a summary table (examples/aggregate's
// orders_city_5m followed over the generator's orders) verifies equal;
// after PyIceberg overwrites one group's row with its order count off by
// one and deletes another group's row, floe verify names exactly those:
// one "different" in column orders (absolute error 1) and one "missing".
func TestEnginesVerifyAggregate(t *testing.T) {
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
	gc.Seed, gc.Partitions, gc.RowsPerPartition, gc.BatchRows = 11, 1, 30_000, 2048
	gc.LateFraction, gc.BadFraction = 0.1, 0
	gc.StartTime = time.Date(2026, 3, 1, 0, 40, 0, 0, time.UTC)
	g := gentest.Ensure(t, cat, gc)
	spec, err := aggregate.LoadSpec(filepath.Join("..", "examples", "aggregate", "orders_city_5m.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	agg, err := aggregate.New(ctx, cat, spec, aggregate.Options{Logger: quietLog(), Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	wc := writer.Config{CommitInterval: time.Hour, CommitRows: 6_000}
	wc.ApplyDefaults()
	w := writer.New(cat, wc, writer.Options{Logger: quietLog()})
	if err := g.Run(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := agg.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	opts := verify.Options{Logger: quietLog(), Concurrency: 2}
	rep, err := verify.Aggregate(ctx, cat, spec, verify.AggregateRange{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Equal() || rep.Tables[0].RowsCompared == 0 {
		t.Fatalf("clean run: want equal, got\n%s", verifyText(rep))
	}
	groups := rep.Tables[0].RowsCompared

	// Two groups with their dimensions set, in a stable order.
	var keys [][]any
	for _, r := range kafkaScan(t, cat, spec.Output, aggregate.ColWindowStart, "province", "city") {
		if r[1] != nil && r[2] != nil {
			keys = append(keys, r)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	where := func(k []any) [][]any {
		return [][]any{{aggregate.ColWindowStart, k[0].(time.Time).UnixMicro()}, {"province", k[1]}, {"city", k[2]}}
	}
	altered, deleted := keys[0], keys[len(keys)/2]
	pyIcebergEdit(t, env, cc, spec.Output, map[string]any{"op": "overwrite", "where": where(altered), "column": "orders", "add": 1})
	pyIcebergEdit(t, env, cc, spec.Output, map[string]any{"op": "delete", "where": where(deleted)})

	rep, err = verify.Aggregate(ctx, cat, spec, verify.AggregateRange{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tr := rep.Tables[0]
	if rep.Differences() != 2 || tr.Counts[verify.KindDifferent] != 1 || tr.Counts[verify.KindMissing] != 1 || tr.RowsCompared != groups {
		t.Fatalf("want one different and one missing group of %d, got\n%s", groups, verifyText(rep))
	}
	for _, d := range tr.Differences {
		k := altered
		if d.Kind == verify.KindMissing {
			k = deleted
		} else if d.Column != "orders" || d.AbsError == nil || *d.AbsError != 1 {
			t.Errorf("difference %+v: want column orders off by 1", d)
		}
		if !strings.Contains(d.Key, fmt.Sprint(k[1])) || !strings.Contains(d.Key, fmt.Sprint(k[2])) {
			t.Errorf("%s difference names %q, want the group %v", d.Kind, d.Key, k)
		}
	}
	t.Logf("after PyIceberg's edits:\n%s", verifyText(rep))
}

// TestEnginesVerifyMySQL: a MariaDB table captured by the CDC source
// verifies equal; after PyIceberg deletes one row of the Iceberg table
// and overwrites another with a changed name, floe verify mysql names
// exactly those rows: id=11 missing, id=7 different in column name.
func TestEnginesVerifyMySQL(t *testing.T) {
	if testing.Short() {
		t.Skip("engines: not under -short")
	}
	env := enginesEnv(t)
	dsn := cdcDSN(t)
	db, dbName := cdcDB(t, dsn)
	ctx := context.Background()
	cdcExec(t, db, `CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(10,2), seen DATETIME(6))`)
	var vals []string
	for i := range 300 {
		vals = append(vals, fmt.Sprintf("(%d, 'item %d', %d.%02d, '2026-03-01 12:%02d:%02d.%06d')", i, i, i, i%100, i%60, i%60, i*7))
	}
	cdcExec(t, db, "INSERT INTO items VALUES "+strings.Join(vals, ","))

	cc := localWarehouse(t)
	cat, err := catalog.Open(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mysql.DefaultConfig()
	cfg.ID, cfg.DSN = "mysql_"+dbName, dsn
	cfg.ServerID = 1_000_000 + rand.Uint32N(1_000_000)
	cfg.Include = []string{dbName + `\.items`}
	cfg.PositionCommitInterval = time.Second // other tests move the shared binlog
	cfg.ApplyDefaults()
	src, err := mysql.New(cfg, mysql.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	superviseInProcess(t, cat, src)

	mo := verify.MySQLOptions{Wait: 90 * time.Second, PollInterval: 200 * time.Millisecond, ChunkRows: 20}
	opts := verify.Options{Logger: quietLog()}
	rep, err := verify.MySQL(ctx, cat, cfg, mo, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tables) != 1 || !rep.Equal() || rep.Skipped() > 0 || rep.Tables[0].RowsCompared != 300 {
		t.Fatalf("clean run: want one equal table of 300 rows, got\n%s", verifyText(rep))
	}

	name := dbName + ".items"
	pyIcebergEdit(t, env, cc, name, map[string]any{"op": "delete", "where": [][]any{{"id", 11}}})
	pyIcebergEdit(t, env, cc, name, map[string]any{"op": "overwrite", "where": [][]any{{"id", 7}}, "column": "name", "set": "edited by pyiceberg"})

	rep, err = verify.MySQL(ctx, cat, cfg, mo, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []verify.Difference{
		// Want is the database's value, Got the table's.
		{Kind: verify.KindDifferent, Key: "id=7", Column: "name", Want: `"item 7"`, Got: `"edited by pyiceberg"`},
		{Kind: verify.KindMissing, Key: "id=11"},
	}
	got := rep.Tables[0].Differences
	if rep.Differences() != 2 || len(got) != 2 {
		t.Fatalf("want 2 differences, got\n%s", verifyText(rep))
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || (g.Kind == w.Kind && g.Key == w.Key && g.Column == w.Column && g.Want == w.Want && g.Got == w.Got)
		}
		if !found {
			t.Errorf("difference %+v not found in\n%s", w, verifyText(rep))
		}
	}
	t.Logf("after PyIceberg's edits:\n%s", verifyText(rep))
}

// superviseInProcess ensures src's tables and runs it under
// source.Supervise until the test ends.
func superviseInProcess(t *testing.T, cat icecat.Catalog, src source.Source) {
	t.Helper()
	specs, err := src.Specs(nil)
	if err != nil {
		t.Fatal(err)
	}
	gentest.Supervise(t, cat, src, specs, quietLog())
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
