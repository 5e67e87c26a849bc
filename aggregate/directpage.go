package aggregate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// The direct read decodes a column chunk itself (pageChunk) when its pages
// use only the encodings Iceberg's writers use (PLAIN, dictionaries, RLE
// levels and booleans): arrow-go's page reader decompresses each page, and
// the chunk decodes the levels and the values of the rows the filter keeps
// straight into the batch's buffers. A dictionary is decoded once per
// chunk and its indices gathered for the kept rows only; plain values of
// rows dropped are stepped over, not converted or copied. A chunk using
// any other encoding is read with arrow-go's column reader (arrowChunk).

// chunkSource reads consecutive rows of one column chunk into a colBuf.
type chunkSource interface {
	// read appends the kept rows (sel; nil: all) of the next n rows to c;
	// kept, when not nil, lists the rows sel keeps.
	read(c *colBuf, n int, sel []bool, kept []int32) error
	// skip steps over the next n rows.
	skip(n int) error
}

// errPage is a page that contradicts its header or its encoding.
var errPage = errors.New("malformed page")

// pageEncodingsOK reports whether pageChunk decodes every encoding of encs.
func pageEncodingsOK(encs []parquet.Encoding) bool {
	for _, e := range encs {
		switch e {
		case parquet.Encodings.Plain, parquet.Encodings.PlainDict, parquet.Encodings.RLEDict, parquet.Encodings.RLE:
		default:
			return false
		}
	}
	return true
}

// newChunkSource opens the column chunk of leaf in rg for the read's
// column col of kind k; in (size bytes, metadata fmd) is the file, and
// bufs, when not nil, the worker's page buffers (rawPages).
// Each dictionary it decodes takes the next number from gens.
func newChunkSource(in io.ReaderAt, size int64, fmd *metadata.FileMetaData, rg *file.RowGroupReader, leaf int, col *schema.Column, k valueKind, bufs *pageBufs, c int, gens *int) (chunkSource, error) {
	md, err := rg.MetaData().ColumnChunk(leaf)
	if err != nil {
		return nil, err
	}
	if !pageEncodingsOK(md.Encodings()) {
		cr, err := rg.Column(leaf)
		if err != nil {
			return nil, err
		}
		return &arrowChunk{cr: cr, maxDef: col.MaxDefinitionLevel()}, nil
	}
	var src pageSource
	raw, err := rawChunk(in, size, fmd, md, bufs, c)
	if err != nil {
		return nil, err
	}
	if raw != nil {
		src = raw
	} else {
		pr, err := rg.GetColumnPageReader(leaf)
		if err != nil {
			return nil, err
		}
		src = &arrowPages{pr: pr}
	}
	sc := &pageScratch{}
	if bufs != nil {
		sc = &bufs.scratch
	}
	return &pageChunk{src: src, phys: col.PhysicalType(), width: col.TypeLength(), maxDef: col.MaxDefinitionLevel(), kind: k, gens: gens, sc: sc}, nil
}

// arrowChunk reads a chunk with arrow-go's column reader.
type arrowChunk struct {
	cr     file.ColumnChunkReader
	maxDef int16
}

func (a *arrowChunk) read(c *colBuf, n int, sel []bool, _ []int32) error {
	return c.readArrow(a.cr, a.maxDef, n, sel)
}

func (a *arrowChunk) skip(n int) error {
	sk, ok := a.cr.(interface {
		Skip(int64) (int64, error)
	})
	if !ok {
		return fmt.Errorf("%w: column reader %T cannot skip", errNoDirect, a.cr)
	}
	got, err := sk.Skip(int64(n))
	if err != nil {
		return err
	}
	if got != int64(n) {
		return fmt.Errorf("column chunk ended %d rows early", int64(n)-got)
	}
	return nil
}

