package pqgo

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	pqgzip "github.com/parquet-go/parquet-go/compress/gzip"
	pqsnappy "github.com/parquet-go/parquet-go/compress/snappy"
	pqzstd "github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/parquet-go/parquet-go/format"

	"github.com/floe-lake/floe/internal/pqfile"
)

// Table property names this package reads, as iceberg-go (table and
// table/internal) spells them.
const (
	propFormat          = icetable.WriteFormatDefaultKey
	propCodec           = icetable.ParquetCompressionKey
	propCodecLevel      = icetable.ParquetCompressionLevelKey
	propTargetFileSize  = icetable.WriteTargetFileSizeBytesKey
	propRowGroupBytes   = icetable.ParquetRowGroupSizeBytesKey
	propRowGroupLimit   = icetable.ParquetRowGroupLimitKey
	propPageSize        = icetable.ParquetPageSizeBytesKey
	propPageVersion     = icetable.ParquetPageVersionKey
	propDictSize        = icetable.ParquetDictSizeBytesKey
	propDictEnabled     = "parquet.enable.dictionary"
	propDictColumn      = "write.parquet.dict-encoding-enabled.column."
	propBloomColumn     = "write.parquet.bloom-filter-enabled.column."
	propMetricsDefault  = icetable.DefaultWriteMetricsModeKey
	propMetricsColumn   = icetable.MetricsModeColumnConfPrefix + "."
	propShredVariants   = icetable.ParquetShredVariantsKey
	defaultMetricsMode  = icetable.DefaultWriteMetricsModeDefault
	defaultTargetSize   = icetable.WriteTargetFileSizeBytesDefault
	defaultRowGroupRows = icetable.ParquetRowGroupLimitDefault
	defaultRowGroupSize = icetable.ParquetRowGroupSizeBytesDefault
	defaultPageSize     = icetable.ParquetPageSizeBytesDefault
	defaultDictSize     = icetable.ParquetDictSizeBytesDefault
)

// config is what a write takes from the table's properties and Options.
type config struct {
	codec          compress.Codec
	targetFileSize int64
	rowGroupRows   int64
	rowGroupBytes  int64
	pageSize       int
	pageVersion    int
	dictSize       int64
	dictEnabled    bool
	dictColumns    map[string]bool // parquet column path -> enabled
	defaultMode    metricsMode
	columnModes    map[string]metricsMode // iceberg column name -> mode
}

func intProp(props iceberg.Properties, key string, def int64) (int64, error) {
	v, ok := props[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("table property %s=%q: want a positive integer", key, v)
	}
	return n, nil
}

// javaBool is Java's Boolean.parseBoolean, which Iceberg uses for these
// properties.
func javaBool(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "true") }

