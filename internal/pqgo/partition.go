package pqgo

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
)

// sel selects rows of a record batch: the range [lo, hi), or idx.
type sel struct {
	lo, hi int
	idx    []int32
}

func (s sel) n() int {
	if s.idx != nil {
		return len(s.idx)
	}
	return s.hi - s.lo
}

func (s sel) at(k int) int {
	if s.idx != nil {
		return int(s.idx[k])
	}
	return s.lo + k
}

// slice returns the rows [a, b) of s.
func (s sel) slice(a, b int) sel {
	if s.idx != nil {
		return sel{idx: s.idx[a:b:b]}
	}
	return sel{lo: s.lo + a, hi: s.lo + b}
}

// segment is rows of one record batch.
type segment struct {
	batch int
	sel   sel
}

// partition is the rows of one partition, in input order.
type partition struct {
	id     int
	values map[int]any // partition field id -> value (nil: null)
	record []any       // values in spec order
	path   string      // partition path, "" when unpartitioned
	segs   []segment
	rows   int64
}

const (
	microsPerDay  = int64(86_400_000_000)
	microsPerHour = int64(3_600_000_000)
)

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// pfield computes one partition field for rows of record batches.
type pfield struct {
	field   iceberg.PartitionField
	resType iceberg.Type
	chain   []int // Arrow column index, then struct child indices
	void    bool

	code    func(arr arrow.Array) (func(i int) (uint64, bool), error) // binds a batch's leaf array
	decode  func(code uint64) any                                     // source code -> source value
	resolve func(v any) any                                           // source value -> partition value

	interned map[string]uint64 // variable-width source values -> code
	values   []any             // interned code -> source value
	memo     map[uint64]int32  // source code -> result index
	results  []any             // result index -> partition value
	resIdx   map[any]int32
}

// ComparablePartitionValue is the partition value v as a map key: bytes
// as a string, floats by their bits (NaNs as one).
func ComparablePartitionValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case float32:
		if x != x {
			return math.Float32bits(float32(math.NaN()))
		}
		return math.Float32bits(x)
	case float64:
		if x != x {
			return math.Float64bits(math.NaN())
		}
		return math.Float64bits(x)
	}
	return v
}

// result maps a source code to the index of its partition value; -1 is
// null.
func (f *pfield) result(code uint64) int32 {
	if r, ok := f.memo[code]; ok {
		return r
	}
	v := f.resolve(f.decode(code))
	r := int32(-1)
	if v != nil {
		k := ComparablePartitionValue(v)
		var ok bool
		if r, ok = f.resIdx[k]; !ok {
			r = int32(len(f.results))
			f.results = append(f.results, v)
			f.resIdx[k] = r
		}
	}
	f.memo[code] = r
	return r
}

func (f *pfield) intern(b []byte, value func() any) uint64 {
	if c, ok := f.interned[string(b)]; ok {
		return c
	}
	c := uint64(len(f.values))
	f.values = append(f.values, value())
	f.interned[string(b)] = c
	return c
}

func (f *pfield) internedValue(code uint64) any { return f.values[code] }