// pageChunk decodes a column chunk page by page.
type pageChunk struct {
	src    pageSource
	phys   parquet.Type
	width  int // of a fixed-length byte array
	maxDef int16
	kind   valueKind

	// dict holds the chunk's dictionary, decoded to kind, numbered gen.
	dict    colBuf
	hasDict bool
	gen     int
	gens    *int

	// The current page: rows left, whether it has no nulls, its levels,
	// and its values: plain bytes, or dictionary (or boolean RLE) indices.
	left  int
	dense bool
	defs  rleDecoder
	enc   parquet.Encoding
	vals  []byte
	bit   uint // next bit of plain booleans
	idx   rleDecoder

	sc *pageScratch
}

// pageScratch is the scratch of a page read, shared by the chunks a worker
// reads (one at a time): rows' validity, levels or indices, value
// positions, byte array offsets.
type pageScratch struct {
	valid []bool
	ids   []uint32
	pos   []int32
	offs  []int32
}

// next loads the next data page (decoding a dictionary page first).
func (p *pageChunk) next() error {
	for {
		pg, err := p.src.next()
		if err != nil {
			return err
		}
		if pg.dict {
			if e := pg.enc; e != parquet.Encodings.Plain && e != parquet.Encodings.PlainDict {
				return fmt.Errorf("%w: dictionary page encoded %s", errNoDirect, e)
			}
			if err := p.loadDict(pg.data, pg.values); err != nil {
				return err
			}
			continue
		}
		data := pg.data
		if !pg.v2 {
			n := pg.values
			p.dense = p.maxDef == 0
			if !p.dense {
				if pg.defEnc != parquet.Encodings.RLE || len(data) < 4 {
					return fmt.Errorf("%w: definition levels encoded %s", errNoDirect, pg.defEnc)
				}
				l := int(binary.LittleEndian.Uint32(data))
				if l > len(data)-4 {
					return fmt.Errorf("%w: definition levels overrun the page", errPage)
				}
				p.defs.init(data[4:4+l], bits.Len(uint(p.maxDef)))
				data = data[4+l:]
			}
			return p.startValues(pg.enc, data, n)
		}
		if pg.rows != pg.values {
			return fmt.Errorf("%w: levels overrun the page", errPage)
		}
		p.dense = p.maxDef == 0 || pg.nulls == 0
		if !p.dense {
			p.defs.init(pg.defs, bits.Len(uint(p.maxDef)))
		}
		return p.startValues(pg.enc, data, pg.rows)
	}
}

// startValues starts a data page of n rows whose values are data.
func (p *pageChunk) startValues(enc parquet.Encoding, data []byte, n int) error {
	p.enc, p.left, p.vals, p.bit = enc, n, data, 0
	switch enc {
	case parquet.Encodings.Plain:
	case parquet.Encodings.PlainDict, parquet.Encodings.RLEDict:
		if !p.hasDict || len(data) < 1 || data[0] > 32 {
			return fmt.Errorf("%w: dictionary indices without a dictionary", errPage)
		}
		p.idx.init(data[1:], int(data[0]))
	case parquet.Encodings.RLE:
		if p.phys != parquet.Types.Boolean || len(data) < 4 {
			return fmt.Errorf("%w: %s values encoded RLE", errNoDirect, p.phys)
		}
		p.idx.init(data[4:], 1)
	default:
		return fmt.Errorf("%w: values encoded %s", errNoDirect, enc)
	}
	return nil
}

// loadDict decodes a plain dictionary page of n values.
func (p *pageChunk) loadDict(data []byte, n int) error {
	d := &p.dict
	d.kind = p.kind
	d.reset(n)
	p.enc, p.vals, p.bit = parquet.Encodings.Plain, data, 0
	if err := p.plain(d, n, nil); err != nil {
		return fmt.Errorf("dictionary: %w", err)
	}
	p.hasDict = true
	*p.gens++
	p.gen = *p.gens
	return nil
}

func (p *pageChunk) skip(n int) error {
	return p.take(nil, n, nil, nil)
}

func (p *pageChunk) read(c *colBuf, n int, sel []bool, kept []int32) error {
	return p.take(c, n, sel, kept)
}

