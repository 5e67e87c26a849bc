package query

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/arrow/scalar"
)

// The Arrow types of the dialect's SQL types.
var (
	typBool        arrow.DataType = arrow.FixedWidthTypes.Boolean
	typInt         arrow.DataType = arrow.PrimitiveTypes.Int64
	typFloat       arrow.DataType = arrow.PrimitiveTypes.Float64
	typString      arrow.DataType = arrow.BinaryTypes.String
	typDate        arrow.DataType = arrow.FixedWidthTypes.Date32
	typTimestamp   arrow.DataType = &arrow.TimestampType{Unit: arrow.Microsecond}
	typTimestampTZ arrow.DataType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	typNull        arrow.DataType = arrow.Null
)

// evalCtx is one evaluation's state.
type evalCtx struct {
	ctx context.Context
	mem memory.Allocator
	rec arrow.RecordBatch
	n   int
}

// node is a bound expression: its type and how to evaluate it. A
// constant node has konst set and eval returns a scalar datum.
type node struct {
	typ   arrow.DataType
	konst scalar.Scalar
	eval  func(c *evalCtx) (compute.Datum, error)
}

func constNode(s scalar.Scalar) *node {
	return &node{typ: s.DataType(), konst: s, eval: func(*evalCtx) (compute.Datum, error) {
		return compute.NewDatumWithoutOwning(s), nil
	}}
}

// binder compiles expressions against one schema.
type binder struct {
	schema  *arrow.Schema
	resolve Resolver
}

// Compile binds e to schema, resolving column references through resolve
// (nil: by field name, qualifier ignored, an exact match first and then
// one ignoring case), type-checks it and returns the program that
// evaluates it. Errors wrap ErrType (or ErrUnsupported) and say where.
func Compile(e Expr, schema *arrow.Schema, resolve Resolver) (*Program, error) {
	if resolve == nil {
		resolve = FieldResolver(schema)
	}
	b := &binder{schema: schema, resolve: resolve}
	n, err := b.bind(e)
	if err != nil {
		return nil, err
	}
	return &Program{expr: e, typ: n.typ, eval: func(rec arrow.RecordBatch) (arrow.Array, error) {
		c := &evalCtx{ctx: compute.WithAllocator(context.Background(), memory.DefaultAllocator), mem: memory.DefaultAllocator, rec: rec, n: int(rec.NumRows())}
		d, err := n.eval(c)
		if err != nil {
			return nil, fmt.Errorf("evaluate %s: %w", e, err)
		}
		return c.array(d)
	}}, nil
}

// FieldResolver resolves a column by its field name in schema, ignoring
// the qualifier: an exact match first, then one ignoring case (DuckDB's
// names are case-insensitive).
func FieldResolver(schema *arrow.Schema) Resolver {
	return func(_, name string) (int, error) {
		if idx := schema.FieldIndices(name); len(idx) > 0 {
			return idx[0], nil
		}
		found := -1
		for i, f := range schema.Fields() {
			if strings.EqualFold(f.Name, name) {
				if found >= 0 {
					return 0, fmt.Errorf("column %q is ambiguous (%q, %q)", name, schema.Field(found).Name, f.Name)
				}
				found = i
			}
		}
		if found < 0 {
			return 0, fmt.Errorf("no column %q", name)
		}
		return found, nil
	}
}

// array turns d into an array of c.n values, releasing d.
func (c *evalCtx) array(d compute.Datum) (arrow.Array, error) {
	switch v := d.(type) {
	case *compute.ArrayDatum:
		a := v.MakeArray()
		v.Release()
		return a, nil
	case *compute.ScalarDatum:
		a, err := scalar.MakeArrayFromScalar(v.Value, c.n, c.mem)
		if err != nil {
			return nil, fmt.Errorf("broadcast constant: %w", err)
		}
		return a, nil
	}
	return nil, fmt.Errorf("unexpected result %s", d.Kind())
}

func typeErr(e Expr, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrType, fmt.Sprintf(format, args...), e.pos())
}

