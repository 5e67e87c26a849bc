package aggregate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/query"
	"github.com/floe-lake/floe/reader"
)

// SQL specs. FromSQL translates a SELECT of the query package's dialect
// into a Spec:
//
//	SELECT time_bucket(INTERVAL '5 minutes', event_time) AS window_start,
//	       lower(city) AS city,
//	       sum(amount * qty) AS gmv, count(DISTINCT user_id) AS buyers
//	FROM ods.orders
//	WHERE status IN ('paid', 'shipped') OR amount > 100
//	GROUP BY time_bucket(INTERVAL '5 minutes', event_time), lower(city)
//
// FROM names the source; WHERE is any boolean expression; the GROUP BY
// call of time_bucket(INTERVAL, column[, time zone]) is the window (its
// column the event time); the other GROUP BY expressions are the
// dimensions, each also in the select list, where an expression needs an
// AS name (a derived dimension); the aggregate calls count(*), count(x),
// count(DISTINCT x), sum, min, max, avg and approx_count_distinct, each
// with an AS name, are the measures, over a column or any expression. In
// the select list time_bucket(…) may be named window_start, time_bucket(…)
// + INTERVAL <width> window_end, and with a time zone
// CAST(timezone(tz, t) AS DATE) AS dt and hour(timezone(tz, t)) AS hour
// are the window's local columns. A sliding or cumulative window is an
// unnest of generate_series after FROM, and QUALIFY row_number() OVER
// (…) <= N a top N (sqlwindow.go and sqltop.go have the forms; the text
// is parsed with query.ParseAggregate). The output table is not part of
// the SELECT: it is given apart (floe aggregate -output).
//
// The spec keeps the text (Spec.SQL). Before grouping, each source batch
// goes through the spec's projection: the WHERE keeps the rows for which
// it is true, then the time column, the dimensions and the measures'
// arguments are evaluated (query.Compile programs) into the batch the
// aggregation reads. Streaming, backfill and recompute all fold batches
// through the same projection, so they agree as for a YAML spec.

// ErrSQLSpec marks a SELECT that does not translate into a spec.
var ErrSQLSpec = errors.New("sql spec")

// FromSQL translates text into a validated Spec named name (default: the
// output table's name) writing to output.
func FromSQL(text, name, output string) (Spec, error) {
	sel, err := query.ParseAggregate(text)
	if err != nil {
		return Spec{}, fmt.Errorf("parse aggregate sql: %w", err)
	}
	if name == "" {
		name = output[strings.LastIndexByte(output, '.')+1:]
	}
	s, err := translate(sel)
	if err != nil {
		return Spec{}, fmt.Errorf("aggregate %s: %w", name, err)
	}
	s.Name, s.Output, s.SQL = name, output, text
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// LoadSpecFile reads a spec file: SQL when its name ends in .sql (then
// output names the output table and the file's base name is the spec's
// name), YAML otherwise (output, when set, must agree with the file's).
func LoadSpecFile(path, output string) (Spec, error) {
	if !strings.EqualFold(filepath.Ext(path), ".sql") {
		s, err := LoadSpec(path)
		if err == nil && output != "" && output != s.Output {
			return Spec{}, fmt.Errorf("%s: output %s differs from -output %s", path, s.Output, output)
		}
		return s, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("read aggregate spec: %w", err)
	}
	if output == "" {
		return Spec{}, fmt.Errorf("%s: a SQL spec needs the output table (-output namespace.table)", path)
	}
	s, err := FromSQL(string(b), strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), output)
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func sqlErr(e query.Expr, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrSQLSpec, fmt.Sprintf(format, args...), query.PosOf(e))
}

// sqlColumn is one column of a SQL spec's projection.
type sqlColumn struct {
	name string
	expr query.Expr
}

// translate maps a parsed SELECT onto a Spec; its projection columns
// are recomputed from Spec.SQL by sqlColumns.
func translate(sel *query.Select) (Spec, error) {
	s, _, err := translateCols(sel)
	return s, err
}

