package pqgo

import (
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/parquet-go/parquet-go"
)

// accessor returns the Parquet value of row i of a leaf array (levels not
// set; the caller checks nulls).
type accessor func(i int) parquet.Value

// accessorFor binds a leaf's Arrow array.
func accessorFor(lf *leafCol, arr arrow.Array) (accessor, error) {
	bad := func() error {
		return fmt.Errorf("column %s: unexpected Arrow array %s", lf.path, arr.DataType())
	}
	if ext, ok := arr.(array.ExtensionArray); ok {
		arr = ext.Storage()
	}
	switch lf.phys {
	case physBool:
		a, ok := arr.(*array.Boolean)
		if !ok {
			return nil, bad()
		}
		return func(i int) parquet.Value { return parquet.BooleanValue(a.Value(i)) }, nil
	case physInt32:
		switch a := arr.(type) {
		case *array.Int32:
			v := a.Int32Values()
			return func(i int) parquet.Value { return parquet.Int32Value(v[i]) }, nil
		case *array.Date32:
			v := a.Date32Values()
			return func(i int) parquet.Value { return parquet.Int32Value(int32(v[i])) }, nil
		case *array.Decimal128:
			v := a.Values()
			return func(i int) parquet.Value { return parquet.Int32Value(int32(v[i].LowBits())) }, nil
		}
	case physInt64:
		switch a := arr.(type) {
		case *array.Int64:
			v := a.Int64Values()
			return func(i int) parquet.Value { return parquet.Int64Value(v[i]) }, nil
		case *array.Timestamp:
			v := a.TimestampValues()
			return func(i int) parquet.Value { return parquet.Int64Value(int64(v[i])) }, nil
		case *array.Time64:
			v := a.Time64Values()
			return func(i int) parquet.Value { return parquet.Int64Value(int64(v[i])) }, nil
		case *array.Decimal128:
			v := a.Values()
			return func(i int) parquet.Value { return parquet.Int64Value(int64(v[i].LowBits())) }, nil
		}
	case physFloat:
		if a, ok := arr.(*array.Float32); ok {
			v := a.Float32Values()
			return func(i int) parquet.Value { return parquet.FloatValue(v[i]) }, nil
		}
	case physDouble:
		if a, ok := arr.(*array.Float64); ok {
			v := a.Float64Values()
			return func(i int) parquet.Value { return parquet.DoubleValue(v[i]) }, nil
		}
	case physBytes:
		if get, ok := bytesOf(arr); ok {
			return func(i int) parquet.Value { return parquet.ByteArrayValue(get(i)) }, nil
		}
	case physFixed:
		if a, ok := arr.(*array.FixedSizeBinary); ok {
			return func(i int) parquet.Value { return parquet.FixedLenByteArrayValue(a.Value(i)) }, nil
		}
	}
	return nil, bad()
}

// valueChunk is how many values are handed to a column writer at once.
const valueChunk = 4096

// colEnc writes one leaf column of one file.
type colEnc struct {
	lf   *leafCol
	cw   *parquet.ColumnWriter
	vals []parquet.Value
	u64  []uint64
	ptrs []*byte
	// nested traversal state, bound per batch
	arrs []arrow.Array
	get  accessor
}

func newColEnc(lf *leafCol, cw *parquet.ColumnWriter) *colEnc {
	return &colEnc{lf: lf, cw: cw, vals: make([]parquet.Value, 0, valueChunk+64), arrs: make([]arrow.Array, len(lf.steps))}
}

// write writes the selected rows of rec.
func (e *colEnc) write(rec arrow.RecordBatch, s sel) error {
	arr := rec.Column(e.lf.top)
	if e.lf.flat {
		return e.writeFlat(arr, s)
	}
	return e.writeNested(arr, s)
}

func (e *colEnc) flush() error {
	if len(e.vals) == 0 {
		return nil
	}
	_, err := e.cw.WriteRowValues(e.vals)
	e.vals = e.vals[:0]
	return err
}