// newPField binds a partition field to the Arrow schema, mirroring
// iceberg-go's bindPartitionTransform through the transforms' public
// Transformer functions.
func newPField(pf iceberg.PartitionField, sc *iceberg.Schema, asc *arrow.Schema) (*pfield, error) {
	f := &pfield{
		field: pf, interned: map[string]uint64{}, memo: map[uint64]int32{}, resIdx: map[any]int32{},
	}
	src, ok := sc.FindFieldByID(pf.SourceID())
	if !ok {
		return nil, fmt.Errorf("%w: partition field %s: source column %d not in the schema", ErrUnsupported, pf.Name, pf.SourceID())
	}
	srcType := src.Type
	f.resType = pf.Transform.ResultType(srcType)
	name, _ := sc.FindColumnName(pf.SourceID())
	chain, ok := arrowPath(asc, name)
	if !ok {
		return nil, fmt.Errorf("%w: partition source column %s not in the Arrow schema", ErrUnsupported, name)
	}
	f.chain = chain

	var timeUnit int64 // timestamp sources reduced to days or hours first
	switch t := pf.Transform.(type) {
	case iceberg.IdentityTransform:
		f.resolve = func(v any) any { return v }
	case iceberg.VoidTransform:
		f.void = true
		f.resolve = func(any) any { return nil }
	case iceberg.BucketTransform:
		if !t.CanTransform(srcType) {
			return nil, fmt.Errorf("%w: %s on %s", ErrUnsupported, pf.Transform, srcType)
		}
		fn := t.Transformer(srcType)
		f.resolve = func(v any) any {
			if o := fn(v); o.Valid {
				return o.Val
			}
			return nil
		}
	case iceberg.TruncateTransform:
		fn, err := t.Transformer(srcType)
		if err != nil {
			return nil, fmt.Errorf("%w: %s on %s: %w", ErrUnsupported, pf.Transform, srcType, err)
		}
		f.resolve = fn
	case iceberg.YearTransform, iceberg.MonthTransform, iceberg.DayTransform, iceberg.HourTransform:
		tt := pf.Transform.(iceberg.TimeTransform)
		switch srcType.(type) {
		case iceberg.DateType:
		case iceberg.TimestampType, iceberg.TimestampTzType:
			timeUnit = microsPerDay
		default:
			return nil, fmt.Errorf("%w: %s on %s", ErrUnsupported, pf.Transform, srcType)
		}
		if _, hour := pf.Transform.(iceberg.HourTransform); hour {
			if timeUnit == 0 {
				return nil, fmt.Errorf("%w: hour on %s", ErrUnsupported, srcType)
			}
			// The source code is the hour: the result itself.
			timeUnit = microsPerHour
			f.resolve = func(v any) any { return v }
			break
		}
		// Year, month and day of a timestamp are those of its date.
		fn, err := tt.Transformer(iceberg.PrimitiveTypes.Date)
		if err != nil {
			return nil, fmt.Errorf("%w: %s on %s: %w", ErrUnsupported, pf.Transform, srcType, err)
		}
		_, day := pf.Transform.(iceberg.DayTransform)
		f.resolve = func(v any) any {
			o := fn(v)
			switch {
			case !o.Valid:
				return nil
			case day:
				return iceberg.Date(o.Val)
			}
			return o.Val
		}
	default:
		return nil, fmt.Errorf("%w: partition transform %s", ErrUnsupported, pf.Transform)
	}
	if err := f.bindSource(srcType, timeUnit); err != nil {
		return nil, err
	}
	return f, nil
}

