package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

func clicksSpec(name string) table.Spec {
	return table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "ts", Type: "timestamptz"},
		{Name: "user", Type: "struct", Fields: []table.Field{{Name: "name", Type: "string"}, {Name: "age", Type: "int"}}},
		{Name: "tags", Type: "list", Element: &table.Field{Type: "string"}},
		{Name: "amount", Type: "decimal(10,2)"},
	}}
}

// prepare ensures the tables a source of cfg needs, as floe ingest does.
func prepare(t testing.TB, cat icecat.Catalog, cfg Config, declared ...table.Spec) {
	t.Helper()
	src, err := New(cfg, Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	specs, err := src.Specs(declared)
	if err != nil {
		t.Fatal(err)
	}
	ensureTables(t, cat, declared...)
	ensureTables(t, cat, specs...)
}

func fastWriter() writer.Config {
	return writer.Config{CommitInterval: time.Second, MemoryBudget: 16 << 20}
}

// TestMappingAndDeadLetters maps JSON values of every supported kind, fills
// the metadata columns, unwraps Canal and Debezium envelopes, routes on a
// field, and sends every kind of bad record to the dead-letter table with
// its topic/partition, offset, key, raw value and reason.
func TestMappingAndDeadLetters(t *testing.T) {
	c := newCluster(t, 2, "clicks", "binlog", "mixed")
	brokers := c.ListenAddrs()
	cat := openCatalog(t)
	orders := table.Spec{Name: "ods.orders", Schema: []table.Field{
		{Name: "id", Type: "long", Required: true}, {Name: "status", Type: "string"}, {Name: "amount", Type: "decimal(10,2)"},
	}}
	views := table.Spec{Name: "ods.views", Schema: []table.Field{{Name: "id", Type: "long", Required: true}, {Name: "kind", Type: "string"}}}
	cfg := testConfig(brokers,
		Route{Topics: []string{"clicks"}, Table: "ods.clicks"},
		Route{Topics: []string{"binlog"}, Table: "ods.orders", Format: FormatCanal},
		Route{Topics: []string{"mixed"}, Field: "kind", Tables: map[string]string{"click": "ods.clicks", "view": "ods.views"}},
	)
	cfg.MetadataColumns = true
	prepare(t, cat, cfg, clicksSpec("ods.clicks"), orders, views)

	good := []string{
		`{"id":1,"ts":"2026-01-02T03:04:05.123456Z","user":{"name":"ann","age":3},"tags":["x","y"],"amount":"12.34","unknown":{"a":1}}`,
		`{"id":2,"ts":1767323045123}`,
		`{"id":3,"ts":1767323045123456,"amount":7}`,
	}
	bad := map[string]string{ // value → part of the reason
		`not json`:                      "",
		`{"id":"x"}`:                    "id",
		`{"ts":"2026-01-01T00:00:00Z"}`: "missing required field",
		`{"id":4,"ts":"yesterday"}`:     "ts",
		`{"id":5,"amount":1.234}`:       "amount",
		`{"id":6,"tags":"notalist"}`:    "tags",
		``:                              "empty value",
		`[1,2]`:                         "object",
		`{"id":7,"user":{"name":"b","age":1e10}}`: "age",
	}
	var recs []*kgo.Record
	for i, v := range good {
		recs = append(recs, &kgo.Record{Topic: "clicks", Partition: int32(i % 2), Key: []byte(fmt.Sprint("k", i)), Value: []byte(v)})
	}
	badVals := make([]string, 0, len(bad))
	for v := range bad {
		badVals = append(badVals, v)
	}
	sort.Strings(badVals)
	for i, v := range badVals {
		recs = append(recs, &kgo.Record{Topic: "clicks", Partition: int32(i % 2), Key: []byte("bad"), Value: []byte(v)})
	}
	canal := []string{
		`{"data":[{"id":"10","status":"new","amount":"1.50"},{"id":"11","status":"new","amount":null}],"database":"shop","table":"orders","type":"INSERT","es":1767323045000,"ts":1767323045100,"pkNames":["id"],"isDdl":false}`,
		`{"data":[{"id":"10","status":"paid","amount":"1.50"}],"old":[{"status":"new"}],"type":"UPDATE","es":1767323046000,"isDdl":false}`,
		`{"data":null,"type":"ALTER","isDdl":true,"sql":"alter table orders add x int"}`,
		`{"data":[{"id":"12","status":"x","amount":"abc"}],"type":"DELETE","es":1767323047000}`,
	}
	for _, v := range canal {
		recs = append(recs, &kgo.Record{Topic: "binlog", Partition: 0, Value: []byte(v)})
	}
	mixed := []string{`{"kind":"view","id":20}`, `{"kind":"click","id":21}`, `{"kind":"other","id":22}`, `{"id":23}`}
	for _, v := range mixed {
		recs = append(recs, &kgo.Record{Topic: "mixed", Partition: 1, Value: []byte(v)})
	}
	produce(t, brokers, recs)

	p := startProc(t, "a", cat, cfg, fastWriter(), 0)
	wantDead := len(bad) + 1 + 2 // bad clicks, the canal row with a bad amount, two unroutable mixed
	waitFor(t, 30*time.Second, "all rows and dead letters", func() bool {
		n := len(scan(t, cat, "ods.clicks", "id")) + len(scan(t, cat, "ods.orders", "id")) + len(scan(t, cat, "ods.views", "id"))
		return n == len(good)+1+3+1 && len(scan(t, cat, "floe.dead_letters", "position")) == wantDead
	})
	p.stop()

	rows := scan(t, cat, "ods.clicks", "id", "ts", "user", "tags", "amount", ColTopic, ColPartition, ColOffset, ColKey, ColTimestamp)
	byID := map[int64]map[string]any{}
	for _, r := range rows {
		byID[r["id"].(int64)] = r
	}
	ts1 := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	r1 := byID[1]
	if r1 == nil || r1["ts"] != ts1 || r1["amount"] != "12.34" || r1[ColTopic] != "clicks" || r1[ColKey] != "k0" || r1[ColPartition] != int64(0) {
		t.Fatalf("row 1: %v", r1)
	}
	if u := r1["user"].(map[string]any); u["name"] != "ann" || u["age"] != int64(3) {
		t.Fatalf("row 1 user: %v", u)
	}
	if fmt.Sprint(r1["tags"]) != "[x y]" {
		t.Fatalf("row 1 tags: %v", r1["tags"])
	}
	if byID[2]["ts"] != time.UnixMilli(1767323045123).UTC() || byID[3]["ts"] != time.UnixMicro(1767323045123456).UTC() {
		t.Fatalf("epoch timestamps: %v %v", byID[2]["ts"], byID[3]["ts"])
	}
	if _, ok := byID[21]; !ok {
		t.Fatalf("routed click 21 missing: %v", byID)
	}
	if r1[ColTimestamp] == nil || r1[ColOffset] == nil {
		t.Fatalf("metadata columns not filled: %v", r1)
	}

	ord := scan(t, cat, "ods.orders", "id", "status", ColOp, ColEventTime)
	sort.Slice(ord, func(i, j int) bool {
		return fmt.Sprint(ord[i]["id"], ord[i][ColOp]) < fmt.Sprint(ord[j]["id"], ord[j][ColOp])
	})
	got := []string{}
	for _, r := range ord {
		got = append(got, fmt.Sprintf("%v:%v:%v", r["id"], r["status"], r[ColOp]))
	}
	if want := "10:new:insert 10:paid:update 11:new:insert"; strings.Join(got, " ") != want {
		t.Fatalf("canal rows: got %v, want %s", got, want)
	}
	if ord[0][ColEventTime] != time.UnixMilli(1767323045000).UTC() {
		t.Fatalf("canal event time: %v", ord[0][ColEventTime])
	}
	if v := scan(t, cat, "ods.views", "id"); len(v) != 1 || v[0]["id"] != int64(20) {
		t.Fatalf("views: %v", v)
	}

	dl := scan(t, cat, "floe.dead_letters", "source", "partition", "position", "target_table", "key", "raw", "reason", "received_at")
	seenBad := map[string]bool{}
	for _, r := range dl {
		part, _ := r["partition"].(string)
		if r["source"] != "kafka" || !strings.Contains(part, "/") || r["reason"] == "" || r["received_at"] == nil {
			t.Fatalf("dead letter without its origin: %v", r)
		}
		raw, _ := r["raw"].(string)
		// The record at that position must be the one dead-lettered.
		var found *kgo.Record
		for _, rec := range recs {
			if fmt.Sprintf("%s/%d", rec.Topic, rec.Partition) == part && rec.Offset == r["position"].(int64) {
				found = rec
			}
		}
		if found == nil || string(found.Value) != raw {
			t.Fatalf("dead letter %v does not match the record at its position (%v)", r, found)
		}
		if strings.HasPrefix(part, "clicks/") {
			if r["key"] != "bad" || r["target_table"] != "ods.clicks" {
				t.Fatalf("dead letter key or target: %v", r)
			}
			if want := bad[raw]; !strings.Contains(r["reason"].(string), want) {
				t.Fatalf("reason for %q: %q, want it to mention %q", raw, r["reason"], want)
			}
			seenBad[raw] = true
		}
	}
	if len(seenBad) != len(bad) {
		t.Fatalf("dead-lettered %d of the %d bad clicks: %v", len(seenBad), len(bad), seenBad)
	}
}

// TestExactlyOnceAcrossRestarts kills and restarts the process (dropping
// what it buffered) and fails its writes at random, over a stream with
// poison records: every (partition, offset) lands exactly once in the
// table or in the dead-letter table.
func TestExactlyOnceAcrossRestarts(t *testing.T) {
	const parts, perPart = 4, 2500
	c, cat, cfg := eventsSetup(t, parts, 50)
	brokers := c.ListenAddrs()
	recs, poison := streamRecords("events", parts, perPart, 97)

	// Each round gets a chunk of new records, so every kill lands while
	// there is work in flight.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	chunk := len(recs)/rounds + 1
	for i := range rounds {
		produce(t, brokers, recs[min(i*chunk, len(recs)):min((i+1)*chunk, len(recs))])
		p := startProc(t, fmt.Sprint("r", i), cat, cfg, fastWriter(), 0.05)
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		if i%2 == 0 {
			p.kill()
		} else {
			p.stop()
		}
		runs, failures := p.stats()
		t.Logf("round %d: runs %d, failed runs %v", i, runs, failures)
	}
	p := startProc(t, "final", cat, cfg, fastWriter(), 0)
	waitExactlyOnce(t, cat, "ods.events", "events", parts, perPart, poison, 60*time.Second)
	p.stop()
	checkExactlyOnce(t, cat, "ods.events", "events", parts, perPart, poison)
}

// TestTwoConsumersRebalance runs two processes in one group over eight
// partitions while records keep arriving; a third joins and the second is
// killed, each forcing a rebalance. Every (partition, offset) lands
// exactly once.
func TestTwoConsumersRebalance(t *testing.T) {
	const parts, perPart = 8, 1500
	c, cat, cfg := eventsSetup(t, parts, 100)
	brokers := c.ListenAddrs()
	recs, poison := streamRecords("events", parts, perPart, 101)
	third := len(recs) / 3
	produce(t, brokers, recs[:third])

	a := startProc(t, "a", cat, cfg, fastWriter(), 0)
	waitFor(t, 30*time.Second, "a to commit", func() bool { return len(scan(t, cat, "ods.events", "id")) > 0 })
	b := startProc(t, "b", cat, cfg, fastWriter(), 0)
	waitFor(t, 30*time.Second, "the group to hold two members", func() bool {
		return len(c.GroupInfo(cfg.Group).Members) == 2
	})
	produce(t, brokers, recs[third:2*third])
	time.Sleep(1500 * time.Millisecond)
	cc := startProc(t, "c", cat, cfg, fastWriter(), 0)
	time.Sleep(1500 * time.Millisecond)
	b.kill()
	produce(t, brokers, recs[2*third:])
	waitExactlyOnce(t, cat, "ods.events", "events", parts, perPart, poison, 60*time.Second)
	a.stop()
	cc.stop()
	checkExactlyOnce(t, cat, "ods.events", "events", parts, perPart, poison)
	rebalanced := 0
	for _, p := range []*proc{a, b, cc} {
		runs, failures := p.stats()
		t.Logf("%s: runs %d, failed runs %v", p.name, runs, failures)
		rebalanced += failures["rebalanced"]
	}
	if rebalanced == 0 {
		t.Fatal("no run ended on a rebalance: the test did not exercise revocation")
	}
}

// eventsSetup starts a cluster with the topic events in parts partitions
// and prepares ods.events (id, v) for a config with metadata columns that
// reads batchRecords records at a time, changed by tune.
func eventsSetup(t *testing.T, parts int32, batchRecords int, tune ...func(*Config)) (*kfake.Cluster, icecat.Catalog, Config) {
	t.Helper()
	c := newCluster(t, parts, "events")
	brokers := c.ListenAddrs()
	cat := openCatalog(t)
	spec := table.Spec{Name: "ods.events", Schema: []table.Field{{Name: "id", Type: "long", Required: true}, {Name: "v", Type: "string"}}}
	cfg := testConfig(brokers, Route{Topics: []string{"events"}, Table: "ods.events"})
	cfg.MetadataColumns = true
	cfg.BatchRecords = batchRecords
	for _, f := range tune {
		f(&cfg)
	}
	prepare(t, cat, cfg, spec)
	return c, cat, cfg
}

// streamRecords makes perPart records per partition; every poisonEvery-th
// is not valid for the table. It returns the records and the poison
// positions ("topic/p@offset").
func streamRecords(topic string, parts, perPart, poisonEvery int) ([]*kgo.Record, map[string]bool) {
	var recs []*kgo.Record
	poison := map[string]bool{}
	for o := 0; o < perPart; o++ {
		for p := 0; p < parts; p++ {
			v := fmt.Sprintf(`{"id":%d,"v":"p%d-%d"}`, p*perPart+o, p, o)
			if (p*perPart+o)%poisonEvery == 7 {
				v = fmt.Sprintf(`{"id":"poison-%d-%d"}`, p, o)
				poison[fmt.Sprintf("%s/%d@%d", topic, p, o)] = true
			}
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte(v)})
		}
	}
	return recs, poison
}

