package compaction_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
)

// TestDaemonHaltsABrokenTable runs the daemon over a healthy table and a
// broken one: the broken table's job halts after its first pass (gauge
// set, no retry), while the healthy table is compacted and the daemon
// keeps running until its context ends.
func TestDaemonHaltsABrokenTable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		class string
		// breakTable creates ods.broken, broken.
		breakTable func(t *testing.T, cat icecat.Catalog)
	}{
		{"invalid table property", compaction.ClassConfig, func(t *testing.T, cat icecat.Catalog) {
			s := spec()
			s.Name = "ods.broken"
			s.Properties = map[string]string{"write.target-file-size-bytes": "lots"}
			ensure(t, cat, s)
		}},
		{"metadata that does not parse", compaction.ClassCorrupt, func(t *testing.T, cat icecat.Catalog) {
			s := spec()
			s.Name = "ods.broken"
			ensure(t, cat, s)
			tbl, err := cat.LoadTable(context.Background(), []string{"ods", "broken"})
			if err != nil {
				t.Fatal(err)
			}
			path := strings.TrimPrefix(strings.TrimPrefix(tbl.MetadataLocation(), "file://"), "file:")
			if err := os.WriteFile(path, []byte(`{"format-version": 2, "table-uuid": `), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cat := tabletest.OpenSQLite(t)
			ensure(t, cat, spec())
			n := ingest(t, cat, 0, 10, 100)
			tc.breakTable(t, cat)
			reg := prometheus.NewRegistry()
			c := newCompactor(t, cat, compaction.Config{Interval: time.Second, Tables: []string{"ods.broken", tableName}}, compaction.Options{Registerer: reg})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			halted := map[string]string{"name": compaction.TableJob("ods.broken")}
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				h, _ := metricValue(t, reg, "floe_daemon_job_halted", halted)
				g, _ := metricValue(t, reg, "floe_compaction_groups_total", map[string]string{"table": tableName, "result": compaction.ResultCommitted})
				if h == 1 && g == 3 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 30s: halted gauge %v, groups committed %v", h, g)
				}
			}
			// Another interval: the healthy table goes on, the broken one
			// stays halted and is not retried.
			// Wait for the healthy table's next pass (by the metric, not a
			// fixed sleep: a loaded machine may delay a 1 s interval).
			errsBefore, _ := metricValue(t, reg, "floe_compaction_errors_total", map[string]string{"table": "ods.broken"})
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if v, _ := metricValue(t, reg, "floe_compaction_duration_seconds", map[string]string{"table": tableName, "step": "rewrite"}); v >= 2 {
					break
				}
				if time.Now().After(deadline) {
					break // reported below
				}
			}
			time.Sleep(1500 * time.Millisecond) // an interval in which the halted table could be retried
			select {
			case err := <-done:
				t.Fatalf("Run returned %v while its context was live", err)
			default:
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run returned %v, want nil at shutdown", err)
			}
			if v, _ := metricValue(t, reg, "floe_compaction_errors_total", map[string]string{"table": "ods.broken", "class": tc.class}); v < 1 {
				t.Errorf("errors of class %s counted %v times", tc.class, v)
			}
			if v, _ := metricValue(t, reg, "floe_compaction_errors_total", map[string]string{"table": "ods.broken"}); v != errsBefore {
				t.Errorf("the halted table was retried: %v errors, %v before", v, errsBefore)
			}
			if v, ok := metricValue(t, reg, "floe_daemon_restarts_total", map[string]string{"name": compaction.TableJob("ods.broken")}); ok && v != 0 {
				t.Errorf("the halted table's job restarted %v times", v)
			}
			if v, _ := metricValue(t, reg, "floe_daemon_job_halted", map[string]string{"name": compaction.TableJob(tableName)}); v != 0 {
				t.Errorf("the healthy table's job halted")
			}
			if v, _ := metricValue(t, reg, "floe_compaction_duration_seconds", map[string]string{"table": tableName, "step": "rewrite"}); v < 2 {
				t.Errorf("the healthy table had %v rewrite steps, want a pass per interval (at least 2)", v)
			}
			tabletest.CheckIDs(t, readIDs(t, load(t, cat)), n)
		})
	}
}

// TestDaemonDiscoversTables: with compaction.tables empty, the daemon
// compacts the tables the catalog lists, including one created after it
// started.
func TestDaemonDiscoversTables(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	ensure(t, cat, spec())
	ingest(t, cat, 0, 10, 100)
	reg := prometheus.NewRegistry()
	c := newCompactor(t, cat, compaction.Config{Interval: time.Second}, compaction.Options{Registerer: reg})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	late := spec()
	late.Name = "raw.late"
	time.Sleep(200 * time.Millisecond)
	if _, err := table.Ensure(ctx, cat, late); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, first := metricValue(t, reg, "floe_compaction_duration_seconds", map[string]string{"table": tableName})
		_, second := metricValue(t, reg, "floe_compaction_duration_seconds", map[string]string{"table": "raw.late"})
		if first && second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %s compacted %v, raw.late %v", tableName, first, second)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
}
