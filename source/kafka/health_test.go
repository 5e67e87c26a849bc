package kafka

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/writer"
)

// logBuf collects a source's log lines (and copies them to the test log
// at FLOE_TEST_LOG=debug).
type logBuf struct {
	testenv.SyncBuffer
}

// line returns the first line that contains every one of parts.
func (l *logBuf) line(parts ...string) (string, bool) {
	for _, ln := range strings.Split(l.String(), "\n") {
		ok := true
		for _, p := range parts {
			if !strings.Contains(ln, p) {
				ok = false
				break
			}
		}
		if ok {
			return ln, true
		}
	}
	return "", false
}

func (l *logBuf) count(parts ...string) int {
	n := 0
	for _, ln := range strings.Split(l.String(), "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(ln, p)
		}
		if ok {
			n++
		}
	}
	return n
}

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// gauge returns the value of the metric name with labels (besides
// source), and whether it exists.
func gauge(t testing.TB, reg *prometheus.Registry, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == kv[i] && lp.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// startWith starts a simulated process like startGated, with the source's
// collaborators given.
func startWith(t testing.TB, name string, cat icecat.Catalog, cfg Config, wcfg writer.Config, o Options, gate chan struct{}) *proc {
	t.Helper()
	if o.OffsetCommitInterval == 0 {
		o.OffsetCommitInterval = 100 * time.Millisecond
	}
	src, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{t: t, name: name, src: src, cancel: cancel, done: make(chan struct{}), gate: gate, failures: map[string]int{}}
	wcfg.ApplyDefaults()
	go p.loop(ctx, cat, wcfg)
	t.Cleanup(p.stop)
	return p
}

// freePort returns a local port nothing listens on.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func clickRecords(topic string, parts int32, from, n int) []*kgo.Record {
	recs := make([]*kgo.Record, 0, n)
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i) % parts, Value: []byte(`{"id":` + strconv.Itoa(i) + `}`)})
	}
	return recs
}

// healthTest is one source under a fault: its logs, metrics and process.
type healthTest struct {
	logs *logBuf
	reg  *prometheus.Registry
	p    *proc
	cat  icecat.Catalog
}

func startHealthTest(t *testing.T, brokers []string) *healthTest {
	t.Helper()
	h := &healthTest{logs: &logBuf{}, reg: prometheus.NewRegistry(), cat: openCatalog(t)}
	cfg := testConfig(brokers, Route{Topics: []string{"clicks"}, Table: "ods.clicks"})
	cfg.UnavailableTimeout = time.Second
	cfg.MetadataColumns = true
	prepare(t, h.cat, cfg, clicksSpec("ods.clicks"))
	h.p = startWith(t, "p0", h.cat, cfg, fastWriter(), Options{Logger: h.logs.logger(), Registerer: h.reg}, nil)
	return h
}

func (h *healthTest) waitLog(t *testing.T, what string, parts ...string) string {
	t.Helper()
	var ln string
	waitFor(t, 30*time.Second, what, func() bool {
		var ok bool
		ln, ok = h.logs.line(parts...)
		return ok
	})
	return ln
}

func (h *healthTest) waitGauge(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	waitFor(t, 30*time.Second, name+" "+strconv.FormatFloat(want, 'g', -1, 64), func() bool {
		v, ok := gauge(t, h.reg, name, labels...)
		return ok && v == want
	})
}

// TestUnreachableBroker: with a seed broker on a closed port, the source
// logs an ERROR naming the broker and the dial error within
// unavailable-timeout, floe_kafka_broker_up is 0 and Health says why; when
// a broker starts on that port, the gauge returns to 1, an INFO says so,
// and the records are consumed.
func TestUnreachableBroker(t *testing.T) {
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	h := startHealthTest(t, []string{addr})
	start := time.Now()
	ln := h.waitLog(t, "the ERROR about the unreachable broker", "level=ERROR", "no kafka broker answers", addr, "connection refused")
	t.Logf("after %s: %s", time.Since(start).Round(time.Millisecond), ln)
	h.waitGauge(t, 0, "floe_kafka_broker_up")
	if err := h.p.src.Health(); !errors.Is(err, ErrBrokersUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Health() = %v, want ErrBrokersUnreachable naming %s", err, addr)
	}

	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(2, "clicks"), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	produce(t, c.ListenAddrs(), clickRecords("clicks", 2, 0, 20))
	h.waitLog(t, "the INFO that the brokers answer again", "level=INFO", "kafka brokers answer again")
	h.waitGauge(t, 1, "floe_kafka_broker_up")
	waitFor(t, 30*time.Second, "20 rows", func() bool { return len(offsetsIn(t, h.cat, "ods.clicks")) == 20 })
	if err := h.p.src.Health(); err != nil {
		t.Fatalf("Health() = %v after the broker came up", err)
	}
	if n := h.logs.count("level=ERROR", "no kafka broker answers"); n != 1 {
		t.Fatalf("%d ERRORs about the brokers, want 1 per outage", n)
	}
}

