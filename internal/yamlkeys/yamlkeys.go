// Package yamlkeys finds the mistakes of a YAML config that yaml.v3 leaves
// without a place: keys that no field declares — at any depth, and in a
// section decoded from a yaml.Node, where yaml.v3's KnownFields does not
// apply — and values a custom decoder rejects. Each is an *Error holding
// the node it is about, so that a config loader can name the line and the
// key path, and a misspelt key fails at start-up instead of being ignored.
//
// A key is known when it is the yaml tag name of an exported field of the
// Go type it is decoded into (fields of ",inline" structs included);
// untagged fields and fields tagged "-" take no key.
package yamlkeys

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is an unknown key (Key set) or an invalid value (Reason set) in a
// YAML document.
type Error struct {
	// Node is the unknown key's node, or the invalid value's. A loader
	// that decoded the document into a yaml.Node first finds it in its
	// tree to name the full key path.
	Node *yaml.Node
	// Section names where Node is as the reporter knows it ("kafka.routes"
	// for Check, the parent's key path for Unknown); may be empty.
	Section string
	// Key is the unknown key; empty for an invalid value.
	Key string
	// Reason says what is wrong with an invalid value.
	Reason string
}

// Error is "line N: section: unknown key "x"" or "line N: section: reason".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Node != nil && e.Node.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Node.Line)
	}
	if e.Section != "" {
		b.WriteString(e.Section + ": ")
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "unknown key %q", e.Key)
	} else {
		b.WriteString(e.Reason)
	}
	return b.String()
}

// Invalid is the error of a custom decoder (an UnmarshalYAML method) that
// rejects the value n: it keeps n so that the error can be located.
func Invalid(n *yaml.Node, reason string) *Error {
	return &Error{Node: n, Reason: reason}
}

// Check returns an *Error for the first key of mapping n that is no yaml
// tag of T's fields. A node that is not a mapping is left to the decoder.
// Types with an UnmarshalYAML method call it on their own node.
func Check[T any](n *yaml.Node, section string) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	known := fields(reflect.TypeFor[T]())
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; known[k.Value] == nil {
			return &Error{Node: k, Section: section, Key: k.Value}
		}
	}
	return nil
}

// DecodeOver checks n's keys against T (see Check), decodes n over def
// and, if that succeeds, stores the result in *out. T is usually the
// config type redeclared without its UnmarshalYAML method, which calls
// DecodeOver.
func DecodeOver[T any](n *yaml.Node, section string, def T, out *T) error {
	if err := Check[T](n, section); err != nil {
		return err
	}
	if err := n.Decode(&def); err != nil {
		return err
	}
	*out = def
	return nil
}

// Unknown returns every key of the document or node n, at any depth, that
// the Go type T it is decoded into does not declare, in document order;
// path is n's key path ("" for a document). It descends through structs,
// pointers, slices, arrays and maps, and stops at interfaces, yaml.Node
// fields and types with an UnmarshalYAML method: those check their own
// keys when decoded (with Check). A node whose kind does not fit the type
// is left to the decoder.
func Unknown[T any](n *yaml.Node, path string) []*Error {
	var errs []*Error
	unknown(n, reflect.TypeFor[T](), path, &errs)
	return errs
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	nodeType        = reflect.TypeFor[yaml.Node]()
)

func unknown(n *yaml.Node, t reflect.Type, path string, errs *[]*Error) {
	for n != nil && (n.Kind == yaml.AliasNode || n.Kind == yaml.DocumentNode) {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) > 0 {
			n = n.Content[0]
		} else {
			n = nil
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil || t == nodeType || t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		known := fields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.ShortTag() == "!!merge" {
				unknown(v, t, path, errs)
				continue
			}
			f := known[k.Value]
			if f == nil {
				*errs = append(*errs, &Error{Node: k, Section: path, Key: k.Value})
				continue
			}
			unknown(v, f, Join(path, k.Value), errs)
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			unknown(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			unknown(n.Content[i+1], t.Elem(), Join(path, n.Content[i].Value), errs)
		}
	}
}

// fields maps the keys struct type t takes to their field types.
func fields(t reflect.Type) map[string]reflect.Type {
	known := make(map[string]reflect.Type, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case tag == "" || tag == "-" || !f.IsExported():
		case name == "" && strings.Contains(","+opts+",", ",inline,"):
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range fields(ft) {
					known[k] = v
				}
			}
		case name != "":
			known[name] = f.Type
		}
	}
	return known
}

// Join appends key to the key path path: "writer" and "commit-interval"
// give "writer.commit-interval".
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// DecodeStrict decodes the one YAML document b into v; a key that no field
// of v declares is an error (yaml.v3's KnownFields). Its errors read
// "parse <what>: ...", an empty document "parse <what>: empty document".
func DecodeStrict(b []byte, v any, what string) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("parse %s: empty document", what)
		}
		return fmt.Errorf("parse %s: %w", what, err)
	}
	return nil
}
