package query

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/scalar"
)

// jsonFn is json_extract_string(s, path) (and s ->> path) when asString,
// else json_extract(s, path) (s -> path): the value at path of the JSON
// text s. json_extract_string gives a string value unquoted and any
// other value as its JSON text; json_extract gives the JSON text. A
// missing key, a JSON null and text that is not JSON give NULL (DuckDB
// raises an error for text that is not JSON). The path is '$.a.b[0]'
// (JSONPath), '/a/b/0' (JSON pointer), a plain key 'a', or an integer
// index.
func jsonFn(asString bool) funcBinder {
	return func(b *binder, x *Call, args []*node) (*node, error) {
		if err := arity(x, args, 2, 2); err != nil {
			return nil, err
		}
		s, err := b.stringArg(x, 0, args[0])
		if err != nil {
			return nil, err
		}
		var path []jsonStep
		switch k := args[1].konst.(type) {
		case *scalar.String:
			if path, err = parseJSONPath(string(k.Data())); err != nil {
				return nil, typeErr(x.Args[1], "%v", err)
			}
		case *scalar.Int64:
			path = []jsonStep{{index: int(k.Value), isIndex: true}}
		default:
			return nil, typeErr(x.Args[1], "the path of %s must be a string constant such as '$.key'", x.Name)
		}
		return &node{typ: typString, eval: func(c *evalCtx) (compute.Datum, error) {
			ss, as, err := evalStrings(c, []*node{s})
			if err != nil {
				return nil, err
			}
			defer releaseAll(as)
			return buildString(c, func(i int) (string, bool) {
				if ss[0].IsNull(i) {
					return "", false
				}
				return jsonExtract(ss[0].Value(i), path, asString)
			})
		}}, nil
	}
}

type jsonStep struct {
	key     string
	index   int
	isIndex bool
}

func parseJSONPath(p string) ([]jsonStep, error) {
	var steps []jsonStep
	switch {
	case strings.HasPrefix(p, "$"):
		rest := p[1:]
		for rest != "" {
			switch rest[0] {
			case '.':
				rest = rest[1:]
				if strings.HasPrefix(rest, `"`) {
					end := strings.IndexByte(rest[1:], '"')
					if end < 0 {
						return nil, fmt.Errorf("JSON path %q: unterminated quoted key", p)
					}
					steps = append(steps, jsonStep{key: rest[1 : end+1]})
					rest = rest[end+2:]
					continue
				}
				end := strings.IndexAny(rest, ".[")
				if end < 0 {
					end = len(rest)
				}
				if end == 0 {
					return nil, fmt.Errorf("JSON path %q: empty key", p)
				}
				steps = append(steps, jsonStep{key: rest[:end]})
				rest = rest[end:]
			case '[':
				end := strings.IndexByte(rest, ']')
				if end < 0 {
					return nil, fmt.Errorf("JSON path %q: unterminated [", p)
				}
				n, err := strconv.Atoi(rest[1:end])
				if err != nil || n < 0 {
					return nil, fmt.Errorf("JSON path %q: want an array index, found [%s]", p, rest[1:end])
				}
				steps = append(steps, jsonStep{index: n, isIndex: true})
				rest = rest[end+1:]
			default:
				return nil, fmt.Errorf("JSON path %q: want . or [ at %q", p, rest)
			}
		}
	case strings.HasPrefix(p, "/"):
		for _, part := range strings.Split(p[1:], "/") {
			part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
			if n, err := strconv.Atoi(part); err == nil && n >= 0 {
				steps = append(steps, jsonStep{key: part, index: n, isIndex: true})
			} else {
				steps = append(steps, jsonStep{key: part})
			}
		}
	default:
		steps = append(steps, jsonStep{key: p})
	}
	return steps, nil
}

// jsonExtract finds path in the JSON text doc without decoding the rest.
func jsonExtract(doc string, path []jsonStep, asString bool) (string, bool) {
	v := strings.TrimSpace(doc)
	for _, st := range path {
		var ok bool
		if v, ok = jsonChild(v, st); !ok {
			return "", false
		}
	}
	if v == "" || v == "null" {
		return "", false
	}
	if v[0] == '"' {
		if !asString {
			return v, true
		}
		if !strings.ContainsRune(v, '\\') {
			return v[1 : len(v)-1], true
		}
		var s string
		if err := json.Unmarshal([]byte(v), &s); err != nil {
			return "", false
		}
		return s, true
	}
	if v[0] == '{' || v[0] == '[' {
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(v)); err != nil {
			return "", false
		}
		return buf.String(), true
	}
	return v, true
}

// jsonChild returns the text of the member (or element) st of the JSON
// object (array) v.
func jsonChild(v string, st jsonStep) (string, bool) {
	if v == "" {
		return "", false
	}
	open, close := byte('{'), byte('}')
	if v[0] == '[' {
		if !st.isIndex {
			return "", false
		}
		open, close = '[', ']'
	} else if v[0] != '{' {
		return "", false
	}
	i := skipSpace(v, 1)
	if i < len(v) && v[i] == close {
		return "", false
	}
	for n := 0; i < len(v); n++ {
		var key string
		if open == '{' {
			end, ok := skipValue(v, i)
			if !ok || v[i] != '"' {
				return "", false
			}
			key = v[i+1 : end-1]
			if strings.ContainsRune(key, '\\') {
				if err := json.Unmarshal([]byte(v[i:end]), &key); err != nil {
					return "", false
				}
			}
			i = skipSpace(v, end)
			if i >= len(v) || v[i] != ':' {
				return "", false
			}
			i = skipSpace(v, i+1)
		}
		end, ok := skipValue(v, i)
		if !ok {
			return "", false
		}
		if open == '{' && key == st.key || open == '[' && n == st.index {
			return v[i:end], true
		}
		i = skipSpace(v, end)
		if i >= len(v) || v[i] != ',' {
			return "", false
		}
		i = skipSpace(v, i+1)
	}
	return "", false
}

func skipSpace(v string, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at i.
func skipValue(v string, i int) (int, bool) {
	if i >= len(v) {
		return 0, false
	}
	switch v[i] {
	case '"':
		for j := i + 1; j < len(v); j++ {
			switch v[j] {
			case '\\':
				j++
			case '"':
				return j + 1, true
			}
		}
		return 0, false
	case '{', '[':
		depth := 0
		for j := i; j < len(v); j++ {
			switch v[j] {
			case '"':
				end, ok := skipValue(v, j)
				if !ok {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	}
	j := i
	for j < len(v) && !strings.ContainsRune(",}] \t\r\n", rune(v[j])) {
		j++
	}
	return j, j > i
}
