//go:build unix

package writer

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPruneStaleIndexDirs: a table's index directory unchanged for longer
// than staleIndexAge and not locked is removed; one changed since (a file
// in it, or the directory), one locked by a live writer, and the opening
// table's own are kept.
func TestPruneStaleIndexDirs(t *testing.T) {
	now := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	old := now.Add(-staleIndexAge - time.Hour)
	root := t.TempDir()
	mk := func(name string, fileTime time.Time) string {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{indexMetaName, "narrow.1", "lock"} {
			p := filepath.Join(dir, f)
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
		if !fileTime.Equal(old) {
			if err := os.Chtimes(filepath.Join(dir, indexMetaName), fileTime, fileTime); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(dir, old, old); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	stale := mk("stale", old)
	recent := mk("recent", now.Add(-time.Hour))
	self := mk("self", old)
	locked := mk("locked", old)
	lock, err := lockFile(filepath.Join(locked, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Close() }()
	if err := os.Chtimes(locked, old, old); err != nil {
		t.Fatal(err)
	}

	pruneStaleIndexDirs(root, self, now, slog.New(slog.DiscardHandler))
	for dir, want := range map[string]bool{stale: false, recent: true, self: true, locked: true} {
		_, err := os.Stat(dir)
		if got := err == nil; got != want {
			t.Errorf("%s: exists %v, want %v (%v)", filepath.Base(dir), got, want, err)
		}
	}
}
