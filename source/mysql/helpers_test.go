package mysql

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	icecat "github.com/apache/iceberg-go/catalog"

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

// mysqlRows reads a MySQL table as canonical row strings, sorted: each
// column rendered independently of the source's conversions (see
// canonical).
func mysqlRows(t testing.TB, db *sql.DB, dbName, tbl string) ([]string, error) {
	t.Helper()
	rows, err := db.Query(`SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY COLUMN_NAME`, dbName, tbl)
	if err != nil {
		return nil, err
	}
	var exprs, kinds []string
	for rows.Next() {
		var c, dt string
		if err := rows.Scan(&c, &dt); err != nil {
			return nil, err
		}
		q := quoteIdent(c)
		switch dt {
		case "float":
			q = "CAST(" + q + " AS DOUBLE)"
		case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
			q = "HEX(" + q + ")"
		case "bit":
			q = q + "+0"
		case "date":
			q = "DATE_FORMAT(" + q + ", '%Y-%m-%d')"
		case "datetime", "timestamp":
			q = "DATE_FORMAT(" + q + ", '%Y-%m-%d %H:%i:%s.%f')"
		case "time":
			q = "TIME_FORMAT(" + q + ", '%H:%i:%s.%f')"
		}
		exprs = append(exprs, q)
		kinds = append(kinds, dt)
	}
	_ = rows.Close()
	rows, err = db.Query("SELECT " + strings.Join(exprs, ", ") + " FROM " + quoteIdent(dbName) + "." + quoteIdent(tbl))
	if err != nil {
		return nil, err
	}
	defer rows.Close() //nolint:errcheck // test helper
	var out []string
	raw := make([]sql.NullString, len(exprs))
	ptrs := make([]any, len(raw))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		var b strings.Builder
		for i, v := range raw {
			if i > 0 {
				b.WriteString(" | ")
			}
			switch {
			case !v.Valid:
				b.WriteString("NULL")
			case kinds[i] == "float" || kinds[i] == "double":
				f, err := strconv.ParseFloat(v.String, 64)
				if err != nil {
					return nil, err
				}
				b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
			default:
				b.WriteString(v.String)
			}
		}
		out = append(out, b.String())
	}
	sort.Strings(out)
	return out, rows.Err()
}

// icebergRows reads an Iceberg table as canonical row strings (columns by
// name, as mysqlRows orders them), sorted.
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
	cols := map[string]int{}
	var names []string
	for i, f := range tbl.Schema().Fields() {
		cols[f.Name] = i
		names = append(names, f.Name)
	}
	sort.Strings(names)
	_, recs, err := tbl.Scan().ToArrowRecords(context.Background())
	if err != nil {
		return nil, err
	}
	var out []string
	for rec, err := range recs {
		if err != nil {
			return nil, err
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			var b strings.Builder
			for i, n := range names {
				if i > 0 {
					b.WriteString(" | ")
				}
				b.WriteString(canonical(rec.Column(cols[n]), r, rec.Schema().Field(cols[n]).Metadata))
			}
			out = append(out, b.String())
		}
		rec.Release()
	}
	sort.Strings(out)
	return out, nil
}

// canonical renders one Iceberg value as mysqlRows renders MySQL's.
func canonical(a arrow.Array, i int, md arrow.Metadata) string {
	if a.IsNull(i) {
		return "NULL"
	}
	doc := ""
	if j := md.FindKey("doc"); j >= 0 {
		doc = md.Values()[j]
	}
	switch c := a.(type) {
	case *array.Int32:
		return strconv.FormatInt(int64(c.Value(i)), 10)
	case *array.Int64:
		return strconv.FormatInt(c.Value(i), 10)
	case *array.Float32:
		return strconv.FormatFloat(float64(c.Value(i)), 'g', -1, 64)
	case *array.Float64:
		return strconv.FormatFloat(c.Value(i), 'g', -1, 64)
	case *array.Decimal128:
		sc := c.DataType().(*arrow.Decimal128Type).Scale
		return c.Value(i).ToString(sc)
	case *array.String:
		return c.Value(i)
	case *array.Binary:
		v := c.Value(i)
		if strings.Contains(doc, "bit(") {
			return new(big.Int).SetBytes(v).String()
		}
		return strings.ToUpper(hex.EncodeToString(v))
	case *array.Date32:
		return c.Value(i).ToTime().Format("2006-01-02")
	case *array.Timestamp:
		return time.UnixMicro(int64(c.Value(i))).UTC().Format("2006-01-02 15:04:05.000000")
	case *array.Time64:
		us := int64(c.Value(i))
		return fmt.Sprintf("%02d:%02d:%02d.%06d", us/3600e6, us/60e6%60, us/1e6%60, us%1e6)
	}
	return fmt.Sprintf("?%s", a.DataType())
}

// waitEqual polls until the Iceberg table equals the MySQL table, or
// fails after timeout with the first difference.
func waitEqual(t testing.TB, db *sql.DB, dbName, tbl string, cat icecat.Catalog, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		want, err := mysqlRows(t, db, dbName, tbl)
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
			t.Fatalf("%s differs from MySQL's %s.%s:\n%s", name, dbName, tbl, diff(want, got))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// diff describes how got differs from want (both sorted).
func diff(want, got []string) string {
	w := map[string]int{}
	for _, s := range want {
		w[s]++
	}
	g := map[string]int{}
	for _, s := range got {
		g[s]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "MySQL has %d rows, Iceberg %d\n", len(want), len(got))
	n := 0
	for s, c := range w {
		if g[s] < c && n < 10 {
			fmt.Fprintf(&b, "  missing in Iceberg: %s\n", s)
			n++
		}
	}
	for s, c := range g {
		if w[s] < c && n < 20 {
			fmt.Fprintf(&b, "  extra in Iceberg (x%d): %s\n", c-w[s], s)
			n++
		}
	}
	return b.String()
}
