package kafka

// A fast path for decoding Canal and Debezium envelopes: encoding/json
// (a validation pass, then reflection) was most of an upsert route's CPU.
// fastCanal and fastDebezium check the whole value in one pass and fill
// the same structs, but only for plain input: anything they do not
// handle exactly as encoding/json does (escapes in the strings they keep,
// member names differing only in case, numbers that are not plain
// integers, values of unexpected types, invalid JSON) makes them answer
// false, and the caller decodes with encoding/json, whose result and
// errors stay the reference.

import (
	"encoding/json"
	"strconv"
	"strings"
)

// maxFastDepth bounds the nesting the fast path checks; deeper input goes
// to encoding/json (which allows 10000).
const maxFastDepth = 200

// fastCanal decodes a Canal flat message; ok false: use encoding/json.
func fastCanal(value []byte) (m canalMessage, ok bool) {
	ok = scanEnvelope(value, func(name, v []byte) bool {
		var good bool
		switch string(name) {
		case "data":
			m.Data, good = rawList(v)
		case "old":
			m.Old, good = rawList(v)
		case "type":
			return plainString(v, &m.Type)
		case "isDdl":
			switch string(v) {
			case "true":
				m.IsDdl = true
			case "false":
				m.IsDdl = false
			case "null":
			default:
				return false
			}
			return true
		case "sql":
			return plainString(v, &m.SQL)
		case "database":
			return plainString(v, &m.Database)
		case "table":
			return plainString(v, &m.Table)
		case "es":
			return plainInt(v, &m.Es)
		case "ts":
			return plainInt(v, &m.Ts)
		case "pkNames":
			return stringList(v, &m.PkNames)
		default:
			return !foldsTo(name, "data", "old", "type", "isDdl", "sql", "database", "table", "es", "ts", "pkNames")
		}
		return good
	})
	return m, ok
}

// fastDebezium decodes a Debezium event (one level: the caller unwraps
// the schema envelope's payload); ok false: use encoding/json.
func fastDebezium(value []byte) (e debeziumEvent, ok bool) {
	ok = scanEnvelope(value, func(name, v []byte) bool {
		switch string(name) {
		case "before":
			e.Before = json.RawMessage(v)
		case "after":
			e.After = json.RawMessage(v)
		case "payload":
			e.Payload = json.RawMessage(v)
		case "op":
			return plainString(v, &e.Op)
		case "ts_ms":
			return plainInt(v, &e.TsMs)
		case "source":
			if string(v) == "null" {
				return true
			}
			return scanEnvelope(v, func(name, v []byte) bool {
				if string(name) == "ts_ms" {
					return plainInt(v, &e.Source.TsMs)
				}
				return !foldsTo(name, "ts_ms")
			})
		default:
			return !foldsTo(name, "before", "after", "payload", "op", "ts_ms", "source")
		}
		return true
	})
	return e, ok
}

// foldsTo reports whether name equals one of fields ignoring case
// (encoding/json matches such a member to the field).
func foldsTo(name []byte, fields ...string) bool {
	for _, f := range fields {
		if strings.EqualFold(string(name), f) {
			return true
		}
	}
	return false
}

// plainString stores the JSON string v (no escapes, ASCII) in dst; null
// leaves dst as it is.
func plainString(v []byte, dst *string) bool {
	if string(v) == "null" {
		return true
	}
	if len(v) < 2 || v[0] != '"' {
		return false
	}
	for _, c := range v[1 : len(v)-1] {
		if c == '\\' || c >= 0x80 {
			return false
		}
	}
	*dst = string(v[1 : len(v)-1])
	return true
}

// plainInt stores the JSON integer v in dst; null leaves dst as it is.
func plainInt(v []byte, dst *int64) bool {
	if string(v) == "null" {
		return true
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return false
	}
	*dst = n
	return true
}

