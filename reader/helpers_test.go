package reader_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

var day0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// eventsSpec is a table partitioned by day(ts).
func eventsSpec(name string) table.Spec {
	return table.Spec{
		Name: name,
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "name", Type: "string"},
		},
		Partition: []table.PartitionField{{Column: "ts", Transform: "day"}},
	}
}

// rowTime is row i's event time: three days, i ms apart.
func rowTime(i int64) time.Time {
	return day0.Add(time.Duration(i%3)*24*time.Hour + time.Duration(i)*time.Millisecond)
}

func buildRows(sc *arrow.Schema, ids []int64, name func(int64) string) arrow.RecordBatch {
	var rows [][]any
	for _, i := range ids {
		var n any
		if i%7 != 0 {
			n = name(i)
		}
		rows = append(rows, []any{i, rowTime(i), n})
	}
	return tabletest.Record(sc, rows...)
}

func defaultName(i int64) string { return fmt.Sprintf("n%d", i) }

// fixture appends to a table with iceberg-go, one snapshot per append.
// (Floe's writer would do as well, but builds a new S3 client for every
// file operation, which makes 100 commits to MinIO slow under -race.)
type fixture struct {
	t     testing.TB
	ctx   context.Context
	cat   icecat.Catalog
	name  string
	ident icetable.Identifier
	sc    *arrow.Schema
	next  int64
}

func newFixture(t testing.TB, cat icecat.Catalog, spec table.Spec) *fixture {
	t.Helper()
	ctx := context.Background()
	tbl, err := table.Ensure(ctx, cat, spec)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	ident, _ := table.ParseIdent(spec.Name)
	return &fixture{t: t, ctx: ctx, cat: cat, name: spec.Name, ident: ident, sc: sc}
}

// appendRows commits rows next..next+n-1 as one snapshot and returns its id.
func (f *fixture) appendRows(n int64) int64 {
	f.t.Helper()
	ids := tabletest.IDs(f.next, f.next+n)
	f.next += n
	return f.appendIDs(ids)
}

func (f *fixture) appendIDs(ids []int64) int64 {
	f.t.Helper()
	tbl := f.loadCached()
	rec := buildRows(f.sc, ids, defaultName)
	var files []iceberg.DataFile
	for df, err := range icetable.WriteRecords(f.ctx, tbl, f.sc, func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }) {
		if err != nil {
			f.t.Fatal(err)
		}
		files = append(files, df)
	}
	txn := tbl.NewTransaction()
	if err := txn.AddDataFiles(f.ctx, files, nil, icetable.WithoutDuplicateCheck()); err != nil {
		f.t.Fatal(err)
	}
	out, err := txn.Commit(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return reader.Current(out)
}

