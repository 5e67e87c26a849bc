package query

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/scalar"
)

// Time semantics. A TIMESTAMPTZ (Iceberg timestamptz, Arrow
// timestamp[us, UTC]) is an instant; functions that need calendar fields
// of one (date_trunc, hour, strftime, CAST AS DATE) read them in UTC,
// which is what DuckDB does with its TimeZone setting at 'UTC' — the
// cross-check sets it. timezone(tz, ts) turns an instant into the wall
// clock time of tz (a TIMESTAMP), and back.

// bucketOrigin is DuckDB's default time_bucket origin for widths of
// days, hours, minutes and seconds: Monday 2000-01-03 00:00 (UTC, or the
// wall clock of the time zone argument). Month widths count from
// 2000-01-01.
var bucketOrigin = time.Date(2000, 1, 3, 0, 0, 0, 0, time.UTC).UnixMicro()

// BucketOrigin returns DuckDB's default time_bucket origin, in
// microseconds since the epoch.
func BucketOrigin() int64 { return bucketOrigin }

// timestampArg checks a TIMESTAMP/TIMESTAMPTZ (or DATE, as a TIMESTAMP)
// argument.
func (b *binder) timestampArg(x *Call, i int, n *node) (*node, error) {
	switch n.typ.ID() {
	case arrow.TIMESTAMP:
		return n, nil
	case arrow.DATE32:
		return b.coerce(x.Args[i], n, typTimestamp)
	case arrow.NULL:
		return constNode(scalar.MakeNullScalar(typTimestamp)), nil
	}
	if n.konst != nil && isString(n.typ) {
		return b.coerce(x.Args[i], n, typTimestamp)
	}
	return nil, typeErr(x.Args[i], "argument %d of %s is a %s, want a TIMESTAMP or TIMESTAMPTZ", i+1, x.Name, sqlType(n.typ))
}

// constString returns a constant VARCHAR argument.
func constString(x *Call, i int, n *node) (string, error) {
	s, ok := n.konst.(*scalar.String)
	if !ok || !s.IsValid() {
		return "", typeErr(x.Args[i], "argument %d of %s must be a string constant", i+1, x.Name)
	}
	return string(s.Data()), nil
}

// LoadZone returns the IANA time zone name.
func LoadZone(name string) (*time.Location, error) {
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, err)
	}
	return l, nil
}

// tsNode builds a node over one timestamp argument.
func tsNode(t arrow.DataType, arg *node, f func(us int64) (int64, bool)) *node {
	return &node{typ: t, eval: func(c *evalCtx) (compute.Datum, error) {
		as, err := evalAll(c, []*node{arg})
		if err != nil {
			return nil, err
		}
		defer releaseAll(as)
		ts := as[0].(*array.Timestamp)
		us := micros(ts)
		return buildTimestamp(c, t, func(i int) (int64, bool) {
			if ts.IsNull(i) {
				return 0, false
			}
			return f(us(i))
		})
	}}
}

// timezoneFn is timezone(tz, ts): a TIMESTAMPTZ to tz's wall clock time
// (TIMESTAMP), a TIMESTAMP (taken as tz's wall clock) to the instant.
func timezoneFn(b *binder, x *Call, args []*node) (*node, error) {
	if err := arity(x, args, 2, 2); err != nil {
		return nil, err
	}
	name, err := constString(x, 0, args[0])
	if err != nil {
		return nil, err
	}
	loc, err := LoadZone(name)
	if err != nil {
		return nil, typeErr(x.Args[0], "%v", err)
	}
	ts, err := b.timestampArg(x, 1, args[1])
	if err != nil {
		return nil, err
	}
	if isTZ(ts.typ) {
		return tsNode(typTimestamp, ts, func(us int64) (int64, bool) { return ToLocal(us, loc), true }), nil
	}
	return tsNode(typTimestampTZ, ts, func(us int64) (int64, bool) { return FromLocal(us, loc), true }), nil
}

