package integration

import (
	"context"
	"database/sql"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/table"
)

// cdcDSN returns the MariaDB DSN. Without -short a test needing MariaDB
// fails, saying how to start it, when it is not reachable; under -short it
// runs (shorter) only when FLOE_MYSQL_DSN is set.
func cdcDSN(t *testing.T) string {
	t.Helper()
	if testing.Short() && os.Getenv(testenv.EnvMySQLDSN) == "" {
		t.Skip("needs MariaDB (FLOE_MYSQL_DSN); skipped under -short")
	}
	return testenv.MariaDB(t)
}

// cdcDB creates a fresh database and returns a connection to it.
func cdcDB(t *testing.T, dsn string) (*sql.DB, string) {
	t.Helper()
	return testenv.MariaDBDatabase(t, dsn, "floe_it_", 8)
}

func cdcExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%.200s: %v", q, err)
	}
}

func writeCDCConfig(t *testing.T, dir string, cc catalog.Config, dsn, dbName string) string {
	t.Helper()
	cfg := map[string]any{
		"catalog": map[string]any{
			"type": cc.Type, "name": cc.Name, "uri": cc.URI, "warehouse": cc.Warehouse,
		},
		"writer":          map[string]any{"commit-interval": "1s", "memory-budget": "64MiB"},
		"metrics-address": "off",
		"sources": []any{map[string]any{"type": "mysql", "mysql": map[string]any{
			"id": "shop", "dsn": dsn, "include": []string{dbName + `\..*`}, "table-name": "{db}.{table}",
			"batch-delay": "100ms", "max-delete-files": 4,
		}}},
	}
	return writeFloeYAML(t, dir, cfg)
}

func localWarehouse(t *testing.T) catalog.Config {
	dir := t.TempDir()
	return catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")}
}

// shopSchema is the e-commerce set of examples/cdc: users, orders and
// their items, with the types whose mapping matters.
const shopSchema = `
CREATE TABLE users (
  id BIGINT UNSIGNED PRIMARY KEY,
  email VARCHAR(120) NOT NULL,
  status ENUM('active','blocked','deleted') NOT NULL DEFAULT 'active',
  tags SET('vip','new','b2b'),
  balance DECIMAL(12,2),
  prefs JSON,
  created DATETIME(6) NOT NULL,
  note TEXT
);
CREATE TABLE orders (
  id BIGINT PRIMARY KEY,
  user_id BIGINT UNSIGNED NOT NULL,
  status ENUM('new','paid','shipped','cancelled') NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  placed DATETIME(6) NOT NULL,
  updated TIMESTAMP(3) NULL
);
CREATE TABLE order_items (
  order_id BIGINT NOT NULL,
  line INT NOT NULL,
  sku VARCHAR(32) NOT NULL,
  qty INT NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  PRIMARY KEY (order_id, line)
);`

// shopWorkload writes random transactions: inserts, updates and deletes of
// users, orders and items, many spanning tables (an order with its items,
// an order deleted with its items, a user blocked with their orders
// cancelled), and some rolled back.
type shopWorkload struct {
	db      *sql.DB
	rng     *mrand.Rand
	users   []uint64
	orders  []int64
	lines   map[int64]int
	nextUID uint64
	nextOID int64
	txns    int
}

type stmt struct {
	q    string
	args []any
}

func newShopWorkload(db *sql.DB, seed uint64) *shopWorkload {
	return &shopWorkload{db: db, rng: mrand.New(mrand.NewPCG(seed, 11)), lines: map[int64]int{}, nextUID: 1 << 63, nextOID: 1}
}