func (e *colEnc) writeFlat(arr arrow.Array, s sel) error {
	if !fastValues {
		return e.writeFlatSlow(arr, s)
	}
	col := e.lf.idx
	n := s.n()
	nulls := arr.NullN() > 0
	if nulls && e.lf.maxDef == 0 {
		return fmt.Errorf("column %s is required but has %d nulls", e.lf.path, arr.NullN())
	}
	if ext, ok := arr.(array.ExtensionArray); ok {
		arr = ext.Storage()
	}
	src, err := flatSource(e.lf, arr)
	if err != nil {
		return err
	}
	var valid []byte
	off := arr.Data().Offset()
	if nulls {
		valid = arr.NullBitmapBytes()
	}
	tmpl := asRaw(e.lf.template(col))
	null := asRaw(parquet.Value{}.Level(0, 0, col))
	if cap(e.u64) < valueChunk {
		e.u64 = make([]uint64, valueChunk)
		e.ptrs = make([]*byte, valueChunk)
	}
	for start := 0; start < n; start += valueChunk {
		end := min(start+valueChunk, n)
		m := end - start
		u, p := e.u64[:m], e.ptrs[:m]
		src.extract(u, p, s, start, end)
		vals := e.vals[:m]
		raw := asRawSlice(vals)
		switch {
		case !nulls && src.bytes:
			for k := range raw {
				t := tmpl
				t.ptr, t.u64 = p[k], u[k]
				raw[k] = t
			}
		case !nulls:
			for k := range raw {
				t := tmpl
				t.u64 = u[k]
				raw[k] = t
			}
		default:
			for k := range raw {
				i := off + s.at(start+k)
				if valid[i>>3]&(1<<(i&7)) == 0 {
					raw[k] = null
					continue
				}
				t := tmpl
				t.ptr, t.u64 = p[k], u[k]
				raw[k] = t
			}
		}
		if _, err := e.cw.WriteRowValues(vals); err != nil {
			return err
		}
	}
	return nil
}

// template is a value of the leaf's kind at the leaf's maximum levels.
func (lf *leafCol) template(col int) parquet.Value {
	var v parquet.Value
	switch lf.phys {
	case physBool:
		v = parquet.BooleanValue(false)
	case physInt32:
		v = parquet.Int32Value(0)
	case physInt64:
		v = parquet.Int64Value(0)
	case physFloat:
		v = parquet.FloatValue(0)
	case physDouble:
		v = parquet.DoubleValue(0)
	case physBytes:
		v = parquet.ByteArrayValue(nil)
	case physFixed:
		v = parquet.FixedLenByteArrayValue(nil)
	}
	return v.Level(lf.maxRep, lf.maxDef, col)
}

// source extracts the 64-bit words (and data pointers) parquet-go
// values carry, for a flat column.
type source struct {
	bytes bool
	i32   []int32
	i64   []int64
	dec   []decimal128.Num
	f32   []float32
	f64   []float64
	bits  []byte // booleans
	boff  int
	off32 []int32
	off64 []int64
	data  []byte
	width int // fixed
}

func flatSource(lf *leafCol, arr arrow.Array) (*source, error) {
	s := &source{}
	switch a := arr.(type) {
	case *array.Boolean:
		s.bits, s.boff = a.Data().Buffers()[1].Bytes(), a.Data().Offset()
	case *array.Int32:
		s.i32 = a.Int32Values()
	case *array.Date32:
		s.i32 = arrow.Int32Traits.CastFromBytes(arrow.Date32Traits.CastToBytes(a.Date32Values()))
	case *array.Int64:
		s.i64 = a.Int64Values()
	case *array.Timestamp:
		s.i64 = arrow.Int64Traits.CastFromBytes(arrow.TimestampTraits.CastToBytes(a.TimestampValues()))
	case *array.Time64:
		s.i64 = arrow.Int64Traits.CastFromBytes(arrow.Time64Traits.CastToBytes(a.Time64Values()))
	case *array.Decimal128:
		s.dec = a.Values()
	case *array.Float32:
		s.f32 = a.Float32Values()
	case *array.Float64:
		s.f64 = a.Float64Values()
	case *array.String:
		s.bytes, s.off32, s.data = true, a.ValueOffsets(), rawValues(a.Data())
	case *array.Binary:
		s.bytes, s.off32, s.data = true, a.ValueOffsets(), rawValues(a.Data())
	case *array.LargeString:
		s.bytes, s.off64, s.data = true, a.ValueOffsets(), rawValues(a.Data())
	case *array.LargeBinary:
		s.bytes, s.off64, s.data = true, a.ValueOffsets(), rawValues(a.Data())
	case *array.FixedSizeBinary:
		s.bytes, s.width = true, a.DataType().(*arrow.FixedSizeBinaryType).ByteWidth
		if b := a.Data().Buffers()[1]; b != nil {
			s.data = b.Bytes()[a.Data().Offset()*s.width:]
		}
	default:
		return nil, fmt.Errorf("column %s: unexpected Arrow array %s", lf.path, arr.DataType())
	}
	return s, nil
}

