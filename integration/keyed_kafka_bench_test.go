package integration

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/table"
)

// BenchmarkKeyedScaleKafka is issue 17's must-show for keyed tables at
// scale fed by a Kafka CDC topic in mode upsert, run by `make
// bench-keyed-kafka` (never by CI: it needs FLOE_BENCH_KEYED_KAFKA=1). It
// takes the sizes of BenchmarkKeyedScale (FLOE_BENCH_KEYED_ROWS, default
// 10M, with a 1M-key baseline unless FLOE_BENCH_KEYED_BASELINE=0;
// FLOE_BENCH_KEYED_MINUTES, 10; FLOE_BENCH_KEYED_RATE, 500/s) and, for
// each size:
//
//   - produces the initial keys as Debezium snapshot reads (op r, ~140
//     bytes each, Kafka key {"id": N} so a key's changes stay in one of
//     the topic's 4 partitions, lz4-compressed batches, as a Debezium
//     connector's producer sends them) to a new topic, then starts `floe
//     ingest` (default config, 2 s commits, one upsert route; the group
//     member is static, instance-id, as a StatefulSet would run it, so a
//     restart does not wait out the session timeout) and the `floe
//     compact` daemon, and reports the load's wall and CPU seconds and
//     RSS;
//   - produces RATE single-row changes/s to random keys for MINUTES (op u
//     with before and after; 1 % deletes with their tombstone, and a
//     deleted key drawn again is re-inserted, op c), sampling ingest's RSS
//     and the table's data files each second: the same figures as
//     BenchmarkKeyedScale (steady and peak RSS, CPU-s per 10k changes and
//     its ratio to the 1M-key run, compaction snapshots, data and delete
//     files);
//   - restart until visible: SIGKILL, start again, produce one change, and
//     time until a snapshot whose positions include it is committed; then
//     the same after a SIGTERM with the key index removed (the baseline),
//     and after a SIGKILL just after an undecodable record was committed
//     to the dead-letter table, which must hold it once at the end;
//   - the mirror check: the table read whole (iceberg-go's scan, with the
//     position deletes applied) equals, row for row, the state the
//     generator tracked — one version number per key, the row's values
//     derived from key and version. A difference fails the benchmark.
//
// The topic is deleted at the end. FLOE_BENCH_KEYED_DIR keeps each run's
// lake and logs (FLOE_BENCH_KEYED_DEBUG=1: ingest logs at debug from its
// first start); FLOE_BENCH_KEYED_KAFKA_SKIP=1 leaves one change out of
// the tracked state, which the mirror check must report (the benchmark
// fails): the check of the check.
func BenchmarkKeyedScaleKafka(b *testing.B) {
	if os.Getenv("FLOE_BENCH_KEYED_KAFKA") != "1" {
		b.Skip("set FLOE_BENCH_KEYED_KAFKA=1 (make bench-keyed-kafka) to run the keyed-table scale benchmark over Kafka upserts")
	}
	rows := envInt(b, "FLOE_BENCH_KEYED_ROWS", 10_000_000)
	minutes := envFloat(b, "FLOE_BENCH_KEYED_MINUTES", 10)
	rate := envInt(b, "FLOE_BENCH_KEYED_RATE", 500)
	brokers := kafkaBrokers(b)
	bin := testenv.FloeBinary(b)
	sizes := []int{rows}
	if rows > 1_000_000 && os.Getenv("FLOE_BENCH_KEYED_BASELINE") != "0" {
		sizes = []int{1_000_000, rows}
	}
	var base float64
	for _, n := range sizes {
		r := runKeyedScaleKafka(b, bin, brokers, n, time.Duration(minutes*float64(time.Minute)), rate)
		if n == 1_000_000 {
			base = r.cpuPer10k
		}
		tag := fmt.Sprintf("%gM", float64(n)/1e6)
		b.ReportMetric(r.loadWall.Seconds(), tag+"-load-wall-s")
		b.ReportMetric(r.loadCPU.Seconds(), tag+"-load-cpu-s")
		b.ReportMetric(r.loadPeakRSS, tag+"-load-peak-rss-MiB")
		b.ReportMetric(r.cpuPer10k, tag+"-cpu-s/10k-updates")
		b.ReportMetric(r.steadyRSS, tag+"-steady-rss-MiB")
		b.ReportMetric(r.peakRSS, tag+"-peak-rss-MiB")
		b.ReportMetric(r.peakHWM, tag+"-peak-rss-hwm-MiB")
		b.ReportMetric(r.restart.Seconds(), tag+"-restart-visible-s")
		b.ReportMetric(r.restartRebuild.Seconds(), tag+"-restart-rebuild-visible-s")
		b.ReportMetric(r.restartDLCurrent.Seconds(), tag+"-restart-visible-after-dl-s")
		b.ReportMetric(float64(r.maxDataFiles), tag+"-max-data-files")
		b.ReportMetric(float64(r.compactions), tag+"-compactions")
		b.ReportMetric(r.maxRewriteGap.Seconds(), tag+"-max-rewrite-gap-s")
		if base > 0 {
			b.ReportMetric(r.cpuPer10k/base, tag+"-cpu-vs-1M")
		}
	}
}

