package yamlkeys

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type section struct {
	Name  string `yaml:"name"`
	Count int    `yaml:"count"`
	Skip  string `yaml:"-"`
	Plain string
}

func TestCheck(t *testing.T) {
	node := func(s string) *yaml.Node {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(s), &n); err != nil {
			t.Fatal(err)
		}
		return n.Content[0]
	}
	if err := Check[section](node("name: a\ncount: 2\n"), "s"); err != nil {
		t.Fatalf("known keys rejected: %v", err)
	}
	if err := Check[section](node("- a\n- b\n"), "s"); err != nil {
		t.Fatalf("a list is the decoder's to reject: %v", err)
	}
	for doc, want := range map[string]string{
		"name: a\ncuont: 2\n": `line 2: s: unknown key "cuont"`,
		"Skip: x\n":           `line 1: s: unknown key "Skip"`,
		"Plain: x\n":          `line 1: s: unknown key "Plain"`,
	} {
		err := Check[section](node(doc), "s")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %s", doc, err, want)
		}
	}
}