// extract fills u (and p, for byte arrays) with rows [start, end) of sel.
func (s *source) extract(u []uint64, p []*byte, sl sel, start, end int) {
	idx := sl.idx
	lo := sl.lo + start
	if idx != nil {
		idx = idx[start:end]
	}
	switch {
	case s.i64 != nil:
		if idx == nil {
			for k, v := range s.i64[lo : lo+len(u)] {
				u[k] = uint64(v)
			}
		} else {
			for k, i := range idx {
				u[k] = uint64(s.i64[i])
			}
		}
	case s.i32 != nil:
		if idx == nil {
			for k, v := range s.i32[lo : lo+len(u)] {
				u[k] = uint64(int64(v))
			}
		} else {
			for k, i := range idx {
				u[k] = uint64(int64(s.i32[i]))
			}
		}
	case s.dec != nil:
		// Decimals of precision ≤ 18 fit the low 64 bits; INT32 ones
		// are sign-extended from 32 bits, as Int32Value does.
		for k := range u {
			u[k] = s.dec[sl.at(start+k)].LowBits()
		}
	case s.f64 != nil:
		for k := range u {
			u[k] = math.Float64bits(s.f64[sl.at(start+k)])
		}
	case s.f32 != nil:
		for k := range u {
			u[k] = uint64(math.Float32bits(s.f32[sl.at(start+k)]))
		}
	case s.bits != nil:
		for k := range u {
			i := s.boff + sl.at(start+k)
			u[k] = uint64(s.bits[i>>3]>>(i&7)) & 1
		}
	case s.off32 != nil:
		if idx == nil {
			offs := s.off32[lo : lo+len(u)+1]
			for k := range u {
				a, b := offs[k], offs[k+1]
				u[k], p[k] = uint64(b-a), ptrAt(s.data, int(a), int(b))
			}
		} else {
			for k, i := range idx {
				a, b := s.off32[i], s.off32[i+1]
				u[k], p[k] = uint64(b-a), ptrAt(s.data, int(a), int(b))
			}
		}
	case s.off64 != nil:
		for k := range u {
			i := sl.at(start + k)
			a, b := s.off64[i], s.off64[i+1]
			u[k], p[k] = uint64(b-a), ptrAt(s.data, int(a), int(b))
		}
	case s.width > 0:
		w := s.width
		for k := range u {
			i := sl.at(start + k)
			u[k], p[k] = uint64(w), ptrAt(s.data, i*w, i*w+w)
		}
	}
}

// ptrAt is the address of data[a:b], nil when empty (as
// parquet.ByteArrayValue makes it for an empty slice of a nil buffer).
func ptrAt(data []byte, a, b int) *byte {
	if a == b {
		return nil
	}
	return &data[a]
}

func (e *colEnc) writeFlatSlow(arr arrow.Array, s sel) error {
	get, err := accessorFor(e.lf, arr)
	if err != nil {
		return err
	}
	col := e.lf.idx
	n := s.n()
	nulls := arr.NullN() > 0
	if nulls && e.lf.maxDef == 0 {
		return fmt.Errorf("column %s is required but has %d nulls", e.lf.path, arr.NullN())
	}
	def := e.lf.maxDef
	null := parquet.Value{}.Level(0, 0, col)
	for start := 0; start < n; start += valueChunk {
		end := min(start+valueChunk, n)
		vals := e.vals[:end-start]
		for k := range vals {
			if i := s.at(start + k); nulls && arr.IsNull(i) {
				vals[k] = null
			} else {
				vals[k] = get(i).Level(0, def, col)
			}
		}
		if _, err := e.cw.WriteRowValues(vals); err != nil {
			return err
		}
	}
	return nil
}

