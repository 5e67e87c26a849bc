package query

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrSyntax marks a statement Parse cannot read or that uses SQL outside
// the dialect; its message says where.
var ErrSyntax = errors.New("sql")

// ErrUnsupported marks SQL that DuckDB accepts but a spec does not
// (ORDER BY, LIMIT, UNION, subqueries, …).
var ErrUnsupported = errors.New("not supported in a spec")

type parser struct {
	toks []token
	i    int
	// windows: ParseAggregate's clauses (unnest, QUALIFY) are read;
	// inQualify: a window function may appear (in QUALIFY).
	windows, inQualify bool
}

// ParseExpr parses one expression, e.g. a YAML spec's filter.
func ParseExpr(text string) (Expr, error) {
	toks, err := lex(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	p := &parser{toks: toks}
	e, err := p.expr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errAt(t, "unexpected %s after the expression", describe(t))
	}
	return e, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) peekN(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// isKw reports whether t is the keyword kw (upper case).
func isKw(t token, kw string) bool { return t.kind == tIdent && strings.EqualFold(t.text, kw) }
func isOp(t token, op string) bool { return t.kind == tOp && t.text == op }

func (p *parser) acceptKw(kw string) bool {
	if isKw(p.peek(), kw) {
		p.i++
		return true
	}
	return false
}

func (p *parser) acceptOp(op string) bool {
	if isOp(p.peek(), op) {
		p.i++
		return true
	}
	return false
}

func (p *parser) expectKw(kw string) error {
	if !p.acceptKw(kw) {
		return p.errAt(p.peek(), "expected %s, found %s", kw, describe(p.peek()))
	}
	return nil
}

func (p *parser) expectOp(op string) error {
	if !p.acceptOp(op) {
		return p.errAt(p.peek(), "expected %q, found %s", op, describe(p.peek()))
	}
	return nil
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "the end of the statement"
	case tString:
		return quoteString(t.text)
	case tQIdent:
		return `"` + t.text + `"`
	}
	return strconv.Quote(t.text)
}

func (p *parser) errAt(t token, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrSyntax, fmt.Sprintf(format, args...), t.pos)
}

func unsupported(what string, t token) error {
	return fmt.Errorf("%s is %w: %s", what, ErrUnsupported, t.pos)
}

// Expressions, loosest binding first: OR, AND, NOT, comparison and
// IS/IN/BETWEEN/LIKE, "other" operators (|| -> ->>), + -, * / %, unary
// minus, ::, primary. This is PostgreSQL's (and DuckDB's) order.
func (p *parser) expr() (Expr, error) { return p.or() }

func (p *parser) or() (Expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if !isKw(t, "OR") {
			return l, nil
		}
		p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &Binary{Pos: t.pos, Op: "OR", L: l, R: r}
	}
}

func (p *parser) and() (Expr, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if !isKw(t, "AND") {
			return l, nil
		}
		p.next()
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		l = &Binary{Pos: t.pos, Op: "AND", L: l, R: r}
	}
}

func (p *parser) not() (Expr, error) {
	if t := p.peek(); isKw(t, "NOT") {
		p.next()
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		return &Unary{Pos: t.pos, Op: "NOT", X: x}, nil
	}
	return p.comparison()
}

func (p *parser) comparison() (Expr, error) {
	l, err := p.other()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		switch {
		case isKw(t, "IS"):
			p.next()
			not := p.acceptKw("NOT")
			if !p.acceptKw("NULL") {
				return nil, unsupported("IS other than IS [NOT] NULL", p.peek())
			}
			l = &IsNull{Pos: t.pos, X: l, Not: not}
			continue
		case isKw(t, "NOT") && (isKw(p.peekN(1), "IN") || isKw(p.peekN(1), "BETWEEN") || isKw(p.peekN(1), "LIKE") || isKw(p.peekN(1), "ILIKE")):
			p.next()
			if l, err = p.postfixPredicate(l, true); err != nil {
				return nil, err
			}
			continue
		case isKw(t, "IN"), isKw(t, "BETWEEN"), isKw(t, "LIKE"), isKw(t, "ILIKE"):
			if l, err = p.postfixPredicate(l, false); err != nil {
				return nil, err
			}
			continue
		case t.kind == tOp && (t.text == "=" || t.text == "==" || t.text == "<>" || t.text == "!=" || t.text == "<" || t.text == "<=" || t.text == ">" || t.text == ">="):
			p.next()
			r, err := p.other()
			if err != nil {
				return nil, err
			}
			op := t.text
			switch op {
			case "==":
				op = "="
			case "!=":
				op = "<>"
			}
			l = &Binary{Pos: t.pos, Op: op, L: l, R: r}
			continue
		}
		return l, nil
	}
}

