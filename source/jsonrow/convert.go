package jsonrow

import (
	"errors"
	"math"
	"math/bits"
)

// Conversions of JSON text to column values. They never allocate on success
// and return short, value-free errors that the caller decorates with the
// field and the offending text.

// convError is a conversion failure; its values are constants.
type convError string

func (e convError) Error() string { return string(e) }

const (
	errNotNumber  convError = "not a number"
	errNotInteger convError = "not an integer"
	errInexact    convError = "too many decimal places"
	errOutOfRange convError = "out of range"
	errBadDate    convError = "not a date (want YYYY-MM-DD)"
	errBadTime    convError = "not a time (want hh:mm:ss[.ffffff])"
	errBadTS      convError = "not an RFC 3339 timestamp"
	errNoZone     convError = "has no zone offset (want Z or ±hh:mm)"
	errBadUUID    convError = "not a UUID"
	errBadBase64  convError = "not base64"
)

// u128 is an unsigned 128-bit magnitude.
type u128 struct{ hi, lo uint64 }

func (u u128) mulAdd(m, a uint64) u128 {
	hi, lo := bits.Mul64(u.lo, m)
	hi += u.hi * m
	lo, c := bits.Add64(lo, a, 0)
	hi += c
	return u128{hi, lo}
}

// parseDecimal parses decimal text — [+-]digits[.digits][(e|E)[+-]digits],
// where either the integer or the fraction digits may be empty but not both
// — into the magnitude of value×10^scale, exactly: it fails with errInexact
// when that is not an integer and with errOutOfRange when it needs more than
// prec digits (prec <= 38).
func parseDecimal(s []byte, prec, scale int) (neg bool, mag u128, err error) {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	// Mantissa: note where its digits are; the point is skipped over.
	mantStart := i
	nDigits, nFrac := 0, 0
	seenPoint := false
	for ; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			nDigits++
			if seenPoint {
				nFrac++
			}
			continue
		}
		if c == '.' && !seenPoint {
			seenPoint = true
			continue
		}
		break
	}
	mantEnd := i
	if nDigits == 0 {
		return false, u128{}, errNotNumber
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			eneg = s[i] == '-'
			i++
		}
		j := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if exp < 1_000_000 {
				exp = exp*10 + int(s[i]-'0')
			}
		}
		if i == j {
			return false, u128{}, errNotNumber
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return false, u128{}, errNotNumber
	}
	// Significant digits: drop leading and trailing zeros.
	first, last := -1, -1 // positions in s of the first and last non-zero digits
	trailing := 0         // digits after last
	for k := mantStart; k < mantEnd; k++ {
		c := s[k]
		if c == '.' {
			continue
		}
		if c != '0' {
			if first < 0 {
				first = k
			}
			last = k
			trailing = 0
		} else {
			trailing++
		}
	}
	if first < 0 {
		return neg, u128{}, nil // zero
	}
	sig := 0
	for k := first; k <= last; k++ {
		if s[k] != '.' {
			sig++
		}
	}
	// value = sig digits × 10^(exp - nFrac + trailing)
	shift := exp - nFrac + trailing + scale
	if shift < 0 {
		return false, u128{}, errInexact
	}
	if sig+shift > prec {
		return false, u128{}, errOutOfRange
	}
	for k := first; k <= last; k++ {
		if c := s[k]; c != '.' {
			mag = mag.mulAdd(10, uint64(c-'0'))
		}
	}
	for ; shift > 0; shift-- {
		mag = mag.mulAdd(10, 0)
	}
	return neg, mag, nil
}

// parseInt parses an integral number (exponents and zero fractions allowed:
// 1e3, 2.0) within [lo, hi].
func parseInt(s []byte, lo, hi int64) (int64, error) {
	// Fast path: plain digits.
	if n := len(s); n > 0 && n <= 18 {
		i, neg := 0, false
		if s[0] == '-' {
			i, neg = 1, true
		}
		if i < n {
			var v int64
			for ; i < n; i++ {
				c := s[i]
				if c < '0' || c > '9' {
					break
				}
				v = v*10 + int64(c-'0')
			}
			if i == n {
				if neg {
					v = -v
				}
				if v < lo || v > hi {
					return 0, errOutOfRange
				}
				return v, nil
			}
		}
	}
	neg, mag, err := parseDecimal(s, 20, 0)
	if errors.Is(err, errInexact) {
		return 0, errNotInteger
	}
	if err != nil {
		return 0, err
	}
	if mag.hi != 0 || mag.lo > 1<<63 {
		return 0, errOutOfRange
	}
	var v int64
	if neg {
		v = int64(-mag.lo) // -(1<<63) wraps to itself: math.MinInt64
	} else {
		if mag.lo > math.MaxInt64 {
			return 0, errOutOfRange
		}
		v = int64(mag.lo)
	}
	if v < lo || v > hi {
		return 0, errOutOfRange
	}
	return v, nil
}

