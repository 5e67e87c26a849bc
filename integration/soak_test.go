package integration

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/faultproxy"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
)

// soakDuration is how long the faults of TestSoak go on: FLOE_SOAK_DURATION
// (`make soak` sets 10m), else 75s.
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("FLOE_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second {
			t.Fatalf("FLOE_SOAK_DURATION=%q: want a duration of at least 10s", v)
		}
		return d
	}
	return 75 * time.Second
}

// soakDir is the soak's working directory (logs, the MinIO data, the
// SQLite catalog): a new directory under FLOE_SOAK_KEEP when that is set,
// which stays after the test for a post-mortem; else the test's TempDir.
func soakDir(t *testing.T) string {
	root := os.Getenv("FLOE_SOAK_KEEP")
	if root == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(mkdir(t, root), "soak-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the soak's directory (kept): %s", dir)
	return dir
}

// soakDaemon is one floe daemon the soak keeps running: restarted after
// the soak kills it, and after it exits by itself (a crash, counted).
type soakDaemon struct {
	name string
	args []string
	env  []string
	dir  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	killing bool // the soak SIGKILLed the current process
	starts  int
	kills   int
	crashes []string // how each exit the soak did not cause ended
	calm    int      // how many of them came while no fault was in force
	faults  *faultClock
	maxRSS  int64 // bytes
}

// run keeps the daemon up until ctx ends, then stops it with SIGTERM.
func (d *soakDaemon) run(ctx context.Context, rng *mrand.Rand) {
	for {
		logf, err := os.OpenFile(filepath.Join(d.dir, d.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			d.crash(err.Error())
			return
		}
		fmt.Fprintf(logf, "---- start %s\n", time.Now().Format(time.RFC3339Nano))
		cmd := exec.Command(d.args[0], d.args[1:]...)
		cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = d.dir, d.env, logf, logf
		if err := cmd.Start(); err != nil {
			_ = logf.Close()
			d.crash(err.Error())
			return
		}
		d.mu.Lock()
		d.cmd, d.killing = cmd, false
		d.starts++
		d.mu.Unlock()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var werr error
		select {
		case werr = <-done:
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case werr = <-done:
				if werr != nil {
					d.crash("after SIGTERM: " + werr.Error())
				}
			case <-time.After(90 * time.Second):
				_ = cmd.Process.Kill()
				werr = <-done
				d.crash(fmt.Sprintf("did not stop within 90s of SIGTERM (then killed: %v)", werr))
			}
			_ = logf.Close()
			return
		}
		_ = logf.Close()
		d.mu.Lock()
		killed := d.killing
		d.cmd = nil
		d.mu.Unlock()
		pause := time.Duration(rng.IntN(2000)) * time.Millisecond
		if !killed {
			d.crash(fmt.Sprintf("%v: %s", werr, d.lastError()))
			pause = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// lastError is the last line of the daemon's log that names an error.
func (d *soakDaemon) lastError() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, d.name+".log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-20; i-- {
		if strings.Contains(lines[i], "level=ERROR") || strings.Contains(lines[i], "err=") || strings.HasPrefix(lines[i], "floe") {
			return lines[i]
		}
	}
	return lines[len(lines)-1]
}

func (d *soakDaemon) crash(why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	during := "during a fault"
	if !d.faults.inForce() {
		during = "NO FAULT in force"
		d.calm++
	}
	d.crashes = append(d.crashes, time.Now().Format("15:04:05")+" ("+during+") "+why)
}

// faultClock says whether a proxy fault is in force, or ended less than
// faultAfterglow ago (a daemon restarted then may still meet its effects).
type faultClock struct {
	mu    sync.Mutex
	until time.Time
}

func (c *faultClock) set(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if on {
		c.until = time.Now().Add(24 * time.Hour)
	} else {
		c.until = time.Now().Add(faultAfterglow)
	}
}

func (c *faultClock) inForce() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Before(c.until)
}

// faultAfterglow is how long after a fault a daemon's exit still counts
// as caused by it: a daemon that started during the fault gives up
// opening the catalog or the bucket after its connect timeouts, which on
// a loaded machine (2 cores, load average 20: make test runs other
// packages beside the soak) end well after the fault does.
const faultAfterglow = 30 * time.Second

