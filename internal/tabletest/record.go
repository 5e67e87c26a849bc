package tabletest

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Record builds a record batch of schema sc from rows of Go values, one
// per field: nil for null; int64 (or int) for long and int columns;
// float64 for doubles; string for strings; []byte for binaries;
// time.Time (or int64 in the column's unit) for timestamps; decimal128.Num
// for decimals; bool for booleans. A value of another type panics: it is
// a mistake in the test.
func Record(sc *arrow.Schema, rows ...[]any) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for _, row := range rows {
		for c, v := range row {
			appendValue(b.Field(c), v)
		}
	}
	return b.NewRecordBatch()
}

func appendValue(fb array.Builder, v any) {
	if v == nil {
		fb.AppendNull()
		return
	}
	switch fb := fb.(type) {
	case *array.Int64Builder:
		fb.Append(toInt64(v))
		return
	case *array.Int32Builder:
		fb.Append(int32(toInt64(v)))
		return
	case *array.Float64Builder:
		if f, ok := v.(float64); ok {
			fb.Append(f)
			return
		}
	case *array.StringBuilder:
		if s, ok := v.(string); ok {
			fb.Append(s)
			return
		}
	case *array.BinaryBuilder:
		if p, ok := v.([]byte); ok {
			fb.Append(p)
			return
		}
	case *array.BooleanBuilder:
		if x, ok := v.(bool); ok {
			fb.Append(x)
			return
		}
	case *array.Decimal128Builder:
		if n, ok := v.(decimal128.Num); ok {
			fb.Append(n)
			return
		}
	case *array.TimestampBuilder:
		if ts, ok := v.(time.Time); ok {
			unit := fb.Type().(*arrow.TimestampType).Unit
			t, err := arrow.TimestampFromTime(ts, unit)
			if err != nil {
				panic(err)
			}
			fb.Append(t)
			return
		}
		fb.Append(arrow.Timestamp(toInt64(v)))
		return
	}
	panic(fmt.Sprintf("tabletest.Record: a %T for a %s column", v, fb.Type()))
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case int:
		return int64(x)
	case int32:
		return int64(x)
	}
	panic(fmt.Sprintf("tabletest.Record: a %T for an integer column", v))
}

// IDs is the ids from, from+1, ..., to-1.
func IDs(from, to int64) []int64 {
	out := make([]int64, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}