// writeNested shreds the leaf out of nested top-level values (Dremel
// levels), handing whole rows to the column writer.
func (e *colEnc) writeNested(arr arrow.Array, s sel) error {
	// Bind the arrays along the path for this batch.
	a := arr
	for d, st := range e.lf.steps {
		if ext, ok := a.(array.ExtensionArray); ok && st.kind != stepPrim {
			a = ext.Storage()
		}
		e.arrs[d] = a
		switch st.kind {
		case stepStruct:
			sa, ok := a.(*array.Struct)
			if !ok {
				return fmt.Errorf("column %s: expected a struct array, got %s", e.lf.path, a.DataType())
			}
			a = sa.Field(e.lf.steps[d].child)
		case stepList:
			la, ok := a.(array.ListLike)
			if !ok {
				return fmt.Errorf("column %s: expected a list array, got %s", e.lf.path, a.DataType())
			}
			a = la.ListValues()
		case stepMap:
			ma, ok := a.(*array.Map)
			if !ok {
				return fmt.Errorf("column %s: expected a map array, got %s", e.lf.path, a.DataType())
			}
			if st.child == 0 {
				a = ma.Keys()
			} else {
				a = ma.Items()
			}
		}
	}
	if fastValues && e.lf.structsOnly() {
		return e.writeStructs(s)
	}
	if fastValues && e.lf.primList() {
		return e.writeList(s)
	}
	get, err := accessorFor(e.lf, e.arrs[len(e.arrs)-1])
	if err != nil {
		return err
	}
	e.get = get
	n := s.n()
	for k := 0; k < n; k++ {
		e.walk(0, s.at(k), 0, 0)
		if len(e.vals) >= valueChunk {
			if err := e.flush(); err != nil {
				return err
			}
		}
	}
	return e.flush()
}

func (e *colEnc) walk(d, i, rep, def int) {
	st := &e.lf.steps[d]
	a := e.arrs[d]
	if st.optional {
		if a.IsNull(i) {
			e.vals = append(e.vals, parquet.Value{}.Level(rep, def, e.lf.idx))
			return
		}
		def++
	}
	switch st.kind {
	case stepPrim:
		e.vals = append(e.vals, e.get(i).Level(rep, def, e.lf.idx))
	case stepStruct:
		e.walk(d+1, i, rep, def)
	case stepList, stepMap:
		start, end := a.(array.ListLike).ValueOffsets(i)
		if start == end {
			e.vals = append(e.vals, parquet.Value{}.Level(rep, def, e.lf.idx))
			return
		}
		for j := start; j < end; j++ {
			r := rep
			if j > start {
				r = st.rep
			}
			e.walk(d+1, int(j), r, def+1)
		}
	}
}

var sampleSeed = maphash.MakeSeed()

// sampleRows is how many leading rows decide the columns' encodings.
const sampleRows = 1 << 15

// chooseDict decides dictionary encoding for each leaf from the leading
// rows, the way parquet-mr and arrow-go fall back from a dictionary: keep
// it when dictionary plus indexes are smaller than the plain values. A
// table's parquet.enable.dictionary and per-column settings override.
func chooseDict(p *plan, cfg *config, recs []arrow.RecordBatch) {
	var seen keySet // reused by every leaf
	for _, lf := range p.leaves {
		if on, ok := cfg.dictColumns[lf.path]; ok {
			lf.dict = on && lf.phys != physBool
			continue
		}
		lf.dict = false
		if !cfg.dictEnabled || lf.phys == physBool {
			continue
		}
		var arrs []arrow.Array
		rows := 0
		for _, rec := range recs {
			if rows >= sampleRows {
				break
			}
			if a := leafArray(lf, rec.Column(lf.top)); a != nil && a.Len() > 0 {
				arrs = append(arrs, a)
				rows += a.Len()
			}
		}
		lf.dict = dictPays(arrs, &seen)
	}
}

// leafArray descends to a leaf's values array (all rows of the batch).
func leafArray(lf *leafCol, a arrow.Array) arrow.Array {
	for _, st := range lf.steps {
		if ext, ok := a.(array.ExtensionArray); ok {
			a = ext.Storage()
		}
		switch st.kind {
		case stepStruct:
			sa, ok := a.(*array.Struct)
			if !ok {
				return nil
			}
			a = sa.Field(st.child)
		case stepList:
			la, ok := a.(array.ListLike)
			if !ok {
				return nil
			}
			a = la.ListValues()
		case stepMap:
			ma, ok := a.(*array.Map)
			if !ok {
				return nil
			}
			if st.child == 0 {
				a = ma.Keys()
			} else {
				a = ma.Items()
			}
		}
	}
	if ext, ok := a.(array.ExtensionArray); ok {
		a = ext.Storage()
	}
	return a
}

