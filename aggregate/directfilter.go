package aggregate

import (
	"bytes"
	"cmp"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/iceberg-go"
)

// A direct read (direct.go) applies the reader's row filter itself, with
// the semantics of the reader's Arrow path (iceberg-go evaluates a filter
// through Substrait and Arrow compute, in SQL's three-valued logic): a row
// is kept when every conjunct is true, and a comparison with a null value
// is null, so it drops the row. Only what Floe's filter language and a
// time range produce is compiled — a conjunction of comparisons and null
// tests of top-level columns; anything else (OR, NOT, IN, nested fields)
// declines the direct read, and the backfill reads through the reader.

// fexpr is a compiled filter: eval marks the rows of cols (indexed as the
// direct read's columns) it keeps, in a buffer it owns until its next
// eval.
type fexpr interface {
	eval(cols []*colBuf, n int) []bool
}

func growBools(b []bool, n int) []bool {
	if cap(b) < n {
		return make([]bool, n)
	}
	return b[:n]
}

type fconst struct {
	v   bool
	buf []bool
}

func (f *fconst) eval(_ []*colBuf, n int) []bool {
	f.buf = growBools(f.buf, n)
	for i := range f.buf {
		f.buf[i] = f.v
	}
	return f.buf
}

type fand struct {
	l, r fexpr
}

func (f *fand) eval(cols []*colBuf, n int) []bool {
	l, r := f.l.eval(cols, n), f.r.eval(cols, n)
	for i, ok := range r {
		l[i] = l[i] && ok
	}
	return l
}

// fpred is a predicate on one column.
type fpred struct {
	col  int
	kind valueKind
	op   iceberg.Operation
	// The literal (comparisons, starts with) by kind.
	i   int64
	f   float64
	d   decimal128.Num
	s   []byte
	b   bool
	buf []bool
}

func (f *fpred) eval(cols []*colBuf, n int) []bool {
	c := cols[f.col]
	f.buf = growBools(f.buf, n)
	for i := range f.buf {
		null := c.nulls && !c.valids[i]
		switch f.op {
		case iceberg.OpIsNull:
			f.buf[i] = null
		case iceberg.OpNotNull:
			f.buf[i] = !null
		default:
			f.buf[i] = !null && f.test(c, i)
		}
	}
	return f.buf
}

// test evaluates the predicate on the non-null value i of c.
func (f *fpred) test(c *colBuf, i int) bool {
	switch f.op {
	case iceberg.OpIsNan:
		return c.floats[i] != c.floats[i]
	case iceberg.OpNotNan:
		return c.floats[i] == c.floats[i]
	case iceberg.OpStartsWith:
		return bytes.HasPrefix(c.bytesAt(i), f.s)
	case iceberg.OpNotStartsWith:
		return !bytes.HasPrefix(c.bytesAt(i), f.s)
	}
	if f.kind == kFloat {
		// IEEE comparisons, as Arrow's kernels make them (NaN is neither
		// less, equal nor greater).
		v := c.floats[i]
		switch f.op {
		case iceberg.OpLT:
			return v < f.f
		case iceberg.OpLTEQ:
			return v <= f.f
		case iceberg.OpGT:
			return v > f.f
		case iceberg.OpGTEQ:
			return v >= f.f
		case iceberg.OpEQ:
			return v == f.f
		case iceberg.OpNEQ:
			return v != f.f
		}
		return false
	}
	var r int
	switch f.kind {
	case kInt:
		r = cmp.Compare(c.ints[i], f.i)
	case kDecimal:
		r = c.decs[i].Cmp(f.d)
	case kBytes:
		r = bytes.Compare(c.bytesAt(i), f.s)
	case kBool:
		switch v := c.bs[i]; {
		case v == f.b:
		case !v:
			r = -1
		default:
			r = 1
		}
	}
	switch f.op {
	case iceberg.OpLT:
		return r < 0
	case iceberg.OpLTEQ:
		return r <= 0
	case iceberg.OpGT:
		return r > 0
	case iceberg.OpGTEQ:
		return r >= 0
	case iceberg.OpEQ:
		return r == 0
	case iceberg.OpNEQ:
		return r != 0
	}
	return false
}

// filterCompiler compiles a bound filter over the direct read's columns;
// col adds (or finds) the column of a field and returns its index and
// kind. The first unsupported node sets err.
type filterCompiler struct {
	col func(f iceberg.NestedField) (int, valueKind, bool)
	err error
}

