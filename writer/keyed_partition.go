package writer

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/iceberg-go"
	"github.com/google/uuid"

	"github.com/floe-lake/floe/internal/pqgo"
)

// Partitioned keyed tables. A flush writes one data file per partition
// that its live rows fall in, each with its partition values in its
// manifest entry; a row's partition is computed with the table's
// partition spec and iceberg-go's transforms (the transforms' public
// Transformer functions, bound as iceberg-go's own partitioned writer
// binds them). The key index is global: it maps a key to its data file,
// whatever the partition, so an update that moves a row to another
// partition deletes the old row by position in the old file's partition
// and writes the new one in the new partition, and the partition columns
// need not be part of the key. Position-delete files are written per
// partition (the partition of the data files they delete from), and the
// table's compaction rewrites one partition at a time.

// rowPartitioner computes the partition of rows of a keyed table's Arrow
// schema. Its interning tables live for one flush.
type rowPartitioner struct {
	spec   iceberg.PartitionSpec
	fields []*partField
	key    []byte
}

// partField is one partition field bound to its source column.
type partField struct {
	id      int // partition field id
	col     int // source column, top-level, as an index into the Arrow schema
	srcType iceberg.Type
	apply   func(any) any // source value (never nil) -> partition value, nil for null
	// Interned partition values: comparable form -> index into vals.
	ids  map[any]uint32
	vals []any
}

// newRowPartitioner binds spec to the columns of sc (the table's Iceberg
// schema; its Arrow form has the same top-level columns in order). A
// partition source must be a top-level column.
func newRowPartitioner(spec iceberg.PartitionSpec, sc *iceberg.Schema) (*rowPartitioner, error) {
	p := &rowPartitioner{spec: spec}
	for _, pf := range spec.Fields() {
		col := slices.IndexFunc(sc.Fields(), func(f iceberg.NestedField) bool { return f.ID == pf.SourceID() })
		if col < 0 {
			name, _ := sc.FindColumnName(pf.SourceID())
			return nil, fmt.Errorf("partition field %s: source column %q is not a top-level column; a keyed table partitions by top-level columns", pf.Name, name)
		}
		src := sc.Field(col)
		apply, err := bindTransform(pf.Transform, src.Type)
		if err != nil {
			return nil, fmt.Errorf("partition field %s: %w", pf.Name, err)
		}
		p.fields = append(p.fields, &partField{id: pf.FieldID, col: col, srcType: src.Type, apply: apply, ids: map[any]uint32{}})
	}
	return p, nil
}

// bindTransform returns the function from a source value to the partition
// value of transform t on source type src, as iceberg-go's partitioned
// writer binds it: the Go types of the results are those
// icetable.DataFileArgs.PartitionValues takes.
func bindTransform(t iceberg.Transform, src iceberg.Type) (func(any) any, error) {
	optInt := func(fn func(any) iceberg.Optional[int32]) func(any) any {
		return func(v any) any {
			if o := fn(v); o.Valid {
				return o.Val
			}
			return nil
		}
	}
	switch tt := t.(type) {
	case iceberg.IdentityTransform:
		return func(v any) any { return v }, nil
	case iceberg.VoidTransform:
		return func(any) any { return nil }, nil
	case iceberg.BucketTransform:
		if !tt.CanTransform(src) {
			return nil, fmt.Errorf("%s does not apply to %s", t, src)
		}
		return optInt(tt.Transformer(src)), nil
	case iceberg.TruncateTransform:
		return tt.Transformer(src)
	case iceberg.TimeTransform:
		fn, err := tt.Transformer(src)
		if err != nil {
			return nil, err
		}
		if _, day := t.(iceberg.DayTransform); day {
			return func(v any) any {
				if o := fn(v); o.Valid {
					return iceberg.Date(o.Val)
				}
				return nil
			}, nil
		}
		return optInt(fn), nil
	}
	return nil, fmt.Errorf("partition transform %s is not supported for keyed tables", t)
}

