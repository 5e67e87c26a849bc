package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/source/kafka"
	"github.com/floe-lake/floe/table"
)

// kafkaHowToStart is appended to every "Kafka is not running" failure.
const kafkaHowToStart = "Kafka is not running: start it with `eval $(integration/kafka.sh start)` (or run `make test`)"

// kafkaBrokers returns the local broker named by FLOE_KAFKA_BROKERS. Without
// it the test is skipped under -short and fails otherwise, saying how to
// start the broker; a broker that does not answer fails the test.
func kafkaBrokers(t testing.TB) []string {
	t.Helper()
	return lockedKafkaBrokers(t, false)
}

// lockedKafkaBrokers is kafkaBrokers holding the broker's test lock
// (testenv.KafkaLock) shared, or exclusive for a test that restarts it.
func lockedKafkaBrokers(t testing.TB, exclusive bool) []string {
	t.Helper()
	v := os.Getenv(kafka.EnvBrokers)
	if v == "" {
		if testing.Short() {
			t.Skip("needs Kafka; skipped under -short without " + kafka.EnvBrokers)
		}
		t.Fatalf("%s (%s is not set)", kafkaHowToStart, kafka.EnvBrokers)
	}
	testenv.KafkaLock(t, exclusive)
	brokers := strings.Split(v, ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("%s (%s=%s: %v)", kafkaHowToStart, kafka.EnvBrokers, v, err)
	}
	return brokers
}

// kafkaWarehouse is the warehouse the Kafka tests write to: MinIO unless
// -short, else a local directory.
func kafkaWarehouse(t *testing.T) catalog.Config {
	whs := testenv.Warehouses(t)
	return whs[len(whs)-1].Config
}

func kafkaRandHex(t testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// createTopic creates a topic with partitions on the broker.
func createTopic(t testing.TB, brokers []string, topic string, partitions int32) {
	t.Helper()
	if c := testenv.CreateTopic(t, brokers, topic, partitions); c != 0 {
		t.Fatalf("create topic %s: error code %d", topic, c)
	}
}

// clickProducer produces ~200-byte JSON clickstream records round-robin
// over partitions; every poisonEvery-th record (by global sequence) is
// poison: valid JSON the table's schema rejects.
type clickProducer struct {
	cl          *kgo.Client
	topic       string
	partitions  int32
	poisonEvery int
	seq         atomic.Int64
	bytes       atomic.Int64 // value bytes produced
}

func newClickProducer(t testing.TB, brokers []string, topic string, partitions int32, poisonEvery int) *clickProducer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(200000), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &clickProducer{cl: cl, topic: topic, partitions: partitions, poisonEvery: poisonEvery}
}

var clickPages = []string{"/", "/search?q=shoes", "/product/1234", "/cart", "/checkout", "/account/orders"}

func clickJSON(seq int64, poison bool) []byte {
	if poison {
		return []byte(fmt.Sprintf(`{"event_id":"poison-%d","event_time":"not a time"}`, seq))
	}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Millisecond)
	return []byte(fmt.Sprintf(`{"event_id":%d,"event_time":"%s","user_id":%d,"session_id":"s-%08x","event_type":"%s","page_url":"https://shop.example.com%s","referrer":"https://www.example.org/","device":{"os":"android","app_version":"5.%d"},"tags":["a","b"]}`,
		seq, ts.Format(time.RFC3339Nano), seq%100000, seq/50, []string{"page_view", "click", "add_cart"}[seq%3], clickPages[seq%int64(len(clickPages))], seq%10))
}