// kill SIGKILLs the running process, if any.
func (d *soakDaemon) kill() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || d.killing {
		return false
	}
	d.killing = true
	d.kills++
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	return true
}

// sampleRSS records the running process's resident set.
func (d *soakDaemon) sampleRSS() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			d.maxRSS = max(d.maxRSS, kb<<10)
		}
	}
}

// soakEnv is this process's environment without Floe's variables, which
// override the config (FLOE_S3_ENDPOINT would point a daemon past its
// proxy, or at the shared MinIO instead of a test's TLS one), plus extra.
func soakEnv(extra ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "FLOE_") {
			env = append(env, e)
		}
	}
	return append(env, extra...)
}

const soakSpec1 = `name: clicks_hourly
source: ods.clicks
output: dws.clicks_hourly
time: event_time
window: {size: 1h}
dimensions: [event_type]
measures:
  - {name: pv, fn: count}
  - {name: uv, fn: count_distinct, column: user_id}
`

const soakSpec2 = `name: pages_5m
source: ods.clicks
output: dws.pages_5m
filter: "event_type = 'page_view'"
time: event_time
window: {size: 5m}
dimensions: [page_url]
measures:
  - {name: pv, fn: count}
  - {name: sessions, fn: count_distinct, column: session_id}
`

// TestSoak runs every daemon at once — two Kafka ingest processes in one
// group, MySQL CDC, the compaction daemon, two aggregations following and
// floe read -follow with a cursor file — while a producer and a MariaDB
// workload keep writing, with a fault proxy (internal/faultproxy) between
// Floe and each server: Kafka (a broker of the test's own, which
// advertises the proxy's address, as a broker behind a proxy must),
// MariaDB, MinIO (a server of the test's own) and the PostgreSQL catalog
// (a server of the test's own when PostgreSQL is installed; else a SQLite
// catalog, without a proxy). Every few seconds a proxy adds latency,
// limits bandwidth, resets its connections, stalls them or goes down, and
// a daemon is SIGKILLed; once the soak's MinIO is stopped and started
// again on its data, and (in runs of 3 minutes or more) its Kafka broker.
// The shared servers are never stopped: their outages are made at the
// proxies. Every table's data files per partition, manifests, snapshots
// and metadata.json size are sampled throughout. At the end, with the
// faults cleared: every Kafka record is in the table or the dead-letter
// table exactly once, every CDC table equals MariaDB, every aggregation
// equals its backfill (floe verify aggregate), the follower's output holds
// every row of its table exactly once, no daemon exited by itself with no
// fault in force, each daemon's RSS stayed under 512 MiB, and the sampled
// figures stayed under bounds derived from the compaction configuration
// (soakBounds) and came down to the steady state once the writers stopped.
//
// FLOE_SOAK_DURATION sets how long the faults go on (`make soak`: 10m);
// 75s by default.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak runs every daemon under faults for minutes; skipped under -short")
	}
	duration := soakDuration(t)
	mysqlDSN := cdcDSN(t)
	bin := testenv.FloeBinary(t)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dir := soakDir(t)
	proxy := func(name, upstream string) *faultproxy.Proxy {
		p, err := faultproxy.Listen(name, "127.0.0.1:0", upstream, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}

	// Kafka: a broker of the soak's own whose EXTERNAL listener is
	// advertised at the proxy; the producer uses PLAINTEXT, directly.
	kdir := mkdir(t, filepath.Join(dir, "kafka"))
	kplain, kext, kctrl := freePort(t), freePort(t), freePort(t)
	kproxy := proxy("kafka", fmt.Sprintf("127.0.0.1:%d", kext))
	kstart := formatKafkaBroker(t, kdir, kctrl, fmt.Sprintf(`listeners=PLAINTEXT://127.0.0.1:%d,EXTERNAL://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d
advertised.listeners=PLAINTEXT://127.0.0.1:%d,EXTERNAL://%s
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
`, kplain, kext, kctrl, kplain, kproxy.Addr()))
	broker := startSoakServer(t, "kafka", kdir, kstart, func(log string) bool {
		b, _ := os.ReadFile(log)
		return strings.Contains(string(b), "Kafka Server started")
	})
	direct := []string{fmt.Sprintf("127.0.0.1:%d", kplain)}
	topic := "soak-" + kafkaRandHex(t)
	const partitions, poisonEvery = 4, 997
	createTopic(t, direct, topic, partitions)
	producer := newClickProducer(t, direct, topic, partitions, poisonEvery)

	// MariaDB behind its proxy.
	db, dbName := cdcDB(t, mysqlDSN)
	cdcExec(t, db, shopSchema)
	w := newShopWorkload(db, uint64(time.Now().UnixNano()))
	for range 300 {
		if err := w.step(); err != nil {
			t.Fatal(err)
		}
	}
	mc, err := mysql.ParseDSN(mysqlDSN)
	if err != nil {
		t.Fatal(err)
	}
	mproxy := proxy("mariadb", mc.Addr)
	mc.Addr = mproxy.Addr()
	proxiedDSN := mc.FormatDSN()

	// MinIO: one of the soak's own (so that it can be restarted), behind
	// its proxy.
	minio, minioURL := startSoakMinIO(t, mkdir(t, filepath.Join(dir, "minio")))
	s3 := testenv.S3{Endpoint: minioURL, AccessKeyID: soakMinIOUser, SecretAccessKey: soakMinIOPass}
	s3proxy := proxy("minio", strings.TrimPrefix(s3.Endpoint, "http://"))
	bucket := s3.Bucket(t)
	cc := catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "catalog.db"), Warehouse: "s3://" + bucket + "/soak",
		S3: catalog.S3Config{Endpoint: s3.Endpoint, Region: "us-east-1", AccessKeyID: s3.AccessKeyID, SecretAccessKey: s3.SecretAccessKey}}
	daemonCat := catalogYAML(cc)
	daemonCat["s3"].(map[string]any)["endpoint"] = "http://" + s3proxy.Addr()
	proxies := []*faultproxy.Proxy{kproxy, mproxy, s3proxy}

	// The catalog: PostgreSQL behind its proxy when it is installed.
	var env []string
	if _, err := os.Stat("/usr/lib/postgresql"); err == nil {
		dsn := startPasswordPostgres(t)
		t.Setenv(catalog.EnvCatalogPassword, pgPass) // the test's own catalog.Open
		env = append(env, catalog.EnvCatalogPassword+"="+pgPass)
		host := strings.TrimPrefix(dsn[:strings.Index(dsn, "/floecat?")], "postgres://floecat@")
		pproxy := proxy("postgres", host)
		proxies = append(proxies, pproxy)
		cc.Type, cc.URI = catalog.TypePostgres, dsn
		daemonCat["type"], daemonCat["uri"] = catalog.TypePostgres, strings.Replace(dsn, host, pproxy.Addr(), 1)
	} else {
		t.Log("PostgreSQL is not installed: the soak's catalog is SQLite, without a proxy")
	}

	serverID := 1000000 + mrand.IntN(999999)
	clicks := clicksTable("ods.clicks")
	clicks["properties"] = soakExpiryProps()
	const commitInterval, compactInterval, minInputFiles, maxManifests = time.Second, 10 * time.Second, 5, 100
	cfgPath := writeFloeYAML(t, dir, map[string]any{
		"catalog":         daemonCat,
		"writer":          map[string]any{"commit-interval": commitInterval.String(), "memory-budget": "64MiB"},
		"metrics-address": "off",
		"compaction": map[string]any{"interval": compactInterval.String(), "metrics-address": "off",
			"min-input-files": minInputFiles, "rewrite-manifests.max-manifests": maxManifests},
		"tables": []any{clicks},
		"sources": []any{map[string]any{"type": "kafka", "kafka": map[string]any{
			"id": "clicks", "brokers": []string{kproxy.Addr()}, "group": "floe-soak",
			"routes":           []any{map[string]any{"topics": []string{topic}, "table": "ods.clicks"}},
			"metadata-columns": true, "session-timeout": "6s", "heartbeat-interval": "1s", "rebalance-timeout": "30s",
			"fetch-max-wait": "200ms",
		}}},
	})
	cdcCfg := writeFloeYAML(t, mkdir(t, filepath.Join(dir, "cdc")), map[string]any{
		"catalog":         daemonCat,
		"writer":          map[string]any{"commit-interval": "1s", "memory-budget": "64MiB"},
		"metrics-address": "off",
		"sources": []any{map[string]any{"type": "mysql", "mysql": map[string]any{
			"id": "soak", "server-id": serverID, "dsn": proxiedDSN, "include": []string{dbName + `\..*`}, "table-name": "{db}.{table}",
			"batch-delay": "100ms",
		}}},
	})
	specs := []string{filepath.Join(dir, "spec1.yaml"), filepath.Join(dir, "spec2.yaml")}
	for i, s := range []string{soakSpec1, soakSpec2} {
		if err := os.WriteFile(specs[i], []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	denv := soakEnv(env...)
	followOut := filepath.Join(dir, "follow.jsonl")
	daemons := []*soakDaemon{
		{name: "ingest-a", args: []string{bin, "ingest", "-config", cfgPath}},
		{name: "ingest-b", args: []string{bin, "ingest", "-config", cfgPath}},
		{name: "cdc", args: []string{bin, "ingest", "-config", cdcCfg}},
		{name: "compact", args: []string{bin, "compact", "-config", cfgPath, "-metrics-address", "off"}},
		{name: "aggregate-1", args: []string{bin, "aggregate", "-config", cfgPath, "-spec", specs[0], "-follow", "-metrics-address", "off", "-poll-interval", "1s"}},
		{name: "aggregate-2", args: []string{bin, "aggregate", "-config", cfgPath, "-spec", specs[1], "-follow", "-metrics-address", "off", "-poll-interval", "1s"}},
		{name: "read-follow", args: []string{bin, "read", "-config", cfgPath, "-follow", "-cursor-file", filepath.Join(dir, "follow.cursor"),
			"-output", followOut, "-poll-interval", "1s", "-columns", "_kafka_topic,_kafka_partition,_kafka_offset", "ods.clicks"}},
	}
	faults := &faultClock{}
	for _, d := range daemons {
		d.env, d.dir, d.faults = denv, dir, faults
	}

	// Writers: the producer (about 400 records a second) and the workload.
	stopWriters := make(chan struct{})
	var writers sync.WaitGroup
	var werr error
	writers.Add(2)
	go func() {
		defer writers.Done()
		for {
			select {
			case <-stopWriters:
				return
			case <-time.After(250 * time.Millisecond):
				producer.produce(t, 100)
			}
		}
	}()
	go func() {
		defer writers.Done()
		_, werr = w.run(stopWriters, 40)
	}()

	// Start the ingest daemons; the others once the tables exist.
	ctx, stopDaemons := context.WithCancel(context.Background())
	var running sync.WaitGroup
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 16))
	startDaemon := func(d *soakDaemon) {
		running.Add(1)
		seed := rng.Uint64()
		go func() { defer running.Done(); d.run(ctx, mrand.New(mrand.NewPCG(seed, 1))) }()
	}
	defer func() { stopDaemons(); running.Wait() }()
	for _, d := range daemons[:3] {
		startDaemon(d)
	}
	waitCatalogTable(t, cc, "ods.clicks", 5*time.Minute) // a loaded machine starts slowly
	for _, d := range daemons[3:] {
		startDaemon(d)
	}

	// Files per partition, manifests, snapshots and metadata.json size of
	// every table, sampled throughout.
	scat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	sampler := &boundsSampler{cat: scat, max: map[string]tableBounds{}, tables: []string{"ods.clicks", "floe.dead_letters",
		dbName + ".users", dbName + ".orders", dbName + ".order_items", "dws.clicks_hourly", "dws.pages_5m"}}
	sampleCtx, stopSampling := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() { defer close(sampled); sampler.run(sampleCtx, 10*time.Second) }()
	defer func() { stopSampling(); <-sampled }()
	// A compaction pass may be held off for up to 5 minutes by faults and
	// kills while ingest goes on committing: two writers per table at most.
	runBound, endBound := soakBounds(2, commitInterval, compactInterval, 5*time.Minute, minInputFiles, maxManifests)

	// Restarts of the soak's own servers: MinIO at 40% of the run, the
	// Kafka broker at 70% (not in runs under 3 minutes: a broker takes
	// half a minute to start on a loaded machine).
	restarts := []struct {
		at     time.Duration
		server *soakServer
	}{{at: duration * 4 / 10, server: minio}}
	if duration >= 3*time.Minute {
		restarts = append(restarts, struct {
			at     time.Duration
			server *soakServer
		}{at: duration * 7 / 10, server: broker})
	}

	// Faults and kills.
	var events []string
	start := time.Now()
	for time.Since(start) < duration {
		if len(restarts) > 0 && time.Since(start) >= restarts[0].at {
			r := restarts[0].server
			restarts = restarts[1:]
			faults.set(true)
			began := time.Now()
			if err := r.restart(10 * time.Second); err != nil {
				t.Fatalf("restart the soak's %s: %v", r.name, err)
			}
			faults.set(false)
			events = append(events, fmt.Sprintf("restart %s (stopped, down 10s, up again after %s)", r.name, time.Since(began).Round(time.Second)))
			continue
		}
		p := proxies[rng.IntN(len(proxies))]
		hold := time.Duration(3000+rng.IntN(5000)) * time.Millisecond
		var f faultproxy.Faults
		switch k := rng.IntN(6); k {
		case 0:
			f.Latency, f.Jitter = 50*time.Millisecond, 150*time.Millisecond
		case 1:
			f.BytesPerSecond = 256 << 10
		case 2:
			faults.set(true)
			n := p.ResetAll()
			events = append(events, fmt.Sprintf("%s: reset %d connections", p.Upstream(), n))
			hold = 0
		case 3:
			f.Stall = true
		default:
			f.Down = true
			hold = 10 * time.Second
			if duration >= 10*time.Minute {
				hold = 30 * time.Second
			}
		}
		if hold > 0 {
			faults.set(true)
			p.Set(f)
			events = append(events, fmt.Sprintf("%s: %s for %s", p.Upstream(), f, hold))
		}
		deadline := time.Now().Add(hold + time.Duration(1000+rng.IntN(3000))*time.Millisecond)
		for time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
			for _, d := range daemons {
				d.sampleRSS()
			}
		}
		p.Set(faultproxy.Faults{})
		faults.set(false)
		if rng.IntN(2) == 0 {
			d := daemons[rng.IntN(len(daemons))]
			if d.kill() {
				events = append(events, "SIGKILL "+d.name)
			}
		}
	}
	t.Logf("%d fault events in %s:\n%s", len(events), time.Since(start).Round(time.Second), strings.Join(events, "\n"))
	for _, p := range proxies {
		p.Set(faultproxy.Faults{})
	}
	close(stopWriters)
	writers.Wait()
	if werr != nil {
		t.Fatalf("workload: %v", werr)
	}
	n := producer.seq.Load()

	// Convergence: the lake catches up with the sources, the aggregations
	// with the lake.
	waitIngested(t, cc, topic, int(n), 5*time.Minute)
	waitCDCEqual(t, cc, db, dbName, []string{"users", "orders", "order_items"}, 5*time.Minute)
	for _, spec := range specs {
		waitVerifyAggregate(t, bin, dir, spec, cc, denv, 5*time.Minute)
	}
	rows, _ := kafkaCounts(t, scat, topic)
	waitFollower(t, followOut, len(rows), 5*time.Minute)
	// The writers have stopped: a compaction pass brings every table to
	// its steady state.
	endNow := waitBounds(t, sampler, endBound, map[string]bool{dbName + ".users": true, dbName + ".orders": true, dbName + ".order_items": true}, 3*time.Minute)
	for _, d := range daemons {
		d.sampleRSS()
	}
	stopDaemons()
	running.Wait()
	stopSampling()
	<-sampled

	verifyKafkaExactlyOnce(t, cc, topic, partitions, n, poisonEvery)
	verifyFollower(t, followOut, rows)
	for _, name := range sampler.tables {
		m := sampler.max[name]
		keyedEnd := ""
		if strings.HasPrefix(name, dbName+".") {
			keyedEnd = fmt.Sprintf(" (%d files beyond its size tiers)", endNow[name].untiered)
		}
		t.Logf("%s: at most %s during the run; at the end %s%s", name, m, endNow[name], keyedEnd)
		if err := m.within(runBound); err != nil {
			t.Errorf("%s during the run: %v (bounds %s)", name, err, runBound)
		}
	}
	t.Logf("restarts: MinIO %d, Kafka broker %d", minio.restarts, broker.restarts)
	for _, d := range daemons {
		t.Logf("%s: %d starts, %d SIGKILLs, %d exits by itself (%d with no fault in force), max RSS %d MiB", d.name, d.starts, d.kills, len(d.crashes), d.calm, d.maxRSS>>20)
		for _, c := range d.crashes {
			t.Logf("  %s exited: %s", d.name, c)
		}
		// A daemon may exit when a fault meets it where it does not retry
		// (opening the catalog at start); with no fault in force, an exit
		// is a crash, and exits again and again a crash loop.
		if d.calm > 0 {
			t.Errorf("%s exited by itself %d times with no fault in force", d.name, d.calm)
		}
		if d.maxRSS > 512<<20 {
			t.Errorf("%s: RSS reached %d MiB; want under 512 MiB", d.name, d.maxRSS>>20)
		}
	}
	for _, p := range proxies {
		st := p.Stats()
		t.Logf("proxy %s: %d connections, %d refused, %d reset, %d MiB", p.Upstream(), st.Accepted, st.Refused, st.Reset, st.Bytes>>20)
	}
}