// rowKey returns an opaque key of row i's partition, equal for two rows of
// the flush exactly when they are in the same partition. The returned
// slice is reused by the next call.
func (p *rowPartitioner) rowKey(rec arrow.RecordBatch, i int) ([]byte, error) {
	p.key = p.key[:0]
	for _, f := range p.fields {
		v, err := sourceValue(rec.Column(f.col), i, f.srcType)
		if err != nil {
			return nil, fmt.Errorf("partition source column %s: %w", rec.ColumnName(f.col), err)
		}
		id := uint32(0) // null
		if v != nil {
			if pv := f.apply(v); pv != nil {
				n, ok := f.ids[pqgo.ComparablePartitionValue(pv)]
				if !ok {
					// Strings and bytes may point into the record.
					switch x := pv.(type) {
					case []byte:
						pv = slices.Clone(x)
					case string:
						pv = strings.Clone(x)
					}
					f.vals = append(f.vals, pv)
					n = uint32(len(f.vals))
					f.ids[pqgo.ComparablePartitionValue(pv)] = n
				}
				id = n
			}
		}
		p.key = binary.BigEndian.AppendUint32(p.key, id)
	}
	return p.key, nil
}

// values returns the partition values of a key rowKey returned, by
// partition field id; nil for an unpartitioned table.
func (p *rowPartitioner) values(key string) map[int]any {
	if len(p.fields) == 0 {
		return nil
	}
	out := make(map[int]any, len(p.fields))
	for j, f := range p.fields {
		n := binary.BigEndian.Uint32([]byte(key[4*j:]))
		if n == 0 {
			out[f.id] = nil
			continue
		}
		out[f.id] = f.vals[n-1]
	}
	return out
}

// sourceValue is row i of a as the Go value iceberg-go's transforms take
// for Iceberg type t; nil for null.
func sourceValue(a arrow.Array, i int, t iceberg.Type) (any, error) {
	if a.IsNull(i) {
		return nil, nil
	}
	switch c := a.(type) {
	case *array.Boolean:
		return c.Value(i), nil
	case *array.Int32:
		return c.Value(i), nil
	case *array.Int64:
		return c.Value(i), nil
	case *array.Float32:
		return c.Value(i), nil
	case *array.Float64:
		return c.Value(i), nil
	case *array.Date32:
		return iceberg.Date(c.Value(i)), nil
	case *array.Time64:
		if c.DataType().(*arrow.Time64Type).Unit != arrow.Microsecond {
			return nil, fmt.Errorf("time unit %s, want microseconds", c.DataType())
		}
		return iceberg.Time(c.Value(i)), nil
	case *array.Timestamp:
		unit := c.DataType().(*arrow.TimestampType).Unit
		switch t.(type) {
		case iceberg.TimestampType, iceberg.TimestampTzType:
			if unit != arrow.Microsecond {
				return nil, fmt.Errorf("timestamp unit %s, want microseconds", unit)
			}
			return iceberg.Timestamp(c.Value(i)), nil
		case iceberg.TimestampNsType, iceberg.TimestampTzNsType:
			if unit != arrow.Nanosecond {
				return nil, fmt.Errorf("timestamp unit %s, want nanoseconds", unit)
			}
			return iceberg.TimestampNano(c.Value(i)), nil
		}
	case *array.String:
		return c.Value(i), nil
	case *array.LargeString:
		return c.Value(i), nil
	case *array.Binary:
		return c.Value(i), nil
	case *array.LargeBinary:
		return c.Value(i), nil
	case *extensions.UUIDArray:
		return c.Value(i), nil
	case *array.FixedSizeBinary:
		if _, ok := t.(iceberg.UUIDType); ok {
			return uuid.FromBytes(c.Value(i))
		}
		return c.Value(i), nil
	case *array.Decimal128:
		return iceberg.Decimal{Val: c.Value(i), Scale: int(c.DataType().(*arrow.Decimal128Type).Scale)}, nil
	}
	return nil, fmt.Errorf("arrow type %s for %s cannot be partitioned", a.DataType(), t)
}
