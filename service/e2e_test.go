package service

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/aggregate"
	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
)

// e2e: floe run as a subprocess against the real Kafka broker, MariaDB
// and MinIO (make test starts them); skipped under -short.

func kafkaBrokers(t *testing.T) []string {
	t.Helper()
	b := os.Getenv("FLOE_KAFKA_BROKERS")
	if b == "" {
		t.Fatal("FLOE_KAFKA_BROKERS is not set: eval $(integration/kafka.sh start)")
	}
	return strings.Split(b, ",")
}

// freePort returns a TCP port nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() //nolint:errcheck // only its port is wanted
	return ln.Addr().(*net.TCPAddr).Port
}

// floeProc is a floe subprocess.
type floeProc struct {
	cmd  *exec.Cmd
	log  *os.File
	addr string
	done chan struct{}
}

func startFloe(t *testing.T, bin, logPath, addr string, args ...string) *floeProc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// The config names the store: FLOE_S3_* would override it.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLOE_S3_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &floeProc{cmd: cmd, log: f, addr: addr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill(); _ = f.Close() })
	return p
}

func (p *floeProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *floeProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		p.kill()
		t.Fatal("floe did not stop within 90s of SIGTERM")
	}
}

// httpGet returns status and body, or 0 when the server does not answer.
func httpGet(url string) (int, string) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url) //nolint:noctx // a test
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close() //nolint:errcheck // read below
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// writeYAML writes v to path.
func writeYAML(t testing.TB, path string, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func produce(t testing.TB, brokers []string, topic string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		v := fmt.Sprintf(`{"event_id":%d,"event_time":%q,"user_id":%d,"page":"/p%d","amount":%d}`,
			i, base.Add(time.Duration(i)*7*time.Second).Format(time.RFC3339), i%37, i%11, i%100)
		if i%500 == 499 {
			v = `{"event_id":` + fmt.Sprint(i) + `, not json`
		}
		recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprint(i % 17)), Value: []byte(v)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

var clicksSpec = map[string]any{
	"name": "ods.clicks",
	"schema": []map[string]any{
		{"name": "event_id", "type": "long", "required": true},
		{"name": "event_time", "type": "timestamptz", "required": true},
		{"name": "user_id", "type": "long"},
		{"name": "page", "type": "string"},
		{"name": "amount", "type": "long"},
	},
	"partition": []map[string]any{{"column": "event_time", "transform": "day"}},
}

// pipelineConfig is the floe.yaml of the must-show pipeline: a Kafka
// source, a MySQL source, compaction, two aggregation specs.
func pipelineConfig(dir, topic, group, dsn, db string, serverID uint32, brokers []string, addr string) map[string]any {
	return map[string]any{
		"catalog":         map[string]any{"type": "sqlite", "uri": filepath.Join(dir, "catalog.db"), "warehouse": filepath.Join(dir, "warehouse")},
		"writer":          map[string]any{"commit-interval": "1s"},
		"compaction":      map[string]any{"interval": "2s", "min-input-files": 2},
		"metrics-address": addr,
		"run":             map[string]any{"unavailable-timeout": "3s"},
		"tables":          []any{clicksSpec},
		"aggregations":    []any{map[string]any{"spec": "pages_hourly.yaml"}, map[string]any{"spec": "users_daily.yaml"}},
		"sources": []any{
			map[string]any{"type": "kafka", "kafka": map[string]any{
				"id": "clicks", "brokers": brokers, "group": group, "unavailable-timeout": "3s",
				"routes": []any{map[string]any{"topics": []string{topic}, "table": "ods.clicks"}},
			}},
			map[string]any{"type": "mysql", "mysql": map[string]any{
				"id": "shop", "dsn": dsn, "server-id": serverID, "include": []string{db + `\.items`}, "table-name": "cdc.{table}",
			}},
		},
	}
}

func writeSpecs(t testing.TB, dir string) {
	t.Helper()
	writeYAML(t, filepath.Join(dir, "pages_hourly.yaml"), map[string]any{
		"name": "pages_hourly", "source": "ods.clicks", "output": "ads.pages_hourly", "time": "event_time",
		"window": map[string]any{"size": "1h"}, "dimensions": []string{"page"},
		"measures": []any{
			map[string]any{"name": "clicks", "fn": "count"},
			map[string]any{"name": "amount", "fn": "sum", "column": "amount"},
			map[string]any{"name": "users", "fn": "count_distinct", "column": "user_id"},
		},
	})
	writeYAML(t, filepath.Join(dir, "users_daily.yaml"), map[string]any{
		"name": "users_daily", "source": "ods.clicks", "output": "ads.users_daily", "time": "event_time",
		"window": map[string]any{"size": "1d"}, "dimensions": []string{"user_id"},
		"measures": []any{
			map[string]any{"name": "clicks", "fn": "count"},
			map[string]any{"name": "top", "fn": "max", "column": "amount"},
		},
	})
}

func openCat(t testing.TB, dir string) icecat.Catalog {
	t.Helper()
	cc := catalog.Config{Type: "sqlite", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")}
	cc.ApplyDefaults()
	cat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeCatalog(cat, slog.Default()) })
	return cat
}