// TestMissingTopic: a routed topic that does not exist is reported within
// unavailable-timeout (ERROR naming it, floe_kafka_topic_missing 1,
// Health); once it is created its records are consumed, the gauge is 0
// and an INFO says so.
func TestMissingTopic(t *testing.T) {
	c := newCluster(t, 2, "other")
	brokers := c.ListenAddrs()
	h := startHealthTest(t, brokers)
	start := time.Now()
	ln := h.waitLog(t, "the ERROR about the missing topic", "level=ERROR", "kafka topic does not exist", "topic=clicks", "UNKNOWN_TOPIC_OR_PARTITION")
	t.Logf("after %s: %s", time.Since(start).Round(time.Millisecond), ln)
	h.waitGauge(t, 1, "floe_kafka_topic_missing", "topic", "clicks")
	if v, _ := gauge(t, h.reg, "floe_kafka_broker_up"); v != 1 {
		t.Fatalf("floe_kafka_broker_up = %v while the broker answers", v)
	}
	if err := h.p.src.Health(); !errors.Is(err, ErrTopicMissing) || !strings.Contains(err.Error(), "clicks") {
		t.Fatalf("Health() = %v, want ErrTopicMissing naming clicks", err)
	}

	createTopicOn(t, brokers, "clicks", 2)
	produce(t, brokers, clickRecords("clicks", 2, 0, 20))
	h.waitLog(t, "the INFO that the topic exists", "level=INFO", "kafka topic exists again", "topic=clicks")
	h.waitGauge(t, 0, "floe_kafka_topic_missing", "topic", "clicks")
	waitFor(t, 30*time.Second, "20 rows", func() bool { return len(offsetsIn(t, h.cat, "ods.clicks")) == 20 })
	if err := h.p.src.Health(); err != nil {
		t.Fatalf("Health() = %v after the topic was created", err)
	}
}

// TestBrokerStops: a running source whose only broker stops reports it
// within unavailable-timeout; when the broker comes back (same port, same
// data) the source recovers by itself and every record is in the table
// exactly once.
func TestBrokerStops(t *testing.T) {
	port, dir := freePort(t), t.TempDir()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir), kfake.SeedTopics(2, "clicks"), kfake.GroupMinSessionTimeout(100 * time.Millisecond)}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	brokers := c.ListenAddrs()
	h := startHealthTest(t, brokers)
	produce(t, brokers, clickRecords("clicks", 2, 0, 20))
	waitFor(t, 30*time.Second, "20 rows", func() bool { return len(offsetsIn(t, h.cat, "ods.clicks")) == 20 })
	h.waitGauge(t, 1, "floe_kafka_broker_up")
	for _, part := range []string{"0", "1"} {
		h.waitGauge(t, 0, "floe_kafka_consumer_lag_records", "topic", "clicks", "partition", part)
	}

	c.Close()
	h.waitLog(t, "the ERROR about the stopped broker", "level=ERROR", "no kafka broker answers", brokers[0])
	h.waitGauge(t, 0, "floe_kafka_broker_up")

	c, err = kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	produce(t, brokers, clickRecords("clicks", 2, 20, 20))
	h.waitLog(t, "the INFO that the brokers answer again", "level=INFO", "kafka brokers answer again")
	h.waitGauge(t, 1, "floe_kafka_broker_up")
	waitFor(t, 60*time.Second, "40 rows", func() bool { return len(offsetsIn(t, h.cat, "ods.clicks")) >= 40 })
	got := offsetsIn(t, h.cat, "ods.clicks")
	for k, n := range got {
		if n != 1 {
			t.Fatalf("record %s is %d times in the table", k, n)
		}
	}
	if len(got) != 40 {
		t.Fatalf("%d records in the table, want 40", len(got))
	}
}

