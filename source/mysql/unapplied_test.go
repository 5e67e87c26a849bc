package mysql

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// deadLetter is one row of the dead-letter table.
type deadLetter struct {
	target, key, reason string
	hasKey              bool
}

// deadLetters reads the dead-letter table's rows for target.
func deadLettersOf(t testing.TB, cat icecat.Catalog, target string) ([]deadLetter, error) {
	t.Helper()
	ident, _ := table.ParseIdent(DefaultConfig().DeadLetterTable)
	tbl, err := cat.LoadTable(context.Background(), ident)
	if err != nil {
		return nil, err
	}
	_, recs, err := tbl.Scan().ToArrowRecords(context.Background())
	if err != nil {
		return nil, err
	}
	var out []deadLetter
	for rec, err := range recs {
		if err != nil {
			return nil, err
		}
		col := func(name string) int {
			idx := rec.Schema().FieldIndices(name)
			if len(idx) == 0 {
				t.Fatalf("dead-letter table has no column %s", name)
			}
			return idx[0]
		}
		str := func(c, i int) string {
			switch a := rec.Column(c).(type) {
			case *array.String:
				return a.Value(i)
			case *array.Binary:
				return string(a.Value(i))
			}
			return ""
		}
		tc, kc, rc := col("target_table"), col("key"), col("reason")
		for i := 0; i < int(rec.NumRows()); i++ {
			if str(tc, i) != target {
				continue
			}
			out = append(out, deadLetter{target: target, key: str(kc, i), hasKey: !rec.Column(kc).IsNull(i), reason: str(rc, i)})
		}
		rec.Release()
	}
	return out, nil
}

// session returns one connection of db with the session statements run:
// SET SESSION of sql_mode, binlog_format and binlog_row_image affects only
// the binlog events of that connection (the server is shared).
func session(t testing.TB, db *sql.DB, stmts ...string) *sql.Conn {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	for _, q := range stmts {
		connExec(t, conn, q)
	}
	return conn
}

func connExec(t testing.TB, conn *sql.Conn, q string, args ...any) {
	t.Helper()
	if _, err := conn.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", abbreviate(q, 200), err)
	}
}