// step runs one transaction.
func (w *shopWorkload) step() error {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(w.txns) * 1234567 * time.Microsecond)
	var stmts []stmt
	var newUsers []uint64
	var newOrders []int64
	var goneOrder int64 = -1
	var goneUser uint64
	switch op := w.rng.IntN(10); {
	case op < 2 || len(w.users) < 10: // a new user, sometimes with a first order
		uid := w.nextUID
		w.nextUID++
		newUsers = append(newUsers, uid)
		var tags any
		if w.rng.IntN(3) > 0 {
			tags = []string{"vip", "new", "b2b", "vip,b2b", ""}[w.rng.IntN(5)]
		}
		stmts = append(stmts, stmt{`INSERT INTO users VALUES (?, ?, 'active', ?, ?, ?, ?, NULL)`, []any{
			uid, fmt.Sprintf("u%d@example.com", uid), tags, fmt.Sprintf("%d.%02d", w.rng.IntN(10000), w.rng.IntN(100)),
			fmt.Sprintf(`{"lang": "%s", "n": %d}`, []string{"en", "de", "fr"}[w.rng.IntN(3)], w.rng.IntN(100)), now}})
		if w.rng.IntN(2) == 0 {
			stmts = append(stmts, w.newOrder(uid, now, &newOrders)...)
		}
	case op < 5: // a new order of an existing user, with its items
		stmts = append(stmts, w.newOrder(w.users[w.rng.IntN(len(w.users))], now, &newOrders)...)
	case op < 7 && len(w.orders) > 0: // pay or ship an order, touch an item
		oid := w.orders[w.rng.IntN(len(w.orders))]
		stmts = append(stmts, stmt{`UPDATE orders SET status = ?, updated = ?, amount = amount + 1 WHERE id = ?`,
			[]any{[]string{"paid", "shipped"}[w.rng.IntN(2)], now, oid}})
		if n := w.lines[oid]; n > 0 {
			stmts = append(stmts, stmt{`UPDATE order_items SET qty = qty + 1 WHERE order_id = ? AND line = ?`, []any{oid, 1 + w.rng.IntN(n)}})
		}
	case op < 8 && len(w.orders) > 0: // cancel an order: delete it with its items
		goneOrder = w.orders[w.rng.IntN(len(w.orders))]
		stmts = append(stmts, stmt{`DELETE FROM order_items WHERE order_id = ?`, []any{goneOrder}},
			stmt{`DELETE FROM orders WHERE id = ?`, []any{goneOrder}})
	case op < 9: // update a user; sometimes block them and cancel their orders
		uid := w.users[w.rng.IntN(len(w.users))]
		stmts = append(stmts, stmt{`UPDATE users SET balance = balance - 1.25, note = ?, tags = ? WHERE id = ?`,
			[]any{strings.Repeat("x", w.rng.IntN(50)), []any{nil, "new", "vip,new,b2b"}[w.rng.IntN(3)], uid}})
		if w.rng.IntN(4) == 0 {
			stmts = append(stmts, stmt{`UPDATE users SET status = 'blocked' WHERE id = ?`, []any{uid}},
				stmt{`UPDATE orders SET status = 'cancelled', updated = ? WHERE user_id = ?`, []any{now, uid}})
		}
	default: // delete a user without orders, or a bulk update
		if w.rng.IntN(2) == 0 {
			goneUser = w.users[w.rng.IntN(len(w.users))]
			stmts = append(stmts, stmt{`DELETE FROM users WHERE id = ? AND NOT EXISTS (SELECT 1 FROM orders WHERE user_id = ?)`, []any{goneUser, goneUser}})
		} else {
			stmts = append(stmts, stmt{`UPDATE orders SET amount = amount * 1.01 WHERE id % 17 = ?`, []any{w.rng.IntN(17)}})
		}
	}
	tx, err := w.db.Begin()
	if err != nil {
		return err
	}
	for _, st := range stmts {
		if _, err := tx.Exec(st.q, st.args...); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	if w.rng.IntN(20) == 0 {
		// Rolled back: must leave no trace (and its ids are not reused).
		return tx.Rollback()
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	w.txns++
	w.users = append(w.users, newUsers...)
	w.orders = append(w.orders, newOrders...)
	if goneOrder >= 0 {
		for i, x := range w.orders {
			if x == goneOrder {
				w.orders = append(w.orders[:i], w.orders[i+1:]...)
				break
			}
		}
		delete(w.lines, goneOrder)
	}
	if goneUser != 0 {
		var n int
		if err := w.db.QueryRow(`SELECT COUNT(*) FROM users WHERE id = ?`, goneUser).Scan(&n); err == nil && n == 0 {
			for i, x := range w.users {
				if x == goneUser {
					w.users = append(w.users[:i], w.users[i+1:]...)
					break
				}
			}
		}
	}
	return nil
}

// newOrder returns the statements inserting an order of uid and its items.
func (w *shopWorkload) newOrder(uid uint64, now time.Time, added *[]int64) []stmt {
	oid := w.nextOID
	w.nextOID++
	*added = append(*added, oid)
	n := 1 + w.rng.IntN(4)
	w.lines[oid] = n
	out := []stmt{{`INSERT INTO orders VALUES (?, ?, 'new', ?, ?, NULL)`,
		[]any{oid, uid, fmt.Sprintf("%d.%02d", w.rng.IntN(500), w.rng.IntN(100)), now}}}
	var vals []string
	var args []any
	for l := 1; l <= n; l++ {
		vals = append(vals, "(?, ?, ?, ?, ?)")
		args = append(args, oid, l, fmt.Sprintf("SKU-%d", w.rng.IntN(1000)), 1+w.rng.IntN(5), fmt.Sprintf("%d.%02d", w.rng.IntN(100), w.rng.IntN(100)))
	}
	return append(out, stmt{`INSERT INTO order_items VALUES ` + strings.Join(vals, ", "), args})
}

// runWorkload runs transactions at about rate per second until stop is
// closed; it returns the number committed and the first error.
func (w *shopWorkload) run(stop <-chan struct{}, rate int) (int, error) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return w.txns, nil
		case <-tick.C:
			if err := w.step(); err != nil {
				return w.txns, err
			}
		}
	}
}

