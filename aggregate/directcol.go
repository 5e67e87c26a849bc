package aggregate

import (
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// skipRows skips n rows of the columns the filter does not read.
func skipRows(readers []file.ColumnChunkReader, filterUses []bool, n int) error {
	for i, cr := range readers {
		if cr == nil || filterUses[i] {
			continue
		}
		sk, ok := cr.(interface {
			Skip(int64) (int64, error)
		})
		if !ok {
			return fmt.Errorf("%w: column reader %T cannot skip", errNoDirect, cr)
		}
		got, err := sk.Skip(int64(n))
		if err != nil {
			return err
		}
		if got != int64(n) {
			return fmt.Errorf("column chunk ended %d rows early", int64(n)-got)
		}
	}
	return nil
}

// colBuf holds n rows of one column, decoded, one entry per row (nulls
// hold zero values), reused from batch to batch.
type colBuf struct {
	kind   valueKind
	n      int
	nulls  bool
	valids []bool
	ints   []int64
	floats []float64
	decs   []decimal128.Num
	bs     []bool
	// Strings and binary: data[offs[i]:offs[i+1]].
	data []byte
	offs []int32

	// Scratch of the page reads.
	defs  []int16
	i32   []int32
	i64   []int64
	f32   []float32
	f64   []float64
	bools []bool
	ba    []parquet.ByteArray
	flba  []parquet.FixedLenByteArray
}

// view is a colView of the buffer's rows; valid until the next read.
func (c *colBuf) view() *colView {
	v := &colView{kind: c.kind, nulls: c.nulls, n: c.n, ints: c.ints, floats: c.floats, decs: c.decs, bs: c.bs}
	if c.nulls {
		v.valids = c.valids
	}
	if c.kind == kBytes {
		v.data, v.offs32 = c.data, c.offs
	}
	return v
}

func (c *colBuf) bytesAt(i int) []byte { return c.data[c.offs[i]:c.offs[i+1]] }

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// reset sizes the buffer for n rows of its kind.
func (c *colBuf) reset(n int) {
	c.n, c.nulls = n, false
	c.valids = grow(c.valids, n)
	switch c.kind {
	case kInt:
		c.ints = grow(c.ints, n)
	case kFloat:
		c.floats = grow(c.floats, n)
	case kDecimal:
		c.decs = grow(c.decs, n)
	case kBool:
		c.bs = grow(c.bs, n)
	case kBytes:
		c.data = c.data[:0]
		c.offs = append(c.offs[:0], 0)
	}
}

// read decodes the next n rows of cr (nil: a column the file lacks, all
// null) page by page: values of a page (strings alias its buffer) are
// copied out before the next page is read; strings only of the rows sel
// keeps (nil: all; the others read as empty).
func (c *colBuf) read(cr file.ColumnChunkReader, maxDef int16, n int, sel []bool) error {
	c.reset(n)
	if cr == nil {
		c.nulls = true
		clear(c.valids)
		switch c.kind {
		case kInt:
			clear(c.ints)
		case kFloat:
			clear(c.floats)
		case kDecimal:
			clear(c.decs)
		case kBool:
			clear(c.bs)
		case kBytes:
			for range n {
				c.offs = append(c.offs, 0)
			}
		}
		return nil
	}
	c.defs = grow(c.defs, n)
	for row := 0; row < n; {
		want := int64(n - row)
		defs := c.defs[:want]
		var levels int64
		var vals int
		var err error
		switch r := cr.(type) {
		case *file.Int32ColumnChunkReader:
			c.i32 = grow(c.i32, int(want))
			levels, vals, err = r.ReadBatchInPage(want, c.i32, defs, nil)
		case *file.Int64ColumnChunkReader:
			c.i64 = grow(c.i64, int(want))
			levels, vals, err = r.ReadBatchInPage(want, c.i64, defs, nil)
		case *file.Float32ColumnChunkReader:
			c.f32 = grow(c.f32, int(want))
			levels, vals, err = r.ReadBatchInPage(want, c.f32, defs, nil)
		case *file.Float64ColumnChunkReader:
			c.f64 = grow(c.f64, int(want))
			levels, vals, err = r.ReadBatchInPage(want, c.f64, defs, nil)
		case *file.BooleanColumnChunkReader:
			c.bools = grow(c.bools, int(want))
			levels, vals, err = r.ReadBatchInPage(want, c.bools, defs, nil)
		case *file.ByteArrayColumnChunkReader:
			c.ba = grow(c.ba, int(want))
			levels, vals, err = r.ReadBatchInPage(want, c.ba, defs, nil)
		case *file.FixedLenByteArrayColumnChunkReader:
			c.flba = grow(c.flba, int(want))
			levels, vals, err = r.ReadBatchInPage(want, c.flba, defs, nil)
		default:
			return fmt.Errorf("%w: column reader %T", errNoDirect, cr)
		}
		if err != nil {
			return err
		}
		if levels == 0 {
			return fmt.Errorf("column chunk ended %d rows early", n-row)
		}
		if maxDef == 0 {
			levels = int64(vals)
		}
		var rowSel []bool
		if sel != nil {
			rowSel = sel[row : row+int(levels)]
		}
		c.scatter(cr, row, int(levels), vals, maxDef, rowSel)
		row += int(levels)
	}
	return nil
}

// scatter places the vals values of levels rows just read (c.defs and
// the reader's scratch) at rows [row, row+levels); strings of the rows
// sel drops are left empty.
func (c *colBuf) scatter(cr file.ColumnChunkReader, row, levels, vals int, maxDef int16, sel []bool) {
	valids := c.valids[row : row+levels]
	if vals == levels {
		for i := range valids {
			valids[i] = true
		}
	} else {
		c.nulls = true
		for i := range valids {
			valids[i] = c.defs[i] == maxDef
		}
	}
	switch cr.(type) {
	case *file.Int32ColumnChunkReader:
		if c.kind == kDecimal {
			place(c.decs[row:], c.i32[:vals], valids, func(v int32) decimal128.Num { return decimal128.FromI64(int64(v)) })
		} else {
			place(c.ints[row:], c.i32[:vals], valids, func(v int32) int64 { return int64(v) })
		}
	case *file.Int64ColumnChunkReader:
		if c.kind == kDecimal {
			place(c.decs[row:], c.i64[:vals], valids, decimal128.FromI64)
		} else {
			place(c.ints[row:], c.i64[:vals], valids, func(v int64) int64 { return v })
		}
	case *file.Float32ColumnChunkReader:
		place(c.floats[row:], c.f32[:vals], valids, func(v float32) float64 { return float64(v) })
	case *file.Float64ColumnChunkReader:
		place(c.floats[row:], c.f64[:vals], valids, func(v float64) float64 { return v })
	case *file.BooleanColumnChunkReader:
		place(c.bs[row:], c.bools[:vals], valids, func(v bool) bool { return v })
	case *file.FixedLenByteArrayColumnChunkReader:
		place(c.decs[row:], c.flba[:vals], valids, func(v parquet.FixedLenByteArray) decimal128.Num { return decimalBE(v) })
	case *file.ByteArrayColumnChunkReader:
		if c.kind == kDecimal {
			place(c.decs[row:], c.ba[:vals], valids, func(v parquet.ByteArray) decimal128.Num { return decimalBE(v) })
			return
		}
		v := 0
		for i, ok := range valids {
			if ok {
				if sel == nil || sel[i] {
					c.data = append(c.data, c.ba[v]...)
				}
				v++
			}
			c.offs = append(c.offs, int32(len(c.data)))
		}
	}
}

// place converts the values src of the rows valids marks into dst (zero
// for the others).
func place[S, D any](dst []D, src []S, valids []bool, conv func(S) D) {
	if len(src) == len(valids) {
		for i, v := range src {
			dst[i] = conv(v)
		}
		return
	}
	var zero D
	v := 0
	for i, ok := range valids {
		if ok {
			dst[i] = conv(src[v])
			v++
		} else {
			dst[i] = zero
		}
	}
}

// decimalBE decodes a big-endian two's complement unscaled decimal.
func decimalBE(b []byte) decimal128.Num {
	var buf [16]byte
	if len(b) > 16 {
		b = b[len(b)-16:]
	}
	if len(b) > 0 && b[0]&0x80 != 0 {
		for i := range buf {
			buf[i] = 0xff
		}
	}
	copy(buf[16-len(b):], b)
	return decimal128.New(int64(binary.BigEndian.Uint64(buf[:8])), binary.BigEndian.Uint64(buf[8:]))
}
