package jsonrow

import (
	"encoding/binary"
	"math"
	"unicode/utf8"
)

// The fast path decodes a record in one pass: it parses each member's value
// straight into the staged op of the field it names, without first building
// the record's tree of nodes and then walking it (the slow path, parse.go
// and Builder.members). It stages the same ops, converted by the same
// Builder.scalar, so a record it accepts lands exactly as the slow path
// would land it. It gives up on anything it does not handle the same way,
// and Append then decodes the record again with the slow path, which is
// the one that accepts or rejects it and says why: any error (syntax, type,
// value, a missing required field, an unknown field with RejectUnknown), a
// repeated member (the slow path keeps the last), and a string column given
// an object or array (RawJSONStrings). Unknown members'
// values are parsed, and so checked, by the slow path's parser.

// fastAppend stages the ops of record raw in one pass; false when the slow
// path must decode it. The caller resets the per-record state before
// either path.
func (b *Builder) fastAppend(raw []byte) bool {
	if len(raw) > math.MaxInt32 {
		return false
	}
	p := &b.p
	p.reset(raw)
	p.skipWS()
	if !b.fastObject(b.dec.root, 1) {
		return false
	}
	p.skipWS()
	return p.pos == len(p.data)
}

// fastObject stages struct plan sp from the object at the parser's
// position (its opening brace), nested depth deep.
func (b *Builder) fastObject(sp *plan, depth int) bool {
	p := &b.p
	if depth > maxDepth || p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return false
	}
	p.pos++
	p.skipWS()
	base := len(b.seen)
	for range sp.fields {
		b.seen = append(b.seen, -1)
	}
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
	} else {
		next := 0
		for {
			if p.pos >= len(p.data) || p.data[p.pos] != '"' {
				return false
			}
			ks, ke, kesc, _, ok := p.fastString()
			if !ok {
				return false
			}
			k := p.data[ks:ke]
			if kesc {
				k = p.scratch[ks:ke]
			}
			p.skipWS()
			if p.pos >= len(p.data) || p.data[p.pos] != ':' {
				return false
			}
			p.pos++
			p.skipWS()
			i, ok := next, next < len(sp.fields) && !sp.dupNames && sp.fields[next].name == string(k)
			if !ok {
				i, ok = sp.index[string(k)]
			}
			switch {
			case !ok:
				if b.dec.opts.RejectUnknown {
					return false
				}
				if _, err := p.parseValue(depth); err != nil {
					return false
				}
			case b.seen[base+i] >= 0:
				return false // repeated: the slow path keeps the last
			default:
				b.seen[base+i] = 1
				next = i + 1
				if !b.fastValue(sp.fields[i], depth) {
					return false
				}
			}
			p.skipWS()
			if p.pos >= len(p.data) {
				return false
			}
			if c := p.data[p.pos]; c == ',' {
				p.pos++
				p.skipWS()
				continue
			} else if c != '}' {
				return false
			}
			p.pos++
			break
		}
	}
	for i, f := range sp.fields {
		if b.seen[base+i] >= 0 {
			continue
		}
		if !f.nullable {
			return false
		}
		b.ops = append(b.ops, op{id: f.id, null: true})
	}
	b.seen = b.seen[:base]
	return true
}

