package writer_test

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// BenchmarkKeyedCompaction is the keyed table at scale, scaled down: a
// table of FLOE_BENCH_KEYED_ROWS rows (default 200,000; the case users
// measured is 5M), then 60 commits of 1,000 uniformly spread updates
// each, with the table's own compaction on (8 MiB target files). It
// reports the update rate, the live data files left, the compaction steps
// committed and the index builds (1: the one at open).
func BenchmarkKeyedCompaction(b *testing.B) {
	rows := int64(200_000)
	if v, err := strconv.ParseInt(os.Getenv("FLOE_BENCH_KEYED_ROWS"), 10, 64); err == nil && v > 0 {
		rows = v
	}
	const commits, perCommit = 60, 1000
	for range b.N {
		b.StopTimer()
		ctx := context.Background()
		cat := tabletest.OpenSQLite(b)
		reg := prometheus.NewRegistry()
		cfg := writer.DefaultConfig()
		cfg.CommitInterval = time.Hour
		w := writer.New(cat, cfg, writer.Options{Metrics: writer.NewMetrics(reg)})
		spec := keyedSpec()
		spec.Properties["write.target-file-size-bytes"] = strconv.Itoa(8 << 20)
		kt, err := w.OpenKeyed(ctx, spec, "src", writer.KeyedOptions{})
		if err != nil {
			b.Fatal(err)
		}
		pos := int64(0)
		apply := func(ids []int64) {
			ops := make([]writer.Op, len(ids))
			rs := make([]keyedRow, len(ids))
			for i, id := range ids {
				ops[i], rs[i] = writer.OpUpsert, keyedRow{v: "v" + strconv.FormatInt(id+pos, 36), n: int32(pos)}
			}
			pos++
			if err := kt.Apply(writer.Changes{Record: keyedRecord(kt.Schema(), ids, ops, rs), Ops: ops, Next: table.Positions{"p": pos}}); err != nil {
				b.Fatal(err)
			}
			if err := kt.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		}
		for from := int64(0); from < rows; from += 50_000 {
			var ids []int64
			for id := from; id < min(from+50_000, rows); id++ {
				ids = append(ids, id)
			}
			apply(ids)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		b.StartTimer()
		start := time.Now()
		for range commits {
			ids := make([]int64, perCommit)
			for i := range ids {
				ids[i] = rng.Int64N(rows)
			}
			apply(ids)
		}
		took := time.Since(start)
		b.StopTimer()
		if err := kt.Close(ctx); err != nil {
			b.Fatal(err)
		}
		w.Abort()
		tbl := tabletest.Load(b, cat, spec.Name)
		b.ReportMetric(float64(commits*perCommit)/took.Seconds(), "updates/s")
		b.ReportMetric(float64(liveDataFiles(b, tbl)), "data-files")
		b.ReportMetric(metricValue(b, reg, "floe_writer_keyed_compactions_total", map[string]string{"result": writer.CompactionCommitted}), "compactions")
		b.ReportMetric(metricValue(b, reg, "floe_writer_keyed_index_rebuilds_total", nil), "index-builds")
		b.StartTimer()
	}
}