func (p *parser) postfixPredicate(l Expr, not bool) (Expr, error) {
	t := p.next()
	switch {
	case isKw(t, "IN"):
		if err := p.expectOp("("); err != nil {
			return nil, err
		}
		if u := p.peek(); isKw(u, "SELECT") {
			return nil, unsupported("a subquery", u)
		}
		var list []Expr
		for {
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			list = append(list, e)
			if !p.acceptOp(",") {
				break
			}
		}
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
		return &In{Pos: t.pos, X: l, List: list, Not: not}, nil
	case isKw(t, "BETWEEN"):
		p.acceptKw("SYMMETRIC")
		lo, err := p.other()
		if err != nil {
			return nil, err
		}
		if err := p.expectKw("AND"); err != nil {
			return nil, err
		}
		hi, err := p.other()
		if err != nil {
			return nil, err
		}
		return &Between{Pos: t.pos, X: l, Lo: lo, Hi: hi, Not: not}, nil
	default: // LIKE, ILIKE
		pat, err := p.other()
		if err != nil {
			return nil, err
		}
		if u := p.peek(); isKw(u, "ESCAPE") {
			return nil, unsupported("LIKE … ESCAPE", u)
		}
		return &Like{Pos: t.pos, X: l, Pattern: pat, Not: not, Fold: isKw(t, "ILIKE")}, nil
	}
}

// other parses the operators PostgreSQL calls "other": ||, -> and ->>.
func (p *parser) other() (Expr, error) {
	l, err := p.additive()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != tOp || t.text != "||" && t.text != "->" && t.text != "->>" {
			return l, nil
		}
		p.next()
		r, err := p.additive()
		if err != nil {
			return nil, err
		}
		l = &Binary{Pos: t.pos, Op: t.text, L: l, R: r}
	}
}

func (p *parser) additive() (Expr, error) {
	l, err := p.multiplicative()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != tOp || t.text != "+" && t.text != "-" {
			return l, nil
		}
		p.next()
		r, err := p.multiplicative()
		if err != nil {
			return nil, err
		}
		l = &Binary{Pos: t.pos, Op: t.text, L: l, R: r}
	}
}

func (p *parser) multiplicative() (Expr, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != tOp || t.text != "*" && t.text != "/" && t.text != "%" {
			return l, nil
		}
		p.next()
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &Binary{Pos: t.pos, Op: t.text, L: l, R: r}
	}
}

func (p *parser) unary() (Expr, error) {
	t := p.peek()
	if isOp(t, "-") || isOp(t, "+") {
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		if t.text == "+" {
			return x, nil
		}
		if l, ok := x.(*Literal); ok && (l.Kind == LitInt || l.Kind == LitFloat) && !strings.HasPrefix(l.Text, "-") {
			return &Literal{Pos: t.pos, Kind: l.Kind, Text: "-" + l.Text}, nil
		}
		return &Unary{Pos: t.pos, Op: "-", X: x}, nil
	}
	return p.postfixCast()
}

func (p *parser) postfixCast() (Expr, error) {
	x, err := p.primary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if isOp(t, "[") {
			return nil, unsupported("subscripts", t)
		}
		if !isOp(t, "::") {
			return x, nil
		}
		p.next()
		ty, err := p.typeName()
		if err != nil {
			return nil, err
		}
		x = &Cast{Pos: t.pos, X: x, Type: ty}
	}
}

