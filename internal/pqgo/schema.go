package pqgo

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/iceberg-go"
	"github.com/parquet-go/parquet-go"
)

// stepKind is how a node on a leaf's path descends to its child.
type stepKind uint8

const (
	stepPrim stepKind = iota
	stepStruct
	stepList
	stepMap
)

// step is one node on the path from a top-level column to a leaf.
type step struct {
	kind     stepKind
	optional bool
	child    int // struct: child field index; map: 0 key, 1 value
	rep      int // list/map: repetition level of the repeated group
}

// physKind is the Parquet physical type a leaf is written as.
type physKind uint8

const (
	physBool physKind = iota
	physInt32
	physInt64
	physFloat
	physDouble
	physBytes
	physFixed
)

// leafCol is one Parquet leaf column and how to fill it from Arrow.
type leafCol struct {
	idx     int    // parquet leaf column index
	path    string // dotted parquet path, as iceberg-go's column mapping spells it
	fieldID int
	typ     iceberg.PrimitiveType
	phys    physKind
	decimal bool // Arrow decimal128 stored as INT32/INT64
	top     int  // top-level Arrow column index
	steps   []step
	maxDef  int
	maxRep  int
	flat    bool // a top-level primitive column
	mode    metricsMode
	dict    bool
	// cost is a rough relative encode cost, for scheduling.
	cost int
}

// plan is a table schema compiled for writing.
type plan struct {
	schema *iceberg.Schema // the file schema (sanitized names)
	leaves []*leafCol
	tops   []int    // Arrow column index of each top-level Iceberg field
	roots  []*tnode // the top-level columns
}

// tnode is a node of the file schema, from which the Parquet schema is
// built once the leaves' encodings are chosen.
type tnode struct {
	name     string
	id       int
	required bool
	kind     stepKind
	children []*tnode // struct fields; list: element; map: key, value
	leaf     *leafCol
	base     parquet.Node // primitive leaf node, unwrapped
}

// ordered is a Parquet group whose fields keep the Iceberg order
// (parquet.Group sorts them by name).
type ordered struct {
	parquet.Group // Type, GoType and the like; Fields is overridden
	fields        []parquet.Field
}

func (g *ordered) Fields() []parquet.Field { return g.fields }

type field struct {
	parquet.Node
	name string
}

func (f *field) Name() string                           { return f.name }
func (f *field) Value(base reflect.Value) reflect.Value { return reflect.Value{} }

func newOrdered(names []string, nodes []parquet.Node) *ordered {
	g := &ordered{Group: parquet.Group{}, fields: make([]parquet.Field, len(nodes))}
	for i, n := range nodes {
		g.Group[names[i]] = n
		g.fields[i] = &field{Node: n, name: names[i]}
	}
	return g
}

func arrowFieldID(f arrow.Field) (int, bool) {
	v, ok := f.Metadata.GetValue("PARQUET:field_id")
	if !ok {
		return 0, false
	}
	id, err := strconv.Atoi(v)
	return id, err == nil
}

// compile matches the Arrow schema to the table schema and builds the
// leaf plan. Types this package does not write return ErrUnsupported.
func compile(sc *iceberg.Schema, asc *arrow.Schema, cfg *config) (*plan, error) {
	fileSchema, err := iceberg.SanitizeColumnNames(sc)
	if err != nil {
		return nil, fmt.Errorf("sanitize column names: %w", err)
	}
	if !fileSchema.Equals(sc) {
		sc = fileSchema
	}
	p := &plan{schema: sc}
	if n := len(sc.Fields()); asc.NumFields() != n {
		return nil, fmt.Errorf("%w: the Arrow schema has %d columns, the table %d", ErrUnsupported, asc.NumFields(), n)
	}
	byID := map[int]int{}
	for i, f := range asc.Fields() {
		if id, ok := arrowFieldID(f); ok {
			byID[id] = i
		}
	}
	b := &builder{p: p, cfg: cfg}
	for _, f := range sc.Fields() {
		ai, ok := byID[f.ID]
		if !ok {
			ai = -1
			if idx := asc.FieldIndices(f.Name); len(idx) == 1 {
				ai = idx[0]
			}
		}
		if ai < 0 {
			return nil, fmt.Errorf("%w: column %s (field id %d) is missing from the Arrow schema", ErrUnsupported, f.Name, f.ID)
		}
		p.tops = append(p.tops, ai)
		b.top = ai
		t, err := b.node(f, asc.Field(ai), nil, nil, 0, 0, strings.Contains(f.Name, "."))
		if err != nil {
			return nil, err
		}
		p.roots = append(p.roots, t)
	}
	return p, nil
}

type builder struct {
	p    *plan
	cfg  *config
	top  int
	next int
}

