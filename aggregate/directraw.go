package aggregate

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// A pageChunk (directpage.go) takes its pages from a pageSource: pages
// read here (rawPages) when the chunk is stored as Iceberg's writers store
// it — unencrypted, uncompressed or compressed with zstd or Snappy — and
// arrow-go's page reader otherwise (arrowPages). rawPages reads the whole
// column chunk with one ReadAt into a buffer the worker reuses, parses
// each page header (Thrift compact, with parquet-go's decoder) and
// decompresses the page into a second reused buffer with the worker's one
// zstd decoder: no allocation per page or per chunk once the buffers have
// grown, and one copy of the values (the decompression) where arrow-go's
// reader copies the compressed page out of its stream first.

// page is one page of a column chunk, its values decompressed.
type page struct {
	dict bool // a dictionary page; else a data page
	v2   bool // a data page v2
	enc  parquet.Encoding
	// defEnc is the encoding of a v1 page's definition levels.
	defEnc parquet.Encoding
	// values: of a dictionary or v1 page, its entries or values (nulls
	// included); rows and nulls: of a v2 page.
	values, rows, nulls int
	// defs are a v2 page's definition levels; data is the rest of the
	// page: a v1 page's levels and values, a v2 page's values, a
	// dictionary's values.
	defs, data []byte
}

// pageSource yields the pages of one column chunk in order; a page is
// valid until the next call.
type pageSource interface {
	next() (*page, error)
}

// errChunkEnd is the end of a column chunk's pages.
var errChunkEnd = errors.New("column chunk ended early")

// arrowPages adapts arrow-go's page reader.
type arrowPages struct {
	pr file.PageReader
	pg page
}

func (a *arrowPages) next() (*page, error) {
	for {
		if !a.pr.Next() {
			if err := a.pr.Err(); err != nil {
				return nil, err
			}
			return nil, errChunkEnd
		}
		switch pg := a.pr.Page().(type) {
		case *file.DictionaryPage:
			a.pg = page{dict: true, enc: parquet.Encoding(pg.Encoding()), values: int(pg.NumValues()), data: pg.Data()}
			return &a.pg, nil
		case *file.DataPageV1:
			a.pg = page{enc: parquet.Encoding(pg.Encoding()), defEnc: pg.DefinitionLevelEncoding(), values: int(pg.NumValues()), data: pg.Data()}
			return &a.pg, nil
		case *file.DataPageV2:
			data := pg.Data()
			rl, dl := int(pg.RepetitionLevelByteLen()), int(pg.DefinitionLevelByteLen())
			if rl < 0 || dl < 0 || rl+dl > len(data) {
				return nil, fmt.Errorf("%w: levels overrun the page", errPage)
			}
			a.pg = page{
				v2: true, enc: parquet.Encoding(pg.Encoding()), values: int(pg.NumValues()),
				rows: int(pg.NumRows()), nulls: int(pg.NumNulls()),
				defs: data[rl : rl+dl], data: data[rl+dl:],
			}
			return &a.pg, nil
		}
	}
}

// pageBufs are a worker's buffers and decoder for rawPages, reused from
// chunk to chunk.
type pageBufs struct {
	zstd *zstd.Decoder
	// header decodes page headers.
	header *thrift.Decoder
	hdrIn  thrift.BytesReader
	// chunks[i] holds the compressed column chunk of the read's column i;
	// pages[i] the current page of that column, decompressed.
	chunks [][]byte
	pages  [][]byte
	// scratch is the pageChunks' scratch.
	scratch pageScratch
}

func newPageBufs(cols int) (*pageBufs, error) {
	// One goroutine: DecodeAll decodes on the caller's.
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("create zstd decoder: %w", err)
	}
	proto := &thrift.CompactProtocol{}
	in := proto.NewReaderFromBytes(nil)
	return &pageBufs{zstd: dec, header: thrift.NewDecoder(in), hdrIn: in,
		chunks: make([][]byte, cols), pages: make([][]byte, cols)}, nil
}

func (b *pageBufs) close() { b.zstd.Close() }

// rawPages reads the pages of a column chunk held in memory.
type rawPages struct {
	bufs  *pageBufs
	col   int // the read's column: which buffers are its
	codec compress.Compression
	chunk []byte
	hdr   format.PageHeader
	pg    page
}

// zstdSlack is a zstd block (128 KiB) and the decoder's over-allocation.
const zstdSlack = 128<<10 + 64

// maxPageHeader bounds a page header, as arrow-go's reader does.
const maxPageHeader = 16 << 20

