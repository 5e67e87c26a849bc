package integration

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/cdcgen"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
)

// upsertSize is the size of TestUpsertMustShow: FLOE_UPSERT_CHANGES row
// changes (default 50000; `make soak-upsert` runs the 1000000)
// over FLOE_UPSERT_KEYS keys (default 10000), with FLOE_UPSERT_KILLS
// SIGKILLs of floe ingest per topic (default 3; the soak: 10).
func upsertSize(t *testing.T) (changes, keys, kills int) {
	get := func(name string, def, least int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < least {
			t.Fatalf("%s=%q: want a number >= %d", name, v, least)
		}
		return n
	}
	return get("FLOE_UPSERT_CHANGES", 50000, 1000), get("FLOE_UPSERT_KEYS", 10000, 10), get("FLOE_UPSERT_KILLS", 3, 0)
}

// upsertOrdersTable is the table spec of the generator's orders, keyed by
// id, partitioned by partition when it is set.
func upsertOrdersTable(name string, partition []any) map[string]any {
	spec := map[string]any{
		"name": name,
		"schema": []any{
			map[string]any{"name": "id", "type": "long", "required": true},
			map[string]any{"name": "user_id", "type": "long"},
			map[string]any{"name": "region_id", "type": "long"},
			map[string]any{"name": "status", "type": "string"},
			map[string]any{"name": "amount", "type": "decimal(10,2)"},
			map[string]any{"name": "created_at", "type": "timestamptz"},
			map[string]any{"name": "updated_at", "type": "timestamptz"},
		},
		"identifier-fields": []string{"id"},
	}
	if partition != nil {
		spec["partition"] = partition
	}
	return spec
}

// TestUpsertMustShow is issue 12's must-show for upserts: a Canal topic
// and a Debezium topic, each with changes from internal/cdcgen (inserts,
// updates, some changing the key, deletes, re-inserts, multi-row Canal
// messages, DDL messages, Debezium tombstones) over 10,000 keys in 4
// partitions, ingested by `floe ingest` in mode upsert while they are
// produced, SIGKILLed again and again; then the mirror table equals the
// generator's final state row for row, with no key twice. Each format
// also into a table partitioned by region, which 10 % of the updates
// change (the row moves to another partition). The CI size is 50k
// changes and 3 kills; `make soak-upsert` runs 1M changes and 10 kills.
func TestUpsertMustShow(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute or more; skipped under -short")
	}
	brokers := kafkaBrokers(t)
	bin := testenv.FloeBinary(t)
	changes, keys, kills := upsertSize(t)
	// The partitioned mirror: orders move between partitions when an
	// update changes their region.
	byRegion := []any{map[string]any{"column": "region_id", "transform": "identity"}}
	for _, tc := range []struct {
		name      string
		format    string
		partition []any
	}{
		{"canal-json", cdcgen.FormatCanal, nil},
		{"debezium-json", cdcgen.FormatDebezium, nil},
		{"canal-json-partitioned", cdcgen.FormatCanal, byRegion},
		{"debezium-json-partitioned", cdcgen.FormatDebezium, byRegion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runUpsertMustShow(t, bin, brokers, tc.format, tc.partition, changes, keys, kills)
		})
	}
}