// ToLocal converts an instant (µs since the epoch) to the wall clock
// time of loc, as µs since the epoch of a UTC wall clock.
func ToLocal(us int64, loc *time.Location) int64 {
	_, off := time.UnixMicro(us).In(loc).Zone()
	return us + int64(off)*1e6
}

// FromLocal converts a wall clock time of loc (µs, as ToLocal returns)
// to the instant; a wall time that a DST change skips or repeats
// resolves as Go's time.Date does.
func FromLocal(wall int64, loc *time.Location) int64 {
	t := time.UnixMicro(wall).UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc).UnixMicro()
}

// timeBucketFn is time_bucket(INTERVAL, ts[, tz | origin]).
func timeBucketFn(b *binder, x *Call, args []*node) (*node, error) {
	if err := arity(x, args, 2, 3); err != nil {
		return nil, err
	}
	iv, ok := x.Args[0].(*Interval)
	if !ok {
		return nil, typeErr(x.Args[0], "the width of time_bucket must be an INTERVAL literal, e.g. INTERVAL '5 minutes'")
	}
	if n := b2i(iv.Months != 0) + b2i(iv.Days != 0) + b2i(iv.Micros != 0); n != 1 || iv.Months < 0 || iv.Days < 0 || iv.Micros < 0 {
		return nil, typeErr(x.Args[0], "the width of time_bucket must be a positive number of one kind of unit (months, days or a time such as hours), not %s", iv)
	}
	ts, err := b.timestampArg(x, 1, args[1])
	if err != nil {
		return nil, err
	}
	var loc *time.Location
	origin := bucketOrigin
	if iv.Months != 0 {
		origin = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	}
	if len(args) == 3 {
		switch {
		case isString(args[2].typ):
			name, err := constString(x, 2, args[2])
			if err != nil {
				return nil, err
			}
			if !isTZ(ts.typ) {
				return nil, typeErr(x, "time_bucket with a time zone takes a TIMESTAMPTZ")
			}
			if loc, err = LoadZone(name); err != nil {
				return nil, typeErr(x.Args[2], "%v", err)
			}
		case args[2].konst != nil && args[2].typ.ID() == arrow.TIMESTAMP:
			if isTZ(ts.typ) != isTZ(args[2].typ) {
				return nil, typeErr(x.Args[2], "the origin of time_bucket must have the timestamp's type")
			}
			origin = int64(args[2].konst.(*scalar.Timestamp).Value)
		default:
			return nil, typeErr(x.Args[2], "the third argument of time_bucket is a time zone name or an origin timestamp constant")
		}
	}
	w := iv.Micros + iv.Days*microsPerDay
	months, days := iv.Months, iv.Days != 0
	return tsNode(ts.typ, ts, func(us int64) (int64, bool) {
		return Bucket(us, w, months, days, origin, loc), true
	}), nil
}

