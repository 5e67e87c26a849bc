package transform

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Join and dedup keys are encoded so that equal values of compatible
// types are equal bytes: every integer type (and dates and timestamps) as
// its int64 value, every string and binary type as its bytes. A null
// component is its own value for dedup and never matches in a join.

// keyClass is what kind of key value an Arrow type holds.
type keyClass int

const (
	classInt keyClass = iota + 1
	classBytes
	classFloat
	classBool
	classDecimal
)

func classOf(t arrow.DataType) (keyClass, error) {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP, arrow.TIME32, arrow.TIME64:
		return classInt, nil
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY, arrow.FIXED_SIZE_BINARY,
		arrow.STRING_VIEW, arrow.BINARY_VIEW:
		return classBytes, nil
	case arrow.FLOAT32, arrow.FLOAT64:
		return classFloat, nil
	case arrow.BOOL:
		return classBool, nil
	case arrow.DECIMAL128:
		return classDecimal, nil
	}
	return 0, fmt.Errorf("a key of type %s is %w", t, ErrUnsupported)
}

// ints returns an integer-class array's values as int64s (dst reused)
// and its validity.
func ints(a arrow.Array, dst []int64) []int64 {
	n := a.Len()
	dst = dst[:0]
	switch a := a.(type) {
	case *array.Int64:
		return append(dst, a.Int64Values()...)
	case *array.Int32:
		for _, v := range a.Int32Values() {
			dst = append(dst, int64(v))
		}
	case *array.Int16:
		for _, v := range a.Int16Values() {
			dst = append(dst, int64(v))
		}
	case *array.Int8:
		for _, v := range a.Int8Values() {
			dst = append(dst, int64(v))
		}
	case *array.Uint64:
		for _, v := range a.Uint64Values() {
			dst = append(dst, int64(v))
		}
	case *array.Uint32:
		for _, v := range a.Uint32Values() {
			dst = append(dst, int64(v))
		}
	case *array.Uint16:
		for _, v := range a.Uint16Values() {
			dst = append(dst, int64(v))
		}
	case *array.Uint8:
		for _, v := range a.Uint8Values() {
			dst = append(dst, int64(v))
		}
	case *array.Date32:
		for _, v := range a.Date32Values() {
			dst = append(dst, int64(v))
		}
	case *array.Date64:
		for _, v := range a.Date64Values() {
			dst = append(dst, int64(v))
		}
	case *array.Timestamp:
		for _, v := range a.TimestampValues() {
			dst = append(dst, int64(v))
		}
	case *array.Time32:
		for _, v := range a.Time32Values() {
			dst = append(dst, int64(v))
		}
	case *array.Time64:
		for _, v := range a.Time64Values() {
			dst = append(dst, int64(v))
		}
	default:
		for range n {
			dst = append(dst, 0)
		}
	}
	return dst
}

// bytesOf returns row i of a bytes-class array.
func bytesOf(a arrow.Array, i int) []byte {
	switch a := a.(type) {
	case *array.String:
		return []byte(a.Value(i))
	case *array.LargeString:
		return []byte(a.Value(i))
	case *array.StringView:
		return []byte(a.Value(i))
	case *array.Binary:
		return a.Value(i)
	case *array.LargeBinary:
		return a.Value(i)
	case *array.BinaryView:
		return a.Value(i)
	case *array.FixedSizeBinary:
		return a.Value(i)
	}
	return nil
}

// keyEncoder encodes multi-column keys row by row.
type keyEncoder struct {
	cols    []arrow.Array
	classes []keyClass
	ints    [][]int64
}

func newKeyEncoder(cols []arrow.Array) (*keyEncoder, error) {
	e := &keyEncoder{cols: cols, classes: make([]keyClass, len(cols)), ints: make([][]int64, len(cols))}
	for i, c := range cols {
		k, err := classOf(c.DataType())
		if err != nil {
			return nil, err
		}
		e.classes[i] = k
		if k == classInt {
			e.ints[i] = ints(c, nil)
		}
	}
	return e, nil
}

// append appends row i's key to dst; null reports a null component.
func (e *keyEncoder) append(dst []byte, i int) (out []byte, null bool) {
	for c, a := range e.cols {
		if a.IsNull(i) {
			dst = append(dst, 0)
			null = true
			continue
		}
		switch e.classes[c] {
		case classInt:
			dst = append(dst, 'i')
			dst = binary.LittleEndian.AppendUint64(dst, uint64(e.ints[c][i]))
		case classBytes:
			b := bytesOf(a, i)
			dst = append(dst, 's')
			dst = binary.AppendUvarint(dst, uint64(len(b)))
			dst = append(dst, b...)
		case classFloat:
			var f float64
			switch a := a.(type) {
			case *array.Float32:
				f = float64(a.Value(i))
			case *array.Float64:
				f = a.Value(i)
			}
			dst = append(dst, 'f')
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
		case classBool:
			v := byte('0')
			if a.(*array.Boolean).Value(i) {
				v = '1'
			}
			dst = append(dst, 'b', v)
		case classDecimal:
			d := a.(*array.Decimal128).Value(i)
			dst = append(dst, 'd')
			dst = binary.LittleEndian.AppendUint64(dst, d.LowBits())
			dst = binary.LittleEndian.AppendUint64(dst, uint64(d.HighBits()))
		}
	}
	return dst, null
}

// compatible reports whether keys of types a and b can be equal.
func compatible(a, b arrow.DataType) bool {
	ca, err1 := classOf(a)
	cb, err2 := classOf(b)
	if err1 != nil || err2 != nil || ca != cb {
		return false
	}
	if ca == classDecimal {
		return a.(*arrow.Decimal128Type).Scale == b.(*arrow.Decimal128Type).Scale
	}
	if a.ID() == arrow.TIMESTAMP && b.ID() == arrow.TIMESTAMP {
		return a.(*arrow.TimestampType).Unit == b.(*arrow.TimestampType).Unit
	}
	return true
}