func (p *parser) primary() (Expr, error) {
	t := p.peek()
	switch t.kind {
	case tNumber:
		p.next()
		if strings.ContainsAny(t.text, ".eE") {
			if _, err := strconv.ParseFloat(t.text, 64); err != nil {
				return nil, p.errAt(t, "bad number %s", t.text)
			}
			return &Literal{Pos: t.pos, Kind: LitFloat, Text: t.text}, nil
		}
		return &Literal{Pos: t.pos, Kind: LitInt, Text: t.text}, nil
	case tString:
		p.next()
		return &Literal{Pos: t.pos, Kind: LitString, Text: t.text}, nil
	case tQIdent:
		return p.columnRef()
	case tOp:
		if t.text == "(" {
			p.next()
			if u := p.peek(); isKw(u, "SELECT") {
				return nil, unsupported("a subquery", u)
			}
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			if err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return e, nil
		}
		if t.text == "?" {
			return nil, unsupported("a parameter", t)
		}
		return nil, p.errAt(t, "unexpected %s", describe(t))
	case tEOF:
		return nil, p.errAt(t, "unexpected end of the statement")
	}
	up := strings.ToUpper(t.text)
	switch up {
	case "NULL":
		p.next()
		return &Literal{Pos: t.pos, Kind: LitNull}, nil
	case "TRUE", "FALSE":
		p.next()
		return &Literal{Pos: t.pos, Kind: LitBool, Text: strings.ToLower(up)}, nil
	case "CASE":
		return p.caseExpr()
	case "CAST":
		p.next()
		if err := p.expectOp("("); err != nil {
			return nil, err
		}
		x, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expectKw("AS"); err != nil {
			return nil, err
		}
		ty, err := p.typeName()
		if err != nil {
			return nil, err
		}
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
		return &Cast{Pos: t.pos, X: x, Type: ty}, nil
	case "INTERVAL":
		return p.interval()
	case "DATE", "TIMESTAMP", "TIMESTAMPTZ":
		if u := p.peekN(1); u.kind == tString { // DATE '2024-01-01'
			p.i += 2
			ty, _ := typeAliases[up]
			return &Cast{Pos: t.pos, X: &Literal{Pos: u.pos, Kind: LitString, Text: u.text}, Type: TypeName{Name: ty}}, nil
		}
	case "EXISTS":
		return nil, unsupported("EXISTS", t)
	}
	if keywords[up] {
		return nil, p.errAt(t, "unexpected %s", describe(t))
	}
	if isOp(p.peekN(1), "(") {
		return p.call()
	}
	return p.columnRef()
}

func (p *parser) columnRef() (Expr, error) {
	n, t, err := p.name()
	if err != nil {
		return nil, err
	}
	if p.acceptOp(".") {
		m, _, err := p.name()
		if err != nil {
			return nil, err
		}
		if u := p.peek(); isOp(u, ".") {
			return nil, unsupported("a column name with more than one qualifier", u)
		}
		return &Column{Pos: t.pos, Qualifier: n, Name: m}, nil
	}
	return &Column{Pos: t.pos, Name: n}, nil
}

func (p *parser) call() (Expr, error) {
	t := p.next()
	p.next() // (
	c := &Call{Pos: t.pos, Name: strings.ToLower(t.text)}
	if p.acceptOp("*") {
		c.Star = true
	} else if !isOp(p.peek(), ")") {
		if p.acceptKw("DISTINCT") {
			c.Distinct = true
		}
		for {
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			c.Args = append(c.Args, e)
			if !p.acceptOp(",") {
				break
			}
		}
	}
	if u := p.peek(); isKw(u, "ORDER") {
		return nil, unsupported("ORDER BY in a function call", u)
	}
	if err := p.expectOp(")"); err != nil {
		return nil, err
	}
	if u := p.peek(); isKw(u, "OVER") {
		if !p.inQualify {
			return nil, unsupported("a window function (OVER)", u)
		}
		p.next()
		return p.over(c)
	}
	if u := p.peek(); isKw(u, "FILTER") && isOp(p.peekN(1), "(") {
		return nil, unsupported("FILTER (WHERE …)", u)
	}
	return c, nil
}

func (p *parser) caseExpr() (Expr, error) {
	t := p.next()
	c := &Case{Pos: t.pos}
	if !isKw(p.peek(), "WHEN") {
		op, err := p.expr()
		if err != nil {
			return nil, err
		}
		c.Operand = op
	}
	for p.acceptKw("WHEN") {
		cond, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expectKw("THEN"); err != nil {
			return nil, err
		}
		then, err := p.expr()
		if err != nil {
			return nil, err
		}
		c.Whens = append(c.Whens, When{cond, then})
	}
	if len(c.Whens) == 0 {
		return nil, p.errAt(p.peek(), "CASE needs at least one WHEN")
	}
	if p.acceptKw("ELSE") {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		c.Else = e
	}
	if err := p.expectKw("END"); err != nil {
		return nil, err
	}
	return c, nil
}
