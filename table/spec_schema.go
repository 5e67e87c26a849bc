package table

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
	"gopkg.in/yaml.v3"
)

// ParseIdent splits "namespace.table" at its last dot. The namespace may
// itself contain dots; each dot-separated part is one namespace level, as
// Iceberg's own tools read a dotted namespace.
func ParseIdent(name string) (icetable.Identifier, error) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return nil, fmt.Errorf("table name %q: want namespace.table", name)
	}
	ident := append(strings.Split(name[:i], "."), name[i+1:])
	for _, part := range ident {
		if part == "" {
			return nil, fmt.Errorf("table name %q: empty namespace or table part; want namespace.table", name)
		}
		if strings.TrimSpace(part) != part || strings.ContainsAny(part, "/\\") || strings.ContainsFunc(part, unicode.IsControl) {
			return nil, fmt.Errorf("table name %q: part %q has surrounding spaces, a slash or a control character", name, part)
		}
	}
	return ident, nil
}

var (
	fixedRe   = regexp.MustCompile(`^fixed\s*\[\s*(\d+)\s*\]$`)
	decimalRe = regexp.MustCompile(`^decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$`)
)

// parsePrimitive parses an Iceberg primitive type name. Names are matched
// case-insensitively; fixed[N] and decimal(P,S) may contain spaces.
func parsePrimitive(name string) (iceberg.Type, error) {
	s := strings.ToLower(strings.TrimSpace(name))
	switch s {
	case "boolean":
		return iceberg.PrimitiveTypes.Bool, nil
	case "int":
		return iceberg.PrimitiveTypes.Int32, nil
	case "long":
		return iceberg.PrimitiveTypes.Int64, nil
	case "float":
		return iceberg.PrimitiveTypes.Float32, nil
	case "double":
		return iceberg.PrimitiveTypes.Float64, nil
	case "date":
		return iceberg.PrimitiveTypes.Date, nil
	case "time":
		return iceberg.PrimitiveTypes.Time, nil
	case "timestamp":
		return iceberg.PrimitiveTypes.Timestamp, nil
	case "timestamptz":
		return iceberg.PrimitiveTypes.TimestampTz, nil
	case "string":
		return iceberg.PrimitiveTypes.String, nil
	case "uuid":
		return iceberg.PrimitiveTypes.UUID, nil
	case "binary":
		return iceberg.PrimitiveTypes.Binary, nil
	}
	if m := fixedRe.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("type %q: fixed length must be a positive integer", name)
		}
		return iceberg.FixedTypeOf(n), nil
	}
	if m := decimalRe.FindStringSubmatch(s); m != nil {
		p, perr := strconv.Atoi(m[1])
		sc, serr := strconv.Atoi(m[2])
		switch {
		case perr != nil || p < 1 || p > 38:
			return nil, fmt.Errorf("type %q: decimal precision must be 1 to 38", name)
		case serr != nil || sc > p:
			return nil, fmt.Errorf("type %q: decimal scale must be 0 to the precision", name)
		}
		return iceberg.DecimalTypeOf(p, sc), nil
	}
	return nil, &SpecError{Reason: fmt.Sprintf("%q is not an Iceberg type", name), msg: fmt.Sprintf("unknown type %q", name)}
}

// idAlloc hands out field ids 1, 2, 3, ... in the order Iceberg assigns
// them to a new table's schema (iceberg.AssignFreshSchemaIDs): depth-first,
// a field before its children; a map's key and value before their children.
type idAlloc struct{ last int }

