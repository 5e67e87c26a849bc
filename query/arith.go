package query

import (
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/scalar"
)

// arith binds + - * / %: integers compute in BIGINT (overflow is an
// error), decimals in DECIMAL with Arrow's (and DuckDB's) precision
// rules, and / always in DOUBLE as DuckDB's / does. A timestamp plus or
// minus an interval of fixed length is a timestamp.
func (b *binder) arith(x *Binary, l, r *node) (*node, error) {
	if l.typ.ID() == arrow.NULL || r.typ.ID() == arrow.NULL {
		t := l.typ
		if t.ID() == arrow.NULL {
			t = r.typ
		}
		if t.ID() == arrow.NULL {
			t = typInt
		}
		return constNode(scalar.MakeNullScalar(t)), nil
	}
	if !isNumeric(l.typ) || !isNumeric(r.typ) {
		return nil, typeErr(x, "cannot compute %s %s %s", sqlType(l.typ), x.Op, sqlType(r.typ))
	}
	var t arrow.DataType
	switch {
	case x.Op == "/" || isFloat(l.typ) || isFloat(r.typ):
		t = typFloat
	case isDecimal(l.typ) || isDecimal(r.typ):
		if x.Op == "%" {
			t = typFloat
			break
		}
		l, r = castNode(l, asDecimal(l.typ)), castNode(r, asDecimal(r.typ))
		if l.typ.ID() != arrow.DECIMAL128 || r.typ.ID() != arrow.DECIMAL128 {
			return nil, typeErr(x, "cannot compute %s %s %s", sqlType(l.typ), x.Op, sqlType(r.typ))
		}
		fn := map[string]string{"+": "add", "-": "subtract", "*": "multiply"}[x.Op]
		dl, dr := l.typ.(*arrow.Decimal128Type), r.typ.(*arrow.Decimal128Type)
		var rt *arrow.Decimal128Type
		switch x.Op {
		case "*":
			rt = &arrow.Decimal128Type{Precision: min(38, dl.Precision+dr.Precision), Scale: dl.Scale + dr.Scale}
		default:
			s := max(dl.Scale, dr.Scale)
			rt = &arrow.Decimal128Type{Precision: min(38, max(dl.Precision-dl.Scale, dr.Precision-dr.Scale)+s+1), Scale: s}
		}
		if rt.Scale > 38 {
			return nil, typeErr(x, "decimal scale %d exceeds 38 in %s", rt.Scale, x)
		}
		return decimalArith(fn, rt, l, r), nil
	default:
		t = typInt
	}
	var err error
	if l, err = b.coerce(x, l, t); err != nil {
		return nil, err
	}
	if r, err = b.coerce(x, r, t); err != nil {
		return nil, err
	}
	switch x.Op {
	case "+":
		return kernel2("add", t, l, r), nil
	case "-":
		return kernel2("subtract", t, l, r), nil
	case "*":
		return kernel2("multiply", t, l, r), nil
	case "/":
		return divide(l, r), nil
	}
	return modulo(t, l, r), nil
}

// decimalArith runs fn and casts the kernel's result to DuckDB's type.
func decimalArith(fn string, rt *arrow.Decimal128Type, l, r *node) *node {
	k := kernel2(fn, rt, l, r)
	return &node{typ: rt, eval: func(c *evalCtx) (compute.Datum, error) {
		d, err := k.eval(c)
		if err != nil {
			return nil, err
		}
		if arrow.TypeEqual(d.(compute.ArrayLikeDatum).Type(), rt) {
			return d, nil
		}
		defer d.Release()
		return castDatum(c, d, rt)
	}}
}

// divide is DOUBLE division; x / 0 is ±inf or NaN (IEEE), as in DuckDB.
func divide(l, r *node) *node {
	return &node{typ: typFloat, eval: func(c *evalCtx) (compute.Datum, error) {
		la, ra, err := evalArrays(c, l, r)
		if err != nil {
			return nil, err
		}
		defer la.Release()
		defer ra.Release()
		return float2(c, la, ra, func(a, b float64) (float64, bool) { return a / b, true })
	}}
}

// modulo is % with the sign of the dividend (Go's and DuckDB's); an
// integer x % 0 is NULL, a DOUBLE one NaN (DuckDB).
func modulo(t arrow.DataType, l, r *node) *node {
	if t.ID() == arrow.FLOAT64 {
		return &node{typ: t, eval: func(c *evalCtx) (compute.Datum, error) {
			la, ra, err := evalArrays(c, l, r)
			if err != nil {
				return nil, err
			}
			defer la.Release()
			defer ra.Release()
			return float2(c, la, ra, func(a, b float64) (float64, bool) { return math.Mod(a, b), true })
		}}
	}
	return &node{typ: t, eval: func(c *evalCtx) (compute.Datum, error) {
		la, ra, err := evalArrays(c, l, r)
		if err != nil {
			return nil, err
		}
		defer la.Release()
		defer ra.Release()
		return int2(c, la, ra, func(a, b int64) (int64, bool) {
			if b == 0 {
				return 0, false
			}
			return a % b, true
		})
	}}
}
