package mysql

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/floe-lake/floe/table"
)

// deadLetters collects rows that cannot be mapped, for the dead-letter
// table (table.DeadLetterSpec).
type deadLetters struct {
	source string
	b      *table.DeadLetterBuilder
}

func newDeadLetters(source, tbl string, sc *arrow.Schema) (*deadLetters, error) {
	b, err := table.NewDeadLetterBuilder(memory.DefaultAllocator, tbl, sc)
	if err != nil {
		return nil, err
	}
	return &deadLetters{source: source, b: b}, nil
}

// add records a bad row: its table, binlog position, key and values (as
// JSON) and the reason.
func (d *deadLetters) add(target string, pos int64, key, raw []byte, reason string, now time.Time) {
	d.b.Append(table.DeadLetter{
		Source: d.source, Partition: PartitionBinlog, Position: pos, Target: target,
		Key: key, Raw: raw, Reason: reason, ReceivedAt: now,
	})
}

// take returns the collected rows as a record (nil if none).
func (d *deadLetters) take() arrow.RecordBatch {
	if d.b.Len() == 0 {
		return nil
	}
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
