package mysql

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	icecat "github.com/apache/iceberg-go/catalog"
	gomysql "github.com/go-sql-driver/mysql"
	sqlparser "github.com/pingcap/tidb/pkg/parser"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
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
	logs := &testenv.SyncBuffer{}
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

// TestDMLTables: which statements of the binlog are row changes, and the
// tables each changes.
func TestDMLTables(t *testing.T) {
	cases := []struct {
		q       string
		dml     bool
		want    string // tables, or "error" when they cannot be told
		wantDBs string // for "error": the databases halted
	}{
		{q: "INSERT INTO t VALUES (1, 'a')", dml: true, want: "d.t"},
		{q: "/*!40000 insert */ into `x`.`t` (a) values (1)", dml: true, want: "x.t"},
		{q: "REPLACE INTO t SET a = 1", dml: true, want: "d.t"},
		{q: "INSERT INTO t SELECT * FROM x.u WHERE a IN (SELECT a FROM v)", dml: true, want: "d.t"},
		{q: "UPDATE t SET a = a + 1 WHERE id = 2", dml: true, want: "d.t"},
		{q: "UPDATE t JOIN x.u ON t.id = u.id SET t.a = u.a", dml: true, want: "d.t x.u"},
		{q: "DELETE FROM t WHERE id = 1", dml: true, want: "d.t"},
		{q: "DELETE a1 FROM t AS a1 JOIN u ON a1.id = u.id", dml: true, want: "d.t d.u"},
		{q: "LOAD DATA LOCAL INFILE '/tmp/SQL_LOAD-1' INTO TABLE `t` FIELDS TERMINATED BY '\\t' (`id`, `v`)", dml: true, want: "d.t"},
		{q: "SELECT f(1)", dml: true, want: "error", wantDBs: "d"},
		{q: "DO other.f(1)", dml: true, want: "error", wantDBs: "d other"},
		{q: "INSERT INTO t VALUES (1) RETURNING id", dml: true, want: "error", wantDBs: "d"},
		{q: "insert into zz.t valuez (1)", dml: true, want: "error", wantDBs: "d zz"},
		{q: "ALTER TABLE t ADD c INT"},
		{q: "CREATE TABLE t (id INT)"},
		{q: "SAVEPOINT `s`"},
		{q: "BEGIN"},
		{q: "`insert`"},
	}
	p := sqlparser.New()
	for _, c := range cases {
		if got := isDML(c.q); got != c.dml {
			t.Errorf("isDML(%q) = %v", c.q, got)
		}
		if !c.dml {
			continue
		}
		tables, err := dmlTables(p, c.q, "d")
		got := strings.Join(tables, " ")
		if err != nil {
			got = "error"
			if dbs := strings.Join(sortedKeys(statementDatabases(c.q, "d")), " "); dbs != c.wantDBs {
				t.Errorf("statementDatabases(%q) = %s, want %s", c.q, dbs, c.wantDBs)
			}
		}
		if got != c.want {
			t.Errorf("dmlTables(%q) = %s (%v), want %s", c.q, got, err, c.want)
		}
	}
}

// serverPos is the server's current binlog position, encoded.
func serverPos(t testing.TB, db *sql.DB) int64 {
	t.Helper()
	var file, pos, a, b string
	if err := db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &a, &b); err != nil {
		t.Fatal(err)
	}
	seq, err := fileSeq(file)
	if err != nil {
		t.Fatal(err)
	}
	off, ok := atoi(pos)
	if !ok {
		t.Fatalf("position %q", pos)
	}
	return binlogPos{seq: seq, offset: uint32(off)}.encode()
}

// haltState is an Iceberg table's halt reason and binlog position.
func haltState(t testing.TB, cat icecat.Catalog, name string) (reason string, pos int64) {
	t.Helper()
	tbl := tabletest.Load(t, cat, name)
	pm, err := table.CurrentPositions(tbl)
	if err != nil {
		t.Fatal(err)
	}
	return tbl.Properties()[writer.PropHalted], pm[DefaultConfig().ID][PartitionBinlog]
}

// haltCase is a change Floe must not apply, made by stmts in one session
// (after setup, in the same session): the tables in halt are halted at the
// start of its transaction, holding the rows they had before it; the
// tables in goOn follow MySQL.
type haltCase struct {
	name    string
	session []string // SET SESSION statements
	setup   []string // changes Floe applies
	stmts   []string
	halt    []string
	goOn    []string
	want    string // in the halt reason
}