type keyedKafkaResult struct {
	keyedScaleResult
	loadWall, loadCPU time.Duration
	loadPeakRSS       float64 // the largest of the samples and the high-water mark
	peakHWM           float64 // the changes' high-water mark
	compactions       int
	rewrites          int           // replace snapshots that rewrote data files, during the changes
	maxRewriteGap     time.Duration // the longest time without one, during the changes
	// restartDLCurrent is restart until visible after a SIGKILL just
	// after a dead letter was committed.
	restartDLCurrent time.Duration
}

// The benchmark's Debezium source table and Floe's mirror of it.
const (
	bkkPartitions = 4
	bkkSource     = "bkk"
	bkkTable      = "cdc.t"
	bkkEpochMs    = 1_767_225_600_000 // 2026-01-01T00:00:00Z: the row's at for version 0
)

// cdcState is the generator of the benchmark's changes and the state they
// leave: ver[id-1] is the version of key id's row, or -(version+1) when
// the key is deleted. The row of a key and version is derived from both
// (cdcRow), so 10M keys take 40 MB.
type cdcState struct {
	topic string
	ver   []int32
	live  int
	skip  bool // leave the next change out of ver (the check of the check)
}

// cdcRow is the row image of key id at version v, as Debezium renders a
// MySQL row (decimal.handling.mode=string; DATETIME as epoch ms).
func cdcRow(buf []byte, id int64, v int32) []byte {
	buf = append(buf, `{"id":`...)
	buf = strconv.AppendInt(buf, id, 10)
	buf = append(buf, `,"user_id":`...)
	buf = strconv.AppendInt(buf, id%100_000, 10)
	cents := cdcCents(id, v)
	buf = append(buf, `,"amount":"`...)
	buf = strconv.AppendInt(buf, cents/100, 10)
	buf = append(buf, '.', byte('0'+cents/10%10), byte('0'+cents%10))
	buf = append(buf, `","label":"l`...)
	buf = strconv.AppendInt(buf, id, 10)
	buf = append(buf, '.')
	buf = strconv.AppendInt(buf, int64(v), 10)
	buf = append(buf, `","at":`...)
	buf = strconv.AppendInt(buf, cdcAtMs(v), 10)
	buf = append(buf, `,"score":`...)
	buf = strconv.AppendFloat(buf, cdcScore(id, v), 'g', -1, 64)
	return append(buf, '}')
}

func cdcCents(id int64, v int32) int64 { return id%10_000 + int64(v)*100 }
func cdcAtMs(v int32) int64            { return bkkEpochMs + int64(v)*1000 }
func cdcScore(id int64, v int32) float64 {
	return float64(id%1000)/8 + float64(v)
}

