package query

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/arrow/scalar"
)

func memoryDefault() memory.Allocator { return memory.DefaultAllocator }

// funcBinder type-checks a call's bound arguments and returns its node.
type funcBinder func(b *binder, x *Call, args []*node) (*node, error)

// functions are the scalar functions of the dialect, by lower-case name.
// Each follows DuckDB's definition (see the package comment).
func functions() map[string]funcBinder {
	return map[string]funcBinder{
		"lower":               stringFn1(strings.ToLower),
		"upper":               stringFn1(strings.ToUpper),
		"trim":                trimFn(strings.Trim, strings.TrimSpace),
		"ltrim":               trimFn(strings.TrimLeft, func(s string) string { return strings.TrimLeft(s, " ") }),
		"rtrim":               trimFn(strings.TrimRight, func(s string) string { return strings.TrimRight(s, " ") }),
		"length":              lengthFn,
		"substr":              substrFn,
		"substring":           substrFn,
		"concat":              concatFn,
		"||":                  concatOpFn,
		"replace":             replaceFn,
		"starts_with":         stringPredFn(strings.HasPrefix),
		"contains":            stringPredFn(strings.Contains),
		"ends_with":           stringPredFn(strings.HasSuffix),
		"coalesce":            coalesceFn,
		"ifnull":              coalesceFn,
		"nullif":              nullifFn,
		"abs":                 absFn,
		"round":               roundFn,
		"json_extract_string": jsonFn(true),
		"json_extract":        jsonFn(false),
		"date_trunc":          dateTruncFn,
		"time_bucket":         timeBucketFn,
		"timezone":            timezoneFn,
		"strftime":            strftimeFn,
		"year":                datePartFn("year"),
		"month":               datePartFn("month"),
		"day":                 datePartFn("day"),
		"hour":                datePartFn("hour"),
		"minute":              datePartFn("minute"),
		"second":              datePartFn("second"),
		"dayofweek":           datePartFn("dayofweek"),
		"isodow":              datePartFn("isodow"),
		"dayofyear":           datePartFn("dayofyear"),
		"epoch_ms":            datePartFn("epoch_ms"),
	}
}

