//go:build unix

package writer_test

import (
	"context"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// TestKeyIndexUnusableDir: when the key index cannot live in its
// directory — the index root is not a directory, or another process
// holds the table's index directory — the keyed table keeps its index in
// the heap (nothing mapped, no directory reported) and still applies
// updates exactly: one row per key, the rows the model expects, also
// after a restart over the directory once it is usable again.
func TestKeyIndexUnusableDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		// block makes root unusable for the table; it returns what undoes
		// it (nil: nothing).
		block func(t *testing.T, root, tableUUID string) func()
	}{
		{name: "root is a file", block: func(t *testing.T, root, _ string) func() {
			if err := os.WriteFile(root, []byte("not a directory"), 0o644); err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := os.Remove(root); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "directory locked by another process", block: func(t *testing.T, root, tableUUID string) func() {
			dir := filepath.Join(root, tableUUID)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			// A lock on an open file of its own is what another process's
			// writer holds (flock locks belong to the open file).
			f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
				t.Fatal(err)
			}
			return func() { _ = f.Close() }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cat := tabletest.OpenSQLite(t)
			if _, err := table.Ensure(ctx, cat, persistSpec()); err != nil {
				t.Fatal(err)
			}
			uuid := tabletest.Load(t, cat, keyedTable).Metadata().TableUUID().String()
			root := filepath.Join(t.TempDir(), "index")
			unblock := tc.block(t, root, uuid)

			open := func() (*writer.Writer, *writer.KeyedTable) {
				cfg := writer.DefaultConfig()
				cfg.CommitInterval = time.Hour
				w := writer.New(cat, cfg, writer.Options{Logger: quietLog(t)})
				kt, err := w.OpenKeyed(ctx, persistSpec(), "src", writer.KeyedOptions{IndexDir: root, Compaction: compaction.KeyedConfig{Disabled: true}})
				if err != nil {
					w.Abort()
					t.Fatal(err)
				}
				return w, kt
			}
			w, kt := open()
			defer w.Abort()
			if info := kt.Index(); info.Dir != "" || info.MappedBytes != 0 {
				t.Errorf("the index claims a directory it cannot use: %+v", info)
			}
			pos := int64(0)
			r := &persistRun{t: t, w: w, kt: kt, want: map[int64]keyedRow{}, pos: &pos, rng: rand.New(rand.NewPCG(7, 8))}
			for range 6 {
				r.changes(120, true)
			}
			if got := persistScan(t, cat); !maps.Equal(got, r.want) {
				t.Fatalf("the table holds %d rows, want %d", len(got), len(r.want))
			}
			closeRun(t, r)

			// Usable again: the next start builds its index there from the
			// table, and updates stay exact.
			unblock()
			w2, kt2 := open()
			defer w2.Abort()
			if info := kt2.Index(); info.Opened != writer.IndexOpenedRebuilt || info.Dir == "" || info.Keys != len(r.want) {
				t.Errorf("reopened: %+v, want rebuilt in a directory with %d keys", info, len(r.want))
			}
			r2 := &persistRun{t: t, w: w2, kt: kt2, want: r.want, pos: &pos, rng: rand.New(rand.NewPCG(9, 10))}
			for range 4 {
				r2.changes(120, true)
			}
			if got := persistScan(t, cat); !maps.Equal(got, r2.want) {
				t.Fatalf("after the restart the table holds %d rows, want %d", len(got), len(r2.want))
			}
			closeRun(t, r2)
		})
	}
}
