package aggregate

import (
	"strings"
	"time"

	"github.com/floe-lake/floe/query"
)

// Sliding and cumulative windows in a SQL spec. DuckDB has no HOP or
// CUMULATE table function, so a spec writes each row's windows as a
// lateral unnest of a generate_series over the row's time, which DuckDB
// runs as it is and Floe maps onto Window:
//
//	sliding (HOP) of size SIZE every STEP: window {size: SIZE, slide: STEP}
//	  FROM t, unnest(generate_series(time_bucket(STEP, ts[, zone]) - (SIZE - STEP),
//	                                 time_bucket(STEP, ts[, zone]), STEP)) AS w(window_start)
//	  GROUP BY w.window_start, … (w.window_start + SIZE AS window_end may be selected)
//
//	cumulative (CUMULATE) of size SIZE every STEP: window {size: SIZE, step: STEP}
//	  FROM t, unnest(generate_series(time_bucket(STEP, ts[, zone]) + STEP,
//	                                 time_bucket(SIZE, ts[, zone]) + SIZE, STEP)) AS w(window_end)
//	  GROUP BY time_bucket(SIZE, ts[, zone]) (AS window_start), w.window_end, …
//
// A sliding row falls into the SIZE/STEP windows whose start is one of
// the last SIZE/STEP step boundaries at or before it; a cumulative row
// counts in every step of its window ending after it, up to the window's
// end: each group has a row for every step from its first step with rows
// to its window's last, which is what Floe's cumulative windows emit.
// The shapes are checked strictly: bounds that are not exactly these, a
// step that does not divide the size, a step grid that does not meet the
// window's start, are errors naming the expression.

// unnestWindow is the window a FROM … unnest(generate_series(…)) defines.
type unnestWindow struct {
	u *query.Unnest
	// cumulative or sliding (hop).
	cumulative bool
	// bucket is the step's time_bucket call (sliding: the window
	// start's grid; cumulative: the steps' grid).
	bucket *query.Call
	// size of a sliding window: (SIZE - STEP) + STEP; of a cumulative
	// one: the size bucket (sizeBucket) and its width.
	size       *query.Interval
	sizeBucket *query.Call
}

// isCol reports whether e is the unnest's column (w.col, or col alone).
func (uw *unnestWindow) isCol(e query.Expr) bool {
	c, ok := e.(*query.Column)
	return ok && uw != nil && strings.EqualFold(c.Name, uw.u.Column) &&
		(c.Qualifier == "" || strings.EqualFold(c.Qualifier, uw.u.Alias))
}

// refers reports whether e reads the unnest's column.
func (uw *unnestWindow) refers(e query.Expr) query.Expr {
	var found query.Expr
	query.Walk(e, func(x query.Expr) bool {
		if found == nil && uw.isCol(x) {
			found = x
		}
		return found == nil
	})
	return found
}

func sameInterval(a, b *query.Interval) bool {
	return a != nil && b != nil && a.Months == b.Months && a.Days == b.Days && a.Micros == b.Micros
}

func asInterval(e query.Expr) *query.Interval {
	iv, _ := e.(*query.Interval)
	return iv
}

func asBucket(e query.Expr) *query.Call {
	c, ok := e.(*query.Call)
	if !ok || c.Name != "time_bucket" {
		return nil
	}
	return c
}

// bucketWidth is a time_bucket call's INTERVAL, nil when it is none.
func bucketWidth(c *query.Call) *query.Interval {
	if len(c.Args) == 0 {
		return nil
	}
	return asInterval(c.Args[0])
}

// bucketZone is the time zone argument of a time_bucket call as written
// ("" without one).
func bucketZone(c *query.Call) string {
	if len(c.Args) == 3 {
		return c.Args[2].String()
	}
	return ""
}

const hopShape = "a sliding window is unnest(generate_series(time_bucket(STEP, ts) - (SIZE - STEP), time_bucket(STEP, ts), STEP)) AS w(window_start)"
const cumulativeShape = "a cumulative window is unnest(generate_series(time_bucket(STEP, ts) + STEP, time_bucket(SIZE, ts) + SIZE, STEP)) AS w(window_end)"