// bindSource sets code and decode for the source column's type.
// timeUnit > 0 reduces timestamps to days or hours before the transform.
func (f *pfield) bindSource(t iceberg.Type, timeUnit int64) error {
	typeErr := func(arr arrow.Array) error {
		return fmt.Errorf("%w: partition source of %s: Arrow type %s for %s", ErrUnsupported, f.field.Name, arr.DataType(), t)
	}
	fixed := func(value func(b []byte) any) {
		f.decode = f.internedValue
		f.code = func(arr arrow.Array) (func(int) (uint64, bool), error) {
			if ext, ok := arr.(array.ExtensionArray); ok {
				arr = ext.Storage()
			}
			a, ok := arr.(*array.FixedSizeBinary)
			if !ok {
				return nil, typeErr(arr)
			}
			return func(i int) (uint64, bool) {
				if a.IsNull(i) {
					return 0, false
				}
				b := a.Value(i)
				return f.intern(b, func() any { return value(b) }), true
			}, nil
		}
	}
	varlen := func(value func(b []byte) any) {
		f.decode = f.internedValue
		f.code = func(arr arrow.Array) (func(int) (uint64, bool), error) {
			get, ok := bytesOf(arr)
			if !ok {
				return nil, typeErr(arr)
			}
			return func(i int) (uint64, bool) {
				if arr.IsNull(i) {
					return 0, false
				}
				b := get(i)
				return f.intern(b, func() any { return value(b) }), true
			}, nil
		}
	}
	switch tt := t.(type) {
	case iceberg.BooleanType:
		f.decode = func(c uint64) any { return c == 1 }
		f.code = func(arr arrow.Array) (func(int) (uint64, bool), error) {
			a, ok := arr.(*array.Boolean)
			if !ok {
				return nil, typeErr(arr)
			}
			return func(i int) (uint64, bool) {
				if a.IsNull(i) {
					return 0, false
				}
				if a.Value(i) {
					return 1, true
				}
				return 0, true
			}, nil
		}
	case iceberg.Int32Type, iceberg.DateType:
		if _, ok := t.(iceberg.DateType); ok {
			f.decode = func(c uint64) any { return iceberg.Date(int32(uint32(c))) }
		} else {
			f.decode = func(c uint64) any { return int32(uint32(c)) }
		}
		f.code = func(arr arrow.Array) (func(int) (uint64, bool), error) {
			var vals []int32
			switch a := arr.(type) {
			case *array.Int32:
				vals = a.Int32Values()
			case *array.Date32:
				vals = arrow.Int32Traits.CastFromBytes(arrow.Date32Traits.CastToBytes(a.Date32Values()))
			default:
				return nil, typeErr(arr)
			}
			return func(i int) (uint64, bool) {
				if arr.IsNull(i) {
					return 0, false
				}
				return uint64(uint32(vals[i])), true
			}, nil
		}
	case iceberg.Int64Type, iceberg.TimeType, iceberg.TimestampType, iceberg.TimestampTzType:
		switch timeUnit {
		case microsPerDay:
			f.decode = func(c uint64) any { return iceberg.Date(int32(int64(c))) }
		case microsPerHour:
			f.decode = func(c uint64) any { return int32(int64(c)) }
		default:
			switch t.(type) {
			case iceberg.Int64Type:
				f.decode = func(c uint64) any { return int64(c) }
			case iceberg.TimeType:
				f.decode = func(c uint64) any { return iceberg.Time(int64(c)) }
			default:
				f.decode = func(c uint64) any { return iceberg.Timestamp(int64(c)) }
			}
		}
		f.code = func(arr arrow.Array) (func(int) (uint64, bool), error) {
			var vals []int64
			switch a := arr.(type) {
			case *array.Int64:
				vals = a.Int64Values()
			case *array.Time64:
				vals = arrow.Int64Traits.CastFromBytes(arrow.Time64Traits.CastToBytes(a.Time64Values()))
			case *array.Timestamp:
				if a.DataType().(*arrow.TimestampType).Unit != arrow.Microsecond {
					return nil, typeErr(arr)
				}
				vals = arrow.Int64Traits.CastFromBytes(arrow.TimestampTraits.CastToBytes(a.TimestampValues()))
			default:
				return nil, typeErr(arr)
			}
			if timeUnit > 0 {
				return func(i int) (uint64, bool) {
					if arr.IsNull(i) {
						return 0, false
					}
					return uint64(floorDiv(vals[i], timeUnit)), true
				}, nil
			}
			return func(i int) (uint64, bool) {
				if arr.IsNull(i) {
					return 0, false
				}
				return uint64(vals[i]), true
			}, nil
		}
	case iceberg.Float32Type:
		f.decode = func(c uint64) any { return math.Float32frombits(uint32(c)) }
		f.code = func(arr arrow.Array) (func(int) (uint64, bool), error) {
			a, ok := arr.(*array.Float32)
			if !ok {
				return nil, typeErr(arr)
			}
			vals := a.Float32Values()
			return func(i int) (uint64, bool) {
				if a.IsNull(i) {
					return 0, false
				}
				return uint64(math.Float32bits(vals[i])), true
			}, nil
		}
	case iceberg.Float64Type:
		f.decode = func(c uint64) any { return math.Float64frombits(c) }
		f.code = func(arr arrow.Array) (func(int) (uint64, bool), error) {
			a, ok := arr.(*array.Float64)
			if !ok {
				return nil, typeErr(arr)
			}
			vals := a.Float64Values()
			return func(i int) (uint64, bool) {
				if a.IsNull(i) {
					return 0, false
				}
				return math.Float64bits(vals[i]), true
			}, nil
		}
	case iceberg.StringType:
		varlen(func(b []byte) any { return string(b) })
	case iceberg.BinaryType:
		varlen(func(b []byte) any { return slices.Clone(b) })
	case iceberg.FixedType:
		fixed(func(b []byte) any { return slices.Clone(b) })
	case iceberg.UUIDType:
		fixed(func(b []byte) any { return uuid.UUID(b) })
	case iceberg.DecimalType:
		scale := tt.Scale()
		f.decode = f.internedValue
		f.code = func(arr arrow.Array) (func(int) (uint64, bool), error) {
			a, ok := arr.(*array.Decimal128)
			if !ok {
				return nil, typeErr(arr)
			}
			vals := a.Values()
			var buf [16]byte
			return func(i int) (uint64, bool) {
				if a.IsNull(i) {
					return 0, false
				}
				v := vals[i]
				binary.LittleEndian.PutUint64(buf[:8], v.LowBits())
				binary.LittleEndian.PutUint64(buf[8:], uint64(v.HighBits()))
				return f.intern(buf[:], func() any { return iceberg.Decimal{Val: v, Scale: scale} }), true
			}, nil
		}
	default:
		return fmt.Errorf("%w: partition source type %s", ErrUnsupported, t)
	}
	return nil
}

