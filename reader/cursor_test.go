package reader_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

func TestFileCursorStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := reader.NewFileCursorStore(filepath.Join(dir, "cursor.json"))
	if _, found, err := s.Load(ctx); err != nil || found {
		t.Fatalf("empty store: found=%v err=%v", found, err)
	}
	for i := int64(1); i <= 3; i++ {
		c := reader.Cursor{Table: "ods.events", SnapshotID: i * 1000, Output: "out.jsonl", OutputOffset: i * 10, Format: "jsonl", Updated: day0}
		if err := s.Save(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, found, err := s.Load(ctx)
		if err != nil || !found || got != c {
			t.Fatalf("load after save: %+v %v %v, want %+v", got, found, err, c)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the cursor file (no temporary files)", len(entries))
	}
	if err := os.WriteFile(s.Path(), []byte(`{"table": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx); err == nil {
		t.Fatal("a corrupt cursor file loads")
	}
}

func TestObjectCursorStore(t *testing.T) {
	for _, wh := range testenv.Warehouses(t) {
		t.Run(wh.Name, func(t *testing.T) {
			ctx := context.Background()
			cat := tabletest.Open(t, wh.Config)
			f := newFixture(t, cat, eventsSpec("ods.events"))
			f.appendRows(1)
			tbl := f.load()
			fs, err := tbl.FS(ctx)
			if err != nil {
				t.Fatal(err)
			}
			loc, err := wh.Config.WarehouseURL()
			if err != nil {
				t.Fatal(err)
			}
			s, err := reader.NewObjectCursorStore(fs, loc+"/_floe/cursors/test.json")
			if err != nil {
				t.Fatal(err)
			}
			if _, found, err := s.Load(ctx); err != nil || found {
				t.Fatalf("empty store: found=%v err=%v", found, err)
			}
			c := reader.Cursor{Table: "ods.events", SnapshotID: reader.Current(tbl), Updated: day0}
			if err := s.Save(ctx, c); err != nil {
				t.Fatal(err)
			}
			c.SnapshotID++
			if err := s.Save(ctx, c); err != nil {
				t.Fatal(err)
			}
			got, found, err := s.Load(ctx)
			if err != nil || !found || got != c {
				t.Fatalf("load: %+v %v %v, want %+v", got, found, err, c)
			}
		})
	}
}

// TestCursorInDownstreamCommit is the pattern for consumers that write a
// table: the cursor is a position entry committed with the output through
// table.Committer, so a consumer that dies between reading and committing
// re-reads exactly the uncommitted changes, and a zombie is fenced.
func TestCursorInDownstreamCommit(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	up := newFixture(t, cat, eventsSpec("ods.events"))
	down := eventsSpec("agg.copy")
	if _, err := table.Ensure(ctx, cat, down); err != nil {
		t.Fatal(err)
	}
	downIdent, _ := table.ParseIdent(down.Name)
	committer := table.NewCommitter(cat, downIdent, table.CommitterConfig{Logger: quietLogger()})
	r := newReader(t, cat, "ods.events", reader.Config{Clock: newFakeClock()})

	// consume copies up to max changes from the upstream cursor committed
	// in the downstream table, then "dies".
	consume := func(max int) {
		t.Helper()
		pm, err := committer.Positions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cursor, found := reader.CursorFromPositions(pm, "ods.events")
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		n := 0
		for ch, err := range r.Tail(ctx, cursor) {
			if err != nil {
				t.Fatal(err)
			}
			var recs []arrow.RecordBatch
			for rec, err := range ch.Records() {
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, rec)
			}
			_, err := committer.Commit(ctx, table.Commit{
				Operation: "aggregate",
				Advances:  map[string]table.Advance{reader.UpstreamSource("ods.events"): reader.CursorAdvance(cursor, found, ch.Snapshot.ID)},
				Apply: func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
					tbl, err := cat.LoadTable(ctx, downIdent)
					if err != nil {
						return err
					}
					var files []iceberg.DataFile
					for _, rec := range recs {
						rec.Retain()
					}
					seq := func(yield func(arrow.RecordBatch, error) bool) {
						for _, rec := range recs {
							if !yield(rec, nil) {
								return
							}
						}
					}
					for df, err := range icetable.WriteRecords(ctx, tbl, ch.Schema, seq) {
						if err != nil {
							return err
						}
						files = append(files, df)
					}
					return txn.AddDataFiles(ctx, files, props)
				},
			})
			for _, rec := range recs {
				rec.Release()
			}
			if err != nil {
				t.Fatal(err)
			}
			cursor, found = ch.Snapshot.ID, true
			if n++; n == max {
				return
			}
		}
	}
	for range 3 {
		up.appendRows(10)
	}
	consume(2)
	up.appendRows(10)
	consume(2)
	pm, _ := committer.Positions(ctx)
	if got, _ := reader.CursorFromPositions(pm, "ods.events"); got != reader.Current(up.load()) {
		t.Fatalf("downstream cursor %d, upstream current %d", got, reader.Current(up.load()))
	}
	copyRows := newReader(t, cat, "agg.copy", reader.Config{})
	st, err := copyRows.Snapshot(ctx, reader.At{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sorted(ids(readRows(t, st))); !slices.Equal(got, tabletest.IDs(0, 40)) {
		t.Fatalf("downstream holds %v, want each of 0..39 once", got)
	}

	// A zombie committing from a stale cursor is fenced.
	_, err = committer.Commit(ctx, table.Commit{
		Advances: map[string]table.Advance{reader.UpstreamSource("ods.events"): reader.CursorAdvance(12345, true, 67890)},
		Apply: func(context.Context, *icetable.Transaction, iceberg.Properties) error {
			t.Fatal("a fenced commit was staged")
			return nil
		},
	})
	if !errors.Is(err, table.ErrFenced) {
		t.Fatalf("stale cursor commit: %v, want ErrFenced", err)
	}

}
