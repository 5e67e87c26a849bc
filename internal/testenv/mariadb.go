package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
)

// EnvMySQLDSN names the test MariaDB server; integration/mariadb.sh
// start prints it.
const EnvMySQLDSN = "FLOE_MYSQL_DSN"

const howToStartMariaDB = "MariaDB is not running: start it with `eval $(integration/mariadb.sh start)` (it sets " + EnvMySQLDSN + ")"

// MariaDB returns the test server's DSN after checking that it answers; a
// test that cannot reach it fails, saying how to start it. Callers decide
// what -short means for them.
func MariaDB(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvMySQLDSN)
	if dsn == "" {
		t.Fatalf("%s (%s is not set)", howToStartMariaDB, EnvMySQLDSN)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("%s: %v", howToStartMariaDB, err)
	}
	defer db.Close() //nolint:errcheck // a probe
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("%s (%s=%s: %v)", howToStartMariaDB, EnvMySQLDSN, dsn, err)
	}
	return dsn
}

// MariaDBDatabase creates a fresh database, named prefix and 12 random hex
// digits, on the server at dsn, and returns a connection to it
// (multi-statement, UTC session time zone, at most maxConns connections)
// and its name. The database is dropped when the test ends.
func MariaDBDatabase(t testing.TB, dsn, prefix string, maxConns int) (*sql.DB, string) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + hex.EncodeToString(b[:])
	cfg, err := gomysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	root, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	_ = root.Close()
	cfg.DBName, cfg.MultiStatements = name, true
	cfg.Params = map[string]string{"time_zone": "'+00:00'"}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(maxConns)
	t.Cleanup(func() {
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name)
		_ = db.Close()
	})
	return db, name
}