// rawList splits the JSON array v into its elements; null is nil.
func rawList(v []byte) ([]json.RawMessage, bool) {
	if string(v) == "null" {
		return nil, true
	}
	out := []json.RawMessage{}
	ok := scanElements(v, func(e []byte) bool {
		out = append(out, json.RawMessage(e))
		return true
	})
	return out, ok
}

// stringList stores the JSON array of plain strings v in dst; null is
// nil.
func stringList(v []byte, dst *[]string) bool {
	if string(v) == "null" {
		*dst = nil
		return true
	}
	out := []string{}
	ok := scanElements(v, func(e []byte) bool {
		var s string
		if string(e) == "null" || !plainString(e, &s) {
			return false
		}
		out = append(out, s)
		return true
	})
	*dst = out
	return ok
}

// scanEnvelope checks that value is one valid JSON object (surrounding
// whitespace allowed) and calls fn with each member's name (plain: no
// escapes, ASCII) and value, in order; false when it is not, or fn says
// so.
func scanEnvelope(value []byte, fn func(name, v []byte) bool) bool {
	i := skipSpace(value, 0)
	if i >= len(value) || value[i] != '{' {
		return false
	}
	end, ok := checkObject(value, i, 0, fn)
	return ok && skipSpace(value, end) == len(value)
}

// scanElements checks that v is one JSON array and calls fn with each
// element.
func scanElements(v []byte, fn func(e []byte) bool) bool {
	if len(v) == 0 || v[0] != '[' {
		return false
	}
	end, ok := checkArray(v, 0, 0, fn)
	return ok && end == len(v)
}

// checkValue checks the JSON value at b[i] (no leading whitespace) and
// returns its end.
func checkValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		return checkString(b, i)
	case c == '{':
		return checkObject(b, i, depth+1, nil)
	case c == '[':
		return checkArray(b, i, depth+1, nil)
	case c == 't':
		return checkLiteral(b, i, "true")
	case c == 'f':
		return checkLiteral(b, i, "false")
	case c == 'n':
		return checkLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return checkNumber(b, i)
	}
	return 0, false
}

func checkLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return 0, false
	}
	return i + len(lit), true
}

// checkNumber checks the JSON number at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func checkNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	digits := func() bool {
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > s
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return 0, false
		}
	}
	return i, true
}

// checkString checks the JSON string at b[i] (a quote): no control
// characters, valid escapes.
func checkString(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			j++
			if j >= len(b) {
				return 0, false
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return 0, false
				}
				for _, h := range b[j+1 : j+5] {
					if _, ok := unhexDigit(h); !ok {
						return 0, false
					}
				}
				j += 4
			default:
				return 0, false
			}
		}
	}
	return 0, false
}

func unhexDigit(c byte) (byte, bool) {
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

// checkObject checks the JSON object at b[i] ('{') and returns its end;
// fn (if set) gets each member, and a name that is not plain fails when
// fn is set.
func checkObject(b []byte, i, depth int, fn func(name, v []byte) bool) (int, bool) {
	if depth > maxFastDepth {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		ne, ok := checkString(b, i)
		if !ok {
			return 0, false
		}
		name := b[i+1 : ne-1]
		i = skipSpace(b, ne)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = skipSpace(b, i+1)
		ve, ok := checkValue(b, i, depth)
		if !ok {
			return 0, false
		}
		if fn != nil {
			for _, c := range name {
				if c == '\\' || c >= 0x80 {
					return 0, false
				}
			}
			if !fn(name, b[i:ve]) {
				return 0, false
			}
		}
		i = skipSpace(b, ve)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// checkArray checks the JSON array at b[i] ('[') and returns its end; fn
// (if set) gets each element.
func checkArray(b []byte, i, depth int, fn func(e []byte) bool) (int, bool) {
	if depth > maxFastDepth {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		ve, ok := checkValue(b, i, depth)
		if !ok {
			return 0, false
		}
		if fn != nil && !fn(b[i:ve]) {
			return 0, false
		}
		i = skipSpace(b, ve)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}