func cdcLabel(id int64, v int32) string {
	return "l" + strconv.FormatInt(id, 10) + "." + strconv.FormatInt(int64(v), 10)
}

// cdcEvent renders a Debezium change event: op with its before and after
// images (nil: null; a null before is left out).
func cdcEvent(op string, before, after []byte, tsMs int64) []byte {
	b := make([]byte, 0, 48+len(before)+len(after))
	b = append(b, '{')
	if before != nil { // a snapshot read's or an insert's null before is left out
		b = append(b, `"before":`...)
		b = append(b, before...)
		b = append(b, ',')
	}
	b = append(b, `"after":`...)
	if after == nil {
		b = append(b, "null"...)
	}
	b = append(b, after...)
	b = append(b, `,"source":{"ts_ms":`...)
	b = strconv.AppendInt(b, tsMs, 10)
	b = append(b, `},"op":"`...)
	b = append(b, op...)
	return append(b, `"}`...)
}

// snapshotRead is the initial load's record of key id (version 0).
func (s *cdcState) snapshotRead(id int64) *kgo.Record {
	return &kgo.Record{Topic: s.topic, Key: debeziumKey(id), Value: cdcEvent("r", nil, cdcRow(nil, id, 0), time.Now().UnixMilli())}
}

func debeziumKey(id int64) []byte {
	k := append([]byte(`{"id":`), strconv.FormatInt(id, 10)...)
	return append(k, '}')
}

// change is the next change of key id, applied to the state: an update
// (op u), 1 in del a delete (op d and its tombstone), and for a deleted
// key its re-insert (op c). It returns the records and the change's kind.
func (s *cdcState) change(id int64, rng *mrand.Rand, del int) ([]*kgo.Record, string) {
	i := id - 1
	v := s.ver[i]
	now := time.Now().UnixMilli()
	var recs []*kgo.Record
	var kind string
	var next int32
	switch {
	case v < 0: // deleted: re-insert
		next = -v
		recs = []*kgo.Record{{Topic: s.topic, Key: debeziumKey(id), Value: cdcEvent("c", nil, cdcRow(nil, id, next), now)}}
		kind = "insert"
		s.live++
	case rng.IntN(del) == 0:
		next = -(v + 1) // deleted after version v: its re-insert is version v+1
		recs = []*kgo.Record{
			{Topic: s.topic, Key: debeziumKey(id), Value: cdcEvent("d", cdcRow(nil, id, v), nil, now)},
			{Topic: s.topic, Key: debeziumKey(id)}, // the tombstone
		}
		kind = "delete"
		s.live--
	default:
		next = v + 1
		recs = []*kgo.Record{{Topic: s.topic, Key: debeziumKey(id), Value: cdcEvent("u", cdcRow(nil, id, v), cdcRow(nil, id, next), now)}}
		kind = "update"
	}
	if s.skip && kind == "update" {
		s.skip = false
		return recs, kind // the state keeps the old version: the mirror check must see it
	}
	s.ver[i] = next
	return recs, kind
}

// kafkaOffsets tracks the next offset of every partition the producer
// wrote, from its promises.
type kafkaOffsets struct {
	mu   sync.Mutex
	next map[int32]int64
	err  error
}

func (o *kafkaOffsets) promise(r *kgo.Record, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		if o.err == nil {
			o.err = err
		}
		return
	}
	o.next[r.Partition] = max(o.next[r.Partition], r.Offset+1)
}

func (o *kafkaOffsets) snapshot() (map[int32]int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[int32]int64, len(o.next))
	for p, n := range o.next {
		out[p] = n
	}
	return out, o.err
}

// positionsReached reports whether the table's committed positions of the
// source cover next (every partition's records before next[p]).
func positionsReached(tbl *icetable.Table, topic string, next map[int32]int64) bool {
	m, err := table.CurrentPositions(tbl)
	if err != nil {
		return false
	}
	pos := m[bkkSource]
	for p, n := range next {
		if pos[topic+"/"+strconv.Itoa(int(p))] < n {
			return false
		}
	}
	return true
}

