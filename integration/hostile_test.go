package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/testenv"
)

// hostileCase is a table name and the names of its two columns; refused
// says what the config error names when Floe refuses them ("" if they
// work end to end).
type hostileCase struct {
	name    string
	table   string
	cols    [2]string
	refused string
}

var hostileCases = []hostileCase{
	{name: "spaces", table: "ods.with space", cols: [2]string{"col with space", "n"}},
	{name: "quotes", table: `ods.quo"te's`, cols: [2]string{`quo"te's`, "back`tick"}},
	{name: "unicode", table: "ödß.ünïcödé_表", cols: [2]string{"列_ü", "emoji_🙂"}},
	{name: "sql", table: "ods.x'; DROP TABLE iceberg_tables; --", cols: [2]string{"'); DELETE FROM t; --", "n"}},
	{name: "reserved words", table: "select.from", cols: [2]string{"select", "order"}},
	{name: "nested namespace", table: "a.b.c.t", cols: [2]string{"v", "n"}},
	{name: "long", table: "ods." + strings.Repeat("l", 200), cols: [2]string{strings.Repeat("c", 200), "n"}},
	{name: "case only, upper", table: "ods.Case", cols: [2]string{"Value", "n"}},
	{name: "case only, lower", table: "ods.case", cols: [2]string{"value", "n"}},
	{name: "dotted column", table: "ods.dotted_col", cols: [2]string{"a.b", "n"}},
	{name: "columns differing in case", table: "ods.cols_case", cols: [2]string{"v", "V"}},
	{name: "slash", table: "ods.a/b", cols: [2]string{"v", "n"}, refused: "tables[0]"},
	{name: "empty part", table: "ods..t", cols: [2]string{"v", "n"}, refused: "tables[0]"},
	{name: "control character", table: "ods.t\x01", cols: [2]string{"v", "n"}, refused: "tables[0]"},
}

func hostileTable(c hostileCase) map[string]any {
	return map[string]any{"name": c.table, "schema": []any{
		map[string]any{"name": c.cols[0], "type": "string"},
		map[string]any{"name": c.cols[1], "type": "string"},
	}}
}

// TestHostileNames sends records with hostile table names (spaces,
// quotes, unicode, SQL, reserved words, dotted namespaces, 200-character
// names, names differing only in case) and hostile JSON keys as column
// names from Kafka into Iceberg, and reads every table back with floe
// read: each value is where it belongs. The names Floe refuses are
// refused when the config is read, with the key and the reason.
func TestHostileNames(t *testing.T) {
	brokers := kafkaBrokers(t)
	bin := testenv.FloeBinary(t)
	var ok []hostileCase
	for _, c := range hostileCases {
		if c.refused == "" {
			ok = append(ok, c)
			continue
		}
		t.Run("refused/"+c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := writeFloeYAML(t, dir, map[string]any{
				"catalog": catalogYAML(localWarehouse(t)), "metrics-address": "off",
				"tables": []any{hostileTable(c)},
				"sources": []any{map[string]any{"type": "kafka", "kafka": map[string]any{"brokers": brokers,
					"routes": []any{map[string]any{"topics": []string{"t"}, "table": c.table}}}}},
			})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "ingest", "-config", cfg).CombinedOutput()
			if code := exitCode(err); code != 2 || !strings.Contains(string(out), c.refused) {
				t.Fatalf("exit code %d (want 2, a config error naming %s):\n%s", code, c.refused, out)
			}
			t.Logf("refused: %s", strings.TrimSpace(string(out)))
		})
	}

	dir := t.TempDir()
	cc := localWarehouse(t)
	prefix := "hostile-" + kafkaRandHex(t) + "-"
	var routes, tables []any
	for i, c := range ok {
		topic := fmt.Sprintf("%s%d", prefix, i)
		createTopic(t, brokers, topic, 1)
		routes = append(routes, map[string]any{"topics": []string{topic}, "table": c.table})
		tables = append(tables, hostileTable(c))
	}
	cfg := writeFloeYAML(t, dir, map[string]any{
		"catalog":         catalogYAML(cc),
		"writer":          map[string]any{"commit-interval": "1s"},
		"metrics-address": "off",
		"tables":          tables,
		"sources": []any{map[string]any{"type": "kafka", "kafka": map[string]any{
			"id": "hostile", "brokers": brokers, "group": "floe-" + prefix, "routes": routes, "fetch-max-wait": "100ms",
		}}},
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const perTable = 5
	var recs []*kgo.Record
	for i, c := range ok {
		for j := range perTable {
			v, _ := json.Marshal(map[string]string{c.cols[0]: fmt.Sprintf("%d-%d", i, j), c.cols[1]: fmt.Sprintf("%s|%d", c.cols[1], j)})
			recs = append(recs, &kgo.Record{Topic: fmt.Sprintf("%s%d", prefix, i), Value: v})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p := startFloe(t, bin, cfg, dir, "ingest")
	cat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			deadline := time.Now().Add(90 * time.Second)
			var rows []map[string]any
			for {
				if exists, _ := cat.CheckTableExists(context.Background(), tableIdent(c.table)); exists {
					rows = floeRead(t, bin, cfg, dir, c.table)
					if len(rows) >= perTable {
						break
					}
				}
				if err, done := p.exited(); done {
					t.Fatalf("floe ingest exited: %v\n%s", err, lastLines(readNamedLog(t, dir, "ingest"), 20))
				}
				if time.Now().After(deadline) {
					t.Fatalf("table %q holds %d rows after 90s, want %d\n%s", c.table, len(rows), perTable, lastLines(readNamedLog(t, dir, "ingest"), 20))
				}
				time.Sleep(time.Second)
			}
			got := map[string]bool{}
			for _, r := range rows {
				got[fmt.Sprint(r[c.cols[0]])+" "+fmt.Sprint(r[c.cols[1]])] = true
			}
			for j := range perTable {
				want := fmt.Sprintf("%d-%d %s|%d", i, j, c.cols[1], j)
				if !got[want] || len(rows) != perTable {
					t.Fatalf("table %q: rows %v; want %d rows with %q", c.table, rows, perTable, want)
				}
			}
		})
	}
	p.stop(t)
}

