package pqgo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/iceberg-go"
	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go/format"
)

// colAgg aggregates one leaf's column chunk metadata over row groups.
type colAgg struct {
	size, values, nulls int64
	min, max            []byte // PLAIN-encoded, as in Parquet statistics
}

// compareStat orders PLAIN-encoded statistics values of a leaf's
// physical type.
func compareStat(p physKind, a, b []byte) int {
	switch p {
	case physBool:
		return int(a[0]) - int(b[0])
	case physInt32:
		x, y := int32(binary.LittleEndian.Uint32(a)), int32(binary.LittleEndian.Uint32(b))
		return cmpOrdered(x, y)
	case physInt64:
		x, y := int64(binary.LittleEndian.Uint64(a)), int64(binary.LittleEndian.Uint64(b))
		return cmpOrdered(x, y)
	case physFloat:
		x, y := math.Float32frombits(binary.LittleEndian.Uint32(a)), math.Float32frombits(binary.LittleEndian.Uint32(b))
		return cmpOrdered(x, y)
	case physDouble:
		x, y := math.Float64frombits(binary.LittleEndian.Uint64(a)), math.Float64frombits(binary.LittleEndian.Uint64(b))
		return cmpOrdered(x, y)
	}
	return bytes.Compare(a, b)
}

func cmpOrdered[T int32 | int64 | float32 | float64](x, y T) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// isNaNStat reports a NaN float statistic (parquet-go reports NaN bounds
// for a page of only NaNs; arrow-go reports none).
func isNaNStat(p physKind, v []byte) bool {
	switch p {
	case physFloat:
		return len(v) == 4 && math.IsNaN(float64(math.Float32frombits(binary.LittleEndian.Uint32(v))))
	case physDouble:
		return len(v) == 8 && math.IsNaN(math.Float64frombits(binary.LittleEndian.Uint64(v)))
	}
	return false
}

// literal is the Iceberg literal of a PLAIN-encoded statistics value of
// leaf lf.
func literal(lf *leafCol, v []byte) (iceberg.Literal, error) {
	var lit iceberg.Literal
	switch lf.phys {
	case physBool:
		lit = iceberg.NewLiteral(v[0] != 0)
	case physInt32:
		x := int32(binary.LittleEndian.Uint32(v))
		if lf.decimal {
			lit = iceberg.DecimalLiteral(iceberg.Decimal{Val: decimal128.FromI64(int64(x)), Scale: lf.typ.(iceberg.DecimalType).Scale()})
		} else {
			lit = iceberg.NewLiteral(x)
		}
	case physInt64:
		x := int64(binary.LittleEndian.Uint64(v))
		if lf.decimal {
			lit = iceberg.DecimalLiteral(iceberg.Decimal{Val: decimal128.FromI64(x), Scale: lf.typ.(iceberg.DecimalType).Scale()})
		} else {
			lit = iceberg.NewLiteral(x)
		}
	case physFloat:
		x := math.Float32frombits(binary.LittleEndian.Uint32(v))
		lit = iceberg.NewLiteral(x)
	case physDouble:
		x := math.Float64frombits(binary.LittleEndian.Uint64(v))
		lit = iceberg.NewLiteral(x)
	case physBytes:
		if _, ok := lf.typ.(iceberg.StringType); ok {
			lit = iceberg.NewLiteral(string(v))
		} else {
			lit = iceberg.NewLiteral(slices.Clone(v))
		}
	case physFixed:
		if _, ok := lf.typ.(iceberg.UUIDType); ok {
			if len(v) != 16 {
				return nil, fmt.Errorf("uuid statistic of %d bytes", len(v))
			}
			lit = iceberg.NewLiteral(uuid.UUID(v))
		} else {
			lit = iceberg.NewLiteral(slices.Clone(v))
		}
	}
	return lit.To(lf.typ)
}

