package jsonrow

import (
	"fmt"
	"math"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects in one record, so that a
// hostile record cannot exhaust the stack.
const maxDepth = 512

// jkind is the kind of a parsed JSON value.
type jkind uint8

const (
	jNull jkind = iota
	jFalse
	jTrue
	jNumber
	jString
	jObject
	jArray
)

func (k jkind) String() string {
	switch k {
	case jNull:
		return "null"
	case jFalse, jTrue:
		return "boolean"
	case jNumber:
		return "number"
	case jString:
		return "string"
	case jObject:
		return "object"
	default:
		return "array"
	}
}

// jnode is one parsed JSON value. Nodes live in a flat arena reused across
// records; children are linked through first/next indices.
type jnode struct {
	kind jkind
	// esc: a string value was unescaped into the scratch arena, and
	// start/end index it; otherwise they index the record's bytes.
	esc bool
	// keyEsc: the same for the member key of an object member.
	keyEsc bool
	// start, end: a string's contents, a number's text, or the whole text
	// of an object or array including its brackets.
	start, end int32
	// keyStart, keyEnd: the key when the node is an object member.
	keyStart, keyEnd int32
	// first child and next sibling, -1 when none.
	first, next int32
}

// parser turns one record into jnodes. Its slices are reused.
type parser struct {
	data    []byte
	pos     int
	nodes   []jnode
	scratch []byte
}

func (p *parser) reset(data []byte) {
	p.data = data
	p.pos = 0
	p.nodes = p.nodes[:0]
	p.scratch = p.scratch[:0]
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at byte %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *parser) unexpected() error {
	if p.pos >= len(p.data) {
		return p.errorf("unexpected end of input")
	}
	return p.errorf("unexpected %q", rune(p.data[p.pos]))
}

func (p *parser) skipWS() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// parseDocument parses one JSON value spanning all of data (surrounding
// whitespace allowed) and returns its node index.
func (p *parser) parseDocument(data []byte) (int32, error) {
	if len(data) > math.MaxInt32 {
		return -1, fmt.Errorf("invalid JSON: record of %d bytes is too large", len(data))
	}
	p.reset(data)
	p.skipWS()
	root, err := p.parseValue(0)
	if err != nil {
		return -1, err
	}
	p.skipWS()
	if p.pos != len(p.data) {
		return -1, p.errorf("unexpected %q after the value", rune(p.data[p.pos]))
	}
	return root, nil
}

func (p *parser) newNode(kind jkind) int32 {
	p.nodes = append(p.nodes, jnode{kind: kind, first: -1, next: -1})
	return int32(len(p.nodes) - 1)
}

// parseValue parses the value at p.pos (whitespace already skipped).
func (p *parser) parseValue(depth int) (int32, error) {
	if p.pos >= len(p.data) {
		return -1, p.unexpected()
	}
	start := p.pos
	switch c := p.data[p.pos]; c {
	case '{':
		return p.parseObject(depth + 1)
	case '[':
		return p.parseArray(depth + 1)
	case '"':
		s, e, esc, err := p.parseString()
		if err != nil {
			return -1, err
		}
		n := p.newNode(jString)
		p.nodes[n].start, p.nodes[n].end, p.nodes[n].esc = s, e, esc
		return n, nil
	case 't':
		return p.literal("true", jTrue)
	case 'f':
		return p.literal("false", jFalse)
	case 'n':
		return p.literal("null", jNull)
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			if err := p.scanNumber(); err != nil {
				return -1, err
			}
			n := p.newNode(jNumber)
			p.nodes[n].start, p.nodes[n].end = int32(start), int32(p.pos)
			return n, nil
		}
		return -1, p.unexpected()
	}
}

func (p *parser) literal(word string, kind jkind) (int32, error) {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return -1, p.errorf("invalid literal, want %s", word)
	}
	n := p.newNode(kind)
	p.nodes[n].start, p.nodes[n].end = int32(p.pos), int32(p.pos+len(word))
	p.pos += len(word)
	return n, nil
}

// scanNumber checks JSON number syntax:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *parser) scanNumber() error {
	d := p.data
	i := p.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		p.pos = i
		return p.errorf("invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			p.pos = i
			return p.errorf("invalid number: no digits after the decimal point")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			p.pos = i
			return p.errorf("invalid number: no digits in the exponent")
		}
	}
	p.pos = i
	return nil
}

