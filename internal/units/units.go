// Package units formats and parses the quantities floe's command line shows
// and takes: byte sizes, points in time and periods. Every subcommand uses
// these, so a size or a time reads and parses the same everywhere. It holds
// no state and does no I/O.
package units

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bytes renders n bytes with a binary unit and one decimal: "512 B",
// "1.5 KiB", "128.0 MiB", up to EiB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ParseTime parses a point in time: RFC 3339 with or without fractional
// seconds (2026-01-02T15:04:05Z), the same without a zone (UTC), or a date
// (2026-01-02, midnight UTC). Surrounding spaces are ignored.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (2026-01-02T15:04:05Z) or a date (2026-01-02)", s)
}

// ParseTimeFlag is ParseTime for an optional flag: empty is the zero time,
// and an error names the flag.
func ParseTimeFlag(name, v string) (time.Time, error) {
	if strings.TrimSpace(v) == "" {
		return time.Time{}, nil
	}
	t, err := ParseTime(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// ParsePeriod parses a positive period: a Go duration (90s, 1h30m) or a
// number of days (2d, 0.5d).
func ParsePeriod(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n float64
		if n, err = strconv.ParseFloat(days, 64); err == nil {
			d = time.Duration(n * float64(24*time.Hour))
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration like 90s, 1h or 2d", s)
	}
	return d, nil
}