// bounds serializes the aggregated min and max as Iceberg bounds (single
// value serialization), truncated as the metrics mode says. Either may be
// nil.
func bounds(lf *leafCol, a *colAgg) (lo, hi []byte, err error) {
	mn, mx := a.min, a.max
	// Parquet's recommendation, which arrow-go follows: a zero minimum is
	// -0.0 and a zero maximum +0.0.
	switch lf.phys {
	case physFloat:
		if f := math.Float32frombits(binary.LittleEndian.Uint32(mn)); f == 0 {
			mn = binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(math.Copysign(0, -1))))
		}
		if f := math.Float32frombits(binary.LittleEndian.Uint32(mx)); f == 0 {
			mx = binary.LittleEndian.AppendUint32(nil, 0)
		}
	case physDouble:
		if f := math.Float64frombits(binary.LittleEndian.Uint64(mn)); f == 0 {
			mn = binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.Copysign(0, -1)))
		}
		if f := math.Float64frombits(binary.LittleEndian.Uint64(mx)); f == 0 {
			mx = binary.LittleEndian.AppendUint64(nil, 0)
		}
	}
	minLit, err := literal(lf, mn)
	if err != nil {
		return nil, nil, err
	}
	maxLit, err := literal(lf, mx)
	if err != nil {
		return nil, nil, err
	}
	if lf.mode.kind == 't' {
		w := lf.mode.trunc
		minLit = (&iceberg.TruncateTransform{Width: w}).Apply(iceberg.Optional[iceberg.Literal]{Valid: true, Val: minLit}).Val
		switch v := maxLit.Any().(type) {
		case string:
			s := truncateUpperText(v, w)
			maxLit = nil
			if s != "" {
				maxLit = iceberg.NewLiteral(s)
			}
		case []byte:
			b := truncateUpperBinary(v, w)
			maxLit = nil
			if len(b) > 0 {
				maxLit = iceberg.NewLiteral(b)
			}
		}
	}
	if lo, err = marshal(lf, minLit); err != nil {
		return nil, nil, err
	}
	if hi, err = marshal(lf, maxLit); err != nil {
		return nil, nil, err
	}
	return lo, hi, nil
}

func marshal(lf *leafCol, lit iceberg.Literal) ([]byte, error) {
	if lit == nil {
		return nil, nil
	}
	v, err := lit.To(lf.typ)
	if err != nil {
		return nil, err
	}
	return v.MarshalBinary()
}

// truncateUpperText is iceberg-go's TruncateUpperBoundText: the first w
// code points with the last incremented, or "" when none can be.
func truncateUpperText(s string, w int) string {
	n := 0
	cut := -1
	for i := range s {
		if n == w {
			cut = i
			break
		}
		n++
	}
	if cut < 0 {
		return s
	}
	r := s[:cut]
	for len(r) > 0 {
		c, size := utf8.DecodeLastRuneInString(r)
		switch {
		case c == '\uD7FF':
			return r[:len(r)-size] + string('\uE000')
		case c < utf8.MaxRune:
			return r[:len(r)-size] + string(c+1)
		}
		r = r[:len(r)-size]
	}
	return ""
}

// truncateUpperBinary is iceberg-go's TruncateUpperBoundBinary.
func truncateUpperBinary(v []byte, w int) []byte {
	if w >= len(v) {
		return slices.Clone(v)
	}
	r := slices.Clone(v[:w])
	for i := len(r) - 1; i >= 0; i-- {
		if r[i] < 255 {
			r[i]++
			return r[:i+1]
		}
	}
	return nil
}