// loadCached loads the table with one IO for all its operations.
func (f *fixture) loadCached() *icetable.Table {
	f.t.Helper()
	tbl := f.load()
	fs, err := tbl.FS(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return icetable.New(tbl.Identifier(), tbl.Metadata(), tbl.MetadataLocation(),
		func(context.Context) (iceio.IO, error) { return fs, nil }, f.cat)
}

func (f *fixture) load() *icetable.Table {
	f.t.Helper()
	tbl, err := f.cat.LoadTable(f.ctx, f.ident)
	if err != nil {
		f.t.Fatal(err)
	}
	return tbl
}

// compact rewrites every partition holding two or more data files into one
// file with the same rows, committed as one replace snapshot, whose id it
// returns.
func (f *fixture) compact() int64 {
	f.t.Helper()
	tbl := f.loadCached()
	tasks, err := tbl.Scan().PlanFiles(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	groups := tabletest.PartitionGroups(tasks)
	if len(groups) == 0 {
		f.t.Fatal("compact: nothing to compact")
	}
	res, err := tbl.RewriteDataFiles(f.ctx, groups, icetable.RewriteDataFilesOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	s := res.Table.CurrentSnapshot()
	if op := s.Summary.Operation; op != icetable.OpReplace {
		f.t.Fatalf("compaction committed a %s snapshot, want replace", op)
	}
	return s.SnapshotID
}

// history is the current snapshot's ancestry, oldest first.
func history(tbl *icetable.Table) []icetable.Snapshot {
	var out []icetable.Snapshot
	for s := range table.CurrentAncestors(tbl.Metadata()) {
		out = append(out, *s)
	}
	slices.Reverse(out)
	return out
}

// countRows drains st and returns how many rows it read.
func countRows(t testing.TB, st *reader.Stream) int64 {
	t.Helper()
	var n int64
	for rec, err := range st.Records() {
		if err != nil {
			t.Fatal(err)
		}
		n += rec.NumRows()
		rec.Release()
	}
	return n
}

// row is one output row: its id, change type (changelog reads) and its
// whole JSON encoding without the changelog columns.
type row struct {
	id     int64
	change string
	json   string
}

// readRows drains a stream.
func readRows(t testing.TB, st *reader.Stream) []row {
	t.Helper()
	var buf bytes.Buffer
	enc, err := reader.NewEncoder(&buf, reader.FormatJSONL, st.Schema, reader.EncoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for rec, err := range st.Records() {
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Schema().Equal(st.Schema) {
			t.Fatalf("batch schema %s differs from the stream's %s", rec.Schema(), st.Schema)
		}
		if err := enc.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	var out []row
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		out = append(out, parseRow(t, line))
	}
	return out
}

func parseRow(t testing.TB, line string) row {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("bad row %q: %v", line, err)
	}
	r := row{json: line}
	if id, ok := m["id"].(float64); ok {
		r.id = int64(id)
	}
	if c, ok := m[reader.ColChangeType].(string); ok {
		r.change = c
		if i := strings.Index(line, `,"`+reader.ColChangeType+`"`); i >= 0 {
			r.json = line[:i] + "}"
		}
	}
	return r
}

func ids(rows []row) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = r.id
	}
	return out
}

func sortRows(rows []row) []row {
	out := slices.Clone(rows)
	slices.SortFunc(out, func(a, b row) int { return strings.Compare(a.json, b.json) })
	return out
}

// countingIO counts the files a table's IO opens, by kind.
type countingIO struct {
	mu     sync.Mutex
	opened []string
}

// countedIO is an IO whose Open calls are recorded in c.
type countedIO struct {
	iceio.IO
	c *countingIO
}

func (f countedIO) Open(name string) (iceio.File, error) {
	f.c.mu.Lock()
	f.c.opened = append(f.c.opened, name)
	f.c.mu.Unlock()
	return f.IO.Open(name)
}

func (c *countingIO) reset() {
	c.mu.Lock()
	c.opened = nil
	c.mu.Unlock()
}

// files returns the opened files whose names match kind: "data" (.parquet),
// "manifest-list" (snap-*.avro) or "manifest" (other .avro).
func (c *countingIO) files(kind string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, name := range c.opened {
		base := name[strings.LastIndexByte(name, '/')+1:]
		var k string
		switch {
		case strings.HasSuffix(base, ".parquet"):
			k = "data"
		case strings.HasPrefix(base, "snap-") && strings.HasSuffix(base, ".avro"):
			k = "manifest-list"
		case strings.HasSuffix(base, ".avro"):
			k = "manifest"
		}
		if k == kind {
			out = append(out, name)
		}
	}
	return out
}

// countingLoader loads tables whose IO records its opens in c: the table's
// IO wrapped with icetable.New(ident, meta, location, fsF, cat).
func countingLoader(cat icecat.Catalog, c *countingIO) reader.TableLoader {
	return reader.LoaderFunc(func(ctx context.Context, ident icetable.Identifier) (*icetable.Table, error) {
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			return nil, err
		}
		fs, err := tbl.FS(ctx)
		if err != nil {
			return nil, err
		}
		fsF := func(context.Context) (iceio.IO, error) { return countedIO{IO: fs, c: c}, nil }
		return icetable.New(ident, tbl.Metadata(), tbl.MetadataLocation(), fsF, cat), nil
	})
}

// newReader returns a reader of name with cfg, failing the test on error.
func newReader(t testing.TB, loader reader.TableLoader, name string, cfg reader.Config) *reader.Reader {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	r, err := reader.New(loader, name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func timeMs(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
