package aggregate

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/cespare/xxhash/v2"
)

// colView gives typed access to one column of a batch, without copying
// where Arrow's buffers can be used as they are.
type colView struct {
	arr   arrow.Array
	kind  valueKind
	nulls bool

	ints   []int64
	floats []float64
	decs   []decimal128.Num
	bools  *array.Boolean
	// A view of values read without Arrow (arr nil): the row count,
	// the rows' validity (nil: none is null) and booleans.
	n      int
	valids []bool
	bs     []bool
	// Variable-length values: data[offs[i]:offs[i+1]].
	data   []byte
	offs32 []int32
	offs64 []int64

	hashes []uint64
	hashed bool

	// codes are the rows as indices into a dictionary of ncodes values,
	// numbered dictGen (-1: null; nil: not read from dictionaries).
	codes   []int32
	ncodes  int
	dictGen int
}

// scratch holds buffers reused between batches.
type scratch struct {
	ints   [][]int64
	floats [][]float64
	hashes [][]uint64
}

func (s *scratch) intBuf(n int) []int64 {
	if len(s.ints) > 0 {
		b := s.ints[len(s.ints)-1]
		s.ints = s.ints[:len(s.ints)-1]
		if cap(b) >= n {
			return b[:n]
		}
	}
	return make([]int64, n)
}

func (s *scratch) floatBuf(n int) []float64 {
	if len(s.floats) > 0 {
		b := s.floats[len(s.floats)-1]
		s.floats = s.floats[:len(s.floats)-1]
		if cap(b) >= n {
			return b[:n]
		}
	}
	return make([]float64, n)
}

func (s *scratch) hashBuf(n int) []uint64 {
	if len(s.hashes) > 0 {
		b := s.hashes[len(s.hashes)-1]
		s.hashes = s.hashes[:len(s.hashes)-1]
		if cap(b) >= n {
			return b[:n]
		}
	}
	return make([]uint64, n)
}

// release returns a view's buffers to s.
func (s *scratch) release(c *colView) {
	if c.hashes != nil {
		s.hashes = append(s.hashes, c.hashes)
	}
	if c.arr == nil {
		// The values of a direct read belong to its column reader.
		return
	}
	if c.ints != nil {
		if _, own := c.arr.(*array.Int64); !own {
			s.ints = append(s.ints, c.ints)
		}
	}
	if c.floats != nil {
		if _, own := c.arr.(*array.Float64); !own {
			s.floats = append(s.floats, c.floats)
		}
	}
}

// newColView views arr as kind.
func newColView(arr arrow.Array, kind valueKind, s *scratch) (*colView, error) {
	n := arr.Len()
	c := &colView{arr: arr, kind: kind, nulls: arr.NullN() > 0, n: n}
	bad := func() error {
		return fmt.Errorf("column of Arrow type %s cannot be read as %s", arr.DataType(), kindName(kind))
	}
	switch kind {
	case kInt:
		switch a := arr.(type) {
		case *array.Int64:
			c.ints = a.Int64Values()
		case *array.Int32:
			c.ints = s.intBuf(n)
			for i, v := range a.Int32Values() {
				c.ints[i] = int64(v)
			}
		case *array.Date32:
			c.ints = s.intBuf(n)
			for i, v := range a.Date32Values() {
				c.ints[i] = int64(v)
			}
		case *array.Timestamp:
			c.ints = s.intBuf(n)
			for i, v := range a.TimestampValues() {
				c.ints[i] = int64(v)
			}
		default:
			return nil, bad()
		}
	case kFloat:
		switch a := arr.(type) {
		case *array.Float64:
			c.floats = a.Float64Values()
		case *array.Float32:
			c.floats = s.floatBuf(n)
			for i, v := range a.Float32Values() {
				c.floats[i] = float64(v)
			}
		default:
			return nil, bad()
		}
	case kDecimal:
		a, ok := arr.(*array.Decimal128)
		if !ok {
			return nil, bad()
		}
		c.decs = a.Values()
	case kBool:
		a, ok := arr.(*array.Boolean)
		if !ok {
			return nil, bad()
		}
		c.bools = a
	case kBytes:
		switch a := arr.(type) {
		case *array.String:
			c.offs32 = a.ValueOffsets()
		case *array.Binary:
			c.offs32 = a.ValueOffsets()
		case *array.LargeString:
			c.offs64 = a.ValueOffsets()
		case *array.LargeBinary:
			c.offs64 = a.ValueOffsets()
		default:
			return nil, bad()
		}
		// Offsets index the whole value buffer (not ValueBytes, which
		// starts at the first value of a sliced array).
		if b := arr.Data().Buffers()[2]; b != nil {
			c.data = b.Bytes()
		}
	}
	return c, nil
}

func kindName(k valueKind) string {
	switch k {
	case kInt:
		return "integer"
	case kFloat:
		return "floating point"
	case kDecimal:
		return "decimal"
	case kBytes:
		return "string or binary"
	case kBool:
		return "boolean"
	}
	return "unknown"
}

func (c *colView) valid(i int) bool {
	switch {
	case !c.nulls:
		return true
	case c.valids != nil:
		return c.valids[i]
	}
	return c.arr.IsValid(i)
}

// boolAt is value i of a kBool column.
func (c *colView) boolAt(i int) bool {
	if c.bs != nil {
		return c.bs[i]
	}
	return c.bools.Value(i)
}

// bytesAt is value i of a kBytes column.
func (c *colView) bytesAt(i int) []byte {
	if c.offs32 != nil {
		return c.data[c.offs32[i]:c.offs32[i+1]]
	}
	return c.data[c.offs64[i]:c.offs64[i+1]]
}

// hashAll returns the 64-bit xxhash of every value (nulls' entries are
// undefined), computed once per batch and shared by the measures of the
// column.
func (c *colView) hashAll(s *scratch) []uint64 {
	if c.hashed {
		return c.hashes
	}
	n := c.n
	c.hashes = s.hashBuf(n)
	c.hashed = true
	var b [16]byte
	switch c.kind {
	case kInt:
		for i, v := range c.ints {
			binary.LittleEndian.PutUint64(b[:8], uint64(v))
			c.hashes[i] = xxhash.Sum64(b[:8])
		}
	case kFloat:
		for i, v := range c.floats {
			binary.LittleEndian.PutUint64(b[:8], canonicalFloatBits(v))
			c.hashes[i] = xxhash.Sum64(b[:8])
		}
	case kDecimal:
		for i, v := range c.decs {
			binary.LittleEndian.PutUint64(b[:8], v.LowBits())
			binary.LittleEndian.PutUint64(b[8:], uint64(v.HighBits()))
			c.hashes[i] = xxhash.Sum64(b[:16])
		}
	case kBool:
		for i := range n {
			b[0] = 0
			if c.boolAt(i) {
				b[0] = 1
			}
			c.hashes[i] = xxhash.Sum64(b[:1])
		}
	case kBytes:
		for i := range n {
			c.hashes[i] = xxhash.Sum64(c.bytesAt(i))
		}
	}
	return c.hashes
}

// canonicalFloatBits maps -0 to 0 and every NaN to one NaN, so equal
// values hash equally.
func canonicalFloatBits(f float64) uint64 {
	switch {
	case f == 0:
		return 0
	case math.IsNaN(f):
		return 0x7ff8000000000001
	}
	return math.Float64bits(f)
}