// produce sends n records, synchronously.
func (p *clickProducer) produce(t testing.TB, n int) {
	t.Helper()
	recs := make([]*kgo.Record, 0, n)
	for range n {
		s := p.seq.Add(1) - 1
		poison := p.poisonEvery > 0 && s%int64(p.poisonEvery) == int64(p.poisonEvery/2)
		v := clickJSON(s, poison)
		p.bytes.Add(int64(len(v)))
		recs = append(recs, &kgo.Record{Topic: p.topic, Partition: int32(s % int64(p.partitions)),
			Key: []byte("u" + strconv.FormatInt(s%100000, 10)), Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// clicksTable is the table spec of the clickstream.
func clicksTable(name string) map[string]any {
	return map[string]any{
		"name": name,
		"schema": []any{
			map[string]any{"name": "event_id", "type": "long", "required": true},
			map[string]any{"name": "event_time", "type": "timestamptz", "required": true},
			map[string]any{"name": "user_id", "type": "long"},
			map[string]any{"name": "session_id", "type": "string"},
			map[string]any{"name": "event_type", "type": "string"},
			map[string]any{"name": "page_url", "type": "string"},
			map[string]any{"name": "device", "type": "struct", "fields": []any{
				map[string]any{"name": "os", "type": "string"}, map[string]any{"name": "app_version", "type": "string"}}},
			map[string]any{"name": "tags", "type": "list", "element": map[string]any{"type": "string"}},
		},
		"partition": []any{map[string]any{"column": "event_time", "transform": "day"}},
	}
}

// writeKafkaConfig writes a floe.yaml for one Kafka source into dir.
func writeKafkaConfig(t testing.TB, dir string, cc catalog.Config, brokers []string, topic, group string) string {
	t.Helper()
	return writeKafkaConfigCommit(t, dir, cc, brokers, topic, group, "1s")
}

// writeKafkaConfigCommit is writeKafkaConfig with the writer's commit
// interval.
func writeKafkaConfigCommit(t testing.TB, dir string, cc catalog.Config, brokers []string, topic, group, commit string) string {
	t.Helper()
	cfg := map[string]any{
		"catalog":         catalogYAML(cc),
		"writer":          map[string]any{"commit-interval": commit, "memory-budget": "64MiB"},
		"metrics-address": "off",
		"tables":          []any{clicksTable("ods.clicks")},
		"sources": []any{map[string]any{"type": "kafka", "kafka": map[string]any{
			"id": "clicks", "brokers": brokers, "group": group,
			"routes":           []any{map[string]any{"topics": []string{topic}, "table": "ods.clicks"}},
			"metadata-columns": true,
			"session-timeout":  "3s", "heartbeat-interval": "300ms", "rebalance-timeout": "20s",
			"fetch-max-wait": "100ms",
		}}},
	}
	return writeFloeYAML(t, dir, cfg)
}

// floeProc is one `floe ingest` subprocess.
type floeProc struct {
	name string
	cmd  *exec.Cmd
	exit chan struct{} // closed when the process ended
	err  error         // its exit status, once exit is closed
}

func startFloe(t testing.TB, bin, cfgPath, dir, name string, flags ...string) *floeProc {
	t.Helper()
	return startFloeWith(t, bin, cfgPath, dir, name, nil, flags...)
}

// startFloeWith starts floe ingest with flags in dir, logging to
// dir/name.log, with the environment env (nil: this process's).
func startFloeWith(t testing.TB, bin, cfgPath, dir, name string, env []string, flags ...string) *floeProc {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "---- start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, append([]string{"ingest", "-config", cfgPath, "-log-level", "info"}, flags...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &floeProc{name: name, cmd: cmd, exit: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.exit)
	}()
	return p
}

// exited reports whether the process ended (it must not, until stopped).
func (p *floeProc) exited() (error, bool) {
	select {
	case <-p.exit:
		return p.err, true
	default:
		return nil, false
	}
}

func (p *floeProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exit
}

// stop sends SIGTERM and waits for the final commit.
func (p *floeProc) stop(t testing.TB) *os.ProcessState {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exit:
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			// Still starting up: SIGTERM came before floe installed its
			// handler. Like a kill; the checks that follow cover it.
			t.Logf("%s: SIGTERM arrived before floe ingest was up", p.name)
		} else if p.err != nil {
			t.Errorf("%s: floe ingest exited with %v after SIGTERM", p.name, p.err)
		}
	case <-time.After(2 * time.Minute):
		p.kill()
		t.Errorf("%s: floe ingest did not stop within 2m of SIGTERM", p.name)
	}
	return p.cmd.ProcessState
}

// kafkaScan reads columns of a table, row by row.
func kafkaScan(t testing.TB, cat icecat.Catalog, name string, cols ...string) [][]any {
	t.Helper()
	tbl, err := cat.LoadTable(context.Background(), icetable.Identifier(strings.Split(name, ".")))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	_, recs, err := tbl.Scan(icetable.WithSelectedFields(cols...)).ToArrowRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]any
	for rec, err := range recs {
		if err != nil {
			t.Fatal(err)
		}
		idx := make([]int, len(cols))
		for i, c := range cols {
			idx[i] = rec.Schema().FieldIndices(c)[0]
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			row := make([]any, len(cols))
			for i, j := range idx {
				row[i] = tabletest.Cell(rec.Column(j), r)
			}
			out = append(out, row)
		}
		rec.Release()
	}
	return out
}