// sqlType names an Arrow type as SQL does, for messages.
func sqlType(t arrow.DataType) string {
	switch t.ID() {
	case arrow.BOOL:
		return "BOOLEAN"
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.UINT8, arrow.UINT16:
		return "INTEGER"
	case arrow.INT64, arrow.UINT32, arrow.UINT64:
		return "BIGINT"
	case arrow.FLOAT32:
		return "FLOAT"
	case arrow.FLOAT64:
		return "DOUBLE"
	case arrow.DECIMAL128:
		d := t.(*arrow.Decimal128Type)
		return fmt.Sprintf("DECIMAL(%d,%d)", d.Precision, d.Scale)
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return "VARCHAR"
	case arrow.DATE32:
		return "DATE"
	case arrow.TIMESTAMP:
		if isTZ(t) {
			return "TIMESTAMPTZ"
		}
		return "TIMESTAMP"
	case arrow.NULL:
		return "NULL"
	}
	return t.String()
}

func isTZ(t arrow.DataType) bool {
	ts, ok := t.(*arrow.TimestampType)
	return ok && ts.TimeZone != ""
}

func isInt(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32:
		return true
	}
	return false
}

func isFloat(t arrow.DataType) bool   { return t.ID() == arrow.FLOAT32 || t.ID() == arrow.FLOAT64 }
func isDecimal(t arrow.DataType) bool { return t.ID() == arrow.DECIMAL128 }
func isNumeric(t arrow.DataType) bool {
	return isInt(t) || isFloat(t) || isDecimal(t)
}
func isString(t arrow.DataType) bool {
	return t.ID() == arrow.STRING || t.ID() == arrow.LARGE_STRING || t.ID() == arrow.STRING_VIEW
}
func isTemporal(t arrow.DataType) bool { return t.ID() == arrow.DATE32 || t.ID() == arrow.TIMESTAMP }

// intDecimal is the decimal type an integer type converts to, as DuckDB
// converts INTEGER to DECIMAL(10,0) and BIGINT to DECIMAL(19,0).
func intDecimal(t arrow.DataType) *arrow.Decimal128Type {
	if t.ID() == arrow.INT64 || t.ID() == arrow.UINT32 {
		return &arrow.Decimal128Type{Precision: 19, Scale: 0}
	}
	return &arrow.Decimal128Type{Precision: 10, Scale: 0}
}

// commonType is the type two operands of a comparison, CASE, COALESCE
// or IN convert to; ok is false when they cannot meet.
func commonType(a, b arrow.DataType) (arrow.DataType, bool) {
	switch {
	case a.ID() == arrow.NULL:
		return b, true
	case b.ID() == arrow.NULL:
		return a, true
	case arrow.TypeEqual(a, b):
		return a, true
	case isInt(a) && isInt(b):
		return typInt, true
	case isFloat(a) && isNumeric(b) || isNumeric(a) && isFloat(b):
		return typFloat, true
	case isDecimal(a) || isDecimal(b):
		if !isNumeric(a) || !isNumeric(b) {
			return nil, false
		}
		da, db := asDecimal(a), asDecimal(b)
		s := max(da.Scale, db.Scale)
		p := min(38, max(da.Precision-da.Scale, db.Precision-db.Scale)+s)
		return &arrow.Decimal128Type{Precision: p, Scale: s}, true
	case isString(a) && isString(b):
		return typString, true
	case isTemporal(a) && isTemporal(b):
		if isTZ(a) || isTZ(b) {
			return typTimestampTZ, true
		}
		if a.ID() == arrow.TIMESTAMP || b.ID() == arrow.TIMESTAMP {
			return typTimestamp, true
		}
		return typDate, true
	}
	return nil, false
}

func asDecimal(t arrow.DataType) *arrow.Decimal128Type {
	if d, ok := t.(*arrow.Decimal128Type); ok {
		return d
	}
	return intDecimal(t)
}

// coerce converts n to t: a constant at compile time (a string literal
// compared with a timestamp is parsed as one, as DuckDB does), a column
// with the cast kernel at run time.
func (b *binder) coerce(e Expr, n *node, t arrow.DataType) (*node, error) {
	if arrow.TypeEqual(n.typ, t) {
		return n, nil
	}
	if n.konst != nil {
		s, err := castScalar(n.konst, t)
		if err != nil {
			return nil, typeErr(e, "cannot convert %s to %s: %v", e, sqlType(t), err)
		}
		return constNode(s), nil
	}
	return castNode(n, t), nil
}

