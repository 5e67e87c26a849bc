package compaction_test

import (
	"context"
	"iter"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
)

// metricValue sums the samples of a metric family whose labels include
// the given ones.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	found := false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := true
			for k, v := range labels {
				ok := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						ok = true
					}
				}
				match = match && ok
			}
			if !match {
				continue
			}
			found = true
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				sum += m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				sum += m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum, found
}

// TestDaemonKeepsGoing runs the daemon over a real table and one that does
// not exist: the missing table's failure is counted by class on every pass
// and never stops the daemon, which returns nil once its context ends.
func TestDaemonKeepsGoing(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	ensure(t, cat, spec())
	n := ingest(t, cat, 0, 10, 100)
	reg := prometheus.NewRegistry()
	c := newCompactor(t, cat, compaction.Config{Interval: time.Second, Tables: []string{tableName, "ods.missing"}}, compaction.Options{Registerer: reg})
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v, want nil at shutdown", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if v, _ := metricValue(t, reg, "floe_compaction_errors_total", map[string]string{"table": "ods.missing", "class": compaction.ClassNotFound}); v < 2 {
		t.Errorf("not-found errors counted %v times, want one per pass (at least 2)", v)
	}
	for _, name := range []string{
		"floe_compaction_files_rewritten_total", "floe_compaction_bytes_rewritten_total",
		"floe_compaction_conflicts_total", "floe_compaction_duration_seconds", "floe_compaction_files_per_partition",
	} {
		if _, ok := metricValue(t, reg, name, map[string]string{"table": tableName}); !ok {
			t.Errorf("metric %s not exported", name)
		}
	}
	if v, _ := metricValue(t, reg, "floe_compaction_groups_total", map[string]string{"table": tableName, "result": compaction.ResultCommitted}); v != 3 {
		t.Errorf("groups committed: %v, want 3", v)
	}
	if v, _ := metricValue(t, reg, "floe_compaction_files_per_partition", map[string]string{"table": tableName}); v != 1 {
		t.Errorf("files per partition gauge: %v, want 1", v)
	}
	tabletest.CheckIDs(t, readIDs(t, load(t, cat)), n)
}

// TestTablesDefaultToTheCatalog compacts every table of the catalog when
// compaction.tables is empty, nested namespaces included.
func TestTablesDefaultToTheCatalog(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	ensure(t, cat, spec())
	other := spec()
	other.Name = "raw.eu.clicks"
	ensure(t, cat, other)
	ingest(t, cat, 0, 6, 60)
	c := newCompactor(t, cat, compaction.Config{}, compaction.Options{})
	rep, err := c.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tr := range rep.Tables {
		names = append(names, tr.Table)
	}
	if !slices.Equal(names, []string{tableName, "raw.eu.clicks"}) {
		t.Errorf("pass covered %v", names)
	}
}

// TestSortStrategy rewrites with strategy sort: each output file holds its
// rows in the table's sort order (id), although the inputs interleave.
func TestSortStrategy(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	ensure(t, cat, spec())
	// Commits alternate between low and high ids, so concatenating the
	// inputs is not sorted.
	w := newWriter(t, cat)
	_, sc, err := w.Open(tableName, "src")
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(8) {
		from := (i%2)*100000 + i*50
		if err := w.Write(icetableBatch(sc, from, from+50, i)); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c := newCompactor(t, cat, compaction.Config{Strategy: compaction.StrategySort}, compaction.Options{})
	rep, err := c.Table(ctx, tableName)
	if err != nil || rep.Committed != 3 {
		t.Fatalf("sort pass: %+v, %v", rep, err)
	}
	tbl := load(t, cat)
	scan := tbl.Scan(icetable.WithSelectedFields("id"))
	tasks, err := scan.PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		_, recs, err := scan.ReadTasks(ctx, []icetable.FileScanTask{task})
		if err != nil {
			t.Fatal(err)
		}
		if ids := collectIDs(t, recs); !slices.IsSorted(ids) {
			t.Errorf("file %s is not sorted by id", task.File.FilePath())
		}
	}
}

// collectIDs drains recs, whose first column is the id, and returns the
// ids in their order.
func collectIDs(t testing.TB, recs iter.Seq2[arrow.RecordBatch, error]) []int64 {
	t.Helper()
	var ids []int64
	for rec, err := range recs {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.Column(0).(*array.Int64).Int64Values()...)
		rec.Release()
	}
	return ids
}
