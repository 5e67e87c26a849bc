package aggregate

import (
	"errors"
	"fmt"
	"time"
	// Time zones are resolved from the tz database compiled into the
	// binary, so that windows do not depend on the host's zoneinfo files.
	_ "time/tzdata"
)

// MaxStepsPerWindow bounds Size/Step of a cumulative window.
const MaxStepsPerWindow = 1440

const (
	usPerDay = int64(24 * time.Hour / time.Microsecond)
	// originDay is DuckDB's default time_bucket origin, 2000-01-03 (a
	// Monday), in days since 1970-01-01.
	originDay = 10959
)

// zoneName is the window's zone as the fingerprint records it: "" for
// the epoch-aligned UTC windows of a spec without a time zone.
func (w Window) zoneName() string { return w.TimeZone }

// validateZoned checks TimeZone and Step.
func (w Window) validateZoned() error {
	if w.TimeZone != "" {
		if _, err := time.LoadLocation(w.TimeZone); err != nil {
			return fmt.Errorf("window.time-zone: %q is not an IANA time zone: %w", w.TimeZone, err)
		}
	}
	size, step := w.Size.D(), w.Step.D()
	switch {
	case step < 0:
		return fmt.Errorf("window.step: %s is negative", w.Step)
	case step == 0:
		return nil
	case w.Slide > 0 && w.Slide != w.Size:
		return errors.New("window.step: a window is sliding (slide) or cumulative (step), not both")
	case step%time.Second != 0:
		return fmt.Errorf("window.step: %s is not a whole number of seconds", w.Step)
	case step >= size:
		return fmt.Errorf("window.step: %s is not shorter than window.size %s", w.Step, w.Size)
	case size%step != 0:
		return fmt.Errorf("window.step: %s does not divide window.size %s", w.Step, w.Size)
	case size/step > MaxStepsPerWindow:
		return fmt.Errorf("window.step: %s gives %d steps per window, more than %d", w.Step, size/step, MaxStepsPerWindow)
	}
	return nil
}

// grid places window starts on the time line: windows start at the grid's
// points, one every slide (tumbling and cumulative windows: every size),
// and a window starting at point i ends at point i + size/slide.
//
// Without a zone the points are the multiples of slide since the Unix
// epoch. In a zone, a slide of whole days makes the points local midnights
// every slide/1d days from local 2000-01-03 (DuckDB's time_bucket of a
// day interval in a time zone: calendar days, 23 or 25 hours long across
// a daylight-saving change); any other slide makes them the instants
// origin + i·slide, origin being local 2000-01-03 00:00 (DuckDB's
// time_bucket of a time interval in a time zone).
type grid struct {
	loc *time.Location // nil: epoch-aligned, UTC
	// days is the slide in days when the points are local midnights.
	days int64
	// slide and origin (µs) of fixed-length points.
	slide, origin int64
}

func newGrid(tz string, slide time.Duration) (grid, error) {
	g := grid{slide: slide.Microseconds()}
	if tz == "" {
		return g, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return grid{}, fmt.Errorf("load time zone %q: %w", tz, err)
	}
	g.loc = loc
	if slide%(24*time.Hour) == 0 {
		g.days = int64(slide / (24 * time.Hour))
	}
	g.origin = g.midnight(originDay)
	return g, nil
}

// index is the number of the last point at or before t (µs).
func (g grid) index(t int64) int64 {
	switch {
	case g.loc == nil:
		return floorDiv(t, g.slide)
	case g.days > 0:
		i := floorDiv(g.localDay(t)-originDay, g.days)
		if g.point(i) > t {
			// t lies in a gap before its local midnight (a zone that
			// changes its clocks at midnight).
			i--
		}
		return i
	}
	return floorDiv(t-g.origin, g.slide)
}

// point is the i-th point (µs).
func (g grid) point(i int64) int64 {
	switch {
	case g.loc == nil:
		return i * g.slide
	case g.days > 0:
		return g.midnight(originDay + i*g.days)
	}
	return g.origin + i*g.slide
}

// localDay is the local date of t, in days since 1970-01-01.
func (g grid) localDay(t int64) int64 {
	_, off := time.UnixMicro(t).In(g.loc).Zone()
	return floorDiv(t+int64(off)*1e6, usPerDay)
}

// midnight is the instant (µs) of local midnight starting day (days since
// 1970-01-01), resolved as ICU (and so DuckDB) resolves local times: a
// time that occurs twice is its later occurrence, and a time skipped by a
// clock change is read with the offset before the change (02:30 on a
// spring-forward night at 02:00 is 03:30).
func (g grid) midnight(day int64) int64 {
	return localToInstant(g.loc, day*usPerDay)
}

// localToInstant converts local wall time (µs since 1970-01-01 as if UTC)
// in loc to an instant, resolving repeated and skipped times as ICU does.
func localToInstant(loc *time.Location, wall int64) int64 {
	offAt := func(t int64) int64 {
		_, off := time.UnixMicro(t).In(loc).Zone()
		return int64(off) * 1e6
	}
	before, after := offAt(wall-usPerDay), offAt(wall+usPerDay)
	a, b := wall-before, wall-after
	okA, okB := offAt(a) == before, offAt(b) == after
	switch {
	case okA && okB:
		return max(a, b) // repeated: the later occurrence
	case okB:
		return b
	}
	return a // valid with the earlier offset, or skipped
}

// localParts is the local date (days since 1970-01-01) and hour of t.
func localParts(loc *time.Location, t int64) (day int64, hour int) {
	if loc == nil {
		return floorDiv(t, usPerDay), int(floorDiv(t, int64(time.Hour/time.Microsecond)) - floorDiv(t, usPerDay)*24)
	}
	lt := time.UnixMicro(t).In(loc)
	_, off := lt.Zone()
	return floorDiv(t+int64(off)*1e6, usPerDay), lt.Hour()
}

// gridCache remembers the last grid interval a row fell in, so that rows
// close in time (as a batch's are) skip the time zone lookups of local
// days. One per goroutine.
type gridCache struct {
	ok          bool
	i           int64
	start, next int64
}

// indexCached is index, through c.
func (g grid) indexCached(t int64, c *gridCache) int64 {
	if g.loc == nil || g.days == 0 {
		return g.index(t)
	}
	if c.ok && t >= c.start && t < c.next {
		return c.i
	}
	i := g.index(t)
	*c = gridCache{ok: true, i: i, start: g.point(i), next: g.point(i + 1)}
	return i
}