// kafkaCounts counts rows per "partition@offset" in the table (from the
// metadata columns) and dead letters per "topic/partition@offset".
func kafkaCounts(t testing.TB, cat icecat.Catalog, topic string) (rows, dead map[string]int) {
	t.Helper()
	rows, dead = map[string]int{}, map[string]int{}
	for _, r := range kafkaScan(t, cat, "ods.clicks", "_kafka_topic", "_kafka_partition", "_kafka_offset") {
		if r[0] == topic {
			rows[fmt.Sprintf("%s/%d@%d", r[0], r[1], r[2])]++
		}
	}
	for _, r := range kafkaScan(t, cat, "floe.dead_letters", "partition", "position") {
		if strings.HasPrefix(r[0].(string), topic+"/") {
			dead[fmt.Sprintf("%s@%d", r[0], r[1])]++
		}
	}
	return rows, dead
}

// expectedClicks says where the record with global sequence s lands.
func clickKey(topic string, partitions int32, s int64) string {
	return fmt.Sprintf("%s/%d@%d", topic, s%int64(partitions), s/int64(partitions))
}

// verifyKafkaExactlyOnce checks that each of the n produced records is in
// the table once, or in the dead-letter table once if it was poison.
func verifyKafkaExactlyOnce(t *testing.T, cc catalog.Config, topic string, partitions int32, n int64, poisonEvery int) {
	t.Helper()
	cat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	rows, dead := kafkaCounts(t, cat, topic)
	poisoned := 0
	for s := range n {
		k := clickKey(topic, partitions, s)
		if poisonEvery > 0 && s%int64(poisonEvery) == int64(poisonEvery/2) {
			poisoned++
			if rows[k] != 0 || dead[k] != 1 {
				t.Fatalf("poison record %s: %d rows, %d dead letters; want 0 and exactly 1", k, rows[k], dead[k])
			}
			continue
		}
		if rows[k] != 1 || dead[k] != 0 {
			t.Fatalf("record %s: %d rows, %d dead letters; want exactly 1 row", k, rows[k], dead[k])
		}
	}
	if got := int64(len(rows) + len(dead)); got != n {
		t.Fatalf("%d distinct records in the tables, want %d", got, n)
	}
	t.Logf("%d rows and %d dead letters (poison), each exactly once", len(rows), poisoned)
}

// waitIngested waits until the tables hold n records (rows + dead
// letters) of topic, failing if a process exits.
func waitIngested(t *testing.T, cc catalog.Config, topic string, n int, timeout time.Duration, procs ...*floeProc) {
	t.Helper()
	cat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		rows, dead := kafkaCounts(t, cat, topic)
		got := 0
		for _, c := range rows {
			got += c
		}
		for _, c := range dead {
			got += c
		}
		if got >= n {
			return
		}
		for _, p := range procs {
			if err, ok := p.exited(); ok {
				t.Fatalf("%s exited: %v", p.name, err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the tables hold %d of %d records", timeout, got, n)
		}
		time.Sleep(time.Second)
	}
}

// kafkaE2ERecords is the size of the SIGKILL test: 200k by default (about
// 2–3 minutes on two cores), FLOE_KAFKA_E2E_RECORDS overrides (1000000 is
// the full scale), 40k under -short.
func kafkaE2ERecords(t *testing.T) int {
	if v := os.Getenv("FLOE_KAFKA_E2E_RECORDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			t.Fatalf("FLOE_KAFKA_E2E_RECORDS=%q: want a number >= 1000", v)
		}
		return n
	}
	if testing.Short() {
		return 40000
	}
	return 200000
}

