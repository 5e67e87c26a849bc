package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	gomysql "github.com/go-sql-driver/mysql"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// TestSnapshotChunks plans the chunks of tables with awkward keys, a few
// rows per chunk, reads every chunk and checks that together they hold
// every key of the table exactly once, in key order: a chunk condition
// that overlaps its neighbour or leaves a gap fails it.
func TestSnapshotChunks(t *testing.T) {
	dsn := mariaDSN(t)
	db, name := testDB(t, dsn)
	r := testRun(t, dsn, name)
	cases := []struct {
		name, ddl string
		key       []string // the key to chunk by (default: the primary key)
		rows      []string // VALUES tuples
	}{
		{name: "empty", ddl: "id INT PRIMARY KEY"},
		{name: "one_row", ddl: "id INT PRIMARY KEY", rows: []string{"(7)"}},
		{name: "gaps", ddl: "id BIGINT PRIMARY KEY",
			rows: []string{"(-9223372036854775808)", "(-5)", "(0)", "(1)", "(2)", "(3)", "(10)", "(11)", "(1000)", "(1000000)", "(9223372036854775807)"}},
		{name: "unsigned", ddl: "id BIGINT UNSIGNED PRIMARY KEY",
			rows: []string{"(0)", "(1)", "(9223372036854775808)", "(18446744073709551614)", "(18446744073709551615)"}},
		{name: "composite", ddl: "a INT, b VARCHAR(10), c DATE, x INT, PRIMARY KEY (a, b, c)",
			rows: compositeRows()},
		{name: "strings", ddl: "s VARCHAR(20) PRIMARY KEY", // case-insensitive collation
			rows: []string{"('a')", "('B')", "('c')", `('O\'Brien')`, `('back\\slash')`, "('ß')", "('zz')", "('Zza')", "('é')", "('')", "('a b')", "('%')", "('_')"}},
		{name: "binary", ddl: "b VARBINARY(8) PRIMARY KEY",
			rows: []string{"(x'')", "(x'00')", "(x'0000')", "(x'27')", "(x'5c')", "(x'5c27')", "(x'61')", "(x'41')", "(x'ff')", "(x'fffe')"}},
		{name: "decimal_datetime", ddl: "d DECIMAL(10,2), t DATETIME(6), PRIMARY KEY (d, t)",
			rows: []string{"(-1.50, '2024-01-01 00:00:00')", "(-1.50, '2024-01-01 00:00:00.000001')", "(0, '1970-01-01 00:00:00')",
				"(0.01, '2024-02-29 23:59:59.999999')", "(12345678.99, '2000-01-01 12:00:00')", "(12345678.99, '2000-01-01 12:00:01')"}},
		{name: "unique_not_null", ddl: "x INT, u VARCHAR(10) NOT NULL, UNIQUE KEY (u)", key: []string{"u"},
			rows: []string{"(1, 'k')", "(NULL, 'a')", "(3, 'z')", "(4, 'b')", "(5, 'y')", "(6, 'c')"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tn := "t_" + tc.name
			mustExec(t, db, "CREATE TABLE "+tn+" ("+tc.ddl+")")
			if len(tc.rows) > 0 {
				mustExec(t, db, "INSERT INTO "+tn+" VALUES "+strings.Join(tc.rows, ","))
			}
			defs, errs, err := describeTables(context.Background(), r.db, [][2]string{{name, tn}})
			def := defs[name+"."+tn]
			if err != nil || def == nil {
				t.Fatalf("describe: %v %v", err, errs)
			}
			key := tc.key
			if key == nil {
				key = def.PK
			}
			cols, why := chunkKey(def, key)
			if why != "" {
				t.Fatalf("not chunkable: %s", why)
			}
			names := make([]string, len(cols))
			for i, c := range cols {
				names[i] = quoteIdent(c.Name)
			}
			list := strings.Join(names, ", ")
			want := keysOf(t, r, "SELECT "+list+" FROM "+quoteIdent(name)+"."+quoteIdent(tn)+" ORDER BY "+list)
			if len(want) != len(tc.rows) {
				t.Fatalf("%d keys in the table, want %d", len(want), len(tc.rows))
			}
			for _, per := range []int{1, 2, 3, 100} {
				conn, err := r.dialSnapshot(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				out := make(chan chunk, 1000)
				if err := planChunks(context.Background(), conn, def, cols, per, out); err != nil {
					t.Fatal(err)
				}
				var got []string
				n := 0
				for ch := range out {
					n++
					got = append(got, keysOf(t, r, "SELECT "+list+" FROM "+quoteIdent(name)+"."+quoteIdent(tn)+ch.where(cols)+" ORDER BY "+list)...)
				}
				conn.close()
				if wantChunks := max(1, (len(want)+per-1)/per); n != wantChunks {
					t.Errorf("%d rows per chunk: %d chunks, want %d", per, n, wantChunks)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%d rows per chunk: the chunks hold\n%q\nwant every key once:\n%q", per, got, want)
				}
			}
		})
	}
}

func compositeRows() []string {
	var out []string
	for a := range 3 {
		for _, b := range []string{"", "a", "B", "b'", "c"} {
			for _, c := range []string{"2024-01-01", "2024-01-02"} {
				out = append(out, fmt.Sprintf("(%d, '%s', '%s', 1)", a, strings.ReplaceAll(b, "'", `\'`), c))
			}
		}
	}
	return out
}

// keysOf runs a query on a snapshot connection and renders its rows.
func keysOf(t *testing.T, r *run, q string) []string {
	t.Helper()
	conn, err := r.dialSnapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.close()
	var out []string
	err = conn.stream(q, func(row []gmysql.FieldValue) error {
		parts := make([]string, len(row))
		for i := range row {
			parts[i] = fmt.Sprintf("%q", fieldText(&row[i]))
		}
		out = append(out, strings.Join(parts, "|"))
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// testRun is a run connected to the test server, without a writer.
func testRun(t testing.TB, dsn, dbName string) *run {
	t.Helper()
	src, err := New(testConfig(dsn, dbName), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &run{s: src, cfg: &src.cfg, log: src.log}
	if err := r.connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.db.Close() })
	return r
}

// TestSnapshotParallelConsistent copies a table in many chunks on four
// connections while transactions keep changing it, and checks the copy
// the snapshot committed against the table as of the position it
// committed with: each transaction k sets the counter row (id 0) to k and
// one row of the key space (counterRow) to k, so a copy of one position
// holds a counter K and exactly the rows of transactions 1..K changed. Chunks read at different moments break this.
// Then the table follows the binlog to equal MySQL's. Without the RELOAD
// privilege (MariaDB's binlog_snapshot position, no lock) alike.
func TestSnapshotParallelConsistent(t *testing.T) {
	dsn := mariaDSN(t)
	// no_reload_quiet has no writes while the transactions start: they
	// align and the snapshot is read in parallel; under the writes of
	// no_reload they may not, and it is read on one connection.
	for _, mode := range []string{"lock", "no_reload", "no_reload_quiet"} {
		t.Run(mode, func(t *testing.T) {
			db, name := testDB(t, dsn)
			const rows int64 = 20000
			mustExec(t, db, "CREATE TABLE acct (id INT PRIMARY KEY, v BIGINT NOT NULL, pad VARCHAR(40))")
			for lo := 0; lo <= int(rows); lo += 5000 {
				var sb strings.Builder
				for i := lo; i < min(lo+5000, int(rows)+1); i++ {
					if i > lo {
						sb.WriteByte(',')
					}
					fmt.Fprintf(&sb, "(%d, 0, 'pad-%d')", i, i)
				}
				mustExec(t, db, "INSERT INTO acct VALUES "+sb.String())
			}
			srcDSN := dsn
			if mode != "lock" {
				srcDSN = userWithout(t, dsn, "RELOAD")
			}
			var k atomic.Int64
			stopLoad := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stopLoad:
						return
					default:
					}
					n := k.Load() + 1
					if n >= rows {
						return
					}
					if err := counterTx(db, n, rows); err != nil {
						t.Error(err)
						return
					}
					k.Store(n)
				}
			}()
			defer func() {
				select {
				case <-stopLoad:
				default:
					close(stopLoad)
				}
				wg.Wait()
			}()
			for k.Load() < 20 {
				time.Sleep(5 * time.Millisecond)
			}
			if mode == "no_reload_quiet" {
				close(stopLoad)
				wg.Wait()
			}
			cat := tabletest.OpenSQLite(t)
			cfg := testConfig(srcDSN, name)
			cfg.snapshotChunkRows = 200
			cfg.snapshotChunkPause = 10 * time.Millisecond
			var logs syncBuffer
			src, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			// The snapshot alone (Run's open), committed on close.
			specs, err := src.Specs(nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, spec := range specs {
				if _, err := table.Ensure(context.Background(), cat, spec); err != nil {
					t.Fatal(err)
				}
			}
			w := writer.New(cat, testWriterConfig(), writer.Options{})
			r := &run{s: src, cfg: &src.cfg, log: src.log, sink: w, tables: map[string]*capTable{}, dlTable: src.cfg.DeadLetterTable}
			if _, err := r.open(context.Background()); err != nil {
				t.Fatal(err)
			}
			r.close(context.Background(), nil)
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			select {
			case <-stopLoad:
			default:
				close(stopLoad)
			}
			wg.Wait()
			if mode != "no_reload" && !strings.Contains(logs.String(), "connections=4") {
				t.Errorf("the snapshot was not read on 4 connections:\n%s", logs.String())
			}
			tbl := tabletest.Load(t, cat, name+".acct")
			got := map[int64]int64{}
			for _, row := range tabletest.Rows(t, tbl) {
				got[anyInt(row[0])] = anyInt(row[1])
			}
			if int64(len(got)) != rows+1 {
				t.Fatalf("the snapshot's copy has %d rows, want %d", len(got), rows+1)
			}
			K := got[0]
			want := map[int64]int64{}
			for j := int64(1); j <= K; j++ {
				want[counterRow(j, rows)] = j
			}
			bad := 0
			for id := int64(1); id <= rows; id++ {
				if got[id] != want[id] && bad < 10 {
					bad++
					t.Errorf("copy at counter %d: row %d has %d, want %d (not one position)", K, id, got[id], want[id])
				}
			}
			nz, mx := 0, int64(0)
			for id, v := range got {
				if id > 0 && v != 0 {
					nz++
					mx = max(mx, v)
				}
			}
			t.Logf("DEBUG nonzero %d max %d", nz, mx)
			t.Logf("copied at counter %d of %d transactions", K, k.Load())
			// The binlog from the snapshot's position on.
			for range 50 {
				n := k.Load() + 1
				if err := counterTx(db, n, rows); err != nil {
					t.Fatal(err)
				}
				k.Store(n)
			}
			stop := runSupervised(t, cat, src, testWriterConfig(), writer.Hooks{})
			waitEqual(t, db, name, "acct", cat, name+".acct", time.Minute)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func anyInt(v any) int64 {
	switch v := v.(type) {
	case int32:
		return int64(v)
	case int64:
		return v
	}
	panic(fmt.Sprintf("not an integer: %T", v))
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// counterRow is the row transaction n of TestSnapshotParallelConsistent
// changes: spread over the key space, every row once in rows
// transactions.
func counterRow(n, rows int64) int64 { return 1 + n*7919%rows }

// counterTx is transaction n of TestSnapshotParallelConsistent.
func counterTx(db *sql.DB, n, rows int64) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	if _, err := tx.Exec("UPDATE acct SET v = ? WHERE id = ?", n, counterRow(n, rows)); err != nil {
		_ = tx.Rollback()
		return err
	}
	if _, err := tx.Exec("UPDATE acct SET v = ? WHERE id = 0", n); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// userWithout creates a user with the privileges capture needs but the
// one named (REPLICATION SLAVE, REPLICATION CLIENT, SELECT, RELOAD minus
// it) and returns a DSN of it.
func userWithout(t *testing.T, dsn, priv string) string {
	t.Helper()
	root, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	user := fmt.Sprintf("floe_snap_%d", rand.N(1_000_000))
	var privs []string
	for _, p := range []string{"REPLICATION SLAVE", "REPLICATION CLIENT", "SELECT", "RELOAD"} {
		if p != priv {
			privs = append(privs, p)
		}
	}
	for _, host := range []string{"%", "localhost"} {
		for _, q := range []string{
			"CREATE USER '" + user + "'@'" + host + "' IDENTIFIED BY 'pw'",
			"GRANT " + strings.Join(privs, ", ") + " ON *.* TO '" + user + "'@'" + host + "'",
		} {
			if _, err := root.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	t.Cleanup(func() {
		for _, host := range []string{"%", "localhost"} {
			_, _ = root.Exec("DROP USER IF EXISTS '" + user + "'@'" + host + "'")
		}
		_ = root.Close()
	})
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Passwd = user, "pw"
	return cfg.FormatDSN()
}

// TestChunkKey: which keys a snapshot is chunked by, and the conditions
// of a chunk.
func TestChunkKey(t *testing.T) {
	col := func(name, typ string) column {
		k, ice, err := mapType(strings.Fields(strings.SplitN(typ, "(", 2)[0])[0], typ)
		if err != nil {
			t.Fatal(err)
		}
		return column{Name: name, Type: typ, Kind: k, Iceberg: ice}
	}
	for _, tc := range []struct {
		typ string
		ok  bool
	}{
		{"int", true}, {"bigint unsigned", true}, {"decimal(10,2)", true}, {"varchar(10)", true},
		{"varbinary(4)", true}, {"datetime(6)", true}, {"date", true}, {"char(3)", true},
		{"double", false}, {"float", false}, {"enum('a','b')", false}, {"set('a','b')", false}, {"bit(3)", false},
	} {
		def := &tableDef{DB: "d", Name: "t", Columns: []column{col("a", "int"), col("k", tc.typ)}, PK: []string{"a", "k"}}
		_, why := chunkKey(def, def.PK)
		if (why == "") != tc.ok {
			t.Errorf("%s: chunkable %v (%q), want %v", tc.typ, why == "", why, tc.ok)
		}
	}
	cols := []column{col("a", "int"), col("b`x", "varchar(10)"), col("c", "varbinary(4)")}
	got := chunk{lo: []string{"1", `it's\`, "\x00'"}, hi: []string{"-2", "z", ""}}.where(cols)
	want := " WHERE (`a` > 1 OR (`a` = 1 AND (`b``x` > 'it\\'s\\\\' OR (`b``x` = 'it\\'s\\\\' AND (`c` >= X'0027')))))" +
		" AND (`a` < -2 OR (`a` = -2 AND (`b``x` < 'z' OR (`b``x` = 'z' AND (`c` < X'')))))"
	if got != want {
		t.Errorf("where:\n got %s\nwant %s", got, want)
	}
	if w := (chunk{}).where(cols); w != "" {
		t.Errorf("whole table: %q", w)
	}
}

// TestSnapshotNewKeys: a snapshot hands its rows to the table as new keys
// (writer.Changes.NewKeys) only when the table's key is MySQL's primary
// key and no key column is a FLOAT or DOUBLE.
func TestSnapshotNewKeys(t *testing.T) {
	cols := []column{{Name: "a", Kind: kSigned}, {Name: "b", Kind: kString}, {Name: "f", Kind: kFloat}, {Name: "d", Kind: kDouble}, {Name: "v", Kind: kSigned}}
	for _, tc := range []struct {
		pk, key []string
		want    bool
	}{
		{[]string{"a"}, []string{"a"}, true},
		{[]string{"a", "b"}, []string{"b", "a"}, true},
		{[]string{"a", "b"}, []string{"a"}, false}, // a part of the key
		{[]string{"a"}, []string{"a", "v"}, false},
		{[]string{"a"}, []string{"v"}, false},
		{[]string{"a", "f"}, []string{"a", "f"}, false},
		{[]string{"d"}, []string{"d"}, false},
		{[]string{"a"}, []string{"x"}, false}, // not a MySQL column
		{nil, nil, false},
	} {
		def := &tableDef{DB: "d", Name: "t", Columns: cols, PK: tc.pk}
		if got := snapshotNewKeys(def, tc.key); got != tc.want {
			t.Errorf("primary key %v, table key %v: new keys %v, want %v", tc.pk, tc.key, got, tc.want)
		}
	}
}