// castNode converts n's values to t at run time.
func castNode(n *node, t arrow.DataType) *node {
	return &node{typ: t, eval: func(c *evalCtx) (compute.Datum, error) {
		d, err := n.eval(c)
		if err != nil {
			return nil, err
		}
		defer d.Release()
		return castDatum(c, d, t)
	}}
}

// castDatum converts d to t: Arrow's cast kernel, except where DuckDB's
// result differs (timestamps to dates and text, decimals from doubles,
// numbers to text) which hand loops do.
func castDatum(c *evalCtx, d compute.Datum, t arrow.DataType) (compute.Datum, error) {
	if sd, ok := d.(*compute.ScalarDatum); ok {
		s, err := castScalar(sd.Value, t)
		if err != nil {
			return nil, err
		}
		return compute.NewDatumWithoutOwning(s), nil
	}
	a := d.(*compute.ArrayDatum).MakeArray()
	defer a.Release()
	if out, ok, err := castSpecial(c, a, t); ok {
		if err != nil {
			return nil, err
		}
		return compute.NewDatumWithoutOwning(out), nil
	}
	out, err := compute.CastArray(c.ctx, a, compute.SafeCastOptions(t))
	if err != nil {
		return nil, fmt.Errorf("cast %s to %s: %w", sqlType(a.DataType()), sqlType(t), err)
	}
	return compute.NewDatumWithoutOwning(out), nil
}

// castScalar converts a constant to t.
func castScalar(s scalar.Scalar, t arrow.DataType) (scalar.Scalar, error) {
	if !s.IsValid() {
		return scalar.MakeNullScalar(t), nil
	}
	if arrow.TypeEqual(s.DataType(), t) {
		return s, nil
	}
	if str, ok := s.(*scalar.String); ok {
		v := string(str.Data())
		switch {
		case t.ID() == arrow.TIMESTAMP:
			us, err := parseTimestamp(v, isTZ(t))
			if err != nil {
				return nil, err
			}
			return scalar.NewTimestampScalar(arrow.Timestamp(us), t), nil
		case t.ID() == arrow.DATE32:
			d, err := time.Parse(time.DateOnly, strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Errorf("date %q: want YYYY-MM-DD", v)
			}
			return scalar.NewDate32Scalar(arrow.Date32FromTime(d)), nil
		case t.ID() == arrow.BOOL:
			switch strings.ToLower(strings.TrimSpace(v)) {
			case "true", "t", "1", "yes", "y":
				return scalar.NewBooleanScalar(true), nil
			case "false", "f", "0", "no", "n":
				return scalar.NewBooleanScalar(false), nil
			}
			return nil, fmt.Errorf("%q is not a boolean", v)
		case isInt(t):
			i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%q is not an integer", v)
			}
			return scalar.MakeScalarParam(i, typInt)
		case isFloat(t):
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return nil, fmt.Errorf("%q is not a number", v)
			}
			return scalar.NewFloat64Scalar(f), nil
		case isDecimal(t):
			dt := t.(*arrow.Decimal128Type)
			n, err := decimal128.FromString(strings.TrimSpace(v), dt.Precision, dt.Scale)
			if err != nil {
				return nil, fmt.Errorf("%q is not a DECIMAL(%d,%d)", v, dt.Precision, dt.Scale)
			}
			return scalar.NewDecimal128Scalar(n, dt), nil
		}
	}
	if f, ok := s.(*scalar.Float64); ok && isDecimal(t) {
		dt := t.(*arrow.Decimal128Type)
		n, err := floatDecimal(f.Value, dt)
		if err != nil {
			return nil, err
		}
		return scalar.NewDecimal128Scalar(n, dt), nil
	}
	a, err := scalar.MakeArrayFromScalar(s, 1, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	defer a.Release()
	c := &evalCtx{ctx: context.Background(), mem: memory.DefaultAllocator, n: 1}
	out, ok, err := castSpecial(c, a, t)
	if !ok {
		out, err = compute.CastArray(context.Background(), a, compute.SafeCastOptions(t))
	}
	if err != nil {
		return nil, err
	}
	defer out.Release()
	return scalar.GetScalar(out, 0)
}

