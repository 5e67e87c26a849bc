package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floe-lake/floe/source"
)

// TestRunSections: floe run's aggregations: are read relative to the
// config file, and their mistakes are FILE:LINE: key.path: reason.
func TestRunSections(t *testing.T) {
	dir := t.TempDir()
	spec := "name: pages\nsource: ods.events\noutput: ads.pages\ntime: event_time\nwindow: {size: 1h}\nmeasures:\n  - {name: n, fn: count}\n"
	if err := os.WriteFile(filepath.Join(dir, "pages.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("name: bad\nsource: ods.events\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, yaml string
		want       []string // in the error; none: no error
	}{
		{name: "ok", yaml: "aggregations:\n  - spec: pages.yaml\nrun:\n  unavailable-timeout: 5s\n"},
		{name: "missing file", yaml: "aggregations:\n  - spec: pages.yaml\n  - spec: nope.yaml\n", want: []string{"floe.yaml:3: aggregations[1].spec: read aggregate spec"}},
		{name: "invalid spec", yaml: "aggregations:\n  - spec: bad.yaml\n", want: []string{"floe.yaml:2: aggregations[0].spec:", "bad.yaml"}},
		{name: "same output twice", yaml: "aggregations:\n  - spec: pages.yaml\n  - spec: pages.yaml\n", want: []string{"floe.yaml:3: aggregations[1].spec: spec name pages is also aggregations[0]'s"}},
		{name: "unknown key", yaml: "run:\n  unavailable-timout: 5s\n", want: []string{"floe.yaml:2: run.unavailable-timout: unknown key"}},
		{name: "negative", yaml: "run:\n  unavailable-timeout: -5s\n", want: []string{"floe.yaml:2: run.unavailable-timeout: -5s is negative"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "floe.yaml")
			if err := os.WriteFile(p, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(p, Run, source.NewRegistry())
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if len(cfg.Specs) != 1 || cfg.Specs[0].Name != "pages" || cfg.Run.UnavailableTimeout.Seconds() != 5 || !*cfg.Run.Compaction {
					t.Fatalf("specs %+v, run %+v", cfg.Specs, cfg.Run)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
