package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// readEnv is a catalog with the table ods.events (id, ts, name; by day)
// and a config file naming it, and a writer appending to it.
type readEnv struct {
	t       *testing.T
	cfgPath string
	cat     icecat.Catalog
	w       *writer.Writer
	sc      *arrow.Schema
	next    int64
}

func newReadEnv(t *testing.T) *readEnv {
	t.Helper()
	cfgPath, _, cat := sqliteConfig(t, "")
	spec := table.Spec{
		Name: "ods.events",
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "name", Type: "string"},
		},
		Partition: []table.PartitionField{{Column: "ts", Transform: "day"}},
	}
	if _, err := table.Ensure(context.Background(), cat, spec); err != nil {
		t.Fatal(err)
	}
	wcfg := writer.Config{CommitInterval: time.Hour}
	wcfg.ApplyDefaults()
	w := writer.New(cat, wcfg, writer.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(w.Abort)
	_, sc, err := w.Open("ods.events", "test")
	if err != nil {
		t.Fatal(err)
	}
	return &readEnv{t: t, cfgPath: cfgPath, cat: cat, w: w, sc: sc}
}

var readDay0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// appendRows commits ids next..next+n-1 as one snapshot; row i is on day
// i%3 and is named n<i>.
func (e *readEnv) appendRows(n int64) int64 {
	e.t.Helper()
	var rows [][]any
	for i := e.next; i < e.next+n; i++ {
		rows = append(rows, []any{i, readDay0.Add(time.Duration(i%3)*24*time.Hour + time.Duration(i)*time.Millisecond), fmt.Sprintf("n%d", i)})
	}
	rec := tabletest.Record(e.sc, rows...)
	e.next += n
	if err := e.w.Write(writer.Batch{Table: "ods.events", Source: "test", Record: rec, Next: table.Positions{"p": e.next}}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.w.Commit(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return e.current()
}

func (e *readEnv) current() int64 {
	e.t.Helper()
	tbl := tabletest.Load(e.t, e.cat, "ods.events")
	return reader.Current(tbl)
}

// floe runs the command in-process.
func (e *readEnv) floe(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// jsonIDs parses jsonl output and returns the ids in output order.
func jsonIDs(t *testing.T, out string) []int64 {
	t.Helper()
	var ids []int64
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var m struct {
			ID *int64 `json:"id"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.ID == nil {
			t.Fatalf("bad jsonl line %q: %v", line, err)
		}
		ids = append(ids, *m.ID)
	}
	return ids
}

func sortedIDs(ids []int64) []int64 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

func TestReadCommand(t *testing.T) {
	e := newReadEnv(t)
	s1 := e.appendRows(10)
	s2 := e.appendRows(10)
	s3 := e.appendRows(10)
	cfg := "-config=" + e.cfgPath

	ok := func(args ...string) string {
		t.Helper()
		code, out, errs := e.floe(append([]string{"read", cfg}, args...)...)
		if code != 0 {
			t.Fatalf("floe read %v: exit %d: %s", args, code, errs)
		}
		return out
	}
	if got := sortedIDs(jsonIDs(t, ok("ods.events"))); !slices.Equal(got, tabletest.IDs(0, 30)) {
		t.Fatalf("whole table: %v", got)
	}
	if got := sortedIDs(jsonIDs(t, ok("-from-snapshot", fmt.Sprint(s1), "-to-snapshot", fmt.Sprint(s2), "ods.events"))); !slices.Equal(got, tabletest.IDs(10, 20)) {
		t.Fatalf("(s1, s2]: %v", got)
	}
	// Flags after the table.
	if got := sortedIDs(jsonIDs(t, ok("ods.events", "-from-snapshot", fmt.Sprint(s2)))); !slices.Equal(got, tabletest.IDs(20, 30)) {
		t.Fatalf("after s2: %v", got)
	}
	if got := jsonIDs(t, ok("-from-snapshot", "current", "ods.events")); len(got) != 0 {
		t.Fatalf("after current: %v", got)
	}
	if got := sortedIDs(jsonIDs(t, ok("-since", "1h", "ods.events"))); !slices.Equal(got, tabletest.IDs(0, 30)) {
		t.Fatalf("since 1h: %v", got)
	}
	if got := sortedIDs(jsonIDs(t, ok("-as-of", fmt.Sprint(s1), "ods.events"))); !slices.Equal(got, tabletest.IDs(0, 10)) {
		t.Fatalf("as of s1: %v", got)
	}
	out := ok("-where", "id >= 5 and id < 8 and name != 'n6'", "-columns", "id,name", "ods.events")
	if got := sortedIDs(jsonIDs(t, out)); !slices.Equal(got, []int64{5, 7}) {
		t.Fatalf("where: %v", got)
	}
	if first := strings.SplitN(out, "\n", 2)[0]; !strings.HasPrefix(first, `{"id":`) || strings.Contains(first, "ts") {
		t.Fatalf("columns id,name: %s", first)
	}
	out = ok("-event-time", "ts", "-event-from", "2026-01-02", "-event-to", "2026-01-03", "-columns", "id", "ods.events")
	for _, id := range jsonIDs(t, out) {
		if id%3 != 1 {
			t.Fatalf("event-time range: id %d is not on 2026-01-02", id)
		}
	}
	out = ok("-format", "csv", "-where", "id < 2", "-columns", "id,name", "ods.events")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 || lines[0] != "id,name" {
		t.Fatalf("csv: %q", out)
	}

	// Parquet and Arrow files decode to the same rows.
	dir := t.TempDir()
	pq := filepath.Join(dir, "out.parquet")
	ok("-format", "parquet", "-o", pq, "ods.events")
	pf, err := file.OpenParquetFile(pq, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := pf.NumRows(); n != 30 {
		t.Fatalf("parquet output has %d rows, want 30", n)
	}
	_ = pf.Close()
	pf, _ = file.OpenParquetFile(pq, false)
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fr.ReadTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = pf.Close()
	ar := filepath.Join(dir, "out.arrow")
	ok("-format", "arrow", "-o", ar, "ods.events")
	af, err := os.Open(ar)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := ipc.NewReader(af)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for rd.Next() {
		n += rd.RecordBatch().NumRows()
	}
	rd.Release()
	_ = af.Close()
	if n != 30 {
		t.Fatalf("arrow output has %d rows, want 30", n)
	}

	// Progress on stderr only when asked (stderr is not a terminal here).
	code, _, errs := e.floe("read", cfg, "-progress", "-o", filepath.Join(dir, "p.jsonl"), "ods.events")
	if code != 0 || !strings.Contains(errs, "100%") || !strings.Contains(errs, "30/30 rows") {
		t.Fatalf("-progress: exit %d, stderr %q", code, errs)
	}
	if _, _, errs := e.floe("read", cfg, "-o", filepath.Join(dir, "q.jsonl"), "ods.events"); strings.Contains(errs, "rows/s") {
		t.Fatalf("a progress bar on a non-terminal: %q", errs)
	}

	for _, bad := range [][]string{
		{"read", cfg},
		{"read", cfg, "-where", "id >", "ods.events"},
		{"read", cfg, "-format", "xml", "ods.events"},
		{"read", cfg, "-follow", "-format", "parquet", "ods.events"},
		{"read", cfg, "-cursor-file", "c.json", "ods.events"},
		{"read", cfg, "-since", "1h", "-from-snapshot", "1", "ods.events"},
		{"read", cfg, "-as-of", "yesterday", "ods.events"},
		{"read", cfg, "ods.events", "extra"},
	} {
		if code, _, errs := e.floe(bad...); code != 2 {
			t.Errorf("floe %v: exit %d, want 2 (usage): %s", bad, code, errs)
		}
	}
	if code, _, errs := e.floe("read", cfg, "-from-snapshot", "42", "ods.events"); code != 1 || !strings.Contains(errs, "cursor expired") && !strings.Contains(errs, "not in the history") {
		t.Fatalf("unknown start: exit %d: %s", code, errs)
	}
	_ = s3
}

// TestReadFollowSurvivesKills runs `floe read -follow -cursor-file` as a
// subprocess, writing jsonl to a file, while this test keeps appending
// (and now and then compacting) the table, and SIGKILLs the follower 20
// times at random points (3 with -short): the output holds every row
// exactly once.
func TestReadFollowSurvivesKills(t *testing.T) {
	bin := testenv.FloeBinary(t)
	e := newReadEnv(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	cursor := filepath.Join(dir, "cursor.json")
	kills := 20
	if testing.Short() {
		kills = 3
	}
	e.appendRows(50) // the first follower starts with a backfill

	// The writer: a snapshot every ~20ms, a compaction every 15 appends.
	ctx, stopWriter := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ctx.Err() == nil; i++ {
			if err := e.w.Write(e.batch(int64(1 + rand.IntN(40)))); err != nil {
				werr = err
				return
			}
			if err := e.w.Commit(context.Background()); err != nil {
				werr = err
				return
			}
			if i%15 == 0 {
				if err := compactTable(e.cat); err != nil {
					werr = err
					return
				}
			}
			time.Sleep(time.Duration(5+rand.IntN(30)) * time.Millisecond)
		}
	}()

	start := func(crash string) (*exec.Cmd, *testenv.SyncBuffer) {
		cmd := exec.Command(bin, "read", "-config", e.cfgPath, "-follow", "-poll", "20ms",
			"-cursor-file", cursor, "-o", out, "-log-level", "debug", "ods.events")
		stderr := &testenv.SyncBuffer{}
		cmd.Stderr = stderr
		cmd.Env = append(os.Environ(), "FLOE_READ_CRASH="+crash)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, stderr
	}
	// Every other follower also kills itself, now and then, right after
	// syncing a snapshot's rows and before storing its cursor: the window
	// the truncate-on-resume design exists for.
	var advanced, injected int
	prev := readCursor(t, cursor)
	for k := range kills {
		crash := ""
		if k%2 == 1 {
			crash = "after-write:0.3"
		}
		cmd, stderr := start(crash)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Even runs are killed at a random time, maybe while starting or
		// backfilling; odd runs once they have stored a new cursor, at a
		// random point of the snapshots that follow.
		deadline := time.Now().Add(time.Duration(50+rand.IntN(700)) * time.Millisecond)
		afterProgress := k%2 == 1
		if afterProgress {
			deadline = time.Now().Add(30 * time.Second)
		}
		var err error
		tick := time.NewTicker(5 * time.Millisecond)
	wait:
		for {
			select {
			case err = <-done:
				break wait
			case now := <-tick.C:
				if afterProgress && readCursor(t, cursor) != prev {
					afterProgress = false
					deadline = now.Add(time.Duration(rand.IntN(150)) * time.Millisecond)
				}
				if now.After(deadline) {
					_ = cmd.Process.Signal(syscall.SIGKILL)
					err = <-done
					break wait
				}
			}
		}
		tick.Stop()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("kill %d: the follower exited on its own (%v): %s", k, err, stderr)
		}
		if strings.Contains(stderr.String(), "crash injected") {
			injected++
		}
		if c := readCursor(t, cursor); c != prev {
			advanced++
			prev = c
		}
	}
	if advanced < kills/4 {
		t.Fatalf("the cursor advanced in only %d of %d runs: the kills did not exercise resuming", advanced, kills)
	}
	stopWriter()
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	total := e.next

	// A last follower catches up; then it is stopped cleanly.
	cmd, stderr := start("")
	deadline := time.Now().Add(60 * time.Second)
	current := e.current()
	for time.Now().Before(deadline) {
		// Started (it logs "resuming" once its signal handlers are set),
		// caught up, and its cursor at the table's current snapshot.
		if strings.Contains(stderr.String(), "resuming") && countLines(t, out) >= total && readCursor(t, cursor).SnapshotID == current {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Give it a moment to write anything it should not (a duplicate).
	time.Sleep(200 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("follower on SIGTERM: %v\n%s", err, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ids := jsonIDs(t, string(b))
	seen := map[int64]int{}
	for _, id := range ids {
		seen[id]++
	}
	for id := int64(0); id < total; id++ {
		switch seen[id] {
		case 1:
		case 0:
			t.Fatalf("id %d is missing from the output (%d rows, %d written to the table)", id, len(ids), total)
		default:
			t.Fatalf("id %d is in the output %d times", id, seen[id])
		}
	}
	if int64(len(ids)) != total {
		t.Fatalf("output has %d rows, the table %d", len(ids), total)
	}
	var c reader.Cursor
	cb, err := os.ReadFile(cursor)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(cb, &c); err != nil {
		t.Fatal(err)
	}
	if c.SnapshotID != e.current() || c.OutputOffset != int64(len(b)) {
		t.Fatalf("final cursor %+v; table at %d, output %d bytes", c, e.current(), len(b))
	}
	t.Logf("%d kills (%d injected after a write, before the cursor), the cursor advanced in %d runs; %d rows in %d snapshots followed exactly once",
		kills, injected, advanced, total, snapshotCount(t, e))
}

// batch builds the next rows for the writer goroutine.
func (e *readEnv) batch(n int64) writer.Batch {
	var rows [][]any
	for i := e.next; i < e.next+n; i++ {
		rows = append(rows, []any{i, readDay0.Add(time.Duration(i%3) * 24 * time.Hour), fmt.Sprintf("n%d", i)})
	}
	e.next += n
	return writer.Batch{Table: "ods.events", Source: "test", Record: tabletest.Record(e.sc, rows...), Next: table.Positions{"p": e.next}}
}

// compactTable rewrites every partition with several files into one file,
// as a replace snapshot.
func compactTable(cat icecat.Catalog) error {
	ctx := context.Background()
	tbl, err := cat.LoadTable(ctx, icetable.Identifier{"ods", "events"})
	if err != nil {
		return err
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return err
	}
	groups := tabletest.PartitionGroups(tasks)
	if len(groups) == 0 {
		return nil
	}
	_, err = tbl.RewriteDataFiles(ctx, groups, icetable.RewriteDataFilesOptions{})
	return err
}

// readCursor returns the cursor file's contents, zero when it is absent.
func readCursor(t *testing.T, path string) reader.Cursor {
	t.Helper()
	c, _, err := reader.NewFileCursorStore(path).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func countLines(t *testing.T, path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	var n int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
	}
	return n
}

func snapshotCount(t *testing.T, e *readEnv) int {
	tbl := tabletest.Load(t, e.cat, "ods.events")
	return len(tbl.Metadata().Snapshots())
}

// TestReadFollowExpiredCursor: a follower whose cursor snapshot expired
// fails at once, saying how to start over.
func TestReadFollowExpiredCursor(t *testing.T) {
	e := newReadEnv(t)
	s1 := e.appendRows(5)
	for range 3 {
		e.appendRows(5)
	}
	ctx := context.Background()
	tbl := tabletest.Load(t, e.cat, "ods.events")
	txn := tbl.NewTransaction()
	if err := txn.ExpireSnapshots(icetable.WithOlderThan(0), icetable.WithRetainLast(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out, cursor := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "cursor.json")
	if err := os.WriteFile(out, []byte(`{"id":0}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := reader.NewFileCursorStore(cursor).Save(ctx, reader.Cursor{
		Table: "ods.events", SnapshotID: s1, Output: out, OutputOffset: 9, Format: "jsonl", Mode: reader.ModeAppend,
	})
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs := e.floe("read", "-config", e.cfgPath, "-follow", "-cursor-file", cursor, "-o", out, "ods.events")
	if code != 1 || !strings.Contains(errs, "cursor expired") || !strings.Contains(errs, "remove "+cursor) {
		t.Fatalf("expired cursor: exit %d, stderr %s", code, errs)
	}
	// A cursor for another output is refused before anything is touched.
	code, _, errs = e.floe("read", "-config", e.cfgPath, "-follow", "-cursor-file", cursor, "-o", filepath.Join(dir, "other.jsonl"), "ods.events")
	if code != 2 || !strings.Contains(errs, "was written with -o") {
		t.Fatalf("cursor of another output: exit %d, stderr %s", code, errs)
	}
}
