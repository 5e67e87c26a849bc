package table

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// DeadLetterSpec is the schema of a dead-letter table: one row per input
// record Floe could not decode or map, with where it came from, its raw
// bytes and the reason. A dead-letter row is committed with the positions
// of its source like any other row, so it lands exactly once.
func DeadLetterSpec(name string) Spec {
	return Spec{
		Name: name,
		Schema: []Field{
			{Name: "source", Type: "string", Required: true, Doc: "source id"},
			{Name: "partition", Type: "string", Required: true, Doc: "source partition: topic/partition, binlog, generator stream/partition"},
			{Name: "position", Type: "long", Required: true, Doc: "offset or position of the record in the partition"},
			{Name: "target_table", Type: "string", Doc: "table the record was meant for"},
			{Name: "key", Type: "binary", Doc: "record key, if any"},
			{Name: "raw", Type: "binary", Doc: "the record's bytes as received"},
			{Name: "reason", Type: "string", Required: true, Doc: "why it was rejected"},
			{Name: "received_at", Type: "timestamptz", Doc: "when Floe read it"},
		},
		Properties: map[string]string{"write.target-file-size-bytes": "67108864"},
	}
}

// DeadLetter is one input record a source could not decode or map: a row
// of a dead-letter table.
type DeadLetter struct {
	// Source is the source id.
	Source string
	// Partition is the source partition: topic/partition, binlog,
	// generator partition.
	Partition string
	// Position is the record's offset or position in Partition.
	Position int64
	// Target is the table the record was meant for; "" when unknown.
	Target string
	// Key is the record's key; nil when it has none.
	Key []byte
	// Raw is the record's bytes as received; nil when it has none.
	Raw []byte
	// Reason is why it was rejected.
	Reason string
	// ReceivedAt is when Floe read it; the zero time when unknown.
	ReceivedAt time.Time
}

// DeadLetterBuilder appends dead letters to Arrow record batches with the
// schema of a dead-letter table, binding the columns of DeadLetterSpec by
// name: the table may order them differently, use binary for string
// columns and the other way round, any timestamp unit, int or long for the
// position, and carry extra optional columns (left null). Every source
// builds its dead letters with it. It is not safe for concurrent use.
type DeadLetterBuilder struct {
	rb    *array.RecordBuilder
	cols  [dlNumCols]dlCol
	extra []array.Builder
	n     int
}

// Columns of DeadLetterSpec, in its order.
const (
	dlSource = iota
	dlPartition
	dlPosition
	dlTarget
	dlKey
	dlRaw
	dlReason
	dlReceivedAt
	dlNumCols
)

// dlCol is one bound column; b is nil when the table lacks the column.
type dlCol struct {
	b        array.Builder
	required bool
	unit     arrow.TimeUnit // timestamps
}

// NewDeadLetterBuilder binds the columns of sc, the Arrow schema of the
// dead-letter table tbl (as writer.Sink.Open returns it). The columns
// DeadLetterSpec requires (source, partition, position, reason) must be
// present; a column the table requires that no dead letter fills is an
// error, as is a column of the wrong type.
func NewDeadLetterBuilder(mem memory.Allocator, tbl string, sc *arrow.Schema) (*DeadLetterBuilder, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	spec := DeadLetterSpec(tbl)
	index := make(map[string]int, len(spec.Schema))
	for i, f := range spec.Schema {
		index[f.Name] = i
	}
	d := &DeadLetterBuilder{rb: array.NewRecordBuilder(mem, sc)}
	fail := func(err error) (*DeadLetterBuilder, error) {
		d.rb.Release()
		return nil, err
	}
	for i, f := range sc.Fields() {
		c, ok := index[f.Name]
		if !ok {
			if !f.Nullable {
				return fail(fmt.Errorf("table %s: required column %s is not a dead-letter column", tbl, f.Name))
			}
			d.extra = append(d.extra, d.rb.Field(i))
			continue
		}
		b := d.rb.Field(i)
		want := ""
		switch c {
		case dlPosition:
			switch b.(type) {
			case *array.Int32Builder, *array.Int64Builder:
			default:
				want = "int or long"
			}
		case dlReceivedAt:
			if t, ok := f.Type.(*arrow.TimestampType); ok {
				d.cols[c].unit = t.Unit
			} else {
				want = "timestamp or timestamptz"
			}
		default:
			switch b.(type) {
			case *array.StringBuilder, *array.LargeStringBuilder, *array.BinaryBuilder:
			default:
				want = "string or binary"
			}
		}
		if want != "" {
			return fail(fmt.Errorf("table %s: column %s: want %s, got %s", tbl, f.Name, want, f.Type))
		}
		d.cols[c].b, d.cols[c].required = b, !f.Nullable
	}
	for c, f := range spec.Schema {
		if f.Required && d.cols[c].b == nil {
			return fail(fmt.Errorf("table %s: dead-letter table has no column %q", tbl, f.Name))
		}
	}
	return d, nil
}