// parseUnnest recognises the sliding or cumulative window of u.
func parseUnnest(u *query.Unnest) (*unnestWindow, error) {
	uw := &unnestWindow{u: u}
	g, ok := u.X.(*query.Call)
	if !ok || g.Name != "generate_series" || len(g.Args) != 3 {
		return nil, sqlErr(u.X, "unnest(%s): the only unnest of a spec is its window, over generate_series(lo, hi, step): %s; %s", u.X, hopShape, cumulativeShape)
	}
	step := asInterval(g.Args[2])
	if step == nil {
		return nil, sqlErr(g.Args[2], "generate_series's step %s must be an INTERVAL literal", g.Args[2])
	}
	lo, _ := g.Args[0].(*query.Binary)
	switch {
	case lo != nil && lo.Op == "-":
		uw.bucket = asBucket(g.Args[1])
		if uw.bucket == nil {
			return nil, sqlErr(g.Args[1], "the upper bound %s is not time_bucket(STEP, ts): %s", g.Args[1], hopShape)
		}
		if lo.L.String() != uw.bucket.String() {
			return nil, sqlErr(lo, "the lower bound %s does not start from the upper bound %s: %s", lo, uw.bucket, hopShape)
		}
		if !sameInterval(bucketWidth(uw.bucket), step) {
			return nil, sqlErr(g.Args[2], "generate_series's step %s differs from time_bucket's width %s: %s", step, uw.bucket.Args[0], hopShape)
		}
		back := asInterval(lo.R)
		if back == nil {
			return nil, sqlErr(lo.R, "%s: subtract an INTERVAL literal, SIZE - STEP: %s", lo, hopShape)
		}
		size, err := hopSize(lo, back, step)
		if err != nil {
			return nil, err
		}
		uw.size = size
		if u.Column != ColWindowStart {
			return nil, sqlErr(u.X, "name a sliding window's column %s: unnest(…) AS %s(%s)", ColWindowStart, u.Alias, ColWindowStart)
		}
	case lo != nil && lo.Op == "+":
		uw.cumulative = true
		uw.bucket = asBucket(lo.L)
		if uw.bucket == nil || !sameInterval(asInterval(lo.R), bucketWidth(uw.bucket)) {
			return nil, sqlErr(lo, "the lower bound %s is not time_bucket(STEP, ts) + STEP: %s", lo, cumulativeShape)
		}
		if !sameInterval(bucketWidth(uw.bucket), step) {
			return nil, sqlErr(g.Args[2], "generate_series's step %s differs from the step %s of the lower bound: %s", step, uw.bucket.Args[0], cumulativeShape)
		}
		hi, _ := g.Args[1].(*query.Binary)
		if hi == nil || hi.Op != "+" || asBucket(hi.L) == nil || !sameInterval(asInterval(hi.R), bucketWidth(asBucket(hi.L))) {
			return nil, sqlErr(g.Args[1], "the upper bound %s is not time_bucket(SIZE, ts) + SIZE: %s", g.Args[1], cumulativeShape)
		}
		uw.sizeBucket = asBucket(hi.L)
		uw.size = bucketWidth(uw.sizeBucket)
		if len(uw.bucket.Args) < 2 || len(uw.sizeBucket.Args) < 2 || uw.bucket.Args[1].String() != uw.sizeBucket.Args[1].String() {
			return nil, sqlErr(g, "the step's and the size's time_bucket must read the same time column: %s", cumulativeShape)
		}
		if z := bucketZone(uw.bucket); z != "" && z != bucketZone(uw.sizeBucket) {
			return nil, sqlErr(uw.bucket, "the step's time_bucket has the time zone %s, the size's %s: give the step the size's zone or none", z, nonEmpty(bucketZone(uw.sizeBucket)))
		}
		if err := cumulativeStep(uw.size, step, uw.sizeBucket); err != nil {
			return nil, err
		}
		if u.Column != ColWindowEnd {
			return nil, sqlErr(u.X, "name a cumulative window's column %s: unnest(…) AS %s(%s)", ColWindowEnd, u.Alias, ColWindowEnd)
		}
	default:
		return nil, sqlErr(g.Args[0], "generate_series(%s, …) is neither window shape: %s; %s", g.Args[0], hopShape, cumulativeShape)
	}
	return uw, nil
}

