package mysql

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// deadLetters collects rows that cannot be mapped, for the dead-letter
// table (table.DeadLetterSpec).
type deadLetters struct {
	source string
	b      *array.RecordBuilder
	cols   map[string]int
	n      int
}

func newDeadLetters(source string, sc *arrow.Schema) (*deadLetters, error) {
	d := &deadLetters{source: source, b: array.NewRecordBuilder(memory.DefaultAllocator, sc), cols: map[string]int{}}
	for i, f := range sc.Fields() {
		d.cols[f.Name] = i
	}
	for _, c := range []string{"source", "partition", "position", "reason"} {
		if _, ok := d.cols[c]; !ok {
			d.b.Release()
			return nil, fmt.Errorf("dead-letter table has no column %q", c)
		}
	}
	return d, nil
}

// add records a bad row: its table, binlog position, key and values (as
// JSON) and the reason.
func (d *deadLetters) add(target string, pos int64, key, raw []byte, reason string, now time.Time) {
	for name, i := range d.cols {
		fb := d.b.Field(i)
		switch name {
		case "source":
			fb.(*array.StringBuilder).Append(d.source)
		case "partition":
			fb.(*array.StringBuilder).Append(PartitionBinlog)
		case "position":
			fb.(*array.Int64Builder).Append(pos)
		case "target_table":
			fb.(*array.StringBuilder).Append(target)
		case "key":
			appendBytesOrNull(fb, key)
		case "raw":
			appendBytesOrNull(fb, raw)
		case "reason":
			fb.(*array.StringBuilder).Append(reason)
		case "received_at":
			if tb, ok := fb.(*array.TimestampBuilder); ok {
				tb.Append(arrow.Timestamp(now.UnixMicro()))
			} else {
				fb.AppendNull()
			}
		default:
			fb.AppendNull()
		}
	}
	d.n++
}

func appendBytesOrNull(b array.Builder, v []byte) {
	if v == nil {
		b.AppendNull()
		return
	}
	switch bb := b.(type) {
	case *array.BinaryBuilder:
		bb.Append(v)
	case *array.StringBuilder:
		bb.Append(string(v))
	default:
		b.AppendNull()
	}
}

// take returns the collected rows as a record (nil if none).
func (d *deadLetters) take() arrow.RecordBatch {
	if d.n == 0 {
		return nil
	}
	d.n = 0
	return d.b.NewRecordBatch()
}

func (d *deadLetters) release() { d.b.Release() }

// rawJSON renders a row's values (column name → value) for the dead-letter
// table; bytes that are not UTF-8 are kept by encoding/json's rules.
func rawJSON(names []string, vals []any) []byte {
	m := make(map[string]any, len(names))
	for i, n := range names {
		if i < len(vals) {
			switch v := vals[i].(type) {
			case []byte:
				m[n] = string(v)
			default:
				m[n] = v
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return []byte(fmt.Sprint(vals))
	}
	return b
}
