package query

import (
	"strconv"
	"strings"
)

// Select is one parsed SELECT statement.
type Select struct {
	// Text is the statement as given to Parse.
	Text string
	// From is the first relation.
	From TableRef
	// Joins are the LEFT JOINs after From, in order.
	Joins []Join
	// Where is the WHERE condition; nil when absent.
	Where Expr
	// Items is the select list in order.
	Items []Item
	// GroupBy holds the GROUP BY expressions in order. An unqualified
	// column whose name is an item's AS name, or an integer literal (a
	// 1-based item position), refers to that item: see Select.GroupItem.
	GroupBy []Expr
	// Having is the HAVING condition; nil when absent.
	Having Expr
	// Unnest is the lateral unnest after From (ParseAggregate only); nil
	// when absent.
	Unnest *Unnest
	// Qualify is the QUALIFY condition (ParseAggregate only); nil when
	// absent.
	Qualify Expr
}

// TableRef names a relation of the FROM clause.
type TableRef struct {
	// Name is the table's name as written, e.g. "ods.orders".
	Name string
	// Alias is the name columns are qualified with; it defaults to the
	// last part of Name.
	Alias string
}

// Join is one LEFT JOIN.
type Join struct {
	// Table is the joined relation.
	Table TableRef
	// On is the join condition as written.
	On Expr
	// Keys are the ON equalities: Left is an expression over the
	// relations before this join, Right a column of Table.
	Keys []JoinKey
}

// JoinKey is one equality of a join condition.
type JoinKey struct {
	Left  Expr
	Right string
}

// Item is one element of the select list.
type Item struct {
	// Expr is the expression; nil for a star.
	Expr Expr
	// Name is the AS name, or "" when none was written (see OutputName).
	Name string
	// Star is true for * and alias.*; StarQualifier holds the alias of
	// alias.*.
	Star          bool
	StarQualifier string
}

// OutputName is the column name the item produces: its AS name, else a
// column's name, else the function's name for a call, else the rendered
// expression (as DuckDB names unnamed expressions).
func (it Item) OutputName() string {
	if it.Name != "" {
		return it.Name
	}
	switch e := it.Expr.(type) {
	case *Column:
		return e.Name
	case nil:
		return "*"
	default:
		return e.String()
	}
}

// GroupItem returns the select-list item a GROUP BY expression refers to
// by AS name or by position, and -1 when it refers to none (then it is an
// expression of its own).
func (s *Select) GroupItem(e Expr) int {
	switch g := e.(type) {
	case *Column:
		if g.Qualifier != "" {
			return -1
		}
		for i, it := range s.Items {
			if it.Name != "" && strings.EqualFold(it.Name, g.Name) {
				return i
			}
		}
	case *Literal:
		if g.Kind == LitInt {
			if n, err := strconv.Atoi(g.Text); err == nil && n >= 1 && n <= len(s.Items) {
				return n - 1
			}
		}
	}
	return -1
}

// Expr is an expression node. String renders it as SQL that DuckDB
// parses to the same expression (fully parenthesised).
type Expr interface {
	String() string
	pos() Pos
}

// Pos is a position in the statement's text, 1-based.
type Pos struct{ Line, Col int }

func (p Pos) pos() Pos { return p }

// String writes "line L, column C".
func (p Pos) String() string {
	return "line " + strconv.Itoa(p.Line) + ", column " + strconv.Itoa(p.Col)
}

// Column is a column reference, qualifier.name or name.
type Column struct {
	Pos
	Qualifier string
	Name      string
}

func (c *Column) String() string {
	if c.Qualifier != "" {
		return quoteIdent(c.Qualifier) + "." + quoteIdent(c.Name)
	}
	return quoteIdent(c.Name)
}

// LitKind is the kind of a literal.
type LitKind int

// The literal kinds.
const (
	LitNull LitKind = iota
	LitBool
	LitInt
	LitFloat
	LitString
)

// Literal is a constant: NULL, TRUE/FALSE, a number or a string.
type Literal struct {
	Pos
	Kind LitKind
	// Text is the value: "true"/"false", the number's digits, the
	// string's content (unquoted).
	Text string
}

func (l *Literal) String() string {
	switch l.Kind {
	case LitNull:
		return "NULL"
	case LitBool:
		return strings.ToUpper(l.Text)
	case LitString:
		return quoteString(l.Text)
	}
	return l.Text
}

// Interval is an INTERVAL literal: INTERVAL '1 hour', INTERVAL '5' MINUTE.
// As in DuckDB it has three parts: Months (and years), Days (and weeks)
// and Micros (hours and shorter units).
type Interval struct {
	Pos
	Text   string
	Months int64
	Micros int64
	Days   int64
}

// Fixed returns the interval's length in microseconds counting a day as
// 24 hours; ok is false when it has months.
func (i *Interval) Fixed() (micros int64, ok bool) {
	return i.Days*86400e6 + i.Micros, i.Months == 0
}

func (i *Interval) String() string { return "INTERVAL " + quoteString(i.Text) }

// Unary is a prefix operator: "-", "+" or "NOT".
type Unary struct {
	Pos
	Op string
	X  Expr
}

func (u *Unary) String() string {
	if u.Op == "NOT" {
		return "(NOT " + u.X.String() + ")"
	}
	return "(" + u.Op + " " + u.X.String() + ")" // "- -1", not "--1" (a comment)
}

// Binary is an infix operator: arithmetic (+ - * / %), comparison
// (= <> < <= > >=), AND, OR, string concatenation (||) and JSON
// extraction (-> and ->>).
type Binary struct {
	Pos
	Op   string
	L, R Expr
}