// dataFile builds the DataFile of a written Parquet file from its footer,
// as iceberg-go's DataFileStatsFromMeta and ToDataFile do for pqarrow's.
func dataFile(spec iceberg.PartitionSpec, sc *iceberg.Schema, leaves []*leafCol, meta *format.FileMetaData, path string, size int64, part *partition) (iceberg.DataFile, error) {
	byIdx := make([]*leafCol, len(leaves))
	for _, lf := range leaves {
		byIdx[lf.idx] = lf
	}
	aggs := make([]colAgg, len(leaves))
	var splits []int64
	for _, rg := range meta.RowGroups {
		if len(rg.Columns) != len(leaves) {
			return nil, fmt.Errorf("row group has %d columns, want %d", len(rg.Columns), len(leaves))
		}
		c0 := &rg.Columns[0].MetaData
		if c0.DictionaryPageOffset > 0 && c0.DictionaryPageOffset < c0.DataPageOffset {
			splits = append(splits, c0.DictionaryPageOffset)
		} else {
			splits = append(splits, c0.DataPageOffset)
		}
		for j := range rg.Columns {
			lf, cm, a := byIdx[j], &rg.Columns[j].MetaData, &aggs[j]
			if lf.mode.kind == 'n' {
				continue
			}
			a.size += cm.TotalCompressedSize
			a.values += cm.NumValues
			a.nulls += cm.Statistics.NullCount
			if lf.mode.kind == 'c' {
				continue
			}
			mn, mx := cm.Statistics.MinValue, cm.Statistics.MaxValue
			if mn == nil || mx == nil || isNaNStat(lf.phys, mn) || isNaNStat(lf.phys, mx) {
				continue
			}
			if a.min == nil || compareStat(lf.phys, mn, a.min) < 0 {
				a.min = mn
			}
			if a.max == nil || compareStat(lf.phys, mx, a.max) > 0 {
				a.max = mx
			}
		}
	}
	slices.Sort(splits)

	colSizes := map[int]int64{}
	valueCounts := map[int]int64{}
	nullCounts := map[int]int64{}
	lower := map[int][]byte{}
	upper := map[int][]byte{}
	for j, lf := range byIdx {
		if lf.mode.kind == 'n' {
			continue
		}
		a := &aggs[j]
		colSizes[lf.fieldID] = a.size
		valueCounts[lf.fieldID] = a.values
		nullCounts[lf.fieldID] = a.nulls
		if a.min == nil {
			continue
		}
		lo, hi, err := bounds(lf, a)
		if err != nil {
			return nil, fmt.Errorf("bounds of %s: %w", lf.path, err)
		}
		if len(lo) > 0 {
			lower[lf.fieldID] = lo
		}
		if len(hi) > 0 {
			upper[lf.fieldID] = hi
		}
	}

	var partData map[int]any
	logical := map[int]string{}
	if !spec.IsUnpartitioned() {
		partData = make(map[int]any, len(part.values))
		for _, f := range spec.Fields() {
			partData[f.FieldID] = part.values[f.FieldID]
			src, ok := sc.FindFieldByID(f.SourceID())
			if !ok {
				continue
			}
			switch f.Transform.ResultType(src.Type).(type) {
			case iceberg.DateType:
				logical[f.FieldID] = "date"
			case iceberg.TimeType:
				logical[f.FieldID] = "time-micros"
			case iceberg.TimestampType, iceberg.TimestampTzType:
				logical[f.FieldID] = "timestamp-micros"
			case iceberg.DecimalType:
				logical[f.FieldID] = "decimal"
			case iceberg.UUIDType:
				logical[f.FieldID] = "uuid"
			}
		}
	}
	b, err := iceberg.NewDataFileBuilder(spec, iceberg.EntryContentData, path, iceberg.ParquetFile,
		partData, logical, nil, meta.NumRows, size)
	if err != nil {
		return nil, err
	}
	if len(lower) > 0 {
		b.LowerBoundValues(lower)
	}
	if len(upper) > 0 {
		b.UpperBoundValues(upper)
	}
	b.ColumnSizes(colSizes)
	b.ValueCounts(valueCounts)
	b.NullValueCounts(nullCounts)
	b.NaNValueCounts(map[int]int64{})
	b.SplitOffsets(splits)
	return b.Build(), nil
}
