package transform

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/query"
	"github.com/floe-lake/floe/table"
)

// relation is one table of the query: the source or a dimension, with the
// columns the query uses, in the order they take in the joined record.
type relation struct {
	table string // namespace.table
	alias string
	sc    *iceberg.Schema
	// cols are the used columns; fields their Arrow fields, named
	// "<alias>.<column>" in the joined record.
	cols   []string
	fields []arrow.Field
}

func (r *relation) index(name string) int { return slices.Index(r.cols, name) }

// dimPlan is one LEFT JOIN.
type dimPlan struct {
	rel relation
	// keys are the join's ON equalities: left programs over the joined
	// record before this join, right columns of the dimension.
	left  []operand
	right []string
	// offset is the dimension's first field in the joined record.
	offset int
}

// operand is a program over the joined record, or (prog nil) one of its
// fields as it is.
type operand struct {
	prog  *query.Program
	field int
	typ   arrow.DataType
}

// compileOperand compiles e, or resolves it when it is a column.
func compileOperand(e query.Expr, sc *arrow.Schema, r query.Resolver) (operand, error) {
	if c, ok := e.(*query.Column); ok {
		idx, err := r(c.Qualifier, c.Name)
		if err != nil {
			return operand{}, err
		}
		return operand{field: idx, typ: sc.Field(idx).Type}, nil
	}
	prog, err := query.Compile(e, sc, r)
	if err != nil {
		return operand{}, err
	}
	return operand{prog: prog, typ: prog.Type()}, nil
}

// eval evaluates the operand over rec; the caller releases the result.
func (o operand) eval(rec arrow.RecordBatch) (arrow.Array, error) {
	if o.prog != nil {
		return o.prog.Eval(rec)
	}
	c := rec.Column(o.field)
	c.Retain()
	return c, nil
}

// outCol is one output column: a program over the joined record, or a
// joined field copied as it is (a bare column reference or a star).
type outCol struct {
	name  string
	prog  *query.Program
	field int // with prog == nil
	// typ is the column's Iceberg type in a new output table.
	typ iceberg.Type
}

// plan is a spec bound to its tables' schemas.
type plan struct {
	sel  *query.Select
	src  relation
	dims []*dimPlan
	// joined is the schema of the joined record: the source's used columns,
	// then each dimension's.
	joined *arrow.Schema
	// schemas[i] is the joined record's schema before join i (the
	// source's and the first i dimensions' columns).
	schemas []*arrow.Schema
	// early filters with the WHERE conjuncts that read only source
	// columns, before the joins (over the source prefix of the joined
	// record); where with the others, after them.
	early, where *query.Program
	out          []outCol
}

// ErrUnsupported marks SQL this package does not run.
var ErrUnsupported = errors.New("not supported by floe transform")

// parseSelect parses and checks the spec's SQL.
func parseSelect(text string) (*query.Select, error) {
	sel, err := query.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse sql: %w", err)
	}
	if len(sel.GroupBy) > 0 || sel.Having != nil {
		return nil, fmt.Errorf("GROUP BY and HAVING are %w: aggregate with floe aggregate", ErrUnsupported)
	}
	for _, it := range sel.Items {
		if it.Expr != nil {
			if fn, _, _, ok := query.AggregateCall(it.Expr); ok {
				return nil, fmt.Errorf("aggregate call %s(...) is %w: aggregate with floe aggregate", fn, ErrUnsupported)
			}
		}
	}
	seen := map[string]bool{}
	for _, r := range append([]query.TableRef{sel.From}, joinTables(sel)...) {
		a := aliasOf(r)
		if seen[a] {
			return nil, fmt.Errorf("table alias %q is used twice: give each table its own alias", a)
		}
		seen[a] = true
	}
	for i, j := range sel.Joins {
		if len(j.Keys) == 0 {
			return nil, fmt.Errorf("join %d (%s): ON must be equalities between the tables before it and columns of %s", i+1, j.Table.Name, j.Table.Name)
		}
	}
	return sel, nil
}

func joinTables(sel *query.Select) []query.TableRef {
	out := make([]query.TableRef, len(sel.Joins))
	for i, j := range sel.Joins {
		out[i] = j.Table
	}
	return out
}

func aliasOf(r query.TableRef) string {
	if r.Alias != "" {
		return r.Alias
	}
	return r.Name[strings.LastIndexByte(r.Name, '.')+1:]
}