func runKeyedScaleKafka(b *testing.B, bin string, brokers []string, n int, dur time.Duration, rate int) keyedKafkaResult {
	b.Helper()
	id := kafkaRandHex(b)
	topic := "bench-keyed-" + id
	createTopic(b, brokers, topic, bkkPartitions)
	b.Cleanup(func() { deleteTopic(b, brokers, topic) })
	dir := b.TempDir()
	if keep := os.Getenv("FLOE_BENCH_KEYED_DIR"); keep != "" {
		dir = filepath.Join(keep, "kafka-"+id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	wh := catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")}
	// Ingest's metrics feed the memory sampler (memSampler): the Go heap
	// and the key index at the peak RSS.
	metricsAddr := freeAddr(b)
	cfgPath := writeFloeYAML(b, dir, map[string]any{
		"catalog":         map[string]any{"type": wh.Type, "name": wh.Name, "uri": wh.URI, "warehouse": wh.Warehouse},
		"writer":          map[string]any{"commit-interval": "2s"},
		"metrics-address": metricsAddr,
		"compaction":      map[string]any{"interval": "1m", "metrics-address": "off"},
		"tables": []any{map[string]any{
			"name": bkkTable,
			"schema": []any{
				map[string]any{"name": "id", "type": "long", "required": true},
				map[string]any{"name": "user_id", "type": "long"},
				map[string]any{"name": "amount", "type": "decimal(12,2)"},
				map[string]any{"name": "label", "type": "string"},
				map[string]any{"name": "at", "type": "timestamptz"},
				map[string]any{"name": "score", "type": "double"},
			},
			"identifier-fields": []string{"id"},
		}},
		"sources": []any{map[string]any{"type": "kafka", "kafka": map[string]any{
			"id": bkkSource, "brokers": brokers, "group": "floe-bench-keyed-" + id,
			// A static member: a restart gets its partitions back at once
			// instead of after the session timeout (10 s).
			"instance-id": "bench-keyed-0",
			"routes":      []any{map[string]any{"topics": []string{topic}, "table": bkkTable, "format": "debezium-json", "mode": "upsert"}},
		}}},
	})
	ident, err := table.ParseIdent(bkkTable)
	if err != nil {
		b.Fatal(err)
	}
	cat, err := catalog.Open(context.Background(), wh)
	if err != nil {
		b.Fatal(err)
	}
	load := func() *icetable.Table {
		tbl, err := cat.LoadTable(context.Background(), ident)
		if err != nil {
			return nil
		}
		return tbl
	}

	// The initial keys, as a Debezium connector's snapshot sends them.
	offs := &kafkaOffsets{next: map[int32]int64{}}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerBatchCompression(kgo.Lz4Compression()), kgo.ProducerLinger(10*time.Millisecond),
		kgo.MaxBufferedRecords(100_000), kgo.DefaultProduceTopic(topic))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	st := &cdcState{topic: topic, ver: make([]int32, n), live: n}
	ctx := context.Background()
	prodStart := time.Now()
	var valBytes int64
	for k := int64(1); k <= int64(n); k++ {
		r := st.snapshotRead(k)
		valBytes += int64(len(r.Value))
		cl.Produce(ctx, r, offs.promise)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	loadEnds, err := offs.snapshot()
	if err != nil {
		b.Fatalf("produce: %v", err)
	}
	b.Logf("%d keys: produced %d Debezium snapshot reads (%.0f bytes each, lz4) to %s in %s", n, n,
		float64(valBytes)/float64(n), topic, time.Since(prodStart).Round(100*time.Millisecond))

	// The load.
	ingArgs := []string{"ingest", "-config", cfgPath}
	if os.Getenv("FLOE_BENCH_KEYED_DEBUG") == "1" {
		ingArgs = append(ingArgs, "-log-level", "debug") // the keyed writer's compaction steps, in ingest.log
	}
	ing := startBenchProc(b, bin, dir, ingArgs...)
	mem := newMemSampler(metricsAddr)
	defer mem.stop()
	mem.traceTo(b, dir)
	mem.follow(ing, "load")
	var res keyedKafkaResult
	start := time.Now()
	lastSample := time.Time{}
	var loadAt procMemMiB // the sample at the load's peak
	for {
		if time.Since(lastSample) >= time.Second {
			lastSample = time.Now()
			if m := sampleProcMem(ing); m.rss >= loadAt.rss {
				loadAt = m
			}
		}
		if tbl := load(); tbl != nil && positionsReached(tbl, topic, loadEnds) {
			res.loadWall, res.loadCPU = time.Since(start), ing.cpu()
			m := sampleProcMem(ing)
			// The kernel's high-water mark catches a peak between the
			// samples; it is reset for the changes.
			res.loadPeakRSS = max(loadAt.rss, m.rss, m.hwm)
			b.Logf("%d keys: load %s wall, %.1f CPU-s, RSS %.0f MiB, peak %.0f MiB (high-water mark %.0f MiB; the largest sample "+
				"%.0f MiB: %.0f anonymous, %.0f file-backed); table: %d records, %d data files", n,
				res.loadWall.Round(100*time.Millisecond), res.loadCPU.Seconds(), m.rss, res.loadPeakRSS, m.hwm, loadAt.rss, loadAt.anon, loadAt.file,
				summaryInt(tbl, "total-records"), summaryInt(tbl, "total-data-files"))
			b.Logf("%d keys: %s", n, mem.report("load"))
			mem.follow(ing, "changes")
			resetProcHWM(ing)
			break
		}
		ing.checkAlive(b)
		if time.Since(start) > 2*time.Hour {
			b.Fatal("the load did not finish in 2h")
		}
		time.Sleep(200 * time.Millisecond)
	}
	cmp := startBenchProc(b, bin, dir, "compact", "-config", cfgPath)

	// Changes at rate/s for dur.
	rng := mrand.New(mrand.NewPCG(uint64(n), 17))
	st.skip = os.Getenv("FLOE_BENCH_KEYED_KAFKA_SKIP") == "1"
	cpu0 := ing.cpu()
	upStart := time.Now()
	var rssSum, rssN float64
	var upAt procMemMiB // the sample at the changes' peak
	updates := 0
	kinds := map[string]int{}
	tick := time.NewTicker(10 * time.Millisecond)
	for time.Since(upStart) < dur {
		<-tick.C
		want := int(time.Since(upStart).Seconds()*float64(rate)) - updates
		for range want {
			recs, kind := st.change(1+rng.Int64N(int64(n)), rng, 100)
			for _, r := range recs {
				cl.Produce(ctx, r, offs.promise)
			}
			kinds[kind]++
			updates++
		}
		if time.Since(lastSample) >= time.Second {
			lastSample = time.Now()
			ing.checkAlive(b)
			m := sampleProcMem(ing)
			r := m.rss
			if r >= upAt.rss {
				upAt = m
			}
			res.peakRSS = max(res.peakRSS, r)
			if time.Since(upStart) > dur/2 {
				rssSum += r
				rssN++
			}
			if tbl := load(); tbl != nil {
				res.maxDataFiles = max(res.maxDataFiles, int(summaryInt(tbl, "total-data-files")))
			}
		}
	}
	tick.Stop()
	upWall := time.Since(upStart)
	res.peakHWM = sampleProcMem(ing).hwm
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	ends, err := offs.snapshot()
	if err != nil {
		b.Fatalf("produce: %v", err)
	}
	// Every change committed before the CPU is read.
	waitPositions(b, load, topic, ends, 5*time.Minute, ing)
	mem.follow(nil, "restart")
	b.Logf("%d keys: %s", n, mem.report("changes"))
	cpuUp := ing.cpu() - cpu0
	res.cpuPer10k = cpuUp.Seconds() / float64(updates) * 10000
	if rssN > 0 {
		res.steadyRSS = rssSum / rssN
	}
	tbl := load()
	// Replace snapshots: data-file rewrites (they add data files) and
	// delete merges; the longest time without a rewrite commit, from the
	// start of the changes to their end, is what "commits at least once
	// per compaction interval" is measured by.
	lastRewrite := upStart.UnixMilli()
	for _, s := range tbl.Metadata().Snapshots() {
		if s.Summary == nil || s.Summary.Operation != icetable.OpReplace || s.TimestampMs < upStart.UnixMilli() {
			continue
		}
		res.compactions++
		if added, _ := strconv.Atoi(s.Summary.Properties["added-data-files"]); added > 0 && s.TimestampMs <= upStart.Add(upWall).UnixMilli() {
			res.rewrites++
			res.maxRewriteGap = max(res.maxRewriteGap, time.Duration(s.TimestampMs-lastRewrite)*time.Millisecond)
			lastRewrite = s.TimestampMs
		}
	}
	res.maxRewriteGap = max(res.maxRewriteGap, time.Duration(upStart.Add(upWall).UnixMilli()-lastRewrite)*time.Millisecond)
	b.Logf("%d keys: %d data-file rewrites committed during the changes; the longest time without one %s", n, res.rewrites, res.maxRewriteGap.Round(time.Second))
	b.Logf("%d keys: %d changes (%d updates, %d deletes, %d re-inserts) in %s (%.0f/s), all committed %s after the last: "+
		"%.2f CPU-s per 10k changes, RSS steady %.0f MiB peak %.0f MiB (high-water mark %.0f MiB; the largest sample %.0f anonymous, "+
		"%.0f file-backed); %d replace (compaction/maintenance) snapshots in %s; data files now %d (max %d), delete files %d",
		n, updates, kinds["update"], kinds["delete"], kinds["insert"], upWall.Round(time.Second), float64(updates)/upWall.Seconds(),
		(time.Since(upStart) - upWall).Round(100*time.Millisecond), res.cpuPer10k, res.steadyRSS, res.peakRSS, res.peakHWM, upAt.anon, upAt.file,
		res.compactions, upWall.Round(time.Second), summaryInt(tbl, "total-data-files"), res.maxDataFiles, summaryInt(tbl, "total-delete-files"))

	// Restart until a new change is visible (a snapshot whose positions
	// include it), after a SIGKILL with the persistent key index, then
	// after a SIGTERM with the index removed.
	restart := func(how string, prep func()) time.Duration {
		prep()
		logAt := fileSize(ing.log)
		t0 := time.Now()
		ing = startBenchProc(b, bin, dir, "ingest", "-config", cfgPath, "-log-level", "debug")
		recs, _ := st.change(1, rng, 1<<30)
		var one map[int32]int64
		for _, r := range recs {
			got, err := cl.ProduceSync(ctx, r).First()
			if err != nil {
				b.Fatalf("produce: %v", err)
			}
			one = map[int32]int64{got.Partition: got.Offset + 1}
			offs.promise(got, nil)
		}
		waitPositions(b, load, topic, one, 5*time.Minute, ing)
		took := time.Since(t0)
		var index, seek string
		if raw, err := os.ReadFile(ing.log); err == nil && int64(len(raw)) >= logAt {
			for _, l := range strings.Split(string(raw[logAt:]), "\n") {
				if strings.Contains(l, "key index validated") || strings.Contains(l, "key index built") {
					index = l
				}
				if _, parts, ok := strings.Cut(l, "fetching from the tables' positions"); ok && seek == "" {
					seek = "fetching from" + strings.TrimPrefix(parts, `" source=`+bkkSource)
				}
			}
			if os.Getenv("FLOE_BENCH_KEYED_LOG") == "1" {
				b.Logf("ingest log after the restart (%s):\n%s", how, testenv.LastLines(raw[logAt:], 60))
			}
		}
		b.Logf("%d keys: restart (%s) until a new change is visible: %s wall, %.1f CPU-s (RSS after %.0f MiB)\n  %s\n  %s", n, how,
			took.Round(100*time.Millisecond), ing.cpu().Seconds(), float64(ing.rss())/(1<<20), index, seek)
		return took
	}
	indexDir := filepath.Join(dir, "cache", "floe", "index")
	res.restart = restart("SIGKILL, persistent index", func() { ing.kill(b) })
	res.indexDisk = dirSize(indexDir)
	res.restartRebuild = restart("SIGTERM, index removed: rebuild", func() {
		ing.stop(b)
		if err := os.RemoveAll(indexDir); err != nil {
			b.Fatal(err)
		}
	})
	b.Logf("%d keys: restart until visible %.1f s with the persistent index (%.0f MiB on disk), %.1f s rebuilding: %.2fx", n,
		res.restart.Seconds(), float64(res.indexDisk)/(1<<20), res.restartRebuild.Seconds(), res.restart.Seconds()/res.restartRebuild.Seconds())
	// A dead letter just before a SIGKILL: one undecodable record, then
	// the restart; the dead-letter table must hold it exactly once at the
	// end (it is committed before the table moves past it, and the
	// restart reads from the table's positions).
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: debeziumKey(0), Value: []byte("not a change event")}).FirstErr(); err != nil {
		b.Fatalf("produce: %v", err)
	}
	dlIdent, err := table.ParseIdent("floe.dead_letters")
	if err != nil {
		b.Fatal(err)
	}
	loadDL := func() *icetable.Table {
		tbl, err := cat.LoadTable(context.Background(), dlIdent)
		if err != nil {
			return nil
		}
		return tbl
	}
	for dlWait := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if dl := loadDL(); dl != nil && summaryInt(dl, "total-records") > 0 {
			break
		}
		ing.checkAlive(b)
		if time.Since(dlWait) > 5*time.Minute {
			b.Fatal("the dead letter was not committed within 5m")
		}
	}
	res.restartDLCurrent = restart("SIGKILL, persistent index, just after a dead letter", func() { ing.kill(b) })

	// The mirror, row for row, once everything produced is committed.
	ends, err = offs.snapshot()
	if err != nil {
		b.Fatalf("produce: %v", err)
	}
	waitPositions(b, load, topic, ends, 5*time.Minute, ing)
	cmp.stop(b)
	ing.stop(b)
	if dl := loadDL(); dl == nil || summaryInt(dl, "total-records") != 1 {
		got := int64(-1)
		if dl != nil {
			got = summaryInt(dl, "total-records")
		}
		b.Fatalf("%d keys: the dead-letter table holds %d records, want the one undecodable record", n, got)
	}
	checkStart := time.Now()
	if err := checkCDCMirror(load(), st); err != nil {
		b.Fatalf("%d keys: the mirror differs from the source's state: %v", n, err)
	}
	b.Logf("%d keys: the mirror equals the source row for row: %d rows (read in %s)", n, st.live, time.Since(checkStart).Round(100*time.Millisecond))
	return res
}