func nonEmpty(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// hopSize is SIZE = (SIZE - STEP) + STEP of a sliding window, checked:
// one unit, a multiple of the step, more than one step.
func hopSize(lo *query.Binary, back, step *query.Interval) (*query.Interval, error) {
	switch {
	case back.Months != 0 || step.Months != 0:
		return nil, sqlErr(lo, "month and year windows are not supported")
	case back.Days != 0 && back.Micros != 0, step.Days != 0 && step.Micros != 0:
		return nil, sqlErr(lo, "%s: write each interval in one unit (days, or hours and shorter)", lo)
	case back.Days != 0 && step.Micros != 0 || back.Micros != 0 && step.Days != 0:
		return nil, sqlErr(lo, "%s: write SIZE - STEP in the step's unit (%s)", lo, step.Text)
	case back.Days == 0 && back.Micros == 0:
		return nil, sqlErr(lo, "%s: a window of one step is a tumbling window: GROUP BY time_bucket(…)", lo)
	case back.Days < 0 || back.Micros < 0:
		return nil, sqlErr(lo, "%s: SIZE - STEP must be positive", lo)
	case step.Days != 0 && back.Days%step.Days != 0, step.Micros != 0 && back.Micros%step.Micros != 0:
		return nil, sqlErr(lo.R, "%s is not a whole number of steps of %s: the step must divide the window's size", lo.R, step.Text)
	}
	size := &query.Interval{Days: back.Days + step.Days, Micros: back.Micros + step.Micros}
	n := size.Micros / max(step.Micros, 1)
	if step.Days != 0 {
		n = size.Days / step.Days
	}
	if n > MaxWindowsPerRow {
		return nil, sqlErr(lo, "%s puts each row into %d windows, more than %d", lo, n, MaxWindowsPerRow)
	}
	return size, nil
}

// cumulativeStep checks a cumulative window's step against its size.
func cumulativeStep(size, step *query.Interval, sizeBucket *query.Call) error {
	sz, _ := size.Fixed()
	st, fixed := step.Fixed()
	switch {
	case !fixed:
		return sqlErr(step, "month and year steps are not supported")
	case step.Days != 0 && step.Micros != 0:
		return sqlErr(step, "the step %s: write it in one unit", step.Text)
	case st <= 0:
		return sqlErr(step, "the step %s must be positive", step.Text)
	case st >= sz:
		return sqlErr(step, "the step %s is not shorter than the window %s", step.Text, size.Text)
	case sz%st != 0:
		return sqlErr(step, "the step %s does not divide the window %s", step.Text, size.Text)
	case sz/st > MaxStepsPerWindow:
		return sqlErr(step, "the step %s gives %d steps per window, more than %d", step.Text, sz/st, MaxStepsPerWindow)
	case bucketZone(sizeBucket) != "" && step.Days != 0:
		return sqlErr(step, "the step %s in a time zone: Floe's steps are fixed lengths from the window's start, DuckDB's day buckets calendar days: write the step in hours", step.Text)
	}
	return nil
}

// checkStepGrid checks that the cumulative window's starts (s.Window in
// its zone) lie on DuckDB's grid of the step's time_bucket, so that
// DuckDB's steps are Floe's: the window's start plus whole steps. It
// always holds without a zone; in a zone, the step's buckets are aligned
// to local 2000-01-03 00:00 (or to 2000-01-03 UTC when the step's
// time_bucket has no zone), and local midnights move with the zone's
// offset (daylight saving): checked for every window from 2000 to 2100.
func checkStepGrid(s Spec, uw *unnestWindow) error {
	if s.Window.TimeZone == "" {
		return nil
	}
	step := s.Window.Step.D().Microseconds()
	wg, err := newGrid(s.Window.TimeZone, s.Window.Size.D())
	if err != nil {
		return sqlErr(uw.sizeBucket, "%v", err)
	}
	origin := int64(originDay) * usPerDay // DuckDB's, without a zone
	if bucketZone(uw.bucket) != "" {
		sg, _ := newGrid(s.Window.TimeZone, s.Window.Step.D())
		origin = sg.origin
	}
	if wg.days == 0 {
		if (wg.origin-origin)%step != 0 {
			return sqlErr(uw.bucket, "%s: in %s the windows start at %s, off the step's buckets (aligned to %s): give the step's time_bucket the zone %s",
				uw.bucket, s.Window.TimeZone, fmtMicros(wg.origin), fmtMicros(origin), s.Window.TimeZone)
		}
		return nil
	}
	from := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	to := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for i := wg.index(from); ; i++ {
		ws := wg.point(i)
		if ws > to {
			return nil
		}
		if floorMod(ws-origin, step) != 0 {
			return sqlErr(uw.bucket, "%s: in %s the window starting %s (local midnight) is not on the step's buckets of %s, which are aligned to %s: choose a step that divides the zone's offset changes",
				uw.bucket, s.Window.TimeZone, fmtMicros(ws), s.Window.Step, fmtMicros(origin))
		}
	}
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

// isEndOf recognises start + INTERVAL width (start rendered as given).
func isEndOf(e query.Expr, start string, width *query.Interval) bool {
	b, ok := e.(*query.Binary)
	return ok && b.Op == "+" && b.L.String() == start && sameInterval(asInterval(b.R), width)
}
