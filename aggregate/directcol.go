package aggregate

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// colBuf holds the rows of a batch of one column, decoded, one entry per
// row (nulls hold zero values): all n rows of the batch, or only the rows
// its filter keeps (read with a selection, or compacted). It is reused
// from batch to batch.
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

	// A dimension's rows as indices into the dictionary of its column
	// chunk (-1: null), when wantCodes and every row read came from a
	// dictionary page (coded): dictN values, dictGen numbering the
	// dictionary among those of the read.
	wantCodes bool
	coded     bool
	codes     []int32
	dictN     int
	dictGen   int

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
	v := &colView{kind: c.kind, nulls: c.nulls, n: c.n}
	if c.nulls {
		v.valids = c.valids[:c.n]
	}
	switch c.kind {
	case kInt:
		v.ints = c.ints[:c.n]
	case kFloat:
		v.floats = c.floats[:c.n]
	case kDecimal:
		v.decs = c.decs[:c.n]
	case kBool:
		v.bs = c.bs[:c.n]
	case kBytes:
		v.data, v.offs32 = c.data, c.offs
	}
	if c.coded {
		v.codes, v.ncodes, v.dictGen = c.codes[:c.n], c.dictN, c.dictGen
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

// reset sizes the buffer for up to n rows of its kind, holding none.
func (c *colBuf) reset(n int) {
	c.n, c.nulls = 0, false
	c.coded, c.codes, c.dictGen = c.wantCodes, c.codes[:0], 0
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

// read decodes the next n rows of src (nil: a column the file lacks, all
// null), keeping the rows sel marks (nil: all); kept, when not nil, lists
// the rows sel keeps.
func (c *colBuf) read(src chunkSource, n int, sel []bool, kept []int32) error {
	c.reset(n)
	if src == nil {
		c.coded = false
		c.n = n
		if sel != nil {
			c.n = 0
			for _, ok := range sel {
				if ok {
					c.n++
				}
			}
		}
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
			for range c.n {
				c.offs = append(c.offs, 0)
			}
		}
		return nil
	}
	return src.read(c, n, sel, kept)
}

// readValid decodes the valid rows of the next n rows of src and sets
// valid[i] to whether row i is: the rows a filter of non-null values of
// the column keeps, read without storing the others.
func (c *colBuf) readValid(src chunkSource, n int, valid []bool) error {
	if pc, ok := src.(*pageChunk); ok {
		c.reset(n)
		return pc.readValid(c, n, valid)
	}
	if err := c.read(src, n, nil, nil); err != nil {
		return err
	}
	for i := range valid {
		valid[i] = !c.nulls || c.valids[i]
	}
	c.compact(valid)
	return nil
}

// readArrow decodes the next n rows of cr with arrow-go's column reader,
// page by page, keeping the rows sel marks (nil: all): values of a page
// (strings alias its buffer) are copied out before the next page is read.
func (c *colBuf) readArrow(cr file.ColumnChunkReader, maxDef int16, n int, sel []bool) error {
	c.coded = false
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
		c.scatter(cr, int(levels), vals, maxDef, rowSel)
		row += int(levels)
	}
	return nil
}

// chunk is the levels of one page read: which rows are valid and which
// are kept.
type chunk struct {
	levels int
	dense  bool // no nulls
	defs   []int16
	maxDef int16
	sel    []bool // nil: all kept
}

func (k *chunk) valid(i int) bool { return k.dense || k.defs[i] == k.maxDef }

// scatter appends the kept rows of levels rows just read (vals values in
// the reader's scratch, c.defs) to the buffer.
func (c *colBuf) scatter(cr file.ColumnChunkReader, levels, vals int, maxDef int16, sel []bool) {
	k := &chunk{levels: levels, dense: vals == levels, defs: c.defs, maxDef: maxDef, sel: sel}
	switch cr.(type) {
	case *file.Int32ColumnChunkReader:
		if c.kind == kDecimal {
			put(c, c.decs, c.i32, k, func(v int32) decimal128.Num { return decimal128.FromI64(int64(v)) })
		} else {
			put(c, c.ints, c.i32, k, func(v int32) int64 { return int64(v) })
		}
	case *file.Int64ColumnChunkReader:
		if c.kind == kDecimal {
			put(c, c.decs, c.i64, k, decimal128.FromI64)
		} else {
			put(c, c.ints, c.i64, k, func(v int64) int64 { return v })
		}
	case *file.Float32ColumnChunkReader:
		put(c, c.floats, c.f32, k, func(v float32) float64 { return float64(v) })
	case *file.Float64ColumnChunkReader:
		put(c, c.floats, c.f64, k, func(v float64) float64 { return v })
	case *file.BooleanColumnChunkReader:
		put(c, c.bs, c.bools, k, func(v bool) bool { return v })
	case *file.FixedLenByteArrayColumnChunkReader:
		put(c, c.decs, c.flba, k, func(v parquet.FixedLenByteArray) decimal128.Num { return decimalBE(v) })
	case *file.ByteArrayColumnChunkReader:
		if c.kind == kDecimal {
			put(c, c.decs, c.ba, k, func(v parquet.ByteArray) decimal128.Num { return decimalBE(v) })
			return
		}
		v := 0
		for i := range levels {
			ok := k.valid(i)
			if sel == nil || sel[i] {
				if ok {
					c.data = append(c.data, c.ba[v]...)
				} else {
					c.nulls = true
				}
				c.valids[c.n] = ok
				c.n++
				c.offs = append(c.offs, int32(len(c.data)))
			}
			if ok {
				v++
			}
		}
	}
}

// put appends the kept rows of a chunk to c, converting the values src of
// its valid rows into dst (zero for nulls).
func put[S, D any](c *colBuf, dst []D, src []S, k *chunk, conv func(S) D) {
	w := c.n
	if k.dense && k.sel == nil {
		for i, v := range src[:k.levels] {
			dst[w+i] = conv(v)
			c.valids[w+i] = true
		}
		c.n += k.levels
		return
	}
	var zero D
	v := 0
	for i := range k.levels {
		ok := k.valid(i)
		if k.sel == nil || k.sel[i] {
			if ok {
				dst[w] = conv(src[v])
			} else {
				dst[w] = zero
				c.nulls = true
			}
			c.valids[w] = ok
			w++
		}
		if ok {
			v++
		}
	}
	c.n = w
}

// compact keeps the rows sel marks.
func (c *colBuf) compact(sel []bool) {
	w := 0
	var end int32
	for i, ok := range sel {
		if !ok {
			continue
		}
		c.valids[w] = c.valids[i]
		if c.coded {
			c.codes[w] = c.codes[i]
		}
		switch c.kind {
		case kInt:
			c.ints[w] = c.ints[i]
		case kFloat:
			c.floats[w] = c.floats[i]
		case kDecimal:
			c.decs[w] = c.decs[i]
		case kBool:
			c.bs[w] = c.bs[i]
		case kBytes:
			// Values move toward the start: copy is a memmove.
			v := c.data[c.offs[i]:c.offs[i+1]]
			copy(c.data[end:], v)
			end += int32(len(v))
			c.offs[w+1] = end
		}
		w++
	}
	if c.kind == kBytes {
		c.data = c.data[:end]
		c.offs = c.offs[:w+1]
	}
	if c.coded {
		c.codes = c.codes[:w]
	}
	c.n = w
	c.nulls = slices.Contains(c.valids[:w], false)
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