// Bucket is DuckDB's time_bucket: the start of the bucket of width
// widthMicros (or months) holding us, buckets aligned to origin. With a
// time zone, buckets of months or days (days true) are computed on loc's
// wall clock (calendar days: local midnights) and their start converted
// back to an instant; shorter widths are fixed lengths aligned to the
// instant of origin's wall clock time in loc.
func Bucket(us, widthMicros, months int64, days bool, origin int64, loc *time.Location) int64 {
	if loc != nil && months == 0 && !days {
		o := FromLocal(origin, loc)
		return o + floorDiv(us-o, widthMicros)*widthMicros
	}
	v := us
	if loc != nil {
		v = ToLocal(us, loc)
	}
	var start int64
	if months != 0 {
		t, o := time.UnixMicro(v).UTC(), time.UnixMicro(origin).UTC()
		m := int64(t.Year()-o.Year())*12 + int64(t.Month()-o.Month())
		if t.Before(o.AddDate(0, int(m), 0)) {
			m--
		}
		m = floorDiv(m, months) * months
		start = o.AddDate(0, int(m), 0).UnixMicro()
	} else {
		start = origin + floorDiv(v-origin, widthMicros)*widthMicros
	}
	if loc != nil {
		return FromLocal(start, loc)
	}
	return start
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// dateTruncFn is date_trunc(part, ts).
func dateTruncFn(b *binder, x *Call, args []*node) (*node, error) {
	if err := arity(x, args, 2, 2); err != nil {
		return nil, err
	}
	part, err := constString(x, 0, args[0])
	if err != nil {
		return nil, err
	}
	ts, err := b.timestampArg(x, 1, args[1])
	if err != nil {
		return nil, err
	}
	var f func(t time.Time) time.Time
	switch strings.ToLower(part) {
	case "microsecond", "microseconds":
		f = func(t time.Time) time.Time { return t }
	case "millisecond", "milliseconds":
		f = func(t time.Time) time.Time { return t.Truncate(time.Millisecond) }
	case "second", "seconds":
		f = func(t time.Time) time.Time { return t.Truncate(time.Second) }
	case "minute", "minutes":
		f = func(t time.Time) time.Time { return t.Truncate(time.Minute) }
	case "hour", "hours":
		f = func(t time.Time) time.Time { return t.Truncate(time.Hour) }
	case "day", "days":
		f = func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC) }
	case "week", "weeks":
		f = func(t time.Time) time.Time {
			d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
			return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
		}
	case "month", "months":
		f = func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC) }
	case "quarter", "quarters":
		f = func(t time.Time) time.Time { return time.Date(t.Year(), (t.Month()-1)/3*3+1, 1, 0, 0, 0, 0, time.UTC) }
	case "year", "years":
		f = func(t time.Time) time.Time { return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC) }
	default:
		return nil, typeErr(x.Args[0], "date_trunc part %q: want one of microsecond, millisecond, second, minute, hour, day, week, month, quarter, year", part)
	}
	return tsNode(ts.typ, ts, func(us int64) (int64, bool) {
		return f(time.UnixMicro(us).UTC()).UnixMicro(), true
	}), nil
}

// datePartFn is year(ts), month, day, hour, minute, second, dayofweek
// (0 = Sunday), isodow (1 = Monday), dayofyear and epoch_ms: BIGINT.
func datePartFn(part string) funcBinder {
	return func(b *binder, x *Call, args []*node) (*node, error) {
		if err := arity(x, args, 1, 1); err != nil {
			return nil, err
		}
		ts, err := b.timestampArg(x, 0, args[0])
		if err != nil {
			return nil, err
		}
		var f func(us int64) int64
		switch part {
		case "epoch_ms":
			f = func(us int64) int64 { return floorDiv(us, 1000) }
		case "hour":
			f = func(us int64) int64 { return floorDiv(us, 3600e6) - floorDiv(us, microsPerDay)*24 }
		case "minute":
			f = func(us int64) int64 { return floorDiv(us, 60e6) - floorDiv(us, 3600e6)*60 }
		case "second":
			f = func(us int64) int64 { return floorDiv(us, 1e6) - floorDiv(us, 60e6)*60 }
		default:
			f = func(us int64) int64 {
				t := time.UnixMicro(us).UTC()
				switch part {
				case "year":
					return int64(t.Year())
				case "month":
					return int64(t.Month())
				case "day":
					return int64(t.Day())
				case "dayofweek":
					return int64(t.Weekday())
				case "isodow":
					return int64((int(t.Weekday())+6)%7 + 1)
				}
				return int64(t.YearDay())
			}
		}
		return &node{typ: typInt, eval: func(c *evalCtx) (compute.Datum, error) {
			as, err := evalAll(c, []*node{ts})
			if err != nil {
				return nil, err
			}
			defer releaseAll(as)
			a := as[0].(*array.Timestamp)
			us := micros(a)
			return buildInt(c, func(i int) (int64, bool) { return f(us(i)), a.IsValid(i) })
		}}, nil
	}
}

