package query

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/scalar"
)

// evalArrays evaluates nodes to arrays of c.n values (constants
// broadcast); the caller releases them.
func evalArrays(c *evalCtx, nodes ...*node) (arrow.Array, arrow.Array, error) {
	out := make([]arrow.Array, 2)
	for i, n := range nodes {
		d, err := n.eval(c)
		if err == nil {
			out[i], err = c.array(d)
		}
		if err != nil {
			for _, a := range out[:i] {
				a.Release()
			}
			return nil, nil, err
		}
	}
	return out[0], out[1], nil
}

// evalAll evaluates nodes to arrays; release with releaseAll.
func evalAll(c *evalCtx, nodes []*node) ([]arrow.Array, error) {
	out := make([]arrow.Array, 0, len(nodes))
	for _, n := range nodes {
		d, err := n.eval(c)
		var a arrow.Array
		if err == nil {
			a, err = c.array(d)
		}
		if err != nil {
			releaseAll(out)
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func releaseAll(as []arrow.Array) {
	for _, a := range as {
		if a != nil {
			a.Release()
		}
	}
}

// anyNull reports whether row i of any of as is null.
func anyNull(as []arrow.Array, i int) bool {
	for _, a := range as {
		if a.IsNull(i) {
			return true
		}
	}
	return false
}

// floatAt reads a numeric array as float64.
func floatAt(a arrow.Array) func(i int) float64 {
	switch v := a.(type) {
	case *array.Float64:
		return v.Value
	case *array.Int64:
		return func(i int) float64 { return float64(v.Value(i)) }
	case *array.Decimal128:
		s := v.DataType().(*arrow.Decimal128Type).Scale
		return func(i int) float64 { return decimalFloat(v.Value(i), s) }
	}
	return func(int) float64 { return math.NaN() }
}

// decimalFloat converts a decimal to the nearest DOUBLE: exactly
// rounded (one division of two exact values) when it has at most 15
// digits, as DuckDB's conversion is.
func decimalFloat(n decimal128.Num, scale int32) float64 {
	if n.FitsInPrecision(15) && scale >= 0 && scale <= 22 {
		return float64(int64(n.LowBits())) / math.Pow10(int(scale))
	}
	return n.ToFloat64(scale)
}

// The builders below run f for each row and build the result; f returns
// false for a null.

func float2(c *evalCtx, l, r arrow.Array, f func(a, b float64) (float64, bool)) (compute.Datum, error) {
	lv, rv := floatAt(l), floatAt(r)
	return buildFloat(c, func(i int) (float64, bool) {
		if l.IsNull(i) || r.IsNull(i) {
			return 0, false
		}
		return f(lv(i), rv(i))
	})
}

func int2(c *evalCtx, l, r arrow.Array, f func(a, b int64) (int64, bool)) (compute.Datum, error) {
	lv, rv := l.(*array.Int64), r.(*array.Int64)
	return buildInt(c, func(i int) (int64, bool) {
		if l.IsNull(i) || r.IsNull(i) {
			return 0, false
		}
		return f(lv.Value(i), rv.Value(i))
	})
}

// appender is an Arrow builder of fixed-width values, which a build loop
// fills with UnsafeAppend after one Reserve.
type appender[V any] interface {
	array.Builder
	UnsafeAppend(V)
}

// build fills b with f(0) … f(n-1), a null where f says !ok, and returns
// the array as a datum; it releases b.
func build[V any](c *evalCtx, b appender[V], f func(i int) (V, bool)) (compute.Datum, error) {
	defer b.Release()
	b.Reserve(c.n)
	for i := range c.n {
		if v, ok := f(i); ok {
			b.UnsafeAppend(v)
		} else {
			b.UnsafeAppendBoolToBitmap(false)
		}
	}
	return arrayDatum(b.NewArray()), nil
}

func buildFloat(c *evalCtx, f func(i int) (float64, bool)) (compute.Datum, error) {
	return build[float64](c, array.NewFloat64Builder(c.mem), f)
}

func buildInt(c *evalCtx, f func(i int) (int64, bool)) (compute.Datum, error) {
	return build[int64](c, array.NewInt64Builder(c.mem), f)
}

func buildBool(c *evalCtx, f func(i int) (bool, bool)) (compute.Datum, error) {
	return build[bool](c, array.NewBooleanBuilder(c.mem), f)
}

func buildString(c *evalCtx, f func(i int) (string, bool)) (compute.Datum, error) {
	b := array.NewStringBuilder(c.mem)
	defer b.Release()
	b.Reserve(c.n)
	for i := range c.n {
		if v, ok := f(i); ok {
			b.Append(v)
		} else {
			b.AppendNull()
		}
	}
	return arrayDatum(b.NewArray()), nil
}

func buildTimestamp(c *evalCtx, t arrow.DataType, f func(i int) (int64, bool)) (compute.Datum, error) {
	return build[arrow.Timestamp](c, array.NewTimestampBuilder(c.mem, t.(*arrow.TimestampType)), func(i int) (arrow.Timestamp, bool) {
		v, ok := f(i)
		return arrow.Timestamp(v), ok
	})
}

func buildDate(c *evalCtx, f func(i int) (int32, bool)) (compute.Datum, error) {
	return build[arrow.Date32](c, array.NewDate32Builder(c.mem), func(i int) (arrow.Date32, bool) {
		v, ok := f(i)
		return arrow.Date32(v), ok
	})
}

func arrayDatum(a arrow.Array) compute.Datum {
	d := compute.NewDatum(a)
	a.Release()
	return d
}

const microsPerDay = 86400e6

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// specialCast reports the conversions the hand loops do where Arrow's
// cast kernel has none or differs from DuckDB.
func specialCast(from, to arrow.DataType) bool {
	switch {
	case from.ID() == arrow.TIMESTAMP && (to.ID() == arrow.DATE32 || isString(to) || to.ID() == arrow.TIMESTAMP):
		return true
	case from.ID() == arrow.DATE32 && (isString(to) || to.ID() == arrow.TIMESTAMP):
		return true
	case isString(from) && (to.ID() == arrow.TIMESTAMP || to.ID() == arrow.DATE32 || to.ID() == arrow.BOOL):
		return true
	case (isFloat(from) || isDecimal(from)) && (isString(to) || isInt(to) || isDecimal(to)):
		return true
	case from.ID() == arrow.BOOL && isString(to):
		return true
	}
	return false
}

// castSpecial converts a to t where specialCast says so; ok is false
// when the cast kernel should do it.
func castSpecial(c *evalCtx, a arrow.Array, t arrow.DataType) (arrow.Array, bool, error) {
	from := a.DataType()
	if !specialCast(from, t) {
		return nil, false, nil
	}
	c2 := *c
	c2.n = a.Len()
	var d compute.Datum
	var err error
	switch {
	case from.ID() == arrow.TIMESTAMP:
		ts := a.(*array.Timestamp)
		us := micros(ts)
		switch {
		case t.ID() == arrow.DATE32: // in UTC for a TIMESTAMPTZ (DuckDB with TimeZone 'UTC')
			d, err = buildDate(&c2, func(i int) (int32, bool) { return int32(floorDiv(us(i), microsPerDay)), ts.IsValid(i) })
		case t.ID() == arrow.TIMESTAMP:
			d, err = buildTimestamp(&c2, t, func(i int) (int64, bool) { return us(i), ts.IsValid(i) })
		default:
			tz := isTZ(from)
			d, err = buildString(&c2, func(i int) (string, bool) {
				if ts.IsNull(i) {
					return "", false
				}
				return formatTimestamp(us(i), tz), true
			})
		}
	case from.ID() == arrow.DATE32:
		dt := a.(*array.Date32)
		if t.ID() == arrow.TIMESTAMP {
			d, err = buildTimestamp(&c2, t, func(i int) (int64, bool) { return int64(dt.Value(i)) * microsPerDay, dt.IsValid(i) })
		} else {
			d, err = buildString(&c2, func(i int) (string, bool) {
				return time.UnixMicro(int64(dt.Value(i)) * microsPerDay).UTC().Format(time.DateOnly), dt.IsValid(i)
			})
		}
	case isString(from):
		s := a.(array.StringLike)
		var bad error
		switch t.ID() {
		case arrow.TIMESTAMP:
			d, err = buildTimestamp(&c2, t, func(i int) (int64, bool) {
				if s.IsNull(i) {
					return 0, false
				}
				v, e := parseTimestamp(s.Value(i), isTZ(t))
				if e != nil && bad == nil {
					bad = e
				}
				return v, e == nil
			})
		case arrow.DATE32:
			d, err = buildDate(&c2, func(i int) (int32, bool) {
				if s.IsNull(i) {
					return 0, false
				}
				v, e := time.Parse(time.DateOnly, strings.TrimSpace(s.Value(i)))
				if e != nil && bad == nil {
					bad = fmt.Errorf("date %q: want YYYY-MM-DD", s.Value(i))
				}
				return int32(floorDiv(v.UnixMicro(), microsPerDay)), e == nil
			})
		default:
			d, err = buildBool(&c2, func(i int) (bool, bool) {
				if s.IsNull(i) {
					return false, false
				}
				switch strings.ToLower(strings.TrimSpace(s.Value(i))) {
				case "true", "t", "1", "yes", "y":
					return true, true
				case "false", "f", "0", "no", "n":
					return false, true
				}
				if bad == nil {
					bad = fmt.Errorf("%q is not a boolean", s.Value(i))
				}
				return false, false
			})
		}
		if err == nil && bad != nil {
			d.Release()
			return nil, true, fmt.Errorf("cast to %s: %w", sqlType(t), bad)
		}
	case from.ID() == arrow.BOOL:
		bv := a.(*array.Boolean)
		d, err = buildString(&c2, func(i int) (string, bool) { return strconv.FormatBool(bv.Value(i)), bv.IsValid(i) })
	default: // float or decimal to text, integer or decimal
		d, err = castNumber(&c2, a, t)
	}
	if err != nil {
		return nil, true, err
	}
	out := d.(*compute.ArrayDatum).MakeArray()
	d.Release()
	return out, true, nil
}

// castNumber converts DOUBLE and DECIMAL values as DuckDB does: to an
// integer or a decimal rounding half away from zero, to text in the
// shortest form that reads back ("1.5", "12.50" for a DECIMAL(18,2)).
func castNumber(c *evalCtx, a arrow.Array, t arrow.DataType) (compute.Datum, error) {
	valid := a.IsValid
	switch {
	case isString(t):
		if dec, ok := a.(*array.Decimal128); ok {
			s := dec.DataType().(*arrow.Decimal128Type).Scale
			return buildString(c, func(i int) (string, bool) { return dec.Value(i).ToString(s), valid(i) })
		}
		f := floatAt(a)
		return buildString(c, func(i int) (string, bool) { return formatFloat(f(i)), valid(i) })
	case isInt(t):
		f := floatAt(a)
		var bad error
		d, err := buildInt(c, func(i int) (int64, bool) {
			if !valid(i) {
				return 0, false
			}
			v := math.RoundToEven(f(i)) // DuckDB: DOUBLE to integer rounds half to even
			if _, dec := a.(*array.Decimal128); dec {
				v = math.Round(f(i)) // and DECIMAL half away from zero
			}
			if math.IsNaN(v) || v < math.MinInt64 || v >= math.MaxInt64 {
				if bad == nil {
					bad = fmt.Errorf("%v is out of range for BIGINT", f(i))
				}
				return 0, false
			}
			return int64(v), true
		})
		if err == nil && bad != nil {
			d.Release()
			return nil, bad
		}
		if err != nil || t.ID() == arrow.INT64 {
			return d, err
		}
		defer d.Release()
		return compute.CallFunction(c.ctx, "cast", compute.SafeCastOptions(t), d)
	}
	dt := t.(*arrow.Decimal128Type)
	b := array.NewDecimal128Builder(c.mem, dt)
	defer b.Release()
	var bad error
	dec, isDec := a.(*array.Decimal128)
	f := floatAt(a)
	for i := range c.n {
		if !valid(i) {
			b.AppendNull()
			continue
		}
		var n decimal128.Num
		var err error
		if isDec {
			n, err = rescaleHalfUp(dec.Value(i), dec.DataType().(*arrow.Decimal128Type).Scale, dt)
		} else {
			n, err = floatDecimal(f(i), dt)
		}
		if err != nil {
			if bad == nil {
				bad = err
			}
			b.AppendNull()
			continue
		}
		b.Append(n)
	}
	if bad != nil {
		return nil, fmt.Errorf("cast to %s: %w", sqlType(t), bad)
	}
	return arrayDatum(b.NewArray()), nil
}

// floatDecimal converts a DOUBLE to a decimal rounding half away from
// zero, as DuckDB does.
func floatDecimal(f float64, dt *arrow.Decimal128Type) (decimal128.Num, error) {
	if dt.Scale <= 22 {
		v := math.Round(f * math.Pow10(int(dt.Scale)))
		if math.Abs(v) < 1<<53 {
			n := decimal128.FromI64(int64(v))
			if !n.FitsInPrecision(dt.Precision) {
				return n, fmt.Errorf("%v does not fit DECIMAL(%d,%d)", f, dt.Precision, dt.Scale)
			}
			return n, nil
		}
	}
	return decimal128.FromFloat64(f, dt.Precision, dt.Scale)
}

// rescaleHalfUp changes a decimal's scale, rounding half away from zero.
func rescaleHalfUp(n decimal128.Num, from int32, to *arrow.Decimal128Type) (decimal128.Num, error) {
	if to.Scale >= from {
		r, err := n.Rescale(from, to.Scale)
		if err == nil && !r.FitsInPrecision(to.Precision) {
			err = fmt.Errorf("%s does not fit DECIMAL(%d,%d)", n.ToString(from), to.Precision, to.Scale)
		}
		return r, err
	}
	r := n.ReduceScaleBy(from-to.Scale, true)
	if !r.FitsInPrecision(to.Precision) {
		return r, fmt.Errorf("%s does not fit DECIMAL(%d,%d)", n.ToString(from), to.Precision, to.Scale)
	}
	return r, nil
}

// formatFloat writes a DOUBLE as DuckDB's CAST to VARCHAR does: the
// shortest text that reads back, "3.0" for whole numbers below 1e16.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	case f == math.Trunc(f) && math.Abs(f) < 1e16:
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// formatTimestamp writes a timestamp as DuckDB's CAST to VARCHAR does:
// "2024-01-02 03:04:05[.ffffff]", with "+00" for a TIMESTAMPTZ (UTC).
func formatTimestamp(us int64, tz bool) string {
	t := time.UnixMicro(us).UTC()
	s := t.Format("2006-01-02 15:04:05")
	if frac := t.Nanosecond() / 1000; frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%06d", frac), "0")
	}
	if tz {
		s += "+00"
	}
	return s
}

// micros reads a timestamp array in microseconds.
func micros(a *array.Timestamp) func(i int) int64 {
	var mul, div int64 = 1, 1
	switch a.DataType().(*arrow.TimestampType).Unit {
	case arrow.Second:
		mul = 1e6
	case arrow.Millisecond:
		mul = 1e3
	case arrow.Nanosecond:
		div = 1e3
	}
	vals := a.TimestampValues()
	if mul == 1 && div == 1 {
		return func(i int) int64 { return int64(vals[i]) }
	}
	return func(i int) int64 { return floorDiv(int64(vals[i])*mul, div) }
}

func (b *binder) isNull(x *IsNull) (*node, error) {
	n, err := b.bind(x.X)
	if err != nil {
		return nil, err
	}
	fn := "is_null"
	if x.Not {
		fn = "is_not_null"
	}
	if n.typ.ID() == arrow.NULL {
		return constNode(scalar.NewBooleanScalar(!x.Not)), nil
	}
	return kernel1(fn, typBool, n), nil
}

// in binds x IN (list). A list of constants uses the is_in kernel with
// SQL's null semantics (a null x, or no match in a list holding NULL,
// give NULL); a list with expressions is x = a OR x = b ….
func (b *binder) in(x *In) (*node, error) {
	xn, err := b.bind(x.X)
	if err != nil {
		return nil, err
	}
	items := make([]*node, len(x.List))
	t := xn.typ
	allConst := true
	for i, e := range x.List {
		if items[i], err = b.bind(e); err != nil {
			return nil, err
		}
		if items[i].konst == nil {
			allConst = false
		}
		if items[i].konst != nil && isString(items[i].typ) && !isString(xn.typ) {
			continue // converted to x's type below
		}
		var ok bool
		if t, ok = commonType(t, items[i].typ); !ok {
			return nil, typeErr(e, "cannot compare %s with %s in %s", sqlType(xn.typ), sqlType(items[i].typ), x)
		}
	}
	if !allConst || t.ID() == arrow.NULL {
		var cond Expr
		for _, e := range x.List {
			var eq Expr = &Binary{Pos: x.Pos, Op: "=", L: x.X, R: e}
			if cond == nil {
				cond = eq
			} else {
				cond = &Binary{Pos: x.Pos, Op: "OR", L: cond, R: eq}
			}
		}
		if x.Not {
			cond = &Unary{Pos: x.Pos, Op: "NOT", X: cond}
		}
		return b.bind(cond)
	}
	if xn, err = b.coerce(x.X, xn, t); err != nil {
		return nil, err
	}
	var parts []arrow.Array
	defer func() { releaseAll(parts) }()
	hasNull := false
	for i, it := range items {
		s, err := castScalar(it.konst, t)
		if err != nil {
			return nil, typeErr(x.List[i], "cannot convert %s to %s: %v", x.List[i], sqlType(t), err)
		}
		if !s.IsValid() {
			hasNull = true
			continue
		}
		a, err := scalar.MakeArrayFromScalar(s, 1, memoryDefault())
		if err != nil {
			return nil, typeErr(x.List[i], "%v", err)
		}
		parts = append(parts, a)
	}
	var set arrow.Array
	if len(parts) == 0 {
		set = array.MakeArrayOfNull(memoryDefault(), t, 0)
	} else if set, err = array.Concatenate(parts, memoryDefault()); err != nil {
		return nil, typeErr(x, "%v", err)
	}
	opts := &compute.SetOptions{ValueSet: compute.NewDatumWithoutOwning(set), NullBehavior: compute.NullMatchingSkip}
	not := x.Not
	return &node{typ: typBool, eval: func(c *evalCtx) (compute.Datum, error) {
		d, err := xn.eval(c)
		if err != nil {
			return nil, err
		}
		defer d.Release()
		xa, err := c.array(compute.NewDatum(d))
		if err != nil {
			return nil, err
		}
		defer xa.Release()
		found, err := compute.CallFunction(c.ctx, "is_in", opts, compute.NewDatumWithoutOwning(xa))
		if err != nil {
			return nil, fmt.Errorf("is_in: %w", err)
		}
		defer found.Release()
		fa := found.(*compute.ArrayDatum).MakeArray().(*array.Boolean)
		defer fa.Release()
		return buildBool(c, func(i int) (bool, bool) {
			if xa.IsNull(i) {
				return false, false
			}
			v := fa.Value(i)
			if !v && hasNull {
				return false, false
			}
			return v != not, true
		})
	}}, nil
}