// Append adds a dead letter. Target, Key, Raw and ReceivedAt are null when
// unset, or empty in a column the table requires.
func (d *DeadLetterBuilder) Append(dl DeadLetter) {
	d.str(dlSource, dl.Source, true)
	d.str(dlPartition, dl.Partition, true)
	switch b := d.cols[dlPosition].b.(type) {
	case *array.Int64Builder:
		b.Append(dl.Position)
	case *array.Int32Builder:
		b.Append(int32(dl.Position))
	}
	d.str(dlTarget, dl.Target, dl.Target != "")
	d.bytes(dlKey, dl.Key)
	d.bytes(dlRaw, dl.Raw)
	d.str(dlReason, dl.Reason, true)
	if c := d.cols[dlReceivedAt]; c.b != nil {
		tb := c.b.(*array.TimestampBuilder)
		t := dl.ReceivedAt
		switch {
		case t.IsZero() && !c.required:
			tb.AppendNull()
		case t.IsZero():
			tb.Append(0)
		case c.unit == arrow.Second:
			tb.Append(arrow.Timestamp(t.Unix()))
		case c.unit == arrow.Millisecond:
			tb.Append(arrow.Timestamp(t.UnixMilli()))
		case c.unit == arrow.Microsecond:
			tb.Append(arrow.Timestamp(t.UnixMicro()))
		default:
			tb.Append(arrow.Timestamp(t.UnixNano()))
		}
	}
	for _, b := range d.extra {
		b.AppendNull()
	}
	d.n++
}

// str appends v to column c (null when !set and the column allows it).
func (d *DeadLetterBuilder) str(c int, v string, set bool) {
	col := d.cols[c]
	if col.b == nil {
		return
	}
	if !set && !col.required {
		col.b.AppendNull()
		return
	}
	switch b := col.b.(type) {
	case *array.StringBuilder:
		b.Append(validUTF8(v))
	case *array.LargeStringBuilder:
		b.Append(validUTF8(v))
	case *array.BinaryBuilder:
		b.AppendString(v)
	}
}

// bytes appends v to column c; a string column gets it as text with
// invalid UTF-8 replaced.
func (d *DeadLetterBuilder) bytes(c int, v []byte) {
	col := d.cols[c]
	if col.b == nil {
		return
	}
	if v == nil && !col.required {
		col.b.AppendNull()
		return
	}
	if b, ok := col.b.(*array.BinaryBuilder); ok {
		b.Append(v)
		return
	}
	d.str(c, string(v), true)
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// Len is the number of dead letters appended since the last
// NewRecordBatch.
func (d *DeadLetterBuilder) Len() int { return d.n }

// NewRecordBatch returns the dead letters appended since the last call
// (possibly none); the caller owns it.
func (d *DeadLetterBuilder) NewRecordBatch() arrow.RecordBatch {
	d.n = 0
	return d.rb.NewRecordBatch()
}

// Release frees the builder's buffers.
func (d *DeadLetterBuilder) Release() { d.rb.Release() }
