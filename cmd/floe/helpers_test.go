package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/catalog"
)

// sqliteConfig opens a fresh SQLite catalog in a temporary directory and
// writes DIR/floe.yaml naming it, followed by the YAML in extra; it clears
// the catalog environment variable so that the config file wins. It
// returns the config file's path, the catalog's config and the catalog.
func sqliteConfig(t *testing.T, extra string) (string, catalog.Config, icecat.Catalog) {
	t.Helper()
	t.Setenv(catalog.EnvCatalogURI, "")
	dir := t.TempDir()
	cc := catalog.Config{Type: catalog.TypeSQLite, Name: "test", URI: filepath.Join(dir, "cat.db"), Warehouse: filepath.Join(dir, "wh")}
	cat, err := catalog.Open(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "floe.yaml")
	cfg := fmt.Sprintf("catalog:\n  type: sqlite\n  name: test\n  uri: %q\n  warehouse: %q\n%s", cc.URI, cc.Warehouse, extra)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, cc, cat
}

// checkRun runs the command args and fails the test unless it exits with
// wantCode, every string of wantOut appears in its stdout and every one of
// wantErr in its stderr. It returns the stdout.
func checkRun(t *testing.T, args []string, wantCode int, wantOut, wantErr []string) *bytes.Buffer {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	if code != wantCode {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, &out, &errOut)
	}
	for _, w := range wantOut {
		if !strings.Contains(out.String(), w) {
			t.Errorf("stdout does not mention %q:\n%s", w, &out)
		}
	}
	for _, w := range wantErr {
		if !strings.Contains(errOut.String(), w) {
			t.Errorf("stderr does not mention %q:\n%s", w, &errOut)
		}
	}
	return &out
}