// FunctionNames lists the scalar functions Compile knows, sorted.
func FunctionNames() []string {
	var names []string
	for n := range functions() {
		if n != "||" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

func (b *binder) call(x *Call) (*node, error) {
	fn, ok := functions()[x.Name]
	if !ok {
		return nil, typeErr(x, "unknown function %s (the dialect has %s)", x.Name, strings.Join(FunctionNames(), ", "))
	}
	if x.Distinct || x.Star {
		return nil, typeErr(x, "%s is not an aggregate", x.Name)
	}
	args := make([]*node, len(x.Args))
	for i, a := range x.Args {
		if iv, ok := a.(*Interval); ok && (x.Name == "time_bucket" && i == 0) {
			args[i] = &node{typ: typNull, konst: scalar.NewInt64Scalar(iv.Micros)}
			continue
		}
		var err error
		if args[i], err = b.bind(a); err != nil {
			return nil, err
		}
	}
	return fn(b, x, args)
}

func arity(x *Call, args []*node, lo, hi int) error {
	if len(args) < lo || len(args) > hi {
		want := fmt.Sprint(lo)
		if hi > lo {
			want = fmt.Sprintf("%d to %d", lo, hi)
		}
		return typeErr(x, "%s takes %s arguments, got %d", x.Name, want, len(args))
	}
	return nil
}

// stringArg converts a VARCHAR (or NULL) argument to string.
// stringArgs checks that x has min to max arguments and makes each a
// string (stringArg), in place.
func (b *binder) stringArgs(x *Call, args []*node, min, max int) error {
	if err := arity(x, args, min, max); err != nil {
		return err
	}
	for i := range args {
		var err error
		if args[i], err = b.stringArg(x, i, args[i]); err != nil {
			return err
		}
	}
	return nil
}

func (b *binder) stringArg(x *Call, i int, n *node) (*node, error) {
	if isString(n.typ) {
		return n, nil
	}
	if n.typ.ID() == arrow.NULL {
		return constNode(scalar.MakeNullScalar(typString)), nil
	}
	return nil, typeErr(x.Args[i], "argument %d of %s is a %s, want VARCHAR", i+1, x.Name, sqlType(n.typ))
}

// strings evaluates string arguments.
func evalStrings(c *evalCtx, nodes []*node) ([]*array.String, []arrow.Array, error) {
	as, err := evalAll(c, nodes)
	if err != nil {
		return nil, nil, err
	}
	ss := make([]*array.String, len(as))
	for i, a := range as {
		ss[i] = a.(*array.String)
	}
	return ss, as, nil
}

// stringNode builds a VARCHAR-valued node over string arguments; f gets
// the row's values and returns false for a null. Nulls in any argument
// give null unless keepNulls.
func stringNode(args []*node, keepNulls bool, f func(v []string, null []bool) (string, bool)) *node {
	return &node{typ: typString, eval: func(c *evalCtx) (compute.Datum, error) {
		ss, as, err := evalStrings(c, args)
		if err != nil {
			return nil, err
		}
		defer releaseAll(as)
		v := make([]string, len(ss))
		null := make([]bool, len(ss))
		return buildString(c, func(i int) (string, bool) {
			for k, s := range ss {
				null[k] = s.IsNull(i)
				if null[k] && !keepNulls {
					return "", false
				}
				v[k] = s.Value(i)
			}
			return f(v, null)
		})
	}}
}

func stringFn1(f func(string) string) funcBinder {
	return func(b *binder, x *Call, args []*node) (*node, error) {
		if err := arity(x, args, 1, 1); err != nil {
			return nil, err
		}
		s, err := b.stringArg(x, 0, args[0])
		if err != nil {
			return nil, err
		}
		return stringNode([]*node{s}, false, func(v []string, _ []bool) (string, bool) { return f(v[0]), true }), nil
	}
}

func trimFn(withSet func(string, string) string, spaces func(string) string) funcBinder {
	return func(b *binder, x *Call, args []*node) (*node, error) {
		if err := b.stringArgs(x, args, 1, 2); err != nil {
			return nil, err
		}
		return stringNode(args, false, func(v []string, _ []bool) (string, bool) {
			if len(v) == 2 {
				return withSet(v[0], v[1]), true
			}
			return spaces(v[0]), true
		}), nil
	}
}

func lengthFn(b *binder, x *Call, args []*node) (*node, error) {
	if err := arity(x, args, 1, 1); err != nil {
		return nil, err
	}
	s, err := b.stringArg(x, 0, args[0])
	if err != nil {
		return nil, err
	}
	return &node{typ: typInt, eval: func(c *evalCtx) (compute.Datum, error) {
		ss, as, err := evalStrings(c, []*node{s})
		if err != nil {
			return nil, err
		}
		defer releaseAll(as)
		return buildInt(c, func(i int) (int64, bool) {
			return int64(utf8.RuneCountInString(ss[0].Value(i))), ss[0].IsValid(i)
		})
	}}, nil
}

// substrFn is substr(s, start[, length]) in characters, 1-based, as
// PostgreSQL and DuckDB define it: a start below 1 shortens the length,
// a negative start counts from the end (DuckDB).
func substrFn(b *binder, x *Call, args []*node) (*node, error) {
	if err := arity(x, args, 2, 3); err != nil {
		return nil, err
	}
	s, err := b.stringArg(x, 0, args[0])
	if err != nil {
		return nil, err
	}
	nums := make([]*node, len(args)-1)
	for i, a := range args[1:] {
		if !isInt(a.typ) && a.typ.ID() != arrow.NULL {
			return nil, typeErr(x.Args[i+1], "argument %d of %s is a %s, want an integer", i+2, x.Name, sqlType(a.typ))
		}
		if nums[i], err = b.coerce(x.Args[i+1], a, typInt); err != nil {
			return nil, err
		}
	}
	return &node{typ: typString, eval: func(c *evalCtx) (compute.Datum, error) {
		ss, as, err := evalStrings(c, []*node{s})
		if err != nil {
			return nil, err
		}
		defer releaseAll(as)
		ns, err := evalAll(c, nums)
		if err != nil {
			return nil, err
		}
		defer releaseAll(ns)
		return buildString(c, func(i int) (string, bool) {
			if ss[0].IsNull(i) || anyNull(ns, i) {
				return "", false
			}
			r := []rune(ss[0].Value(i))
			n := int64(len(r))
			start := ns[0].(*array.Int64).Value(i)
			length := n + 1
			if len(ns) == 2 {
				length = ns[1].(*array.Int64).Value(i)
			}
			if start < 0 {
				start = n + start + 1
			}
			from, to := start, start+length // [from, to) in 1-based positions
			if length < 0 {
				from, to = start+length, start
			}
			from, to = max(from, 1), min(to, n+1)
			if from >= to {
				return "", true
			}
			return string(r[from-1 : to-1]), true
		})
	}}, nil
}

// concatFn is concat(a, b, …): nulls count as empty strings; numbers and
// other values convert to text.
func concatFn(b *binder, x *Call, args []*node) (*node, error) {
	if len(args) == 0 {
		return nil, typeErr(x, "concat needs arguments")
	}
	for i, a := range args {
		var err error
		if args[i], err = b.toText(x.Args[i], a); err != nil {
			return nil, err
		}
	}
	return stringNode(args, true, func(v []string, null []bool) (string, bool) {
		var sb strings.Builder
		for k, s := range v {
			if !null[k] {
				sb.WriteString(s)
			}
		}
		return sb.String(), true
	}), nil
}

// concatOpFn is a || b: NULL when either is NULL.
func concatOpFn(b *binder, x *Call, args []*node) (*node, error) {
	for i, a := range args {
		var err error
		if args[i], err = b.toText(x.Args[i], a); err != nil {
			return nil, err
		}
	}
	return stringNode(args, false, func(v []string, _ []bool) (string, bool) { return v[0] + v[1], true }), nil
}

func (b *binder) toText(e Expr, n *node) (*node, error) {
	if isString(n.typ) {
		return n, nil
	}
	if n.typ.ID() == arrow.NULL {
		return constNode(scalar.MakeNullScalar(typString)), nil
	}
	if !compute.CanCast(n.typ, typString) && !specialCast(n.typ, typString) {
		return nil, typeErr(e, "cannot convert %s to VARCHAR", sqlType(n.typ))
	}
	return b.coerce(e, n, typString)
}

func replaceFn(b *binder, x *Call, args []*node) (*node, error) {
	if err := b.stringArgs(x, args, 3, 3); err != nil {
		return nil, err
	}
	return stringNode(args, false, func(v []string, _ []bool) (string, bool) {
		return strings.ReplaceAll(v[0], v[1], v[2]), true
	}), nil
}

func stringPredFn(f func(s, p string) bool) funcBinder {
	return func(b *binder, x *Call, args []*node) (*node, error) {
		if err := b.stringArgs(x, args, 2, 2); err != nil {
			return nil, err
		}
		return &node{typ: typBool, eval: func(c *evalCtx) (compute.Datum, error) {
			ss, as, err := evalStrings(c, args)
			if err != nil {
				return nil, err
			}
			defer releaseAll(as)
			return buildBool(c, func(i int) (bool, bool) {
				if ss[0].IsNull(i) || ss[1].IsNull(i) {
					return false, false
				}
				return f(ss[0].Value(i), ss[1].Value(i)), true
			})
		}}, nil
	}
}

func absFn(b *binder, x *Call, args []*node) (*node, error) {
	if err := arity(x, args, 1, 1); err != nil {
		return nil, err
	}
	n := args[0]
	if !isNumeric(n.typ) {
		return nil, typeErr(x, "abs of a %s", sqlType(n.typ))
	}
	if isInt(n.typ) {
		n = castNode(n, typInt)
	} else if n.typ.ID() == arrow.FLOAT32 {
		n = castNode(n, typFloat)
	}
	return kernel1("abs", n.typ, n), nil
}

// roundFn is round(x[, digits]) of a DOUBLE (an integer is returned as
// it is), half away from zero as DuckDB rounds.
func roundFn(b *binder, x *Call, args []*node) (*node, error) {
	if err := arity(x, args, 1, 2); err != nil {
		return nil, err
	}
	digits := int64(0)
	if len(args) == 2 {
		k, ok := args[1].konst.(*scalar.Int64)
		if !ok || !k.IsValid() {
			return nil, typeErr(x.Args[1], "the digits of round must be an integer constant")
		}
		digits = k.Value
	}
	n := args[0]
	switch {
	case isInt(n.typ):
		return n, nil
	case isFloat(n.typ):
		n = castNode(n, typFloat)
	default:
		return nil, typeErr(x, "round of a %s (CAST a DECIMAL to DECIMAL(p,s) to round it)", sqlType(n.typ))
	}
	scale := math.Pow10(int(digits))
	return &node{typ: typFloat, eval: func(c *evalCtx) (compute.Datum, error) {
		as, err := evalAll(c, []*node{n})
		if err != nil {
			return nil, err
		}
		defer releaseAll(as)
		v := as[0].(*array.Float64)
		return buildFloat(c, func(i int) (float64, bool) {
			if digits == 0 {
				return math.Round(v.Value(i)), v.IsValid(i)
			}
			return math.Round(v.Value(i)*scale) / scale, v.IsValid(i)
		})
	}}, nil
}

// coalesceFn is coalesce(a, b, …): the first non-null argument.
func coalesceFn(b *binder, x *Call, args []*node) (*node, error) {
	if len(args) == 0 {
		return nil, typeErr(x, "%s needs arguments", x.Name)
	}
	t, err := b.commonOf(x.Args, args)
	if err != nil {
		return nil, err
	}
	return &node{typ: t, eval: func(c *evalCtx) (compute.Datum, error) {
		as, err := evalAll(c, args)
		if err != nil {
			return nil, err
		}
		defer releaseAll(as)
		pick := make([]int, c.n)
		for i := range pick {
			pick[i] = -1
			for k, a := range as {
				if a.IsValid(i) {
					pick[i] = k
					break
				}
			}
		}
		return choose(c, as, pick)
	}}, nil
}

// commonOf converts args to their common type, which it returns.
func (b *binder) commonOf(es []Expr, args []*node) (arrow.DataType, error) {
	t := typNull
	for i, a := range args {
		if a.konst != nil && isString(a.typ) && t.ID() != arrow.NULL && !isString(t) {
			continue
		}
		var ok bool
		if t, ok = commonType(t, a.typ); !ok {
			return nil, typeErr(es[i], "%s is a %s, which does not mix with %s", es[i], sqlType(a.typ), sqlType(t))
		}
	}
	if t.ID() == arrow.NULL {
		t = typString
	}
	for i, a := range args {
		var err error
		if args[i], err = b.coerce(es[i], a, t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// choose builds the result whose row i is row i of as[pick[i]] (null for
// -1), with the take kernel over the arrays concatenated.
func choose(c *evalCtx, as []arrow.Array, pick []int) (compute.Datum, error) {
	all, err := array.Concatenate(as, c.mem)
	if err != nil {
		return nil, fmt.Errorf("concatenate: %w", err)
	}
	defer all.Release()
	ib := array.NewInt64Builder(c.mem)
	defer ib.Release()
	ib.Reserve(c.n)
	for i, k := range pick {
		if k < 0 {
			ib.UnsafeAppendBoolToBitmap(false)
		} else {
			ib.UnsafeAppend(int64(k*c.n + i))
		}
	}
	idx := ib.NewArray()
	defer idx.Release()
	out, err := compute.TakeArray(c.ctx, all, idx)
	if err != nil {
		return nil, fmt.Errorf("take: %w", err)
	}
	return arrayDatum(out), nil
}

func nullifFn(b *binder, x *Call, args []*node) (*node, error) {
	if err := arity(x, args, 2, 2); err != nil {
		return nil, err
	}
	eq, err := b.bind(&Binary{Pos: x.Pos, Op: "=", L: x.Args[0], R: x.Args[1]})
	if err != nil {
		return nil, err
	}
	v := args[0]
	return &node{typ: v.typ, eval: func(c *evalCtx) (compute.Datum, error) {
		as, err := evalAll(c, []*node{v, eq})
		if err != nil {
			return nil, err
		}
		defer releaseAll(as)
		e := as[1].(*array.Boolean)
		pick := make([]int, c.n)
		for i := range pick {
			if e.IsValid(i) && e.Value(i) {
				pick[i] = -1
			}
		}
		return choose(c, as[:1], pick)
	}}, nil
}

func (b *binder) caseExpr(x *Case) (*node, error) {
	conds := make([]*node, len(x.Whens))
	vals := make([]*node, 0, len(x.Whens)+1)
	valExprs := make([]Expr, 0, len(x.Whens)+1)
	for i, w := range x.Whens {
		cond := w.Cond
		if x.Operand != nil {
			cond = &Binary{Pos: x.Pos, Op: "=", L: x.Operand, R: w.Cond}
		}
		n, err := b.bind(cond)
		if err != nil {
			return nil, err
		}
		if conds[i], err = b.boolean(cond, n); err != nil {
			return nil, err
		}
		v, err := b.bind(w.Then)
		if err != nil {
			return nil, err
		}
		vals, valExprs = append(vals, v), append(valExprs, w.Then)
	}
	var elseExpr Expr = &Literal{Pos: x.Pos, Kind: LitNull}
	if x.Else != nil {
		elseExpr = x.Else
	}
	ev, err := b.bind(elseExpr)
	if err != nil {
		return nil, err
	}
	vals, valExprs = append(vals, ev), append(valExprs, elseExpr)
	t, err := b.commonOf(valExprs, vals)
	if err != nil {
		return nil, err
	}
	return &node{typ: t, eval: func(c *evalCtx) (compute.Datum, error) {
		cs, err := evalAll(c, conds)
		if err != nil {
			return nil, err
		}
		defer releaseAll(cs)
		pick := make([]int, c.n)
		for i := range pick {
			pick[i] = len(conds)
			for k, ca := range cs {
				if cb := ca.(*array.Boolean); cb.IsValid(i) && cb.Value(i) {
					pick[i] = k
					break
				}
			}
		}
		vs, err := evalAll(c, vals)
		if err != nil {
			return nil, err
		}
		defer releaseAll(vs)
		return choose(c, vs, pick)
	}}, nil
}

// like binds [NOT] LIKE / ILIKE: % matches any characters, _ one; there
// is no escape character (DuckDB's default).
func (b *binder) like(x *Like) (*node, error) {
	xn, err := b.bind(x.X)
	if err != nil {
		return nil, err
	}
	pn, err := b.bind(x.Pattern)
	if err != nil {
		return nil, err
	}
	call := &Call{Pos: x.Pos, Name: "like", Args: []Expr{x.X, x.Pattern}}
	if xn, err = b.stringArg(call, 0, xn); err != nil {
		return nil, err
	}
	if pn, err = b.stringArg(call, 1, pn); err != nil {
		return nil, err
	}
	fold, not := x.Fold, x.Not
	var fixed func(string) bool
	if pn.konst != nil && pn.konst.IsValid() {
		fixed = likeMatcher(string(pn.konst.(*scalar.String).Data()), fold)
	}
	return &node{typ: typBool, eval: func(c *evalCtx) (compute.Datum, error) {
		ss, as, err := evalStrings(c, []*node{xn, pn})
		if err != nil {
			return nil, err
		}
		defer releaseAll(as)
		cache := map[string]func(string) bool{}
		return buildBool(c, func(i int) (bool, bool) {
			if ss[0].IsNull(i) || ss[1].IsNull(i) {
				return false, false
			}
			m := fixed
			if m == nil {
				p := ss[1].Value(i)
				if m = cache[p]; m == nil {
					m = likeMatcher(p, fold)
					cache[p] = m
				}
			}
			return m(ss[0].Value(i)) != not, true
		})
	}}, nil
}

// likeMatcher compiles a LIKE pattern: prefix, suffix, substring and
// equality patterns directly, the rest as a regular expression.
func likeMatcher(p string, fold bool) func(string) bool {
	if !fold && !strings.Contains(p, "_") {
		inner := strings.Trim(p, "%")
		if !strings.Contains(inner, "%") {
			pre, suf := strings.HasPrefix(p, "%"), strings.HasSuffix(p, "%") && len(p) > 0
			switch {
			case p == "%" || p == "%%":
				return func(string) bool { return true }
			case pre && suf:
				return func(s string) bool { return strings.Contains(s, inner) }
			case pre:
				return func(s string) bool { return strings.HasSuffix(s, inner) }
			case suf:
				return func(s string) bool { return strings.HasPrefix(s, inner) }
			default:
				return func(s string) bool { return s == p }
			}
		}
	}
	var re strings.Builder
	re.WriteString("(?s)")
	if fold {
		re.WriteString("(?i)")
	}
	re.WriteString("^")
	for _, r := range p {
		switch r {
		case '%':
			re.WriteString(".*")
		case '_':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	rx := regexp.MustCompile(re.String())
	return rx.MatchString
}
