package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
)

// Floe's view of a table: an iceberg-go scan in the canonical form the
// package comment describes, written as sorted JSON lines.

// dumpTable scans name with iceberg-go and writes OUT/<name>.jsonl, sorted,
// and, with a filter, OUT/<name>.filter.jsonl. It returns the row count.
func dumpTable(ctx context.Context, cat icecat.Catalog, name, out string, f *Filter) (int, error) {
	tbl, err := load(ctx, cat, name)
	if err != nil {
		return 0, fmt.Errorf("load %s: %w", name, err)
	}
	rows, err := ScanCanonical(ctx, tbl)
	if err != nil {
		return 0, fmt.Errorf("scan %s: %w", name, err)
	}
	if err := writeLines(filepath.Join(out, name+".jsonl"), rows); err != nil {
		return 0, err
	}
	if f != nil {
		var sel []map[string]any
		for _, r := range rows {
			if f.match(r) {
				sel = append(sel, r)
			}
		}
		if len(sel) == 0 {
			return 0, fmt.Errorf("%s: filter %+v selects no row", name, *f)
		}
		if err := writeLines(filepath.Join(out, name+".filter.jsonl"), sel); err != nil {
			return 0, err
		}
	}
	return len(rows), nil
}

func (f *Filter) match(r map[string]any) bool {
	v := r[f.Column]
	switch f.Op {
	case "eq":
		a, _ := json.Marshal(v)
		b, _ := json.Marshal(f.Value)
		return v != nil && bytes.Equal(a, b)
	case "range":
		s, ok := v.(string)
		return ok && s >= f.Lo && s < f.Hi
	}
	return false
}

func writeLines(path string, rows []map[string]any) error {
	lines := make([]string, 0, len(rows))
	for _, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		lines = append(lines, string(b))
	}
	sort.Strings(lines)
	var buf bytes.Buffer
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// ScanCanonical reads the whole table with iceberg-go's scan and returns
// its rows in the canonical form.
func ScanCanonical(ctx context.Context, tbl *icetable.Table) ([]map[string]any, error) {
	sc := tbl.Schema()
	_, recs, err := tbl.Scan().ToArrowRecords(ctx)
	if err != nil {
		return nil, err
	}
	var rows []map[string]any
	for rec, err := range recs {
		if err != nil {
			return nil, err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make(map[string]any, len(sc.Fields()))
			for _, f := range sc.Fields() {
				idx := rec.Schema().FieldIndices(f.Name)
				if len(idx) != 1 {
					rec.Release()
					return nil, fmt.Errorf("column %s missing from the scan", f.Name)
				}
				v, err := canon(rec.Column(idx[0]), i, f.Type)
				if err != nil {
					rec.Release()
					return nil, fmt.Errorf("column %s: %w", f.Name, err)
				}
				row[f.Name] = v
			}
			rows = append(rows, row)
		}
		rec.Release()
	}
	return rows, nil
}

const (
	tsLayout = "2006-01-02T15:04:05.000000"
)

