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

// TestRunTransforms: floe run's transforms: take a YAML spec or a .sql
// file (with output:), and their mistakes name their line.
func TestRunTransforms(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"pages.yaml":  "name: pages\nsource: ods.events\noutput: ads.pages\ntime: event_time\nwindow: {size: 1h}\nmeasures:\n  - {name: n, fn: count}\n",
		"detail.yaml": "sql: SELECT id FROM ods.events\noutput: dwd.detail\n",
		"detail.sql":  "SELECT id FROM ods.events",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name, yaml string
		outputs    []string // the specs' outputs when no error
		want       []string // in the error
	}{
		{name: "yaml and sql", yaml: "transforms:\n  - spec: detail.yaml\n  - spec: detail.sql\n    output: dwd.other\n", outputs: []string{"dwd.detail", "dwd.other"}},
		{name: "output overrides", yaml: "transforms:\n  - spec: detail.yaml\n    output: dwd.x\n", outputs: []string{"dwd.x"}},
		{name: "sql without output", yaml: "transforms:\n  - spec: detail.sql\n", want: []string{"floe.yaml:2: transforms[0].output: required"}},
		{name: "missing file", yaml: "transforms:\n  - spec: nope.yaml\n", want: []string{"floe.yaml:2: transforms[0].spec: read transform spec"}},
		{name: "bad output", yaml: "transforms:\n  - spec: detail.sql\n    output: nodot\n", want: []string{"floe.yaml:2: transforms[0].spec: transform nodot: output:"}},
		{name: "same output twice", yaml: "transforms:\n  - spec: detail.yaml\n  - spec: detail.sql\n    output: dwd.detail\n", want: []string{"floe.yaml:3: transforms[1].spec: transform name dwd.detail is also transforms[0]'s"}},
		{name: "output of an aggregation", yaml: "aggregations:\n  - spec: pages.yaml\ntransforms:\n  - spec: detail.sql\n    output: ads.pages\n", want: []string{"floe.yaml:4: transforms[0].spec: output ads.pages is also aggregations[0]'s"}},
		{name: "unknown key", yaml: "transforms:\n  - spec: detail.sql\n    outptu: dwd.x\n", want: []string{"floe.yaml:3: transforms[0].outptu: unknown key"}},
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
				var got []string
				for _, s := range cfg.TransformSpecs {
					got = append(got, s.Output)
				}
				if strings.Join(got, ",") != strings.Join(tt.outputs, ",") {
					t.Fatalf("outputs %v, want %v", got, tt.outputs)
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

// TestRunSQLAggregations: an aggregations: entry may name a .sql spec,
// with its output (required) and a name (to tell it from a YAML twin of
// the same base name); mistakes are FILE:LINE: key.path: reason.
func TestRunSQLAggregations(t *testing.T) {
	dir := t.TempDir()
	yamlSpec := "name: pages\nsource: ods.events\noutput: ads.pages\ntime: event_time\nwindow: {size: 1h}\nmeasures:\n  - {name: n, fn: count}\n"
	sqlSpec := "SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start, count(*) AS n FROM ods.events GROUP BY 1\n"
	for name, text := range map[string]string{"pages.yaml": yamlSpec, "pages.sql": sqlSpec, "bad.sql": "SELECT nope FROM\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name, yaml string
		want       []string // specs' name=output; or, with err, in the error
		err        bool
	}{
		{name: "sql with output", yaml: "aggregations:\n  - spec: pages.sql\n    output: ads.pages_sql\n", want: []string{"pages=ads.pages_sql"}},
		{name: "sql beside its yaml twin, named", yaml: "aggregations:\n  - spec: pages.yaml\n  - spec: pages.sql\n    output: ads.pages_sql\n    name: pages_sql\n",
			want: []string{"pages=ads.pages", "pages_sql=ads.pages_sql"}},
		{name: "sql without output", yaml: "aggregations:\n  - spec: pages.sql\n", err: true, want: []string{"floe.yaml:2: aggregations[0].output: required for a .sql spec"}},
		{name: "sql beside its yaml twin, unnamed", yaml: "aggregations:\n  - spec: pages.yaml\n  - spec: pages.sql\n    output: ads.pages_sql\n", err: true,
			want: []string{"floe.yaml:3: aggregations[1].spec: spec name pages is also aggregations[0]'s (name: sets another)"}},
		{name: "sql that does not parse", yaml: "aggregations:\n  - spec: bad.sql\n    output: ads.bad\n", err: true, want: []string{"floe.yaml:2: aggregations[0].spec:", "bad.sql"}},
		{name: "yaml with another output", yaml: "aggregations:\n  - spec: pages.yaml\n    output: ads.other\n", err: true, want: []string{"floe.yaml:2: aggregations[0].spec:", "differs from -output ads.other"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "floe.yaml")
			if err := os.WriteFile(p, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(p, Run, source.NewRegistry())
			if tt.err {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range cfg.Specs {
				got = append(got, s.Name+"="+s.Output)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("specs %v, want %v", got, tt.want)
			}
		})
	}
}
