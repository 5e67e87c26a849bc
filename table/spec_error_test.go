package table

import (
	"errors"
	"strings"
	"testing"
)

// TestSpecErrorKeys checks that every invalid setting Validate finds is a
// *SpecError naming its key path in the spec's YAML, and that the message
// stays the one Ensure and ParseSpecs report.
func TestSpecErrorKeys(t *testing.T) {
	cols := func(f ...Field) []Field {
		return append([]Field{{Name: "id", Type: "long", Required: true}, {Name: "ts", Type: "timestamp"}}, f...)
	}
	tests := []struct {
		name             string
		spec             Spec
		key, reason, msg string
	}{
		{"name", Spec{Name: "events", Schema: cols()}, "name", `table name "events": want namespace.table`, `table name "events": want namespace.table`},
		{"no columns", Spec{Name: "a.b"}, "schema", "no columns", "table a.b: schema: no columns"},
		{"column type", Spec{Name: "a.b", Schema: cols(Field{Name: "s", Type: "strng"})}, "schema[2].type", `"strng" is not an Iceberg type`, `table a.b: column "s": unknown type "strng"`},
		{"decimal", Spec{Name: "a.b", Schema: cols(Field{Name: "d", Type: "decimal(40,2)"})}, "schema[2].type", `type "decimal(40,2)": decimal precision must be 1 to 38`, `column "d": type "decimal(40,2)": decimal precision`},
		{"no type", Spec{Name: "a.b", Schema: cols(Field{Name: "s"})}, "schema[2].type", "required", `column "s": no type`},
		{"no name", Spec{Name: "a.b", Schema: cols(Field{Type: "int"})}, "schema[2].name", "required", "schema[2]: column has no name"},
		{"duplicate", Spec{Name: "a.b", Schema: cols(Field{Name: "id", Type: "int"})}, "schema[2].name", `"id" is also schema[0]`, `column "id": duplicate name`},
		{"nested type", Spec{Name: "a.b", Schema: cols(Field{Name: "s", Type: "struct", Fields: []Field{{Name: "x", Type: "int"}, {Name: "y", Type: "nope"}}})},
			"schema[2].fields[1].type", `"nope" is not an Iceberg type`, `column "s.y": unknown type "nope"`},
		{"list element", Spec{Name: "a.b", Schema: cols(Field{Name: "l", Type: "list", Element: &Field{Type: "nope"}})}, "schema[2].element.type", `"nope" is not an Iceberg type`, `column "l.element"`},
		{"map value", Spec{Name: "a.b", Schema: cols(Field{Name: "m", Type: "map", Key: &Field{Type: "string"}})}, "schema[2].value", "map needs both key and value", `column "m": map needs both key and value`},
		{"extra", Spec{Name: "a.b", Schema: cols(Field{Name: "x", Type: "int", Element: &Field{Type: "int"}})}, "schema[2].element", "type int does not take element", `column "x": type int does not take element`},
		{"identifier", Spec{Name: "a.b", Schema: cols(), IdentifierFields: []string{"id", "ts"}}, "identifier-fields[1]", `column "ts" must be required`, `identifier-fields: column "ts" must be required`},
		{"partition column", Spec{Name: "a.b", Schema: cols(), Partition: []PartitionField{{Column: "nope"}}}, "partition[0].column", `column "nope" not found`, `partition[0]: column "nope" not found`},
		{"partition transform", Spec{Name: "a.b", Schema: cols(), Partition: []PartitionField{{Column: "ts", Transform: "weekly"}}}, "partition[0].transform",
			`unknown transform "weekly": want identity, year, month, day, hour, bucket[N], truncate[W] or void`, `partition[0] on "ts": unknown transform "weekly"`},
		{"partition mismatch", Spec{Name: "a.b", Schema: cols(), Partition: []PartitionField{{Column: "id", Transform: "day"}}}, "partition[0].transform",
			`transform day does not apply to column "id" of type long`, `partition[0]: transform day does not apply`},
		{"sort direction", Spec{Name: "a.b", Schema: cols(), Sort: []SortField{{Column: "id"}, {Column: "ts", Direction: "up"}}}, "sort[1].direction", `direction "up": want asc or desc`, `sort[1] on "ts": direction "up"`},
		{"sort nulls", Spec{Name: "a.b", Schema: cols(), Sort: []SortField{{Column: "ts", Nulls: "middle"}}}, "sort[0].nulls", `nulls "middle": want first or last`, `sort[0] on "ts": nulls "middle"`},
		{"format version", Spec{Name: "a.b", Schema: cols(), Properties: map[string]string{"format-version": "9"}}, "properties.format-version", `"9" is not 1, 2 or 3`, `table a.b: properties: format-version "9": want 1, 2 or 3`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("got %v (%T), want a *SpecError", err, err)
			}
			if se.Key != tt.key || se.Reason != tt.reason {
				t.Errorf("got key %q reason %q, want %q %q", se.Key, se.Reason, tt.key, tt.reason)
			}
			if got := err.Error(); !strings.Contains(got, tt.msg) {
				t.Errorf("message %q does not hold %q", got, tt.msg)
			}
		})
	}
}