func tableIdent(name string) []string {
	i := strings.LastIndexByte(name, '.')
	return append(strings.Split(name[:i], "."), name[i+1:])
}

// floeRead reads a table with floe read into JSON lines.
func floeRead(t *testing.T, bin, cfg, dir, table string) []map[string]any {
	t.Helper()
	out := filepath.Join(dir, "read.jsonl")
	if b, err := exec.Command(bin, "read", "-config", cfg, "-output", out, table).CombinedOutput(); err != nil {
		t.Fatalf("floe read %q: %v\n%s", table, err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var rows []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("floe read %q: %v: %s", table, err, sc.Text())
		}
		rows = append(rows, r)
	}
	return rows
}

func readNamedLog(t testing.TB, dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
	return string(b)
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// TestHostileMySQLNames captures MySQL tables and columns whose names
// hold spaces, backticks, quotes, unicode, dots, reserved words and SQL,
// 64-character names and names differing only in case, through the
// snapshot and then the binlog: every Iceberg table equals its MySQL
// table.
func TestHostileMySQLNames(t *testing.T) {
	dsn := cdcDSN(t)
	bin := testenv.FloeBinary(t)
	db, dbName := cdcDB(t, dsn)
	long := strings.Repeat("x", 64)
	tables := []string{"weird table", "quo`te'tbl", "ünïcödé_表", "select", "T", "t", "dotted.name", "x'; DROP TABLE t; --", long}
	for i, tbl := range tables {
		cdcExec(t, db, fmt.Sprintf("CREATE TABLE %s (`id` INT PRIMARY KEY, `col with space` VARCHAR(20), `quo``te\"s` INT, `ünï_列` VARCHAR(100), `select` INT, `dotted.col` INT, `%s` INT)",
			quoteMySQL(tbl), long))
		for j := range 3 {
			cdcExec(t, db, fmt.Sprintf("INSERT INTO %s VALUES (?, ?, ?, ?, ?, ?, ?)", quoteMySQL(tbl)), j, fmt.Sprintf("v %d'%d", i, j), j, "ü"+tbl, j, j, j)
		}
	}
	dir := t.TempDir()
	cc := localWarehouse(t)
	cfg := writeFloeYAML(t, dir, map[string]any{
		"catalog": catalogYAML(cc), "writer": map[string]any{"commit-interval": "1s"}, "metrics-address": "off",
		"sources": []any{map[string]any{"type": "mysql", "mysql": map[string]any{
			"id": "hostile-" + kafkaRandHex(t), "server-id": 1000000 + int(time.Now().UnixNano()%999999), "dsn": dsn,
			"include": []string{dbName + `\..*`}, "table-name": "{db}.{table}", "batch-delay": "100ms",
		}}},
	})
	p := startFloe(t, bin, cfg, dir, "ingest")
	waitCDCEqual(t, cc, db, dbName, tables, 2*time.Minute)
	for i, tbl := range tables {
		q := quoteMySQL(tbl)
		cdcExec(t, db, "UPDATE "+q+" SET `col with space` = ?, `quo``te\"s` = `quo``te\"s` + 10 WHERE `id` = 1", fmt.Sprintf("upd'%d", i))
		cdcExec(t, db, "DELETE FROM "+q+" WHERE `id` = 2")
		cdcExec(t, db, "INSERT INTO "+q+" VALUES (?, ?, ?, ?, ?, ?, ?)", 9, "new", 9, "ï", 9, 9, 9)
	}
	waitCDCEqual(t, cc, db, dbName, tables, 2*time.Minute)
	if err, done := p.exited(); done {
		t.Fatalf("floe ingest exited: %v", err)
	}
	p.stop(t)
}

func quoteMySQL(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
