package reader

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/apache/iceberg-go"
)

// ParseFilter parses Floe's small filter language into an Iceberg
// expression:
//
//	filter    = condition { "and" condition }
//	condition = column op literal
//	op        = "=" | "!=" | "<" | "<=" | ">" | ">="
//	literal   = number | 'string' | "string" | true | false | null
//
// Columns are names or dotted paths of nested fields. Strings are converted
// to the column's type when the filter is bound to a table, so timestamps,
// dates, decimals and uuids are written as strings:
// ts >= '2026-01-01T00:00:00Z' and day = '2026-01-01' and amount > '9.99'.
// A quote inside a string is written twice. "col = null" and "col != null"
// test for nulls. An empty filter matches every row.
func ParseFilter(s string) (iceberg.BooleanExpression, error) {
	p := &filterParser{src: s}
	if err := p.lex(); err != nil {
		return nil, fmt.Errorf("parse filter %q: %w", s, err)
	}
	if len(p.toks) == 0 {
		return iceberg.AlwaysTrue{}, nil
	}
	var conds []iceberg.BooleanExpression
	for {
		c, err := p.condition()
		if err != nil {
			return nil, fmt.Errorf("parse filter %q: %w", s, err)
		}
		conds = append(conds, c)
		t, ok := p.next()
		if !ok {
			break
		}
		if t.kind != tokIdent || !strings.EqualFold(t.text, "and") {
			return nil, fmt.Errorf("parse filter %q: %w: want \"and\" at offset %d, found %q", s, ErrInvalidFilter, t.pos, t.text)
		}
	}
	if len(conds) == 1 {
		return conds[0], nil
	}
	return iceberg.NewAnd(conds[0], conds[1], conds[2:]...), nil
}

type tokKind int

const (
	tokIdent tokKind = iota
	tokOp
	tokString
	tokNumber
)

type token struct {
	kind tokKind
	text string
	pos  int
}

type filterParser struct {
	src  string
	toks []token
	i    int
}

func (p *filterParser) next() (token, bool) {
	if p.i >= len(p.toks) {
		return token{}, false
	}
	t := p.toks[p.i]
	p.i++
	return t, true
}

func isIdentRune(r rune, first bool) bool {
	if r == '_' || unicode.IsLetter(r) {
		return true
	}
	return !first && (unicode.IsDigit(r) || r == '.' || r == '$')
}

func (p *filterParser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		switch {
		case unicode.IsSpace(r):
			i += w
		case r == '\'' || r == '"':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return fmt.Errorf("%w: unterminated string at offset %d", ErrInvalidFilter, i)
				}
				if s[j] == byte(r) {
					if j+1 < len(s) && s[j+1] == byte(r) {
						b.WriteByte(byte(r))
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			p.toks = append(p.toks, token{kind: tokString, text: b.String(), pos: i})
			i = j + 1
		case strings.ContainsRune("=!<>", r):
			op := string(r)
			if i+1 < len(s) && s[i+1] == '=' {
				op += "="
			}
			if op == "!" {
				return fmt.Errorf("%w: \"!\" at offset %d: want !=", ErrInvalidFilter, i)
			}
			p.toks = append(p.toks, token{kind: tokOp, text: op, pos: i})
			i += len(op)
		case unicode.IsDigit(r) || r == '-' || r == '+' || r == '.':
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || strings.IndexByte(".eE+-_", s[j]) >= 0) {
				if (s[j] == '+' || s[j] == '-') && s[j-1] != 'e' && s[j-1] != 'E' {
					break
				}
				j++
			}
			p.toks = append(p.toks, token{kind: tokNumber, text: s[i:j], pos: i})
			i = j
		case isIdentRune(r, true):
			j := i + w
			for j < len(s) {
				r2, w2 := utf8.DecodeRuneInString(s[j:])
				if !isIdentRune(r2, false) {
					break
				}
				j += w2
			}
			p.toks = append(p.toks, token{kind: tokIdent, text: s[i:j], pos: i})
			i = j
		default:
			return fmt.Errorf("%w: unexpected %q at offset %d", ErrInvalidFilter, r, i)
		}
	}
	return nil
}

func (p *filterParser) condition() (iceberg.BooleanExpression, error) {
	col, ok := p.next()
	if !ok {
		return nil, fmt.Errorf("%w: want a column after \"and\"", ErrInvalidFilter)
	}
	if col.kind != tokIdent {
		return nil, fmt.Errorf("%w: want a column at offset %d, found %q", ErrInvalidFilter, col.pos, col.text)
	}
	op, ok := p.next()
	if !ok || op.kind != tokOp {
		if !ok {
			return nil, fmt.Errorf("%w: want an operator (= != < <= > >=) after %q", ErrInvalidFilter, col.text)
		}
		return nil, fmt.Errorf("%w: want an operator (= != < <= > >=) at offset %d, found %q", ErrInvalidFilter, op.pos, op.text)
	}
	lit, ok := p.next()
	if !ok {
		return nil, fmt.Errorf("%w: want a value after %s %s", ErrInvalidFilter, col.text, op.text)
	}
	ref := iceberg.Reference(col.text)
	if lit.kind == tokIdent && strings.EqualFold(lit.text, "null") {
		switch op.text {
		case "=":
			return iceberg.IsNull(ref), nil
		case "!=":
			return iceberg.NotNull(ref), nil
		}
		return nil, fmt.Errorf("%w: null compares only with = or != (offset %d)", ErrInvalidFilter, op.pos)
	}
	var value iceberg.Literal
	switch lit.kind {
	case tokString:
		value = iceberg.NewLiteral(lit.text)
	case tokNumber:
		text := strings.ReplaceAll(lit.text, "_", "")
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			value = iceberg.NewLiteral(n)
		} else if f, err := strconv.ParseFloat(text, 64); err == nil {
			value = iceberg.NewLiteral(f)
		} else {
			return nil, fmt.Errorf("%w: %q at offset %d is not a number", ErrInvalidFilter, lit.text, lit.pos)
		}
	case tokIdent:
		switch strings.ToLower(lit.text) {
		case "true":
			value = iceberg.NewLiteral(true)
		case "false":
			value = iceberg.NewLiteral(false)
		default:
			return nil, fmt.Errorf("%w: %q at offset %d is not a value: quote strings ('%s')", ErrInvalidFilter, lit.text, lit.pos, lit.text)
		}
	default:
		return nil, fmt.Errorf("%w: want a value at offset %d, found %q", ErrInvalidFilter, lit.pos, lit.text)
	}
	ops := map[string]iceberg.Operation{
		"=": iceberg.OpEQ, "!=": iceberg.OpNEQ, "<": iceberg.OpLT,
		"<=": iceberg.OpLTEQ, ">": iceberg.OpGT, ">=": iceberg.OpGTEQ,
	}
	o, ok := ops[op.text]
	if !ok {
		return nil, fmt.Errorf("%w: unknown operator %q at offset %d: want = != < <= > >=", ErrInvalidFilter, op.text, op.pos)
	}
	return iceberg.LiteralPredicate(o, ref, value), nil
}
