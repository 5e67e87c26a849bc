package reader_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
)

// follow runs r.Follow until done (checked after every snapshot written,
// on Follow's goroutine) is true or 30 s pass, then cancels it and returns
// its error.
func follow(t *testing.T, r *reader.Reader, opts reader.FollowOptions, done func() bool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	after := opts.AfterWrite
	opts.AfterWrite = func() {
		if after != nil {
			after()
		}
		if done() {
			cancel()
		}
	}
	err := r.Follow(ctx, opts)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("Follow did not get done within 30s: %v", err)
	}
	return err
}

func jsonlIDs(t *testing.T, b []byte) []int64 {
	t.Helper()
	var out []int64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line != "" {
			out = append(out, parseRow(t, line).id)
		}
	}
	return out
}

// followSetup opens a catalog holding ods.events with n rows, committed
// as snapshot s1, and names an output and a cursor file in a fresh
// directory.
func followSetup(t *testing.T, n int64) (cat icecat.Catalog, f *fixture, s1 int64, out, cursorFile string) {
	t.Helper()
	cat = tabletest.OpenSQLite(t)
	f = newFixture(t, cat, eventsSpec("ods.events"))
	s1 = f.appendRows(n)
	dir := t.TempDir()
	return cat, f, s1, filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "cursor.json")
}

// TestFollowResumesExactlyOnce: a follower writes the table and its new
// snapshots to a file, keeping its cursor; a restart from a cursor older
// than the output (the process died after syncing rows, before storing the
// cursor) truncates the output and writes every row exactly once.
func TestFollowResumesExactlyOnce(t *testing.T) {
	cat, f, s1, out, cursorFile := followSetup(t, 10)
	store := reader.NewFileCursorStore(cursorFile)
	r := newReader(t, cat, "ods.events", reader.Config{PollInterval: 10 * time.Millisecond})

	// Run 1: the backfill (s1), then s2 and s3 as they are committed.
	var stored []reader.Cursor // the cursor at each write, before it moves
	var s3 int64
	writes := 0
	opts := reader.FollowOptions{Format: reader.FormatJSONL, Output: out, CursorFile: cursorFile}
	opts.AfterWrite = func() {
		c, _, err := store.Load(context.Background())
		if err != nil {
			t.Error(err)
		}
		stored = append(stored, c)
	}
	err := follow(t, r, opts, func() bool {
		writes++
		switch writes {
		case 1:
			f.appendRows(10)
		case 2:
			s3 = f.appendRows(10)
		}
		return writes == 3
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow: %v, want context.Canceled", err)
	}
	b, _ := os.ReadFile(out)
	if got := jsonlIDs(t, b); !slices.Equal(sorted(got), tabletest.IDs(0, 30)) {
		t.Fatalf("run 1 wrote %v", got)
	}
	c, _, _ := store.Load(context.Background())
	if c.SnapshotID != s3 || c.OutputOffset != int64(len(b)) || c.Table != "ods.events" || c.Format != "jsonl" || c.Mode != reader.ModeAppend {
		t.Fatalf("cursor after run 1: %+v; want snapshot %d, offset %d", c, s3, len(b))
	}
	after1 := stored[1] // stored before s2 was written: the backfill's
	if after1.SnapshotID != s1 || after1.OutputOffset == 0 || after1.OutputOffset >= int64(len(b)) {
		t.Fatalf("cursor after the backfill: %+v", after1)
	}

	// The crash window: rows of s2 and s3 are in the output, the cursor
	// still says s1.
	if err := store.Save(context.Background(), after1); err != nil {
		t.Fatal(err)
	}
	s4 := f.appendRows(5)
	opts.AfterWrite = nil
	writes = 0
	err = follow(t, r, opts, func() bool { writes++; return writes == 3 }) // s2, s3, s4
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow: %v", err)
	}
	b, _ = os.ReadFile(out)
	if got := jsonlIDs(t, b); !slices.Equal(sorted(got), tabletest.IDs(0, 35)) {
		t.Fatalf("after resuming, the output holds %v", got)
	}
	if c, _, _ := store.Load(context.Background()); c.SnapshotID != s4 || c.OutputOffset != int64(len(b)) {
		t.Fatalf("cursor offset %d, output %d bytes", c.OutputOffset, len(b))
	}
}