// tableRows returns the rows of name (every column but aggregate's
// _state), sorted; nil when the table does not exist.
func tableRows(t testing.TB, cat icecat.Catalog, name string) []string {
	t.Helper()
	tbl, err := cat.LoadTable(context.Background(), icecat.ToIdentifier(name))
	if err != nil {
		return nil
	}
	var cols []string
	for _, f := range tbl.Schema().Fields() {
		if f.Name != aggregate.ColState {
			cols = append(cols, f.Name)
		}
	}
	var out []string
	if tbl.CurrentSnapshot() == nil {
		return out
	}
	for _, r := range tabletest.Rows(t, tbl, icetable.WithSelectedFields(cols...)) {
		out = append(out, fmt.Sprint(r...))
	}
	slices.Sort(out)
	return out
}

func mysqlItems(t testing.TB, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query("SELECT id, name, qty FROM items ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close() //nolint:errcheck // read below
	var out []string
	for rows.Next() {
		var id, qty int64
		var name string
		if err := rows.Scan(&id, &name, &qty); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(id, name, qty))
	}
	slices.Sort(out)
	return out
}

func icebergItems(t testing.TB, cat icecat.Catalog) []string {
	t.Helper()
	tbl, err := cat.LoadTable(context.Background(), icecat.ToIdentifier("cdc.items"))
	if err != nil || tbl.CurrentSnapshot() == nil {
		return nil
	}
	var out []string
	for _, r := range tabletest.Rows(t, tbl, icetable.WithSelectedFields("id", "name", "qty")) {
		out = append(out, fmt.Sprint(r...))
	}
	slices.Sort(out)
	return out
}