// parseTimestamp reads "2024-01-02", "2024-01-02 03:04:05[.ffffff]" and
// the same with a 'T' and a zone ("Z", "+08:00", "+08"). Without a zone
// the time is UTC (a TIMESTAMPTZ) or taken as written (a TIMESTAMP).
func parseTimestamp(v string, _ bool) (int64, error) {
	v = strings.TrimSpace(strings.Replace(v, "T", " ", 1))
	for _, layout := range []string{
		"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999 Z07:00",
		"2006-01-02 15:04:05.999999999", "2006-01-02 15:04", "2006-01-02",
	} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UnixMicro(), nil
		}
	}
	return 0, fmt.Errorf("%q is not a timestamp (want YYYY-MM-DD[ HH:MM:SS[.ffffff]][±HH:MM])", v)
}

// literal binds a literal to a constant: integers are BIGINT, numbers
// with a point DECIMAL (as in DuckDB) when they fit 18 digits and DOUBLE
// otherwise, strings VARCHAR.
func literal(l *Literal) (*node, error) {
	switch l.Kind {
	case LitNull:
		return constNode(scalar.MakeNullScalar(typNull)), nil
	case LitBool:
		return constNode(scalar.NewBooleanScalar(l.Text == "true")), nil
	case LitInt:
		i, err := strconv.ParseInt(l.Text, 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(l.Text, 64)
			if ferr != nil {
				return nil, typeErr(l, "bad number %s", l.Text)
			}
			return constNode(scalar.NewFloat64Scalar(f)), nil
		}
		return constNode(scalar.NewInt64Scalar(i)), nil
	case LitFloat:
		if !strings.ContainsAny(l.Text, "eE") {
			digits := strings.TrimLeft(strings.Replace(strings.TrimPrefix(l.Text, "-"), ".", "", 1), "0")
			scale := len(l.Text) - strings.IndexByte(l.Text, '.') - 1
			p := max(len(digits), scale, 1)
			if p <= 18 {
				dt := &arrow.Decimal128Type{Precision: int32(p), Scale: int32(scale)}
				n, err := decimal128.FromString(l.Text, dt.Precision, dt.Scale)
				if err == nil {
					return constNode(scalar.NewDecimal128Scalar(n, dt)), nil
				}
			}
		}
		f, err := strconv.ParseFloat(l.Text, 64)
		if err != nil {
			return nil, typeErr(l, "bad number %s", l.Text)
		}
		return constNode(scalar.NewFloat64Scalar(f)), nil
	}
	return constNode(scalar.NewStringScalar(l.Text)), nil
}

func (b *binder) bind(e Expr) (*node, error) {
	switch x := e.(type) {
	case *Literal:
		return literal(x)
	case *Interval:
		return nil, typeErr(x, "an interval is only allowed as the width of time_bucket or in timestamp arithmetic")
	case *Column:
		return b.column(x)
	case *Unary:
		return b.unary(x)
	case *Binary:
		return b.binary(x)
	case *Cast:
		n, err := b.bind(x.X)
		if err != nil {
			return nil, err
		}
		return b.coerceExplicit(x, n, castType(x.Type))
	case *IsNull:
		return b.isNull(x)
	case *In:
		return b.in(x)
	case *Between:
		lo := &Binary{Pos: x.Pos, Op: ">=", L: x.X, R: x.Lo}
		hi := &Binary{Pos: x.Pos, Op: "<=", L: x.X, R: x.Hi}
		var cond Expr = &Binary{Pos: x.Pos, Op: "AND", L: lo, R: hi}
		if x.Not {
			cond = &Unary{Pos: x.Pos, Op: "NOT", X: cond}
		}
		return b.bind(cond)
	case *Like:
		return b.like(x)
	case *Case:
		return b.caseExpr(x)
	case *Call:
		if IsAggregate(x) {
			return nil, typeErr(x, "aggregate %s is only allowed in the select list of a grouped query", x.Name)
		}
		return b.call(x)
	}
	return nil, typeErr(e, "unsupported expression %s", e)
}

