package service

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floe-lake/floe/internal/testenv"
)

// faultWindow is how long a fault may take to show: run.unavailable-timeout
// (3s in these configs) after the job's first failure — which for a
// stopped store comes after the S3 client's own retries (about 17s) — with
// room for a loaded machine.
const faultWindow = 45 * time.Second

// expectFault waits until /readyz answers 503 naming reason, /status and
// the status page name it too, and /metrics matches metric.
func expectFault(t *testing.T, p *floeProc, logPath, reason string, metric *regexp.Regexp) {
	t.Helper()
	base := "http://" + p.addr
	start := time.Now()
	var last string
	for {
		code, body := httpGet(base + "/readyz")
		_, st := httpGet(base + "/status")
		_, page := httpGet(base + "/")
		_, m := httpGet(base + "/metrics")
		last = fmt.Sprintf("/readyz %d %s", code, body)
		if code == http.StatusServiceUnavailable && strings.Contains(body, reason) && strings.Contains(st, reason) &&
			strings.Contains(page, reason) && metric.MatchString(m) && strings.Contains(m, "floe_ready 0") {
			t.Logf("fault shown after %s: %s", time.Since(start).Round(100*time.Millisecond), strings.TrimSpace(body))
			return
		}
		if time.Since(start) > faultWindow {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("fault %q not shown within %s (metric %s: %v); last %s\n%s", reason, faultWindow, metric, metric.MatchString(m), last, testenv.LastLines(b, 30))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// expectReady waits until /readyz answers 200.
func expectReady(t *testing.T, p *floeProc, logPath string, within time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		code, body := httpGet("http://" + p.addr + "/readyz")
		if code == http.StatusOK {
			t.Logf("ready after %s", time.Since(start).Round(100*time.Millisecond))
			return
		}
		if time.Since(start) > within {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("not ready within %s: %d %s\n%s", within, code, body, testenv.LastLines(b, 30))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func runFloe(t *testing.T, cfg map[string]any) (*floeProc, string) {
	t.Helper()
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg["metrics-address"] = addr
	cfg["writer"] = map[string]any{"commit-interval": "1s"}
	cfg["run"] = map[string]any{"unavailable-timeout": "3s"}
	if cfg["catalog"] == nil {
		cfg["catalog"] = map[string]any{"type": "sqlite", "uri": filepath.Join(dir, "catalog.db"), "warehouse": filepath.Join(dir, "warehouse")}
	}
	path := writeYAML(t, filepath.Join(dir, "floe.yaml"), cfg)
	logPath := filepath.Join(dir, "floe.log")
	return startFloe(t, testenv.FloeBinary(t), logPath, addr, "run", "-config", path), logPath
}

func genSource() map[string]any {
	return map[string]any{"type": "gen", "gen": map[string]any{
		"id": "gen", "seed": 1, "partitions": 2, "rate": 200,
		"events-table": "ods.events", "orders-table": "ods.orders", "dead-letter-table": "floe.dead_letters",
	}}
}

func kafkaSource(brokers []string, topic string) map[string]any {
	return map[string]any{"type": "kafka", "kafka": map[string]any{
		"id": "clicks", "brokers": brokers, "group": topic, "unavailable-timeout": "3s",
		"routes": []any{map[string]any{"topics": []string{topic}, "table": "ods.clicks"}},
	}}
}

// TestRunFaults is issue 14's second must-show: each fault is visible in
// /readyz, /status, the status page and /metrics within the configured
// time, and readiness returns once the fault is removed.
func TestRunFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs Kafka, MariaDB, MinIO and PostgreSQL")
	}
	t.Run("kafka broker unreachable", func(t *testing.T) {
		brokers := kafkaBrokers(t)
		testenv.KafkaLock(t, false)
		topic := fmt.Sprintf("floe-fault-%d", rand.N(1_000_000_000))
		testenv.CreateTopic(t, brokers, topic, 2)
		px := newProxy(t, brokers[0]) // down: a closed port
		p, log := runFloe(t, map[string]any{"tables": []any{clicksSpec}, "sources": []any{kafkaSource([]string{px.addr}, topic)}})
		expectFault(t, p, log, "no kafka broker answers", regexp.MustCompile(`floe_kafka_broker_up\{source="clicks"\} 0`))
		px.up()
		expectReady(t, p, log, 60*time.Second)
	})
	t.Run("kafka topic missing", func(t *testing.T) {
		brokers := kafkaBrokers(t)
		testenv.KafkaLock(t, false)
		topic := fmt.Sprintf("floe-missing-%d", rand.N(1_000_000_000))
		p, log := runFloe(t, map[string]any{"tables": []any{clicksSpec}, "sources": []any{kafkaSource(brokers, topic)}})
		expectFault(t, p, log, "kafka topic missing: "+topic, regexp.MustCompile(`floe_kafka_topic_missing\{source="clicks",topic="`+topic+`"\} 1`))
		testenv.CreateTopic(t, brokers, topic, 2)
		expectReady(t, p, log, 60*time.Second)
	})
	t.Run("mysql wrong password", func(t *testing.T) {
		dsn := testenv.MariaDB(t)
		_, dbName := testenv.MariaDBDatabase(t, dsn, "floefault", 2)
		root, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close() //nolint:errcheck // a test
		user := fmt.Sprintf("floe_%d", rand.N(1_000_000))
		for _, q := range []string{
			"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'right'",
			"CREATE USER '" + user + "'@'localhost' IDENTIFIED BY 'right'",
			"GRANT ALL ON *.* TO '" + user + "'@'%'", "GRANT ALL ON *.* TO '" + user + "'@'localhost'",
			"CREATE TABLE " + dbName + ".items (id BIGINT PRIMARY KEY, name VARCHAR(20))",
			"INSERT INTO " + dbName + ".items VALUES (1, 'a')",
		} {
			if _, err := root.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		t.Cleanup(func() {
			_, _ = root.Exec("DROP USER IF EXISTS '" + user + "'@'%'")
			_, _ = root.Exec("DROP USER IF EXISTS '" + user + "'@'localhost'")
		})
		host := dsn[strings.Index(dsn, "@"):]
		p, log := runFloe(t, map[string]any{"sources": []any{map[string]any{"type": "mysql", "mysql": map[string]any{
			"id": "shop", "dsn": user + ":wrong" + host, "server-id": 1_000_000 + rand.N(900_000), "include": []string{dbName + `\.items`},
		}}}})
		expectFault(t, p, log, "Access denied", regexp.MustCompile(`floe_mysql_up\{source="shop"\} 0`))
		for _, h := range []string{"%", "localhost"} {
			if _, err := root.Exec("ALTER USER '" + user + "'@'" + h + "' IDENTIFIED BY 'wrong'"); err != nil {
				t.Fatal(err)
			}
		}
		expectReady(t, p, log, 60*time.Second)
	})
	t.Run("minio stopped", func(t *testing.T) {
		m := startMinIO(t)
		p, log := runFloe(t, map[string]any{
			"catalog": map[string]any{"type": "sqlite", "uri": filepath.Join(t.TempDir(), "catalog.db"), "warehouse": "s3://floe-faults/wh",
				"s3": map[string]any{"endpoint": m.endpoint, "access-key-id": minioUser, "secret-access-key": minioPass}},
			"sources": []any{genSource()},
		})
		expectReady(t, p, log, 60*time.Second)
		m.stop()
		expectFault(t, p, log, "job ingest/gen failing since", regexp.MustCompile(`floe_job_failing\{name="ingest/gen"\} 1`))
		m.start(t)
		expectReady(t, p, log, 90*time.Second)
	})
	t.Run("catalog unreachable", func(t *testing.T) {
		pg := postgres(t)
		px := newProxy(t, pg) // down: the catalog's port is closed at start
		p, log := runFloe(t, map[string]any{
			"catalog": map[string]any{"type": "postgres", "name": fmt.Sprintf("faults%d", rand.N(1_000_000)),
				"uri": "postgres://floe:floe@" + px.addr + "/floe", "warehouse": filepath.Join(t.TempDir(), "warehouse")},
			"sources": []any{genSource()},
		})
		expectFault(t, p, log, "opening the catalog", regexp.MustCompile(`floe_job_failing\{name="catalog"\} 1`))
		px.up()
		expectReady(t, p, log, 60*time.Second)
		px.down() // and while running
		expectFault(t, p, log, "job ingest/gen failing since", regexp.MustCompile(`floe_job_failing\{name="ingest/gen"\} 1`))
		px.up()
		expectReady(t, p, log, 90*time.Second)
	})
}

const (
	minioUser = "floeadmin"
	minioPass = "floeadmin-secret"
)

// minio is a MinIO server of this test's own (integration/minio.sh builds
// the binary), on its own port and data directory, so that stopping it
// leaves the shared one alone.
type minio struct {
	bin, dir, endpoint string
	port               int
	cmd                *exec.Cmd
	done               chan struct{}
}

func startMinIO(t *testing.T) *minio {
	t.Helper()
	cache := os.Getenv("FLOE_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "floe")
	}
	bins, _ := filepath.Glob(filepath.Join(cache, "bin", "minio-*"))
	if len(bins) == 0 {
		t.Fatal("no MinIO binary: integration/minio.sh install")
	}
	m := &minio{bin: bins[len(bins)-1], dir: t.TempDir(), port: freePort(t)}
	m.endpoint = fmt.Sprintf("http://127.0.0.1:%d", m.port)
	m.start(t)
	t.Cleanup(m.stop)
	return m
}

func (m *minio) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(m.bin, "server", "--quiet", "--address", fmt.Sprintf("127.0.0.1:%d", m.port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", freePort(t)), m.dir)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+minioUser, "MINIO_ROOT_PASSWORD="+minioPass)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(m.done) }()
	waitFor(t, 60*time.Second, "MinIO to answer", func() bool {
		code, _ := httpGet(m.endpoint + "/minio/health/live")
		return code == http.StatusOK
	})
}

func (m *minio) stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
	m.cmd = nil
}

// postgres starts (idempotently; never stops) the PostgreSQL server of
// integration/engines/postgres.sh and returns its host:port.
func postgres(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("FLOE_PG_DSN")
	if dsn == "" {
		out, err := exec.Command("../integration/engines/postgres.sh", "start").Output()
		if err != nil {
			t.Fatalf("integration/engines/postgres.sh start: %v", err)
		}
		m := regexp.MustCompile(`FLOE_PG_DSN=(\S+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("postgres.sh start printed %q", out)
		}
		dsn = strings.Trim(string(m[1]), `'"`)
	}
	m := regexp.MustCompile(`@([^/]+)/`).FindStringSubmatch(dsn)
	if m == nil {
		t.Fatalf("FLOE_PG_DSN %q has no host:port", dsn)
	}
	return m[1]
}