// take appends the kept rows of the next n rows to c (nil: skips them).
func (p *pageChunk) take(c *colBuf, n int, sel []bool, kept []int32) error {
	for row := 0; row < n; {
		if p.left == 0 {
			if err := p.next(); err != nil {
				return err
			}
			continue
		}
		m := min(p.left, n-row)
		var s []bool
		var k []int32
		if sel != nil {
			s = sel[row : row+m]
			if kept != nil {
				j := 0
				for j < len(kept) && kept[j] < int32(row+m) {
					j++
				}
				k, kept = kept[:j], kept[j:]
			}
		}
		if err := p.rows(c, m, s, k, row); err != nil {
			return err
		}
		p.left -= m
		row += m
	}
	return nil
}

// rows takes m rows of the current page: it finds their values (k of
// them: the valid rows), and appends the rows sel keeps to c; kept, when
// not nil, lists them, numbered from base.
func (p *pageChunk) rows(c *colBuf, m int, sel []bool, kept []int32, base int) error {
	var valid []bool
	k := m
	if !p.dense {
		p.sc.valid = grow(p.sc.valid, m)
		valid = p.sc.valid
		var err error
		if k, err = p.defs.match(valid, uint32(p.maxDef)); err != nil {
			return fmt.Errorf("definition levels: %w", err)
		}
	}
	// pos: each kept row's value among the k (-1: null); nil: all m rows
	// kept and valid.
	var pos []int32
	if p.sc.pos == nil {
		p.sc.pos = make([]int32, 0, 1024)
	}
	switch {
	case valid == nil && sel == nil:
	case valid == nil && kept != nil:
		// The kept rows are listed: no walk over the rows.
		pos = grow(p.sc.pos, len(kept))
		for j, r := range kept {
			pos[j] = r - int32(base)
		}
	case valid == nil:
		// Branch-free: a row is written, and kept by moving on.
		pos = grow(p.sc.pos, m+1)
		w := 0
		for i, s := range sel {
			pos[w] = int32(i)
			w += b2i(s)
		}
		pos = pos[:w]
	case sel == nil:
		pos = grow(p.sc.pos, m)
		v := int32(0)
		for i, ok := range valid {
			pos[i] = v | (int32(b2i(ok)) - 1)
			v += int32(b2i(ok))
		}
	default:
		pos = grow(p.sc.pos, m+1)
		w, v := 0, int32(0)
		for i, ok := range valid {
			// v, or -1 for a null row.
			pos[w] = v | (int32(b2i(ok)) - 1)
			w += b2i(sel[i])
			v += int32(b2i(ok))
		}
		pos = pos[:w]
	}
	if pos != nil {
		p.sc.pos = pos
	}
	return p.values(c, k, pos)
}

// readValid appends the valid rows of the next n rows to c, and sets
// valid[i] to whether row i is: a filter of non-null values of the
// column, without converting or storing its null rows.
func (p *pageChunk) readValid(c *colBuf, n int, valid []bool) error {
	for row := 0; row < n; {
		if p.left == 0 {
			if err := p.next(); err != nil {
				return err
			}
			continue
		}
		m := min(p.left, n-row)
		out := valid[row : row+m]
		k := m
		if p.dense {
			for i := range out {
				out[i] = true
			}
		} else {
			var err error
			if k, err = p.defs.match(out, uint32(p.maxDef)); err != nil {
				return fmt.Errorf("definition levels: %w", err)
			}
		}
		if err := p.values(c, k, nil); err != nil {
			return err
		}
		p.left -= m
		row += m
	}
	return nil
}

