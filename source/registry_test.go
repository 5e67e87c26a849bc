package source_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/source/all"
	"github.com/floe-lake/floe/source/gen"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// TestResolve decodes source entries as floe.yaml holds them and resolves
// them with the built-in kinds.
func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name, doc, err string
	}{
		{"defaults", "- type: gen", ""},
		{"null section", "- type: gen\n  gen:", ""},
		{"settings", "- type: gen\n  gen: {id: g2, partitions: 2}", ""},
		{"stray section of another kind", "- type: gen\n  kafka: {brokers: [x:1]}", ""},
		{"missing type", "- gen: {}", "sources[0].type: required (gen, kafka, mysql)"},
		{"unknown type", "- type: kafak", `sources[0].type: "kafak" is not a known source type (gen, kafka, mysql)`},
		{"unknown key", "- type: gen\n  gen: {}\n  extra: 1", `line 4: sources[0]: unknown key "extra"`},
		{"unknown key in the section", "- type: gen\n  gen: {sed: 1}", `unknown key "sed"`},
		{"unknown key in a stray section", "- type: gen\n  kafka: {brokerz: [x:1]}", `unknown key "brokerz"`},
		{"bad value", "- type: gen\n  gen: {partitions: many}", "cannot unmarshal"},
		{"invalid setting", "- type: gen\n  gen: {partitions: 0}", "sources[0].gen.partitions: must be between 1 and"},
		{"invalid defaults", "- type: kafka", "sources[0].kafka."},
		{"twice", "- type: gen\n  type: kafka", `key "type" is set twice`},
		{"not a mapping", "- gen", "an entry must be a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg struct {
				Sources []source.Config `yaml:"sources"`
			}
			err := yaml.Unmarshal([]byte("sources:\n"+indent(tc.doc)), &cfg)
			if err == nil {
				err = cfg.Sources[0].Resolve(all.Registry(), "sources[0]")
			}
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %v, want %q", err, tc.err)
			}
		})
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n"
}

// TestResolveSettings: a resolved entry holds its kind's settings with
// the defaults applied, and New builds the source from them.
func TestResolveSettings(t *testing.T) {
	var c source.Config
	if err := yaml.Unmarshal([]byte("type: gen\ngen: {id: g2, partitions: 2}\n"), &c); err != nil {
		t.Fatal(err)
	}
	if _, err := c.New(source.Options{}); err == nil {
		t.Fatal("New before Resolve succeeded")
	}
	if err := c.Resolve(all.Registry(), "sources[0]"); err != nil {
		t.Fatal(err)
	}
	g, ok := c.Settings().(*gen.Config)
	if !ok {
		t.Fatalf("settings %T", c.Settings())
	}
	want := gen.DefaultConfig()
	if g.ID != "g2" || g.Partitions != 2 || g.Seed != want.Seed || g.EventsTable != want.EventsTable || g.Now == nil {
		t.Fatalf("settings %+v", g)
	}
	src, err := c.New(source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close() //nolint:errcheck // the generator holds nothing
	if src.ID() != "g2" {
		t.Fatalf("ID %q", src.ID())
	}
	// An entry made in code, without a section, gets the defaults.
	c = source.Config{Type: "gen"}
	if err := c.Resolve(all.Registry(), "sources[1]"); err != nil {
		t.Fatal(err)
	}
	if g := c.Settings().(*gen.Config); g.Partitions != want.Partitions {
		t.Fatalf("defaults %+v", g)
	}
}

type nopSource struct{ id string }

func (s nopSource) ID() string                               { return s.id }
func (s nopSource) Specs([]table.Spec) ([]table.Spec, error) { return nil, nil }
func (s nopSource) Run(context.Context, writer.Sink) error   { return nil }
func (s nopSource) Close() error                             { return nil }
func (s nopSource) Health() error                            { return nil }
func (c *nopConfig) ApplyDefaults()                          {}
func (c *nopConfig) Validate() error                         { return nil }
func nopKind(name string) source.Kind {
	return source.NewKind(name, func() nopConfig { return nopConfig{} }, func(c nopConfig, _ source.Options) (source.Source, error) {
		return nopSource{c.ID}, nil
	})
}

type nopConfig struct {
	ID string `yaml:"id"`
}

// TestRegistry: kinds are listed in registration order, a name registers
// once, and a registered kind resolves like a built-in one.
func TestRegistry(t *testing.T) {
	r := all.Registry()
	if got := fmt.Sprint(r.Names()); got != "[gen kafka mysql]" {
		t.Fatalf("built-in kinds %s", got)
	}
	if err := r.Register(nopKind("gen")); err == nil {
		t.Fatal("a second gen kind registered")
	}
	if err := r.Register(source.Kind{}); err == nil {
		t.Fatal("a zero Kind registered")
	}
	if err := r.Register(nopKind("nop")); err != nil {
		t.Fatal(err)
	}
	if k, ok := r.Lookup("nop"); !ok || k.Name() != "nop" {
		t.Fatalf("Lookup(nop) = %v, %v", k.Name(), ok)
	}
	var c source.Config
	if err := yaml.Unmarshal([]byte("type: nop\nnop: {id: n1}\n"), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(r, "sources[0]"); err != nil {
		t.Fatal(err)
	}
	src, err := c.New(source.Options{})
	if err != nil || src.ID() != "n1" {
		t.Fatalf("New = %v, %v", src, err)
	}
	if err := c.Resolve(all.Registry(), "sources[0]"); err == nil || !strings.Contains(err.Error(), `unknown key "nop"`) {
		t.Fatalf("a registry without nop: %v", err)
	}
}
