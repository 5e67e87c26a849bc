package yamlkeys

import (
	"errors"
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

type leaf struct {
	Topic string `yaml:"topic,omitempty"`
}

// self checks its own keys when decoded; Unknown does not look inside.
type self struct {
	A string `yaml:"a"`
}

func (s *self) UnmarshalYAML(*yaml.Node) error { return nil }

type Embedded struct {
	Extra string `yaml:"extra"`
}

type root struct {
	Embedded `yaml:",inline"`
	Name     string            `yaml:"name"`
	Leaf     *leaf             `yaml:"leaf"`
	Leaves   []leaf            `yaml:"leaves"`
	ByName   map[string]leaf   `yaml:"by-name"`
	Self     self              `yaml:"self"`
	Raw      yaml.Node         `yaml:"raw"`
	Props    map[string]string `yaml:"props"`
}

func TestUnknown(t *testing.T) {
	doc := `name: x
extra: y
nmae: z
leaf: {topic: a, topc: b}
leaves:
  - topic: a
  - tpoic: b
by-name:
  k: {topic: a, x: 1}
self: {anything: 1}
raw: {anything: 1}
props: {any.key: v}
base: &b {topic: a}
leaves2: [*b]
`
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range Unknown[root](&n, "") {
		got = append(got, e.Error())
		if e.Node == nil || e.Node.Value != e.Key {
			t.Errorf("%v: node %v is not the key", e, e.Node)
		}
	}
	want := []string{
		`line 3: unknown key "nmae"`,
		`line 4: leaf: unknown key "topc"`,
		`line 7: leaves[1]: unknown key "tpoic"`,
		`line 9: by-name.k: unknown key "x"`,
		`line 13: unknown key "base"`,
		`line 14: unknown key "leaves2"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A merge key brings in the keys of its mapping.
	if err := yaml.Unmarshal([]byte("base: &b {topic: a}\nleaf: {<<: *b, tpic: c}\n"), &n); err != nil {
		t.Fatal(err)
	}
	errs := Unknown[struct {
		Base leaf `yaml:"base"`
		Leaf leaf `yaml:"leaf"`
	}](&n, "top")
	if len(errs) != 1 || errs[0].Error() != `line 2: top.leaf: unknown key "tpic"` {
		t.Errorf("merge: got %v", errs)
	}
}

func TestCheckTagOptions(t *testing.T) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("topic: a\n"), &n); err != nil {
		t.Fatal(err)
	}
	if err := Check[leaf](n.Content[0], "leaf"); err != nil {
		t.Errorf("a tag with options is a known key: %v", err)
	}
}

func TestInvalid(t *testing.T) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("a: 1\nb: zz\n"), &n); err != nil {
		t.Fatal(err)
	}
	v := n.Content[0].Content[3]
	err := error(Invalid(v, `"zz" is not a size`))
	var e *Error
	if !errors.As(err, &e) || e.Node != v || err.Error() != `line 2: "zz" is not a size` {
		t.Errorf("got %v", err)
	}
}