func (b *binder) column(x *Column) (*node, error) {
	i, err := b.resolve(x.Qualifier, x.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrType, err.Error(), x.Pos)
	}
	if i < 0 || i >= b.schema.NumFields() {
		return nil, typeErr(x, "column %s resolved to field %d of %d", x, i, b.schema.NumFields())
	}
	f := b.schema.Field(i)
	t := f.Type
	switch t.ID() {
	case arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32,
		arrow.FLOAT32, arrow.FLOAT64, arrow.DECIMAL128, arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW, arrow.DATE32:
	case arrow.TIMESTAMP:
	default:
		return nil, typeErr(x, "column %s has type %s, which expressions do not support", x, t)
	}
	n := &node{typ: t, eval: func(c *evalCtx) (compute.Datum, error) {
		if i >= int(c.rec.NumCols()) {
			return nil, fmt.Errorf("record has %d columns, want column %d (%s)", c.rec.NumCols(), i, f.Name)
		}
		return compute.NewDatum(c.rec.Column(i)), nil
	}}
	// Normalise what kernels and hand loops see: large and view strings to
	// string, timestamps to microseconds.
	switch {
	case t.ID() == arrow.LARGE_STRING || t.ID() == arrow.STRING_VIEW:
		return castNode(n, typString), nil
	case t.ID() == arrow.TIMESTAMP && t.(*arrow.TimestampType).Unit != arrow.Microsecond:
		if isTZ(t) {
			return castNode(n, typTimestampTZ), nil
		}
		return castNode(n, typTimestamp), nil
	case isTZ(t) && t.(*arrow.TimestampType).TimeZone != "UTC":
		return castNode(n, typTimestampTZ), nil
	}
	return n, nil
}

// castType maps a CAST's SQL type to Arrow.
func castType(t TypeName) arrow.DataType {
	switch t.Name {
	case "BIGINT":
		return typInt
	case "INTEGER":
		return arrow.PrimitiveTypes.Int32
	case "DOUBLE":
		return typFloat
	case "FLOAT":
		return arrow.PrimitiveTypes.Float32
	case "DECIMAL":
		return &arrow.Decimal128Type{Precision: int32(t.Precision), Scale: int32(t.Scale)}
	case "BOOLEAN":
		return typBool
	case "DATE":
		return typDate
	case "TIMESTAMP":
		return typTimestamp
	case "TIMESTAMPTZ":
		return typTimestampTZ
	}
	return typString
}

// coerceExplicit is CAST: any conversion the cast kernels or the hand
// loops know.
func (b *binder) coerceExplicit(x *Cast, n *node, t arrow.DataType) (*node, error) {
	if n.typ.ID() == arrow.NULL {
		return constNode(scalar.MakeNullScalar(t)), nil
	}
	if !compute.CanCast(n.typ, t) && !specialCast(n.typ, t) {
		return nil, typeErr(x, "cannot cast %s to %s", sqlType(n.typ), sqlType(t))
	}
	return b.coerce(x, n, t)
}

func (b *binder) unary(x *Unary) (*node, error) {
	n, err := b.bind(x.X)
	if err != nil {
		return nil, err
	}
	if x.Op == "NOT" {
		if n, err = b.boolean(x.X, n); err != nil {
			return nil, err
		}
		return kernel1("not", typBool, n), nil
	}
	if !isNumeric(n.typ) {
		return nil, typeErr(x, "cannot negate %s", sqlType(n.typ))
	}
	if isInt(n.typ) {
		n = castNode(n, typInt)
	} else if n.typ.ID() == arrow.FLOAT32 {
		n = castNode(n, typFloat)
	}
	return kernel1("negate", n.typ, n), nil
}

