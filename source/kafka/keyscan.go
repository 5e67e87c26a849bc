package kafka

// A scanner of a JSON object's top-level members, for the key columns of
// row images: decoding whole images into maps (encoding/json) only to read
// their keys was a sixth of an upsert route's CPU. It answers only for
// plain input (an object, member names without escapes); callers fall
// back to encoding/json, whose errors they report, for anything else.

import "bytes"

// keyValues returns the raw values of the key columns keys in the JSON
// object raw (the last one of a repeated member, as encoding/json does),
// and ok: raw is an object whose member names have no escapes, and every
// key column is present and not null.
func keyValues(raw []byte, keys []string) (vals [][]byte, ok bool) {
	vals = make([][]byte, len(keys))
	if !scanMembers(raw, func(name, v []byte) {
		for i, k := range keys {
			if string(name) == k {
				vals[i] = v
			}
		}
	}) {
		return nil, false
	}
	for _, v := range vals {
		if v == nil || bytes.Equal(v, []byte("null")) {
			return nil, false
		}
	}
	return vals, true
}

// keysAbsent reports whether the JSON object raw (plain, as for
// keyValues) has none of keys as a member; false when it has one or is
// not plain.
func keysAbsent(raw []byte, keys []string) bool {
	found := false
	return scanMembers(raw, func(name, _ []byte) {
		for _, k := range keys {
			if string(name) == k {
				found = true
			}
		}
	}) && !found
}

// scanMembers calls fn with the name and the raw value of each top-level
// member of the JSON object raw, in order, and reports whether raw was a
// well-formed object it could scan (false, maybe after some calls, when
// not: the caller then decodes raw properly). Values are checked only as
// far as needed to find their end; a name with an escape or a non-ASCII
// byte is not plain.
func scanMembers(raw []byte, fn func(name, value []byte)) bool {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return skipSpace(raw, i+1) == len(raw)
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return false
		}
		j := i + 1
		for j < len(raw) && raw[j] != '"' {
			if raw[j] == '\\' || raw[j] < 0x20 || raw[j] >= 0x80 {
				return false
			}
			j++
		}
		if j >= len(raw) {
			return false
		}
		name := raw[i+1 : j]
		i = skipSpace(raw, j+1)
		if i >= len(raw) || raw[i] != ':' {
			return false
		}
		i = skipSpace(raw, i+1)
		end, ok := skipValue(raw, i)
		if !ok {
			return false
		}
		fn(name, raw[i:end])
		i = skipSpace(raw, end)
		if i >= len(raw) {
			return false
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case '}':
			return skipSpace(raw, i+1) == len(raw)
		default:
			return false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at b[i]: a string,
// an object or array (brackets balanced outside strings), or a literal
// or number (the run up to a delimiter, which must be non-empty).
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, ok := skipString(b, i)
				if !ok {
					return 0, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return 0, false
	}
	j := i
	for j < len(b) {
		c := b[j]
		if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '{' || c == '[' || c == ':' {
			break
		}
		j++
	}
	return j, j > i
}

// skipString returns the end of the JSON string starting at b[i] (a
// quote).
func skipString(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}