// canon converts value i of arr, of Iceberg type t, to the canonical form.
func canon(arr arrow.Array, i int, t iceberg.Type) (any, error) {
	if arr.IsNull(i) {
		return nil, nil
	}
	switch tt := t.(type) {
	case iceberg.BooleanType:
		return arr.(*array.Boolean).Value(i), nil
	case iceberg.Int32Type, iceberg.Int64Type:
		switch a := arr.(type) {
		case *array.Int32:
			return int64(a.Value(i)), nil
		case *array.Int64:
			return a.Value(i), nil
		}
	case iceberg.Float32Type, iceberg.Float64Type:
		switch a := arr.(type) {
		case *array.Float32:
			return float64(a.Value(i)), nil
		case *array.Float64:
			return a.Value(i), nil
		}
	case iceberg.DecimalType:
		if a, ok := arr.(*array.Decimal128); ok {
			return a.Value(i).ToString(int32(tt.Scale())), nil
		}
	case iceberg.StringType:
		switch a := arr.(type) {
		case *array.String:
			return a.Value(i), nil
		case *array.LargeString:
			return a.Value(i), nil
		case *array.StringView:
			return a.Value(i), nil
		}
	case iceberg.BinaryType, iceberg.FixedType:
		switch a := arr.(type) {
		case *array.Binary:
			return hex.EncodeToString(a.Value(i)), nil
		case *array.LargeBinary:
			return hex.EncodeToString(a.Value(i)), nil
		case *array.BinaryView:
			return hex.EncodeToString(a.Value(i)), nil
		case *array.FixedSizeBinary:
			return hex.EncodeToString(a.Value(i)), nil
		}
	case iceberg.UUIDType:
		switch a := arr.(type) {
		case *extensions.UUIDArray:
			return a.Value(i).String(), nil
		case *array.FixedSizeBinary:
			u, err := uuid.FromBytes(a.Value(i))
			return u.String(), err
		}
	case iceberg.DateType:
		if a, ok := arr.(*array.Date32); ok {
			return a.Value(i).ToTime().UTC().Format("2006-01-02"), nil
		}
	case iceberg.TimeType:
		if a, ok := arr.(*array.Time64); ok {
			us := int64(a.Value(i))
			if a.DataType().(*arrow.Time64Type).Unit == arrow.Nanosecond {
				us /= 1000
			}
			return time.UnixMicro(us).UTC().Format("15:04:05.000000"), nil
		}
	case iceberg.TimestampType, iceberg.TimestampTzType:
		if a, ok := arr.(*array.Timestamp); ok {
			unit := a.DataType().(*arrow.TimestampType).Unit
			v := int64(a.Value(i))
			var tm time.Time
			switch unit {
			case arrow.Microsecond:
				tm = time.UnixMicro(v)
			case arrow.Nanosecond:
				tm = time.Unix(0, v)
			case arrow.Millisecond:
				tm = time.UnixMilli(v)
			default:
				tm = time.Unix(v, 0)
			}
			s := tm.UTC().Format(tsLayout)
			if _, tz := t.(iceberg.TimestampTzType); tz {
				s += "Z"
			}
			return s, nil
		}
	case *iceberg.StructType:
		a, ok := arr.(*array.Struct)
		if !ok {
			break
		}
		st := a.DataType().(*arrow.StructType)
		obj := make(map[string]any, len(tt.FieldList))
		for _, f := range tt.FieldList {
			idx, ok := st.FieldIdx(f.Name)
			if !ok {
				return nil, fmt.Errorf("struct field %s missing", f.Name)
			}
			v, err := canon(a.Field(idx), i, f.Type)
			if err != nil {
				return nil, err
			}
			obj[f.Name] = v
		}
		return obj, nil
	case *iceberg.ListType:
		var values arrow.Array
		var start, end int64
		switch a := arr.(type) {
		case *array.List:
			values = a.ListValues()
			start, end = a.ValueOffsets(i)
		case *array.LargeList:
			values = a.ListValues()
			start, end = a.ValueOffsets(i)
		default:
			return nil, fmt.Errorf("list of arrow type %s", arr.DataType())
		}
		out := make([]any, 0, end-start)
		for j := start; j < end; j++ {
			v, err := canon(values, int(j), tt.Element)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case *iceberg.MapType:
		a, ok := arr.(*array.Map)
		if !ok {
			break
		}
		start, end := a.ValueOffsets(i)
		type kv struct {
			k   string
			val [2]any
		}
		var pairs []kv
		for j := start; j < end; j++ {
			k, err := canon(a.Keys(), int(j), tt.KeyType)
			if err != nil {
				return nil, err
			}
			v, err := canon(a.Items(), int(j), tt.ValueType)
			if err != nil {
				return nil, err
			}
			kj, _ := json.Marshal(k)
			pairs = append(pairs, kv{string(kj), [2]any{k, v}})
		}
		sort.Slice(pairs, func(x, y int) bool { return pairs[x].k < pairs[y].k })
		out := make([]any, len(pairs))
		for j, p := range pairs {
			out[j] = []any{p.val[0], p.val[1]}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected arrow type %s for Iceberg type %s", arr.DataType(), t)
}
