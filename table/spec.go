package table

import "fmt"

// Spec describes one Iceberg table as Floe's YAML config holds it:
//
//	name: ods.events
//	schema:
//	  - {name: event_id, type: long, required: true}
//	  - {name: event_time, type: timestamptz, required: true}
//	  - {name: amount, type: "decimal(18,2)"}
//	  - name: device
//	    type: struct
//	    fields: [{name: os, type: string}]
//	  - {name: tags, type: list, element: {type: string}}
//	  - {name: attrs, type: map, key: {type: string}, value: {type: string}}
//	partition:
//	  - {column: event_time, transform: day}
//	  - {column: user_id, transform: "bucket[16]"}
//	sort:
//	  - {column: event_time}
//	identifier-fields: [event_id]
//	properties:
//	  write.target-file-size-bytes: "134217728"
type Spec struct {
	// Name is namespace.table (the namespace may itself contain dots; the
	// last dot separates the table name).
	Name string `yaml:"name" json:"name"`
	// Schema lists the top-level columns in order.
	Schema []Field `yaml:"schema" json:"schema"`
	// Partition lists partition fields, in order. Default: unpartitioned.
	Partition []PartitionField `yaml:"partition,omitempty" json:"partition,omitempty"`
	// Sort is the table's sort order. Default: unsorted.
	Sort []SortField `yaml:"sort,omitempty" json:"sort,omitempty"`
	// IdentifierFields names the columns that identify a row (the primary
	// key of a CDC table). They must be required primitive columns. A
	// table with them may be partitioned too, by key columns or others:
	// the keyed writer's key index spans partitions, so unlike Flink's
	// upsert sink Floe does not require the partition columns in the key.
	IdentifierFields []string `yaml:"identifier-fields,omitempty" json:"identifier-fields,omitempty"`
	// Properties are Iceberg table properties under Iceberg's own names.
	// Floe's defaults (DefaultProperties) apply where unset.
	Properties map[string]string `yaml:"properties,omitempty" json:"properties,omitempty"`
}

// Field is a column, or a nested field, list element, map key or value.
type Field struct {
	// Name of the column or struct field; empty for list elements and map
	// keys and values.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Type is a primitive (boolean, int, long, float, double, date, time,
	// timestamp, timestamptz, string, uuid, binary, fixed[N],
	// decimal(P,S)) or struct, list, map.
	Type string `yaml:"type" json:"type"`
	// Required makes the field non-nullable. Default: optional. Map keys
	// are always required.
	Required bool   `yaml:"required,omitempty" json:"required,omitempty"`
	Doc      string `yaml:"doc,omitempty" json:"doc,omitempty"`
	// Fields of a struct.
	Fields []Field `yaml:"fields,omitempty" json:"fields,omitempty"`
	// Element of a list.
	Element *Field `yaml:"element,omitempty" json:"element,omitempty"`
	// Key and Value of a map.
	Key   *Field `yaml:"key,omitempty" json:"key,omitempty"`
	Value *Field `yaml:"value,omitempty" json:"value,omitempty"`
}

// PartitionField partitions by a transform of a source column.
type PartitionField struct {
	// Column is the source column (a dotted path for nested fields).
	Column string `yaml:"column" json:"column"`
	// Transform: identity, year, month, day, hour, bucket[N], truncate[W],
	// void. Default: identity.
	Transform string `yaml:"transform,omitempty" json:"transform,omitempty"`
	// Name of the partition field. Default: Iceberg's (column_day, ...).
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
}

// SortField is one key of the table's sort order.
type SortField struct {
	Column string `yaml:"column" json:"column"`
	// Transform applied before sorting. Default: identity.
	Transform string `yaml:"transform,omitempty" json:"transform,omitempty"`
	// Direction: asc or desc. Default: asc.
	Direction string `yaml:"direction,omitempty" json:"direction,omitempty"`
	// Nulls: first or last. Default: first for asc, last for desc.
	Nulls string `yaml:"nulls,omitempty" json:"nulls,omitempty"`
}

// DefaultProperties are the table properties Floe sets on tables it creates
// unless the spec says otherwise. Metadata files are pruned on commit
// because one commit a second would otherwise leave a new metadata.json
// per commit forever: iceberg-go v0.7.0 writes a whole new metadata file
// per commit (about 750 bytes more per snapshot; 357 MB of metadata after
// 1,000 commits, measured) and keeps the old ones unless
// write.metadata.delete-after-commit.enabled is set.
func DefaultProperties() map[string]string {
	return map[string]string{
		"format-version":                             "2",
		"write.parquet.compression-codec":            "zstd",
		"write.target-file-size-bytes":               "134217728",
		"write.metadata.delete-after-commit.enabled": "true",
		"write.metadata.previous-versions-max":       "20",
	}
}

// A SpecError is an invalid setting of a Spec. Its message is the one the
// spec's checks have always given (Ensure, ParseSpecs); Key and Reason
// serve config loaders that report "key.path: reason".
type SpecError struct {
	// Key is the setting's path within the spec, as in its YAML: "name",
	// "schema[2].type", "schema[0].fields[1].name", "partition[0].transform",
	// "sort[1].direction", "identifier-fields[0]",
	// "properties.format-version".
	Key string
	// Reason says what is wrong with the setting.
	Reason string
	msg    string
	err    error
}

func (e *SpecError) Error() string { return e.msg }

// Unwrap returns the underlying error from iceberg-go, if any.
func (e *SpecError) Unwrap() error { return e.err }

// specErrorf is the SpecError at key whose reason is format's text and
// whose message is that text after prefix.
func specErrorf(key, prefix, format string, args ...any) *SpecError {
	reason := fmt.Sprintf(format, args...)
	return &SpecError{Key: key, Reason: reason, msg: prefix + reason}
}

// specWrap is the SpecError at key whose reason is err and whose message
// is err after prefix.
func specWrap(key, prefix string, err error) *SpecError {
	return &SpecError{Key: key, Reason: err.Error(), msg: prefix + err.Error(), err: err}
}
