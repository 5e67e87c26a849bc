package pqgo

import (
	"unsafe"

	"github.com/parquet-go/parquet-go"
)

// rawValue mirrors the layout of parquet.Value (v0.32.0), so the flat
// column encoders can stamp values out of a template without a call per
// value. fastValues is false — and the encoders take the slow path
// through parquet-go's constructors — if the layout ever differs.
type rawValue struct {
	ptr  *byte
	u64  uint64
	kind int8
	def  byte
	rep  byte
	col  uint16
}

func asRaw(v parquet.Value) rawValue { return *(*rawValue)(unsafe.Pointer(&v)) }

func asRawSlice(vs []parquet.Value) []rawValue {
	return unsafe.Slice((*rawValue)(unsafe.Pointer(unsafe.SliceData(vs))), len(vs))
}

var fastValues = checkLayout()

func checkLayout() bool {
	if unsafe.Sizeof(parquet.Value{}) != unsafe.Sizeof(rawValue{}) {
		return false
	}
	b := []byte("xyz")
	same := func(got parquet.Value, want rawValue) bool {
		r := asRaw(got)
		if r != want {
			return false
		}
		// and back: the stamped value reads as the real one
		back := *(*parquet.Value)(unsafe.Pointer(&want))
		return parquet.Equal(back, got) && back.DefinitionLevel() == got.DefinitionLevel() &&
			back.RepetitionLevel() == got.RepetitionLevel() && back.Column() == got.Column()
	}
	i64 := asRaw(parquet.Int64Value(0).Level(1, 2, 3))
	i64.u64 = uint64(1<<40 + 5)
	i32 := asRaw(parquet.Int32Value(0).Level(0, 1, 7))
	neg := int64(-9)
	i32.u64 = uint64(neg)
	f64 := asRaw(parquet.DoubleValue(0).Level(0, 1, 2))
	f64.u64 = 0x400921fb54442d18
	bo := asRaw(parquet.BooleanValue(false).Level(0, 0, 1))
	bo.u64 = 1
	ba := asRaw(parquet.ByteArrayValue(nil).Level(0, 1, 4))
	ba.ptr, ba.u64 = &b[0], 3
	fx := asRaw(parquet.FixedLenByteArrayValue(nil).Level(0, 1, 5))
	fx.ptr, fx.u64 = &b[0], 3
	return same(parquet.Int64Value(1<<40+5).Level(1, 2, 3), i64) &&
		same(parquet.Int32Value(-9).Level(0, 1, 7), i32) &&
		same(parquet.DoubleValue(3.141592653589793).Level(0, 1, 2), f64) &&
		same(parquet.BooleanValue(true).Level(0, 0, 1), bo) &&
		same(parquet.ByteArrayValue(b).Level(0, 1, 4), ba) &&
		same(parquet.FixedLenByteArrayValue(b).Level(0, 1, 5), fx) &&
		asRaw(parquet.Value{}.Level(0, 0, 9)).kind == 0 && asRaw(parquet.Value{}.Level(0, 0, 9)).col == ^uint16(9)
}
