package kafka

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/benchutil"
	"github.com/floe-lake/floe/internal/cdcgen"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// BenchmarkUpsertIngest measures Kafka CDC ingest in changes per
// CPU-second of this process (benchutil.ProcessCPU: the consumer, the
// decoding, the keyed writer and its commits; not the producer): the
// generator's orders changes (internal/cdcgen: 10,000 keys, 4 partitions)
// in Canal and in Debezium JSON on the broker FLOE_KAFKA_BROKERS names,
// ingested in mode upsert into a keyed table, and — the baseline, in the
// same run — the same records in mode append into a change-log table.
// FLOE_UPSERT_BENCH_CHANGES sets the size (default 200000). Tables are in
// a local warehouse. Run:
//
//	go test -run '^$' -bench UpsertIngest -benchtime 1x ./source/kafka/
//
// Figures (200k changes, two cores shared with other work, load 12–17;
// two runs): Canal upserts 219–224k changes/CPU-s (append of the same
// records 218–259k); Debezium 179–215k (append 273–285k). The code before
// this figure, built from its commit and run right before in the same
// shell: Canal 35–38k, Debezium 33k, append 126–128k. What changed: with
// 10 % deletes interleaved, a poll's runs of one operation kind were
// short and each was an Apply and a record of its own in the keyed
// writer; now a poll's upserts and deletes go in one Apply
// (writer.Changes.Deletes). previousKey decoded both whole images of each
// Debezium update into maps to compare their keys; now it scans for the
// key columns (keyscan.go). encoding/json decoded the envelopes (a
// validation pass, then reflection); plain ones are now decoded in one
// checking pass (envelope.go). The rest is the Kafka client, the keyed
// writer's flush and garbage collection (`go test -cpuprofile`).
func BenchmarkUpsertIngest(b *testing.B) {
	v := os.Getenv(EnvBrokers)
	if v == "" {
		b.Skip("needs Kafka: set " + EnvBrokers + " (integration/kafka.sh start)")
	}
	testenv.KafkaLock(b, false)
	brokers := strings.Split(v, ",")
	n := 200000
	if s := os.Getenv("FLOE_UPSERT_BENCH_CHANGES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	for _, format := range []string{FormatCanal, FormatDebezium} {
		topic := fmt.Sprintf("floe-upsert-bench-%s-%d", strings.TrimSuffix(format, "-json"), time.Now().UnixNano())
		var need table.Positions // the offset after each partition's last record with rows
		records := 0
		prepared := false
		for _, mode := range []string{ModeUpsert, ModeAppend} {
			b.Run(strings.TrimSuffix(format, "-json")+"/"+mode, func(b *testing.B) {
				if !prepared {
					need, records = produceChanges(b, brokers, topic, format, n)
					prepared = true
				}
				for range b.N {
					benchIngestOnce(b, brokers, topic, format, mode, need, n, records)
				}
			})
		}
	}
}

// produceChanges produces n generated orders changes to a new topic in
// format and returns, per partition, the offset after its last record
// that carries rows (not a tombstone or DDL), and the record count.
func produceChanges(b *testing.B, brokers []string, topic, format string, n int) (table.Positions, int) {
	b.Helper()
	cfg := cdcgen.DefaultConfig()
	cfg.Changes, cfg.Tables = n, []string{cdcgen.TableOrders}
	g, err := cdcgen.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	var recs []*kgo.Record
	for {
		ev, ok := g.Next()
		if !ok {
			break
		}
		rs, err := cdcgen.Encode(format, ev)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rs {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: r.Partition, Key: r.Key, Value: r.Value})
		}
	}
	createTopicOn(b, brokers, topic, int32(cfg.Partitions))
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(200000))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Fatalf("produce: %v", err)
	}
	need := table.Positions{}
	for _, r := range recs {
		if r.Value != nil && !strings.Contains(string(r.Value), `"isDdl":true`) {
			need[fmt.Sprintf("%s/%d", r.Topic, r.Partition)] = r.Offset + 1
		}
	}
	return need, len(recs)
}

// benchIngestOnce ingests the topic from its start into a fresh table
// until the table's positions reach need, and reports the CPU time.
func benchIngestOnce(b *testing.B, brokers []string, topic, format, mode string, need table.Positions, changes, records int) {
	b.StopTimer()
	dir := b.TempDir()
	cc := catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")}
	cat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		b.Fatal(err)
	}
	spec := table.Spec{Name: "ods.orders", Schema: []table.Field{
		{Name: "id", Type: "long", Required: true}, {Name: "user_id", Type: "long"}, {Name: "region_id", Type: "long"},
		{Name: "status", Type: "string"}, {Name: "amount", Type: "decimal(10,2)"},
		{Name: "created_at", Type: "timestamptz"}, {Name: "updated_at", Type: "timestamptz"},
	}}
	if mode == ModeUpsert {
		spec.IdentifierFields = []string{"id"}
	}
	cfg := testConfig(brokers, Route{Topics: []string{topic}, Table: "ods.orders", Format: format, Mode: mode})
	cfg.Group = fmt.Sprintf("floe-bench-%d", time.Now().UnixNano())
	cfg.BatchRecords = DefaultConfig().BatchRecords
	cfg.SessionTimeout, cfg.HeartbeatInterval = 6*time.Second, 500*time.Millisecond
	prepare(b, cat, cfg, spec)
	wcfg := writer.Config{CommitInterval: time.Second, MemoryBudget: 128 << 20}

	cpu0, _ := benchutil.ProcessCPU()
	start := time.Now()
	b.StartTimer()
	p := startProc(b, "bench", cat, cfg, wcfg, 0)
	for !reached(b, cat, need) {
		if time.Since(start) > 10*time.Minute {
			b.Fatal("the table did not reach the topic's end in 10 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.StopTimer()
	wall := time.Since(start)
	cpu1, _ := benchutil.ProcessCPU()
	p.stop()
	cpu := cpu1 - cpu0
	b.ReportMetric(float64(changes)/cpu.Seconds(), "changes/CPU-s")
	b.ReportMetric(float64(changes)/wall.Seconds(), "changes/s")
	b.ReportMetric(cpu.Seconds(), "CPU-s")
	b.Logf("%s %s: %d changes (%d records) in %s wall, %s CPU", format, mode, changes, records, wall.Round(time.Millisecond), cpu.Round(time.Millisecond))
}

// reached reports whether ods.orders committed positions at or past need.
func reached(b *testing.B, cat icecat.Catalog, need table.Positions) bool {
	pos := tablePositions(b, cat, "ods.orders")["kafka"]
	for p, o := range need {
		if pos[p] < o {
			return false
		}
	}
	return true
}
