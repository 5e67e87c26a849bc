package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

const compactTestTable = "ods.clicks"

// compactEnv is a SQLite catalog and local warehouse holding ods.clicks,
// with a config file for floe compact.
type compactEnv struct {
	t       *testing.T
	cfgPath string
	cat     icecat.Catalog
	next    int64
}

func newCompactEnv(t *testing.T, compactionYAML string) *compactEnv {
	t.Helper()
	cfgPath, _, cat := sqliteConfig(t, "compaction:\n"+compactionYAML)
	spec := table.Spec{
		Name: compactTestTable,
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "url", Type: "string"},
		},
		Partition:  []table.PartitionField{{Column: "ts", Transform: "day"}},
		Properties: map[string]string{"write.target-file-size-bytes": "65536"},
	}
	if _, err := table.Ensure(context.Background(), cat, spec); err != nil {
		t.Fatal(err)
	}
	return &compactEnv{t: t, cfgPath: cfgPath, cat: cat}
}

// ingest commits ids next.. as commits of per rows, three days each.
func (e *compactEnv) ingest(commits int, per int64) {
	e.t.Helper()
	ctx := context.Background()
	wcfg := writer.Config{CommitInterval: time.Hour}
	wcfg.ApplyDefaults()
	w := writer.New(e.cat, wcfg, writer.Options{Logger: slog.New(slog.DiscardHandler)})
	defer w.Abort()
	pos, sc, err := w.Open(compactTestTable, "clicks")
	if err != nil {
		e.t.Fatal(err)
	}
	if pos["p"] != e.next {
		e.t.Fatalf("writer resumes at %d, want %d", pos["p"], e.next)
	}
	day := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	for range commits {
		var rows [][]any
		for i := e.next; i < e.next+per; i++ {
			rows = append(rows, []any{i, day.Add(time.Duration(i%3)*24*time.Hour + time.Duration(i)*time.Second), fmt.Sprintf("https://example.com/%d/%x", i, i*2654435761)})
		}
		rec := tabletest.Record(sc, rows...)
		e.next += per
		if err := w.Write(writer.Batch{Table: compactTestTable, Source: "clicks", Record: rec, Next: table.Positions{"p": e.next}}); err != nil {
			e.t.Fatal(err)
		}
		if err := w.Commit(ctx); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *compactEnv) load() *icetable.Table {
	e.t.Helper()
	tbl := tabletest.Load(e.t, e.cat, "ods.clicks")
	return tbl
}

// checkRows fails unless the table holds ids 0..next-1, each once, and
// its positions are at next.
func (e *compactEnv) checkRows() {
	e.t.Helper()
	tbl := e.load()
	ids := tabletest.Int64s(e.t, tbl, "id")
	if int64(len(ids)) != e.next {
		e.t.Fatalf("table holds %d rows, want %d", len(ids), e.next)
	}
	for i, id := range ids {
		if id != int64(i) {
			e.t.Fatalf("row %d is id %d: lost or duplicated rows", i, id)
		}
	}
	pm, err := table.CurrentPositions(tbl)
	if err != nil || pm["clicks"]["p"] != e.next {
		e.t.Fatalf("positions %v (%v), want p=%d", pm, err, e.next)
	}
}

// unreferenced lists files under the table location no metadata
// references, and fails the test if a referenced file is missing.
func (e *compactEnv) unreferenced() []string {
	e.t.Helper()
	tbl := e.load()
	ref := map[string]bool{}
	for _, p := range tabletest.ReferencedFiles(e.t, tbl) {
		ref[p] = true
		if _, err := os.Stat(p); err != nil {
			e.t.Errorf("referenced file %s: %v", p, err)
		}
	}
	var extra []string
	for _, p := range tabletest.StoredFiles(e.t, tbl) {
		if !ref[p] {
			extra = append(extra, p)
		}
	}
	return extra
}

func (e *compactEnv) floe(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCompactCommand(t *testing.T) {
	e := newCompactEnv(t, "  min-input-files: 3\n")
	e.ingest(12, 90)

	code, out, errOut := e.floe("compact", "-config", e.cfgPath, "-dry-run")
	if code != 0 || !strings.Contains(out, "ods.clicks: 3 groups from 36 candidate files; at most 12 files per partition") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	before := e.load().CurrentSnapshot().SnapshotID
	if after := e.load().CurrentSnapshot().SnapshotID; after != before {
		t.Fatal("the dry run committed")
	}

	code, out, errOut = e.floe("compact", "-config", e.cfgPath, "-once")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("floe compact -once:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a line per group and a summary, got:\n%s", out)
	}
	for _, l := range lines[:3] {
		if !strings.HasPrefix(l, "ods.clicks ts_day=2026-02-0") || !strings.Contains(l, ": committed: 12 files, ") || !strings.Contains(l, "→ 1 file, ") {
			t.Errorf("progress line %q", l)
		}
	}
	if !strings.HasPrefix(lines[3], "ods.clicks: 3 of 3 groups committed (0 dropped, 0 failed), 36 files → 3") {
		t.Errorf("summary line %q", lines[3])
	}
	e.checkRows()
	// The daemon's writer can resume; compacting again is harmless.
	e.ingest(2, 30)
	if code, out, errOut := e.floe("compact", "-config", e.cfgPath, "-once", "-tables", compactTestTable); code != 0 {
		t.Fatalf("second pass: exit %d\n%s\n%s", code, out, errOut)
	}
	e.checkRows()

	for _, tc := range []struct {
		name, yaml string
		args       []string
		code       int
		want       string
	}{
		{"young orphans", "  orphan-older-than: 10m\n", nil, 2, "compaction.orphan-older-than: 10m0s is below the minimum of 1h0m0s"},
		{"unknown key", "  min-input-file: 3\n", nil, 2, "field min-input-file not found"},
		{"bad table name", "", []string{"-tables", "nodot"}, 2, "compaction.tables[0]"},
		{"missing table", "", []string{"-tables", "ods.nope"}, 1, "compact table ods.nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := newCompactEnv(t, tc.yaml)
			code, out, errOut := bad.floe(append([]string{"compact", "-config", bad.cfgPath, "-once"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
}

// TestCompactSurvivesKills SIGKILLs floe compact -once subprocesses at
// crash points and at random moments: no row is ever lost or duplicated,
// the positions never move, a clean run then finishes the job, and the
// orphan cleaner leaves storage holding only referenced files.
func TestCompactSurvivesKills(t *testing.T) {
	bin := testenv.FloeBinary(t)
	e := newCompactEnv(t, "  min-input-files: 3\n  partial-progress.enabled: true\n")
	e.ingest(30, 60)
	runFloe := func(crash string, killAfter time.Duration) (killed bool, out string) {
		cmd := exec.Command(bin, "compact", "-once", "-config", e.cfgPath)
		cmd.Env = append(os.Environ(), "FLOE_CRASH="+crash)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		if killAfter > 0 {
			select {
			case err = <-done:
			case <-time.After(killAfter):
				_ = cmd.Process.Kill()
				err = <-done
			}
		} else {
			err = <-done
		}
		if err == nil {
			return false, buf.String()
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && !ee.Exited() {
			return true, buf.String() // killed by a signal
		}
		t.Fatalf("floe compact: %v\n%s", err, buf.String())
		return false, ""
	}

	kills := 0
	for i, crash := range []string{"after-rewrite:1", "before-commit:1", "after-commit:1", "after-rewrite:0.3,after-commit:0.3"} {
		killed, _ := runFloe(crash, 0)
		if killed {
			kills++
		}
		t.Logf("run %d (FLOE_CRASH=%s): killed %v; %d unreferenced files", i, crash, killed, len(e.unreferenced()))
		e.checkRows()
	}
	for i := range 4 {
		e.ingest(3, 60) // more small files for the next runs
		d := time.Duration(100+rand.IntN(1500)) * time.Millisecond
		killed, _ := runFloe("", d)
		if killed {
			kills++
		}
		t.Logf("random kill %d after %s: killed %v", i, d, killed)
		e.checkRows()
	}
	if kills < 3 {
		t.Errorf("only %d runs were killed", kills)
	}

	killed, out := runFloe("", 0)
	if killed {
		t.Fatal("the clean run was killed")
	}
	t.Logf("clean run:\n%s", out)
	e.checkRows()
	leftovers := e.unreferenced()
	t.Logf("%d files left by the crashes", len(leftovers))

	zero := time.Duration(0)
	off := false
	c, err := compaction.New(e.cat, compaction.Config{ExpireSnapshots: &off, RewriteManifests: &off, MinInputFiles: 1000},
		compaction.Options{Logger: slog.New(slog.DiscardHandler), TestOrphanOlderThan: &zero})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Table(context.Background(), compactTestTable)
	if err != nil {
		t.Fatal(err)
	}
	if extra := e.unreferenced(); len(extra) > 0 {
		t.Fatalf("after removing %d orphans, unreferenced files remain: %v", rep.OrphansRemoved, extra)
	}
	if rep.OrphansRemoved < len(leftovers) {
		t.Errorf("removed %d orphans of %d leftovers", rep.OrphansRemoved, len(leftovers))
	}
	e.checkRows()
}