// node returns the Parquet node for f, recording its leaves. path is the
// parquet path of f's parent; steps the steps down to f's parent.
func (b *builder) node(f iceberg.NestedField, af arrow.Field, path []string, steps []step, def, rep int, nested bool) (*tnode, error) {
	path = append(path[:len(path):len(path)], f.Name)
	if !f.Required {
		def++
	}
	tn := &tnode{name: f.Name, id: f.ID, required: f.Required}
	where := strings.Join(path, ".")
	mismatch := func() error {
		return fmt.Errorf("%w: column %s: Arrow type %s does not match Iceberg type %s", ErrUnsupported, where, af.Type, f.Type)
	}
	switch t := f.Type.(type) {
	case *iceberg.StructType:
		st, ok := af.Type.(*arrow.StructType)
		if !ok || st.NumFields() != len(t.FieldList) {
			return nil, mismatch()
		}
		tn.kind = stepStruct
		for i, c := range t.FieldList {
			ci := i
			if id, ok := arrowFieldID(st.Field(i)); !ok || id != c.ID {
				ci = -1
				for j, g := range st.Fields() {
					if id, ok := arrowFieldID(g); ok && id == c.ID {
						ci = j
					}
				}
				if ci < 0 {
					return nil, mismatch()
				}
			}
			s := append(steps[:len(steps):len(steps)], step{kind: stepStruct, optional: !f.Required, child: ci})
			n, err := b.node(c, st.Field(ci), path, s, def, rep, true)
			if err != nil {
				return nil, err
			}
			tn.children = append(tn.children, n)
		}
		return tn, nil
	case *iceberg.ListType:
		var elem arrow.Field
		switch lt := af.Type.(type) {
		case *arrow.ListType:
			elem = lt.ElemField()
		case *arrow.LargeListType:
			elem = lt.ElemField()
		default:
			return nil, mismatch()
		}
		s := append(steps[:len(steps):len(steps)], step{kind: stepList, optional: !f.Required, rep: rep + 1})
		en, err := b.node(t.ElementField(), elem, append(path[:len(path):len(path)], "list"), s, def+1, rep+1, true)
		if err != nil {
			return nil, err
		}
		tn.kind, tn.children = stepList, []*tnode{en}
		return tn, nil
	case *iceberg.MapType:
		mt, ok := af.Type.(*arrow.MapType)
		if !ok {
			return nil, mismatch()
		}
		kv := append(path[:len(path):len(path)], "key_value")
		ks := append(steps[:len(steps):len(steps)], step{kind: stepMap, optional: !f.Required, child: 0, rep: rep + 1})
		kn, err := b.node(t.KeyField(), mt.KeyField(), kv, ks, def+1, rep+1, true)
		if err != nil {
			return nil, err
		}
		vs := append(steps[:len(steps):len(steps)], step{kind: stepMap, optional: !f.Required, child: 1, rep: rep + 1})
		vn, err := b.node(t.ValueField(), mt.ItemField(), kv, vs, def+1, rep+1, true)
		if err != nil {
			return nil, err
		}
		tn.kind, tn.children = stepMap, []*tnode{kn, vn}
		return tn, nil
	case iceberg.PrimitiveType:
		lf := &leafCol{
			path: where, fieldID: f.ID, typ: t, top: b.top,
			steps:  append(steps[:len(steps):len(steps)], step{kind: stepPrim, optional: !f.Required}),
			maxDef: def, maxRep: rep, flat: len(steps) == 0,
		}
		n, err := leafNode(lf, af.Type)
		if err != nil {
			if errors.Is(err, errMismatch) {
				return nil, mismatch()
			}
			return nil, fmt.Errorf("column %s: %w", where, err)
		}
		lf.mode = b.mode(f, t, nested)
		lf.idx = b.next
		b.next++
		b.p.leaves = append(b.p.leaves, lf)
		tn.kind, tn.leaf, tn.base = stepPrim, lf, n
		return tn, nil
	}
	return nil, fmt.Errorf("%w: column %s: type %s", ErrUnsupported, where, f.Type)
}

// mode is the column's metrics mode as iceberg-go's stats plan sets it.
func (b *builder) mode(f iceberg.NestedField, t iceberg.PrimitiveType, nested bool) metricsMode {
	m := b.cfg.defaultMode
	if name, ok := b.p.schema.FindColumnName(f.ID); ok {
		if cm, ok := b.cfg.columnModes[name]; ok {
			m = cm
		}
	}
	switch t.(type) {
	case iceberg.StringType, iceberg.BinaryType:
	default:
		if m.kind == 't' {
			m = metricsMode{kind: 'f'}
		}
	}
	if nested && (m.kind == 't' || m.kind == 'f') {
		m = metricsMode{kind: 'c'}
	}
	return m
}

var errMismatch = fmt.Errorf("type mismatch")