// runHaltCases creates the cases' tables (id, v, n, doc; rows 1 and 2) in
// a test database, and a control table in a second one, starts the source,
// runs each case and checks it.
func runHaltCases(t *testing.T, cases []haltCase) {
	dsn := mariaDSN(t)
	db, name := testDB(t, dsn)
	db2, name2 := testDB(t, dsn)
	var all []string
	for _, c := range cases {
		all = append(all, c.halt...)
		all = append(all, c.goOn...)
	}
	create := func(db *sql.DB, tbl string) {
		mustExec(t, db, `CREATE TABLE `+tbl+` (id INT PRIMARY KEY, v VARCHAR(20), n INT, doc TEXT)`)
		mustExec(t, db, `INSERT INTO `+tbl+` VALUES (1, 'a', 1, 'one'), (2, 'b', 2, 'two')`)
	}
	for _, tbl := range all {
		create(db, tbl)
	}
	create(db2, "control")
	cfg := testConfig(dsn, name)
	cfg.Include = []string{name + `\..*`, name2 + `\..*`}
	cfg.Exclude = []string{name + `\.excluded.*`}
	cat := tabletest.OpenSQLite(t)
	src, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop := runSupervised(t, cat, src, testWriterConfig(), writer.Hooks{})
	for _, tbl := range all {
		if !strings.HasPrefix(tbl, "excluded") {
			waitEqual(t, db, name, tbl, cat, name+"."+tbl, 30*time.Second)
		}
	}
	type result struct {
		before map[string][]string
		p2     int64
	}
	results := make([]result, len(cases))
	for i, c := range cases {
		conn := session(t, db, c.session...)
		for _, q := range c.setup {
			connExec(t, conn, q)
		}
		res := result{before: map[string][]string{}}
		for _, tbl := range c.halt {
			if res.before[tbl], err = tabletest.MySQLRows(db, name, tbl); err != nil {
				t.Fatal(err)
			}
		}
		for _, q := range c.stmts {
			connExec(t, conn, strings.ReplaceAll(q, "{db}", name))
		}
		res.p2 = serverPos(t, db)
		_ = conn.Close() // the pool is small
		results[i] = res
	}
	// The stream read every case once it applied this.
	mustExec(t, db2, `INSERT INTO control VALUES (3, 'c', 3, 'three')`)
	waitEqual(t, db2, name2, "control", cat, name2+".control", 30*time.Second)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := results[i]
			for _, tbl := range c.halt {
				reason, pos := haltState(t, cat, name+"."+tbl)
				if reason == "" || !strings.Contains(reason, c.want) {
					t.Errorf("%s: halt reason %q, want one with %q", tbl, reason, c.want)
				} else {
					t.Logf("%s halted: %s", tbl, reason)
				}
				// A table without changes since its last commit keeps that
				// commit's (earlier) position: the writer commits no
				// position alone.
				if pos <= 0 || pos >= res.p2 {
					t.Errorf("%s: halted at %s, want before the change's transaction (it ends before %s)", tbl, decodePos(pos), decodePos(res.p2))
				}
				got, err := icebergRows(t, cat, name+"."+tbl)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, res.before[tbl]) {
					t.Errorf("%s: the halted table differs from MySQL's rows before the change:\n%s", tbl, tabletest.DiffRows(res.before[tbl], got))
				}
			}
			for _, tbl := range c.goOn {
				if strings.HasPrefix(tbl, "excluded") {
					continue
				}
				if reason, _ := haltState(t, cat, name+"."+tbl); reason != "" {
					t.Errorf("%s halted: %s", tbl, reason)
				}
				waitEqual(t, db, name, tbl, cat, name+"."+tbl, 10*time.Second)
			}
		})
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestStatementFormatHalts: DML logged as a statement (binlog_format
// STATEMENT or MIXED in the writing session) halts the captured tables it
// changes at the start of its transaction, with the reason; tables it only
// reads, uncaptured tables and the other tables go on. A statement whose
// tables cannot be told halts every captured table of its database, and
// the other databases go on. Before the fix such statements were skipped
// and the tables moved past them.
func TestStatementFormatHalts(t *testing.T) {
	const reader = "floe_mysql_test_load"
	gomysql.RegisterReaderHandler(reader, func() io.Reader { return strings.NewReader("5\tloaded\t5\tfive\n") })
	defer gomysql.DeregisterReaderHandler(reader)
	stmt := []string{`SET SESSION binlog_format = 'STATEMENT'`}
	mixed := []string{`SET SESSION binlog_format = 'MIXED'`}
	const want = "binlog_format=ROW"
	t.Run("tables told", func(t *testing.T) {
		runHaltCases(t, []haltCase{
			{name: "insert", session: stmt, stmts: []string{`INSERT INTO s_ins VALUES (3, 'c', 3, 'three')`}, halt: []string{"s_ins"}, want: want},
			{name: "update", session: stmt, stmts: []string{`UPDATE s_upd SET n = n + 10`}, halt: []string{"s_upd"}, want: want},
			{name: "delete", session: stmt, stmts: []string{`DELETE FROM s_del WHERE id = 1`}, halt: []string{"s_del"}, want: want},
			{name: "replace", session: stmt, stmts: []string{`REPLACE INTO {db}.s_rep VALUES (1, 'z', 9, 'nine')`}, halt: []string{"s_rep"}, want: want},
			{name: "load data", session: stmt, stmts: []string{`LOAD DATA LOCAL INFILE 'Reader::` + reader + `' INTO TABLE s_load`},
				halt: []string{"s_load"}, want: "LOAD DATA"},
			{name: "insert select", session: stmt, stmts: []string{`INSERT INTO s_dst SELECT id + 10, v, n, doc FROM s_src`},
				halt: []string{"s_dst"}, goOn: []string{"s_src"}, want: want},
			{name: "multi-table update", session: stmt, stmts: []string{`UPDATE s_m1 JOIN s_m2 USING (id) SET s_m1.n = s_m2.n + 100, s_m2.n = 0`},
				halt: []string{"s_m1", "s_m2"}, want: want},
			{name: "uncaptured table", session: stmt, stmts: []string{`INSERT INTO excluded_t VALUES (3, 'c', 3, 'three')`},
				goOn: []string{"excluded_t", "s_quiet"}},
			{name: "rows and a statement in one transaction", session: mixed,
				// UUID() is unsafe for statements: MIXED logs it as rows.
				setup: []string{`INSERT INTO s_mix VALUES (0, LEFT(UUID(), 8), 0, 'row')`},
				stmts: []string{`BEGIN`, `INSERT INTO s_mix VALUES (10, LEFT(UUID(), 8), 10, 'row')`,
					`INSERT INTO s_mix VALUES (11, 'stmt', 11, 'statement')`, `COMMIT`},
				halt: []string{"s_mix"}, want: want},
		})
	})
	t.Run("tables not told", func(t *testing.T) {
		runHaltCases(t, []haltCase{
			{name: "statement the parser cannot read", session: stmt, stmts: []string{`INSERT INTO s_bad VALUES (3, 'c', 3, 'three') RETURNING id`},
				halt: []string{"s_bad", "s_quiet"}, want: "cannot be told"},
		})
	})
}

// TestPartialRowImageHalts: rows events whose images lack columns applying
// them needs (binlog_row_image MINIMAL or NOBLOB in the writing session)
// halt their table at the start of the transaction, with the reason, and
// the other tables — those of the same transaction too — go on; row images
// that have what is needed (a MINIMAL delete has the key) are applied.
// Before the fix the tables were not halted: a MINIMAL update lost its row
// (the old image was deleted, the new one lacks the key) and columns a
// MINIMAL insert omitted became NULLs.
func TestPartialRowImageHalts(t *testing.T) {
	minimal := []string{`SET SESSION binlog_row_image = 'MINIMAL'`}
	noblob := []string{`SET SESSION binlog_row_image = 'NOBLOB'`}
	const want = "binlog_row_image=FULL"
	runHaltCases(t, []haltCase{
		{name: "minimal update", session: minimal, stmts: []string{`UPDATE p_upd SET n = 10 WHERE id = 1`}, halt: []string{"p_upd"}, want: want},
		{name: "minimal insert of some columns", session: minimal, stmts: []string{`INSERT INTO p_ins (id, v) VALUES (3, 'c')`},
			halt: []string{"p_ins"}, want: want},
		{name: "minimal insert of every column", session: minimal, stmts: []string{`INSERT INTO p_full VALUES (3, 'c', 3, 'three')`},
			goOn: []string{"p_full"}},
		{name: "minimal delete", session: minimal, stmts: []string{`DELETE FROM p_del WHERE id = 1`}, goOn: []string{"p_del"}},
		{name: "noblob update", session: noblob, stmts: []string{`UPDATE p_nob SET n = 10 WHERE id = 2`}, halt: []string{"p_nob"}, want: want},
		{name: "noblob insert", session: noblob, stmts: []string{`INSERT INTO p_nobins VALUES (3, 'c', 3, 'three')`}, goOn: []string{"p_nobins"}},
		{name: "one transaction, two tables", session: minimal,
			setup: []string{`INSERT INTO p_tx VALUES (5, 'e', 5, 'five')`},
			stmts: []string{`BEGIN`, `INSERT INTO p_tx VALUES (6, 'f', 6, 'six')`, `INSERT INTO p_txok VALUES (6, 'f', 6, 'six')`,
				`UPDATE p_tx SET v = 'x' WHERE id = 1`, `INSERT INTO p_txok VALUES (7, 'g', 7, 'seven')`, `COMMIT`},
			halt: []string{"p_tx"}, goOn: []string{"p_txok"}, want: want},
	})
}

func TestAllSet(t *testing.T) {
	cases := []struct {
		bitmap []byte
		n      int
		want   bool
	}{
		{nil, 5, true},
		{[]byte{0x1f}, 5, true},
		{[]byte{0x3f}, 5, true}, // bits past n do not count
		{[]byte{0x1d}, 5, false},
		{[]byte{0xff, 0x01}, 9, true},
		{[]byte{0xff, 0x00}, 9, false},
		{[]byte{0x7f, 0x01}, 9, false},
		{[]byte{0xff}, 9, false}, // too short
		{[]byte{0xff}, 8, true},
	}
	for _, c := range cases {
		if got := allSet(c.bitmap, c.n); got != c.want {
			t.Errorf("allSet(%08b, %d) = %v, want %v", c.bitmap, c.n, got, c.want)
		}
	}
}