// testWriter writes log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitCatalogTable waits until the table exists.
func waitCatalogTable(t *testing.T, cc catalog.Config, name string, timeout time.Duration) {
	t.Helper()
	cat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cat.CheckTableExists(context.Background(), strings.Split(name, "."))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("table %s not created within %s (%v)", name, timeout, err)
		}
		time.Sleep(time.Second)
	}
}

// waitCDCEqual waits until every table equals its MariaDB table.
func waitCDCEqual(t *testing.T, cc catalog.Config, db *sql.DB, dbName string, tables []string, timeout time.Duration) {
	t.Helper()
	cat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		var diffs []string
		for _, tbl := range tables {
			want, err := tabletest.MySQLRows(db, dbName, tbl)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cdcIcebergRows(cat, dbName+"."+tbl)
			if err != nil {
				diffs = append(diffs, err.Error())
				continue
			}
			if d := tabletest.DiffRows(want, got); d != "" {
				diffs = append(diffs, tbl+": "+d)
			}
		}
		if len(diffs) == 0 {
			t.Logf("CDC: %v equal to MariaDB", tables)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CDC tables did not catch up within %s:\n%s", timeout, strings.Join(diffs, "\n"))
		}
		time.Sleep(time.Second)
	}
}

// waitVerifyAggregate runs floe verify aggregate (the output table against
// a backfill of the spec) until it reports them equal. env is the
// command's whole environment, as the daemons': never this process's own,
// whose FLOE_S3_* (exported by `make test` for the shared MinIO) override
// the config and would point the command at a store without the soak's
// bucket (the catalog's metadata file then "does not exist").
func waitVerifyAggregate(t *testing.T, bin, dir, spec string, cc catalog.Config, env []string, timeout time.Duration) {
	t.Helper()
	cfg := writeFloeYAML(t, mkdir(t, filepath.Join(dir, "verify")), map[string]any{"catalog": catalogYAML(cc)})
	deadline := time.Now().Add(timeout)
	for {
		cmd := exec.Command(bin, "verify", "aggregate", "-config", cfg, "-spec", spec, "-metrics-address", "off")
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err == nil {
			t.Logf("%s: equal to its backfill", filepath.Base(spec))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("floe verify aggregate %s: %v after %s:\n%s", spec, err, timeout, lastLines(out.String(), 30))
		}
		time.Sleep(3 * time.Second)
	}
}

func mkdir(t testing.TB, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