// parseString parses the string at p.pos (on its opening quote) and returns
// the span of its unescaped contents: in data when it has no escapes, in the
// scratch arena (esc) otherwise.
func (p *parser) parseString() (start, end int32, esc bool, err error) {
	d := p.data
	i := p.pos + 1
	for i < len(d) {
		c := d[i]
		if c == '"' {
			start, end = int32(p.pos+1), int32(i)
			p.pos = i + 1
			return start, end, false, nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			p.pos = i
			return 0, 0, false, p.errorf("control character in string")
		}
		i++
	}
	if i >= len(d) {
		p.pos = i
		return 0, 0, false, p.errorf("unterminated string")
	}
	// Slow path: unescape into scratch.
	s := len(p.scratch)
	p.scratch = append(p.scratch, d[p.pos+1:i]...)
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return int32(s), int32(len(p.scratch)), true, nil
		case c < 0x20:
			p.pos = i
			return 0, 0, false, p.errorf("control character in string")
		case c != '\\':
			p.scratch = append(p.scratch, c)
			i++
			continue
		}
		i++
		if i >= len(d) {
			break
		}
		switch e := d[i]; e {
		case '"', '\\', '/':
			p.scratch = append(p.scratch, e)
			i++
		case 'b':
			p.scratch = append(p.scratch, '\b')
			i++
		case 'f':
			p.scratch = append(p.scratch, '\f')
			i++
		case 'n':
			p.scratch = append(p.scratch, '\n')
			i++
		case 'r':
			p.scratch = append(p.scratch, '\r')
			i++
		case 't':
			p.scratch = append(p.scratch, '\t')
			i++
		case 'u':
			r, ok := hex4(d, i+1)
			if !ok {
				p.pos = i
				return 0, 0, false, p.errorf(`invalid \u escape`)
			}
			i += 5
			if r >= 0xD800 && r < 0xDC00 {
				// A high surrogate must be followed by a low one.
				if i+1 < len(d) && d[i] == '\\' && d[i+1] == 'u' {
					if r2, ok := hex4(d, i+2); ok && r2 >= 0xDC00 && r2 < 0xE000 {
						r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			} else if r >= 0xDC00 && r < 0xE000 {
				r = utf8.RuneError
			}
			p.scratch = utf8.AppendRune(p.scratch, r)
		default:
			p.pos = i
			return 0, 0, false, p.errorf("invalid escape %q", rune(e))
		}
	}
	p.pos = i
	return 0, 0, false, p.errorf("unterminated string")
}

func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func (p *parser) parseObject(depth int) (int32, error) {
	n, done, err := p.openContainer(jObject, '}', depth)
	if err != nil || done {
		return n, err
	}
	last := int32(-1)
	for {
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return -1, p.unexpected()
		}
		ks, ke, kesc, err := p.parseString()
		if err != nil {
			return -1, err
		}
		p.skipWS()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return -1, p.unexpected()
		}
		p.pos++
		p.skipWS()
		v, err := p.parseValue(depth)
		if err != nil {
			return -1, err
		}
		p.nodes[v].keyStart, p.nodes[v].keyEnd, p.nodes[v].keyEsc = ks, ke, kesc
		done, err := p.addChild(n, &last, v, '}')
		if err != nil {
			return -1, err
		}
		if done {
			return n, nil
		}
	}
}

func (p *parser) parseArray(depth int) (int32, error) {
	n, done, err := p.openContainer(jArray, ']', depth)
	if err != nil || done {
		return n, err
	}
	last := int32(-1)
	for {
		v, err := p.parseValue(depth)
		if err != nil {
			return -1, err
		}
		done, err := p.addChild(n, &last, v, ']')
		if err != nil {
			return -1, err
		}
		if done {
			return n, nil
		}
	}
}

// openContainer starts an object or array node at the opening bracket;
// done when it is empty (the closing bracket consumed).
func (p *parser) openContainer(kind jkind, closing byte, depth int) (n int32, done bool, err error) {
	if depth > maxDepth {
		return -1, false, p.errorf("nested deeper than %d", maxDepth)
	}
	n = p.newNode(kind)
	p.nodes[n].start = int32(p.pos)
	p.pos++ // '{' or '['
	p.skipWS()
	if p.pos < len(p.data) && p.data[p.pos] == closing {
		p.pos++
		p.nodes[n].end = int32(p.pos)
		return n, true, nil
	}
	return n, false, nil
}

// addChild links v after *last as a child of container n and consumes the
// separator that follows: a comma (more to come) or the closing bracket
// (done, and n's end is set).
func (p *parser) addChild(n int32, last *int32, v int32, closing byte) (done bool, err error) {
	if *last < 0 {
		p.nodes[n].first = v
	} else {
		p.nodes[*last].next = v
	}
	*last = v
	p.skipWS()
	if p.pos >= len(p.data) {
		return false, p.unexpected()
	}
	switch p.data[p.pos] {
	case ',':
		p.pos++
		p.skipWS()
		return false, nil
	case closing:
		p.pos++
		p.nodes[n].end = int32(p.pos)
		return true, nil
	}
	return false, p.unexpected()
}

// text returns a node's value bytes (string contents or number text).
func (p *parser) text(n *jnode) []byte {
	if n.esc {
		return p.scratch[n.start:n.end]
	}
	return p.data[n.start:n.end]
}

// key returns an object member's key.
func (p *parser) key(n *jnode) []byte {
	if n.keyEsc {
		return p.scratch[n.keyStart:n.keyEnd]
	}
	return p.data[n.keyStart:n.keyEnd]
}