// conjuncts splits e at its top-level ANDs.
func conjuncts(e query.Expr, out []query.Expr) []query.Expr {
	if b, ok := e.(*query.Binary); ok && b.Op == "AND" {
		return conjuncts(b.R, conjuncts(b.L, out))
	}
	return append(out, e)
}

// and joins conditions with AND; nil for none.
func and(es []query.Expr) query.Expr {
	var out query.Expr
	for _, e := range es {
		if out == nil {
			out = e
			continue
		}
		out = &query.Binary{Op: "AND", L: out, R: e}
	}
	return out
}

// bind binds sel to the tables' Iceberg schemas: src is the source's, dims
// the joined tables' in join order, with their identifier fields. It
// returns the plan over the columns the query uses.
func bind(sel *query.Select, src *iceberg.Schema, dims []*iceberg.Schema) (*plan, error) {
	rels := make([]*relation, 1+len(dims))
	rels[0] = &relation{table: sel.From.Name, alias: aliasOf(sel.From), sc: src}
	for i, j := range sel.Joins {
		rels[i+1] = &relation{table: j.Table.Name, alias: aliasOf(j.Table), sc: dims[i]}
	}
	for i, j := range sel.Joins {
		if err := checkDimKeys(j, rels[i+1]); err != nil {
			return nil, err
		}
	}
	// First pass: every column of every relation, to learn which are used.
	for _, r := range rels {
		for _, f := range r.sc.Fields() {
			r.cols = append(r.cols, f.Name)
		}
	}
	p, err := compilePlan(sel, rels)
	if err != nil {
		return nil, err
	}
	// Second pass: the used columns only.
	for ri, r := range rels {
		var keep []string
		for _, c := range r.cols {
			if p.used[ri][c] {
				keep = append(keep, c)
			}
		}
		if len(keep) == 0 && ri == 0 {
			// A row count needs a column to read.
			keep = r.cols[:1]
		}
		r.cols = keep
	}
	p, err = compilePlan(sel, rels)
	if err != nil {
		return nil, err
	}
	return p.plan, nil
}

// checkDimKeys refuses a join whose table is not keyed, or whose ON keys
// do not cover the key: a fact row must match at most one dimension row.
func checkDimKeys(j query.Join, r *relation) error {
	var ids []string
	for _, id := range r.sc.IdentifierFieldIDs {
		f, ok := r.sc.FindFieldByID(id)
		if !ok {
			return fmt.Errorf("join %s: identifier field %d is not in its schema", j.Table.Name, id)
		}
		ids = append(ids, f.Name)
	}
	if len(ids) == 0 {
		return fmt.Errorf("join %s: %w: a dimension table must be keyed (Iceberg identifier fields, e.g. a CDC mirror)", j.Table.Name, ErrNotKeyed)
	}
	right := make([]string, len(j.Keys))
	for i, k := range j.Keys {
		right[i] = k.Right
		if _, ok := r.sc.FindFieldByName(k.Right); !ok {
			return fmt.Errorf("join %s: ON column %s: no such column", j.Table.Name, k.Right)
		}
	}
	for _, id := range ids {
		if !slices.Contains(right, id) {
			return fmt.Errorf("join %s: %w: ON must cover its key %v, and misses %s", j.Table.Name, ErrNotKeyed, ids, id)
		}
	}
	return nil
}

// ErrNotKeyed marks a dimension join on a table without a key, or on
// columns that do not cover its key.
var ErrNotKeyed = errors.New("dimension join needs a key")

type compiled struct {
	*plan
	used []map[string]bool
}

