package query

import (
	"fmt"
	"strings"
)

// The window clauses of floe aggregate's SQL specs, read by
// ParseAggregate only (Parse refuses them): a lateral unnest after the
// FROM table, which spreads each row over its sliding or cumulative
// windows, and QUALIFY with a row_number() window function, the top N of
// each window.
//
//	FROM dwd.order_detail o,
//	     unnest(generate_series(time_bucket(INTERVAL '5 minutes', o.created_at) - INTERVAL '55 minutes',
//	                            time_bucket(INTERVAL '5 minutes', o.created_at),
//	                            INTERVAL '5 minutes')) AS w(window_start)
//	…
//	QUALIFY row_number() OVER (PARTITION BY w.window_start, province
//	                           ORDER BY sum(amount) DESC, city NULLS FIRST) <= 3
//
// The parser only reads them; package aggregate decides which shapes are
// windows (see its sql.go).

// Unnest is the relation "unnest(X) AS alias(column)" after the FROM
// table: every row of the table joined with each element of the list X
// evaluates to over that row (a lateral join).
type Unnest struct {
	Pos
	X      Expr
	Alias  string
	Column string
}

func (u *Unnest) String() string {
	return "unnest(" + u.X.String() + ") AS " + quoteIdent(u.Alias) + "(" + quoteIdent(u.Column) + ")"
}

// Over is a window function call, fn(args) OVER (PARTITION BY … ORDER
// BY …), without a frame clause.
type Over struct {
	Pos
	Fn          *Call
	PartitionBy []Expr
	OrderBy     []OrderItem
}

// OrderItem is one ORDER BY element of a window.
type OrderItem struct {
	X    Expr
	Desc bool
	// Nulls is "FIRST" or "LAST" when NULLS FIRST or NULLS LAST is
	// written, "" otherwise (DuckDB's default is NULLS LAST either way).
	Nulls string
}

func (o OrderItem) String() string {
	s := o.X.String()
	if o.Desc {
		s += " DESC"
	}
	if o.Nulls != "" {
		s += " NULLS " + o.Nulls
	}
	return s
}

func (o *Over) String() string {
	var b strings.Builder
	b.WriteString(o.Fn.String() + " OVER (")
	if len(o.PartitionBy) > 0 {
		b.WriteString("PARTITION BY ")
		for i, e := range o.PartitionBy {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(e.String())
		}
	}
	if len(o.OrderBy) > 0 {
		if len(o.PartitionBy) > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("ORDER BY ")
		for i, it := range o.OrderBy {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(it.String())
		}
	}
	b.WriteByte(')')
	return b.String()
}

// ParseAggregate parses like Parse and also reads the window clauses of
// floe aggregate's specs: ", unnest(list) [AS] alias(column)" right
// after the FROM table, and "QUALIFY condition" after HAVING, where (and
// only where) a window function "fn(args) OVER ([PARTITION BY …] [ORDER
// BY expr [ASC|DESC] [NULLS FIRST|LAST], …])" may appear.
func ParseAggregate(text string) (*Select, error) {
	toks, err := lex(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSyntax, err)
	}
	p := &parser{toks: toks, windows: true}
	s, err := p.selectStmt()
	if err != nil {
		return nil, err
	}
	s.Text = text
	return s, nil
}

// unnest reads ", unnest(list) [AS] alias(column)" (the comma read).
func (p *parser) unnest() (*Unnest, error) {
	t := p.next() // unnest
	p.next()      // (
	x, err := p.expr()
	if err != nil {
		return nil, err
	}
	if err := p.expectOp(")"); err != nil {
		return nil, err
	}
	u := &Unnest{Pos: t.pos, X: x}
	p.acceptKw("AS")
	if u.Alias, _, err = p.name(); err != nil {
		return nil, err
	}
	if !isOp(p.peek(), "(") {
		return nil, p.errAt(p.peek(), "name unnest's column: unnest(…) AS %s(column)", u.Alias)
	}
	p.next()
	if u.Column, _, err = p.name(); err != nil {
		return nil, err
	}
	if u := p.peek(); isOp(u, ",") {
		return nil, p.errAt(u, "unnest yields one column: name one")
	}
	if err := p.expectOp(")"); err != nil {
		return nil, err
	}
	return u, nil
}

// over reads the window of a window function call (OVER read).
func (p *parser) over(fn *Call) (Expr, error) {
	if err := p.expectOp("("); err != nil {
		return nil, err
	}
	o := &Over{Pos: fn.Pos, Fn: fn}
	if isKw(p.peek(), "PARTITION") {
		p.next()
		if err := p.expectKw("BY"); err != nil {
			return nil, err
		}
		for {
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			o.PartitionBy = append(o.PartitionBy, e)
			if !p.acceptOp(",") {
				break
			}
		}
	}
	if isKw(p.peek(), "ORDER") {
		p.next()
		if err := p.expectKw("BY"); err != nil {
			return nil, err
		}
		for {
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			it := OrderItem{X: e}
			if p.acceptKw("DESC") {
				it.Desc = true
			} else {
				p.acceptKw("ASC")
			}
			if p.acceptKw("NULLS") {
				switch t := p.next(); {
				case isKw(t, "FIRST"):
					it.Nulls = "FIRST"
				case isKw(t, "LAST"):
					it.Nulls = "LAST"
				default:
					return nil, p.errAt(t, "expected FIRST or LAST after NULLS, found %s", describe(t))
				}
			}
			o.OrderBy = append(o.OrderBy, it)
			if !p.acceptOp(",") {
				break
			}
		}
	}
	if t := p.peek(); isKw(t, "ROWS") || isKw(t, "RANGE") || isKw(t, "GROUPS") {
		return nil, unsupported("a window frame ("+strings.ToUpper(t.text)+")", t)
	}
	if err := p.expectOp(")"); err != nil {
		return nil, err
	}
	return o, nil
}
