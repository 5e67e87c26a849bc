package query

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRoundTrip(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT a FROM t WHERE a = 1 OR b IN (1, 2) AND c BETWEEN 1 AND 2",
			"((a = 1) OR ((b IN (1, 2)) AND (c BETWEEN 1 AND 2)))"},
		{"SELECT a FROM t WHERE name NOT LIKE 'x%' AND NOT d IS NULL", "((name NOT LIKE 'x%') AND (NOT (d IS NULL)))"},
		{"SELECT a FROM t WHERE 1 + 2 * 3 - -x > 0", "(((1 + (2 * 3)) - (- x)) > 0)"},
		{"SELECT a FROM t WHERE p->>'$.k' || 'x' = 'y'", "(((p ->> '$.k') || 'x') = 'y')"},
		{"SELECT a FROM t WHERE CAST(a AS DECIMAL(18,2)) > a::double", "(CAST(a AS DECIMAL(18,2)) > CAST(a AS DOUBLE))"},
		{"SELECT a FROM t WHERE CASE WHEN a > 1 THEN 'x' ELSE 'y' END = 'x'", "(CASE WHEN (a > 1) THEN 'x' ELSE 'y' END = 'x')"},
		{"SELECT a FROM t WHERE time_bucket(INTERVAL '1 hour', ts) = ts", "(time_bucket(INTERVAL '1 hour', ts) = ts)"},
	} {
		s, err := Parse(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := s.Where.String(); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestParseSelect(t *testing.T) {
	s, err := Parse(`SELECT o.*, u.name AS user_name, count(*), count(DISTINCT o.user_id) uv
FROM ods.orders o LEFT JOIN ods.users AS u ON u.id = o.user_id AND u.tenant = o.tenant
WHERE o.status <> 'x' GROUP BY 1, user_name HAVING count(*) > 1;`)
	if err != nil {
		t.Fatal(err)
	}
	if s.From != (TableRef{"ods.orders", "o"}) || len(s.Joins) != 1 || s.Joins[0].Table != (TableRef{"ods.users", "u"}) {
		t.Fatalf("from/joins: %+v %+v", s.From, s.Joins)
	}
	if k := s.Joins[0].Keys; len(k) != 2 || k[0].Right != "id" || k[0].Left.String() != "o.user_id" || k[1].Right != "tenant" {
		t.Fatalf("keys: %+v", k)
	}
	if len(s.Items) != 4 || !s.Items[0].Star || s.Items[0].StarQualifier != "o" || s.Items[1].Name != "user_name" || s.Items[3].Name != "uv" {
		t.Fatalf("items: %+v", s.Items)
	}
	if fn, arg, d, ok := AggregateCall(s.Items[3].Expr); !ok || fn != "count" || !d || arg.String() != "o.user_id" {
		t.Fatalf("aggregate call: %s %v %v %v", fn, arg, d, ok)
	}
	if fn, arg, _, ok := AggregateCall(s.Items[2].Expr); !ok || fn != "count" || arg != nil {
		t.Fatalf("count(*): %s %v %v", fn, arg, ok)
	}
	if s.GroupItem(s.GroupBy[0]) != 0 || s.GroupItem(s.GroupBy[1]) != 1 || s.Having == nil {
		t.Fatalf("group by: %v", s.GroupBy)
	}
	if s.From.Alias != "o" {
		t.Fatal(s.From)
	}
	d, _ := Parse("SELECT 1 FROM ods.orders")
	if d.From.Alias != "orders" {
		t.Fatalf("default alias %q", d.From.Alias)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want    string
		unsupported bool
	}{
		{"SELECT a FROM t WHERE x > 1 ORDER BY a", "ORDER BY is not supported in a spec: line 1, column 29", true},
		{"SELECT a FROM t LIMIT 1", "LIMIT is not supported in a spec: line 1, column 17", true},
		{"SELECT a FROM t\nJOIN u ON u.id = t.id", "a join other than LEFT JOIN is not supported in a spec: line 2, column 1", true},
		{"SELECT a FROM t LEFT JOIN u ON u.id > t.id", "join condition must be equalities", true},
		{"SELECT a FROM (SELECT 1)", "a subquery is not supported", true},
		{"SELECT a FROM t WHERE a IN (SELECT 1)", "a subquery is not supported", true},
		{"SELECT count(*) OVER () FROM t", "a window function (OVER) is not supported", true},
		{"WITH x AS (SELECT 1) SELECT 1 FROM x", "WITH is not supported", true},
		{"SELECT a FROM t UNION SELECT a FROM u", "UNION is not supported", true},
		{"SELECT a FROM t WHERE (a = 1", `expected ")", found the end of the statement: line 1, column 29`, false},
		{"SELECT a FROM t WHERE a = 'x", "unterminated string: line 1, column 27", false},
		{"SELECT a, FROM t", `unexpected "FROM": line 1, column 11`, false},
		{"SELECT CAST(a AS blob) FROM t", "type BLOB is not supported", true},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.in, err, tc.want)
			continue
		}
		if errors.Is(err, ErrUnsupported) != tc.unsupported {
			t.Errorf("%q: %v: unsupported = %v", tc.in, err, !tc.unsupported)
		}
	}
}

// FuzzParse: Parse never panics, and a statement it accepts renders
// (Expr.String) to SQL that parses to the same rendering.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"SELECT a, count(*) AS n FROM t WHERE a = 1 OR b IN (1, 2) GROUP BY a",
		"SELECT CASE WHEN x > 1 THEN 'a' ELSE NULL END FROM ods.t o LEFT JOIN u ON u.id = o.id",
		"SELECT time_bucket(INTERVAL '1 day', ts, 'Asia/Shanghai'), p->>'$.k', CAST(a AS DECIMAL(18,2)) FROM t",
		"SELECT -1.5e3 || 'x', a::date, NOT a IS NULL, a NOT BETWEEN 1 AND 2 FROM t HAVING 1 = 1",
		"SELECT - -1, -(-a) FROM t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse(text)
		if err != nil {
			return
		}
		exprs := append([]Expr{}, s.GroupBy...)
		for _, it := range s.Items {
			if it.Expr != nil {
				exprs = append(exprs, it.Expr)
			}
		}
		if s.Where != nil {
			exprs = append(exprs, s.Where)
		}
		for _, e := range exprs {
			r := e.String()
			back, err := ParseExpr(r)
			if err != nil {
				t.Fatalf("%q: rendering %q does not parse: %v", text, r, err)
			}
			if back.String() != r {
				t.Fatalf("%q: %q renders back as %q", text, r, back.String())
			}
		}
	})
}