// TestCDCExactlyOnceUnderSIGKILL runs `floe ingest` over three MySQL
// tables while a random workload of inserts, updates and deletes —
// transactions spanning tables, some rolled back — runs against MariaDB,
// and SIGKILLs it again and again: at random moments and at injected
// points (after data files are written, right before and right after a
// commit). Afterwards each Iceberg table equals its MySQL table exactly.
func TestCDCExactlyOnceUnderSIGKILL(t *testing.T) {
	dsn := cdcDSN(t)
	bin := testenv.FloeBinary(t)
	kills := 20
	if testing.Short() {
		kills = 4
	}
	db, name := cdcDB(t, dsn)
	cdcExec(t, db, shopSchema)
	w := newShopWorkload(db, uint64(time.Now().UnixNano()))
	for range 500 { // rows for the initial snapshot
		if err := w.step(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	wh := localWarehouse(t)
	cfgPath := writeCDCConfig(t, dir, wh, dsn, name)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var werr error
	var committed int
	wg.Add(1)
	go func() {
		defer wg.Done()
		committed, werr = w.run(stop, 150)
	}()
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 3))
	points := []string{"", "", "after-flush:0.3", "before-commit:0.3", "after-commit:0.3"}
	for i := 0; i < kills; i++ {
		crash := points[i%len(points)]
		after := time.Duration(1000+rng.IntN(3000)) * time.Millisecond
		outcome := runIngest(t, bin, cfgPath, dir, crash, after)
		t.Logf("run %d (crash=%q, kill after %s): %s", i, crash, after, outcome)
	}
	close(stop)
	wg.Wait()
	if werr != nil {
		t.Fatalf("workload: %v", werr)
	}
	t.Logf("workload: %d transactions committed", committed)
	// A last run without faults until the lake has caught up.
	cat, err := catalog.Open(context.Background(), wh)
	if err != nil {
		t.Fatal(err)
	}
	runUntilEqual(t, bin, cfgPath, dir, db, name, cat, []string{"users", "orders", "order_items"}, 2*time.Minute)
	for _, tbl := range []string{"users", "orders", "order_items"} {
		ops := snapshotOps(t, cat, name+"."+tbl)
		t.Logf("%s snapshots: %v", tbl, ops)
		if ops["ingest/overwrite"] == 0 {
			t.Errorf("%s: no row-delta snapshot", tbl)
		}
	}
}

// snapshotOps counts a table's snapshots by Floe operation and Iceberg
// operation ("ingest/overwrite", "maintain/replace", ...).
func snapshotOps(t *testing.T, cat icecat.Catalog, name string) map[string]int {
	t.Helper()
	tbl := loadTableErr(cat, name)
	if tbl == nil {
		t.Fatalf("load %s", name)
	}
	ops := map[string]int{}
	for _, s := range tbl.Metadata().Snapshots() {
		if s.Summary != nil {
			ops[s.Summary.Properties[table.PropOperation]+"/"+string(s.Summary.Operation)]++
		}
	}
	return ops
}