// TestKafkaIngestExactlyOnceUnderSIGKILL runs three `floe ingest` processes
// in one consumer group over an 8-partition topic into one table while
// records (a few of them poison) keep arriving, and SIGKILLs one of them
// at random moments again and again, restarting it after a random pause —
// each kill and restart forces a rebalance, and a pause longer than the
// session timeout hands the victim's partitions to the survivors and back.
// Afterwards every (partition, offset) is in the table exactly once, and
// every poison record in the dead-letter table exactly once.
func TestKafkaIngestExactlyOnceUnderSIGKILL(t *testing.T) {
	brokers := kafkaBrokers(t)
	bin := testenv.FloeBinary(t)
	cc := kafkaWarehouse(t)
	const partitions, poisonEvery = 8, 997
	n := kafkaE2ERecords(t)
	kills := 20
	if testing.Short() {
		kills = 5
	}
	id := kafkaRandHex(t)
	topic, group := "clicks-"+id, "floe-test-"+id
	createTopic(t, brokers, topic, partitions)
	dir := kafkaLogDir(t)
	cfgPath := writeKafkaConfig(t, dir, cc, brokers, topic, group)
	prod := newClickProducer(t, brokers, topic, partitions, poisonEvery)
	prod.produce(t, n/4)

	procs := []*floeProc{startFloe(t, bin, cfgPath, dir, "p0"), startFloe(t, bin, cfgPath, dir, "p1"), startFloe(t, bin, cfgPath, dir, "p2")}
	defer func() {
		for _, p := range procs {
			if _, done := p.exited(); !done {
				p.kill()
			}
		}
	}()
	// The rest of the stream arrives while the kills go on.
	rest := n - n/4
	var wg sync.WaitGroup
	stopProducing := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		chunk := max(rest/(kills*4), 1000)
		for sent := 0; sent < rest; sent += chunk {
			select {
			case <-stopProducing:
				return
			case <-time.After(500 * time.Millisecond):
			}
			prod.produce(t, min(chunk, rest-sent))
		}
	}()
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 11))
	for i := range kills {
		time.Sleep(time.Duration(1000+rng.IntN(3000)) * time.Millisecond)
		v := i % len(procs)
		if err, done := procs[v].exited(); done {
			t.Fatalf("%s exited by itself: %v (see %s)", procs[v].name, err, filepath.Join(dir, procs[v].name+".log"))
		}
		procs[v].kill()
		pause := time.Duration(rng.IntN(4500)) * time.Millisecond // sometimes past the 3s session timeout
		t.Logf("kill %d: SIGKILLed %s, restarting in %s", i+1, procs[v].name, pause)
		time.Sleep(pause)
		procs[v] = startFloe(t, bin, cfgPath, dir, procs[v].name)
	}
	wg.Wait()
	close(stopProducing)
	waitIngested(t, cc, topic, n, 5*time.Minute, procs...)
	for _, p := range procs {
		p.stop(t)
	}
	verifyKafkaExactlyOnce(t, cc, topic, partitions, int64(n), poisonEvery)
	reportRebalances(t, dir, len(procs))
}

// kafkaLogDir is where the processes' config and logs go: a temporary
// directory, or a new one under FLOE_TEST_KEEP_LOGS, kept for inspection.
func kafkaLogDir(t *testing.T) string {
	root := os.Getenv("FLOE_TEST_KEEP_LOGS")
	if root == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(root, t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("logs in %s", dir)
	return dir
}

// reportRebalances logs how often the processes' runs ended on a rebalance
// or a fence, from their logs.
func reportRebalances(t *testing.T, dir string, procs int) {
	counts := map[string]int{}
	re := regexp.MustCompile(`kafka source run ended; the next run re-seeks from the tables" source=\S+ reason=(\w+)`)
	for i := range procs {
		b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("p%d.log", i)))
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				counts[m[1]]++
			}
		}
	}
	t.Logf("runs that ended to re-seek, by reason: %v", counts)
}

// TestKafkaBrokerRestart restarts the broker (integration/kafka.sh
// restart) while two processes ingest: they recover by themselves and
// nothing is lost or duplicated.
func TestKafkaBrokerRestart(t *testing.T) {
	brokers := lockedKafkaBrokers(t, true)
	if err := exec.Command("./kafka.sh", "status").Run(); err != nil {
		t.Skip("the broker was not started by integration/kafka.sh; cannot restart it")
	}
	bin := testenv.FloeBinary(t)
	cc := kafkaWarehouse(t)
	const partitions, poisonEvery = 4, 499
	n := 40000
	id := kafkaRandHex(t)
	topic, group := "restart-"+id, "floe-test-"+id
	createTopic(t, brokers, topic, partitions)
	dir := t.TempDir()
	cfgPath := writeKafkaConfig(t, dir, cc, brokers, topic, group)
	prod := newClickProducer(t, brokers, topic, partitions, poisonEvery)
	prod.produce(t, n/2)
	procs := []*floeProc{startFloe(t, bin, cfgPath, dir, "p0"), startFloe(t, bin, cfgPath, dir, "p1")}
	defer func() {
		for _, p := range procs {
			if _, done := p.exited(); !done {
				p.kill()
			}
		}
	}()
	time.Sleep(3 * time.Second)
	out, err := exec.Command("./kafka.sh", "restart").CombinedOutput()
	if err != nil {
		t.Fatalf("kafka.sh restart: %v\n%s", err, out)
	}
	t.Logf("broker restarted")
	prod.produce(t, n-n/2)
	waitIngested(t, cc, topic, n, 3*time.Minute, procs...)
	for _, p := range procs {
		p.stop(t)
	}
	verifyKafkaExactlyOnce(t, cc, topic, partitions, int64(n), poisonEvery)
}

