package demo

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/aggregate"
)

// TestWriteConfig: the demo's directory is recreated (nothing of an old
// run survives) and its floe.yaml names paths under it.
func TestWriteConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lake")
	if err := os.MkdirAll(filepath.Join(dir, "warehouse"), 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "warehouse", "old.parquet")
	if err := os.WriteFile(stale, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	path, err := WriteConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "floe.yaml") {
		t.Fatalf("config at %s", path)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("a file of the old run survived: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Catalog struct {
			URI       string `yaml:"uri"`
			Warehouse string `yaml:"warehouse"`
		} `yaml:"catalog"`
	}
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Catalog.URI != filepath.Join(dir, "catalog.db") || cfg.Catalog.Warehouse != filepath.Join(dir, "warehouse") {
		t.Fatalf("catalog %+v, want paths under %s", cfg.Catalog, dir)
	}
	if strings.Contains(string(b), "demo-lake") {
		t.Fatalf("the config still names demo-lake:\n%s", b)
	}
}

// TestPVSpec: the embedded aggregation spec parses, and reads the table
// the demo's generator writes.
func TestPVSpec(t *testing.T) {
	spec, err := aggregate.ParseSpec(demoPVSpec)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Source != "ods.events" || !strings.HasPrefix(spec.Output, "dws.") {
		t.Fatalf("spec %+v", spec)
	}
}