// values consumes the next k values of the page, appending those pos
// picks to c (each kept row's value, -1 for a null row; nil: all k, as
// valid rows; c nil: none).
func (p *pageChunk) values(c *colBuf, k int, pos []int32) error {
	if p.enc == parquet.Encodings.Plain {
		if c != nil {
			c.coded = false
		}
		return p.plain(c, k, pos)
	}
	p.sc.ids = grow(p.sc.ids, k)
	if err := p.idx.get(p.sc.ids); err != nil {
		return fmt.Errorf("values: %w", err)
	}
	if c == nil {
		return nil
	}
	ids := p.sc.ids
	if p.enc == parquet.Encodings.RLE {
		// Booleans.
		c.coded = false
		fill(c, c.bs, pos, k, func(v int) bool { return ids[v] != 0 })
		return nil
	}
	d := &p.dict
	for _, ix := range ids {
		if int(ix) >= d.n {
			return fmt.Errorf("%w: dictionary index %d of %d", errPage, ix, d.n)
		}
	}
	if c.coded {
		if c.n > 0 && c.dictGen != p.gen {
			c.coded = false
		} else {
			c.dictN, c.dictGen = d.n, p.gen
			w := len(c.codes)
			if pos == nil {
				c.codes = slices.Grow(c.codes, k)[:w+k]
				for j, ix := range ids {
					c.codes[w+j] = int32(ix)
				}
			} else {
				c.codes = slices.Grow(c.codes, len(pos))[:w+len(pos)]
				for j, v := range pos {
					if v < 0 {
						c.codes[w+j] = -1
					} else {
						c.codes[w+j] = int32(ids[v])
					}
				}
			}
		}
	}
	switch p.kind {
	case kInt:
		fill(c, c.ints, pos, k, func(v int) int64 { return d.ints[ids[v]] })
	case kFloat:
		fill(c, c.floats, pos, k, func(v int) float64 { return d.floats[ids[v]] })
	case kDecimal:
		fill(c, c.decs, pos, k, func(v int) decimal128.Num { return d.decs[ids[v]] })
	case kBool:
		fill(c, c.bs, pos, k, func(v int) bool { return d.bs[ids[v]] })
	case kBytes:
		fillBytes(c, pos, k, func(v int) []byte { return d.bytesAt(int(ids[v])) })
	}
	return nil
}

// b2i is 1 for true, 0 for false.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// plain consumes k plain values of the page, appending those pos picks to
// c (nil: skips them all).
func (p *pageChunk) plain(c *colBuf, k int, pos []int32) error {
	vals := p.vals
	size := 0
	switch p.phys {
	case parquet.Types.Int32, parquet.Types.Float:
		size = 4
	case parquet.Types.Int64, parquet.Types.Double:
		size = 8
	case parquet.Types.FixedLenByteArray:
		size = p.width
	case parquet.Types.Boolean:
		if uint(len(vals))*8 < p.bit+uint(k) {
			return fmt.Errorf("%w: %d booleans overrun the page", errPage, k)
		}
		bit := p.bit
		p.bit += uint(k)
		if c != nil {
			fill(c, c.bs, pos, k, func(v int) bool { b := bit + uint(v); return vals[b>>3]>>(b&7)&1 != 0 })
		}
		return nil
	case parquet.Types.ByteArray:
		// Lengths prefix the values: find them all.
		p.sc.offs = p.sc.offs[:0]
		o := 0
		for range k {
			if o+4 > len(vals) {
				return fmt.Errorf("%w: byte array overruns the page", errPage)
			}
			l := int(binary.LittleEndian.Uint32(vals[o:]))
			if l < 0 || l > len(vals)-o-4 {
				return fmt.Errorf("%w: byte array overruns the page", errPage)
			}
			p.sc.offs = append(p.sc.offs, int32(o+4))
			o += 4 + l
		}
		p.sc.offs = append(p.sc.offs, int32(o+4))
		p.vals = vals[o:]
		if c == nil {
			return nil
		}
		offs := p.sc.offs
		at := func(v int) []byte { return vals[offs[v] : offs[v+1]-4] }
		if p.kind == kDecimal {
			fill(c, c.decs, pos, k, func(v int) decimal128.Num { return decimalBE(at(v)) })
		} else {
			fillBytes(c, pos, k, at)
		}
		return nil
	default:
		return fmt.Errorf("%w: physical type %s", errNoDirect, p.phys)
	}
	if size <= 0 || len(vals) < k*size {
		return fmt.Errorf("%w: %d values of %d bytes overrun the page", errPage, k, size)
	}
	p.vals = vals[k*size:]
	if c == nil {
		return nil
	}
	le32 := func(v int) uint32 { return binary.LittleEndian.Uint32(vals[4*v:]) }
	le64 := func(v int) uint64 { return binary.LittleEndian.Uint64(vals[8*v:]) }
	switch {
	case p.phys == parquet.Types.Int32 && p.kind == kInt:
		fill(c, c.ints, pos, k, func(v int) int64 { return int64(int32(le32(v))) })
	case p.phys == parquet.Types.Int32:
		fill(c, c.decs, pos, k, func(v int) decimal128.Num { return decimal128.FromI64(int64(int32(le32(v)))) })
	case p.phys == parquet.Types.Int64 && p.kind == kInt:
		fill64(c, vals, pos, k)
	case p.phys == parquet.Types.Int64:
		fill(c, c.decs, pos, k, func(v int) decimal128.Num { return decimal128.FromI64(int64(le64(v))) })
	case p.phys == parquet.Types.Float:
		fill(c, c.floats, pos, k, func(v int) float64 { return float64(math.Float32frombits(le32(v))) })
	case p.phys == parquet.Types.Double:
		fill(c, c.floats, pos, k, func(v int) float64 { return math.Float64frombits(le64(v)) })
	default: // fixed-length byte arrays: decimals
		w := size
		fill(c, c.decs, pos, k, func(v int) decimal128.Num { return decimalBE(vals[w*v : w*v+w]) })
	}
	return nil
}

