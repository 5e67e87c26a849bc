package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// testLogger logs to stderr at FLOE_TEST_LOG=debug, else only errors.
func testLogger() *slog.Logger {
	lvl := slog.LevelError
	if os.Getenv("FLOE_TEST_LOG") == "debug" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

func newCluster(t testing.TB, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// testConfig is a config for fast tests: short sessions and heartbeats.
func testConfig(brokers []string, routes ...Route) Config {
	c := DefaultConfig()
	c.Brokers = brokers
	c.Group = "floe-test"
	c.Routes = routes
	c.BatchRecords = 500
	c.FetchMaxWait = 50 * time.Millisecond
	c.SessionTimeout = 1500 * time.Millisecond
	c.HeartbeatInterval = 100 * time.Millisecond
	c.RebalanceTimeout = 10 * time.Second
	return c
}

// produce writes recs synchronously; each record's Partition is honoured.
func produce(t testing.TB, brokers []string, recs []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.MaxBufferedRecords(100000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func ensureTables(t testing.TB, cat icecat.Catalog, specs ...table.Spec) {
	t.Helper()
	for _, s := range specs {
		if _, err := table.Ensure(context.Background(), cat, s); err != nil {
			t.Fatal(err)
		}
	}
}

// proc is one simulated floe ingest process: a Source run again and again
// by a minimal supervisor (as source.Supervise does) with a fresh writer
// per run.
type proc struct {
	t      testing.TB
	name   string
	src    *Source
	cancel context.CancelFunc
	done   chan struct{}
	// faults makes Write fail with this probability per call (a failed
	// run: the writer is aborted and the source re-seeks).
	faults float64
	// gate, when set before the first run, blocks that run's first Write
	// until it is closed (a stalled process: a zombie in the making).
	gate   chan struct{}
	killed atomic.Bool
	// runs counts runs; failures counts runs that ended in an error, by
	// kind.
	mu       sync.Mutex
	runs     int
	failures map[string]int
}

func startProc(t testing.TB, name string, cat icecat.Catalog, cfg Config, wcfg writer.Config, faults float64) *proc {
	t.Helper()
	return startGated(t, name, cat, cfg, wcfg, faults, nil)
}

func startGated(t testing.TB, name string, cat icecat.Catalog, cfg Config, wcfg writer.Config, faults float64, gate chan struct{}) *proc {
	t.Helper()
	src, err := New(cfg, Options{Logger: testLogger().With("proc", name), OffsetCommitInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{t: t, name: name, src: src, cancel: cancel, done: make(chan struct{}), faults: faults, gate: gate, failures: map[string]int{}}
	wcfg.ApplyDefaults()
	go p.loop(ctx, cat, wcfg)
	t.Cleanup(p.stop)
	return p
}

func (p *proc) loop(ctx context.Context, cat icecat.Catalog, wcfg writer.Config) {
	defer close(p.done)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for {
		w := writer.New(cat, wcfg, writer.Options{Logger: testLogger().With("proc", p.name), OnCommit: p.src.OnCommit})
		sink := &faultSink{Writer: w, p: p.faults, rng: rng, gate: p.gate}
		p.gate = nil
		err := p.src.Run(ctx, sink)
		p.mu.Lock()
		p.runs++
		if err != nil && ctx.Err() == nil {
			kind := "error"
			switch {
			case errors.Is(err, ErrRebalanced):
				kind = "rebalanced"
			case errors.Is(err, table.ErrFenced):
				kind = "fenced"
			case errors.Is(err, errInjected):
				kind = "injected"
			default:
				p.t.Logf("%s: run failed: %v", p.name, err)
			}
			p.failures[kind]++
		}
		p.mu.Unlock()
		if ctx.Err() != nil {
			if p.killed.Load() {
				w.Abort()
			} else {
				cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if err := w.Close(cctx); err != nil {
					p.t.Logf("%s: final commit: %v", p.name, err)
				}
				cancel()
			}
			return
		}
		w.Abort()
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *proc) stats() (int, map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runs, maps.Clone(p.failures)
}

// stop ends the process gracefully: a final commit, then the group is left.
func (p *proc) stop() {
	p.cancel()
	<-p.done
	_ = p.src.Close()
}

// kill ends the process without committing what it buffered (its group
// membership ends with a leave, as the OS would close its sockets).
func (p *proc) kill() {
	p.killed.Store(true)
	p.stop()
}

var errInjected = errors.New("injected write failure")

// faultSink fails Write at random; it is still a Resyncer through the
// embedded writer.
type faultSink struct {
	*writer.Writer
	p    float64
	rng  *rand.Rand
	mu   sync.Mutex
	gate chan struct{}
}

func (f *faultSink) Write(b writer.Batch) error {
	f.mu.Lock()
	fail := f.p > 0 && f.rng.Float64() < f.p
	gate := f.gate
	f.gate = nil
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if fail {
		if b.Record != nil {
			b.Record.Release()
		}
		return errInjected
	}
	return f.Writer.Write(b)
}

// scan reads columns of a table as Go values per row.
func scan(t testing.TB, cat icecat.Catalog, name string, cols ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
	tabletest.Each(t, tabletest.Load(t, cat, name), func(rec arrow.RecordBatch) {
		for i := 0; i < int(rec.NumRows()); i++ {
			row := map[string]any{}
			for j, f := range rec.Schema().Fields() {
				row[f.Name] = tabletest.Cell(rec.Column(j), i)
			}
			out = append(out, row)
		}
	}, icetable.WithSelectedFields(cols...))
	return out
}

// offsetsIn counts the rows of tbl per "partition/offset" from the
// metadata columns.
func offsetsIn(t testing.TB, cat icecat.Catalog, tbl string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range scan(t, cat, tbl, ColTopic, ColPartition, ColOffset) {
		out[fmt.Sprintf("%s/%d@%d", r[ColTopic], r[ColPartition], r[ColOffset])]++
	}
	return out
}

// deadLettersIn counts dead letters per "topic/partition@offset".
func deadLettersIn(t testing.TB, cat icecat.Catalog, tbl string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range scan(t, cat, tbl, "partition", "position") {
		out[fmt.Sprintf("%s@%d", r["partition"], r["position"])]++
	}
	return out
}

// waitFor polls cond every 200ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func openCatalog(t testing.TB) icecat.Catalog {
	t.Helper()
	return tabletest.OpenSQLite(t)
}