// aggregationsCaughtUp reports whether both specs' outputs hold every
// append of ods.clicks: no snapshot but replaces after their cursors.
func aggregationsCaughtUp(t testing.TB, cat icecat.Catalog, dir string) bool {
	t.Helper()
	ctx := context.Background()
	src, err := cat.LoadTable(ctx, icecat.ToIdentifier("ods.clicks"))
	if err != nil {
		return false
	}
	for _, f := range []string{"pages_hourly.yaml", "users_daily.yaml"} {
		spec, err := aggregate.LoadSpec(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		a, err := aggregate.New(ctx, cat, spec, aggregate.Options{})
		if err != nil {
			return false
		}
		cur, found, err := a.Cursor(ctx)
		if err != nil || !found {
			return false
		}
		cs := src.Metadata().SnapshotByID(cur)
		if cs == nil {
			return false
		}
		for _, s := range src.Metadata().Snapshots() {
			if s.SequenceNumber > cs.SequenceNumber && s.Summary != nil && s.Summary.Operation != icetable.OpReplace {
				return false
			}
		}
	}
	return true
}

const clickCount = 3000

// TestRunEqualsSubcommands is issue 14's first must-show: floe run over a
// Kafka source, a MySQL source, compaction and two aggregation specs,
// SIGKILLed once in the middle, ends with every table equal to what the
// separate subcommands (ingest, compact -once, aggregate -once) produce.
func TestRunEqualsSubcommands(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs Kafka, MariaDB and a floe binary")
	}
	brokers := kafkaBrokers(t)
	testenv.KafkaLock(t, false)
	dsn := testenv.MariaDB(t)
	db, dbName := testenv.MariaDBDatabase(t, dsn, "floerun", 4)
	bin := testenv.FloeBinary(t)
	if _, err := db.Exec("CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, err := db.Exec("INSERT INTO items VALUES (?, ?, ?)", i, fmt.Sprintf("item-%d", i), i%9); err != nil {
			t.Fatal(err)
		}
	}
	topic := fmt.Sprintf("floe-run-%d", rand.N(1_000_000_000))
	testenv.CreateTopic(t, brokers, topic, 3)
	produce(t, brokers, topic, 0, clickCount/2)

	// floe run, killed once while the sources and aggregations run.
	dirA := t.TempDir()
	writeSpecs(t, dirA)
	addrA := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfgA := writeYAML(t, filepath.Join(dirA, "floe.yaml"), pipelineConfig(dirA, topic, topic+"-a", dsn, dbName, 1_000_000+rand.N[uint32](900_000), brokers, addrA))
	logA := filepath.Join(dirA, "floe.log")
	p := startFloe(t, bin, logA, addrA, "run", "-config", cfgA)
	catA := openCat(t, dirA)
	waitFor(t, 90*time.Second, "floe run to commit clicks and items", func() bool {
		return len(tableRows(t, catA, "ods.clicks")) > 0 && len(icebergItems(t, catA)) == 200
	})
	for i := range 100 { // updates, deletes and inserts while it runs
		var err error
		switch i % 3 {
		case 0:
			_, err = db.Exec("UPDATE items SET qty = qty + 100, name = CONCAT(name, '+') WHERE id = ?", i)
		case 1:
			_, err = db.Exec("DELETE FROM items WHERE id = ?", i)
		default:
			_, err = db.Exec("INSERT INTO items VALUES (?, ?, ?)", 1000+i, fmt.Sprintf("new-%d", i), i)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Every metric deploy/'s dashboard and alert rules name is exported
	// by the running floe run.
	var missing []string
	for range 60 {
		_, scrape := httpGet("http://" + addrA + "/metrics")
		if missing = missingDeployMetrics(t, scrape); len(missing) == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	if len(missing) > 0 {
		t.Errorf("deploy/ names metrics the running floe run does not export: %v", missing)
	}
	produce(t, brokers, topic, clickCount/2, clickCount/2)
	time.Sleep(time.Duration(200+rand.N(1000)) * time.Millisecond)
	p.kill() // SIGKILL in the middle
	t.Logf("floe run SIGKILLed with %d clicks committed", len(tableRows(t, catA, "ods.clicks")))
	p = startFloe(t, bin, logA, addrA, "run", "-config", cfgA)
	want := mysqlItems(t, db)
	waitFor(t, 3*time.Minute, "floe run to catch up after the kill", func() bool {
		return len(tableRows(t, catA, "ods.clicks")) == clickCount-clickCount/500 &&
			slices.Equal(icebergItems(t, catA), want) && aggregationsCaughtUp(t, catA, dirA)
	})
	if code, body := httpGet("http://" + addrA + "/readyz"); code != http.StatusOK {
		b, _ := os.ReadFile(logA)
		t.Errorf("/readyz of the caught-up floe run = %d %s\n%s", code, body, testenv.LastLines(b, 40))
	}
	p.stop(t)

	// The same with the separate subcommands.
	dirB := t.TempDir()
	writeSpecs(t, dirB)
	cfgB := writeYAML(t, filepath.Join(dirB, "floe.yaml"), pipelineConfig(dirB, topic, topic+"-b", dsn, dbName, 1_000_000+rand.N[uint32](900_000), brokers, "off"))
	logB := filepath.Join(dirB, "floe.log")
	ing := startFloe(t, bin, logB, "", "ingest", "-config", cfgB)
	catB := openCat(t, dirB)
	waitFor(t, 3*time.Minute, "floe ingest to catch up", func() bool {
		return len(tableRows(t, catB, "ods.clicks")) == clickCount-clickCount/500 && slices.Equal(icebergItems(t, catB), want)
	})
	ing.stop(t)
	for _, args := range [][]string{
		{"compact", "-config", cfgB, "-once"},
		{"aggregate", "-config", cfgB, "-spec", filepath.Join(dirB, "pages_hourly.yaml"), "-once"},
		{"aggregate", "-config", cfgB, "-spec", filepath.Join(dirB, "users_daily.yaml"), "-once"},
	} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("floe %v: %v\n%s", args, err, out)
		}
	}
	for _, name := range []string{"ods.clicks", "cdc.items", "ads.pages_hourly", "ads.users_daily", "floe.dead_letters"} {
		a, b := tableRows(t, catA, name), tableRows(t, catB, name)
		if name == "floe.dead_letters" {
			a, b = deadLetterKeys(t, catA), deadLetterKeys(t, catB)
		}
		if len(a) == 0 || !slices.Equal(a, b) {
			t.Errorf("%s: floe run has %d rows, the subcommands %d; equal: %v", name, len(a), len(b), slices.Equal(a, b))
		}
	}
}

// deadLetterKeys are the dead letters without their receive time.
func deadLetterKeys(t testing.TB, cat icecat.Catalog) []string {
	t.Helper()
	tbl, err := cat.LoadTable(context.Background(), icecat.ToIdentifier("floe.dead_letters"))
	if err != nil || tbl.CurrentSnapshot() == nil {
		return nil
	}
	var out []string
	for _, r := range tabletest.Rows(t, tbl, icetable.WithSelectedFields("source", "partition", "position", "reason")) {
		out = append(out, fmt.Sprint(r...))
	}
	slices.Sort(out)
	return out
}

// proxy forwards a local port to target while up; down closes the
// listener and every connection, so that the port refuses connections.
type proxy struct {
	t      testing.TB
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newProxy(t testing.TB, target string) *proxy {
	return &proxy{t: t, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), target: target, conns: map[net.Conn]bool{}}
}

func (p *proxy) up() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[u] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); _ = u.Close() }()
			go func() { _, _ = io.Copy(c, u); _ = c.Close() }()
		}
	}()
	p.t.Cleanup(p.down)
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[net.Conn]bool{}
}