func translateCols(sel *query.Select) (Spec, []sqlColumn, error) {
	var s Spec
	if len(sel.Joins) > 0 {
		return s, nil, sqlErr(sel.Joins[0].On, "floe aggregate reads one table: LEFT JOIN belongs in a floe transform spec whose output the aggregation reads")
	}
	if sel.Having != nil {
		return s, nil, sqlErr(sel.Having, "HAVING is not supported by floe aggregate: filter the summary table when reading it")
	}
	s.Source = sel.From.Name
	if sel.Unnest != nil && strings.EqualFold(sel.Unnest.Alias, sel.From.Alias) {
		return s, nil, sqlErr(sel.Unnest, "unnest(…) AS %s: the name of the FROM table; give the window another (AS w(…))", sel.Unnest.Alias)
	}
	if err := checkQualifiers(sel); err != nil {
		return s, nil, err
	}
	// A sliding or cumulative window: the unnest after FROM.
	var uw *unnestWindow
	if sel.Unnest != nil {
		var err error
		if uw, err = parseUnnest(sel.Unnest); err != nil {
			return s, nil, err
		}
	}
	// The window: the GROUP BY call of time_bucket (tumbling and
	// cumulative windows) or the unnest's column (sliding: the window's
	// start; cumulative: the step's end).
	var window *query.Call
	var unnestGrouped bool
	role := make([]string, len(sel.Items)) // "window", "window_end", "local", "dim", "measure"
	var dims []int
	for _, g := range sel.GroupBy {
		idx := sel.GroupItem(g)
		if idx < 0 {
			for i, it := range sel.Items {
				if it.Expr != nil && it.Expr.String() == g.String() {
					idx = i
					break
				}
			}
		}
		e := g
		if idx >= 0 {
			e = sel.Items[idx].Expr
		}
		if c, ok := e.(*query.Call); ok && c.Name == "time_bucket" {
			if window != nil && window.String() != c.String() {
				return s, nil, sqlErr(g, "more than one window in GROUP BY (%s and %s)", window, c)
			}
			if uw != nil && !uw.cumulative {
				return s, nil, sqlErr(g, "GROUP BY %s with a sliding window (the unnest): group by %s.%s alone", c, uw.u.Alias, uw.u.Column)
			}
			window = c
			if idx >= 0 {
				role[idx] = "window"
			}
			continue
		}
		if uw.isCol(e) {
			unnestGrouped = true
			if idx >= 0 {
				role[idx] = "window"
				if uw.cumulative {
					role[idx] = "window_end"
				}
			}
			continue
		}
		if idx < 0 {
			return s, nil, sqlErr(g, "GROUP BY %s: every grouping expression must also be in the select list (it becomes a column of the summary table)", g)
		}
		if role[idx] == "" {
			role[idx] = "dim"
			dims = append(dims, idx)
		}
	}
	// The window's start, the end of a row's window and the expression the
	// local columns are computed from.
	var isStart func(query.Expr) bool
	var width *query.Interval
	var zone, localTime query.Expr
	switch {
	case uw != nil && !uw.cumulative:
		if !unnestGrouped {
			return s, nil, sqlErr(sel.Unnest, "GROUP BY %s.%s: a sliding window's start groups the rows", uw.u.Alias, uw.u.Column)
		}
		if err := windowOf(uw.bucket, &s); err != nil {
			return s, nil, err
		}
		size, _ := uw.size.Fixed()
		s.Window.Slide, s.Window.Size = s.Window.Size, Duration(size*1000)
		isStart, width = uw.isCol, uw.size
		if len(uw.bucket.Args) == 3 {
			zone, localTime = uw.bucket.Args[2], &query.Column{Qualifier: uw.u.Alias, Name: uw.u.Column}
		}
	case window == nil && uw != nil:
		return s, nil, fmt.Errorf("%w: a cumulative window groups by the window's start, %s AS window_start", ErrSQLSpec, uw.sizeBucket)
	case window == nil:
		return s, nil, fmt.Errorf("%w: GROUP BY needs a window: time_bucket(INTERVAL '5 minutes', event_time) or time_bucket(INTERVAL '1 day', event_time, 'Asia/Shanghai')", ErrSQLSpec)
	default:
		if err := windowOf(window, &s); err != nil {
			return s, nil, err
		}
		if len(window.Args) == 3 {
			zone, localTime = window.Args[2], window.Args[1]
		}
		if uw == nil {
			isStart = func(e query.Expr) bool { return e.String() == window.String() }
			width = asInterval(window.Args[0])
			break
		}
		if window.String() != uw.sizeBucket.String() {
			return s, nil, sqlErr(window, "the window %s differs from the size's time_bucket in the unnest, %s", window, uw.sizeBucket)
		}
		if !unnestGrouped {
			return s, nil, sqlErr(sel.Unnest, "GROUP BY %s.%s: each step's end groups a cumulative window's rows", uw.u.Alias, uw.u.Column)
		}
		st, _ := bucketWidth(uw.bucket).Fixed()
		s.Window.Step = Duration(st * 1000)
		if err := checkStepGrid(s, uw); err != nil {
			return s, nil, err
		}
	}
	var cols []sqlColumn
	timeExpr := uw.timeArg()
	if window != nil {
		timeExpr = window.Args[1]
	}
	cols = append(cols, sqlColumn{s.Time, timeExpr})
	taken := map[string]string{s.Time: timeExpr.String()}
	claim := func(name string, e query.Expr) bool {
		prev, ok := taken[name]
		if ok && prev != e.String() {
			return false
		}
		if !ok {
			taken[name] = e.String()
			cols = append(cols, sqlColumn{name, e})
		}
		return true
	}
	localDt, localHour := localColumnExprs(zone, localTime)
	names := map[int]string{} // item → its column name (dimensions and measures)
	for i, it := range sel.Items {
		if it.Star {
			return s, nil, fmt.Errorf("%w: * in the select list: name each dimension and measure", ErrSQLSpec)
		}
		e := it.Expr
		if role[i] == "" && unnestGrouped && uw.isCol(e) {
			// GROUP BY window_start with w.window_start selected.
			role[i] = "window"
			if uw.cumulative {
				role[i] = "window_end"
			}
		}
		switch {
		case role[i] == "window" && uw != nil:
			if it.OutputName() != ColWindowStart {
				return s, nil, sqlErr(e, "name the window's start %s (AS %s): it is the summary table's column", ColWindowStart, ColWindowStart)
			}
			continue
		case role[i] == "window":
			if it.Name != "" && it.Name != ColWindowStart {
				return s, nil, sqlErr(e, "name the window %s (AS %s): it is the summary table's column", ColWindowStart, ColWindowStart)
			}
			continue
		case role[i] == "window_end" || uw.isCol(e):
			if it.OutputName() != ColWindowEnd && uw.cumulative {
				return s, nil, sqlErr(e, "name the step's end %s (AS %s)", ColWindowEnd, ColWindowEnd)
			}
			if !uw.cumulative {
				return s, nil, sqlErr(e, "%s is selected but not in GROUP BY", e)
			}
			role[i] = "window_end"
			continue
		case width != nil && isEndOf(e, isStart, width):
			if it.Name != ColWindowEnd {
				return s, nil, sqlErr(e, "name the window's end %s (AS %s)", ColWindowEnd, ColWindowEnd)
			}
			dims = removeInt(dims, i)
			role[i] = "window_end"
			continue
		case localDt != "" && e.String() == localDt && it.Name == ColDate,
			localHour != "" && e.String() == localHour && it.Name == ColHour:
			dims = removeInt(dims, i)
			role[i] = "local"
			s.Window.LocalColumns = append(s.Window.LocalColumns, it.Name)
			continue
		}
		if b, ok := e.(*query.Binary); ok && uw != nil && !uw.cumulative && b.Op == "+" && uw.isCol(b.L) {
			return s, nil, sqlErr(e, "%s: a sliding window's end is its start + its size, %s, as an INTERVAL in the step's unit (%s)", e, s.Window.Size, uw.bucket.Args[0])
		}
		if uw != nil {
			if x := uw.refers(e); x != nil {
				return s, nil, sqlErr(x, "%s: the window column is selected and grouped by as it is (or as %s + INTERVAL size AS window_end of a sliding window), not in other expressions", x, x)
			}
		}
		if fn, arg, distinct, ok := query.AggregateCall(e); ok {
			if role[i] == "dim" {
				return s, nil, sqlErr(e, "GROUP BY an aggregate")
			}
			role[i] = "measure"
			if it.Name == "" {
				return s, nil, sqlErr(e, "name the measure %s (AS name): it is a column of the summary table", e)
			}
			names[i] = it.Name
			m := Measure{Name: it.Name}
			switch {
			case fn == "count" && distinct:
				m.Fn = FnCountDistinct
			case distinct:
				return s, nil, sqlErr(e, "%s(DISTINCT …) is not supported: count(DISTINCT x) and approx_count_distinct(x) are", fn)
			default:
				m.Fn = Fn(fn)
			}
			if arg != nil {
				if query.IsAggregate(arg) {
					return s, nil, sqlErr(arg, "an aggregate inside an aggregate")
				}
				name := fmt.Sprintf("_m%d", len(s.Measures))
				if c, ok := arg.(*query.Column); ok {
					name = c.Name
				}
				if !claim(name, arg) {
					name = fmt.Sprintf("_m%d", len(s.Measures))
					claim(name, arg)
				}
				m.Column = name
			}
			s.Measures = append(s.Measures, m)
			continue
		}
		if query.IsAggregate(e) {
			return s, nil, sqlErr(e, "a measure must be one aggregate call (e.g. sum(amount) AS gmv), not an expression over aggregates: compute ratios when reading the summary table")
		}
		if role[i] != "dim" {
			return s, nil, sqlErr(e, "%s is neither aggregated nor in GROUP BY", e)
		}
	}
	if uw == nil || uw.cumulative {
		// dt and hour are the window start's; a row's local date and hour
		// (which a tumbling or cumulative window's columns are written
		// over) are the same only in windows of a day or less (of an hour
		// or less). A sliding window's are written over its start.
		size := s.Window.Size.D()
		if slices.Contains(s.Window.LocalColumns, ColDate) && (24*time.Hour)%size != 0 {
			return s, nil, sqlErr(localItem(sel, ColDate), "dt (the local date of a row) is the window's only for windows of a day or less")
		}
		if slices.Contains(s.Window.LocalColumns, ColHour) && time.Hour%size != 0 {
			return s, nil, sqlErr(localItem(sel, ColHour), "hour (the local hour of a row) is the window's only for windows of an hour or less")
		}
	}
	for _, i := range dims {
		it := sel.Items[i]
		name := it.Name
		if name == "" {
			c, ok := it.Expr.(*query.Column)
			if !ok {
				return s, nil, sqlErr(it.Expr, "name the derived dimension %s (AS name): it is a column of the summary table", it.Expr)
			}
			name = c.Name
		}
		if !claim(name, it.Expr) {
			return s, nil, sqlErr(it.Expr, "dimension %s: the name is also used for %s", name, taken[name])
		}
		names[i] = name
		s.Dimensions = append(s.Dimensions, name)
	}
	if sel.Where != nil {
		if uw != nil {
			if x := uw.refers(sel.Where); x != nil {
				return s, nil, sqlErr(x, "WHERE %s: the window column is not a column of the source", x)
			}
		}
		cols = append(cols, sqlColumn{"", sel.Where})
	}
	if sel.Qualify != nil {
		resolve := func(e query.Expr) (string, string) {
			if uw.isCol(e) || window != nil && e.String() == window.String() {
				return "window", ""
			}
			idx := -1
			if c, ok := e.(*query.Column); ok && c.Qualifier == "" {
				for i, it := range sel.Items {
					if strings.EqualFold(it.Name, c.Name) {
						idx = i
					}
				}
			}
			for i, it := range sel.Items {
				if idx < 0 && it.Expr != nil && it.Expr.String() == e.String() {
					idx = i
				}
			}
			if idx < 0 {
				return "", ""
			}
			return role[idx], names[idx]
		}
		if err := topOf(sel.Qualify, &s, resolve); err != nil {
			return s, nil, err
		}
	}
	return s, cols, nil
}

