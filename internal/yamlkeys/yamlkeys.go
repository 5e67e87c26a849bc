// Package yamlkeys rejects unknown keys in a YAML config section that is
// decoded from a yaml.Node — where yaml.v3's KnownFields does not apply —
// naming the line and the section, so that a misspelt key fails at
// start-up instead of being ignored.
package yamlkeys

import (
	"fmt"
	"reflect"

	"gopkg.in/yaml.v3"
)

// Check returns an error for the first key of mapping n that is no yaml
// tag of T's fields. A node that is not a mapping is left to the decoder.
func Check[T any](n *yaml.Node, section string) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	t := reflect.TypeFor[T]()
	known := make(map[string]bool, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("yaml"); tag != "" && tag != "-" {
			known[tag] = true
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !known[k.Value] {
			return fmt.Errorf("line %d: %s: unknown key %q", k.Line, section, k.Value)
		}
	}
	return nil
}
