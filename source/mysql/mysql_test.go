package mysql

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/writer"
)

func testConfig(dsn, dbName string) Config {
	cfg := DefaultConfig()
	cfg.DSN = dsn
	cfg.Include = []string{dbName + `\..*`}
	cfg.TableName = "{db}.{table}"
	cfg.BatchDelay = 50 * time.Millisecond
	// A replica id of its own: two sources streaming with one id at once
	// (tests of several packages or processes on the shared server) kick
	// each other off (ERROR 4052).
	cfg.ServerID = 1_000_000 + rand.Uint32N(1_000_000)
	return cfg
}

func testWriterConfig() writer.Config {
	w := writer.DefaultConfig()
	w.CommitInterval = time.Second
	return w
}

// TestTypesRoundTrip: ENUM, SET, DECIMAL, JSON, DATETIME(6), unsigned
// BIGINT, NULLs and the other mapped types arrive exactly, through the
// snapshot and through the binlog (inserts, updates, deletes).
func TestTypesRoundTrip(t *testing.T) {
	dsn := mariaDSN(t)
	db, name := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE types (
		id BIGINT UNSIGNED PRIMARY KEY,
		ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT, mu MEDIUMINT UNSIGNED,
		i INT, iu INT UNSIGNED, bi BIGINT, yr YEAR,
		d DECIMAL(10,2), dw DECIMAL(38,10), fl FLOAT, db DOUBLE,
		e ENUM('small','medium','large'), s SET('red','green','blue'), j JSON,
		c CHAR(5), vc VARCHAR(100), tx TEXT, bn BINARY(4), vb VARBINARY(16), bl BLOB, bt BIT(12),
		dt DATETIME(6), dt0 DATETIME, ts TIMESTAMP(3) NULL, dd DATE, tm TIME(6))`)
	insert := `INSERT INTO types VALUES (?, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
		-9223372036854775808, 2024, -12345678.90, 1234567890123456789012345678.0123456789, 3.14159, 2.718281828459045,
		'medium', 'red,blue', '{"k": [1, 2, {"x": null}]}', 'ab', 'héllo wörld', REPEAT('t', 300), x'00ff10', x'deadbeef', x'000102', b'101010101010',
		'2024-02-29 23:59:59.999999', '1969-07-20 20:17:40', '2038-01-19 03:14:07.123', '0001-01-01', '23:59:59.999999')`
	mustExec(t, db, insert, uint64(18446744073709551615))
	mustExec(t, db, `INSERT INTO types (id) VALUES (1)`) // all NULL
	mustExec(t, db, `INSERT INTO types (id, e, s, d) VALUES (2, 'small', '', 0.01)`)

	cat := tabletest.OpenSQLite(t)
	src, err := New(testConfig(dsn, name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop := runSupervised(t, cat, src, testWriterConfig(), writer.Hooks{})
	waitEqual(t, db, name, "types", cat, name+".types", 30*time.Second)

	// Through the binlog.
	mustExec(t, db, insert, uint64(9223372036854775808))
	mustExec(t, db, `INSERT INTO types (id) VALUES (3)`)
	mustExec(t, db, `UPDATE types SET e = 'large', s = 'green,blue,red', d = -0.50, j = '[]', dt = '1970-01-01 00:00:00.000001',
		tm = '00:00:00', bt = b'1', fl = -1.5e-7, iu = 0, mu = 1 WHERE id = 2`)
	mustExec(t, db, `UPDATE types SET e = NULL, s = NULL, d = NULL, j = NULL, dt = NULL, vc = NULL WHERE id = 18446744073709551615`)
	mustExec(t, db, `DELETE FROM types WHERE id = 1`)
	mustExec(t, db, `UPDATE types SET id = 4 WHERE id = 3`) // a key change
	waitEqual(t, db, name, "types", cat, name+".types", 30*time.Second)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestDeadLetters: rows Iceberg cannot hold (a negative TIME, a zero date)
// go to the dead-letter table with their binlog position, in the snapshot
// and in the stream; a row updated to such a value leaves the table.
func TestDeadLetters(t *testing.T) {
	dsn := mariaDSN(t)
	db, name := testDB(t, dsn)
	mustExec(t, db, `SET SESSION sql_mode = ''`)
	mustExec(t, db, `CREATE TABLE dl (id INT PRIMARY KEY, tm TIME, d DATE)`)
	mustExec(t, db, `INSERT INTO dl VALUES (1, '10:00:00', '2024-01-01'), (2, '-01:00:00', '2024-01-01')`)
	cat := tabletest.OpenSQLite(t)
	src, err := New(testConfig(dsn, name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop := runSupervised(t, cat, src, testWriterConfig(), writer.Hooks{})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if got, err := icebergRows(t, cat, name+".dl"); err == nil && len(got) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the snapshot did not land")
		}
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close() //nolint:errcheck // test
	for _, q := range []string{`SET SESSION sql_mode = ''`,
		`INSERT INTO dl VALUES (3, '11:00:00', '0000-00-00'), (4, '12:00:00', '2024-02-02'), (5, '13:00:00', '2024-03-03')`,
		`UPDATE dl SET tm = '25:00:00' WHERE id = 5`} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := icebergRows(t, cat, name+".dl")
		dead, derr := icebergRows(t, cat, "floe.dead_letters")
		if err == nil && derr == nil && len(got) == 2 && len(dead) == 3 {
			t.Logf("table: %v", got)
			for _, d := range dead {
				t.Logf("dead letter: %s", d)
				if !strings.Contains(d, name+".dl") || !strings.Contains(d, "binlog") || !strings.Contains(d, "TIME") && !strings.Contains(d, "date") {
					t.Errorf("dead letter without its table or partition: %s", d)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("table %v (%v), dead letters %v (%v); want ids 1 and 4, and 3 dead letters", got, err, dead, derr)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