func (a *idAlloc) next() int {
	a.last++
	return a.last
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// icebergFields converts the fields of a struct (or the top-level columns,
// parent == ""); key is where the fields are in the spec's YAML ("schema",
// "schema[2].fields").
func icebergFields(parent, key string, fields []Field, ids *idAlloc) ([]iceberg.NestedField, error) {
	out := make([]iceberg.NestedField, 0, len(fields))
	seen := make(map[string]int, len(fields))
	for i, f := range fields {
		fkey := fmt.Sprintf("%s[%d]", key, i)
		if strings.TrimSpace(f.Name) == "" {
			if parent == "" {
				return nil, &SpecError{Key: fkey + ".name", Reason: "required", msg: fmt.Sprintf("schema[%d]: column has no name", i)}
			}
			return nil, &SpecError{Key: fkey + ".name", Reason: "required", msg: fmt.Sprintf("column %q: field %d has no name", parent, i)}
		}
		path := joinPath(parent, f.Name)
		if j, dup := seen[f.Name]; dup {
			return nil, &SpecError{Key: fkey + ".name", Reason: fmt.Sprintf("%q is also %s[%d]", f.Name, key, j),
				msg: fmt.Sprintf("column %q: duplicate name", path)}
		}
		seen[f.Name] = i
		id := ids.next()
		typ, err := icebergType(path, fkey, f, ids)
		if err != nil {
			return nil, err
		}
		out = append(out, iceberg.NestedField{ID: id, Name: f.Name, Type: typ, Required: f.Required, Doc: f.Doc})
	}
	return out, nil
}

// icebergType converts f's type; path names f in errors, key is f's place
// in the spec's YAML.
func icebergType(path, key string, f Field, ids *idAlloc) (iceberg.Type, error) {
	col := fmt.Sprintf("column %q: ", path)
	kind := strings.ToLower(strings.TrimSpace(f.Type))
	if kind == "" {
		return nil, &SpecError{Key: key + ".type", Reason: "required", msg: col + "no type"}
	}
	// extra rejects the nested-type keys kind does not take.
	extra := func(fields, element, keyValue bool) error {
		var has []string
		if len(f.Fields) > 0 && !fields {
			has = append(has, "fields")
		}
		if f.Element != nil && !element {
			has = append(has, "element")
		}
		if f.Key != nil && !keyValue {
			has = append(has, "key")
		}
		if f.Value != nil && !keyValue {
			has = append(has, "value")
		}
		if len(has) > 0 {
			return specErrorf(key+"."+has[0], col, "type %s does not take %s", kind, strings.Join(has, ", "))
		}
		return nil
	}
	switch kind {
	case "struct":
		if err := extra(true, false, false); err != nil {
			return nil, err
		}
		if len(f.Fields) == 0 {
			return nil, specErrorf(key+".fields", col, "struct has no fields")
		}
		fields, err := icebergFields(path, key+".fields", f.Fields, ids)
		if err != nil {
			return nil, err
		}
		return &iceberg.StructType{FieldList: fields}, nil
	case "list":
		if err := extra(false, true, false); err != nil {
			return nil, err
		}
		if f.Element == nil {
			return nil, specErrorf(key+".element", col, "list has no element")
		}
		elemID := ids.next()
		elem, err := icebergType(path+".element", key+".element", *f.Element, ids)
		if err != nil {
			return nil, err
		}
		return &iceberg.ListType{ElementID: elemID, Element: elem, ElementRequired: f.Element.Required}, nil
	case "map":
		if err := extra(false, false, true); err != nil {
			return nil, err
		}
		if f.Key == nil || f.Value == nil {
			missing := ".key"
			if f.Key != nil {
				missing = ".value"
			}
			return nil, specErrorf(key+missing, col, "map needs both key and value")
		}
		keyID, valueID := ids.next(), ids.next()
		keyType, err := icebergType(path+".key", key+".key", *f.Key, ids)
		if err != nil {
			return nil, err
		}
		value, err := icebergType(path+".value", key+".value", *f.Value, ids)
		if err != nil {
			return nil, err
		}
		return &iceberg.MapType{KeyID: keyID, KeyType: keyType, ValueID: valueID, ValueType: value, ValueRequired: f.Value.Required}, nil
	}
	if err := extra(false, false, false); err != nil {
		return nil, err
	}
	t, err := parsePrimitive(f.Type)
	if err != nil {
		reason := err.Error()
		if se := (*SpecError)(nil); errors.As(err, &se) {
			reason = se.Reason
		}
		return nil, &SpecError{Key: key + ".type", Reason: reason, msg: col + err.Error()}
	}
	return t, nil
}

// IcebergSchema converts the spec's columns to an Iceberg schema, with field
// ids assigned as Iceberg assigns them to a new table (depth-first from 1)
// and the identifier fields set.
func (s Spec) IcebergSchema() (*iceberg.Schema, error) {
	if len(s.Schema) == 0 {
		return nil, specErrorf("schema", "schema: ", "no columns")
	}
	fields, err := icebergFields("", "schema", s.Schema, &idAlloc{})
	if err != nil {
		return nil, err
	}
	identifiers := make([]int, 0, len(s.IdentifierFields))
	seen := make(map[string]bool, len(s.IdentifierFields))
	for i, name := range s.IdentifierFields {
		key := fmt.Sprintf("identifier-fields[%d]", i)
		if seen[name] {
			return nil, specErrorf(key, "identifier-fields: ", "%q listed twice", name)
		}
		seen[name] = true
		var col *iceberg.NestedField
		for i := range fields {
			if fields[i].Name == name {
				col = &fields[i]
				break
			}
		}
		switch {
		case col == nil:
			return nil, specErrorf(key, "identifier-fields: ", "%q is not a top-level column", name)
		case !col.Required:
			return nil, specErrorf(key, "identifier-fields: ", "column %q must be required", name)
		}
		switch col.Type.(type) {
		case iceberg.Float32Type, iceberg.Float64Type:
			return nil, specErrorf(key, "identifier-fields: ", "column %q: a %s column cannot identify rows", name, col.Type)
		case iceberg.PrimitiveType:
		default:
			return nil, specErrorf(key, "identifier-fields: ", "column %q must be a primitive type, not %s", name, col.Type.Type())
		}
		identifiers = append(identifiers, col.ID)
	}
	return iceberg.NewSchemaWithIdentifiers(0, identifiers, fields...), nil
}

// sourceColumn finds the column a partition or sort field is derived from:
// a primitive column, top-level or nested in structs only.
func sourceColumn(sc *iceberg.Schema, name string) (iceberg.NestedField, error) {
	f, ok := sc.FindFieldByName(name)
	if !ok {
		return f, fmt.Errorf("column %q not found", name)
	}
	if _, ok := f.Type.(iceberg.PrimitiveType); !ok {
		return f, fmt.Errorf("column %q is a %s, not a primitive column", name, f.Type.Type())
	}
	parents, err := iceberg.IndexParents(sc)
	if err != nil {
		return f, fmt.Errorf("index schema: %w", err)
	}
	for id, ok := parents[f.ID]; ok; id, ok = parents[id] {
		p, found := sc.FindFieldByID(id)
		if !found {
			break
		}
		switch p.Type.(type) {
		case *iceberg.ListType, *iceberg.MapType:
			return f, fmt.Errorf("column %q is inside a list or map", name)
		}
	}
	return f, nil
}

// parseTransform parses identity, year, month, day, hour, bucket[N],
// truncate[W] or void; empty means identity.
func parseTransform(s string) (iceberg.Transform, error) {
	t := strings.ToLower(strings.Join(strings.Fields(s), ""))
	if t == "" {
		return iceberg.IdentityTransform{}, nil
	}
	tr, err := iceberg.ParseTransform(t)
	if err != nil {
		return nil, fmt.Errorf("transform %q: %w", s, err)
	}
	if _, ok := tr.(iceberg.UnknownTransform); ok {
		return nil, fmt.Errorf("unknown transform %q: want identity, year, month, day, hour, bucket[N], truncate[W] or void", s)
	}
	return tr, nil
}

// IcebergPartitionSpec builds the spec's partitioning over sc (the schema
// IcebergSchema returned). Partition field ids start at 1000, as Iceberg's.
func (s Spec) IcebergPartitionSpec(sc *iceberg.Schema) (iceberg.PartitionSpec, error) {
	if len(s.Partition) == 0 {
		return iceberg.NewPartitionSpec(), nil
	}
	opts := make([]iceberg.PartitionOption, 0, len(s.Partition))
	for i, p := range s.Partition {
		key := fmt.Sprintf("partition[%d]", i)
		if p.Column == "" {
			return iceberg.PartitionSpec{}, &SpecError{Key: key + ".column", Reason: "required", msg: key + ": no column"}
		}
		col, err := sourceColumn(sc, p.Column)
		if err != nil {
			return iceberg.PartitionSpec{}, specWrap(key+".column", key+": ", err)
		}
		tr, err := parseTransform(p.Transform)
		if err != nil {
			return iceberg.PartitionSpec{}, specWrap(key+".transform", fmt.Sprintf("%s on %q: ", key, p.Column), err)
		}
		if !tr.CanTransform(col.Type) {
			return iceberg.PartitionSpec{}, specErrorf(key+".transform", key+": ", "transform %s does not apply to column %q of type %s", tr, p.Column, col.Type)
		}
		name := p.Name
		if name == "" {
			name, err = iceberg.GeneratePartitionFieldName(sc, iceberg.PartitionField{SourceIDs: []int{col.ID}, Transform: tr})
			if err != nil {
				return iceberg.PartitionSpec{}, specWrap(key, key+": ", err)
			}
		}
		fieldID := iceberg.PartitionDataIDStart + i
		opts = append(opts, iceberg.AddPartitionFieldBySourceID(col.ID, name, tr, sc, &fieldID))
	}
	spec, err := iceberg.NewPartitionSpecOpts(opts...)
	if err != nil {
		return iceberg.PartitionSpec{}, &SpecError{Key: "partition", Reason: err.Error(), msg: "partition: " + err.Error(), err: err}
	}
	return spec, nil
}

// IcebergSortOrder builds the spec's sort order over sc; no sort fields
// give the unsorted order.
func (s Spec) IcebergSortOrder(sc *iceberg.Schema) (icetable.SortOrder, error) {
	if len(s.Sort) == 0 {
		return icetable.UnsortedSortOrder, nil
	}
	fields := make([]icetable.SortField, 0, len(s.Sort))
	for i, f := range s.Sort {
		key := fmt.Sprintf("sort[%d]", i)
		on := fmt.Sprintf("%s on %q: ", key, f.Column)
		if f.Column == "" {
			return icetable.SortOrder{}, &SpecError{Key: key + ".column", Reason: "required", msg: key + ": no column"}
		}
		col, err := sourceColumn(sc, f.Column)
		if err != nil {
			return icetable.SortOrder{}, specWrap(key+".column", key+": ", err)
		}
		tr, err := parseTransform(f.Transform)
		if err != nil {
			return icetable.SortOrder{}, specWrap(key+".transform", on, err)
		}
		if !tr.CanTransform(col.Type) {
			return icetable.SortOrder{}, specErrorf(key+".transform", key+": ", "transform %s does not apply to column %q of type %s", tr, f.Column, col.Type)
		}
		var dir icetable.SortDirection
		switch strings.ToLower(strings.TrimSpace(f.Direction)) {
		case "", "asc":
			dir = icetable.SortASC
		case "desc":
			dir = icetable.SortDESC
		default:
			return icetable.SortOrder{}, specErrorf(key+".direction", on, "direction %q: want asc or desc", f.Direction)
		}
		var nulls icetable.NullOrder
		switch strings.ToLower(strings.TrimSpace(f.Nulls)) {
		case "":
			nulls = icetable.NullsFirst
			if dir == icetable.SortDESC {
				nulls = icetable.NullsLast
			}
		case "first", "nulls-first":
			nulls = icetable.NullsFirst
		case "last", "nulls-last":
			nulls = icetable.NullsLast
		default:
			return icetable.SortOrder{}, specErrorf(key+".nulls", on, "nulls %q: want first or last", f.Nulls)
		}
		fields = append(fields, icetable.SortField{SourceIDs: []int{col.ID}, Transform: tr, Direction: dir, NullOrder: nulls})
	}
	order, err := icetable.NewSortOrder(icetable.InitialSortOrderID, fields)
	if err != nil {
		return icetable.SortOrder{}, &SpecError{Key: "sort", Reason: err.Error(), msg: "sort: " + err.Error(), err: err}
	}
	return order, nil
}

// TableProperties are DefaultProperties overlaid with the spec's own.
func (s Spec) TableProperties() iceberg.Properties {
	p := iceberg.Properties(DefaultProperties())
	maps.Copy(p, s.Properties)
	return p
}

// Validate checks the whole spec — name, schema, partitioning, sort order
// and format version — without a catalog. Errors start with the table name.
func (s Spec) Validate() error {
	if _, err := ParseIdent(s.Name); err != nil {
		return &SpecError{Key: "name", Reason: err.Error(), msg: err.Error()}
	}
	sc, err := s.IcebergSchema()
	if err != nil {
		return fmt.Errorf("table %s: %w", s.Name, err)
	}
	if _, err := s.IcebergPartitionSpec(sc); err != nil {
		return fmt.Errorf("table %s: %w", s.Name, err)
	}
	if _, err := s.IcebergSortOrder(sc); err != nil {
		return fmt.Errorf("table %s: %w", s.Name, err)
	}
	if v := s.TableProperties()[icetable.PropertyFormatVersion]; v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 3 {
			return fmt.Errorf("table %s: %w", s.Name, &SpecError{Key: "properties." + icetable.PropertyFormatVersion,
				Reason: fmt.Sprintf("%q is not 1, 2 or 3", v),
				msg:    fmt.Sprintf("properties: %s %q: want 1, 2 or 3", icetable.PropertyFormatVersion, v)})
		}
	}
	return nil
}