// TestKafkaREADMEExample runs `floe ingest` with the README's Kafka example
// config, unchanged, in a fresh directory, as a new user would after
// `eval $(integration/kafka.sh start)`: records produced to its topic land
// in its table, bad ones in the dead-letter table.
func TestKafkaREADMEExample(t *testing.T) {
	brokers := kafkaBrokers(t)
	bin := testenv.FloeBinary(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- kafka-example -->\\s*```yaml\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no ```yaml block after <!-- kafka-example -->")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "floe.yaml"), m[1], 0o644); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Catalog catalog.Config `yaml:"catalog"`
		Sources []struct {
			Kafka kafka.Config `yaml:"kafka"`
		} `yaml:"sources"`
	}
	if err := yaml.Unmarshal(m[1], &cfg); err != nil {
		t.Fatal(err)
	}
	topic := cfg.Sources[0].Kafka.Routes[0].Topics[0]
	createTopicIfMissing(t, brokers, topic, 3)
	marker := kafkaRandHex(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range 100 {
		recs = append(recs, &kgo.Record{Key: []byte("u1"), Value: []byte(fmt.Sprintf(
			`{"event_id":%d,"event_time":"2026-03-01T12:00:00Z","user_id":7,"event_type":"click","page_url":"/%s","device":{"os":"ios"}}`, i, marker))})
	}
	recs = append(recs, &kgo.Record{Value: []byte(`{"event_id":"oops","page_url":"/` + marker + `"}`)})
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p := startFloe(t, bin, filepath.Join(dir, "floe.yaml"), dir, "readme")
	defer func() {
		if _, done := p.exited(); !done {
			p.kill()
		}
	}()
	cc := cfg.Catalog
	cc.ApplyDefaults()
	if !filepath.IsAbs(cc.URI) {
		cc.URI = filepath.Join(dir, cc.URI)
	}
	if !filepath.IsAbs(cc.Warehouse) && !strings.Contains(cc.Warehouse, "://") {
		cc.Warehouse = filepath.Join(dir, cc.Warehouse)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err, done := p.exited(); done {
			b, _ := os.ReadFile(filepath.Join(dir, "readme.log"))
			t.Fatalf("floe ingest exited: %v\n%s", err, testenv.LastLines(b, 30))
		}
		if got, dead := readmeCounts(t, cc, marker); got == 100 && dead == 1 {
			break
		}
		if time.Now().After(deadline) {
			got, dead := readmeCounts(t, cc, marker)
			t.Fatalf("after 2m: %d of 100 rows and %d of 1 dead letters", got, dead)
		}
		time.Sleep(time.Second)
	}
	p.stop(t)
}

func readmeCounts(t *testing.T, cc catalog.Config, marker string) (rows, dead int) {
	cat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		return 0, 0 // not created yet
	}
	if _, err := cat.LoadTable(context.Background(), icetable.Identifier{"ods", "clicks"}); err != nil {
		return 0, 0
	}
	for _, r := range kafkaScan(t, cat, "ods.clicks", "page_url") {
		if r[0] == "/"+marker {
			rows++
		}
	}
	if _, err := cat.LoadTable(context.Background(), icetable.Identifier{"floe", "dead_letters"}); err != nil {
		return rows, 0
	}
	for _, r := range kafkaScan(t, cat, "floe.dead_letters", "raw") {
		if s, ok := r[0].(string); ok && strings.Contains(s, marker) {
			dead++
		}
	}
	return rows, dead
}

