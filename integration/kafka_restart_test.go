//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	icetable "github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/source/kafka"
	"github.com/floe-lake/floe/table"
)

// restartScenario is one way to stop a member of a two-process group.
type restartScenario struct {
	name string
	// kafka settings on top of the defaults (session-timeout, …).
	kafka map[string]any
	// static gives each process its own instance id (through
	// FLOE_KAFKA_INSTANCE_ID), stable across its restarts.
	static bool
	// sig stops the victim: SIGKILL (a crash) or SIGTERM (a graceful stop).
	sig syscall.Signal
	// restart starts the victim again at once (same instance id).
	restart bool
}

// TestKafkaRestartTime measures, on the real broker, how long the
// partitions of one of two `floe ingest` processes in a group stay idle
// after that process is stopped — with and without an immediate restart —
// under today's defaults and under static membership, an eager balancer
// and a shorter session timeout. It prints a table of the times and
// asserts none: the times are the broker's and the client's timers, and
// the commit interval (1s) is the resolution. Every subtest takes up to
// its session timeout plus about 15s; run one with e.g.
//
//	go test -tags integration -run 'TestKafkaRestartTime/static' -v ./integration/
func TestKafkaRestartTime(t *testing.T) {
	if testing.Short() {
		t.Skip("measures restart times on the real broker (minutes)")
	}
	brokers := kafkaBrokers(t)
	bin := testenv.FloeBinary(t)
	s10 := map[string]any{"session-timeout": "10s"}
	eager := map[string]any{"partition-assignment-strategy": "range"}
	scenarios := []restartScenario{
		{name: "defaults/kill+restart", sig: syscall.SIGKILL, restart: true},
		{name: "defaults/kill", sig: syscall.SIGKILL},
		{name: "defaults/term", sig: syscall.SIGTERM},
		{name: "eager-range/kill+restart", kafka: eager, sig: syscall.SIGKILL, restart: true},
		{name: "static/kill+restart", static: true, sig: syscall.SIGKILL, restart: true},
		{name: "static/kill", static: true, sig: syscall.SIGKILL},
		{name: "static/term", static: true, sig: syscall.SIGTERM},
		{name: "session10s/kill+restart", kafka: s10, sig: syscall.SIGKILL, restart: true},
		{name: "session10s/kill", kafka: s10, sig: syscall.SIGKILL},
		{name: "static+session10s/kill+restart", kafka: s10, static: true, sig: syscall.SIGKILL, restart: true},
		{name: "static+session10s/kill", kafka: s10, static: true, sig: syscall.SIGKILL},
	}
	var mu sync.Mutex
	var rows []string
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			res := measureRestart(t, bin, brokers, sc)
			mu.Lock()
			rows = append(rows, fmt.Sprintf("| %-32s | %6.1f | %6.1f | %d of %d |", sc.name, res.all.Seconds(), res.longest.Seconds(), res.idle, res.parts))
			mu.Unlock()
		})
	}
	t.Logf("seconds from the signal until every partition is consumed again (back), the longest a partition was idle (idle), and how many were idle over 3s (the commit interval, 1s, is the resolution):\n"+
		"| scenario                         | back   | idle   | idle >3s |\n%s", strings.Join(rows, "\n"))
}

type restartResult struct {
	all     time.Duration // from the signal until the last partition idle over 3s (else any) was consumed again
	longest time.Duration // the longest a partition was idle
	idle    int           // partitions idle for more than 3s
	parts   int
}

