// Package pqfile is where Floe decides how the Parquet files it writes are
// encoded and written, for the writer (appends and keyed tables) and for
// compaction alike: the compression a table's properties ask for
// (write.parquet.compression-codec and write.parquet.compression-level,
// with the writer's zstd level where the table sets none), arrow-go writer
// properties built from it, a writer that counts a file's bytes, and
// writing Arrow records or position deletes to a file in a table's
// storage.
//
// The append path's encoder (internal/pqgo, on parquet-go, also the
// keyed writer's data files) maps Compression to its own codecs;
// everything written with arrow-go — the keyed writer's delete files (and
// data files pqgo does not write), compaction's merged delete files —
// takes ArrowProperties. This package never commits: a file it writes is
// unreferenced until its caller commits it.
package pqfile

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
)

// Table property names, as Iceberg spells them.
const (
	PropCodec = icetable.ParquetCompressionKey      // write.parquet.compression-codec
	PropLevel = icetable.ParquetCompressionLevelKey // write.parquet.compression-level
)

// DefaultLevel is a codec's own default level (Iceberg's and arrow-go's -1).
const DefaultLevel = -1

// Compression is what a table's properties ask of a Parquet file.
type Compression struct {
	// Codec is the codec's name in lower case as Iceberg spells it: zstd,
	// snappy, gzip, brotli, lz4, lz4raw, lzo, uncompressed, or whatever
	// else the table names. "none" and "" read as uncompressed, "lz4_raw"
	// as lz4raw.
	Codec string
	// Level is the codec's level; DefaultLevel for the codec's default.
	Level int
}

// CompressionOf reads the compression tbl's properties ask for:
// write.parquet.compression-codec (default zstd) and
// write.parquet.compression-level. zstdLevel, when not 0, is the zstd level
// where the table sets none (or -1): the writer's zstd-level, which writes
// ingest's short-lived files faster than zstd's default. A level that is
// not an integer is an error; whether a codec supports a level is the
// encoder's business.
func CompressionOf(props iceberg.Properties, zstdLevel int) (Compression, error) {
	c := Compression{
		Codec: strings.ToLower(strings.TrimSpace(props.Get(PropCodec, icetable.ParquetCompressionDefault))),
		Level: DefaultLevel,
	}
	switch c.Codec {
	case "none", "":
		c.Codec = "uncompressed"
	case "lz4_raw":
		c.Codec = "lz4raw"
	}
	if v, ok := props[PropLevel]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return Compression{}, fmt.Errorf("table property %s=%q: want an integer", PropLevel, v)
		}
		c.Level = n
	}
	if c.Codec == "zstd" && c.Level == DefaultLevel && zstdLevel != 0 {
		c.Level = zstdLevel
	}
	return c, nil
}

// arrowCodec is arrow-go's codec for name. arrow-go encodes neither LZ4
// with Hadoop framing nor LZO: lz4 is written as lz4raw, and lzo, like a
// name it does not know, as zstd.
func arrowCodec(name string) compress.Compression {
	switch name {
	case "snappy":
		return compress.Codecs.Snappy
	case "gzip":
		return compress.Codecs.Gzip
	case "brotli":
		return compress.Codecs.Brotli
	case "uncompressed":
		return compress.Codecs.Uncompressed
	case "lz4", "lz4raw":
		return compress.Codecs.Lz4Raw
	}
	return compress.Codecs.Zstd
}

// ArrowProperties are the arrow-go writer properties of a file of schema
// sc in a table with props: its compression (CompressionOf, with
// zstdLevel), row groups of up to 1Mi rows, column statistics, and
// dictionaries that fall back to plain encoding where they do not pay off.
func ArrowProperties(props iceberg.Properties, sc *arrow.Schema, zstdLevel int) (*parquet.WriterProperties, error) {
	c, err := CompressionOf(props, zstdLevel)
	if err != nil {
		return nil, err
	}
	opts := []parquet.WriterProperty{
		parquet.WithCompression(arrowCodec(c.Codec)),
		// arrow-go's compress.DefaultCompressionLevel is DefaultLevel.
		parquet.WithCompressionLevel(c.Level),
		parquet.WithMaxRowGroupLength(1 << 20),
		parquet.WithStats(true),
	}
	// As iceberg-go does: columns whose dictionary does not pay off fall
	// back to plain encoding (arrow-go does so by default only for
	// uncompressed columns); high-cardinality keys encode about twice as
	// fast.
	for _, f := range sc.Fields() {
		opts = append(opts, parquet.WithDictionaryCostFallbackFor(f.Name, true))
	}
	return parquet.NewWriterProperties(opts...), nil
}

// CountingWriter counts the bytes written through it: a file's size
// without asking the store.
type CountingWriter struct {
	W io.Writer
	N int64
}

func (c *CountingWriter) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}