// ParseSpecs reads table specs from YAML: one spec, a list of specs, or
// several YAML documents of either. Unknown keys are errors. Every spec is
// validated and names must be unique.
func ParseSpecs(yamlBytes []byte) ([]Spec, error) {
	// yaml.v3 applies KnownFields only when decoding from a Decoder, not
	// from a Node, so the documents' kinds are read first and the
	// documents then decoded strictly in a second pass.
	var kinds []yaml.Kind
	probe := yaml.NewDecoder(bytes.NewReader(yamlBytes))
	for {
		var n yaml.Node
		if err := probe.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("parse table specs: %w", err)
		}
		k := yaml.Kind(0) // an empty document
		if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
			if c := n.Content[0]; c.Kind != yaml.ScalarNode || c.Tag != "!!null" {
				k = c.Kind
			}
		}
		kinds = append(kinds, k)
	}

	var specs []Spec
	dec := yaml.NewDecoder(bytes.NewReader(yamlBytes))
	dec.KnownFields(true)
	for i, k := range kinds {
		var err error
		switch k {
		case yaml.SequenceNode:
			var list []Spec
			err = dec.Decode(&list)
			specs = append(specs, list...)
		case yaml.MappingNode:
			var one Spec
			err = dec.Decode(&one)
			specs = append(specs, one)
		case 0:
			var skip yaml.Node
			err = dec.Decode(&skip)
		default:
			return nil, fmt.Errorf("parse table specs: document %d: want a table spec or a list of them", i+1)
		}
		if err != nil {
			return nil, fmt.Errorf("parse table specs: %w", err)
		}
	}
	if len(specs) == 0 {
		return nil, errors.New("parse table specs: no tables")
	}

	names := make(map[string]int, len(specs))
	for i, s := range specs {
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("table spec %d: %w", i+1, err)
		}
		if j, dup := names[s.Name]; dup {
			return nil, fmt.Errorf("table spec %d: table %s is already specified by spec %d", i+1, s.Name, j+1)
		}
		names[s.Name] = i
	}
	return specs, nil
}