func measureRestart(t *testing.T, bin string, brokers []string, sc restartScenario) restartResult {
	const partitions = 6
	id := kafkaRandHex(t)
	topic, group := "restart-time-"+id, "floe-restart-"+id
	createTopic(t, brokers, topic, partitions)
	dir := kafkaLogDir(t)
	cc := catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")}
	k := map[string]any{
		"id": "clicks", "brokers": brokers, "group": group,
		"routes": []any{map[string]any{"topics": []string{topic}, "table": "ods.clicks"}},
	}
	for key, v := range sc.kafka {
		k[key] = v
	}
	cfgPath := writeFloeYAML(t, dir, map[string]any{
		"catalog":         catalogYAML(cc),
		"writer":          map[string]any{"commit-interval": "1s", "memory-budget": "64MiB"},
		"metrics-address": "off",
		"tables":          []any{clicksTable("ods.clicks")},
		"sources":         []any{map[string]any{"type": "kafka", "kafka": k}},
	})

	// A record per partition every 100ms, for the whole scenario.
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, stopProducing := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stopProducing(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := int64(0); ctx.Err() == nil; {
			recs := make([]*kgo.Record, 0, partitions)
			for p := range partitions {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(p), Value: clickJSON(seq, false)})
				seq++
			}
			_ = prod.ProduceSync(ctx, recs...) // a failed produce only thins the stream
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()

	start := func(name string) *floeProc {
		var env []string
		if sc.static {
			env = append(env, kafka.EnvInstanceID+"="+name)
		}
		return startFloeEnv(t, bin, cfgPath, dir, name, env)
	}
	procs := map[string]*floeProc{"p0": start("p0"), "p1": start("p1")}
	defer func() {
		for _, p := range procs {
			if _, done := p.exited(); !done {
				p.kill()
			}
		}
	}()
	positions := func() table.Positions {
		cat, err := catalog.Open(context.Background(), cc)
		if err != nil {
			return nil
		}
		tbl, err := cat.LoadTable(context.Background(), icetable.Identifier{"ods", "clicks"})
		if err != nil {
			return nil
		}
		pm, err := table.CurrentPositions(tbl)
		if err != nil {
			t.Fatal(err)
		}
		return pm["clicks"]
	}
	// Steady state: both processes own partitions and every partition
	// advanced in each of the last two 2-second windows.
	deadline := time.Now().Add(2 * time.Minute)
	steady := 0
	prev := positions()
	for steady < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no steady state within 2m (positions %v); logs in %s", prev, dir)
		}
		for name, p := range procs {
			if err, done := p.exited(); done {
				t.Fatalf("%s exited: %v", name, err)
			}
		}
		time.Sleep(2 * time.Second)
		cur := positions()
		moved := len(cur) == partitions && bothAssigned(dir)
		for p := range partitions {
			k := fmt.Sprintf("%s/%d", topic, p)
			moved = moved && cur[k] > prev[k]
		}
		if moved {
			steady++
		} else {
			steady = 0
		}
		prev = cur
	}

	victim := procs["p1"]
	t0 := time.Now()
	_ = victim.cmd.Process.Signal(sc.sig)
	select {
	case <-victim.exit:
	case <-time.After(2 * time.Minute):
		t.Fatalf("p1 did not exit within 2m of %v", sc.sig)
	}
	p0 := positions()
	if sc.restart {
		procs["p1"] = start("p1")
	}
	// Each partition's longest gap between two advances of its position,
	// counted from the signal, until every partition advanced in the last
	// 2.5s: an eager rebalance also stops the survivor's partitions (after
	// it committed them once more), which a first advance would miss.
	last, gap, back, first := make([]time.Duration, partitions), make([]time.Duration, partitions), make([]time.Duration, partitions), make([]time.Duration, partitions)
	limit := 3 * time.Minute
	for {
		el := time.Since(t0)
		if el > limit {
			t.Fatalf("after %s partitions last advanced at %v; logs in %s", limit, roundAll(last), dir)
		}
		time.Sleep(100 * time.Millisecond)
		cur := positions()
		el = time.Since(t0)
		done := el > 5*time.Second
		for p := range partitions {
			k := fmt.Sprintf("%s/%d", topic, p)
			if cur[k] > p0[k] {
				if first[p] == 0 {
					first[p] = el
				}
				if g := el - last[p]; g > gap[p] {
					gap[p], back[p] = g, el
				}
				last[p], p0[k] = el, cur[k]
			}
			done = done && last[p] > 0 && el-last[p] < 2500*time.Millisecond
		}
		if done {
			break
		}
	}
	res := restartResult{parts: partitions}
	for p := range partitions {
		res.longest = max(res.longest, gap[p])
		if gap[p] > 3*time.Second {
			res.idle++
			res.all = max(res.all, back[p])
		}
	}
	if res.idle == 0 {
		res.all = slices.Max(first)
	}
	t.Logf("%s: every partition consumed again %.1fs after %v; per partition, longest idle %v, consumed again at %v",
		sc.name, res.all.Seconds(), sc.sig, roundAll(gap), roundAll(back))
	return res
}

func roundAll(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
	return out
}

// bothAssigned reports whether p0 and p1 both logged an assignment.
func bothAssigned(dir string) bool {
	for _, name := range []string{"p0", "p1"} {
		b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
		if !strings.Contains(string(b), "partitions assigned") {
			return false
		}
	}
	return true
}

// startFloeEnv is startFloe with extra environment variables (and without
// an inherited instance id).
func startFloeEnv(t testing.TB, bin, cfgPath, dir, name string, env []string) *floeProc {
	t.Helper()
	var all []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, kafka.EnvInstanceID+"=") {
			all = append(all, kv)
		}
	}
	return startFloeWith(t, bin, cfgPath, dir, name, append(all, env...))
}
