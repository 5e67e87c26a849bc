package query

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAggregate(t *testing.T) {
	s, err := ParseAggregate(`SELECT w.window_start, city, sum(amount) AS gmv
FROM dwd.order_detail o,
     unnest(generate_series(time_bucket(INTERVAL '5 minutes', o.created_at) - INTERVAL '55 minutes',
                            time_bucket(INTERVAL '5 minutes', o.created_at), INTERVAL '5 minutes')) AS w(window_start)
WHERE amount > 0
GROUP BY 1, 2
QUALIFY row_number() OVER (PARTITION BY w.window_start, province ORDER BY sum(amount) DESC, city ASC NULLS FIRST, x NULLS LAST) <= 3;`)
	if err != nil {
		t.Fatal(err)
	}
	if s.From != (TableRef{"dwd.order_detail", "o"}) || s.Unnest == nil || s.Unnest.Alias != "w" || s.Unnest.Column != "window_start" {
		t.Fatalf("from %+v unnest %+v", s.From, s.Unnest)
	}
	if got, want := s.Unnest.String(), "unnest(generate_series((time_bucket(INTERVAL '5 minutes', o.created_at) - INTERVAL '55 minutes'), time_bucket(INTERVAL '5 minutes', o.created_at), INTERVAL '5 minutes')) AS w(window_start)"; got != want {
		t.Errorf("unnest:\n got %s\nwant %s", got, want)
	}
	if got, want := s.Qualify.String(), "(row_number() OVER (PARTITION BY w.window_start, province ORDER BY sum(amount) DESC, city NULLS FIRST, x NULLS LAST) <= 3)"; got != want {
		t.Errorf("qualify:\n got %s\nwant %s", got, want)
	}
	o := s.Qualify.(*Binary).L.(*Over)
	if len(o.PartitionBy) != 2 || len(o.OrderBy) != 3 || !o.OrderBy[0].Desc || o.OrderBy[1].Desc || o.OrderBy[1].Nulls != "FIRST" || o.OrderBy[2].Nulls != "LAST" {
		t.Fatalf("over: %+v", o)
	}
	var cols []string
	Walk(s.Qualify, func(e Expr) bool {
		if c, ok := e.(*Column); ok {
			cols = append(cols, c.String())
		}
		return true
	})
	if strings.Join(cols, " ") != "w.window_start province amount city x" {
		t.Fatalf("Walk over QUALIFY: %v", cols)
	}
	// Without a window function.
	if _, err := ParseAggregate("SELECT a FROM t, unnest(x) w(c) QUALIFY a > 1"); err != nil {
		t.Fatal(err)
	}
}

func TestParseAggregateErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want    string
		aggregate   bool
		unsupported bool
	}{
		{"SELECT a FROM t, unnest(x) AS w(c)", "a join other than LEFT JOIN is not supported in a spec: line 1, column 16", false, true},
		{"SELECT a FROM t GROUP BY a QUALIFY a > 1", "QUALIFY is not supported in a spec: line 1, column 28", false, true},
		{"SELECT a FROM t QUALIFY row_number() OVER () <= 1", "QUALIFY is not supported", false, true},
		{"SELECT row_number() OVER () AS n FROM t", "a window function (OVER) is not supported in a spec: line 1, column 21", true, true},
		{"SELECT a FROM t WHERE row_number() OVER () = 1", "a window function (OVER) is not supported", true, true},
		{"SELECT a FROM t, unnest(x) AS w", `name unnest's column: unnest(…) AS w(column)`, true, false},
		{"SELECT a FROM t, unnest(x) AS w(a, b)", "unnest yields one column", true, false},
		{"SELECT a FROM t, u", "a join other than LEFT JOIN", true, true},
		{"SELECT a FROM t, unnest(x) AS w(c), unnest(y) AS v(d)", "a join other than LEFT JOIN", true, true},
		{"SELECT a FROM t QUALIFY row_number() OVER (ORDER BY a NULLS MIDDLE) <= 1", `expected FIRST or LAST after NULLS, found "MIDDLE"`, true, false},
		{"SELECT a FROM t QUALIFY row_number() OVER (ORDER BY a ROWS UNBOUNDED PRECEDING) <= 1", "a window frame (ROWS) is not supported", true, true},
		{"SELECT a FROM t QUALIFY row_number() OVER (ORDER BY a <= 1", `expected ")"`, true, false},
		{"SELECT a FROM t QUALIFY a > 1 ORDER BY a", "ORDER BY is not supported", true, true},
	} {
		parse := Parse
		if tc.aggregate {
			parse = ParseAggregate
		}
		_, err := parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.in, err, tc.want)
			continue
		}
		if errors.Is(err, ErrUnsupported) != tc.unsupported {
			t.Errorf("%q: %v: unsupported = %v", tc.in, err, !tc.unsupported)
		}
	}
}
