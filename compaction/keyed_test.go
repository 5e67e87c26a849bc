package compaction_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/writer"
)

// TestPlanKeyedGroup: one group per step, smallest first, bounded by the
// target, stopping at a file more than twice the group so far; small
// delete-laden files wait for company, large ones go alone.
func TestPlanKeyedGroup(t *testing.T) {
	o := compaction.PlanOptions{
		TargetFileSizeBytes: 1000, MinFileSizeBytes: 750, MaxFileSizeBytes: 1800,
		MinInputFiles: 3, DeleteFileThreshold: 1 << 30, DeleteRatioThreshold: 0.3,
	}
	f := func(path string, size, rows, deleted int64) compaction.FileInfo {
		return compaction.FileInfo{Path: path, SizeBytes: size, Records: rows, DeletedRecords: deleted}
	}
	cases := []struct {
		name   string
		files  []compaction.FileInfo
		want   []string
		reason string
	}{
		{name: "too few small files", files: []compaction.FileInfo{f("a", 10, 1, 0), f("b", 10, 1, 0)}},
		{name: "small files", files: []compaction.FileInfo{f("c", 12, 1, 0), f("a", 10, 1, 0), f("b", 11, 1, 0), f("big", 900, 1, 0)},
			want: []string{"a", "b", "c"}, reason: compaction.ReasonSmallFiles},
		{
			// 300 > 2 × (10+10+10): the large file waits until what joins
			// it is at least half its size.
			name:  "a larger file waits",
			files: []compaction.FileInfo{f("a", 10, 1, 0), f("b", 10, 1, 0), f("c", 10, 1, 0), f("d", 300, 1, 0)},
			want:  []string{"a", "b", "c"}, reason: compaction.ReasonSmallFiles,
		},
		{
			name:  "a larger file joins",
			files: []compaction.FileInfo{f("a", 50, 1, 0), f("b", 50, 1, 0), f("c", 50, 1, 0), f("d", 300, 1, 0)},
			want:  []string{"a", "b", "c", "d"}, reason: compaction.ReasonSmallFiles,
		},
		{
			name:  "bounded by the target",
			files: []compaction.FileInfo{f("a", 300, 1, 0), f("b", 300, 1, 0), f("c", 300, 1, 0), f("d", 300, 1, 0)},
			want:  []string{"a", "b", "c"}, reason: compaction.ReasonSmallFiles,
		},
		{name: "a small delete-laden file waits", files: []compaction.FileInfo{f("a", 10, 10, 9), f("b", 10, 10, 0)}},
		{
			name:  "a large delete-laden file goes alone",
			files: []compaction.FileInfo{f("a", 10, 10, 0), f("big", 1500, 100, 40), f("ok", 1500, 100, 10)},
			want:  []string{"big"}, reason: compaction.ReasonDeletes,
		},
		{
			name:  "deletes in a group of small files",
			files: []compaction.FileInfo{f("a", 10, 10, 5), f("b", 10, 10, 0), f("c", 10, 10, 0)},
			want:  []string{"a", "b", "c"}, reason: compaction.ReasonDeletes,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, files := range [][]compaction.FileInfo{tc.files, reversed(tc.files)} {
				g := compaction.PlanKeyedGroup(files, o)
				var got []string
				reason := ""
				if g != nil {
					for _, f := range g.Files {
						got = append(got, f.Path)
					}
					reason = g.Reason
				}
				slices.Sort(got)
				if !slices.Equal(got, tc.want) || reason != tc.reason {
					t.Errorf("group %v (%s), want %v (%s)", got, reason, tc.want, tc.reason)
				}
			}
		})
	}
}

func reversed[T any](s []T) []T {
	s = slices.Clone(s)
	slices.Reverse(s)
	return s
}

// TestDaemonSkipsWriterCompactedTables: the daemon rewrites no data file
// of a table whose writer compacts it (floe.compaction.owner=writer), and
// does rewrite tables with any other owner or none.
func TestDaemonSkipsWriterCompactedTables(t *testing.T) {
	cases := []struct {
		name    string
		owner   string // "" leaves the property unset
		skipped bool
	}{
		{name: "owner writer", owner: compaction.OwnerWriter, skipped: true},
		{name: "another owner", owner: "spark"},
		{name: "no owner"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cat := tabletest.OpenSQLite(t)
			s := spec()
			if tc.owner != "" {
				s.Properties[compaction.PropCompactionOwner] = tc.owner
			}
			ensure(t, cat, s)
			n := ingest(t, cat, 0, 12, 300)
			before := filesPerPartition(t, load(t, cat))
			reg := prometheus.NewRegistry()
			c := newCompactor(t, cat, compaction.Config{}, compaction.Options{Registerer: reg})
			plan, err := c.PlanTable(ctx, tableName)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := c.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			after := filesPerPartition(t, load(t, cat))
			committed, _ := metricValue(t, reg, "floe_compaction_groups_total", map[string]string{"table": tableName, "result": compaction.ResultCommitted})
			t.Logf("plan %d groups (owner %q); pass %+v; files per partition %v → %v", len(plan.Groups), plan.Owner, rep.Tables, before, after)
			if tc.skipped {
				if len(plan.Groups) != 0 || plan.Owner != compaction.OwnerWriter {
					t.Errorf("dry run planned %d groups, owner %q", len(plan.Groups), plan.Owner)
				}
				if rep.Tables[0].Groups != 0 || committed != 0 || !maps.Equal(before, after) {
					t.Errorf("the daemon rewrote a writer-compacted table: %d groups, %v committed, files %v → %v", rep.Tables[0].Groups, committed, before, after)
				}
			} else if rep.Tables[0].Committed == 0 || committed == 0 || maxOf(after) >= maxOf(before) {
				t.Errorf("the daemon did not rewrite: %+v, files %v → %v", rep.Tables[0], before, after)
			}
			tabletest.CheckIDs(t, readIDs(t, load(t, cat)), n)
		})
	}
}

