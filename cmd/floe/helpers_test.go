package main

import (
	"bytes"
	"context"
	"encoding/json"
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

// cmdCase is one run of the command in a table-driven test.
type cmdCase struct {
	name     string
	args     []string
	wantCode int
	// wantOut must all appear in stdout, wantErr in stderr.
	wantOut []string
	wantErr []string
	// json decodes stdout into this when set.
	json any
}

// check runs the command and fails the test unless it exits with
// wantCode, every string of wantOut appears in its stdout and every one of
// wantErr in its stderr, and stdout decodes into json when that is set.
func (c cmdCase) check(t *testing.T) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(c.args, &out, &errOut)
	if code != c.wantCode {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.wantCode, &out, &errOut)
	}
	for _, w := range c.wantOut {
		if !strings.Contains(out.String(), w) {
			t.Errorf("stdout does not mention %q:\n%s", w, &out)
		}
	}
	for _, w := range c.wantErr {
		if !strings.Contains(errOut.String(), w) {
			t.Errorf("stderr does not mention %q:\n%s", w, &errOut)
		}
	}
	if c.json != nil {
		if err := json.Unmarshal(out.Bytes(), c.json); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, &out)
		}
	}
}

// wantError fails the test unless err is nil when want is "", or else an
// error that mentions want. It reports whether an error was wanted: the
// case ends there.
func wantError(t *testing.T, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return false
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
	return true
}