// TestBadKeyDeadLetter: a row whose primary-key value Iceberg cannot hold
// (a zero date, written with an empty sql_mode) becomes exactly one dead letter
// with its key and the reason, in an insert, an update of the row and its
// delete; the table and the other tables go on. Before the fix, deleteRow
// and badRow called each other until the stack overflowed.
func TestBadKeyDeadLetter(t *testing.T) {
	dsn := mariaDSN(t)
	db, name := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE days (day DATE PRIMARY KEY, n INT)`)
	mustExec(t, db, `CREATE TABLE other (id INT PRIMARY KEY, v TEXT)`)
	mustExec(t, db, `INSERT INTO days VALUES ('2024-01-01', 1)`)
	cat := tabletest.OpenSQLite(t)
	src, err := New(testConfig(dsn, name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop := runSupervised(t, cat, src, testWriterConfig(), writer.Hooks{})
	waitEqual(t, db, name, "days", cat, name+".days", 30*time.Second)

	conn := session(t, db, `SET SESSION sql_mode = ''`)
	steps := []struct {
		q        string
		wantDead int // dead letters of days after the step
	}{
		{`INSERT INTO days (day, n) VALUES ('0000-00-00', 2), ('2024-01-02', 3)`, 1},
		{`UPDATE days SET n = 4 WHERE day = '0000-00-00'`, 2},
		{`DELETE FROM days WHERE day = '0000-00-00'`, 3},
	}
	for _, s := range steps {
		connExec(t, conn, s.q)
		mustExec(t, db, `INSERT INTO other VALUES (?, 'after')`, s.wantDead)
		waitEqual(t, db, name, "other", cat, name+".other", 30*time.Second)
		var dead []deadLetter
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			dead, err = deadLettersOf(t, cat, name+".days")
			if err == nil && len(dead) >= s.wantDead {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %q: dead letters %v (%v), want %d", s.q, dead, err, s.wantDead)
			}
		}
		if len(dead) != s.wantDead {
			t.Fatalf("after %q: %d dead letters, want %d: %v", s.q, len(dead), s.wantDead, dead)
		}
		for _, d := range dead {
			if !d.hasKey || !strings.Contains(d.key, "0000-00-00") || !strings.Contains(d.reason, "day") {
				t.Errorf("after %q: dead letter without its key or reason: %+v", s.q, d)
			}
		}
	}
	// The zero date never reaches the table; the good rows do.
	got, err := icebergRows(t, cat, name+".days")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"2024-01-01 | 1", "2024-01-02 | 3"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("days: %v, want %v", got, want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotDeadLetterKey: a row the snapshot cannot map becomes a dead
// letter carrying its key, as the binlog path's dead letters do.
func TestSnapshotDeadLetterKey(t *testing.T) {
	dsn := mariaDSN(t)
	db, name := testDB(t, dsn)
	cases := []struct {
		table, create, insert string
		wantKey               string
	}{
		{"ints", `(id INT PRIMARY KEY, d DATE)`, `(1, '2024-01-01'), (2, '0000-00-00')`, `{"id":2}`},
		{"pairs", `(a BIGINT UNSIGNED, b VARCHAR(10), tm TIME, PRIMARY KEY (a, b))`,
			`(18446744073709551615, 'x', '-01:00:00'), (1, 'y', '01:00:00')`, `{"a":18446744073709551615,"b":"x"}`},
		{"dates", `(day DATE PRIMARY KEY, n INT)`, `('0000-00-00', 1), ('2024-01-01', 2)`, `{"day":"0000-00-00"}`},
	}
	conn := session(t, db, `SET SESSION sql_mode = ''`)
	for _, c := range cases {
		connExec(t, conn, `CREATE TABLE `+c.table+` `+c.create)
		connExec(t, conn, `INSERT INTO `+c.table+` VALUES `+c.insert)
	}
	cat := tabletest.OpenSQLite(t)
	src, err := New(testConfig(dsn, name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop := runSupervised(t, cat, src, testWriterConfig(), writer.Hooks{})
	for _, c := range cases {
		t.Run(c.table, func(t *testing.T) {
			var dead []deadLetter
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				dead, err = deadLettersOf(t, cat, name+"."+c.table)
				if err == nil && len(dead) > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no dead letter (%v)", err)
				}
			}
			if len(dead) != 1 || !dead[0].hasKey || dead[0].key != c.wantKey || !strings.HasPrefix(dead[0].reason, "snapshot: ") {
				t.Fatalf("dead letters %+v, want one with key %s", dead, c.wantKey)
			}
		})
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestNamedTable(t *testing.T) {
	cases := []struct {
		pattern, want string
	}{
		{`shop\.orders`, "shop.orders"},
		{`shop.orders`, "shop.orders"},
		{`shop_2.order-items`, "shop_2.order-items"},
		{`shop\..*`, ""},
		{`shop\.orders|shop\.items`, ""},
		{`shop\.(orders)`, ""},
		{`shop\.orders?`, ""},
		{`orders`, ""},
		{`a.b.c`, ""},
		{`.orders`, ""},
	}
	for _, c := range cases {
		got, ok := namedTable(c.pattern)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("namedTable(%q) = %q, %v; want %q", c.pattern, got, ok, c.want)
		}
	}
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMissingIncludedTable: a table the include list names that does not
// exist is logged at start (WARN, naming it) and shown by
// floe_mysql_table_missing; created later, it is captured and the metric
// goes.
func TestMissingIncludedTable(t *testing.T) {
	dsn := mariaDSN(t)
	db, name := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE present (id INT PRIMARY KEY)`)
	mustExec(t, db, `INSERT INTO present VALUES (1)`)
	cfg := testConfig(dsn, name)
	cfg.Include = []string{name + `\.present`, name + `\.later`, name + `.excluded`}
	cfg.Exclude = []string{name + `\.excluded`}
	logs := &lockedBuffer{}
	reg := prometheus.NewRegistry()
	src, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	missing := func() map[string]float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "floe_mysql_table_missing" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "table" {
						out[l.GetValue()] = m.GetGauge().GetValue()
					}
				}
			}
		}
		return out
	}
	cat := tabletest.OpenSQLite(t)
	stop := runSupervised(t, cat, src, testWriterConfig(), writer.Hooks{})
	waitEqual(t, db, name, "present", cat, name+".present", 30*time.Second)
	if got := missing(); len(got) != 1 || got[name+".later"] != 1 {
		t.Errorf("floe_mysql_table_missing = %v, want %s.later only", got, name)
	}
	var warned bool
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "table="+name+".later") {
			warned = true
		}
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "excluded") {
			t.Errorf("warned of an excluded table: %s", line)
		}
	}
	if !warned {
		t.Errorf("no WARN naming %s.later:\n%s", name, logs.String())
	}

	mustExec(t, db, `CREATE TABLE later (id INT PRIMARY KEY, v TEXT)`)
	mustExec(t, db, `INSERT INTO later VALUES (1, 'created after the start')`)
	waitEqual(t, db, name, "later", cat, name+".later", 30*time.Second)
	if got := missing(); len(got) != 0 {
		t.Errorf("floe_mysql_table_missing = %v after the table was created", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