// TestFollowWriterCSV: without an output file the rows go to the writer;
// a start skips the backfill; the CSV header is written once.
func TestFollowWriterCSV(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	f := newFixture(t, cat, eventsSpec("ods.events"))
	s1 := f.appendRows(10)
	r := newReader(t, cat, "ods.events", reader.Config{PollInterval: 10 * time.Millisecond, Columns: []string{"id"}})
	var buf bytes.Buffer
	var mu sync.Mutex
	writes := 0
	opts := reader.FollowOptions{Format: reader.FormatCSV, Writer: &buf, Start: reader.Start{Kind: reader.StartAfter, SnapshotID: s1}}
	f.appendRows(3)
	err := follow(t, r, opts, func() bool {
		mu.Lock()
		defer mu.Unlock()
		if writes++; writes == 1 {
			f.appendRows(2)
		}
		return writes == 2
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow: %v", err)
	}
	// Within a snapshot, rows come in file (partition) order.
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if slices.Sort(lines[1:]); strings.Join(lines, ",") != "id,10,11,12,13,14" {
		t.Fatalf("csv output %q, want a header and ids 10 to 14", buf.String())
	}
}

// TestFollowRefuses: a cursor of another output or mode, an output shorter
// than its cursor, and a format that cannot be appended to fail before
// anything is written.
func TestFollowRefuses(t *testing.T) {
	cat, _, s1, out, cursorFile := followSetup(t, 5)
	const content = `{"id":0}` + "\n"
	ctx := context.Background()
	base := reader.Cursor{Table: "ods.events", SnapshotID: s1, Output: out, OutputOffset: int64(len(content)), Format: "jsonl", Mode: reader.ModeAppend}
	tests := []struct {
		name      string
		cursor    func(reader.Cursor) reader.Cursor
		mode      reader.Mode
		format    reader.Format
		wantField string
		wantErr   string
	}{
		{name: "other output", cursor: func(c reader.Cursor) reader.Cursor {
			c.Output = filepath.Join(filepath.Dir(out), "other.jsonl")
			return c
		}, wantField: "output"},
		{name: "other table", cursor: func(c reader.Cursor) reader.Cursor { c.Table = "ods.other"; return c }, wantField: "table"},
		{name: "other format", cursor: func(c reader.Cursor) reader.Cursor { c.Format = "csv"; return c }, wantField: "format"},
		{name: "other mode", mode: reader.ModeChangelog, wantField: "mode"},
		{name: "short output", cursor: func(c reader.Cursor) reader.Cursor { c.OutputOffset = 1000; return c }, wantErr: "fewer than the 1000"},
		{name: "parquet", format: reader.FormatParquet, wantErr: "cannot be appended to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(out, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			c := base
			if tt.cursor != nil {
				c = tt.cursor(c)
			}
			if err := reader.NewFileCursorStore(cursorFile).Save(ctx, c); err != nil {
				t.Fatal(err)
			}
			format := reader.FormatJSONL
			if tt.format != "" {
				format = tt.format
			}
			r := newReader(t, cat, "ods.events", reader.Config{Mode: tt.mode})
			err := r.Follow(ctx, reader.FollowOptions{Format: format, Output: out, CursorFile: cursorFile})
			var cm *reader.CursorMismatchError
			switch {
			case tt.wantField != "":
				if !errors.As(err, &cm) || cm.Field != tt.wantField || cm.CursorFile != cursorFile {
					t.Fatalf("err %v, want a CursorMismatchError on %s", err, tt.wantField)
				}
			case err == nil || !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			if b, _ := os.ReadFile(out); string(b) != content {
				t.Fatalf("the output was touched: %q", b)
			}
		})
	}
}

func TestParseStartSnapshot(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    reader.Start
		wantErr bool
	}{
		{in: "", want: reader.Start{}},
		{in: "earliest", want: reader.Start{Kind: reader.StartAfter}},
		{in: " Current", want: reader.Start{Kind: reader.StartCurrent}},
		{in: "latest", want: reader.Start{Kind: reader.StartCurrent}},
		{in: "42", want: reader.Start{Kind: reader.StartAfter, SnapshotID: 42}},
		{in: "0", wantErr: true},
		{in: "-3", wantErr: true},
		{in: "yesterday", wantErr: true},
	} {
		got, err := reader.ParseStartSnapshot(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseStartSnapshot(%q) = %+v, %v; want %+v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestRead: Read resolves each kind of start, and reads a snapshot without
// one.
func TestRead(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	f := newFixture(t, cat, eventsSpec("ods.events"))
	s1 := f.appendRows(10)
	f.appendRows(10)
	clock := newFakeClock()
	r := newReader(t, cat, "ods.events", reader.Config{Clock: clock})
	ctx := context.Background()
	tbl, err := r.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	created := time.UnixMilli(tbl.SnapshotByID(s1).TimestampMs)
	for _, tt := range []struct {
		name  string
		start reader.Start
		at    reader.At
		now   time.Time
		want  []int64
	}{
		{name: "current table", want: tabletest.IDs(0, 20)},
		{name: "as of s1", at: reader.At{SnapshotID: s1}, want: tabletest.IDs(0, 10)},
		{name: "after s1", start: reader.Start{Kind: reader.StartAfter, SnapshotID: s1}, want: tabletest.IDs(10, 20)},
		{name: "earliest", start: reader.Start{Kind: reader.StartAfter}, want: tabletest.IDs(0, 20)},
		{name: "current", start: reader.Start{Kind: reader.StartCurrent}},
		{name: "since long ago", start: reader.Start{Kind: reader.StartSince, Since: time.Hour}, now: created.Add(time.Minute), want: tabletest.IDs(0, 20)},
		{name: "since the future", start: reader.Start{Kind: reader.StartSince, Since: time.Hour}, now: created.Add(48 * time.Hour)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock.mu.Lock()
			clock.now = tt.now
			clock.mu.Unlock()
			st, err := r.Read(ctx, tt.start, 0, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if got := sorted(ids(readRows(t, st))); !slices.Equal(got, tt.want) {
				t.Fatalf("ids %v, want %v", got, tt.want)
			}
		})
	}
}