// digits parses n ASCII digits at s[i:].
func digits(s []byte, i, n int) (int, bool) {
	if i+n > len(s) {
		return 0, false
	}
	v := 0
	for _, c := range s[i : i+n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(y, m int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	default:
		return 31
	}
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// parseDateAt parses YYYY-MM-DD at s[0:10] into days since the epoch.
func parseDateAt(s []byte) (int64, bool) {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	y, ok1 := digits(s, 0, 4)
	m, ok2 := digits(s, 5, 2)
	d, ok3 := digits(s, 8, 2)
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}

// parseDate parses exactly YYYY-MM-DD.
func parseDate(s []byte) (int32, error) {
	if len(s) != 10 {
		return 0, errBadDate
	}
	d, ok := parseDateAt(s)
	if !ok {
		return 0, errBadDate
	}
	return int32(d), nil
}

// parseClock parses hh:mm:ss[.fraction] at s[i:], returning seconds of the
// day, nanoseconds and the index after it. Fractions beyond nanoseconds are
// not accepted.
func parseClock(s []byte, i int) (sec int64, nsec int64, end int, ok bool) {
	if i+8 > len(s) || s[i+2] != ':' || s[i+5] != ':' {
		return 0, 0, 0, false
	}
	h, ok1 := digits(s, i, 2)
	m, ok2 := digits(s, i+3, 2)
	se, ok3 := digits(s, i+6, 2)
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || se > 59 {
		return 0, 0, 0, false
	}
	i += 8
	if i < len(s) && s[i] == '.' {
		i++
		j := i
		scale := int64(100_000_000)
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if i-j >= 9 {
				return 0, 0, 0, false
			}
			nsec += int64(s[i]-'0') * scale
			scale /= 10
		}
		if i == j {
			return 0, 0, 0, false
		}
	}
	return int64(h*3600 + m*60 + se), nsec, i, true
}

// parseTime parses hh:mm:ss[.fraction] into nanoseconds of the day.
func parseTime(s []byte) (int64, error) {
	sec, nsec, end, ok := parseClock(s, 0)
	if !ok || end != len(s) {
		return 0, errBadTime
	}
	return sec*1e9 + nsec, nil
}

// parseTimestamp parses an RFC 3339 timestamp —
// YYYY-MM-DD(T|t| )hh:mm:ss[.fraction](Z|z|±hh:mm) — into seconds and
// nanoseconds since the epoch. Without an offset it is an error when
// needZone, and otherwise the wall clock is read as UTC.
func parseTimestamp(s []byte, needZone bool) (sec, nsec int64, err error) {
	days, ok := parseDateAt(s)
	if !ok || len(s) < 11 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') {
		return 0, 0, errBadTS
	}
	tod, nsec, i, ok := parseClock(s, 11)
	if !ok {
		return 0, 0, errBadTS
	}
	sec = days*86400 + tod
	switch {
	case i == len(s):
		if needZone {
			return 0, 0, errNoZone
		}
	case len(s)-i == 1 && (s[i] == 'Z' || s[i] == 'z'):
	case len(s)-i == 6 && (s[i] == '+' || s[i] == '-') && s[i+3] == ':':
		oh, ok1 := digits(s, i+1, 2)
		om, ok2 := digits(s, i+4, 2)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, 0, errBadTS
		}
		off := int64(oh*3600 + om*60)
		if s[i] == '+' {
			sec -= off
		} else {
			sec += off
		}
	default:
		return 0, 0, errBadTS
	}
	return sec, nsec, nil
}

// EpochMicrosThreshold splits epoch numbers for timestamp columns: a number
// whose magnitude is below it is milliseconds since the epoch, otherwise
// microseconds. 1e14 ms is the year 5138 and 1e14 µs is 1973-03-03, so the
// heuristic misreads only microsecond values before March 1973 and
// millisecond values after the year 5138.
const EpochMicrosThreshold = 1e14

// epochToMicros applies the EpochMicrosThreshold heuristic.
func epochToMicros(v int64) (int64, error) {
	if v > -EpochMicrosThreshold && v < EpochMicrosThreshold {
		return v * 1000, nil
	}
	return v, nil
}

// toUnit converts seconds+nanoseconds to a count of unit (1 = s, 1e3 = ms,
// 1e6 = µs, 1e9 = ns), truncating toward negative infinity and failing on
// overflow.
func toUnit(sec, nsec, perSec int64) (int64, error) {
	limit := (math.MaxInt64 - perSec) / perSec
	if sec > limit || sec < -limit {
		return 0, errOutOfRange
	}
	return sec*perSec + nsec/(1e9/perSec), nil
}

// microsToUnit converts microseconds to a count of unit (see toUnit).
func microsToUnit(us, perSec int64) (int64, error) {
	switch perSec {
	case 1e6:
		return us, nil
	case 1e9:
		if us > math.MaxInt64/1000 || us < math.MinInt64/1000 {
			return 0, errOutOfRange
		}
		return us * 1000, nil
	default:
		return floorDiv(us, 1e6/perSec), nil
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseUUID parses the canonical 8-4-4-4-12 form or 32 bare hex digits.
func parseUUID(s []byte, out *[16]byte) error {
	switch len(s) {
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return errBadUUID
		}
	case 32:
	default:
		return errBadUUID
	}
	j := 0
	for i := 0; i < len(s); {
		if s[i] == '-' && len(s) == 36 {
			i++
			continue
		}
		a, ok1 := unhex(s[i])
		if i+1 >= len(s) {
			return errBadUUID
		}
		b, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 || j >= 16 {
			return errBadUUID
		}
		out[j] = a<<4 | b
		j++
		i += 2
	}
	if j != 16 {
		return errBadUUID
	}
	return nil
}
