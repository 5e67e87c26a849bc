package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// TestReadFollowWaitsForTheCatalog: floe read -follow started while its
// catalog cannot be opened (a SQLite catalog whose directory is a file)
// stays up, logging the reason at WARN, and follows the table once the
// catalog is there; a one-shot read fails at once. (The follower used to
// exit with status 1, so a catalog outage at its start made a supervisor
// restart it in a loop.)
func TestReadFollowWaitsForTheCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the floe binary")
	}
	bin := testenv.FloeBinary(t)
	dir := t.TempDir()
	// The catalog and its table, made where the config does not look yet.
	made := filepath.Join(dir, "made")
	cc := catalog.Config{Type: catalog.TypeSQLite, Name: "test", URI: filepath.Join(made, "catalog.db"), Warehouse: filepath.Join(dir, "wh")}
	if err := os.MkdirAll(made, 0o755); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	spec := table.Spec{Name: "ods.events", Schema: []table.Field{{Name: "id", Type: "long", Required: true}}}
	if _, err := table.Ensure(context.Background(), cat, spec); err != nil {
		t.Fatal(err)
	}
	wcfg := writer.Config{CommitInterval: time.Hour}
	wcfg.ApplyDefaults()
	w := writer.New(cat, wcfg, writer.Options{Logger: slog.New(slog.DiscardHandler)})
	_, sc, err := w.Open("ods.events", "test")
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	for i := range 5 {
		rows = append(rows, []any{int64(i)})
	}
	if err := w.Write(writer.Batch{Table: "ods.events", Source: "test", Record: tabletest.Record(sc, rows...), Next: table.Positions{"p": 5}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if c, ok := cat.(interface{ Close() error }); ok {
		_ = c.Close()
	}

	// The config names dir/cat/catalog.db, and dir/cat is a file.
	block := filepath.Join(dir, "cat")
	if err := os.WriteFile(block, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "floe.yaml")
	yml := fmt.Sprintf("catalog:\n  type: sqlite\n  name: test\n  uri: %q\n  warehouse: %q\n", filepath.Join(block, "catalog.db"), cc.Warehouse)
	if err := os.WriteFile(cfg, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	once := exec.Command(bin, "read", "-config", cfg, "ods.events")
	if b, err := once.CombinedOutput(); err == nil {
		t.Fatalf("a one-shot read without its catalog succeeded:\n%s", b)
	}

	out := filepath.Join(dir, "out.jsonl")
	cmd := exec.Command(bin, "read", "-config", cfg, "-follow", "-poll-interval", "100ms", "-output", out, "ods.events")
	logs := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case err := <-done:
		t.Fatalf("floe read -follow exited (%v) while its catalog could not be opened:\n%s", err, logs)
	case <-time.After(3 * time.Second):
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "not a directory") {
		t.Fatalf("floe read -follow logs no WARN with the reason:\n%s", l)
	}
	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(made, block); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		b, _ := os.ReadFile(out)
		if strings.Count(string(b), "\n") == 5 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("floe read -follow exited (%v):\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the follower wrote %q in a minute, want 5 rows:\n%s", b, logs)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("floe read -follow stopped with %v:\n%s", err, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("floe read -follow did not stop")
	}
}