func runUpsertMustShow(t *testing.T, bin string, brokers []string, format string, partition []any, changes, keys, kills int) {
	cc := kafkaWarehouse(t)
	const partitions = 4
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("FLOE_UPSERT_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	gcfg := cdcgen.DefaultConfig()
	gcfg.Seed, gcfg.Changes, gcfg.Keys, gcfg.Partitions = seed, changes, keys, partitions
	gcfg.Tables = []string{cdcgen.TableOrders}
	gcfg.DDLEvery = 997
	gen, err := cdcgen.New(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	id := kafkaRandHex(t)
	topic := "upsert-" + strings.TrimSuffix(format, "-json") + "-" + id
	for {
		ev, ok := gen.Next()
		if !ok {
			break
		}
		rs, err := cdcgen.Encode(format, ev)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value})
		}
	}
	tbl := cdcgen.Tables()[cdcgen.TableOrders]
	want := canonicalRows(tbl, gen.Replay(cdcgen.TableOrders))
	t.Logf("seed %d: %d changes, %d %s records, %d keys at the end", seed, changes, len(recs), format, len(want))

	createTopic(t, brokers, topic, partitions)
	dir := upsertLogDir(t)
	cfg := map[string]any{
		"catalog":         catalogYAML(cc),
		"writer":          map[string]any{"commit-interval": "1s", "memory-budget": "128MiB"},
		"metrics-address": "off",
		"tables":          []any{upsertOrdersTable("ods.orders", partition)},
		"sources": []any{map[string]any{"type": "kafka", "kafka": map[string]any{
			"id": "shop", "brokers": brokers, "group": "floe-upsert-" + id,
			"routes":          []any{map[string]any{"topics": []string{topic}, "table": "ods.orders", "format": format, "mode": "upsert"}},
			"session-timeout": "3s", "heartbeat-interval": "300ms", "rebalance-timeout": "20s",
			"fetch-max-wait": "100ms",
		}}},
	}
	cfgPath := writeFloeYAML(t, dir, cfg)

	// A quarter of the stream first, the rest while floe ingest runs and
	// is killed.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(200000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(rs []*kgo.Record) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		return cl.ProduceSync(ctx, rs...).FirstErr()
	}
	if err := produce(recs[:len(recs)/4]); err != nil {
		t.Fatalf("produce: %v", err)
	}
	rest := recs[len(recs)/4:]
	var wg sync.WaitGroup
	var prodErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		chunk := max(len(rest)/(4*max(kills, 1)+4), 1000)
		for i := 0; i < len(rest); i += chunk {
			time.Sleep(500 * time.Millisecond)
			if err := produce(rest[i:min(i+chunk, len(rest))]); err != nil {
				prodErr = err
				return
			}
		}
	}()

	p := startFloe(t, bin, cfgPath, dir, "ingest")
	defer func() {
		if _, done := p.exited(); !done {
			p.kill()
		}
	}()
	rng := mrand.New(mrand.NewPCG(seed, 12))
	for i := range kills {
		time.Sleep(time.Duration(1500+rng.IntN(3500)) * time.Millisecond)
		if err, done := p.exited(); done {
			t.Fatalf("floe ingest exited by itself: %v (see %s)", err, filepath.Join(dir, "ingest.log"))
		}
		p.kill()
		pause := time.Duration(rng.IntN(1000)) * time.Millisecond
		t.Logf("kill %d: SIGKILLed floe ingest, restarting in %s", i+1, pause)
		time.Sleep(pause)
		p = startFloe(t, bin, cfgPath, dir, "ingest")
	}
	wg.Wait()
	if prodErr != nil {
		t.Fatalf("produce: %v", prodErr)
	}
	waitMirror(t, cc, "ods.orders", want, time.Duration(5+changes/20000)*time.Minute, p)
	p.stop(t)
	got := mirrorRows(t, cc, "ods.orders")
	if d := tabletest.DiffRows(want, got); d != "" {
		t.Fatalf("after the final stop the mirror differs from the final state (replay first, mirror second): %s", d)
	}
	if partition != nil {
		cat, err := catalog.Open(context.Background(), cc)
		if err != nil {
			t.Fatal(err)
		}
		if tbl := loadTableErr(cat, "ods.orders"); tbl == nil || func() bool { spec := tbl.Metadata().PartitionSpec(); return spec.NumFields() != len(partition) }() {
			t.Fatalf("ods.orders is not partitioned as declared (%v)", partition)
		}
	}
	t.Logf("the mirror equals the final state: %d rows, no key twice, after %d SIGKILLs", len(got), kills)
}

// canonicalRows renders rows of t as tabletest.IcebergRows renders a
// table's: columns sorted by name, joined by " | ", rows sorted.
func canonicalRows(t *cdcgen.Table, rows []cdcgen.Row) []string {
	idx := make([]int, len(t.Columns))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(t.Columns[a].Name, t.Columns[b].Name) })
	out := make([]string, 0, len(rows))
	parts := make([]string, len(idx))
	for _, r := range rows {
		for j, i := range idx {
			switch v := r[i].(type) {
			case nil:
				parts[j] = "NULL"
			case int64:
				parts[j] = strconv.FormatInt(v, 10)
			case string:
				parts[j] = v
			case time.Time:
				parts[j] = v.UTC().Format("2006-01-02 15:04:05.000000")
			}
		}
		out = append(out, strings.Join(parts, " | "))
	}
	slices.Sort(out)
	return out
}

// mirrorRows reads a keyed table in the canonical form; a key twice fails
// the test.
func mirrorRows(t *testing.T, cc catalog.Config, name string) []string {
	t.Helper()
	cat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := cdcIcebergRows(cat, name)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// waitMirror waits until table name holds want, failing when p exits or
// after timeout; a key twice fails at once.
func waitMirror(t *testing.T, cc catalog.Config, name string, want []string, timeout time.Duration, p *floeProc) {
	t.Helper()
	cat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		got, err := cdcIcebergRows(cat, name)
		if err != nil && strings.Contains(err.Error(), "duplicate key") {
			t.Fatal(err)
		}
		if err == nil && slices.Equal(got, want) {
			return
		}
		if err, done := p.exited(); done {
			t.Fatalf("floe ingest exited: %v", err)
		}
		if time.Now().After(deadline) {
			d := fmt.Sprint(err)
			if err == nil {
				d = tabletest.DiffRows(want, got)
			}
			t.Fatalf("after %s the mirror is not the final state: %s", timeout, d)
		}
		time.Sleep(2 * time.Second)
	}
}

// upsertLogDir is where the config and floe's log go: a temporary
// directory, or a new one under FLOE_TEST_KEEP_LOGS, kept.
func upsertLogDir(t *testing.T) string {
	root := os.Getenv("FLOE_TEST_KEEP_LOGS")
	if root == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp(root, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("logs in %s", dir)
	return dir
}