// TestHealthObserve drives the fault detector with a fake clock: a fault
// is reported once it has lasted the timeout (not before), once, and its
// end once.
func TestHealthObserve(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	logs, reg := &logBuf{}, prometheus.NewRegistry()
	cfg := testConfig([]string{"127.0.0.1:1"}, Route{Topics: []string{"a", "b"}, Table: "ods.clicks"})
	cfg.UnavailableTimeout = 10 * time.Second
	s, err := New(cfg, Options{Logger: logs.logger(), Registerer: reg, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	h := newHealth(s)
	dial := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	meta := func(missing ...string) *kmsg.MetadataResponse {
		resp := kmsg.NewPtrMetadataResponse()
		for _, topic := range []string{"a", "b"} {
			rt := kmsg.NewMetadataResponseTopic()
			rt.Topic = kmsg.StringPtr(topic)
			for _, m := range missing {
				if m == topic {
					rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
				}
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	type want struct {
		up            float64
		missingA      float64
		errors, infos int
		appeared      bool
		health        error // matched with errors.Is; nil: Health is nil
	}
	steps := []struct {
		name    string
		advance time.Duration
		resp    *kmsg.MetadataResponse
		err     error
		want    want
	}{
		{"no answer, within the timeout", 9 * time.Second, nil, dial, want{up: 1}},
		{"no answer for the timeout", time.Second, nil, dial, want{up: 0, errors: 1, health: ErrBrokersUnreachable}},
		{"still none: no second ERROR", 30 * time.Second, nil, dial, want{up: 0, errors: 1, health: ErrBrokersUnreachable}},
		{"an answer; topic a missing", time.Second, meta("a"), nil, want{up: 1, errors: 1, infos: 1}},
		{"a missing, within the timeout", 9 * time.Second, meta("a"), nil, want{up: 1, errors: 1, infos: 1}},
		{"a missing for the timeout", time.Second, meta("a"), nil, want{up: 1, missingA: 1, errors: 2, infos: 1, health: ErrTopicMissing}},
		{"a still missing", 5 * time.Second, meta("a"), nil, want{up: 1, missingA: 1, errors: 2, infos: 1, health: ErrTopicMissing}},
		{"a created", time.Second, meta(), nil, want{up: 1, errors: 2, infos: 2, appeared: true}},
		{"a short blip is not reported", 0, meta("a"), nil, want{up: 1, errors: 2, infos: 2}},
		{"and ends silently", 2 * time.Second, meta(), nil, want{up: 1, errors: 2, infos: 2, appeared: true}},
	}
	for _, st := range steps {
		now = now.Add(st.advance)
		appeared := h.observe(st.resp, st.err)
		up, _ := gauge(t, reg, "floe_kafka_broker_up")
		missA, ok := gauge(t, reg, "floe_kafka_topic_missing", "topic", "a")
		got := want{up: up, missingA: missA, errors: logs.count("level=ERROR"), infos: logs.count("level=INFO"), appeared: appeared}
		w := st.want
		herr := h.err()
		if !ok || got.up != w.up || got.missingA != w.missingA || got.errors != w.errors || got.infos != w.infos || got.appeared != w.appeared ||
			(w.health == nil) != (herr == nil) || (w.health != nil && !errors.Is(herr, w.health)) {
			t.Fatalf("%s: got %+v, Health %v; want %+v\n%s", st.name, got, herr, w, logs.String())
		}
	}
	if ln, _ := logs.line("level=ERROR", "no kafka broker answers"); !strings.Contains(ln, "127.0.0.1:1") || !strings.Contains(ln, "connection refused") || !strings.Contains(ln, "for=10s") {
		t.Fatalf("the brokers' ERROR does not name the broker, the cause and the time: %s", ln)
	}
	if ln, _ := logs.line("level=ERROR", "topic=a"); !strings.Contains(ln, "does not exist") || !strings.Contains(ln, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("the topic's ERROR does not say why: %s", ln)
	}
}