// fastValue stages the value at the parser's position for plan f.
func (b *Builder) fastValue(f *plan, depth int) bool {
	p := &b.p
	if p.pos >= len(p.data) {
		return false
	}
	var nd jnode
	switch c := p.data[p.pos]; {
	case c == 'n':
		if !f.nullable || !p.fastLiteral("null") {
			return false
		}
		b.ops = append(b.ops, op{id: f.id, null: true})
		return true
	case c == '{':
		switch f.kind {
		case kStruct:
			b.ops = append(b.ops, op{id: f.id})
			return b.fastObject(f, depth+1)
		case kMap:
			b.ops = append(b.ops, op{id: f.id})
			return b.fastMap(f, depth+1)
		}
		return false
	case c == '[':
		if f.kind != kList {
			return false
		}
		b.ops = append(b.ops, op{id: f.id})
		return b.fastArray(f.elem, depth+1)
	case f.kind == kStruct || f.kind == kList || f.kind == kMap:
		return false
	case c == '"':
		s, e, esc, ascii, ok := p.fastString()
		if !ok {
			return false
		}
		if f.kind == kString {
			// scalar's kString case, with the UTF-8 check skipped for
			// a string the scan saw to be ASCII.
			o := op{id: f.id, off: s, end: e}
			if esc {
				o.src = srcScratch
				ascii = utf8.Valid(p.scratch[s:e])
			} else if !ascii {
				ascii = utf8.Valid(p.data[s:e])
			}
			if !ascii {
				return false
			}
			b.ops = append(b.ops, o)
			return true
		}
		nd = jnode{kind: jString, start: s, end: e, esc: esc}
	case c == 't':
		if !p.fastLiteral("true") {
			return false
		}
		nd.kind = jTrue
	case c == 'f':
		if !p.fastLiteral("false") {
			return false
		}
		nd.kind = jFalse
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.pos
		if p.scanNumber() != nil {
			return false
		}
		nd = jnode{kind: jNumber, start: int32(start), end: int32(p.pos)}
	default:
		return false
	}
	b.ops = append(b.ops, op{id: f.id})
	if b.scalar(f, &nd, &b.ops[len(b.ops)-1]) != nil {
		b.ops = b.ops[:len(b.ops)-1]
		return false
	}
	return true
}

// fastMap stages the entries of the object at the parser's position for
// map plan m, nested depth deep.
func (b *Builder) fastMap(m *plan, depth int) bool {
	p := &b.p
	if depth > maxDepth {
		return false
	}
	p.pos++ // '{'
	p.skipWS()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return true
	}
	for {
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return false
		}
		ks, ke, kesc, err := p.parseString()
		if err != nil {
			return false
		}
		ko := op{id: m.key.id, off: ks, end: ke}
		k := p.data[ks:ke]
		if kesc {
			ko.src, k = srcScratch, p.scratch[ks:ke]
		}
		if !utf8.Valid(k) {
			return false
		}
		p.skipWS()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return false
		}
		p.pos++
		p.skipWS()
		b.ops = append(b.ops, ko)
		if !b.fastValue(m.value, depth) {
			return false
		}
		p.skipWS()
		if p.pos >= len(p.data) {
			return false
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.skipWS()
		case '}':
			p.pos++
			return true
		default:
			return false
		}
	}
}

// fastArray stages the elements of the array at the parser's position.
func (b *Builder) fastArray(elem *plan, depth int) bool {
	p := &b.p
	if depth > maxDepth {
		return false
	}
	p.pos++ // '['
	p.skipWS()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return true
	}
	for {
		if !b.fastValue(elem, depth) {
			return false
		}
		p.skipWS()
		if p.pos >= len(p.data) {
			return false
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.skipWS()
		case ']':
			p.pos++
			return true
		default:
			return false
		}
	}
}

// fastLiteral consumes word (true, false, null) at the parser's position.
func (p *parser) fastLiteral(word string) bool {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return false
	}
	p.pos += len(word)
	return true
}

// Bytes of 8 at a time, for fastString's scan.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// fastString scans the string at the parser's position (its opening
// quote) as parseString does, and also reports whether its bytes are all
// ASCII (an unescaped string only; an escaped one reports false). The
// unescaped common case is scanned 8 bytes at a time. ok is false where
// parseString would fail.
func (p *parser) fastString() (start, end int32, esc, ascii, ok bool) {
	d := p.data
	i := p.pos + 1
	var high uint64
	for ; i+8 <= len(d); i += 8 {
		w := binary.LittleEndian.Uint64(d[i:])
		q := w ^ ('"' * ones)
		bs := w ^ ('\\' * ones)
		// A zero byte of q or bs, or a byte of w below 0x20, stops the
		// word scan (exact as a yes/no).
		if ((q-ones)&^q|(bs-ones)&^bs|(w-0x20*ones)&^w)&highs != 0 {
			break
		}
		high |= w
	}
	for ; i < len(d); i++ {
		c := d[i]
		if c == '"' {
			start, end = int32(p.pos+1), int32(i)
			p.pos = i + 1
			return start, end, false, high&highs == 0, true
		}
		if c == '\\' || c < 0x20 {
			break
		}
		high |= uint64(c)
	}
	if i >= len(d) || d[i] != '\\' {
		return 0, 0, false, false, false
	}
	start, end, esc, err := p.parseString()
	return start, end, esc, false, err == nil
}
