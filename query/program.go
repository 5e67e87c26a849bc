package query

import (
	"errors"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// ErrType marks an expression that does not type-check against the
// schema it is compiled for (unknown column, wrong argument types, an
// unknown function).
var ErrType = errors.New("sql type")

// Resolver returns the field index of the column qualifier.name in the
// schema an expression is compiled against. A single-table query uses
// plain field names (qualifier ignored); a joined record names its
// fields "<alias>.<column>".
type Resolver func(qualifier, name string) (field int, err error)

// Program is a compiled expression: evaluated over an Arrow record of
// the schema it was compiled for, it returns one value per row.
type Program struct {
	expr Expr
	typ  arrow.DataType
	eval func(rec arrow.RecordBatch) (arrow.Array, error)
}

// Type is the Arrow type of the program's result.
func (p *Program) Type() arrow.DataType { return p.typ }

// String renders the compiled expression as SQL.
func (p *Program) String() string { return p.expr.String() }

// Eval evaluates the program over rec: the result has rec.NumRows()
// values; the caller releases it. A Program may be evaluated by several
// goroutines at once.
func (p *Program) Eval(rec arrow.RecordBatch) (arrow.Array, error) { return p.eval(rec) }

// aggregates are the aggregate functions a spec can use.
var aggregates = map[string]bool{
	"count": true, "sum": true, "min": true, "max": true, "avg": true, "approx_count_distinct": true,
}

// AggregateCall recognises an aggregate call: count(*) (arg nil),
// count(x), sum, min, max, avg, count(DISTINCT x) (distinct true) and
// approx_count_distinct(x). fn is the lower-case function name.
func AggregateCall(e Expr) (fn string, arg Expr, distinct bool, ok bool) {
	c, isCall := e.(*Call)
	if !isCall || !aggregates[c.Name] {
		return "", nil, false, false
	}
	if c.Star {
		if c.Name != "count" {
			return "", nil, false, false
		}
		return c.Name, nil, false, true
	}
	if len(c.Args) != 1 {
		return "", nil, false, false
	}
	return c.Name, c.Args[0], c.Distinct, true
}

// IsAggregate reports whether e contains an aggregate call.
func IsAggregate(e Expr) bool {
	found := false
	Walk(e, func(x Expr) bool {
		if c, ok := x.(*Call); ok && aggregates[strings.ToLower(c.Name)] {
			found = true
		}
		return !found
	})
	return found
}