func removeInt(xs []int, v int) []int {
	out := xs[:0]
	for _, x := range xs {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

// checkQualifiers requires qualified columns to name the FROM table (or
// the window unnest's column), then drops the FROM table's qualifiers.
func checkQualifiers(sel *query.Select) error {
	var bad error
	unnest := func(c *query.Column) bool {
		return sel.Unnest != nil && strings.EqualFold(c.Qualifier, sel.Unnest.Alias)
	}
	check := func(e query.Expr) {
		query.Walk(e, func(x query.Expr) bool {
			c, ok := x.(*query.Column)
			switch {
			case !ok || c.Qualifier == "" || bad != nil || strings.EqualFold(c.Qualifier, sel.From.Alias):
			case unnest(c) && !strings.EqualFold(c.Name, sel.Unnest.Column):
				bad = sqlErr(c, "%s: %s has one column, %s", c, sel.Unnest.Alias, sel.Unnest.Column)
			case !unnest(c):
				bad = sqlErr(c, "%s: no table %s in FROM (the source is %s AS %s)", c, c.Qualifier, sel.From.Name, sel.From.Alias)
			}
			return bad == nil
		})
	}
	exprs := []query.Expr{sel.Where, sel.Qualify}
	if sel.Unnest != nil {
		exprs = append(exprs, sel.Unnest.X)
	}
	for _, it := range sel.Items {
		exprs = append(exprs, it.Expr)
	}
	exprs = append(exprs, sel.GroupBy...)
	for _, e := range exprs {
		check(e)
	}
	if bad != nil {
		return bad
	}
	// One table: drop its qualifiers, so that e.city and city compare
	// equal.
	for _, e := range exprs {
		query.Walk(e, func(x query.Expr) bool {
			if c, ok := x.(*query.Column); ok && !unnest(c) {
				c.Qualifier = ""
			}
			return true
		})
	}
	return nil
}

// windowOf sets s.Time and s.Window from time_bucket(INTERVAL, column[,
// time zone]).
func windowOf(c *query.Call, s *Spec) error {
	if len(c.Args) < 2 || len(c.Args) > 3 {
		return sqlErr(c, "time_bucket takes (INTERVAL, event-time column[, time zone])")
	}
	iv, ok := c.Args[0].(*query.Interval)
	if !ok {
		return sqlErr(c.Args[0], "the window's width must be an INTERVAL literal such as INTERVAL '5 minutes'")
	}
	col, ok := c.Args[1].(*query.Column)
	if !ok {
		return sqlErr(c.Args[1], "the window's time must be a timestamp column of the source, not an expression")
	}
	s.Time = col.Name
	width, fixed := iv.Fixed()
	switch {
	case !fixed:
		return sqlErr(iv, "month and year windows are not supported")
	case iv.Days != 0 && iv.Micros != 0:
		return sqlErr(iv, "a window of days and hours together (%s): use one unit", iv.Text)
	case width <= 0:
		return sqlErr(iv, "the window's width must be positive")
	}
	s.Window.Size = Duration(width * 1000)
	if len(c.Args) == 3 {
		tz, ok := c.Args[2].(*query.Literal)
		if !ok || tz.Kind != query.LitString {
			return sqlErr(c.Args[2], "the window's time zone must be a string such as 'Asia/Shanghai'")
		}
		if iv.Micros != 0 && iv.Micros%(86400e6) == 0 {
			return sqlErr(iv, "INTERVAL '%s' in a time zone: write it in days (INTERVAL 'N day') for calendar days, which is what Floe's zoned windows of whole days are", iv.Text)
		}
		s.Window.TimeZone = tz.Text
		return nil
	}
	// Without a zone DuckDB aligns buckets to 2000-01-03 00:00 UTC; Floe's
	// UTC windows are aligned to the epoch, which agrees for widths that
	// divide a day. Other widths take the UTC zone, whose windows are
	// aligned to 2000-01-03 as DuckDB's.
	if (86400e6)%width != 0 {
		if iv.Micros != 0 && iv.Micros%(86400e6) == 0 {
			return sqlErr(iv, "INTERVAL '%s': write whole days in days (INTERVAL 'N day')", iv.Text)
		}
		s.Window.TimeZone = "UTC"
	}
	return nil
}

// localItem is the select list's expression named name (a local
// column), where its refusal points.
func localItem(sel *query.Select, name string) query.Expr {
	for _, it := range sel.Items {
		if it.Name == name {
			return it.Expr
		}
	}
	return sel.Items[0].Expr
}

// localColumnExprs renders the select-list expressions of the window's
// local dt and hour columns, computed from t in zone ("" without a time
// zone).
func localColumnExprs(zone, t query.Expr) (dt, hour string) {
	if zone == nil {
		return "", ""
	}
	tz := &query.Call{Name: "timezone", Args: []query.Expr{zone, t}}
	dt = (&query.Cast{X: tz, Type: query.TypeName{Name: "DATE"}}).String()
	hour = (&query.Call{Name: "hour", Args: []query.Expr{tz}}).String()
	return dt, hour
}

// projection is a SQL spec's pre-projection, bound to a source schema.
type projection struct {
	sel   *query.Select
	cols  []sqlColumn // the time column, then measure and dimension columns
	where query.Expr
	// sourceColumns are the source columns the expressions read.
	sourceColumns []string
	schema        *arrow.Schema // the projected batch's columns (without _change_type)

	mu       sync.Mutex
	compiled map[*arrow.Schema]*compiledProjection
}

type compiledProjection struct {
	where *query.Program
	cols  []*query.Program
}

// newProjection binds s.SQL to the source schema: it returns the
// projection and the schema of the batches it produces, which the plan
// binds the spec's columns against. It returns nil for a YAML spec.
func newProjection(s Spec, src *iceberg.Schema) (*projection, *iceberg.Schema, error) {
	if s.SQL == "" {
		return nil, src, nil
	}
	sel, err := query.ParseAggregate(s.SQL)
	if err != nil {
		return nil, nil, fmt.Errorf("aggregate %s: parse sql: %w", s.Name, err)
	}
	t, cols, err := translateCols(sel)
	if err != nil {
		return nil, nil, fmt.Errorf("aggregate %s: %w", s.Name, err)
	}
	// DuckDB binds a GROUP BY name to a source column before a select-list
	// alias: GROUP BY city with lower(city) AS city groups by the source's
	// city there. Refuse what would group differently here.
	for _, g := range sel.GroupBy {
		c, ok := g.(*query.Column)
		if i := sel.GroupItem(g); ok && i >= 0 && sel.Items[i].Expr.String() != c.String() {
			for _, f := range src.Fields() {
				if strings.EqualFold(f.Name, c.Name) {
					return nil, nil, fmt.Errorf("aggregate %s: %w", s.Name, sqlErr(g, "GROUP BY %s is ambiguous: the source has a column %s, which DuckDB groups by, while the select list names %s %s: give the derived dimension another name or GROUP BY the expression",
						c.Name, f.Name, sel.Items[i].Expr, c.Name))
				}
			}
		}
	}
	// A spec written by hand (YAML with a sql key) must say what its SQL
	// says.
	if t.Source != s.Source || t.Time != s.Time || t.Filter != s.Filter ||
		!reflect.DeepEqual(t.Window, s.Window) || !slices.Equal(t.Dimensions, s.Dimensions) || !slices.Equal(t.Measures, s.Measures) ||
		t.Top != nil && !reflect.DeepEqual(t.Top, s.Top) {
		return nil, nil, fmt.Errorf("aggregate %s: %w: the spec's fields differ from what its sql says (%+v): give the SQL alone, with the name and the output", s.Name, ErrSQLSpec, t)
	}
	p := &projection{sel: sel, compiled: map[*arrow.Schema]*compiledProjection{}}
	if n := len(cols); n > 0 && cols[n-1].name == "" {
		p.where, cols = cols[n-1].expr, cols[:n-1]
	}
	p.cols = cols
	asc, err := icetable.SchemaToArrowSchema(src, nil, false, false)
	if err != nil {
		return nil, nil, fmt.Errorf("aggregate %s: source schema: %w", s.Name, err)
	}
	used := map[string]bool{}
	resolve := func(q, name string) (int, error) {
		i, err := query.FieldResolver(asc)(q, name)
		if err == nil {
			used[asc.Field(i).Name] = true
		}
		return i, err
	}
	var fields []arrow.Field
	var ice []iceberg.NestedField
	for i, c := range cols {
		prog, err := query.Compile(c.expr, asc, resolve)
		if err != nil {
			return nil, nil, fmt.Errorf("aggregate %s: %s: %w", s.Name, c.name, err)
		}
		t, err := icebergType(prog.Type())
		if err != nil {
			return nil, nil, fmt.Errorf("aggregate %s: %s = %s: %w", s.Name, c.name, c.expr, err)
		}
		fields = append(fields, arrow.Field{Name: c.name, Type: prog.Type(), Nullable: true})
		ice = append(ice, iceberg.NestedField{ID: i + 1, Name: c.name, Type: t})
	}
	if p.where != nil {
		prog, err := query.Compile(p.where, asc, resolve)
		if err != nil {
			return nil, nil, fmt.Errorf("aggregate %s: WHERE: %w", s.Name, err)
		}
		if prog.Type().ID() != arrow.BOOL {
			return nil, nil, fmt.Errorf("aggregate %s: %w: WHERE %s is not a condition", s.Name, ErrSQLSpec, p.where)
		}
	}
	for _, f := range src.Fields() {
		if used[f.Name] {
			p.sourceColumns = append(p.sourceColumns, f.Name)
		}
	}
	p.schema = arrow.NewSchema(fields, nil)
	return p, iceberg.NewSchema(0, ice...), nil
}

// icebergType maps an expression's Arrow type to the column type of the
// summary table.
func icebergType(t arrow.DataType) (iceberg.Type, error) {
	switch t.ID() {
	case arrow.BOOL:
		return iceberg.PrimitiveTypes.Bool, nil
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.UINT8, arrow.UINT16:
		return iceberg.PrimitiveTypes.Int32, nil
	case arrow.INT64, arrow.UINT32:
		return iceberg.PrimitiveTypes.Int64, nil
	case arrow.FLOAT32:
		return iceberg.PrimitiveTypes.Float32, nil
	case arrow.FLOAT64:
		return iceberg.PrimitiveTypes.Float64, nil
	case arrow.DECIMAL128:
		d := t.(*arrow.Decimal128Type)
		return iceberg.DecimalTypeOf(int(d.Precision), int(d.Scale)), nil
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return iceberg.PrimitiveTypes.String, nil
	case arrow.DATE32:
		return iceberg.PrimitiveTypes.Date, nil
	case arrow.TIMESTAMP:
		if t.(*arrow.TimestampType).TimeZone != "" {
			return iceberg.PrimitiveTypes.TimestampTz, nil
		}
		return iceberg.PrimitiveTypes.Timestamp, nil
	}
	return nil, fmt.Errorf("%w: an expression of type %s cannot be a column of a summary table", ErrSQLSpec, t)
}

// compile returns the programs bound to the schema of the batches the
// reader delivers (compiled once per schema).
func (p *projection) compile(sc *arrow.Schema) (*compiledProjection, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.compiled {
		if k == sc || k.Equal(sc) {
			return c, nil
		}
	}
	c := &compiledProjection{}
	var err error
	if p.where != nil {
		if c.where, err = query.Compile(p.where, sc, nil); err != nil {
			return nil, fmt.Errorf("compile WHERE: %w", err)
		}
	}
	for _, col := range p.cols {
		prog, err := query.Compile(col.expr, sc, nil)
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", col.name, err)
		}
		c.cols = append(c.cols, prog)
	}
	p.compiled[sc] = c
	return c, nil
}

// apply filters rec by the WHERE and evaluates the projected columns;
// a _change_type column passes through. The caller releases the result.
func (p *projection) apply(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	c, err := p.compile(rec.Schema())
	if err != nil {
		return nil, err
	}
	if c.where != nil {
		mask, err := c.where.Eval(rec)
		if err != nil {
			return nil, err
		}
		filtered, err := compute.FilterRecordBatch(context.Background(), rec, mask, compute.DefaultFilterOptions())
		mask.Release()
		if err != nil {
			return nil, fmt.Errorf("filter by WHERE: %w", err)
		}
		defer filtered.Release()
		rec = filtered
	}
	fields := append([]arrow.Field(nil), p.schema.Fields()...)
	cols := make([]arrow.Array, 0, len(fields)+1)
	defer func() {
		for _, a := range cols {
			a.Release()
		}
	}()
	for i, prog := range c.cols {
		a, err := prog.Eval(rec)
		if err != nil {
			return nil, err
		}
		cols = append(cols, a)
		fields[i].Type = a.DataType()
	}
	if idx := rec.Schema().FieldIndices(reader.ColChangeType); len(idx) > 0 {
		a := rec.Column(idx[0])
		a.Retain()
		cols = append(cols, a)
		fields = append(fields, rec.Schema().Field(idx[0]))
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows()), nil
}

// addProjected folds rec through the spec's projection; it returns the
// number of source rows read. An expression that fails on the rows (a
// CAST of text that is no number, an overflow) fails the same way on a
// retry: the error is permanent (IsPermanent), halting a follower.
func (p *plan) addProjected(t *groupTable, rec arrow.RecordBatch, keep func(ws int64) bool, st *batchState) (int64, error) {
	prec, err := p.proj.apply(rec)
	if err != nil {
		return 0, permanent(fmt.Errorf("aggregate %s: %w", p.spec.Name, err))
	}
	defer prec.Release()
	if _, err := p.addRows(t, prec, keep, st); err != nil {
		return 0, err
	}
	return rec.NumRows(), nil
}

// bindSQL is the bind step's hook: it returns the schema the
// spec's columns are bound against (the projection's for a SQL spec).
func (p *plan) bindSQL(s Spec, src *iceberg.Schema) (*iceberg.Schema, error) {
	proj, sc, err := newProjection(s, src)
	if err != nil {
		return nil, err
	}
	p.proj = proj
	return sc, nil
}