func loadConfig(props iceberg.Properties, opts Options) (*config, error) {
	if f := props.Get(propFormat, "parquet"); !strings.EqualFold(f, "parquet") {
		return nil, fmt.Errorf("%w: write.format.default=%s", ErrUnsupported, f)
	}
	if javaBool(props[propShredVariants]) {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, propShredVariants)
	}
	for k, v := range props {
		if strings.HasPrefix(k, propBloomColumn) && javaBool(v) {
			return nil, fmt.Errorf("%w: bloom filters (%s)", ErrUnsupported, k)
		}
	}
	c := &config{dictEnabled: true}
	var err error
	if c.codec, err = codecFor(props, opts.ZstdLevel); err != nil {
		return nil, err
	}
	if opts.FastSnappy && c.codec.CompressionCodec() == format.Snappy {
		c.codec = &fastSnappy{}
	}
	if c.targetFileSize, err = intProp(props, propTargetFileSize, defaultTargetSize); err != nil {
		return nil, err
	}
	if c.rowGroupRows, err = intProp(props, propRowGroupLimit, defaultRowGroupRows); err != nil {
		return nil, err
	}
	if c.rowGroupBytes, err = intProp(props, propRowGroupBytes, defaultRowGroupSize); err != nil {
		return nil, err
	}
	ps, err := intProp(props, propPageSize, defaultPageSize)
	if err != nil {
		return nil, err
	}
	c.pageSize = int(min(ps, 1<<30))
	if c.dictSize, err = intProp(props, propDictSize, defaultDictSize); err != nil {
		return nil, err
	}
	switch v := props.Get(propPageVersion, icetable.ParquetPageVersionDefault); v {
	case "1":
		c.pageVersion = 1
	default: // iceberg-go also falls back to v2
		c.pageVersion = 2
	}
	if v, ok := props[propDictEnabled]; ok {
		c.dictEnabled = javaBool(v)
	}
	for k, v := range props {
		if col, ok := strings.CutPrefix(k, propDictColumn); ok && col != "" {
			if c.dictColumns == nil {
				c.dictColumns = map[string]bool{}
			}
			c.dictColumns[col] = javaBool(v)
		}
	}
	if c.defaultMode, err = parseMetricsMode(props.Get(propMetricsDefault, defaultMetricsMode)); err != nil {
		return nil, err
	}
	for k, v := range props {
		if col, ok := strings.CutPrefix(k, propMetricsColumn); ok {
			m, err := parseMetricsMode(v)
			if err != nil {
				return nil, fmt.Errorf("table property %s: %w", k, err)
			}
			if c.columnModes == nil {
				c.columnModes = map[string]metricsMode{}
			}
			c.columnModes[col] = m
		}
	}
	if opts.TargetFileSize > 0 {
		c.targetFileSize = opts.TargetFileSize
	}
	if opts.RowGroupRows > 0 {
		c.rowGroupRows = opts.RowGroupRows
	}
	return c, nil
}

// fastSnappy is Snappy compressed by s2's fastest Snappy-compatible
// encoder (Options.FastSnappy).
type fastSnappy struct{ pqsnappy.Codec }

func (*fastSnappy) Encode(dst, src []byte) ([]byte, error) {
	return s2.EncodeSnappy(dst[:cap(dst)], src), nil
}

// codecFor maps the table's compression (pqfile.CompressionOf: the codec,
// its level, and zstdLevel where a zstd table sets none) to a parquet-go
// codec. Codecs parquet-go lacks (lz4 framed, lzo) are ErrUnsupported.
func codecFor(props iceberg.Properties, zstdLevel int) (compress.Codec, error) {
	c, err := pqfile.CompressionOf(props, zstdLevel)
	if err != nil {
		return nil, err
	}
	level := c.Level
	switch c.Codec {
	case "zstd":
		// As arrow-go: -1 is zstd's default level, anything else is
		// mapped by klauspost/compress.
		l := pqzstd.DefaultLevel
		if level != pqfile.DefaultLevel {
			l = zstd.EncoderLevelFromZstd(level)
		}
		return zstdFor(l), nil
	case "snappy":
		return &parquet.Snappy, nil
	case "gzip":
		if level >= 0 {
			if level > 9 {
				return nil, fmt.Errorf("table property %s=%d: gzip levels are 0..9", propCodecLevel, level)
			}
			return &pqgzip.Codec{Level: level}, nil
		}
		return &parquet.Gzip, nil
	case "uncompressed":
		return &parquet.Uncompressed, nil
	case "lz4raw":
		return &parquet.Lz4Raw, nil
	case "brotli":
		return &parquet.Brotli, nil
	}
	return nil, fmt.Errorf("%w: compression codec %q", ErrUnsupported, c.Codec)
}

// metricsMode is write.metadata.metrics.*: none, counts, truncate(N), full.
type metricsMode struct {
	kind  byte // 'n'one, 'c'ounts, 't'runcate, 'f'ull
	trunc int
}

var truncRe = regexp.MustCompile(`^truncate\((\d+)\)$`)

func parseMetricsMode(s string) (metricsMode, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch v {
	case "none":
		return metricsMode{kind: 'n'}, nil
	case "counts":
		return metricsMode{kind: 'c'}, nil
	case "full":
		return metricsMode{kind: 'f'}, nil
	}
	if m := truncRe.FindStringSubmatch(v); m != nil {
		n, err := strconv.Atoi(m[1])
		if err == nil && n > 0 {
			return metricsMode{kind: 't', trunc: n}, nil
		}
	}
	return metricsMode{}, fmt.Errorf("unsupported metrics mode %q", s)
}
