package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/source/kafka"
	"github.com/floe-lake/floe/table"
)

func kafkaBrokers(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Kafka; skipped under -short")
	}
	b := os.Getenv("FLOE_KAFKA_BROKERS")
	if b == "" {
		t.Fatal("Kafka is not running: start it with `eval $(integration/kafka.sh start)` (it sets FLOE_KAFKA_BROKERS)")
	}
	testenv.KafkaLock(t, false)
	return strings.Split(b, ",")
}

func randomHex(t *testing.T) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// TestVerifyKafka: a topic ingested with metadata columns (plain records,
// a committed and an aborted transaction, poison records going to the dead
// letters) verifies clean — transaction markers and aborted records are
// not missing offsets; a row deleted by another engine is found by its
// offset.
func TestVerifyKafka(t *testing.T) {
	brokers := kafkaBrokers(t)
	ctx := context.Background()
	id := randomHex(t)
	topic := "floe_verify_" + id
	const partitions = 3

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID("floe-verify-"+id), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopic(t, cl, topic, partitions)
	n := 0
	produce := func(count int, commit kgo.TransactionEndTry) {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for range count {
			v := fmt.Sprintf(`{"id": %d, "name": "n%d"}`, n, n)
			if n%17 == 0 {
				v = fmt.Sprintf(`{"id": "not a number %d"}`, n) // a dead letter
			}
			r := &kgo.Record{Value: []byte(v), Partition: int32(n % partitions)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	produce(150, kgo.TryCommit)
	produce(30, kgo.TryAbort)
	produce(120, kgo.TryCommit)

	cat := tabletest.OpenSQLite(t)
	tableName := "verify_" + id + ".clicks"
	cfg := kafka.DefaultConfig()
	cfg.ID = "kafka_" + id
	cfg.Brokers = brokers
	cfg.Group = "floe-verify-" + id
	cfg.Routes = []kafka.Route{{Topics: []string{topic}, Table: tableName}}
	cfg.MetadataColumns = true
	cfg.ApplyDefaults()
	src, err := kafka.New(cfg, kafka.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	specs, err := src.Specs([]table.Spec{{Name: tableName, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true}, {Name: "name", Type: "string"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	runSource(t, cat, src, specs)

	// Wait until the table and the dead letters hold the topic's end (but
	// its last offset, the commit marker, which no consumer reads).
	waitKafkaPositions(t, cat, cl, cfg, topic, partitions, 1, tableName, cfg.DeadLetterTable)

	opts := Options{Logger: quietLogger()}
	ko := KafkaOptions{IdleTimeout: 3 * time.Second}
	rep, err := Kafka(ctx, cat, cfg, ko, opts)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	_ = rep.WriteText(&b)
	if !rep.Equal() || rep.Skipped() > 0 || rep.Tables[0].RowsCompared != 270 {
		t.Fatalf("clean run: want 270 committed records, equal; got\n%s", b.String())
	}

	// Another engine deletes one offset's row and replays another's.
	otherEngineDelete(t, cat, tableName, iceberg.NewAnd(
		iceberg.EqualTo(iceberg.Reference(kafka.ColPartition), int32(1)),
		iceberg.EqualTo(iceberg.Reference(kafka.ColOffset), int64(4))))
	otherEngineCopy(t, cat, tableName, iceberg.NewAnd(
		iceberg.EqualTo(iceberg.Reference(kafka.ColPartition), int32(2)),
		iceberg.EqualTo(iceberg.Reference(kafka.ColOffset), int64(8))))
	rep, err = Kafka(ctx, cat, cfg, ko, opts)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	_ = rep.WriteText(&b)
	want := []Difference{{Kind: KindMissing, Key: topic + "/1@4"}, {Kind: KindDuplicate, Key: topic + "/2@8"}}
	if got := rep.Tables[0].Differences; rep.Differences() != 2 || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("want %v, got\n%s", want, b.String())
	}
}

// waitKafkaPositions waits until each of tables holds, as cfg's committed
// position, the end of every partition of topic less slack (the offsets no
// consumer reads, such as a last transaction marker).
func waitKafkaPositions(t *testing.T, cat icecat.Catalog, cl *kgo.Client, cfg kafka.Config, topic string, partitions int, slack int64, tables ...string) {
	t.Helper()
	parts := map[string]int64{}
	for p := range partitions {
		parts[fmt.Sprintf("%s/%d", topic, p)] = 0
	}
	ends, err := listOffsets(context.Background(), cl, parts, -1)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for _, name := range tables {
		for {
			pm, err := table.CurrentPositions(tabletest.Load(t, cat, name))
			if err != nil {
				t.Fatal(err)
			}
			done := true
			for part, end := range ends {
				done = done && pm[cfg.ID][part] >= end-slack
			}
			if done {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: positions %v, want %v", name, pm[cfg.ID], ends)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// createTopic creates topic with partitions.
func createTopic(t *testing.T, cl *kgo.Client, topic string, partitions int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	if resp, err := req.RequestWith(context.Background(), cl); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic %s: %v %+v", topic, err, resp)
	}
}