func (c *filterCompiler) fail(format string, args ...any) fexpr {
	if c.err == nil {
		c.err = fmt.Errorf("%w: filter: %s", errNoDirect, fmt.Sprintf(format, args...))
	}
	return &fconst{}
}

func (c *filterCompiler) VisitTrue() fexpr          { return &fconst{v: true} }
func (c *filterCompiler) VisitFalse() fexpr         { return &fconst{} }
func (c *filterCompiler) VisitNot(fexpr) fexpr      { return c.fail("NOT") }
func (c *filterCompiler) VisitAnd(l, r fexpr) fexpr { return &fand{l: l, r: r} }
func (c *filterCompiler) VisitOr(fexpr, fexpr) fexpr {
	return c.fail("OR")
}

func (c *filterCompiler) VisitUnbound(iceberg.UnboundPredicate) fexpr {
	return c.fail("unbound predicate")
}

func (c *filterCompiler) VisitBound(p iceberg.BoundPredicate) fexpr {
	ref := p.Ref()
	if len(ref.PosPath()) != 1 {
		return c.fail("predicate on nested field %s", ref.Field().Name)
	}
	if _, isRef := p.Term().(iceberg.BoundReference); !isRef {
		return c.fail("predicate on a transform of %s", ref.Field().Name)
	}
	idx, kind, ok := c.col(ref.Field())
	if !ok {
		return c.fail("column %s of type %s", ref.Field().Name, ref.Field().Type)
	}
	f := &fpred{col: idx, kind: kind, op: p.Op()}
	switch p := p.(type) {
	case iceberg.BoundUnaryPredicate:
		switch p.Op() {
		case iceberg.OpIsNull, iceberg.OpNotNull:
		case iceberg.OpIsNan, iceberg.OpNotNan:
			if kind != kFloat {
				return c.fail("NaN test of %s", ref.Field().Name)
			}
		default:
			return c.fail("operation %s", p.Op())
		}
	case iceberg.BoundLiteralPredicate:
		switch p.Op() {
		case iceberg.OpLT, iceberg.OpLTEQ, iceberg.OpGT, iceberg.OpGTEQ, iceberg.OpEQ, iceberg.OpNEQ:
		case iceberg.OpStartsWith, iceberg.OpNotStartsWith:
			if kind != kBytes {
				return c.fail("starts-with on %s", ref.Field().Name)
			}
		default:
			return c.fail("operation %s", p.Op())
		}
		v, ok := literalValue(p.Literal(), kind, ref.Field().Type)
		if !ok {
			return c.fail("literal %s for %s", p.Literal(), ref.Field().Name)
		}
		f.i, f.f, f.d, f.s, f.b = v.i, v.f, v.d, []byte(v.s), v.b
	default:
		return c.fail("predicate %s", p)
	}
	return f
}

// literalValue converts a literal bound to a column of type t.
func literalValue(l iceberg.Literal, kind valueKind, t iceberg.Type) (scalar, bool) {
	switch kind {
	case kInt:
		switch v := l.(type) {
		case iceberg.Int32Literal:
			return scalar{i: int64(v)}, true
		case iceberg.Int64Literal:
			return scalar{i: int64(v)}, true
		case iceberg.DateLiteral:
			return scalar{i: int64(v)}, true
		case iceberg.TimestampLiteral:
			return scalar{i: int64(v)}, true
		}
	case kFloat:
		switch v := l.(type) {
		case iceberg.Float32Literal:
			return scalar{f: float64(v)}, true
		case iceberg.Float64Literal:
			return scalar{f: float64(v)}, true
		}
	case kDecimal:
		v, ok := l.(iceberg.DecimalLiteral)
		dt, ok2 := t.(iceberg.DecimalType)
		if ok && ok2 && v.Scale == dt.Scale() {
			return scalar{d: v.Val}, true
		}
	case kBytes:
		switch v := l.(type) {
		case iceberg.StringLiteral:
			return scalar{s: string(v)}, true
		case iceberg.BinaryLiteral:
			return scalar{s: string(v)}, true
		}
	case kBool:
		if v, ok := l.(iceberg.BoolLiteral); ok {
			return scalar{b: bool(v)}, true
		}
	}
	return scalar{}, false
}