// dictPays estimates plain and dictionary sizes of the sampled values (the
// first sampleRows non-null values of arrs), with seen as scratch.
func dictPays(arrs []arrow.Array, seen *keySet) bool {
	// total is how many values the sample will hold: a fixed-width column
	// whose distinct values already make up half of that cannot pay (its
	// dictionary alone is half the plain size), so sampling stops there
	// with the answer it would have reached at the end.
	total := int64(0)
	for _, arr := range arrs {
		total += int64(arr.Len() - arr.NullN())
	}
	total = min(total, sampleRows)
	seen.reset(int(total))
	var n, plain, dictBytes int64
	varlen := false
	for _, arr := range arrs {
		var key func(i int) uint64
		width := int64(0)
		var get func(i int) []byte
		switch a := arr.(type) {
		case *array.Int32:
			v := a.Int32Values()
			width = 4
			key = func(i int) uint64 { return uint64(uint32(v[i])) }
		case *array.Date32:
			v := a.Date32Values()
			width = 4
			key = func(i int) uint64 { return uint64(uint32(v[i])) }
		case *array.Int64:
			v := a.Int64Values()
			width = 8
			key = func(i int) uint64 { return uint64(v[i]) }
		case *array.Timestamp:
			v := a.TimestampValues()
			width = 8
			key = func(i int) uint64 { return uint64(v[i]) }
		case *array.Time64:
			v := a.Time64Values()
			width = 8
			key = func(i int) uint64 { return uint64(v[i]) }
		case *array.Float32:
			v := a.Float32Values()
			width = 4
			key = func(i int) uint64 { return uint64(math.Float32bits(v[i])) }
		case *array.Float64:
			v := a.Float64Values()
			width = 8
			key = func(i int) uint64 { return math.Float64bits(v[i]) }
		case *array.Decimal128:
			v := a.Values()
			width = 8
			key = func(i int) uint64 { return v[i].LowBits() }
		case *array.FixedSizeBinary:
			width = int64(a.DataType().(*arrow.FixedSizeBinaryType).ByteWidth)
			key = func(i int) uint64 { return maphash.Bytes(sampleSeed, a.Value(i)) }
		default:
			var ok bool
			if get, ok = bytesOf(arr); !ok {
				return false
			}
			varlen = true
			key = func(i int) uint64 { return maphash.Bytes(sampleSeed, get(i)) }
		}
		for i := 0; i < arr.Len() && n < sampleRows; i++ {
			if arr.IsNull(i) {
				continue
			}
			n++
			k := key(i)
			w := width
			if get != nil {
				w = int64(len(get(i))) + 4
			}
			plain += w
			if seen.add(k) {
				dictBytes += w
				if get == nil && 2*int64(seen.len) >= total {
					return false
				}
			}
		}
	}
	if n == 0 {
		return true
	}
	indexBits := int64(bits.Len(uint(seen.len)))
	est := dictBytes + n*indexBits/8
	if !varlen {
		// Plain numbers often compress far better than their bit-packed
		// indexes (timestamps, ids): a dictionary must halve them.
		return 2*est < plain
	}
	return est < plain
}

// keySet is a set of uint64 keys by open addressing, for dictPays: a map
// of tens of thousands of entries spent most of the sampling in rehashes.
type keySet struct {
	slots   []uint64 // 0: empty (the key 0 is hasZero)
	hasZero bool
	len     int
	shift   uint
}

// reset empties the set and sizes it for up to n keys.
func (s *keySet) reset(n int) {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	if cap(s.slots) >= size {
		s.slots = s.slots[:size]
		clear(s.slots)
	} else {
		s.slots = make([]uint64, size)
	}
	s.shift = uint(64 - bits.TrailingZeros(uint(size)))
	s.hasZero, s.len = false, 0
}

// add inserts k and reports whether it was new. The set is sized by reset
// to stay at most half full.
func (s *keySet) add(k uint64) bool {
	if k == 0 {
		if s.hasZero {
			return false
		}
		s.hasZero = true
		s.len++
		return true
	}
	mask := uint64(len(s.slots) - 1)
	for i := (k * 0x9E3779B97F4A7C15) >> s.shift; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = k
			s.len++
			return true
		case k:
			return false
		}
	}
}
