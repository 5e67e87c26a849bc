package kafka

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// TestUpsertPartitioned mirrors a Canal topic into a partitioned upsert
// table — by truncate[2](status), which updates change, so rows move
// between partitions, and bucket[3](id) — through a stop and a restart;
// the table ends as the script leaves it, every key once, and every data
// file holds only rows of its partition. On the broker FLOE_KAFKA_BROKERS
// names when it is set, else on kfake.
func TestUpsertPartitioned(t *testing.T) {
	const parts = 3
	topic := "orders"
	var brokers []string
	if v := os.Getenv(EnvBrokers); v != "" && !testing.Short() {
		testenv.KafkaLock(t, false)
		brokers = strings.Split(v, ",")
		topic = fmt.Sprintf("floe-upsert-part-%d", time.Now().UnixNano())
		createTopicOn(t, brokers, topic, parts)
	} else {
		brokers = newCluster(t, parts, topic).ListenAddrs()
	}
	cat := openCatalog(t)
	spec := ordersSpec("ods.orders")
	spec.Partition = []table.PartitionField{{Column: "status", Transform: "truncate[2]"}, {Column: "id", Transform: "bucket[3]"}}
	cfg := testConfig(brokers, Route{Topics: []string{topic}, Table: "ods.orders", Format: FormatCanal, Mode: ModeUpsert})
	cfg.Group = "floe-" + topic
	cfg.BatchRecords = 100
	prepare(t, cat, cfg, spec)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	script := append(theScript(), randomScript(rng, 2000, 150, parts)...)
	// Statuses s<n> fall in ten truncate[2] partitions; updates move rows.
	want := applyScript(script)
	recs := encodeChanges(FormatCanal, topic, parts, script)
	half := len(recs) / 2
	wcfg := writer.Config{CommitInterval: 200 * time.Millisecond, MemoryBudget: 64 << 20}

	produce(t, brokers, recs[:half])
	p := startProc(t, "first", cat, cfg, wcfg, 0)
	time.Sleep(1500 * time.Millisecond)
	p.stop()
	produce(t, brokers, recs[half:])
	p = startProc(t, "second", cat, cfg, wcfg, 0)
	waitFor(t, 90*time.Second, "the script's final state", func() bool {
		return fmtOrders(scanOrders(t, cat, "ods.orders")) == fmtOrders(want)
	})
	p.stop()
	if got := fmtOrders(scanOrders(t, cat, "ods.orders")); got != fmtOrders(want) {
		t.Fatalf("table: got %s\nwant %s", got, fmtOrders(want))
	}

	// Every live data file's partition is that of each of its rows, and
	// the delete files a scan applies to it are in its partition.
	ctx := context.Background()
	tbl := tabletest.Load(t, cat, "ods.orders")
	if tbl.Spec().IsUnpartitioned() {
		t.Fatal("the table is not partitioned")
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	statusTr, bucketTr := iceberg.TruncateTransform{Width: 2}, iceberg.BucketTransform{NumBuckets: 3}
	seen := map[string]bool{}
	for _, task := range tasks {
		df := task.File
		vals := df.Partition()
		seen[fmt.Sprint(vals[1000])] = true
		for _, d := range task.DeleteFiles {
			if fmt.Sprint(d.Partition()) != fmt.Sprint(vals) {
				t.Errorf("delete file %s of partition %v applies to %s of partition %v", d.FilePath(), d.Partition(), df.FilePath(), vals)
			}
		}
		one := task
		one.DeleteFiles = nil
		for _, r := range scanTask(t, tbl, one) {
			var st iceberg.Optional[iceberg.Literal]
			if s, ok := r["status"].(string); ok {
				st = iceberg.Optional[iceberg.Literal]{Valid: true, Val: iceberg.NewLiteral(s)}
			}
			wantSt := "<nil>"
			if res := statusTr.Apply(st); res.Valid {
				wantSt = fmt.Sprint(res.Val.Any())
			}
			b := bucketTr.Apply(iceberg.Optional[iceberg.Literal]{Valid: true, Val: iceberg.NewLiteral(r["id"].(int64))})
			if fmt.Sprint(vals[1000]) != wantSt || fmt.Sprint(vals[1001]) != fmt.Sprint(b.Val.Any()) {
				t.Fatalf("row %v in data file %s of partition %v", r, df.FilePath(), vals)
			}
		}
	}
	if len(seen) < 5 {
		t.Errorf("rows in %d status partitions, want several", len(seen))
	}
	t.Logf("%d records, %d keys at the end, %d data files in %d status partitions", len(recs), len(want), len(tasks), len(seen))
}

// scanTask reads the rows of one scan task.
func scanTask(t testing.TB, tbl *icetable.Table, task icetable.FileScanTask) []map[string]any {
	t.Helper()
	_, recs, err := tbl.Scan().ReadTasks(context.Background(), []icetable.FileScanTask{task})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for rec, err := range recs {
		if err != nil {
			t.Fatal(err)
		}
		for i := range int(rec.NumRows()) {
			row := map[string]any{}
			for j, f := range rec.Schema().Fields() {
				row[f.Name] = tabletest.Cell(rec.Column(j), i)
			}
			out = append(out, row)
		}
		rec.Release()
	}
	return out
}
