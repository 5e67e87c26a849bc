package mysql

import (
	"context"
	"database/sql"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// mariaDSN returns the test server's DSN; under -short it skips, and it
// fails the test saying how to start MariaDB when it cannot connect.
func mariaDSN(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs MariaDB; skipped under -short")
	}
	return testenv.MariaDB(t)
}

// testDB creates a fresh database on the test server and returns a
// connection to it (multi-statement, UTC) and its name; it is dropped at
// the end of the test.
func testDB(t testing.TB, dsn string) (*sql.DB, string) {
	t.Helper()
	return testenv.MariaDBDatabase(t, dsn, "floe_t_", 4)
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", abbreviate(q, 200), err)
	}
}

// runSupervised runs srcs under source.Supervise until the returned stop
// function is called; stop returns Supervise's result.
func runSupervised(t testing.TB, cat icecat.Catalog, src source.Source, wcfg writer.Config, hooks writer.Hooks) func() error {
	t.Helper()
	specs, err := src.Specs(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range specs {
		if _, err := table.Ensure(context.Background(), cat, spec); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() {
		done <- source.Supervise(ctx, cat, []source.Source{src}, source.SuperviseOptions{
			Writer: wcfg, WriterOptions: writer.Options{Hooks: hooks}, Logger: log,
			MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		})
	}()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// icebergRows reads an Iceberg table in the canonical form of
// tabletest.MySQLRows.
func icebergRows(t testing.TB, cat icecat.Catalog, name string) ([]string, error) {
	t.Helper()
	ident, err := table.ParseIdent(name)
	if err != nil {
		return nil, err
	}
	tbl, err := cat.LoadTable(context.Background(), ident)
	if err != nil {
		return nil, err
	}
	return tabletest.IcebergRows(context.Background(), tbl)
}

// waitEqual polls until the Iceberg table equals the MySQL table, or
// fails after timeout with the first difference.
func waitEqual(t testing.TB, db *sql.DB, dbName, tbl string, cat icecat.Catalog, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		want, err := tabletest.MySQLRows(db, dbName, tbl)
		if err != nil {
			t.Fatal(err)
		}
		got, gerr := icebergRows(t, cat, name)
		if gerr == nil && slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			if gerr != nil {
				t.Fatalf("%s: %v", name, gerr)
			}
			t.Fatalf("%s differs from MySQL's %s.%s:\n%s", name, dbName, tbl, tabletest.DiffRows(want, got))
		}
		time.Sleep(300 * time.Millisecond)
	}
}
