package query

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// testRecord has three rows; row 2 is mostly nulls.
func testRecord(t *testing.T) arrow.RecordBatch {
	t.Helper()
	mem := memory.DefaultAllocator
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "qty", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "amount", Type: &arrow.Decimal128Type{Precision: 18, Scale: 2}, Nullable: true},
		{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "status", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "city", Type: arrow.BinaryTypes.LargeString, Nullable: true},
		{Name: "props", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2, 3}, []bool{true, true, false})
	b.Field(1).(*array.Int32Builder).AppendValues([]int32{3, -7, 0}, []bool{true, true, false})
	b.Field(2).(*array.Decimal128Builder).AppendValues([]decimal128.Num{decimal128.FromI64(1250), decimal128.FromI64(-5), {}}, []bool{true, true, false})
	b.Field(3).(*array.Float64Builder).AppendValues([]float64{1.5, 0, 0}, []bool{true, true, false})
	b.Field(4).(*array.StringBuilder).AppendValues([]string{"paid", " Shipped ", ""}, []bool{true, true, false})
	b.Field(5).(*array.LargeStringBuilder).AppendValues([]string{"Shanghai", "北京", ""}, []bool{true, true, false})
	b.Field(6).(*array.StringBuilder).AppendValues([]string{`{"device": "ios", "n": 2, "a": {"b": [1, {"c": "x\"y"}]}, "z": null}`, `["x", {"device": "android"}]`, ""}, []bool{true, true, false})
	t1 := time.Date(2024, 1, 1, 23, 30, 0, 0, time.UTC).UnixMicro()
	t2 := time.Date(2024, 3, 10, 7, 5, 9, 123456000, time.UTC).UnixMicro()
	b.Field(7).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{arrow.Timestamp(t1), arrow.Timestamp(t2), 0}, []bool{true, true, false})
	b.Field(8).(*array.Date32Builder).AppendValues([]arrow.Date32{19723, 0, 0}, []bool{true, true, false})
	b.Field(9).(*array.BooleanBuilder).AppendValues([]bool{true, false, false}, []bool{true, true, false})
	return b.NewRecordBatch()
}

func evalRows(t *testing.T, rec arrow.RecordBatch, expr string) (string, arrow.DataType, error) {
	t.Helper()
	e, err := ParseExpr(expr)
	if err != nil {
		return "", nil, err
	}
	p, err := Compile(e, rec.Schema(), nil)
	if err != nil {
		return "", nil, err
	}
	a, err := p.Eval(rec)
	if err != nil {
		return "", nil, err
	}
	defer a.Release()
	if a.Len() != int(rec.NumRows()) {
		return "", nil, fmt.Errorf("%d values for %d rows", a.Len(), rec.NumRows())
	}
	if !arrow.TypeEqual(a.DataType(), p.Type()) {
		return "", nil, fmt.Errorf("result is %s, Type says %s", a.DataType(), p.Type())
	}
	vals := make([]string, a.Len())
	for i := range vals {
		if a.IsNull(i) {
			vals[i] = "NULL"
		} else {
			vals[i] = a.ValueStr(i)
		}
	}
	return strings.Join(vals, "|"), p.Type(), nil
}

func TestEval(t *testing.T) {
	rec := testRecord(t)
	defer rec.Release()
	for _, tc := range []struct{ expr, want string }{
		{"id + 1", "2|3|NULL"},
	} {
		got, _, err := evalRows(t, rec, tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.expr, got, tc.want)
		}
	}
}

func TestEvalDump(t *testing.T) {
	rec := testRecord(t)
	defer rec.Release()
	for _, e := range strings.Split(dumpExprs, "\n") {
		if e == "" {
			continue
		}
		got, typ, err := evalRows(t, rec, e)
		t.Logf("{%q, %q}, // %v %v", e, got, typ, err)
	}
	_ = errors.New
}

const dumpExprs = `id + 1
qty * 2 - id
qty / 2
qty % 4
amount * qty
amount + 1
amount + 1.5
amount * 1.5
price * 2
-qty
status = 'paid' OR id IN (2, 3)
id IN (1, NULL)
id NOT IN (1, NULL)
status IN ('paid', 'x')
qty BETWEEN -10 AND 0
city LIKE 'Sh%'
city LIKE '_ei%'
city ILIKE 'shang%'
status NOT LIKE '%hip%'
CASE WHEN qty > 0 THEN 'pos' WHEN qty < 0 THEN 'neg' ELSE 'zero' END
CASE status WHEN 'paid' THEN 1 ELSE 0 END
CASE WHEN amount > 10 THEN amount END
CAST(id AS VARCHAR)
CAST(qty AS BIGINT)
CAST(qty AS DOUBLE)
CAST(price AS DECIMAL(18,2))
CAST(amount AS DOUBLE)
CAST(amount AS VARCHAR)
CAST(amount AS BIGINT)
CAST(price AS VARCHAR)
CAST(ts AS DATE)
CAST(ts AS VARCHAR)
CAST('12' AS INTEGER) + 1
CAST(d AS VARCHAR)
ts::date = DATE '2024-01-01'
lower(city)
upper(status)
substr(city, 1, 3)
substring(city, 2)
substr(city, -2, 2)
concat(city, '-', status)
city || '/' || status
length(city)
trim(status)
coalesce(status, city, 'none')
nullif(qty, 3)
status IS NULL
status IS NOT NULL
NOT ok
ok AND id > 1
ok OR id > 1
date_trunc('hour', ts)
date_trunc('day', ts)
date_trunc('month', ts)
time_bucket(INTERVAL '5 minutes', ts)
time_bucket(INTERVAL '1 day', ts, 'Asia/Shanghai')
time_bucket(INTERVAL '7 days', ts)
time_bucket(INTERVAL '1 month', ts)
time_bucket(INTERVAL '1 hour', ts, 'Asia/Kathmandu')
time_bucket(INTERVAL '2 days', ts, 'America/New_York')
time_bucket(INTERVAL '24 hours', ts, 'America/New_York')
time_bucket(INTERVAL '90 minutes', ts)
time_bucket(INTERVAL '1 week', ts)
timezone('Asia/Shanghai', ts)
timezone('America/New_York', timezone('Asia/Shanghai', ts))
CAST(timezone('Asia/Shanghai', ts) AS DATE)
hour(timezone('Asia/Shanghai', ts))
hour(ts)
minute(ts)
year(ts)
dayofweek(ts)
strftime(ts, '%Y-%m-%d %H:%M:%S.%f')
json_extract_string(props, '$.device')
props->>'$.n'
props->>'n'
props->'$.a'
props->>'$.a.b[1].c'
props->>'$.z'
props->>'$.missing'
props->>'$[1].device'
props->>'/a/b/0'
price / 0
qty / 0
qty % 0
price % 0
CAST(price * 5 AS BIGINT)
CAST(-2.5 AS BIGINT)
CAST(price + 1 AS DECIMAL(18,0))
CAST(amount AS DECIMAL(18,1))
round(price)
ts >= '2024-03-01'
ts + INTERVAL '1 hour'
ts - INTERVAL '1 month'
abs(qty)
price / 0
1 + NULL
id = NULL`
