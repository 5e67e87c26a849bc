package query

import (
	"fmt"
	"strings"
)

// Parse parses one SELECT statement: FROM one table [alias], zero or more
// LEFT JOIN table [alias] ON <conjunction of equalities>, WHERE, the
// select list (expressions with optional AS names; * and alias.*), GROUP
// BY, HAVING. A trailing semicolon is allowed. Errors wrap ErrSyntax or
// ErrUnsupported and say where: "ORDER BY is not supported in a spec:
// line 1, column 40".
func Parse(text string) (*Select, error) {
	toks, err := lex(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	p := &parser{toks: toks}
	s, err := p.selectStmt()
	if err != nil {
		return nil, err
	}
	s.Text = text
	return s, nil
}

// stopClause reports a clause keyword that no spec supports.
func (p *parser) stopClause() error {
	t := p.peek()
	switch {
	case isKw(t, "ORDER") && isKw(p.peekN(1), "BY"):
		return unsupported("ORDER BY", t)
	case isKw(t, "LIMIT"), isKw(t, "OFFSET"), isKw(t, "QUALIFY"), isKw(t, "WINDOW"):
		return unsupported(strings.ToUpper(t.text), t)
	case isKw(t, "UNION"), isKw(t, "INTERSECT"), isKw(t, "EXCEPT"):
		return unsupported(strings.ToUpper(t.text), t)
	}
	return nil
}

func (p *parser) selectStmt() (*Select, error) {
	if t := p.peek(); isKw(t, "WITH") {
		return nil, unsupported("WITH", t)
	}
	if err := p.expectKw("SELECT"); err != nil {
		return nil, err
	}
	if t := p.peek(); isKw(t, "DISTINCT") {
		return nil, unsupported("SELECT DISTINCT", t)
	}
	p.acceptKw("ALL")
	s := &Select{}
	for {
		it, err := p.item()
		if err != nil {
			return nil, err
		}
		s.Items = append(s.Items, it)
		if !p.acceptOp(",") {
			break
		}
	}
	if err := p.expectKw("FROM"); err != nil {
		return nil, err
	}
	var err error
	if s.From, err = p.tableRef(); err != nil {
		return nil, err
	}
	if t := p.peek(); p.windows && isOp(t, ",") && isKw(p.peekN(1), "unnest") && isOp(p.peekN(2), "(") {
		p.next()
		if s.Unnest, err = p.unnest(); err != nil {
			return nil, err
		}
	}
	for {
		t := p.peek()
		if isKw(t, "LEFT") {
			p.next()
			p.acceptKw("OUTER")
			if err := p.expectKw("JOIN"); err != nil {
				return nil, err
			}
			j := Join{}
			if j.Table, err = p.tableRef(); err != nil {
				return nil, err
			}
			if err := p.expectKw("ON"); err != nil {
				return nil, err
			}
			onTok := p.peek()
			if j.On, err = p.expr(); err != nil {
				return nil, err
			}
			if j.Keys, err = joinKeys(j.On, j.Table.Alias, onTok); err != nil {
				return nil, err
			}
			s.Joins = append(s.Joins, j)
			continue
		}
		if isKw(t, "JOIN") || isKw(t, "INNER") || isKw(t, "RIGHT") || isKw(t, "FULL") || isKw(t, "CROSS") || isKw(t, "NATURAL") || isOp(t, ",") {
			return nil, unsupported("a join other than LEFT JOIN", t)
		}
		break
	}
	if p.acceptKw("WHERE") {
		if s.Where, err = p.expr(); err != nil {
			return nil, err
		}
	}
	if t := p.peek(); isKw(t, "GROUP") {
		p.next()
		if err := p.expectKw("BY"); err != nil {
			return nil, err
		}
		if t := p.peek(); isKw(t, "ALL") || isKw(t, "ROLLUP") || isKw(t, "CUBE") || isKw(t, "GROUPING") {
			return nil, unsupported("GROUP BY "+strings.ToUpper(t.text), t)
		}
		for {
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			s.GroupBy = append(s.GroupBy, e)
			if !p.acceptOp(",") {
				break
			}
		}
	}
	if p.acceptKw("HAVING") {
		if s.Having, err = p.expr(); err != nil {
			return nil, err
		}
	}
	if p.windows && p.acceptKw("QUALIFY") {
		p.inQualify = true
		s.Qualify, err = p.expr()
		p.inQualify = false
		if err != nil {
			return nil, err
		}
	}
	if err := p.stopClause(); err != nil {
		return nil, err
	}
	p.acceptOp(";")
	if t := p.peek(); t.kind != tEOF {
		if isOp(t, ";") || isKw(t, "SELECT") {
			return nil, unsupported("more than one statement", t)
		}
		return nil, p.errAt(t, "unexpected %s", describe(t))
	}
	return s, nil
}

// joinKeys splits a join condition into its equalities, each with one
// side a column of the joined table (alias) and the other not referring
// to it.
func joinKeys(on Expr, alias string, at token) ([]JoinKey, error) {
	var keys []JoinKey
	var walk func(e Expr) error
	walk = func(e Expr) error {
		b, ok := e.(*Binary)
		if ok && b.Op == "AND" {
			if err := walk(b.L); err != nil {
				return err
			}
			return walk(b.R)
		}
		if ok && b.Op == "=" {
			if c, ok := b.R.(*Column); ok && strings.EqualFold(c.Qualifier, alias) && !refersTo(b.L, alias) {
				keys = append(keys, JoinKey{Left: b.L, Right: c.Name})
				return nil
			}
			if c, ok := b.L.(*Column); ok && strings.EqualFold(c.Qualifier, alias) && !refersTo(b.R, alias) {
				keys = append(keys, JoinKey{Left: b.R, Right: c.Name})
				return nil
			}
		}
		return fmt.Errorf("%w: a join condition must be equalities between a column of %s (written %s.column) and an expression over the tables before it, joined by AND; found %s: %s",
			ErrUnsupported, alias, alias, e, e.pos())
	}
	if err := walk(on); err != nil {
		return nil, err
	}
	_ = at
	return keys, nil
}

func refersTo(e Expr, alias string) bool {
	found := false
	Walk(e, func(x Expr) bool {
		if c, ok := x.(*Column); ok && strings.EqualFold(c.Qualifier, alias) {
			found = true
		}
		return !found
	})
	return found
}

func (p *parser) name() (string, token, error) {
	t := p.peek()
	switch {
	case t.kind == tQIdent:
		p.next()
		return t.text, t, nil
	case t.kind == tIdent && !keywords[strings.ToUpper(t.text)]:
		p.next()
		return t.text, t, nil
	}
	return "", t, p.errAt(t, "expected a name, found %s", describe(t))
}

func (p *parser) tableRef() (TableRef, error) {
	t := p.peek()
	if isOp(t, "(") {
		return TableRef{}, unsupported("a subquery", t)
	}
	if t.kind == tIdent && isOp(p.peekN(1), "(") {
		return TableRef{}, unsupported("a table function ("+t.text+")", t)
	}
	var parts []string
	for {
		n, _, err := p.name()
		if err != nil {
			return TableRef{}, err
		}
		parts = append(parts, n)
		if !p.acceptOp(".") {
			break
		}
	}
	r := TableRef{Name: strings.Join(parts, "."), Alias: parts[len(parts)-1]}
	if p.acceptKw("AS") {
		a, _, err := p.name()
		if err != nil {
			return TableRef{}, err
		}
		r.Alias = a
	} else if t := p.peek(); t.kind == tQIdent || t.kind == tIdent && !keywords[strings.ToUpper(t.text)] {
		p.next()
		r.Alias = t.text
	}
	return r, nil
}

func (p *parser) item() (Item, error) {
	t := p.peek()
	if isOp(t, "*") {
		p.next()
		return Item{Star: true}, nil
	}
	if (t.kind == tIdent || t.kind == tQIdent) && isOp(p.peekN(1), ".") && isOp(p.peekN(2), "*") {
		p.i += 3
		return Item{Star: true, StarQualifier: t.text}, nil
	}
	e, err := p.expr()
	if err != nil {
		return Item{}, err
	}
	it := Item{Expr: e}
	if p.acceptKw("AS") {
		n, _, err := p.name()
		if err != nil {
			return Item{}, err
		}
		it.Name = n
	} else if t := p.peek(); t.kind == tQIdent || t.kind == tIdent && !keywords[strings.ToUpper(t.text)] {
		p.next()
		it.Name = t.text
	}
	return it, nil
}