// bytesOf returns the value accessor of a string or binary array.
func bytesOf(arr arrow.Array) (func(i int) []byte, bool) {
	switch a := arr.(type) {
	case *array.String:
		offs, data := a.ValueOffsets(), rawValues(a.Data())
		return func(i int) []byte { return data[offs[i]:offs[i+1]] }, true
	case *array.LargeString:
		offs, data := a.ValueOffsets(), rawValues(a.Data())
		return func(i int) []byte { return data[offs[i]:offs[i+1]] }, true
	case *array.Binary:
		offs, data := a.ValueOffsets(), rawValues(a.Data())
		return func(i int) []byte { return data[offs[i]:offs[i+1]] }, true
	case *array.LargeBinary:
		offs, data := a.ValueOffsets(), rawValues(a.Data())
		return func(i int) []byte { return data[offs[i]:offs[i+1]] }, true
	}
	return nil, false
}

// rawValues is the whole value buffer of a binary-like array; its offsets
// index it directly.
func rawValues(d arrow.ArrayData) []byte {
	if b := d.Buffers()[2]; b != nil {
		return b.Bytes()
	}
	return nil
}

// partitioner groups the rows of record batches by partition.
type partitioner struct {
	spec   iceberg.PartitionSpec
	fields []*pfield
	sort   []compute.SortKey
	parts  []*partition
	byKey  map[string]*partition
	key    []byte
	ridx   []int32 // per partition field, the current row's result index
}

func newPartitioner(spec iceberg.PartitionSpec, sc *iceberg.Schema, asc *arrow.Schema, order icetable.SortOrder) (*partitioner, error) {
	p := &partitioner{spec: spec, byKey: map[string]*partition{}}
	for _, pf := range spec.Fields() {
		f, err := newPField(pf, sc, asc)
		if err != nil {
			return nil, err
		}
		p.fields = append(p.fields, f)
	}
	p.ridx = make([]int32, len(p.fields))
	if !order.IsUnsorted() {
		// As iceberg-go: each batch is sorted on its own by the source
		// columns of the sort order (top-level only), and files claim no
		// sort order.
		for _, sf := range order.Fields() {
			idx := -1
			for i, f := range sc.Fields() {
				if f.ID == sf.SourceID() {
					idx = i
				}
			}
			if idx < 0 {
				return nil, fmt.Errorf("%w: sort order on nested column %d", ErrUnsupported, sf.SourceID())
			}
			col := -1
			for i, f := range asc.Fields() {
				if id, ok := arrowFieldID(f); ok && id == sf.SourceID() {
					col = i
				}
			}
			if col < 0 {
				return nil, fmt.Errorf("%w: sort column %d not in the Arrow schema", ErrUnsupported, sf.SourceID())
			}
			key := compute.SortKey{ColumnIndex: col, Order: compute.SortOrderAscending, NullPlacement: compute.SortNullsAtEnd}
			if sf.Direction == icetable.SortDESC {
				key.Order = compute.SortOrderDescending
			}
			if sf.NullOrder == icetable.NullsFirst {
				key.NullPlacement = compute.SortNullsAtStart
			}
			p.sort = append(p.sort, key)
		}
	}
	if len(p.fields) == 0 {
		p.parts = []*partition{{id: 0}}
	}
	return p, nil
}