// fill appends to c the rows pos picks (value index, -1 for null; nil:
// all k values), their values at(index), into dst.
func fill[D any](c *colBuf, dst []D, pos []int32, k int, at func(int) D) {
	w := c.n
	if pos == nil {
		for i := range k {
			dst[w+i] = at(i)
			c.valids[w+i] = true
		}
		c.n += k
		return
	}
	var zero D
	for j, v := range pos {
		if v < 0 {
			dst[w+j] = zero
			c.valids[w+j] = false
			c.nulls = true
		} else {
			dst[w+j] = at(int(v))
			c.valids[w+j] = true
		}
	}
	c.n += len(pos)
}

// fill64 is fill of plain 64-bit integers.
func fill64(c *colBuf, vals []byte, pos []int32, k int) {
	w := c.n
	dst := c.ints[w:]
	valids := c.valids[w:]
	if pos == nil {
		for i := range k {
			dst[i] = int64(binary.LittleEndian.Uint64(vals[8*i:]))
			valids[i] = true
		}
		c.n += k
		return
	}
	for j, v := range pos {
		if v < 0 {
			dst[j] = 0
			valids[j] = false
			c.nulls = true
		} else {
			dst[j] = int64(binary.LittleEndian.Uint64(vals[8*v:]))
			valids[j] = true
		}
	}
	c.n += len(pos)
}

// fillBytes is fill of strings and binary values.
func fillBytes(c *colBuf, pos []int32, k int, at func(int) []byte) {
	if pos == nil {
		for i := range k {
			c.data = append(c.data, at(i)...)
			c.offs = append(c.offs, int32(len(c.data)))
			c.valids[c.n] = true
			c.n++
		}
		return
	}
	for _, v := range pos {
		ok := v >= 0
		if ok {
			c.data = append(c.data, at(int(v))...)
		} else {
			c.nulls = true
		}
		c.offs = append(c.offs, int32(len(c.data)))
		c.valids[c.n] = ok
		c.n++
	}
}

// rleDecoder decodes Parquet's RLE / bit-packed hybrid encoding of values
// bw bits wide.
type rleDecoder struct {
	data []byte
	bw   uint
	// The current run: a repeated value, or bit-packed values.
	rle    int
	val    uint32
	packed int
	bits   []byte
	pos    uint
}