// strftimeFn is strftime(ts, format) with the codes %Y %y %m %d %H %M
// %S %f (microseconds) %j %a %A %b %B %p %I %F (%Y-%m-%d) %T (%H:%M:%S)
// and %%.
func strftimeFn(b *binder, x *Call, args []*node) (*node, error) {
	if err := arity(x, args, 2, 2); err != nil {
		return nil, err
	}
	format, err := constString(x, 1, args[1])
	if err != nil {
		return nil, err
	}
	if err := checkStrftime(format); err != nil {
		return nil, typeErr(x.Args[1], "%v", err)
	}
	ts, err := b.timestampArg(x, 0, args[0])
	if err != nil {
		return nil, err
	}
	return &node{typ: typString, eval: func(c *evalCtx) (compute.Datum, error) {
		as, err := evalAll(c, []*node{ts})
		if err != nil {
			return nil, err
		}
		defer releaseAll(as)
		a := as[0].(*array.Timestamp)
		us := micros(a)
		var buf []byte
		return buildString(c, func(i int) (string, bool) {
			if a.IsNull(i) {
				return "", false
			}
			buf = strftime(buf[:0], time.UnixMicro(us(i)).UTC(), format)
			return string(buf), true
		})
	}}, nil
}

func checkStrftime(format string) error {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		if i == len(format) || !strings.ContainsRune("YymdHMSfjaAbBpIFT%", rune(format[i])) {
			return fmt.Errorf("strftime format %q: unsupported code at byte %d (the dialect has %%Y %%y %%m %%d %%H %%M %%S %%f %%j %%a %%A %%b %%B %%p %%I %%F %%T %%%%)", format, i)
		}
	}
	return nil
}

func strftime(buf []byte, t time.Time, format string) []byte {
	pad := func(v, w int) {
		s := strconv.Itoa(v)
		for k := len(s); k < w; k++ {
			buf = append(buf, '0')
		}
		buf = append(buf, s...)
	}
	for i := 0; i < len(format); i++ {
		ch := format[i]
		if ch != '%' || i+1 == len(format) {
			buf = append(buf, ch)
			continue
		}
		i++
		switch format[i] {
		case 'Y':
			pad(t.Year(), 4)
		case 'y':
			pad(t.Year()%100, 2)
		case 'm':
			pad(int(t.Month()), 2)
		case 'd':
			pad(t.Day(), 2)
		case 'H':
			pad(t.Hour(), 2)
		case 'I':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			pad(h, 2)
		case 'p':
			if t.Hour() < 12 {
				buf = append(buf, "AM"...)
			} else {
				buf = append(buf, "PM"...)
			}
		case 'M':
			pad(t.Minute(), 2)
		case 'S':
			pad(t.Second(), 2)
		case 'f':
			pad(t.Nanosecond()/1000, 6)
		case 'j':
			pad(t.YearDay(), 3)
		case 'a':
			buf = append(buf, t.Weekday().String()[:3]...)
		case 'A':
			buf = append(buf, t.Weekday().String()...)
		case 'b':
			buf = append(buf, t.Month().String()[:3]...)
		case 'B':
			buf = append(buf, t.Month().String()...)
		case 'F':
			buf = t.AppendFormat(buf, time.DateOnly)
		case 'T':
			buf = t.AppendFormat(buf, time.TimeOnly)
		default:
			buf = append(buf, format[i])
		}
	}
	return buf
}

// addInterval is ts ± INTERVAL of fixed length or whole months.
func (b *binder) addInterval(x *Binary, ts *node, iv *Interval) (*node, error) {
	sign := int64(1)
	if x.Op == "-" {
		sign = -1
	}
	months, w := iv.Months*sign, (iv.Micros+iv.Days*microsPerDay)*sign
	return tsNode(ts.typ, ts, func(us int64) (int64, bool) {
		if months != 0 {
			t := time.UnixMicro(us).UTC()
			// DuckDB clamps the day to the month's last day.
			y, m, d := t.Date()
			first := time.Date(y, m, 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC).AddDate(0, int(months), 0)
			last := first.AddDate(0, 1, -1).Day()
			us = first.AddDate(0, 0, min(d, last)-1).UnixMicro()
		}
		return us + w, true
	}), nil
}
