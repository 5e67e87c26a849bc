package reader

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Format is an output encoding of rows.
type Format string

// Output formats.
const (
	// FormatJSONL writes one JSON object per row, keys in column order.
	FormatJSONL Format = "jsonl"
	// FormatCSV writes a header line and one line per row; nested values
	// as JSON, nulls as empty fields.
	FormatCSV Format = "csv"
	// FormatParquet writes one Parquet file (zstd).
	FormatParquet Format = "parquet"
	// FormatArrow writes an Arrow IPC stream.
	FormatArrow Format = "arrow"
)

// ParseFormat parses a format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case FormatJSONL, FormatCSV, FormatParquet, FormatArrow:
		return f, nil
	case "json", "ndjson":
		return FormatJSONL, nil
	}
	return "", fmt.Errorf("format %q: want jsonl, csv, parquet or arrow", s)
}

// Appendable reports whether output in f can be resumed by appending to a
// file truncated at a row boundary (a tailing consumer's output).
func (f Format) Appendable() bool { return f == FormatJSONL || f == FormatCSV }

// Encoder writes record batches to an output.
type Encoder interface {
	// Write encodes a batch; it does not take ownership of it.
	Write(rec arrow.RecordBatch) error
	// Flush writes buffered bytes to the underlying writer (for jsonl and
	// csv every row written so far; parquet and arrow buffer until Close).
	Flush() error
	// Close flushes and ends the output (a Parquet footer, an Arrow
	// end-of-stream marker). It does not close the underlying writer.
	Close() error
}

// EncoderOptions tune an encoder.
type EncoderOptions struct {
	// NoHeader omits the CSV header line (when appending to an output
	// that has it).
	NoHeader bool
}

// NewEncoder returns an encoder of rows with schema sc to w.
func NewEncoder(w io.Writer, f Format, sc *arrow.Schema, opts EncoderOptions) (Encoder, error) {
	switch f {
	case FormatJSONL:
		return &jsonlEncoder{w: bufio.NewWriterSize(w, 256<<10)}, nil
	case FormatCSV:
		bw := bufio.NewWriterSize(w, 256<<10)
		return &csvEncoder{bw: bw, w: csv.NewWriter(bw), header: !opts.NoHeader}, nil
	case FormatParquet:
		props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
		fw, err := pqarrow.NewFileWriter(sc, nopCloser{w}, props, pqarrow.DefaultWriterProps())
		if err != nil {
			return nil, fmt.Errorf("start parquet output: %w", err)
		}
		return &parquetEncoder{fw: fw}, nil
	case FormatArrow:
		return &arrowEncoder{w: ipc.NewWriter(w, ipc.WithSchema(sc))}, nil
	}
	return nil, fmt.Errorf("new encoder: unknown format %q", f)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

type jsonlEncoder struct {
	w   *bufio.Writer
	buf bytes.Buffer
}

func (e *jsonlEncoder) Write(rec arrow.RecordBatch) error {
	fields := rec.Schema().Fields()
	names := make([][]byte, len(fields))
	for j, f := range fields {
		b, err := json.Marshal(f.Name)
		if err != nil {
			return fmt.Errorf("encode column name %q: %w", f.Name, err)
		}
		names[j] = b
	}
	for i := 0; i < int(rec.NumRows()); i++ {
		e.buf.Reset()
		e.buf.WriteByte('{')
		for j, c := range rec.Columns() {
			if j > 0 {
				e.buf.WriteByte(',')
			}
			e.buf.Write(names[j])
			e.buf.WriteByte(':')
			if c.IsNull(i) {
				e.buf.WriteString("null")
				continue
			}
			v, err := json.Marshal(c.GetOneForMarshal(i))
			if err != nil {
				return fmt.Errorf("encode column %s: %w", fields[j].Name, err)
			}
			e.buf.Write(v)
		}
		e.buf.WriteString("}\n")
		if _, err := e.w.Write(e.buf.Bytes()); err != nil {
			return fmt.Errorf("write jsonl: %w", err)
		}
	}
	return nil
}

func (e *jsonlEncoder) Flush() error {
	if err := e.w.Flush(); err != nil {
		return fmt.Errorf("write jsonl: %w", err)
	}
	return nil
}

func (e *jsonlEncoder) Close() error { return e.Flush() }

type csvEncoder struct {
	bw     *bufio.Writer
	w      *csv.Writer
	header bool
	row    []string
}

func (e *csvEncoder) Write(rec arrow.RecordBatch) error {
	fields := rec.Schema().Fields()
	if e.header {
		names := make([]string, len(fields))
		for j, f := range fields {
			names[j] = f.Name
		}
		if err := e.w.Write(names); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
		e.header = false
	}
	for i := 0; i < int(rec.NumRows()); i++ {
		e.row = e.row[:0]
		for _, c := range rec.Columns() {
			e.row = append(e.row, csvValue(c, i))
		}
		if err := e.w.Write(e.row); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	return nil
}

func csvValue(c arrow.Array, i int) string {
	if c.IsNull(i) {
		return ""
	}
	switch a := c.(type) {
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	}
	return c.ValueStr(i)
}

func (e *csvEncoder) Flush() error {
	e.w.Flush()
	if err := e.w.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	if err := e.bw.Flush(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

func (e *csvEncoder) Close() error { return e.Flush() }

type parquetEncoder struct{ fw *pqarrow.FileWriter }

func (e *parquetEncoder) Write(rec arrow.RecordBatch) error {
	if err := e.fw.WriteBuffered(rec); err != nil {
		return fmt.Errorf("write parquet: %w", err)
	}
	return nil
}

func (e *parquetEncoder) Flush() error { return nil }

func (e *parquetEncoder) Close() error {
	if err := e.fw.Close(); err != nil {
		return fmt.Errorf("finish parquet output: %w", err)
	}
	return nil
}

type arrowEncoder struct{ w *ipc.Writer }

func (e *arrowEncoder) Write(rec arrow.RecordBatch) error {
	if err := e.w.Write(rec); err != nil {
		return fmt.Errorf("write arrow: %w", err)
	}
	return nil
}

func (e *arrowEncoder) Flush() error { return nil }

func (e *arrowEncoder) Close() error {
	if err := e.w.Close(); err != nil {
		return fmt.Errorf("finish arrow output: %w", err)
	}
	return nil
}