// createTopicIfMissing is createTopic that accepts an existing topic.
func createTopicIfMissing(t testing.TB, brokers []string, topic string, partitions int32) {
	t.Helper()
	if c := testenv.CreateTopic(t, brokers, topic, partitions); c != 0 && c != 36 { // 36: TOPIC_ALREADY_EXISTS
		t.Fatalf("create topic %s: error code %d", topic, c)
	}
}

// BenchmarkKafkaIngest measures end-to-end ingest: ~200-byte JSON
// clickstream records from the local broker into a table on MinIO (local
// disk under -short) by one `floe ingest` process, reporting records/s of
// wall time and records per CPU-second of the Floe process (user + system,
// from its rusage). FLOE_KAFKA_BENCH_RECORDS sets the size (default
// 500000), FLOE_KAFKA_BENCH_PARTITIONS the topic's partitions (default 8),
// FLOE_KAFKA_BENCH_COMMIT the commit interval (default 1s);
// FLOE_KAFKA_BENCH_CPUPROFILE=file has the floe process write its CPU
// profile there. Run:
//
//	go test -run '^$' -bench KafkaIngest -benchtime 1x ./integration/
func BenchmarkKafkaIngest(b *testing.B) {
	brokers := kafkaBrokers(b)
	bin := testenv.FloeBinary(b)
	n, parts := 500000, 8
	for env, p := range map[string]*int{"FLOE_KAFKA_BENCH_RECORDS": &n, "FLOE_KAFKA_BENCH_PARTITIONS": &parts} {
		if v := os.Getenv(env); v != "" {
			var err error
			if *p, err = strconv.Atoi(v); err != nil {
				b.Fatalf("%s: %v", env, err)
			}
		}
	}
	commit := "1s"
	if v := os.Getenv("FLOE_KAFKA_BENCH_COMMIT"); v != "" {
		commit = v
	}
	for range b.N {
		b.StopTimer()
		cc := benchWarehouse(b)
		id := kafkaRandHex(b)
		topic, group := "bench-"+id, "floe-bench-"+id
		createTopic(b, brokers, topic, int32(parts))
		prod := newClickProducer(b, brokers, topic, int32(parts), 0)
		prod.produce(b, n)
		dir := b.TempDir()
		cfgPath := writeKafkaConfigCommit(b, dir, cc, brokers, topic, group, commit)
		b.StartTimer()
		start := time.Now()
		var flags []string
		if f := os.Getenv("FLOE_KAFKA_BENCH_CPUPROFILE"); f != "" {
			flags = append(flags, "-cpuprofile", f)
		}
		p := startFloe(b, bin, cfgPath, dir, "bench", flags...)
		cat, err := catalog.Open(context.Background(), cc)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if err, done := p.exited(); done {
				b.Fatalf("floe ingest exited: %v", err)
			}
			if benchRows(b, cat) >= n {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		wall := time.Since(start)
		b.StopTimer()
		ps := p.stop(b)
		cpu := ps.UserTime() + ps.SystemTime()
		b.ReportMetric(float64(n)/wall.Seconds(), "records/s")
		b.ReportMetric(float64(n)/cpu.Seconds(), "records/CPU-s")
		b.ReportMetric(cpu.Seconds(), "CPU-s")
		b.ReportMetric(float64(prod.bytes.Load())/float64(n), "value-bytes/record")
		b.Logf("%d records in %s wall, %s CPU (user %s, system %s) of the floe process", n, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), ps.UserTime(), ps.SystemTime())
	}
}

func benchWarehouse(b *testing.B) catalog.Config {
	dir := b.TempDir()
	cc := catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")}
	if testing.Short() {
		return cc
	}
	s3 := testenv.MinIO(b)
	cc.Warehouse = "s3://" + s3.Bucket(b) + "/wh"
	cc.S3 = catalog.S3Config{Endpoint: s3.Endpoint, Region: "us-east-1", AccessKeyID: s3.AccessKeyID, SecretAccessKey: s3.SecretAccessKey}
	return cc
}

// benchRows is the row count of ods.clicks from its snapshot summary
// (cheap, no scan).
func benchRows(b *testing.B, cat icecat.Catalog) int {
	tbl, err := cat.LoadTable(context.Background(), icetable.Identifier{"ods", "clicks"})
	if err != nil {
		return 0
	}
	n, _ := table.SummaryInt(tbl.CurrentSnapshot(), "total-records")
	return int(n)
}
