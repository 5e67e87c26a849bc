package aggregate

import (
	"strconv"
	"strings"

	"github.com/floe-lake/floe/query"
)

// Top N in a SQL spec:
//
//	QUALIFY row_number() OVER (PARTITION BY <window>, d1, …
//	                           ORDER BY <measure> DESC, e1 NULLS FIRST, …) <= N
//
// maps to top {n: N, by: measure, within: [d1, …]}. <window> is the
// window's start (w.window_start of a sliding window, the time_bucket
// call or window_start of a tumbling one), optionally with its end;
// <measure> a measure's
// aggregate call or its name; the tie-breakers e1, … are every dimension
// not in PARTITION BY, in the select list's order, ascending with NULLS
// FIRST: that is the order Floe ranks in (measure descending, NULLs last;
// ties by the dimensions ascending, NULLs first), written so that DuckDB,
// whose default puts NULLs last, Spark and Flink rank alike.
//
// The summary table keeps every group, with its rank in the rank column:
// a streaming step rewrites a window's rows from the groups' partial
// states, and a group that is not in the top N now may be after the next
// late rows, so its state stays in the table. The rows DuckDB's QUALIFY
// returns are the table's rows WHERE rank <= N.

// topOf maps the QUALIFY condition q onto s.Top. resolve names what a
// PARTITION BY or ORDER BY expression refers to: "window", a dimension
// ("dim", its output name) or a measure ("measure", its name); "" for
// anything else.
func topOf(q query.Expr, s *Spec, resolve func(query.Expr) (role, name string)) error {
	const shape = "QUALIFY row_number() OVER (PARTITION BY window_start, dimensions… ORDER BY measure DESC, other dimensions NULLS FIRST…) <= N"
	b, ok := q.(*query.Binary)
	if !ok || b.Op != "<=" {
		return sqlErr(q, "QUALIFY %s: the one QUALIFY of a spec is the top N of each window: %s", q, shape)
	}
	o, ok := b.L.(*query.Over)
	if !ok {
		return sqlErr(b.L, "QUALIFY %s: compare row_number() OVER (…) <= N: %s", q, shape)
	}
	if o.Fn.Name != "row_number" || len(o.Fn.Args) > 0 || o.Fn.Star || o.Fn.Distinct {
		return sqlErr(o, "%s: Floe's rank is row_number() (rank() and dense_rank() give ties one rank): %s", o.Fn, shape)
	}
	lit, ok := b.R.(*query.Literal)
	n, err := strconv.Atoi(strings.TrimSpace(litText(lit)))
	if !ok || lit.Kind != query.LitInt || err != nil || n < 1 {
		return sqlErr(b.R, "QUALIFY … <= %s: N must be a positive integer literal", b.R)
	}
	if s.Window.Step > 0 {
		return sqlErr(q, "top N is not supported with a cumulative window")
	}
	top := &Top{N: n}
	window := false
	for _, e := range o.PartitionBy {
		role, name := resolve(e)
		switch {
		case role == "window" && !window:
			window = true
		case role == "window_end":
			// Determined by the start (Flink partitions by both).
		case role == "dim" && !containsStr(top.Within, name):
			top.Within = append(top.Within, name)
		case role == "window" || role == "dim":
			return sqlErr(e, "PARTITION BY %s: listed twice", e)
		default:
			return sqlErr(e, "PARTITION BY %s: partition by the window's start and dimensions of the select list only", e)
		}
	}
	if !window {
		return sqlErr(o, "%s: PARTITION BY the window's start first (the top N of each window): %s", o, shape)
	}
	if len(o.OrderBy) == 0 {
		return sqlErr(o, "%s: ORDER BY a measure DESC: %s", o, shape)
	}
	by := o.OrderBy[0]
	role, name := resolve(by.X)
	switch {
	case role != "measure":
		return sqlErr(by.X, "ORDER BY %s: rank by a measure of the select list (its aggregate call or its name)", by.X)
	case !by.Desc:
		return sqlErr(by.X, "ORDER BY %s: Floe ranks by the measure descending (the largest first): write %s DESC", by, by.X)
	case by.Nulls == "FIRST":
		return sqlErr(by.X, "ORDER BY %s: Floe ranks NULL measures last: drop NULLS FIRST", by)
	}
	top.By = name
	var want []string
	for _, d := range s.Dimensions {
		if !containsStr(top.Within, d) {
			want = append(want, d)
		}
	}
	ties := o.OrderBy[1:]
	for i, t := range ties {
		role, name := resolve(t.X)
		switch {
		case role != "dim" || containsStr(top.Within, name):
			return sqlErr(t.X, "ORDER BY … %s: after the measure come the dimensions not in PARTITION BY, as tie-breakers (%s NULLS FIRST)", t.X, strings.Join(want, " NULLS FIRST, "))
		case i >= len(want) || want[i] != name:
			return sqlErr(t.X, "ORDER BY … %s: break ties by the dimensions in the select list's order: %s NULLS FIRST", t.X, strings.Join(want, " NULLS FIRST, "))
		case t.Desc:
			return sqlErr(t.X, "ORDER BY … %s: Floe breaks ties by the dimensions ascending: drop DESC", t)
		case t.Nulls != "FIRST":
			return sqlErr(t.X, "ORDER BY … %s: write %s NULLS FIRST: Floe (as Spark and Flink) breaks ties with NULLs first, where DuckDB's default puts them last", t, t.X)
		}
	}
	if len(ties) < len(want) {
		return sqlErr(o, "%s: ties must be broken by every dimension not in PARTITION BY, or DuckDB's row_number() is arbitrary among equal measures: add %s NULLS FIRST",
			o, strings.Join(want[len(ties):], " NULLS FIRST, "))
	}
	s.Top = top
	return nil
}

func litText(l *query.Literal) string {
	if l == nil {
		return ""
	}
	return l.Text
}

func containsStr(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