func (d *rleDecoder) init(data []byte, bw int) {
	*d = rleDecoder{data: data, bw: uint(bw)}
}

// match sets out[i] to whether the i-th next value is want, and returns
// how many are.
func (d *rleDecoder) match(out []bool, want uint32) (int, error) {
	if d.bw != 1 {
		ids := make([]uint32, len(out))
		if err := d.get(ids); err != nil {
			return 0, err
		}
		k := 0
		for i, v := range ids {
			out[i] = v == want
			if out[i] {
				k++
			}
		}
		return k, nil
	}
	// One bit a value (levels of a column at the top level).
	k := 0
	for i := 0; i < len(out); {
		switch {
		case d.rle > 0:
			n := min(d.rle, len(out)-i)
			eq := d.val == want
			for j := range n {
				out[i+j] = eq
			}
			if eq {
				k += n
			}
			d.rle -= n
			i += n
		case d.packed > 0:
			n := min(d.packed, len(out)-i)
			b, pos := d.bits, d.pos
			if (pos+uint(n)+7)>>3 > uint(len(b)) {
				return 0, fmt.Errorf("%w: bit-packed run overruns its page", errPage)
			}
			flip := byte(1) ^ byte(want&1)
			for j := range n {
				bit := (b[pos>>3]>>(pos&7))&1 ^ flip
				out[i+j] = bit != 0
				k += int(bit)
				pos++
			}
			d.pos = pos
			d.packed -= n
			i += n
		default:
			if err := d.header(); err != nil {
				return 0, err
			}
		}
	}
	return k, nil
}

// get fills out with the next len(out) values.
func (d *rleDecoder) get(out []uint32) error {
	mask := uint64(1)<<d.bw - 1
	for i := 0; i < len(out); {
		switch {
		case d.rle > 0:
			k := min(d.rle, len(out)-i)
			v := d.val
			for j := range k {
				out[i+j] = v
			}
			d.rle -= k
			i += k
		case d.packed > 0:
			k := min(d.packed, len(out)-i)
			b, pos, bw := d.bits, d.pos, d.bw
			if (pos+uint(k)*bw+7)>>3 > uint(len(b)) {
				return fmt.Errorf("%w: bit-packed run overruns its page", errPage)
			}
			for j := range k {
				at := pos >> 3
				var x uint64
				if int(at)+8 <= len(b) {
					x = binary.LittleEndian.Uint64(b[at:])
				} else {
					var tmp [8]byte
					copy(tmp[:], b[at:])
					x = binary.LittleEndian.Uint64(tmp[:])
				}
				out[i+j] = uint32(x >> (pos & 7) & mask)
				pos += bw
			}
			d.pos = pos
			d.packed -= k
			i += k
		default:
			if err := d.header(); err != nil {
				return err
			}
		}
	}
	return nil
}

// header reads the next run's header.
func (d *rleDecoder) header() error {
	h, n := binary.Uvarint(d.data)
	if n <= 0 {
		return fmt.Errorf("%w: RLE run header", errPage)
	}
	d.data = d.data[n:]
	if h&1 == 1 {
		groups := int(h >> 1)
		nb := groups * int(d.bw)
		if groups <= 0 || groups > len(d.data)+1 {
			return fmt.Errorf("%w: bit-packed run of %d groups", errPage, groups)
		}
		nb = min(nb, len(d.data))
		d.bits, d.pos, d.packed = d.data[:nb], 0, groups*8
		d.data = d.data[nb:]
		if d.bw == 0 {
			d.rle, d.val, d.packed = d.packed, 0, 0
		}
		return nil
	}
	nb := int(d.bw+7) / 8
	if len(d.data) < nb || h>>1 == 0 {
		return fmt.Errorf("%w: RLE run", errPage)
	}
	var tmp [4]byte
	copy(tmp[:], d.data[:nb])
	d.val, d.rle = binary.LittleEndian.Uint32(tmp[:])&uint32(uint64(1)<<d.bw-1), int(h>>1)
	d.data = d.data[nb:]
	return nil
}