// leafNode is the Parquet leaf for an Iceberg primitive, after checking the
// Arrow type carries it; the physical types are the ones pqarrow writes
// for the Arrow schema iceberg-go derives from the table, except decimals
// of precision ≤ 18, which are INT32/INT64 as the Iceberg spec recommends.
func leafNode(lf *leafCol, at arrow.DataType) (parquet.Node, error) {
	id := at.ID()
	want := func(ids ...arrow.Type) error {
		for _, w := range ids {
			if id == w {
				return nil
			}
		}
		return errMismatch
	}
	switch t := lf.typ.(type) {
	case iceberg.BooleanType:
		lf.phys, lf.cost = physBool, 1
		return parquet.Leaf(parquet.BooleanType), want(arrow.BOOL)
	case iceberg.Int32Type:
		lf.phys, lf.cost = physInt32, 2
		return parquet.Int(32), want(arrow.INT32)
	case iceberg.Int64Type:
		lf.phys, lf.cost = physInt64, 3
		return parquet.Int(64), want(arrow.INT64)
	case iceberg.Float32Type:
		lf.phys, lf.cost = physFloat, 2
		return parquet.Leaf(parquet.FloatType), want(arrow.FLOAT32)
	case iceberg.Float64Type:
		lf.phys, lf.cost = physDouble, 3
		return parquet.Leaf(parquet.DoubleType), want(arrow.FLOAT64)
	case iceberg.DateType:
		lf.phys, lf.cost = physInt32, 2
		return parquet.Date(), want(arrow.DATE32)
	case iceberg.TimeType:
		lf.phys, lf.cost = physInt64, 3
		if tt, ok := at.(*arrow.Time64Type); !ok || tt.Unit != arrow.Microsecond {
			return nil, errMismatch
		}
		return parquet.TimeAdjusted(parquet.Microsecond, false), nil
	case iceberg.TimestampType, iceberg.TimestampTzType:
		lf.phys, lf.cost = physInt64, 3
		if tt, ok := at.(*arrow.TimestampType); !ok || tt.Unit != arrow.Microsecond {
			return nil, errMismatch
		}
		_, tz := t.(iceberg.TimestampTzType)
		return parquet.TimestampAdjusted(parquet.Microsecond, tz), nil
	case iceberg.StringType:
		lf.phys, lf.cost = physBytes, 5
		return parquet.String(), want(arrow.STRING, arrow.LARGE_STRING)
	case iceberg.BinaryType:
		lf.phys, lf.cost = physBytes, 5
		return parquet.Leaf(parquet.ByteArrayType), want(arrow.BINARY, arrow.LARGE_BINARY)
	case iceberg.UUIDType:
		lf.phys, lf.cost = physFixed, 4
		switch x := at.(type) {
		case *extensions.UUIDType:
		case *arrow.FixedSizeBinaryType:
			if x.ByteWidth != 16 {
				return nil, errMismatch
			}
		default:
			return nil, errMismatch
		}
		return parquet.UUID(), nil
	case iceberg.FixedType:
		lf.phys, lf.cost = physFixed, 4
		if x, ok := at.(*arrow.FixedSizeBinaryType); !ok || x.ByteWidth != t.Len() {
			return nil, errMismatch
		}
		return parquet.Leaf(parquet.FixedLenByteArrayType(t.Len())), nil
	case iceberg.DecimalType:
		x, ok := at.(*arrow.Decimal128Type)
		if !ok || int(x.Precision) != t.Precision() || int(x.Scale) != t.Scale() {
			return nil, errMismatch
		}
		// parquet-go compares FIXED_LEN_BYTE_ARRAY decimals as unsigned
		// bytes, which gets the statistics and page index of negative
		// values wrong; INT32/INT64 compare as signed integers.
		lf.decimal = true
		switch p := t.Precision(); {
		case p <= 9:
			lf.phys, lf.cost = physInt32, 2
			return parquet.Decimal(t.Scale(), p, parquet.Int32Type), nil
		case p <= 18:
			lf.phys, lf.cost = physInt64, 3
			return parquet.Decimal(t.Scale(), p, parquet.Int64Type), nil
		}
		return nil, fmt.Errorf("%w: decimal(%d,%d): precision above 18", ErrUnsupported, t.Precision(), t.Scale())
	}
	return nil, fmt.Errorf("%w: type %s", ErrUnsupported, lf.typ)
}

// parquetSchema builds the Parquet schema with the leaves' current
// encoding choices.
func (p *plan) parquetSchema() *parquet.Schema {
	names := make([]string, len(p.roots))
	nodes := make([]parquet.Node, len(p.roots))
	for i, t := range p.roots {
		names[i], nodes[i] = t.name, t.build()
	}
	return parquet.NewSchema("table", newOrdered(names, nodes))
}

func (t *tnode) build() parquet.Node {
	var n parquet.Node
	switch t.kind {
	case stepPrim:
		n = t.base
		if t.leaf.dict {
			n = parquet.Encoded(n, &parquet.RLEDictionary)
		} else {
			// parquet-go's default for byte arrays is DELTA_LENGTH_BYTE_ARRAY;
			// PLAIN is what pqarrow and Iceberg's writers use, and what every
			// reader (Iceberg's vectorized ones included) reads.
			n = parquet.Encoded(n, &parquet.Plain)
		}
	case stepStruct:
		names := make([]string, len(t.children))
		nodes := make([]parquet.Node, len(t.children))
		for i, c := range t.children {
			names[i], nodes[i] = c.name, c.build()
		}
		n = newOrdered(names, nodes)
	case stepList:
		n = parquet.List(t.children[0].build())
	case stepMap:
		n = parquet.Map(t.children[0].build(), t.children[1].build())
	}
	if t.required {
		n = parquet.Required(n)
	} else {
		n = parquet.Optional(n)
	}
	return parquet.FieldID(n, t.id)
}