// TestDaemonBesideKeyedWriter: a keyed writer marks its table as its own
// to compact; a daemon pass over it (manifests merged, no rewrite) does
// not make the writer rebuild its index: its next commits land.
func TestDaemonBesideKeyedWriter(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	w := newWriter(t, cat)
	kt, err := w.OpenKeyed(ctx, kvSpec(), "src", writer.KeyedOptions{Compaction: compaction.KeyedConfig{MinInputFiles: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	defer kt.Abort()
	sc := kt.Schema()
	want := map[int64]string{}
	next := int64(0)
	apply := func(ids []int64, op writer.Op, val string) {
		t.Helper()
		next++
		applyKV(t, kt, sc, next, ids, op, val)
		for _, id := range ids {
			if op == writer.OpDelete {
				delete(want, id)
			} else {
				want[id] = fmt.Sprintf("%s-%d", val, id)
			}
		}
	}
	for i := range int64(15) {
		apply(idRange(i*10, i*10+10), writer.OpUpsert, "a")
		apply([]int64{i * 10}, writer.OpDelete, "")
	}
	reg := prometheus.NewRegistry()
	c := newCompactor(t, cat, compaction.Config{}, compaction.Options{Registerer: reg})
	rep, err := c.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("daemon pass: %+v", rep.Tables)
	if tr := rep.Tables[0]; tr.Groups != 0 || tr.FilesRewritten != 0 {
		t.Errorf("the daemon rewrote the keyed table: %+v", tr)
	}
	// The writer goes on without ErrKeyIndexStale.
	apply(idRange(3, 8), writer.OpUpsert, "b")
	apply([]int64{11, 12}, writer.OpDelete, "")
	if got := scanKV(t, cat); !maps.Equal(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	if err := kt.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestDroppedGroupsFailRunOnce: a pass that drops file groups (another
// compactor replaced their inputs) logs each at WARN with the reason,
// counts it, and RunOnce fails with ErrGroupsDropped and a summary, so
// that floe compact -once exits non-zero.
func TestDroppedGroupsFailRunOnce(t *testing.T) {
	bothProgressModes(t, func(t *testing.T, partial bool, cat icecat.Catalog, n int64, other *compaction.Compactor) {
		ctx := context.Background()
		var logs bytes.Buffer
		reg := prometheus.NewRegistry()
		first := newCompactor(t, cat, compaction.Config{PartialProgress: partial, Tables: []string{tableName}}, compaction.Options{
			Logger:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
			Registerer: reg,
			Hooks:      compaction.Hooks{AfterRewrite: otherFirst(t, other)},
		})
		rep, err := first.RunOnce(ctx)
		t.Logf("RunOnce: %v", err)
		if !errors.Is(err, compaction.ErrGroupsDropped) || !strings.Contains(err.Error(), "3 file groups not rewritten (ods.events: 3 of 3)") {
			t.Errorf("RunOnce error %v, want ErrGroupsDropped with a summary", err)
		}
		if rep.Tables[0].Dropped != 3 {
			t.Errorf("report %+v, want 3 groups dropped", rep.Tables[0])
		}
		if v, _ := metricValue(t, reg, "floe_compaction_groups_total", map[string]string{"table": tableName, "result": compaction.ResultDropped}); v != 3 {
			t.Errorf("dropped groups metric %v, want 3", v)
		}
		warns := strings.Count(logs.String(), `level=WARN msg="compaction group dropped`)
		if warns != 3 || !strings.Contains(logs.String(), "reason=") {
			t.Errorf("%d WARN lines for dropped groups, want 3 with a reason:\n%s", warns, logs.String())
		}
		tabletest.CheckIDs(t, readIDs(t, load(t, cat)), n)
	})
}

// TestPlanKeyedGroupTinyFile: a tiny file (a commit of a few rows) does
// not stop a size tier. Files of 2.2, 4.6, 4.9, 9.8 and 91 KiB, seen in a
// partition of the 10M-row benchmark, formed no group (4.6 > 2 × 2.2) and
// every later commit's file waited behind them; below
// TargetFileSizeBytes/1024 the size ratio no longer applies.
func TestPlanKeyedGroupTinyFile(t *testing.T) {
	o := compaction.PlanOptions{
		TargetFileSizeBytes: 512 << 20, MinFileSizeBytes: 384 << 20, MaxFileSizeBytes: 920 << 20,
		MinInputFiles: 5, DeleteFileThreshold: 1 << 30, DeleteRatioThreshold: 0.3,
	}
	var files []compaction.FileInfo
	for i, size := range []int64{2253, 4710, 5017, 10035, 93184} {
		files = append(files, compaction.FileInfo{Path: fmt.Sprint("f", i), SizeBytes: size, Records: size / 30})
	}
	g := compaction.PlanKeyedGroup(files, o)
	if g == nil || len(g.Files) != 5 {
		t.Fatalf("group %+v, want all 5 files", g)
	}
	// Above the floor the ratio holds: a 2 MiB file does not join 5 small
	// ones.
	files = append(files, compaction.FileInfo{Path: "big", SizeBytes: 2 << 20, Records: 1})
	if g := compaction.PlanKeyedGroup(files, o); g == nil || slices.ContainsFunc(g.Files, func(f compaction.FileInfo) bool { return f.Path == "big" }) {
		t.Fatalf("group %+v, want the 5 small files without the 2 MiB one", g)
	}
}
