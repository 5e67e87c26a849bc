package query

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// duckdbScript evaluates expressions over the rows of testRecord in
// DuckDB (TimeZone UTC) and prints, per expression, its values as
// canonical text, or its error.
const duckdbScript = `
import duckdb, json, sys, datetime, decimal
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
con.execute("""CREATE TABLE t AS SELECT * FROM (VALUES
 (0, 1::BIGINT, 3::INTEGER, 12.50::DECIMAL(18,2), 1.5::DOUBLE, 'paid', 'Shanghai', '{"device": "ios", "n": 2, "a": {"b": [1, {"c": "x\\"y"}]}, "z": null}', TIMESTAMPTZ '2024-01-01 23:30:00+00', DATE '2024-01-01', true),
 (1, 2, -7, -0.05, 0.0, ' Shipped ', '北京', '["x", {"device": "android"}]', TIMESTAMPTZ '2024-03-10 07:05:09.123456+00', DATE '1970-01-01', false),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
) v(rn, id, qty, amount, price, status, city, props, ts, d, ok)""")
def canon(v):
    if v is None: return None
    if isinstance(v, bool): return "true" if v else "false"
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None: v = v.replace(tzinfo=datetime.timezone.utc)
        return "ts:" + str(int(round(v.timestamp() * 1e6)))
    if isinstance(v, datetime.date): return "date:" + v.isoformat()
    if isinstance(v, decimal.Decimal): return "num:" + repr(float(v))
    if isinstance(v, float): return "num:" + repr(v)
    if isinstance(v, int): return "num:" + repr(float(v))
    return "str:" + str(v)
out = []
for e in json.load(sys.stdin):
    try:
        rows = con.execute("SELECT " + e + " FROM t ORDER BY rn").fetchall()
        out.append({"vals": [canon(r[0]) for r in rows]})
    except Exception as ex:
        out.append({"err": str(ex).splitlines()[0]})
print(json.dumps(out))
`

// canonValues renders a result as duckdbScript's canon does.
func canonValues(a arrow.Array) []*string {
	out := make([]*string, a.Len())
	for i := range out {
		if a.IsNull(i) {
			continue
		}
		var s string
		switch v := a.(type) {
		case *array.Boolean:
			s = strconv.FormatBool(v.Value(i))
		case *array.Timestamp:
			s = "ts:" + strconv.FormatInt(micros(v)(i), 10)
		case *array.Date32:
			s = "date:" + v.Value(i).ToTime().Format(time.DateOnly)
		case *array.String:
			s = "str:" + v.Value(i)
		case *array.Decimal128:
			f, _ := strconv.ParseFloat(v.Value(i).ToString(v.DataType().(*arrow.Decimal128Type).Scale), 64)
			s = "num:" + pyFloat(f)
		default:
			f := floatAt(a)(i)
			if _, ok := a.(*array.Int32); ok {
				f = float64(a.(*array.Int32).Value(i))
			}
			s = "num:" + pyFloat(f)
		}
		out[i] = &s
	}
	return out
}

// pyFloat writes f as Python's repr does.
func pyFloat(f float64) string {
	return formatFloat(f)
}

// TestEvalMatchesDuckDB evaluates every expression of dumpExprs with
// Compile and with DuckDB over the same rows and requires the same
// values. It needs DuckDB's Python package: FLOE_ENGINES_PYTHON (set by
// integration/engines/setup.sh env) names the interpreter.
func TestEvalMatchesDuckDB(t *testing.T) {
	python := os.Getenv("FLOE_ENGINES_PYTHON")
	if python == "" {
		t.Skip("FLOE_ENGINES_PYTHON is not set (eval \"$(integration/engines/setup.sh env)\")")
	}
	exprs := strings.Split(strings.TrimSpace(dumpExprs), "\n")
	in, _ := json.Marshal(exprs)
	cmd := exec.Command(python, "-c", duckdbScript)
	cmd.Stdin = strings.NewReader(string(in))
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckdb: %v", err)
	}
	var res []struct {
		Vals []*string `json:"vals"`
		Err  string    `json:"err"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("duckdb output %s: %v", b, err)
	}
	rec := testRecord(t)
	defer rec.Release()
	show := func(vs []*string) string {
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = "NULL"
			if v != nil {
				parts[i] = *v
			}
		}
		return strings.Join(parts, " | ")
	}
	for i, e := range exprs {
		known := duckdbKnownDifferences[e]
		x, err := ParseExpr(e)
		var p *Program
		if err == nil {
			p, err = Compile(x, rec.Schema(), nil)
		}
		var a arrow.Array
		if err == nil {
			a, err = p.Eval(rec)
		}
		if res[i].Err != "" {
			if known == "" {
				t.Errorf("%s: DuckDB fails: %s", e, res[i].Err)
			}
			if a != nil {
				a.Release()
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v (DuckDB: %s)", e, err, show(res[i].Vals))
			continue
		}
		got, want := show(canonValues(a)), show(res[i].Vals)
		a.Release()
		if got != want && known == "" {
			t.Errorf("%s:\n floe   %s\n duckdb %s", e, got, want)
		}
		if got == want && known != "" {
			t.Errorf("%s: listed as a known difference (%s) but agrees", e, known)
		}
	}
}

// duckdbKnownDifferences are the documented deviations, by expression.
var duckdbKnownDifferences = map[string]string{}

var _ = fmt.Sprint