// compilePlan compiles sel over the relations' current columns.
func compilePlan(sel *query.Select, rels []*relation) (*compiled, error) {
	c := &compiled{plan: &plan{sel: sel}, used: make([]map[string]bool, len(rels))}
	var fields []arrow.Field
	offsets := make([]int, len(rels))
	for ri, r := range rels {
		c.used[ri] = map[string]bool{}
		offsets[ri] = len(fields)
		r.fields = r.fields[:0]
		for _, col := range r.cols {
			f, _ := r.sc.FindFieldByName(col)
			at, err := arrowType(f)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", r.table, col, err)
			}
			af := arrow.Field{Name: r.alias + "." + col, Type: at, Nullable: true}
			r.fields = append(r.fields, af)
			fields = append(fields, af)
		}
	}
	c.joined = arrow.NewSchema(fields, nil)
	// resolver over the first n relations.
	resolver := func(n int) query.Resolver {
		return func(q, name string) (int, error) {
			found := -1
			for ri := range n {
				r := rels[ri]
				if q != "" && q != r.alias {
					continue
				}
				if i := r.index(name); i >= 0 {
					if found >= 0 {
						return 0, fmt.Errorf("column %s is ambiguous: qualify it with a table alias", name)
					}
					found = offsets[ri] + i
					c.used[ri][name] = true
				} else if _, ok := r.sc.FindFieldByName(name); ok {
					// A column of the table left out of this pass.
					return 0, fmt.Errorf("column %s.%s was not bound", r.alias, name)
				}
			}
			if found < 0 {
				if q != "" {
					return 0, fmt.Errorf("column %s.%s: no such column", q, name)
				}
				return 0, fmt.Errorf("column %s: no such column", name)
			}
			return found, nil
		}
	}
	prefix := func(n int) *arrow.Schema {
		end := len(fields)
		if n < len(rels) {
			end = offsets[n]
		}
		return arrow.NewSchema(fields[:end], nil)
	}
	c.src = *rels[0]
	for i := range rels {
		c.schemas = append(c.schemas, prefix(i+1))
	}
	for i, j := range sel.Joins {
		d := &dimPlan{rel: *rels[i+1], offset: offsets[i+1]}
		for _, k := range j.Keys {
			prog, err := compileOperand(k.Left, prefix(i+1), resolver(i+1))
			if err != nil {
				return nil, fmt.Errorf("join %s: ON %s: %w", j.Table.Name, k.Left, err)
			}
			d.left = append(d.left, prog)
			d.right = append(d.right, k.Right)
		}
		c.dims = append(c.dims, d)
	}
	if sel.Where != nil {
		var early, late []query.Expr
		for _, e := range conjuncts(sel.Where, nil) {
			if sourceOnly(e, rels[0].alias, rels[1:]) {
				early = append(early, e)
			} else {
				late = append(late, e)
			}
		}
		var err error
		if e := and(early); e != nil {
			if c.early, err = compileCond(e, prefix(1), resolver(1)); err != nil {
				return nil, err
			}
		}
		if e := and(late); e != nil {
			if c.where, err = compileCond(e, c.joined, resolver(len(rels))); err != nil {
				return nil, err
			}
		}
	}
	names := map[string]bool{}
	add := func(o outCol) error {
		if names[o.name] {
			return fmt.Errorf("output column %s appears twice: name one with AS", o.name)
		}
		names[o.name] = true
		c.out = append(c.out, o)
		return nil
	}
	for _, it := range sel.Items {
		if it.Star {
			matched := false
			for ri, r := range rels {
				if it.StarQualifier != "" && it.StarQualifier != r.alias {
					continue
				}
				matched = true
				for ci, col := range r.cols {
					f, _ := r.sc.FindFieldByName(col)
					c.used[ri][col] = true
					if err := add(outCol{name: col, field: offsets[ri] + ci, typ: f.Type}); err != nil {
						return nil, err
					}
				}
			}
			if !matched {
				return nil, fmt.Errorf("%s.*: no table has the alias %s", it.StarQualifier, it.StarQualifier)
			}
			continue
		}
		name := it.OutputName()
		if col, ok := it.Expr.(*query.Column); ok {
			idx, err := resolver(len(rels))(col.Qualifier, col.Name)
			if err != nil {
				return nil, err
			}
			ri := len(rels) - 1
			for ri > 0 && offsets[ri] > idx {
				ri--
			}
			f, _ := rels[ri].sc.FindFieldByName(rels[ri].cols[idx-offsets[ri]])
			if err := add(outCol{name: name, field: idx, typ: f.Type}); err != nil {
				return nil, err
			}
			continue
		}
		prog, err := query.Compile(it.Expr, c.joined, resolver(len(rels)))
		if err != nil {
			return nil, fmt.Errorf("select item %s: %w", name, err)
		}
		typ, err := icebergType(prog.Type())
		if err != nil {
			return nil, fmt.Errorf("select item %s: %w", name, err)
		}
		if err := add(outCol{name: name, prog: prog, typ: typ}); err != nil {
			return nil, err
		}
	}
	if len(c.out) == 0 {
		return nil, errors.New("the select list is empty")
	}
	return c, nil
}

