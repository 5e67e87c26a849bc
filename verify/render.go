package verify

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// render appends a canonical text of a's value at i to b: equal values of
// the same logical type render equally whatever their Arrow width (int32
// and int64, string and large string), nulls as \N (which no value
// renders as: strings are quoted).
func render(b []byte, a arrow.Array, i int) []byte {
	if a.IsNull(i) {
		return append(b, `\N`...)
	}
	switch c := a.(type) {
	case *array.Int8:
		return strconv.AppendInt(b, int64(c.Value(i)), 10)
	case *array.Int16:
		return strconv.AppendInt(b, int64(c.Value(i)), 10)
	case *array.Int32:
		return strconv.AppendInt(b, int64(c.Value(i)), 10)
	case *array.Int64:
		return strconv.AppendInt(b, c.Value(i), 10)
	case *array.Uint8:
		return strconv.AppendUint(b, uint64(c.Value(i)), 10)
	case *array.Uint16:
		return strconv.AppendUint(b, uint64(c.Value(i)), 10)
	case *array.Uint32:
		return strconv.AppendUint(b, uint64(c.Value(i)), 10)
	case *array.Uint64:
		return strconv.AppendUint(b, c.Value(i), 10)
	case *array.Float32:
		return strconv.AppendFloat(b, float64(c.Value(i)), 'g', -1, 32)
	case *array.Float64:
		return strconv.AppendFloat(b, c.Value(i), 'g', -1, 64)
	case *array.Boolean:
		return strconv.AppendBool(b, c.Value(i))
	case *array.String:
		return strconv.AppendQuote(b, c.Value(i))
	case *array.LargeString:
		return strconv.AppendQuote(b, c.Value(i))
	case *array.Binary:
		return hex.AppendEncode(append(b, "0x"...), c.Value(i))
	case *array.LargeBinary:
		return hex.AppendEncode(append(b, "0x"...), c.Value(i))
	case *array.FixedSizeBinary:
		return hex.AppendEncode(append(b, "0x"...), c.Value(i))
	case *array.Decimal128:
		return append(b, c.Value(i).ToString(c.DataType().(*arrow.Decimal128Type).Scale)...)
	case *array.Date32:
		return c.Value(i).ToTime().AppendFormat(b, time.DateOnly)
	case *array.Time64:
		return strconv.AppendInt(append(b, 't'), int64(c.Value(i)), 10)
	case *array.Timestamp:
		unit := c.DataType().(*arrow.TimestampType).Unit
		return c.Value(i).ToTime(unit).UTC().AppendFormat(b, time.RFC3339Nano)
	}
	return fmt.Appendf(b, "%v", a.GetOneForMarshal(i))
}

// renderString is render as a string.
func renderString(a arrow.Array, i int) string { return string(render(nil, a, i)) }

// number returns a's value at i as a float64, for errors of measures;
// ok is false for nulls and non-numeric columns.
func number(a arrow.Array, i int) (float64, bool) {
	if a.IsNull(i) {
		return 0, false
	}
	switch c := a.(type) {
	case *array.Int32:
		return float64(c.Value(i)), true
	case *array.Int64:
		return float64(c.Value(i)), true
	case *array.Float32:
		return float64(c.Value(i)), true
	case *array.Float64:
		return c.Value(i), true
	case *array.Decimal128:
		return c.Value(i).ToFloat64(c.DataType().(*arrow.Decimal128Type).Scale), true
	}
	return 0, false
}

// measureErrors returns the absolute and relative error of got against want;
// the relative error of a nonzero error against zero is +Inf.
func measureErrors(want, got float64) (abs, rel float64) {
	abs = math.Abs(got - want)
	switch {
	case abs == 0:
		return 0, 0
	case want == 0:
		return abs, math.Inf(1)
	}
	return abs, abs / math.Abs(want)
}