// add assigns the rows of batch b to partitions.
func (p *partitioner) add(ctx context.Context, b int, rec arrow.RecordBatch) error {
	n := int(rec.NumRows())
	if n == 0 {
		return nil
	}
	var perm []int32
	if len(p.sort) > 0 {
		idx, err := compute.SortIndicesRecordBatch(ctx, rec, p.sort)
		if err != nil {
			return fmt.Errorf("sort batch: %w", err)
		}
		defer idx.Release()
		perm = make([]int32, n)
		switch a := idx.(type) {
		case *array.Uint64:
			for i, v := range a.Uint64Values() {
				perm[i] = int32(v)
			}
		case *array.Int64:
			for i, v := range a.Int64Values() {
				perm[i] = int32(v)
			}
		default:
			return fmt.Errorf("sort batch: unexpected index type %s", idx.DataType())
		}
	}
	if len(p.fields) == 0 {
		part := p.parts[0]
		if perm != nil {
			part.segs = append(part.segs, segment{batch: b, sel: sel{idx: perm}})
		} else {
			part.segs = append(part.segs, segment{batch: b, sel: sel{lo: 0, hi: n}})
		}
		part.rows += int64(n)
		return nil
	}

	// Bind each field's source column for this batch.
	type bound struct {
		anc  []arrow.Array // struct ancestors, null when any is
		code func(int) (uint64, bool)
	}
	bs := make([]bound, len(p.fields))
	for j, f := range p.fields {
		if f.void {
			continue
		}
		arr := rec.Column(f.chain[0])
		var anc []arrow.Array
		for _, c := range f.chain[1:] {
			st, ok := arr.(*array.Struct)
			if !ok {
				return fmt.Errorf("%w: partition source path through %s", ErrUnsupported, arr.DataType())
			}
			anc = append(anc, st)
			arr = st.Field(c)
		}
		code, err := f.code(arr)
		if err != nil {
			return err
		}
		bs[j] = bound{anc: anc, code: code}
	}

	rows := make([]*partition, n) // partition per row, in output order
	var prev *partition
	lastCode := make([]uint64, len(p.fields))
	lastOK := make([]bool, len(p.fields))
	lastSet := make([]bool, len(p.fields))
	for k := 0; k < n; k++ {
		i := k
		if perm != nil {
			i = int(perm[k])
		}
		same := prev != nil
		for j, f := range p.fields {
			r := int32(-1)
			if !f.void {
				bj := &bs[j]
				code, ok := uint64(0), true
				for _, a := range bj.anc {
					if a.IsNull(i) {
						ok = false
						break
					}
				}
				if ok {
					code, ok = bj.code(i)
				}
				if lastSet[j] && code == lastCode[j] && ok == lastOK[j] {
					r = p.ridx[j]
				} else {
					if ok {
						r = f.result(code)
					}
					lastCode[j], lastOK[j], lastSet[j] = code, ok, true
				}
			}
			if r != p.ridx[j] {
				same = false
			}
			p.ridx[j] = r
		}
		if !same {
			prev = p.lookup()
		}
		rows[k] = prev
	}

	// Rows of one partition throughout: one segment.
	first := rows[0]
	all := true
	for _, r := range rows {
		if r != first {
			all = false
			break
		}
	}
	if all {
		s := sel{lo: 0, hi: n}
		if perm != nil {
			s = sel{idx: perm}
		}
		first.segs = append(first.segs, segment{batch: b, sel: s})
		first.rows += int64(n)
		return nil
	}
	idx := map[*partition][]int32{}
	var order []*partition
	for k, r := range rows {
		i := int32(k)
		if perm != nil {
			i = perm[k]
		}
		if _, ok := idx[r]; !ok {
			order = append(order, r)
		}
		idx[r] = append(idx[r], i)
	}
	for _, r := range order {
		r.segs = append(r.segs, segment{batch: b, sel: sel{idx: idx[r]}})
		r.rows += int64(len(idx[r]))
	}
	return nil
}

// lookup returns the partition of the current result indexes.
func (p *partitioner) lookup() *partition {
	p.key = p.key[:0]
	for _, r := range p.ridx {
		p.key = binary.LittleEndian.AppendUint32(p.key, uint32(r))
	}
	if part, ok := p.byKey[string(p.key)]; ok {
		return part
	}
	part := &partition{id: len(p.parts), values: make(map[int]any, len(p.fields)), record: make([]any, len(p.fields))}
	var path strings.Builder
	for j, f := range p.fields {
		var v any
		if r := p.ridx[j]; r >= 0 {
			v = f.results[r]
		}
		part.values[f.field.FieldID] = v
		part.record[j] = v
		if j > 0 {
			path.WriteByte('/')
		}
		pf := f.field
		path.WriteString(pf.EscapedName())
		path.WriteByte('=')
		path.WriteString(url.QueryEscape(pf.Transform.ToHumanStrType(f.resType, v)))
	}
	part.path = path.String()
	p.parts = append(p.parts, part)
	p.byKey[string(p.key)] = part
	return part
}

// arrowPath resolves a dotted Iceberg column name to Arrow field indices
// (top-level, then struct children).
func arrowPath(sc *arrow.Schema, name string) ([]int, bool) {
	return arrowPathIn(sc.Fields(), name)
}

func arrowPathIn(fields []arrow.Field, rest string) ([]int, bool) {
	for end := len(rest); end > 0; end = strings.LastIndex(rest[:end], ".") {
		cand := rest[:end]
		for i, f := range fields {
			if f.Name != cand {
				continue
			}
			if end == len(rest) {
				return []int{i}, true
			}
			st, ok := f.Type.(*arrow.StructType)
			if !ok {
				continue
			}
			if sub, ok := arrowPathIn(st.Fields(), rest[end+1:]); ok {
				return append([]int{i}, sub...), true
			}
		}
	}
	return nil, false
}