func (b *Binary) String() string { return "(" + b.L.String() + " " + b.Op + " " + b.R.String() + ")" }

// Call is a function call; Name is lower case. Star marks count(*),
// Distinct an aggregate's DISTINCT.
type Call struct {
	Pos
	Name     string
	Args     []Expr
	Distinct bool
	Star     bool
}

func (c *Call) String() string {
	var b strings.Builder
	b.WriteString(c.Name)
	b.WriteByte('(')
	if c.Star {
		b.WriteByte('*')
	}
	if c.Distinct {
		b.WriteString("DISTINCT ")
	}
	for i, a := range c.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.String())
	}
	b.WriteByte(')')
	return b.String()
}

// Case is CASE [operand] WHEN … THEN … [ELSE …] END.
type Case struct {
	Pos
	Operand Expr // nil for a searched CASE
	Whens   []When
	Else    Expr // nil when absent (NULL)
}

// When is one WHEN … THEN … arm.
type When struct{ Cond, Then Expr }

func (c *Case) String() string {
	var b strings.Builder
	b.WriteString("CASE")
	if c.Operand != nil {
		b.WriteString(" " + c.Operand.String())
	}
	for _, w := range c.Whens {
		b.WriteString(" WHEN " + w.Cond.String() + " THEN " + w.Then.String())
	}
	if c.Else != nil {
		b.WriteString(" ELSE " + c.Else.String())
	}
	b.WriteString(" END")
	return b.String()
}

// TypeName is a SQL type of a CAST: BIGINT, INTEGER, DOUBLE,
// DECIMAL(p,s), VARCHAR, BOOLEAN, DATE, TIMESTAMP, TIMESTAMPTZ. Name is
// upper case and canonical (INT → INTEGER, FLOAT8 → DOUBLE, TEXT →
// VARCHAR, …).
type TypeName struct {
	Name             string
	Precision, Scale int
}

func (t TypeName) String() string {
	if t.Name == "DECIMAL" {
		return "DECIMAL(" + strconv.Itoa(t.Precision) + "," + strconv.Itoa(t.Scale) + ")"
	}
	return t.Name
}

// Cast is CAST(x AS type) or x::type.
type Cast struct {
	Pos
	X    Expr
	Type TypeName
}

func (c *Cast) String() string { return "CAST(" + c.X.String() + " AS " + c.Type.String() + ")" }

// In is x [NOT] IN (list).
type In struct {
	Pos
	X    Expr
	List []Expr
	Not  bool
}

func (e *In) String() string {
	parts := make([]string, len(e.List))
	for i, x := range e.List {
		parts[i] = x.String()
	}
	op := " IN ("
	if e.Not {
		op = " NOT IN ("
	}
	return "(" + e.X.String() + op + strings.Join(parts, ", ") + "))"
}

// Between is x [NOT] BETWEEN lo AND hi.
type Between struct {
	Pos
	X, Lo, Hi Expr
	Not       bool
}

func (e *Between) String() string {
	op := " BETWEEN "
	if e.Not {
		op = " NOT BETWEEN "
	}
	return "(" + e.X.String() + op + e.Lo.String() + " AND " + e.Hi.String() + ")"
}

// Like is x [NOT] LIKE pattern, or ILIKE (case-insensitive).
type Like struct {
	Pos
	X, Pattern Expr
	Not        bool
	Fold       bool // ILIKE
}

func (e *Like) String() string {
	op := " LIKE "
	if e.Fold {
		op = " ILIKE "
	}
	if e.Not {
		op = " NOT" + op
	}
	return "(" + e.X.String() + op + e.Pattern.String() + ")"
}

// IsNull is x IS [NOT] NULL.
type IsNull struct {
	Pos
	X   Expr
	Not bool
}

func (e *IsNull) String() string {
	if e.Not {
		return "(" + e.X.String() + " IS NOT NULL)"
	}
	return "(" + e.X.String() + " IS NULL)"
}

// Walk calls fn on e and, while fn returns true, on its children, depth
// first.
func Walk(e Expr, fn func(Expr) bool) {
	if e == nil || !fn(e) {
		return
	}
	switch n := e.(type) {
	case *Unary:
		Walk(n.X, fn)
	case *Binary:
		Walk(n.L, fn)
		Walk(n.R, fn)
	case *Call:
		for _, a := range n.Args {
			Walk(a, fn)
		}
	case *Case:
		Walk(n.Operand, fn)
		for _, w := range n.Whens {
			Walk(w.Cond, fn)
			Walk(w.Then, fn)
		}
		Walk(n.Else, fn)
	case *Cast:
		Walk(n.X, fn)
	case *In:
		Walk(n.X, fn)
		for _, x := range n.List {
			Walk(x, fn)
		}
	case *Between:
		Walk(n.X, fn)
		Walk(n.Lo, fn)
		Walk(n.Hi, fn)
	case *Like:
		Walk(n.X, fn)
		Walk(n.Pattern, fn)
	case *IsNull:
		Walk(n.X, fn)
	case *Over:
		Walk(n.Fn, fn)
		for _, x := range n.PartitionBy {
			Walk(x, fn)
		}
		for _, o := range n.OrderBy {
			Walk(o.X, fn)
		}
	}
}

// PosOf returns where e starts in the statement's text.
func PosOf(e Expr) Pos { return e.pos() }

func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// quoteIdent quotes an identifier unless it is a plain lower-case name
// that is no keyword.
func quoteIdent(s string) string {
	plain := s != ""
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			plain = false
			break
		}
	}
	if plain && !keywords[strings.ToUpper(s)] {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