// sourceOnly reports whether e reads no column of the dimensions: every
// column reference is qualified with the source's alias, or unqualified
// and not a column of any dimension.
func sourceOnly(e query.Expr, alias string, dims []*relation) bool {
	ok := true
	query.Walk(e, func(x query.Expr) bool {
		c, isCol := x.(*query.Column)
		if !isCol {
			return ok
		}
		switch {
		case c.Qualifier != "":
			ok = c.Qualifier == alias
		default:
			for _, d := range dims {
				if _, found := d.sc.FindFieldByName(c.Name); found {
					ok = false
				}
			}
		}
		return ok
	})
	return ok
}

func compileCond(e query.Expr, sc *arrow.Schema, r query.Resolver) (*query.Program, error) {
	prog, err := query.Compile(e, sc, r)
	if err != nil {
		return nil, fmt.Errorf("WHERE %s: %w", e, err)
	}
	if t := prog.Type(); t.ID() != arrow.BOOL {
		return nil, fmt.Errorf("WHERE %s: the condition is %s, not boolean", e, t)
	}
	return prog, nil
}

// arrowType is the Arrow type the reader yields for an Iceberg column.
func arrowType(f iceberg.NestedField) (arrow.DataType, error) {
	sc := iceberg.NewSchema(0, f)
	as, err := icetable.SchemaToArrowSchema(sc, nil, false, false)
	if err != nil {
		return nil, err
	}
	return as.Field(0).Type, nil
}

// icebergType is the Iceberg type of a computed column.
func icebergType(t arrow.DataType) (iceberg.Type, error) {
	switch t := t.(type) {
	case *arrow.BooleanType:
		return iceberg.PrimitiveTypes.Bool, nil
	case *arrow.Int8Type, *arrow.Int16Type, *arrow.Int32Type, *arrow.Uint8Type, *arrow.Uint16Type:
		return iceberg.PrimitiveTypes.Int32, nil
	case *arrow.Int64Type, *arrow.Uint32Type:
		return iceberg.PrimitiveTypes.Int64, nil
	case *arrow.Float32Type:
		return iceberg.PrimitiveTypes.Float32, nil
	case *arrow.Float64Type:
		return iceberg.PrimitiveTypes.Float64, nil
	case *arrow.StringType, *arrow.LargeStringType, *arrow.StringViewType:
		return iceberg.PrimitiveTypes.String, nil
	case *arrow.BinaryType, *arrow.LargeBinaryType, *arrow.BinaryViewType:
		return iceberg.PrimitiveTypes.Binary, nil
	case *arrow.Date32Type, *arrow.Date64Type:
		return iceberg.PrimitiveTypes.Date, nil
	case *arrow.Time32Type, *arrow.Time64Type:
		return iceberg.PrimitiveTypes.Time, nil
	case *arrow.TimestampType:
		if t.TimeZone != "" {
			return iceberg.PrimitiveTypes.TimestampTz, nil
		}
		return iceberg.PrimitiveTypes.Timestamp, nil
	case *arrow.Decimal128Type:
		return iceberg.DecimalTypeOf(int(t.Precision), int(t.Scale)), nil
	}
	return nil, fmt.Errorf("a computed column of type %s is %w: cast it to a primitive type", t, ErrUnsupported)
}

// outputSpec is the table.Spec of a new output table; key names the
// identifier fields of a keyed output (required columns).
func (p *plan) outputSpec(s Spec, key []string) table.Spec {
	fields := make([]iceberg.NestedField, len(p.out))
	for i, o := range p.out {
		fields[i] = iceberg.NestedField{ID: i + 1, Name: o.name, Type: o.typ, Required: slices.Contains(key, o.name)}
	}
	props := map[string]string{PropSQL: strings.TrimSpace(s.SQL)}
	for k, v := range s.Properties {
		props[k] = v
	}
	return table.Spec{
		Name:       s.Output,
		Schema:     table.FieldsFromIceberg(fields),
		Partition:  s.Partition,
		Properties: props,
		// A keyed output takes the source's key.
		IdentifierFields: key,
	}
}

// PropSQL is the output table property holding the SELECT that fills it.
const PropSQL = "floe.transform.sql"
