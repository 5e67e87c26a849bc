package pqgo

import (
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/compress"
	pqzstd "github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/format"
)

// zstdCodec compresses pages as parquet-go's zstd codec does (same
// encoder options, so the same bytes) but keeps its encoders across
// flushes. parquet-go's codec holds them in a sync.Pool, which every
// garbage collection empties, and a table's codec was made per flush: each
// flush then allocated fresh encoders and their history buffers — 128 MB
// of allocation per million rows in BenchmarkGenerateAndWrite, a sixth of
// the writer's, which made the collector run more often.
type zstdCodec struct {
	level zstd.EncoderLevel
	free  chan *zstd.Encoder
	dec   pqzstd.Codec // pqgo never reads; Decode is for the interface
}

var zstdCodecs sync.Map // zstd.EncoderLevel -> *zstdCodec

// zstdFor returns the shared codec for level.
func zstdFor(level zstd.EncoderLevel) compress.Codec {
	if c, ok := zstdCodecs.Load(level); ok {
		return c.(*zstdCodec)
	}
	c, _ := zstdCodecs.LoadOrStore(level, &zstdCodec{
		level: level,
		free:  make(chan *zstd.Encoder, 2*runtime.GOMAXPROCS(0)),
	})
	return c.(*zstdCodec)
}

func (c *zstdCodec) String() string { return "ZSTD" }

func (c *zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	var e *zstd.Encoder
	select {
	case e = <-c.free:
	default:
		var err error
		e, err = zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderLevel(c.level),
			zstd.WithZeroFrames(true),
			zstd.WithEncoderCRC(false),
		)
		if err != nil {
			return nil, err
		}
	}
	out := e.EncodeAll(src, dst[:0])
	select {
	case c.free <- e:
	default: // enough encoders kept
	}
	return out, nil
}

func (c *zstdCodec) Decode(dst, src []byte) ([]byte, error) { return c.dec.Decode(dst, src) }
