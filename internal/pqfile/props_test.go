package pqfile

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/iceberg-go"
)

// TestCompressionOf: the codec and level a table's properties ask for;
// the writer's zstd level applies only to zstd tables that set no level.
func TestCompressionOf(t *testing.T) {
	cases := []struct {
		name  string
		props iceberg.Properties
		zstd  int
		want  Compression
	}{
		{"defaults", iceberg.Properties{}, 0, Compression{"zstd", DefaultLevel}},
		{"writer's zstd level", iceberg.Properties{}, 1, Compression{"zstd", 1}},
		{"table's level wins", iceberg.Properties{PropLevel: " 9 "}, 1, Compression{"zstd", 9}},
		{"other codecs keep their default", iceberg.Properties{PropCodec: "Snappy"}, 1, Compression{"snappy", DefaultLevel}},
		{"gzip level", iceberg.Properties{PropCodec: "gzip", PropLevel: "6"}, 1, Compression{"gzip", 6}},
		{"none", iceberg.Properties{PropCodec: "none"}, 0, Compression{"uncompressed", DefaultLevel}},
		{"lz4_raw", iceberg.Properties{PropCodec: "LZ4_RAW"}, 0, Compression{"lz4raw", DefaultLevel}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := CompressionOf(c.props, c.zstd)
			if err != nil || got != c.want {
				t.Errorf("CompressionOf(%v, %d) = %+v, %v; want %+v", c.props, c.zstd, got, err, c.want)
			}
		})
	}
	if _, err := CompressionOf(iceberg.Properties{PropLevel: "fast"}, 0); err == nil {
		t.Error("a level that is not an integer was accepted")
	}
}

// TestArrowProperties: arrow-go gets the table's codec and level, or the
// nearest codec it can write.
func TestArrowProperties(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	cases := []struct {
		props iceberg.Properties
		codec compress.Compression
		level int
	}{
		{iceberg.Properties{}, compress.Codecs.Zstd, compress.DefaultCompressionLevel},
		{iceberg.Properties{PropLevel: "5"}, compress.Codecs.Zstd, 5},
		{iceberg.Properties{PropCodec: "brotli"}, compress.Codecs.Brotli, compress.DefaultCompressionLevel},
		{iceberg.Properties{PropCodec: "lz4"}, compress.Codecs.Lz4Raw, compress.DefaultCompressionLevel},
		{iceberg.Properties{PropCodec: "lzo"}, compress.Codecs.Zstd, compress.DefaultCompressionLevel},
		{iceberg.Properties{PropCodec: "uncompressed"}, compress.Codecs.Uncompressed, compress.DefaultCompressionLevel},
	}
	for _, c := range cases {
		p, err := ArrowProperties(c.props, sc, 0)
		if err != nil {
			t.Fatal(err)
		}
		if p.Compression() != c.codec || p.CompressionLevel() != c.level {
			t.Errorf("%v: codec %s level %d, want %s level %d", c.props, p.Compression(), p.CompressionLevel(), c.codec, c.level)
		}
	}
}
