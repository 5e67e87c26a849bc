package query

import (
	"fmt"
	"strconv"
	"strings"
)

// typeAliases maps the type names a CAST accepts to their canonical name.
var typeAliases = map[string]string{
	"BIGINT": "BIGINT", "INT8": "BIGINT", "LONG": "BIGINT",
	"INTEGER": "INTEGER", "INT": "INTEGER", "INT4": "INTEGER", "SIGNED": "INTEGER",
	"DOUBLE": "DOUBLE", "FLOAT8": "DOUBLE", "REAL": "FLOAT", "FLOAT4": "FLOAT", "FLOAT": "FLOAT",
	"DECIMAL": "DECIMAL", "NUMERIC": "DECIMAL",
	"VARCHAR": "VARCHAR", "TEXT": "VARCHAR", "STRING": "VARCHAR", "CHAR": "VARCHAR", "BPCHAR": "VARCHAR",
	"BOOLEAN": "BOOLEAN", "BOOL": "BOOLEAN",
	"DATE":      "DATE",
	"TIMESTAMP": "TIMESTAMP", "DATETIME": "TIMESTAMP",
	"TIMESTAMPTZ": "TIMESTAMPTZ",
}

func (p *parser) typeName() (TypeName, error) {
	t := p.next()
	if t.kind != tIdent {
		return TypeName{}, p.errAt(t, "expected a type name, found %s", describe(t))
	}
	up := strings.ToUpper(t.text)
	if up == "DOUBLE" {
		p.acceptKw("PRECISION")
	}
	if up == "TIMESTAMP" && isKw(p.peek(), "WITH") {
		p.next()
		if err := p.expectKw("TIME"); err != nil {
			return TypeName{}, err
		}
		if err := p.expectKw("ZONE"); err != nil {
			return TypeName{}, err
		}
		up = "TIMESTAMPTZ"
	}
	canon, ok := typeAliases[up]
	if !ok {
		return TypeName{}, unsupported("type "+up, t)
	}
	ty := TypeName{Name: canon}
	if canon == "DECIMAL" {
		ty.Precision, ty.Scale = 18, 3 // DuckDB's default
		if p.acceptOp("(") {
			n, err := p.intLit()
			if err != nil {
				return TypeName{}, err
			}
			ty.Precision, ty.Scale = n, 0
			if p.acceptOp(",") {
				if ty.Scale, err = p.intLit(); err != nil {
					return TypeName{}, err
				}
			}
			if err := p.expectOp(")"); err != nil {
				return TypeName{}, err
			}
			if ty.Precision < 1 || ty.Precision > 38 || ty.Scale < 0 || ty.Scale > ty.Precision {
				return TypeName{}, p.errAt(t, "DECIMAL(%d,%d): want 1 ≤ precision ≤ 38 and 0 ≤ scale ≤ precision", ty.Precision, ty.Scale)
			}
		}
	} else if canon == "VARCHAR" && p.acceptOp("(") { // VARCHAR(n): the length is ignored, as DuckDB does
		if _, err := p.intLit(); err != nil {
			return TypeName{}, err
		}
		if err := p.expectOp(")"); err != nil {
			return TypeName{}, err
		}
	}
	return ty, nil
}

func (p *parser) intLit() (int, error) {
	t := p.next()
	n, err := strconv.Atoi(t.text)
	if t.kind != tNumber || err != nil {
		return 0, p.errAt(t, "expected an integer, found %s", describe(t))
	}
	return n, nil
}

// interval parses INTERVAL '1 hour', INTERVAL '5' MINUTE, INTERVAL 5 MINUTE.
func (p *parser) interval() (Expr, error) {
	t := p.next()
	v := p.next()
	if v.kind != tString && v.kind != tNumber {
		return nil, p.errAt(v, "expected an interval such as INTERVAL '1 hour', found %s", describe(v))
	}
	text := v.text
	if u := p.peek(); u.kind == tIdent && unitMicros(u.text) != 0 {
		p.next()
		text += " " + strings.ToLower(u.text)
	}
	months, days, micros, err := parseInterval(text)
	if err != nil {
		return nil, p.errAt(v, "%v", err)
	}
	return &Interval{Pos: t.pos, Text: text, Months: months, Days: days, Micros: micros}, nil
}

// unitMicros returns the length of an interval unit in microseconds, -1
// for month units (months and years) and 0 for a word that is no unit.
func unitMicros(u string) int64 {
	switch strings.ToLower(u) {
	case "us", "usec", "usecs", "microsecond", "microseconds":
		return 1
	case "ms", "msec", "msecs", "millisecond", "milliseconds":
		return 1e3
	case "s", "sec", "secs", "second", "seconds":
		return 1e6
	case "m", "min", "mins", "minute", "minutes":
		return 60e6
	case "h", "hr", "hrs", "hour", "hours":
		return 3600e6
	case "d", "day", "days":
		return 86400e6
	case "w", "week", "weeks":
		return 7 * 86400e6
	case "mon", "mons", "month", "months", "y", "year", "years":
		return -1
	}
	return 0
}

// parseInterval reads "1 hour", "2 days 3 hours", "5 minute".
func parseInterval(s string) (months, days, micros int64, err error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f)%2 != 0 {
		return 0, 0, 0, fmt.Errorf("interval %q: want pairs of a number and a unit, e.g. '1 hour'", s)
	}
	for i := 0; i < len(f); i += 2 {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("interval %q: %q is not a whole number", s, f[i])
		}
		u := unitMicros(f[i+1])
		switch {
		case u == 0:
			return 0, 0, 0, fmt.Errorf("interval %q: unknown unit %q", s, f[i+1])
		case u < 0:
			if strings.HasPrefix(strings.ToLower(f[i+1]), "y") {
				n *= 12
			}
			months += n
		case u >= 86400e6:
			days += n * (u / 86400e6)
		default:
			micros += n * u
		}
	}
	return months, days, micros, nil
}
