package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIngestSourcesConfig: the sources: entries of floe.yaml resolve
// through the built-in kinds, with the errors a user sees, and build the
// pipeline's sources and table specs.
func TestIngestSourcesConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, sources string
		err           string
		specs         string
	}{
		{name: "missing type", sources: "  - gen: {}\n", err: "sources[0].type: required (gen, kafka, mysql)"},
		{name: "unknown type", sources: "  - type: gen\n  - type: kafak\n", err: `sources[1].type: "kafak" is not a known source type (gen, kafka, mysql)`},
		{name: "invalid setting", sources: "  - type: gen\n    gen: {partitions: 0}\n", err: "sources[0].gen.partitions: must be between"},
		{name: "gen", sources: "  - type: gen\n", specs: "[ods.events ods.orders floe.dead_letters]"},
		{name: "declared table", sources: "  - type: gen\n    gen: {events-table: ns.ev}\n",
			specs: "[ods.orders floe.dead_letters]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			doc := "tables:\n  - {name: ns.ev, schema: [{name: event_id, type: long}]}\nsources:\n" + tc.sources
			if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(path, ingestSections)
			if wantError(t, err, tc.err) {
				return
			}
			p, err := newPipeline(cfg, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close() //nolint:errcheck // the generator holds nothing
			var names []string
			for _, s := range p.Specs()[len(cfg.Tables):] {
				names = append(names, s.Name)
			}
			if got := fmt.Sprint(names); got != tc.specs {
				t.Fatalf("specs %s, want %s", got, tc.specs)
			}
		})
	}
}