// boolean checks that n is a BOOLEAN (or NULL) condition.
func (b *binder) boolean(e Expr, n *node) (*node, error) {
	switch n.typ.ID() {
	case arrow.BOOL:
		return n, nil
	case arrow.NULL:
		return constNode(scalar.MakeNullScalar(typBool)), nil
	}
	return nil, typeErr(e, "%s is a %s, not a condition (BOOLEAN)", e, sqlType(n.typ))
}

// kernel1 and kernel2 call an Arrow compute function.
func kernel1(fn string, t arrow.DataType, x *node) *node {
	return &node{typ: t, eval: func(c *evalCtx) (compute.Datum, error) {
		d, err := x.eval(c)
		if err != nil {
			return nil, err
		}
		defer d.Release()
		return compute.CallFunction(c.ctx, fn, nil, d)
	}}
}

func kernel2(fn string, t arrow.DataType, l, r *node) *node {
	return &node{typ: t, eval: func(c *evalCtx) (compute.Datum, error) {
		ld, err := l.eval(c)
		if err != nil {
			return nil, err
		}
		defer ld.Release()
		rd, err := r.eval(c)
		if err != nil {
			return nil, err
		}
		defer rd.Release()
		out, err := compute.CallFunction(c.ctx, fn, nil, ld, rd)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fn, err)
		}
		return out, nil
	}}
}

func (b *binder) binary(x *Binary) (*node, error) {
	switch x.Op {
	case "->", "->>":
		return b.call(&Call{Pos: x.Pos, Name: map[string]string{"->": "json_extract", "->>": "json_extract_string"}[x.Op], Args: []Expr{x.L, x.R}})
	case "||":
		return b.call(&Call{Pos: x.Pos, Name: "||", Args: []Expr{x.L, x.R}})
	}
	l, err := b.bind(x.L)
	if err != nil {
		return nil, err
	}
	if iv, ok := x.R.(*Interval); ok && (x.Op == "+" || x.Op == "-") {
		if l.typ.ID() != arrow.TIMESTAMP {
			return nil, typeErr(x, "an interval can only be added to or subtracted from a timestamp, not a %s", sqlType(l.typ))
		}
		return b.addInterval(x, l, iv)
	}
	r, err := b.bind(x.R)
	if err != nil {
		return nil, err
	}
	switch x.Op {
	case "AND", "OR":
		if l, err = b.boolean(x.L, l); err != nil {
			return nil, err
		}
		if r, err = b.boolean(x.R, r); err != nil {
			return nil, err
		}
		return kernel2(strings.ToLower(x.Op)+"_kleene", typBool, l, r), nil
	case "=", "<>", "<", "<=", ">", ">=":
		l, r, err := b.unify(x, l, r)
		if err != nil {
			return nil, err
		}
		fn := map[string]string{"=": "equal", "<>": "not_equal", "<": "less", "<=": "less_equal", ">": "greater", ">=": "greater_equal"}[x.Op]
		return kernel2(fn, typBool, l, r), nil
	}
	return b.arith(x, l, r)
}

// unify converts two operands to their common type.
func (b *binder) unify(x Expr, l, r *node) (*node, *node, error) {
	// A string constant meets the other side's type (DuckDB's implicit
	// cast of a literal).
	if l.konst != nil && isString(l.typ) && !isString(r.typ) && r.typ.ID() != arrow.NULL {
		var err error
		if l, err = b.coerce(x, l, r.typ); err != nil {
			return nil, nil, err
		}
	}
	if r.konst != nil && isString(r.typ) && !isString(l.typ) && l.typ.ID() != arrow.NULL {
		var err error
		if r, err = b.coerce(x, r, l.typ); err != nil {
			return nil, nil, err
		}
	}
	t, ok := commonType(l.typ, r.typ)
	if !ok {
		return nil, nil, typeErr(x, "cannot compare %s with %s in %s", sqlType(l.typ), sqlType(r.typ), x)
	}
	if t.ID() == arrow.NULL {
		t = typBool
	}
	var err error
	if l, err = b.coerce(x, l, t); err != nil {
		return nil, nil, err
	}
	if r, err = b.coerce(x, r, t); err != nil {
		return nil, nil, err
	}
	return l, r, nil
}
