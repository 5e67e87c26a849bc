package query

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF    tokKind = iota
	tIdent          // unquoted name or keyword; text as written
	tQIdent         // "quoted name"
	tString         // 'string'
	tNumber
	tOp // punctuation and operators
)

type token struct {
	kind tokKind
	text string
	pos  Pos
}

// keywords are the reserved words of the dialect: they are never taken
// as names unless quoted.
var keywords = map[string]bool{
	"SELECT": true, "FROM": true, "WHERE": true, "GROUP": true, "BY": true, "HAVING": true,
	"AS": true, "AND": true, "OR": true, "NOT": true, "IN": true, "BETWEEN": true, "LIKE": true,
	"ILIKE": true, "IS": true, "NULL": true, "TRUE": true, "FALSE": true, "CASE": true, "WHEN": true,
	"THEN": true, "ELSE": true, "END": true, "CAST": true, "INTERVAL": true, "LEFT": true,
	"RIGHT": true, "FULL": true, "INNER": true, "OUTER": true, "CROSS": true, "JOIN": true,
	"ON": true, "USING": true, "DISTINCT": true, "ORDER": true, "LIMIT": true, "OFFSET": true,
	"UNION": true, "INTERSECT": true, "EXCEPT": true, "WITH": true, "WINDOW": true,
	"QUALIFY": true, "OVER": true, "ALL": true, "NATURAL": true,
}

// lex splits text into tokens.
func lex(text string) ([]token, error) {
	var toks []token
	line, col := 1, 1
	i := 0
	adv := func(n int) {
		for _, r := range text[i : i+n] {
			if r == '\n' {
				line++
				col = 1
			} else {
				col++
			}
		}
		i += n
	}
	for i < len(text) {
		c := text[i]
		p := Pos{line, col}
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			adv(1)
		case c == '-' && strings.HasPrefix(text[i:], "--"):
			n := strings.IndexByte(text[i:], '\n')
			if n < 0 {
				n = len(text) - i
			}
			adv(n)
		case c == '/' && strings.HasPrefix(text[i:], "/*"):
			n := strings.Index(text[i+2:], "*/")
			if n < 0 {
				return nil, fmt.Errorf("unterminated comment: %s", p)
			}
			adv(n + 4)
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(text) {
					return nil, fmt.Errorf("unterminated string: %s", p)
				}
				if text[j] == '\'' {
					if j+1 < len(text) && text[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(text[j])
				j++
			}
			toks = append(toks, token{tString, b.String(), p})
			adv(j + 1 - i)
		case c == '"':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(text) {
					return nil, fmt.Errorf("unterminated quoted name: %s", p)
				}
				if text[j] == '"' {
					if j+1 < len(text) && text[j+1] == '"' {
						b.WriteByte('"')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(text[j])
				j++
			}
			toks = append(toks, token{tQIdent, b.String(), p})
			adv(j + 1 - i)
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(text) && text[i+1] >= '0' && text[i+1] <= '9':
			j := i
			for j < len(text) && (text[j] >= '0' && text[j] <= '9' || text[j] == '.') {
				j++
			}
			if j < len(text) && (text[j] == 'e' || text[j] == 'E') {
				k := j + 1
				if k < len(text) && (text[k] == '+' || text[k] == '-') {
					k++
				}
				if k < len(text) && text[k] >= '0' && text[k] <= '9' {
					j = k
					for j < len(text) && text[j] >= '0' && text[j] <= '9' {
						j++
					}
				}
			}
			toks = append(toks, token{tNumber, text[i:j], p})
			adv(j - i)
		case c == '_' || c < utf8.RuneSelf && (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= utf8.RuneSelf:
			j := i
			for j < len(text) {
				r, n := utf8.DecodeRuneInString(text[j:])
				if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '$' {
					break
				}
				j += n
			}
			if j == i {
				return nil, fmt.Errorf("unexpected character %q: %s", text[i:i+1], p)
			}
			toks = append(toks, token{tIdent, text[i:j], p})
			adv(j - i)
		default:
			op := ""
			for _, o := range []string{"->>", "->", "::", "<>", "!=", "<=", ">=", "||", "==", "(", ")", ",", ".", "+", "-", "*", "/", "%", "=", "<", ">", ";", "[", "]", "{", "}", "?", ":", "^", "&", "|", "~", "!"} {
				if strings.HasPrefix(text[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("unexpected character %q: %s", text[i:i+1], p)
			}
			toks = append(toks, token{tOp, op, p})
			adv(len(op))
		}
	}
	toks = append(toks, token{tEOF, "", Pos{line, col}})
	return toks, nil
}