func waitExactlyOnce(t testing.TB, cat icecat.Catalog, tbl, topic string, parts, perPart int, poison map[string]bool, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "every record in the tables", func() bool {
		n := 0
		for _, c := range offsetsIn(t, cat, tbl) {
			n += c
		}
		for _, c := range deadLettersIn(t, cat, "floe.dead_letters") {
			n += c
		}
		return n >= parts*perPart
	})
}

func checkExactlyOnce(t testing.TB, cat icecat.Catalog, tbl, topic string, parts, perPart int, poison map[string]bool) {
	t.Helper()
	rows := offsetsIn(t, cat, tbl)
	dead := deadLettersIn(t, cat, "floe.dead_letters")
	for p := range parts {
		for o := range perPart {
			k := fmt.Sprintf("%s/%d@%d", topic, p, o)
			if poison[k] {
				if rows[k] != 0 || dead[k] != 1 {
					t.Fatalf("poison record %s: %d rows, %d dead letters; want 0 and 1", k, rows[k], dead[k])
				}
				continue
			}
			if rows[k] != 1 || dead[k] != 0 {
				t.Fatalf("record %s: %d rows, %d dead letters; want exactly one row", k, rows[k], dead[k])
			}
		}
	}
	if n := len(rows) + len(dead); n != parts*perPart {
		t.Fatalf("%d distinct records in the tables, want %d", n, parts*perPart)
	}
	t.Logf("%d rows and %d dead letters, each exactly once", len(rows), len(dead))
}

