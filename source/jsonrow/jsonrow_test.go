package jsonrow

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/benchutil"
)

// cell returns a comparable Go value of a[i]: nil for null, int64 for
// integers, dates, times and timestamps, float64, bool, string for strings,
// uuids and decimals, []byte for binaries, map[string]any for structs and
// maps, []any for lists.
func cell(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch x := a.(type) {
	case *array.Boolean:
		return x.Value(i)
	case *array.Int8:
		return int64(x.Value(i))
	case *array.Int16:
		return int64(x.Value(i))
	case *array.Int32:
		return int64(x.Value(i))
	case *array.Int64:
		return x.Value(i)
	case *array.Float32:
		return float64(x.Value(i))
	case *array.Float64:
		return x.Value(i)
	case *array.String:
		return x.Value(i)
	case *array.LargeString:
		return x.Value(i)
	case *array.Binary:
		return bytes.Clone(x.Value(i))
	case *array.LargeBinary:
		return bytes.Clone(x.Value(i))
	case *extensions.UUIDArray:
		return x.Value(i).String()
	case *array.FixedSizeBinary:
		return bytes.Clone(x.Value(i))
	case *array.Date32:
		return int64(x.Value(i))
	case *array.Time64:
		return int64(x.Value(i))
	case *array.Timestamp:
		return int64(x.Value(i))
	case *array.Decimal128:
		return x.Value(i).ToString(x.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Decimal64:
		return fmt.Sprint(int64(x.Value(i)))
	case *array.Decimal32:
		return fmt.Sprint(int32(x.Value(i)))
	case *array.Struct:
		m := map[string]any{}
		st := x.DataType().(*arrow.StructType)
		for j := 0; j < x.NumField(); j++ {
			m[st.Field(j).Name] = cell(x.Field(j), i)
		}
		return m
	case *array.Map:
		m := map[string]any{}
		start, end := x.ValueOffsets(i)
		for j := int(start); j < int(end); j++ {
			m[cell(x.Keys(), j).(string)] = cell(x.Items(), j)
		}
		return m
	case *array.List:
		start, end := x.ValueOffsets(i)
		out := []any{}
		for j := int(start); j < int(end); j++ {
			out = append(out, cell(x.ListValues(), j))
		}
		return out
	case *array.LargeList:
		start, end := x.ValueOffsets(i)
		out := []any{}
		for j := int(start); j < int(end); j++ {
			out = append(out, cell(x.ListValues(), j))
		}
		return out
	}
	return fmt.Sprintf("unhandled %T", a)
}

func micros(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func days(s string) int64 {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t.Unix() / 86400
}

func col(t arrow.DataType) arrow.Field { return arrow.Field{Name: "c", Type: t, Nullable: true} }
func req(t arrow.DataType) arrow.Field { return arrow.Field{Name: "c", Type: t} }

var (
	tsTZ   = arrow.FixedWidthTypes.Timestamp_us // UTC
	tsNTZ  = &arrow.TimestampType{Unit: arrow.Microsecond}
	tsNSTZ = arrow.FixedWidthTypes.Timestamp_ns
	tsMS   = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
	dec182 = &arrow.Decimal128Type{Precision: 18, Scale: 2}
)

func TestAppendTypes(t *testing.T) {
	type tc struct {
		name  string
		field arrow.Field
		opts  Options
		in    string
		want  any
		err   string
	}
	structType := arrow.StructOf(
		arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: "b", Type: arrow.BinaryTypes.String, Nullable: true},
	)
	listType := arrow.ListOfField(arrow.Field{Name: "element", Type: arrow.PrimitiveTypes.Int64, Nullable: true})
	listReq := arrow.ListOfField(arrow.Field{Name: "element", Type: arrow.PrimitiveTypes.Int64})
	largeList := arrow.LargeListOfField(arrow.Field{Name: "element", Type: arrow.BinaryTypes.String, Nullable: true})
	mapType := arrow.MapOfFields(
		arrow.Field{Name: "key", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: "value", Type: arrow.PrimitiveTypes.Int64, Nullable: true})
	mapReq := arrow.MapOfFields(
		arrow.Field{Name: "key", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: "value", Type: arrow.PrimitiveTypes.Int64})
	nested := arrow.StructOf(arrow.Field{Name: "tags", Type: listType, Nullable: true},
		arrow.Field{Name: "attrs", Type: mapType, Nullable: true})

	cases := []tc{
		// boolean
		{name: "bool true", field: col(arrow.FixedWidthTypes.Boolean), in: `{"c":true}`, want: true},
		{name: "bool false", field: col(arrow.FixedWidthTypes.Boolean), in: `{"c":false}`, want: false},
		{name: "bool from number", field: col(arrow.FixedWidthTypes.Boolean), in: `{"c":1}`, err: `field "c": expected boolean, got number`},
		// integers
		{name: "int8 max", field: col(arrow.PrimitiveTypes.Int8), in: `{"c":127}`, want: int64(127)},
		{name: "int8 overflow", field: col(arrow.PrimitiveTypes.Int8), in: `{"c":128}`, err: `field "c": invalid tinyint "128": out of range`},
		{name: "int16 min", field: col(arrow.PrimitiveTypes.Int16), in: `{"c":-32768}`, want: int64(-32768)},
		{name: "int32 max", field: col(arrow.PrimitiveTypes.Int32), in: `{"c":2147483647}`, want: int64(math.MaxInt32)},
		{name: "int32 overflow", field: col(arrow.PrimitiveTypes.Int32), in: `{"c":2147483648}`, err: `invalid int "2147483648": out of range`},
		{name: "long max", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":9223372036854775807}`, want: int64(math.MaxInt64)},
		{name: "long min", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":-9223372036854775808}`, want: int64(math.MinInt64)},
		{name: "long overflow", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":9223372036854775808}`, err: `out of range`},
		{name: "long underflow", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":-9223372036854775809}`, err: `out of range`},
		{name: "long exponent", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":1e3}`, want: int64(1000)},
		{name: "long zero fraction", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":2.000}`, want: int64(2)},
		{name: "long fraction", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":1.5}`, err: `field "c": invalid long "1.5": not an integer`},
		{name: "long huge exponent", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":1e999999999}`, err: `out of range`},
		{name: "long tiny exponent", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":1e-999999999}`, err: `not an integer`},
		{name: "long from string", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":"42"}`, err: `field "c": expected long, got string`},
		{name: "long quoted", field: col(arrow.PrimitiveTypes.Int64), opts: Options{QuotedNumbers: true}, in: `{"c":"42"}`, want: int64(42)},
		{name: "long quoted junk", field: col(arrow.PrimitiveTypes.Int64), opts: Options{QuotedNumbers: true}, in: `{"c":"4x"}`, err: `invalid long "4x": not a number`},
		{name: "long from bool", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":true}`, err: `expected long, got boolean`},
		// floats
		{name: "float", field: col(arrow.PrimitiveTypes.Float32), in: `{"c":1.5}`, want: 1.5},
		{name: "float overflow", field: col(arrow.PrimitiveTypes.Float32), in: `{"c":3.5e38}`, err: `invalid float "3.5e38": out of range`},
		{name: "double", field: col(arrow.PrimitiveTypes.Float64), in: `{"c":-2.5e-3}`, want: -2.5e-3},
		{name: "double overflow", field: col(arrow.PrimitiveTypes.Float64), in: `{"c":1e400}`, err: `out of range`},
		{name: "double from string", field: col(arrow.PrimitiveTypes.Float64), in: `{"c":"1"}`, err: `expected double, got string`},
		{name: "double quoted", field: col(arrow.PrimitiveTypes.Float64), opts: Options{QuotedNumbers: true}, in: `{"c":"0.25"}`, want: 0.25},
		{name: "double quoted junk", field: col(arrow.PrimitiveTypes.Float64), opts: Options{QuotedNumbers: true}, in: `{"c":"x"}`, err: `not a number`},
		// strings
		{name: "string", field: col(arrow.BinaryTypes.String), in: `{"c":"héllo 广州"}`, want: "héllo 广州"},
		{name: "string escapes", field: col(arrow.BinaryTypes.String), in: `{"c":"a\"b\\c\/\n\t\r\b\f\u00e9\ud83d\ude00"}`, want: "a\"b\\c/\n\t\r\b\fé😀"},
		{name: "string lone surrogate", field: col(arrow.BinaryTypes.String), in: `{"c":"\ud800x"}`, want: "\uFFFDx"},
		{name: "string invalid utf8", field: col(arrow.BinaryTypes.String), in: "{\"c\":\"\xff\"}", err: `field "c": invalid UTF-8 in string`},
		{name: "string from number", field: col(arrow.BinaryTypes.String), in: `{"c":1}`, err: `expected string, got number`},
		{name: "string from object", field: col(arrow.BinaryTypes.String), in: `{"c":{"a":1}}`, err: `expected string, got object`},
		{name: "string raw json", field: col(arrow.BinaryTypes.String), opts: Options{RawJSONStrings: true}, in: `{"c": {"a": [1, 2]} }`, want: `{"a": [1, 2]}`},
		{name: "string raw json array", field: col(arrow.BinaryTypes.String), opts: Options{RawJSONStrings: true}, in: `{"c":[true]}`, want: `[true]`},
		{name: "string empty", field: col(arrow.BinaryTypes.String), in: `{"c":""}`, want: ""},
		{name: "large string", field: col(arrow.BinaryTypes.LargeString), in: `{"c":"x"}`, want: "x"},
		// binary
		{name: "binary", field: col(arrow.BinaryTypes.Binary), in: `{"c":"aGVsbG8="}`, want: []byte("hello")},
		{name: "binary unpadded", field: col(arrow.BinaryTypes.Binary), in: `{"c":"aGVsbG8"}`, want: []byte("hello")},
		{name: "binary url", field: col(arrow.BinaryTypes.Binary), in: `{"c":"-_8="}`, want: []byte{0xfb, 0xff}},
		{name: "binary empty", field: col(arrow.BinaryTypes.Binary), in: `{"c":""}`, want: []byte{}},
		{name: "binary invalid", field: col(arrow.BinaryTypes.Binary), in: `{"c":"!!!!"}`, err: `field "c": invalid binary "!!!!": not base64`},
		{name: "binary from number", field: col(arrow.BinaryTypes.Binary), in: `{"c":1}`, err: `expected binary, got number`},
		{name: "large binary", field: col(arrow.BinaryTypes.LargeBinary), in: `{"c":"AQI="}`, want: []byte{1, 2}},
		// fixed
		{name: "fixed", field: col(&arrow.FixedSizeBinaryType{ByteWidth: 4}), in: `{"c":"AQIDBA=="}`, want: []byte{1, 2, 3, 4}},
		{name: "fixed short", field: col(&arrow.FixedSizeBinaryType{ByteWidth: 4}), in: `{"c":"AQID"}`, err: `field "c": invalid fixed[4]: 3 bytes, want 4`},
		{name: "fixed from bool", field: col(&arrow.FixedSizeBinaryType{ByteWidth: 4}), in: `{"c":false}`, err: `expected fixed[4], got boolean`},
		// uuid
		{name: "uuid", field: col(extensions.NewUUIDType()), in: `{"c":"123E4567-e89b-12d3-a456-426614174000"}`, want: "123e4567-e89b-12d3-a456-426614174000"},
		{name: "uuid bare", field: col(extensions.NewUUIDType()), in: `{"c":"123e4567e89b12d3a456426614174000"}`, want: "123e4567-e89b-12d3-a456-426614174000"},
		{name: "uuid invalid", field: col(extensions.NewUUIDType()), in: `{"c":"123e4567-e89b-12d3-a456-42661417400g"}`, err: `field "c": invalid uuid "123e4567-e89b-12d3-a456-42661417400g": not a UUID`},
		{name: "uuid dashes misplaced", field: col(extensions.NewUUIDType()), in: `{"c":"123e4567e-89b-12d3-a456-426614174000"}`, err: `not a UUID`},
		{name: "uuid from number", field: col(extensions.NewUUIDType()), in: `{"c":1}`, err: `expected uuid, got number`},
		// date
		{name: "date", field: col(arrow.FixedWidthTypes.Date32), in: `{"c":"2026-02-28"}`, want: days("2026-02-28")},
		{name: "date leap", field: col(arrow.FixedWidthTypes.Date32), in: `{"c":"2024-02-29"}`, want: days("2024-02-29")},
		{name: "date before epoch", field: col(arrow.FixedWidthTypes.Date32), in: `{"c":"1900-03-01"}`, want: days("1900-03-01")},
		{name: "date not leap", field: col(arrow.FixedWidthTypes.Date32), in: `{"c":"2026-02-29"}`, err: `field "c": invalid date "2026-02-29": not a date (want YYYY-MM-DD)`},
		{name: "date short", field: col(arrow.FixedWidthTypes.Date32), in: `{"c":"2026-1-01"}`, err: `not a date`},
		{name: "date with time", field: col(arrow.FixedWidthTypes.Date32), in: `{"c":"2026-01-01T00:00:00Z"}`, err: `not a date`},
		{name: "date from number", field: col(arrow.FixedWidthTypes.Date32), in: `{"c":20000}`, err: `expected date, got number`},
		// time
		{name: "time", field: col(arrow.FixedWidthTypes.Time64us), in: `{"c":"12:34:56.789"}`, want: int64((12*3600+34*60+56)*1e6 + 789000)},
		{name: "time ns", field: col(arrow.FixedWidthTypes.Time64ns), in: `{"c":"00:00:01.000000001"}`, want: int64(1e9 + 1)},
		{name: "time invalid", field: col(arrow.FixedWidthTypes.Time64us), in: `{"c":"24:00:00"}`, err: `field "c": invalid time "24:00:00": not a time`},
		{name: "time from number", field: col(arrow.FixedWidthTypes.Time64us), in: `{"c":1}`, err: `expected time, got number`},
		// timestamps
		{name: "tstz Z", field: col(tsTZ), in: `{"c":"2026-01-01T00:00:00Z"}`, want: micros("2026-01-01T00:00:00Z")},
		{name: "tstz offset", field: col(tsTZ), in: `{"c":"2026-01-01T08:00:00.5+08:00"}`, want: micros("2026-01-01T00:00:00.5Z")},
		{name: "tstz negative offset", field: col(tsTZ), in: `{"c":"2025-12-31T19:00:00-05:00"}`, want: micros("2026-01-01T00:00:00Z")},
		{name: "tstz space", field: col(tsTZ), in: `{"c":"2026-01-01 00:00:00.123456z"}`, want: micros("2026-01-01T00:00:00.123456Z")},
		{name: "tstz truncates ns", field: col(tsTZ), in: `{"c":"2026-01-01T00:00:00.123456789Z"}`, want: micros("2026-01-01T00:00:00.123456Z")},
		{name: "tstz before epoch", field: col(tsTZ), in: `{"c":"1969-12-31T23:59:59.5Z"}`, want: int64(-500000)},
		{name: "tstz no zone", field: col(tsTZ), in: `{"c":"2026-01-01T00:00:00"}`, err: `field "c": invalid timestamptz "2026-01-01T00:00:00": has no zone offset`},
		{name: "tstz bad", field: col(tsTZ), in: `{"c":"2026-13-45T99:00"}`, err: `field "c": invalid timestamptz "2026-13-45T99:00": not an RFC 3339 timestamp`},
		{name: "tstz no seconds", field: col(tsTZ), in: `{"c":"2026-01-01T00:00Z"}`, err: `not an RFC 3339 timestamp`},
		{name: "tstz epoch ms", field: col(tsTZ), in: `{"c":1767225600123}`, want: micros("2026-01-01T00:00:00.123Z")},
		{name: "tstz epoch us", field: col(tsTZ), in: `{"c":1767225600123456}`, want: micros("2026-01-01T00:00:00.123456Z")},
		{name: "tstz epoch negative ms", field: col(tsTZ), in: `{"c":-1000}`, want: int64(-1e6)},
		{name: "tstz epoch fraction", field: col(tsTZ), in: `{"c":1.5}`, err: `field "c": invalid timestamptz "1.5": not an integer`},
		{name: "tstz from bool", field: col(tsTZ), in: `{"c":true}`, err: `expected timestamptz, got boolean`},
		{name: "ts wall clock", field: col(tsNTZ), in: `{"c":"2026-01-01T08:00:00"}`, want: micros("2026-01-01T08:00:00Z")},
		{name: "ts offset", field: col(tsNTZ), in: `{"c":"2026-01-01T08:00:00+08:00"}`, want: micros("2026-01-01T00:00:00Z")},
		{name: "ts ns", field: col(tsNSTZ), in: `{"c":"2026-01-01T00:00:00.123456789Z"}`, want: micros("2026-01-01T00:00:00Z")*1000 + 123456789},
		{name: "ts ns epoch ms", field: col(tsNSTZ), in: `{"c":1000}`, want: int64(1e9)},
		{name: "ts ns out of range", field: col(tsNSTZ), in: `{"c":"3000-01-01T00:00:00Z"}`, err: `invalid timestamptz_ns "3000-01-01T00:00:00Z": out of range`},
		{name: "ts ms unit", field: col(tsMS), in: `{"c":"2026-01-01T00:00:00.1239Z"}`, want: micros("2026-01-01T00:00:00.123Z") / 1000},
		{name: "ts ms unit epoch negative", field: col(tsMS), in: `{"c":-1500000000000000}`, want: int64(-1500000000000)},
		// decimals
		{name: "decimal", field: col(dec182), in: `{"c":12.34}`, want: "12.34"},
		{name: "decimal string", field: col(dec182), in: `{"c":"-0.5"}`, want: "-0.50"},
		{name: "decimal integer", field: col(dec182), in: `{"c":7}`, want: "7.00"},
		{name: "decimal trailing zeros", field: col(dec182), in: `{"c":"12.3400000"}`, want: "12.34"},
		{name: "decimal exponent", field: col(dec182), in: `{"c":1.5e2}`, want: "150.00"},
		{name: "decimal negative exponent", field: col(dec182), in: `{"c":"125e-2"}`, want: "1.25"},
		{name: "decimal zero", field: col(dec182), in: `{"c":0e99999}`, want: "0.00"},
		{name: "decimal max", field: col(dec182), in: `{"c":9999999999999999.99}`, want: "9999999999999999.99"},
		{name: "decimal no float rounding", field: col(dec182), in: `{"c":"0.1"}`, want: "0.10"},
		{name: "decimal too precise", field: col(dec182), in: `{"c":12.345}`, err: `field "c": invalid decimal(18,2) "12.345": too many decimal places`},
		{name: "decimal too large", field: col(dec182), in: `{"c":12345678901234567.8}`, err: `invalid decimal(18,2) "12345678901234567.8": out of range`},
		{name: "decimal junk string", field: col(dec182), in: `{"c":"12.3.4"}`, err: `not a number`},
		{name: "decimal empty string", field: col(dec182), in: `{"c":""}`, err: `not a number`},
		{name: "decimal from bool", field: col(dec182), in: `{"c":true}`, err: `expected decimal(18,2), got boolean`},
		{name: "decimal 38", field: col(&arrow.Decimal128Type{Precision: 38, Scale: 10}), in: `{"c":"-1234567890123456789012345678.0123456789"}`, want: "-1234567890123456789012345678.0123456789"},
		{name: "decimal64", field: col(&arrow.Decimal64Type{Precision: 10, Scale: 3}), in: `{"c":-1.5}`, want: "-1500"},
		{name: "decimal32", field: col(&arrow.Decimal32Type{Precision: 9, Scale: 0}), in: `{"c":123456789}`, want: "123456789"},
		// struct
		{name: "struct", field: col(structType), in: `{"c":{"a":1,"b":"x","z":[1]}}`, want: map[string]any{"a": int64(1), "b": "x"}},
		{name: "struct optional missing", field: col(structType), in: `{"c":{"a":1}}`, want: map[string]any{"a": int64(1), "b": nil}},
		{name: "struct required missing", field: col(structType), in: `{"c":{"b":"x"}}`, err: `missing required field "c.a"`},
		{name: "struct required null", field: col(structType), in: `{"c":{"a":null}}`, err: `field "c.a": null for a required field`},
		{name: "struct nested type error", field: col(structType), in: `{"c":{"a":"1"}}`, err: `field "c.a": expected long, got string`},
		{name: "struct from array", field: col(structType), in: `{"c":[]}`, err: `field "c": expected struct, got array`},
		{name: "struct null", field: col(structType), in: `{"c":null}`, want: nil},
		// list
		{name: "list", field: col(listType), in: `{"c":[1,null,3]}`, want: []any{int64(1), nil, int64(3)}},
		{name: "list empty", field: col(listType), in: `{"c":[]}`, want: []any{}},
		{name: "list element error", field: col(listType), in: `{"c":[1,"2"]}`, err: `field "c[1]": expected long, got string`},
		{name: "list required element null", field: col(listReq), in: `{"c":[1,null]}`, err: `field "c[1]": null for a required field`},
		{name: "list from object", field: col(listType), in: `{"c":{}}`, err: `expected list, got object`},
		{name: "large list", field: col(largeList), in: `{"c":["a","b"]}`, want: []any{"a", "b"}},
		// map
		{name: "map", field: col(mapType), in: `{"c":{"a":1,"b\u00e9":null}}`, want: map[string]any{"a": int64(1), "bé": nil}},
		{name: "map empty", field: col(mapType), in: `{"c":{}}`, want: map[string]any{}},
		{name: "map value error", field: col(mapType), in: `{"c":{"a":1,"b":true}}`, err: `field "c[\"b\"]": expected long, got boolean`},
		{name: "map required value null", field: col(mapReq), in: `{"c":{"a":null}}`, err: `field "c[\"a\"]": null for a required field`},
		{name: "map invalid key", field: col(mapType), in: "{\"c\":{\"\xff\":1}}", err: `invalid UTF-8 in map key`},
		{name: "map from string", field: col(mapType), in: `{"c":"x"}`, err: `expected map, got string`},
		// nesting
		{name: "nested", field: col(nested), in: `{"c":{"tags":[5],"attrs":{"k":6}}}`, want: map[string]any{"tags": []any{int64(5)}, "attrs": map[string]any{"k": int64(6)}}},
		{name: "nested error path", field: col(nested), in: `{"c":{"tags":[5,"x"]}}`, err: `field "c.tags[1]": expected long, got string`},
		// presence
		{name: "optional missing", field: col(arrow.PrimitiveTypes.Int64), in: `{}`, want: nil},
		{name: "optional null", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":null}`, want: nil},
		{name: "required missing", field: req(arrow.PrimitiveTypes.Int64), in: `{"x":1}`, err: `missing required field "c"`},
		{name: "required null", field: req(arrow.PrimitiveTypes.Int64), in: `{"c":null}`, err: `field "c": null for a required field`},
		{name: "unknown ignored", field: col(arrow.PrimitiveTypes.Int64), in: `{"zz":{"a":[1,{"b":null}]},"c":5}`, want: int64(5)},
		{name: "unknown rejected", field: col(arrow.PrimitiveTypes.Int64), opts: Options{RejectUnknown: true}, in: `{"c":5,"zz":1}`, err: `unknown field "zz"`},
		{name: "unknown nested rejected", field: col(structType), opts: Options{RejectUnknown: true}, in: `{"c":{"a":1,"q":1}}`, err: `unknown field "c.q"`},
		{name: "duplicate last wins", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":1,"c":2}`, want: int64(2)},
		{name: "escaped key", field: col(arrow.PrimitiveTypes.Int64), in: `{"\u0063":3}`, want: int64(3)},
		// document
		{name: "not an object", field: col(arrow.PrimitiveTypes.Int64), in: `[1]`, err: `expected a JSON object, got array`},
		{name: "null document", field: col(arrow.PrimitiveTypes.Int64), in: ` null `, err: `expected a JSON object, got null`},
		{name: "empty", field: col(arrow.PrimitiveTypes.Int64), in: ``, err: `invalid JSON at byte 0: unexpected end of input`},
		{name: "whitespace", field: col(arrow.PrimitiveTypes.Int64), in: " \n\t{\"c\" : 1 }\r\n", want: int64(1)},
		{name: "unterminated object", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":1`, err: `invalid JSON at byte 6: unexpected end of input`},
		{name: "missing value", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":}`, err: `invalid JSON at byte 5: unexpected '}'`},
		{name: "missing colon", field: col(arrow.PrimitiveTypes.Int64), in: `{"c" 1}`, err: `invalid JSON`},
		{name: "trailing comma", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":1,}`, err: `invalid JSON`},
		{name: "trailing data", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":1}x`, err: `invalid JSON at byte 7: unexpected 'x' after the value`},
		{name: "two documents", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":1}{"c":2}`, err: `after the value`},
		{name: "leading zero", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":01}`, err: `invalid JSON`},
		{name: "bare point", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":1.}`, err: `no digits after the decimal point`},
		{name: "bare exponent", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":1e}`, err: `no digits in the exponent`},
		{name: "minus alone", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":-}`, err: `invalid number`},
		{name: "bad literal", field: col(arrow.PrimitiveTypes.Int64), in: `{"c":tru}`, err: `invalid literal, want true`},
		{name: "bad escape", field: col(arrow.BinaryTypes.String), in: `{"c":"\x"}`, err: `invalid escape 'x'`},
		{name: "bad unicode escape", field: col(arrow.BinaryTypes.String), in: `{"c":"\u12"}`, err: `invalid \u escape`},
		{name: "control char", field: col(arrow.BinaryTypes.String), in: "{\"c\":\"a\nb\"}", err: `control character in string`},
		{name: "unterminated string", field: col(arrow.BinaryTypes.String), in: `{"c":"abc`, err: `unterminated string`},
		{name: "unterminated escaped string", field: col(arrow.BinaryTypes.String), in: `{"c":"a\"`, err: `unterminated string`},
		{name: "unquoted key", field: col(arrow.BinaryTypes.String), in: `{c:1}`, err: `invalid JSON at byte 1`},
		{name: "too deep", field: col(arrow.PrimitiveTypes.Int64), in: `{"x":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}`, err: `nested deeper than 512`},
		{name: "deep but allowed", field: col(arrow.PrimitiveTypes.Int64), in: `{"x":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `}`, want: nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			sc := arrow.NewSchema([]arrow.Field{c.field}, nil)
			d, err := NewDecoder(sc, c.opts)
			if err != nil {
				t.Fatalf("NewDecoder: %v", err)
			}
			b := d.NewBuilder(mem)
			defer b.Release()
			err = b.Append([]byte(c.in))
			if c.err != "" {
				if err == nil {
					t.Fatalf("Append(%s) = nil, want error containing %q", c.in, c.err)
				}
				if !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Append(%s) = %q, want it to contain %q", c.in, err, c.err)
				}
				if b.Len() != 0 {
					t.Fatalf("Len after a rejected record = %d, want 0", b.Len())
				}
				rec := b.NewRecord()
				defer rec.Release()
				if rec.NumRows() != 0 || rec.Column(0).Len() != 0 {
					t.Fatalf("rejected record left %d rows, column length %d", rec.NumRows(), rec.Column(0).Len())
				}
				return
			}
			if err != nil {
				t.Fatalf("Append(%s): %v", c.in, err)
			}
			if b.Len() != 1 {
				t.Fatalf("Len = %d, want 1", b.Len())
			}
			rec := b.NewRecord()
			defer rec.Release()
			if b.Len() != 0 {
				t.Fatalf("Len after NewRecord = %d, want 0", b.Len())
			}
			if err := validateRecord(rec, 1); err != nil {
				t.Fatal(err)
			}
			if got := cell(rec.Column(0), 0); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Append(%s): got %#v, want %#v", c.in, got, c.want)
			}
		})
	}
}

// validateRecord checks a record has n rows and consistent columns.
func validateRecord(rec arrow.RecordBatch, n int) error {
	if int(rec.NumRows()) != n {
		return fmt.Errorf("record has %d rows, want %d", rec.NumRows(), n)
	}
	for i, c := range rec.Columns() {
		if c.Len() != n {
			return fmt.Errorf("column %d has %d values, want %d", i, c.Len(), n)
		}
		if err := validateArray(c); err != nil {
			return fmt.Errorf("column %s: %w", rec.ColumnName(i), err)
		}
	}
	return nil
}

func validateArray(a arrow.Array) error {
	if v, ok := a.(interface{ ValidateFull() error }); ok {
		if err := v.ValidateFull(); err != nil {
			return err
		}
	}
	switch x := a.(type) {
	case *array.Struct:
		for j := 0; j < x.NumField(); j++ {
			if x.Field(j).Len() != x.Len() {
				return fmt.Errorf("struct child %d has %d values, want %d", j, x.Field(j).Len(), x.Len())
			}
			if err := validateArray(x.Field(j)); err != nil {
				return err
			}
		}
	case *array.Map:
		if x.Keys().Len() != x.Items().Len() {
			return fmt.Errorf("map has %d keys and %d items", x.Keys().Len(), x.Items().Len())
		}
		if x.Keys().NullN() != 0 {
			return fmt.Errorf("map has null keys")
		}
		return validateArray(x.Items())
	case *array.List:
		return validateArray(x.ListValues())
	case *array.LargeList:
		return validateArray(x.ListValues())
	}
	return nil
}

func TestNewDecoderUnsupported(t *testing.T) {
	for _, c := range []struct {
		name string
		f    arrow.Field
		err  string
	}{
		{"duration", col(arrow.FixedWidthTypes.Duration_us), `field "c": unsupported type duration[us]`},
		{"nested", col(arrow.StructOf(arrow.Field{Name: "d", Type: arrow.FixedWidthTypes.Duration_us})), `field "c.d": unsupported type`},
		{"map key", col(arrow.MapOf(arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Int64)), `unsupported map key type int64`},
		{"decimal256", col(&arrow.Decimal256Type{Precision: 40, Scale: 0}), `unsupported type`},
		{"time32", col(arrow.FixedWidthTypes.Time32ms), `unsupported type`},
		{"string view", col(arrow.BinaryTypes.StringView), `unsupported type`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewDecoder(arrow.NewSchema([]arrow.Field{c.f}, nil), Options{})
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("NewDecoder = %v, want error containing %q", err, c.err)
			}
		})
	}
	if _, err := NewDecoder(nil, Options{}); err == nil {
		t.Fatal("NewDecoder(nil) succeeded")
	}
}

// TestAtomic interleaves good and bad records over a nested schema: bad ones
// must leave no trace, whichever field fails.
func TestAtomic(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "m", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.Binary), Nullable: true},
		{Name: "st", Type: arrow.StructOf(
			arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int32},
			arrow.Field{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
		), Nullable: true},
		{Name: "last", Type: dec182},
	}, nil)
	d, err := NewDecoder(sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := d.NewBuilder(mem)
	defer b.Release()
	records := []struct {
		in string
		ok bool
	}{
		{`{"id":1,"s":"a","tags":["x","y"],"m":{"k":"AQ=="},"st":{"x":1,"l":[1,2]},"last":1}`, true},
		{`{"id":2,"s":"b","tags":["x","y"],"m":{"k":"AQ=="},"st":{"x":1,"l":[1,2]},"last":"x"}`, false},
		{`{"id":3,"s":"c","tags":["x",1],"last":1}`, false},
		{`{"id":4,"m":{"k":"AQ==","j":"!"},"last":1}`, false},
		{`{"id":5,"st":{"x":1,"l":[1,2,"3"]},"last":1}`, false},
		{`{"id":6,"st":{"l":[1,2]},"last":1}`, false},
		{`{"id":7,"st":null,"tags":null,"last":2.5}`, true},
		{`{"id":8,"st":{"x":1,"l":[1,2]},"last":1`, false},
		{`{"id":9,"st":{"x":3,"l":[]},"m":{},"tags":[],"last":"3"}`, true},
	}
	want := 0
	for _, r := range records {
		err := b.Append([]byte(r.in))
		if (err == nil) != r.ok {
			t.Fatalf("Append(%s) = %v, want ok=%v", r.in, err, r.ok)
		}
		if r.ok {
			want++
		}
		if b.Len() != want {
			t.Fatalf("Len = %d, want %d", b.Len(), want)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	if err := validateRecord(rec, 3); err != nil {
		t.Fatal(err)
	}
	var ids []any
	for i := 0; i < 3; i++ {
		ids = append(ids, cell(rec.Column(0), i))
	}
	if !reflect.DeepEqual(ids, []any{int64(1), int64(7), int64(9)}) {
		t.Fatalf("ids = %v", ids)
	}
	if got := cell(rec.Column(4), 2); !reflect.DeepEqual(got, map[string]any{"x": int64(3), "l": []any{}}) {
		t.Fatalf("st[2] = %#v", got)
	}
	if got := cell(rec.Column(3), 0); !reflect.DeepEqual(got, map[string]any{"k": []byte{1}}) {
		t.Fatalf("m[0] = %#v", got)
	}
	if got := cell(rec.Column(5), 1); got != "2.50" {
		t.Fatalf("last[1] = %v", got)
	}

	// The builder keeps working after NewRecord.
	if err := b.Append([]byte(`{"id":10,"last":0}`)); err != nil {
		t.Fatal(err)
	}
	rec2 := b.NewRecord()
	defer rec2.Release()
	if err := validateRecord(rec2, 1); err != nil {
		t.Fatal(err)
	}
}

// TestIcebergSchema decodes into the Arrow schema iceberg-go derives from an
// Iceberg schema (field ids in metadata, uuid extension, UTC timestamps).
func TestIcebergSchema(t *testing.T) {
	isc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "at", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		iceberg.NestedField{ID: 3, Name: "u", Type: iceberg.PrimitiveTypes.UUID},
		iceberg.NestedField{ID: 4, Name: "amount", Type: iceberg.DecimalTypeOf(18, 2)},
		iceberg.NestedField{ID: 5, Name: "tags", Type: &iceberg.ListType{ElementID: 7, Element: iceberg.PrimitiveTypes.String}},
		iceberg.NestedField{ID: 6, Name: "attrs", Type: &iceberg.MapType{KeyID: 8, KeyType: iceberg.PrimitiveTypes.String, ValueID: 9, ValueType: iceberg.PrimitiveTypes.Int32}},
		iceberg.NestedField{ID: 10, Name: "d", Type: iceberg.PrimitiveTypes.Date},
		iceberg.NestedField{ID: 11, Name: "f", Type: iceberg.FixedTypeOf(2)},
		iceberg.NestedField{ID: 12, Name: "t", Type: iceberg.PrimitiveTypes.Time},
	)
	for _, large := range []bool{false, true} {
		sc, err := icetable.SchemaToArrowSchema(isc, nil, true, large)
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDecoder(sc, Options{})
		if err != nil {
			t.Fatal(err)
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		b := d.NewBuilder(mem)
		in := `{"id":1,"at":"2026-01-01T00:00:00Z","u":"123e4567-e89b-12d3-a456-426614174000","amount":"9.99",` +
			`"tags":["a"],"attrs":{"x":1},"d":"2026-01-02","f":"AQI=","t":"01:02:03"}`
		if err := b.Append([]byte(in)); err != nil {
			t.Fatal(err)
		}
		if err := b.Append([]byte(`{"id":2,"at":1767225600000}`)); err != nil {
			t.Fatal(err)
		}
		if err := b.Append([]byte(`{"id":3}`)); err == nil || err.Error() != `missing required field "at"` {
			t.Fatalf("missing at: %v", err)
		}
		rec := b.NewRecord()
		if err := validateRecord(rec, 2); err != nil {
			t.Fatal(err)
		}
		row := map[string]any{}
		for i, f := range sc.Fields() {
			row[f.Name] = cell(rec.Column(i), 0)
		}
		want := map[string]any{
			"id": int64(1), "at": micros("2026-01-01T00:00:00Z"), "u": "123e4567-e89b-12d3-a456-426614174000",
			"amount": "9.99", "tags": []any{"a"}, "attrs": map[string]any{"x": int64(1)}, "d": days("2026-01-02"),
			"f": []byte{1, 2}, "t": int64(3723e6),
		}
		if !reflect.DeepEqual(row, want) {
			t.Fatalf("large=%v: row = %#v\nwant %#v", large, row, want)
		}
		if got := cell(rec.Column(1), 1); got != micros("2026-01-01T00:00:00Z") {
			t.Fatalf("epoch ms at = %v", got)
		}
		rec.Release()
		b.Release()
		mem.AssertSize(t, 0)
	}
}

func TestParseDecimal(t *testing.T) {
	for _, c := range []struct {
		in          string
		prec, scale int
		neg         bool
		mag         u128
		err         error
	}{
		{"0", 1, 0, false, u128{}, nil},
		{"-0.00", 1, 0, true, u128{}, nil},
		{".5", 2, 1, false, u128{lo: 5}, nil},
		{"5.", 2, 1, false, u128{lo: 50}, nil},
		{"+1", 2, 0, false, u128{lo: 1}, nil},
		{"99999999999999999999999999999999999999", 38, 0, false, u128{hi: 0x4b3b4ca85a86c47a, lo: 0x098a223fffffffff}, nil},
		{"1e38", 38, 0, false, u128{}, errOutOfRange},
		{"1e", 5, 0, false, u128{}, errNotNumber},
		{".", 5, 0, false, u128{}, errNotNumber},
		{"1x", 5, 0, false, u128{}, errNotNumber},
		{"0.001", 5, 2, false, u128{}, errInexact},
	} {
		neg, mag, err := parseDecimal([]byte(c.in), c.prec, c.scale)
		if !errors.Is(err, c.err) || (err == nil && (neg != c.neg || mag != c.mag)) {
			t.Errorf("parseDecimal(%q, %d, %d) = %v, %#v, %v; want %v, %#v, %v", c.in, c.prec, c.scale, neg, mag, err, c.neg, c.mag, c.err)
		}
	}
}

func TestDaysFromCivil(t *testing.T) {
	for d := time.Date(-400, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2500; d = d.AddDate(0, 0, 97) {
		if got, want := daysFromCivil(d.Year(), int(d.Month()), d.Day()), d.Unix()/86400; got != want {
			t.Fatalf("daysFromCivil(%s) = %d, want %d", d.Format("2006-01-02"), got, want)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "event_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "event_time", Type: tsTZ},
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "device_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "event_type", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "page_url", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ad_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "city", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "amount", Type: dec182, Nullable: true},
		{Name: "properties", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	d, err := NewDecoder(sc, Options{})
	if err != nil {
		b.Fatal(err)
	}
	bld := d.NewBuilder(memory.NewGoAllocator())
	defer bld.Release()
	raw := []byte(`{"event_id":1099511627776,"event_time":"2026-01-01T00:00:01.234Z","user_id":123456,` +
		`"device_id":"d-0123456789ab","event_type":"page_view","page_url":"https://m.shop.example.cn/item/42",` +
		`"ad_id":null,"city":"广州","amount":"19.90","properties":"{\"os\":\"android\",\"net\":\"wifi\"}"}`)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := bld.Append(raw); err != nil {
			b.Fatal(err)
		}
		if bld.Len() == 8192 {
			bld.NewRecord().Release()
		}
	}
}

// BenchmarkAppendClicks decodes the clickstream records of the Kafka
// ingest benchmark (integration: BenchmarkKafkaIngest) with the fast path
// and with the slow path alone, reporting CPU time per record:
//
//	go test -run '^$' -bench AppendClicks -benchtime 300000x ./source/jsonrow/
func BenchmarkAppendClicks(b *testing.B) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "event_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "event_time", Type: tsTZ},
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "session_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "event_type", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "page_url", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "device", Type: arrow.StructOf(
			arrow.Field{Name: "os", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "app_version", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	}, nil)
	d, err := NewDecoder(sc, Options{})
	if err != nil {
		b.Fatal(err)
	}
	raw := []byte(`{"event_id":123456,"event_time":"2026-01-01T00:02:03.456Z","user_id":23456,"session_id":"s-00000a1b",` +
		`"event_type":"click","page_url":"https://shop.example.com/item/42?ref=home","referrer":"https://www.example.org/",` +
		`"device":{"os":"android","app_version":"5.6"},"tags":["a","b"]}`)
	for _, slow := range []bool{false, true} {
		name := map[bool]string{false: "fast", true: "slow"}[slow]
		b.Run(name, func(b *testing.B) {
			bld := d.NewBuilder(memory.NewGoAllocator())
			defer bld.Release()
			bld.slowOnly = slow
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			c0 := benchutil.CPUTime()
			for i := 0; b.Loop(); i++ {
				if err := bld.Append(raw); err != nil {
					b.Fatal(err)
				}
				if bld.Len() == 8192 {
					bld.NewRecord().Release()
				}
			}
			b.ReportMetric(float64((benchutil.CPUTime()-c0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