// procMemMiB is a process's memory in MiB (Linux /proc): resident, its
// high-water mark, and the resident set's anonymous (the Go heap and
// runtime) and file-backed (the binary, the mapped key index) parts.
type procMemMiB struct{ rss, hwm, anon, file float64 }

func sampleProcMem(p *benchProc) procMemMiB {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return procMemMiB{}
	}
	var m procMemMiB
	for _, l := range strings.Split(string(raw), "\n") {
		name, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		mib := float64(kb) / 1024
		switch name {
		case "VmRSS":
			m.rss = mib
		case "VmHWM":
			m.hwm = mib
		case "RssAnon":
			m.anon = mib
		case "RssFile":
			m.file = mib
		}
	}
	return m
}

// resetProcHWM resets the process's resident high-water mark (clear_refs 5).
func resetProcHWM(p *benchProc) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0o600)
}

// waitPositions waits until the table's committed positions cover next,
// failing when p exits or after timeout.
func waitPositions(b *testing.B, load func() *icetable.Table, topic string, next map[int32]int64, timeout time.Duration, p *benchProc) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if tbl := load(); tbl != nil && positionsReached(tbl, topic, next) {
			return
		}
		p.checkAlive(b)
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("the table's positions did not reach %v within %s", next, timeout)
}

// checkCDCMirror reads tbl whole and compares it with st: every live key
// once, with the values of its version, and no deleted key. It returns
// up to ten differences and their count.
func checkCDCMirror(tbl *icetable.Table, st *cdcState) error {
	if tbl == nil {
		return errors.New("the table cannot be loaded")
	}
	_, recs, err := tbl.Scan().ToArrowRecords(context.Background())
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	seen := make([]bool, len(st.ver))
	var diffs []string
	bad := 0
	note := func(format string, args ...any) {
		bad++
		if len(diffs) < 10 {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
	}
	rows := 0
	for rec, err := range recs {
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		col := map[string]int{}
		for i, f := range rec.Schema().Fields() {
			col[f.Name] = i
		}
		ids, ok1 := rec.Column(col["id"]).(*array.Int64)
		users, ok2 := rec.Column(col["user_id"]).(*array.Int64)
		amounts, ok3 := rec.Column(col["amount"]).(*array.Decimal128)
		labels, ok4 := rec.Column(col["label"]).(*array.String)
		ats, ok5 := rec.Column(col["at"]).(*array.Timestamp)
		scores, ok6 := rec.Column(col["score"]).(*array.Float64)
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
			rec.Release()
			return fmt.Errorf("unexpected column types: %s", rec.Schema())
		}
		for r := range int(rec.NumRows()) {
			rows++
			id := ids.Value(r)
			if id < 1 || id > int64(len(st.ver)) {
				note("key %d: not a source key", id)
				continue
			}
			if seen[id-1] {
				note("key %d: twice", id)
				continue
			}
			seen[id-1] = true
			v := st.ver[id-1]
			if v < 0 {
				note("key %d: deleted in the source (after version %d), in the mirror as %s", id, -v-1, labels.Value(r))
				continue
			}
			if users.IsNull(r) || users.Value(r) != id%100_000 || amounts.IsNull(r) || amounts.Value(r) != decimal128.FromI64(cdcCents(id, v)) ||
				labels.IsNull(r) || labels.Value(r) != cdcLabel(id, v) || ats.IsNull(r) || int64(ats.Value(r)) != cdcAtMs(v)*1000 ||
				scores.IsNull(r) || scores.Value(r) != cdcScore(id, v) {
				note("key %d: source version %d (label %s), mirror label %s amount %s at %d score %g user_id %d", id, v, cdcLabel(id, v),
					labels.Value(r), amounts.Value(r).ToString(2), ats.Value(r), scores.Value(r), users.Value(r))
			}
		}
		rec.Release()
	}
	for i, v := range st.ver {
		if v >= 0 && !seen[i] {
			note("key %d: in the source (version %d), missing in the mirror", i+1, v)
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d differences (%d rows read, %d source rows), the first:\n  %s", bad, rows, st.live, strings.Join(diffs, "\n  "))
	}
	return nil
}

// deleteTopic deletes topic; a failure is logged (the broker keeps it).
func deleteTopic(b *testing.B, brokers []string, topic string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Logf("delete topic %s: %v", topic, err)
		return
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteTopicsRequest()
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.Topic = &topic
	req.Topics = append(req.Topics, rt)
	req.TopicNames = append(req.TopicNames, topic)
	req.TimeoutMillis = 30000
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	switch {
	case err != nil:
		b.Logf("delete topic %s: %v", topic, err)
	case len(resp.Topics) > 0 && resp.Topics[0].ErrorCode != 0:
		b.Logf("delete topic %s: error code %d", topic, resp.Topics[0].ErrorCode)
	}
}
