package tabletest

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Cell returns a comparable Go value of a[i], for comparing rows in
// tests: nil for null; int64 for int and long; string for strings,
// binaries and decimals (at their scale); time.Time in UTC for
// timestamps; map[string]any for structs; []any for lists. Other types
// give "unhandled <type>".
func Cell(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch x := a.(type) {
	case *array.Int64:
		return x.Value(i)
	case *array.Int32:
		return int64(x.Value(i))
	case *array.String:
		return x.Value(i)
	case *array.LargeString:
		return x.Value(i)
	case *array.Binary:
		return string(x.Value(i))
	case *array.LargeBinary:
		return string(x.Value(i))
	case *array.Timestamp:
		toTime, _ := x.DataType().(*arrow.TimestampType).GetToTimeFunc()
		return toTime(x.Value(i)).UTC()
	case *array.Decimal128:
		return x.Value(i).ToString(x.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Struct:
		m := map[string]any{}
		st := x.DataType().(*arrow.StructType)
		for k := 0; k < x.NumField(); k++ {
			m[st.Field(k).Name] = Cell(x.Field(k), i)
		}
		return m
	case *array.List:
		start, end := x.ValueOffsets(i)
		var out []any
		for k := start; k < end; k++ {
			out = append(out, Cell(x.ListValues(), int(k)))
		}
		return out
	}
	return fmt.Sprintf("unhandled %T", a)
}