// rawChunk reads column chunk md of rg with one ReadAt into the buffer of
// the read's column col, or returns nil when arrow-go's page reader must
// read it (encrypted, a codec other than zstd or Snappy, or a file of
// parquet-mr ≤ 1.2.8, whose chunk sizes leave out the dictionary page's
// header).
func rawChunk(in io.ReaderAt, size int64, fmd *metadata.FileMetaData, md *metadata.ColumnChunkMetaData, bufs *pageBufs, col int) (*rawPages, error) {
	if bufs == nil || md.CryptoMetadata() != nil || fmd.WriterVersion().LessThan(metadata.Parquet816FixedVersion) {
		return nil, nil
	}
	switch md.Compression() {
	case compress.Codecs.Uncompressed, compress.Codecs.Zstd, compress.Codecs.Snappy:
	default:
		return nil, nil
	}
	start := md.DataPageOffset()
	if md.HasDictionaryPage() && md.DictionaryPageOffset() > 0 && start > md.DictionaryPageOffset() {
		start = md.DictionaryPageOffset()
	}
	n := md.TotalCompressedSize()
	if start < 0 || n < 0 || start+n > size {
		return nil, fmt.Errorf("%w: column chunk at %d of %d bytes overruns the file of %d", errPage, start, n, size)
	}
	buf := bufs.chunks[col]
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	bufs.chunks[col] = buf
	if _, err := in.ReadAt(buf, start); err != nil {
		return nil, fmt.Errorf("read column chunk at %d: %w", start, err)
	}
	return &rawPages{bufs: bufs, col: col, codec: md.Compression(), chunk: buf}, nil
}

func (r *rawPages) next() (*page, error) {
	for {
		if len(r.chunk) == 0 {
			return nil, errChunkEnd
		}
		r.bufs.hdrIn.ResetBytes(r.chunk[:min(len(r.chunk), maxPageHeader)])
		r.hdr = format.PageHeader{}
		if err := r.bufs.header.Decode(&r.hdr); err != nil {
			return nil, fmt.Errorf("%w: page header: %w", errPage, err)
		}
		used := len(r.chunk) - r.bufs.hdrIn.Reader().(*bytes.Reader).Len()
		h := &r.hdr
		csize, usize := int(h.CompressedPageSize), int(h.UncompressedPageSize)
		if csize < 0 || usize < 0 || csize > len(r.chunk)-used {
			return nil, fmt.Errorf("%w: page of %d bytes overruns its column chunk", errPage, csize)
		}
		body := r.chunk[used : used+csize]
		r.chunk = r.chunk[used+csize:]
		switch h.Type {
		case format.DictionaryPage:
			if !h.DictionaryPageHeader.Valid {
				return nil, fmt.Errorf("%w: dictionary page without its header", errPage)
			}
			d := &h.DictionaryPageHeader.V
			data, err := r.decompress(body, usize)
			if err != nil {
				return nil, err
			}
			r.pg = page{dict: true, enc: parquet.Encoding(d.Encoding), values: int(d.NumValues), data: data}
			return &r.pg, nil
		case format.DataPage:
			if !h.DataPageHeader.Valid {
				return nil, fmt.Errorf("%w: data page without its header", errPage)
			}
			d := &h.DataPageHeader.V
			data, err := r.decompress(body, usize)
			if err != nil {
				return nil, err
			}
			r.pg = page{enc: parquet.Encoding(d.Encoding), defEnc: parquet.Encoding(d.DefinitionLevelEncoding), values: int(d.NumValues), data: data}
			return &r.pg, nil
		case format.DataPageV2:
			if !h.DataPageHeaderV2.Valid {
				return nil, fmt.Errorf("%w: data page v2 without its header", errPage)
			}
			d := &h.DataPageHeaderV2.V
			rl, dl := int(d.RepetitionLevelsByteLength), int(d.DefinitionLevelsByteLength)
			if rl < 0 || dl < 0 || rl+dl > csize || rl+dl > usize {
				return nil, fmt.Errorf("%w: levels overrun the page", errPage)
			}
			vals := body[rl+dl:]
			// Levels are never compressed; the values are unless the
			// header says otherwise (is_compressed defaults to true).
			if !d.IsCompressed.Valid || d.IsCompressed.V {
				var err error
				if vals, err = r.decompress(vals, usize-rl-dl); err != nil {
					return nil, err
				}
			} else if len(vals) != usize-rl-dl {
				return nil, fmt.Errorf("%w: %d value bytes, header says %d", errPage, len(vals), usize-rl-dl)
			}
			r.pg = page{
				v2: true, enc: parquet.Encoding(d.Encoding), values: int(d.NumValues),
				rows: int(d.NumRows), nulls: int(d.NumNulls),
				defs: body[rl : rl+dl], data: vals,
			}
			return &r.pg, nil
		}
		// Index pages and pages of kinds to come: not data.
	}
}

// decompress decompresses src, whose header says it holds size bytes,
// into the column's page buffer.
func (r *rawPages) decompress(src []byte, size int) ([]byte, error) {
	if r.codec == compress.Codecs.Uncompressed {
		if len(src) != size {
			return nil, fmt.Errorf("%w: %d bytes, header says %d", errPage, len(src), size)
		}
		return src, nil
	}
	dst := r.bufs.pages[r.col]
	// With a block's worth of room past the page, the zstd decoder uses
	// its unchecked copies for the last blocks too.
	if c := size + zstdSlack; cap(dst) < c {
		dst = make([]byte, 0, c)
		r.bufs.pages[r.col] = dst
	}
	var out []byte
	var err error
	if r.codec == compress.Codecs.Zstd {
		out, err = r.bufs.zstd.DecodeAll(src, dst[:0])
	} else {
		out, err = snappy.Decode(dst[:size], src)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: decompress %s page: %w", errPage, r.codec, err)
	}
	if len(out) != size {
		return nil, fmt.Errorf("%w: page decompressed to %d bytes, header says %d", errPage, len(out), size)
	}
	return out, nil
}