// TestCDCUpdateHeavyNoDuplicates streams an update-heavy workload — the
// same 10,000 keys updated again and again, 1,000 rows per statement,
// 1,000,000 row updates in all (100,000 under -short) — while floe ingest
// is SIGKILLed, and checks that no key is ever duplicated and the table
// ends equal to MySQL. (The 10k keys × 1M updates; at this size it
// runs in about a minute on a 2-core machine.)
func TestCDCUpdateHeavyNoDuplicates(t *testing.T) {
	dsn := cdcDSN(t)
	bin := testenv.FloeBinary(t)
	const keys = 10000
	statements, kills := 1000, 5
	if testing.Short() {
		statements, kills = 100, 2
	}
	db, name := cdcDB(t, dsn)
	cdcExec(t, db, `CREATE TABLE counters (id INT PRIMARY KEY, n BIGINT NOT NULL, v VARCHAR(40), at DATETIME(6))`)
	var vals []string
	for i := 0; i < keys; i++ {
		vals = append(vals, fmt.Sprintf("(%d, 0, 'init', '2026-01-01 00:00:00')", i))
	}
	cdcExec(t, db, "INSERT INTO counters VALUES "+strings.Join(vals, ","))
	dir := t.TempDir()
	wh := localWarehouse(t)
	cfgPath := writeCDCConfig(t, dir, wh, dsn, name)

	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 5))
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for s := 0; s < statements; s++ {
			select {
			case <-stop:
				done <- nil
				return
			case <-tick.C:
			}
			var err error
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(s) * time.Millisecond)
			if s%2 == 0 {
				lo := rng.IntN(keys - 1000)
				_, err = db.Exec(`UPDATE counters SET n = n + 1, v = ?, at = ? WHERE id >= ? AND id < ?`, fmt.Sprintf("s%d", s), at, lo, lo+1000)
			} else {
				ids := make([]string, 1000)
				for i := range ids {
					ids[i] = strconv.Itoa(rng.IntN(keys))
				}
				_, err = db.Exec(`UPDATE counters SET n = n + 1, v = ?, at = ? WHERE id IN (`+strings.Join(ids, ",")+`)`, fmt.Sprintf("s%d", s), at)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 9))
	points := []string{"", "before-commit:0.3", "after-commit:0.3", "after-flush:0.3", ""}
	for i := 0; i < kills; i++ {
		after := time.Duration(2000+rng.IntN(4000)) * time.Millisecond
		outcome := runIngest(t, bin, cfgPath, dir, points[i%len(points)], after)
		t.Logf("run %d (crash=%q, kill after %s): %s", i, points[i%len(points)], after, outcome)
	}
	if err := <-done; err != nil {
		t.Fatalf("workload: %v", err)
	}
	close(stop)
	var total int64
	if err := db.QueryRow(`SELECT SUM(n) FROM counters`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d row updates of %d keys", total, keys)
	cat, err := catalog.Open(context.Background(), wh)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	runUntilEqual(t, bin, cfgPath, dir, db, name, cat, []string{"counters"}, 3*time.Minute)
	t.Logf("caught up %s after the last kill; snapshots: %v", time.Since(start).Round(time.Second), snapshotOps(t, cat, name+".counters"))
}

// runUntilEqual runs floe ingest until every table equals its MySQL table,
// then stops it with SIGTERM; it fails with the differences after timeout.
func runUntilEqual(t *testing.T, bin, cfgPath, dir string, db *sql.DB, dbName string, cat icecat.Catalog, tables []string, timeout time.Duration) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(dir, "ingest.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = logf.Close() }()
	fmt.Fprintf(logf, "---- final run\n")
	cmd := exec.Command(bin, "ingest", "-config", cfgPath, "-log-level", "debug")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(timeout)
	for {
		var diffs []string
		for _, tbl := range tables {
			want, err := tabletest.MySQLRows(db, dbName, tbl)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cdcIcebergRows(cat, dbName+"."+tbl)
			if err != nil {
				diffs = append(diffs, err.Error())
				continue
			}
			if d := tabletest.DiffRows(want, got); d != "" {
				diffs = append(diffs, tbl+": "+d)
			} else if time.Now().After(deadline) || len(diffs) == 0 {
				t.Logf("%s: %d rows, equal to MySQL", tbl, len(want))
			}
		}
		if len(diffs) == 0 {
			break
		}
		select {
		case err := <-done:
			tail, _ := os.ReadFile(filepath.Join(dir, "ingest.log"))
			t.Fatalf("floe ingest exited: %v\n%s", err, testenv.LastLines(tail, 30))
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Logf("floe ingest killed: %v", <-done)
			tail, _ := os.ReadFile(filepath.Join(dir, "ingest.log"))
			t.Fatalf("the lake did not catch up:\n%s\n%s", strings.Join(diffs, "\n"), testenv.LastLines(tail, 20))
		}
		time.Sleep(500 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("floe ingest after SIGTERM: %v", err)
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("floe ingest did not stop after SIGTERM")
	}
}

// cdcIcebergRows reads an Iceberg table in the canonical form of
// tabletest.MySQLRows, and fails on a duplicate key.
func cdcIcebergRows(cat icecat.Catalog, name string) ([]string, error) {
	tbl := loadTableErr(cat, name)
	if tbl == nil {
		return nil, fmt.Errorf("%s: not created yet", name)
	}
	return tabletest.IcebergRows(context.Background(), tbl)
}

// loadTableErr loads a table, nil when it cannot be loaded (not yet
// created).
func loadTableErr(cat icecat.Catalog, name string) *icetable.Table {
	ident, err := table.ParseIdent(name)
	if err != nil {
		return nil
	}
	tbl, err := cat.LoadTable(context.Background(), ident)
	if err != nil {
		return nil
	}
	return tbl
}