// TestBackpressure blocks the writer and checks that the source stops
// fetching: the client buffers at most about one fetch while Write blocks.
func TestBackpressure(t *testing.T) {
	c := newCluster(t, 1, "events")
	brokers := c.ListenAddrs()
	cat := openCatalog(t)
	spec := table.Spec{Name: "ods.events", Schema: []table.Field{{Name: "id", Type: "long", Required: true}, {Name: "v", Type: "string"}}}
	cfg := testConfig(brokers, Route{Topics: []string{"events"}, Table: "ods.events"})
	cfg.FetchMaxBytes = 64 << 10
	cfg.FetchMaxPartitionBytes = 64 << 10
	cfg.BatchRecords = 100
	prepare(t, cat, cfg, spec)
	recs, _ := streamRecords("events", 1, 20000, 1<<30)
	produce(t, brokers, recs)

	src, err := New(cfg, Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close() //nolint:errcheck // test cleanup
	wcfg := fastWriter()
	wcfg.ApplyDefaults()
	w := writer.New(cat, wcfg, writer.Options{Logger: testLogger(), OnCommit: src.OnCommit})
	defer w.Abort()
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	sink := &blockingSink{Writer: w, release: release, blocked: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	t.Cleanup(func() {
		unblock()
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("source stopped: %v", err)
		}
	})
	select {
	case <-sink.blocked:
	case <-time.After(20 * time.Second):
		t.Fatal("the source never wrote")
	}
	src.mu.Lock()
	cl := src.cl
	src.mu.Unlock()
	// The client fills its buffer (one fetch: whole producer batches, so
	// possibly more than fetch-max-bytes) and then must stop.
	time.Sleep(time.Second)
	before := cl.BufferedFetchRecords()
	time.Sleep(2 * time.Second)
	after := cl.BufferedFetchRecords()
	t.Logf("buffered while the writer blocks: %d, then %d records (%d bytes); the topic holds %d", before, after, cl.BufferedFetchBytes(), len(recs))
	if after != before || after >= int64(len(recs)) {
		t.Fatalf("the client kept fetching while Write blocked: %d then %d buffered records of %d", before, after, len(recs))
	}
	unblock()
	waitFor(t, 30*time.Second, "all records", func() bool {
		return len(scan(t, cat, "ods.events", "id"))+len(scan(t, cat, "floe.dead_letters", "position")) == len(recs)
	})
}

type blockingSink struct {
	*writer.Writer
	release, blocked chan struct{}
	once             bool
}

func (b *blockingSink) Write(bt writer.Batch) error {
	if !b.once {
		b.once = true
		close(b.blocked)
		<-b.release
	}
	return b.Writer.Write(bt)
}

// TestSASLSCRAM authenticates with SCRAM-SHA-256, the password from the
// environment.
func TestSASLSCRAM(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "floe", "s3cret"), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	cat := openCatalog(t)
	spec := table.Spec{Name: "ods.events", Schema: []table.Field{{Name: "id", Type: "long", Required: true}, {Name: "v", Type: "string"}}}
	cfg := testConfig(brokers, Route{Topics: []string{"events"}, Table: "ods.events"})
	cfg.SASL = SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "floe", Password: "wrong"}
	t.Setenv(EnvSASLPassword, "s3cret")
	cfg.ApplyDefaults()
	prepare(t, cat, cfg, spec)

	pcl, err := kgo.NewClient(append(mustConnOpts(t, cfg), kgo.DefaultProduceTopic("events"))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := pcl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(`{"id":1}`)}, &kgo.Record{Value: []byte(`{"id":2}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pcl.Close()
	p := startProc(t, "sasl", cat, cfg, fastWriter(), 0)
	waitFor(t, 30*time.Second, "two rows", func() bool { return len(scan(t, cat, "ods.events", "id")) == 2 })
	p.stop()
}

func mustConnOpts(t testing.TB, cfg Config) []kgo.Opt {
	t.Helper()
	o, err := connOpts(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestTLS connects over TLS, trusting the broker's certificate through
// tls.ca-file.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "floe-test-broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"), kfake.GroupMinSessionTimeout(100*time.Millisecond),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cat := openCatalog(t)
	spec := table.Spec{Name: "ods.events", Schema: []table.Field{{Name: "id", Type: "long", Required: true}, {Name: "v", Type: "string"}}}
	cfg := testConfig(c.ListenAddrs(), Route{Topics: []string{"events"}, Table: "ods.events"})
	cfg.TLS = TLSConfig{CAFile: ca}
	prepare(t, cat, cfg, spec)
	pcl, err := kgo.NewClient(append(mustConnOpts(t, cfg), kgo.DefaultProduceTopic("events"))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := pcl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(`{"id":1}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pcl.Close()
	p := startProc(t, "tls", cat, cfg, fastWriter(), 0)
	waitFor(t, 30*time.Second, "one row", func() bool { return len(scan(t, cat, "ods.events", "id")) == 1 })
	p.stop()

	// Without the CA the broker's certificate is rejected.
	bad := cfg
	bad.TLS = TLSConfig{Enabled: true}
	cl, err := kgo.NewClient(mustConnOpts(t, bad)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err == nil {
		t.Fatal("a self-signed broker certificate was accepted without ca-file")
	}
}

// TestZombieIsFenced stalls process a inside a Write with rows in hand
// until the group gives up on it (rebalance timeout) and b takes over all
// partitions and commits. When a wakes up it still writes its rows; its
// commit is fenced (or its partitions are reported lost first), it drops
// them and re-seeks — and every record is in the table exactly once.
func TestZombieIsFenced(t *testing.T) {
	const parts, perPart = 4, 1500
	c, cat, cfg := eventsSetup(t, parts, 100, func(cfg *Config) { cfg.RebalanceTimeout = 2 * time.Second })
	brokers := c.ListenAddrs()
	recs, poison := streamRecords("events", parts, perPart, 89)
	produce(t, brokers, recs[:len(recs)/2])

	gate := make(chan struct{})
	a := startGated(t, "a", cat, cfg, fastWriter(), 0, gate)
	time.Sleep(500 * time.Millisecond) // a polls and stalls in its first Write
	b := startProc(t, "b", cat, cfg, fastWriter(), 0)
	waitFor(t, 30*time.Second, "b to commit after taking a's partitions", func() bool {
		return len(scan(t, cat, "ods.events", "id")) > 0
	})
	produce(t, brokers, recs[len(recs)/2:])
	close(gate) // the zombie wakes up with its rows
	waitExactlyOnce(t, cat, "ods.events", "events", parts, perPart, poison, 60*time.Second)
	time.Sleep(2 * time.Second) // let a zombie commit, if it were to
	a.stop()
	b.stop()
	checkExactlyOnce(t, cat, "ods.events", "events", parts, perPart, poison)
	_, fa := a.stats()
	_, fb := b.stats()
	t.Logf("a: failed runs %v; b: failed runs %v", fa, fb)
	if fa["fenced"]+fa["rebalanced"] == 0 {
		t.Fatal("the zombie's run did not end on a fence or a lost partition")
	}
}
