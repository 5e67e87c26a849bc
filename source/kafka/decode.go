package kafka

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-lake/floe/source/jsonrow"
	"github.com/floe-lake/floe/table"
)

// tableOut accumulates the rows of one table for the current poll: the
// JSON columns through a jsonrow.Builder over the table's schema less its
// metadata columns, the metadata columns through their own builders.
type tableOut struct {
	name   string
	schema *arrow.Schema
	// slot maps each column of schema to the data record's column (>= 0)
	// or to -1-i for meta[i].
	slot  []int
	bld   *jsonrow.Builder // rows for the table
	probe *jsonrow.Builder // rows decoded only to find dead letters; discarded
	metaB *array.RecordBuilder
	meta  []metaCol
	rows  int
	// maxEvent is the newest event time of the rows of this poll.
	maxEvent time.Time
	// next are the positions of this poll's batch.
	next table.Positions
	// share is the part of the last poll's records that became rows of
	// this table, to size the builder for the next poll (reserve).
	share float64
}

// varBuilder is an Arrow builder of strings or binaries.
type varBuilder interface {
	DataLen() int
	ReserveData(n int)
}

type metaCol struct {
	name string
	col  col
}

// rowMeta is what fills the metadata columns of one row.
type rowMeta struct {
	rec       *kgo.Record
	op        string
	eventTime time.Time
}

func newTableOut(mem memory.Allocator, name string, sc *arrow.Schema, opts jsonrow.Options) (*tableOut, error) {
	t := &tableOut{name: name, schema: sc, slot: make([]int, sc.NumFields())}
	var data, meta []arrow.Field
	for i, f := range sc.Fields() {
		if isMeta(f.Name) {
			t.slot[i] = -1 - len(meta)
			meta = append(meta, f)
		} else {
			t.slot[i] = len(data)
			data = append(data, f)
		}
	}
	md := sc.Metadata()
	dec, err := jsonrow.NewDecoder(arrow.NewSchema(data, &md), opts)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", name, err)
	}
	t.metaB = array.NewRecordBuilder(mem, arrow.NewSchema(meta, nil))
	kinds := map[string]colKind{ColTopic: kindString, ColPartition: kindInt, ColOffset: kindInt,
		ColTimestamp: kindTime, ColKey: kindString, ColOp: kindString, ColEventTime: kindTime}
	for i, f := range meta {
		c, err := bindCol(name, f, t.metaB.Field(i), kinds[f.Name])
		if err != nil {
			t.metaB.Release()
			return nil, err
		}
		t.meta = append(t.meta, metaCol{name: f.Name, col: c})
	}
	t.bld = dec.NewBuilder(mem)
	t.probe = dec.NewBuilder(mem)
	return t, nil
}

// reserve makes room in the rows builder for this table's share of a
// poll of n records.
func (t *tableOut) reserve(n int) {
	if t.share > 0 {
		t.bld.ReserveRows(int(t.share*float64(n)) + 1)
	}
}

func (t *tableOut) release() {
	t.bld.Release()
	t.probe.Release()
	t.metaB.Release()
}

// appendMeta fills the metadata columns of the row just appended.
func (t *tableOut) appendMeta(m rowMeta) {
	for _, c := range t.meta {
		switch c.name {
		case ColTopic:
			c.col.str(m.rec.Topic)
		case ColPartition:
			c.col.int(int64(m.rec.Partition))
		case ColOffset:
			c.col.int(m.rec.Offset)
		case ColTimestamp:
			c.col.time(m.rec.Timestamp)
		case ColKey:
			if m.rec.Key == nil {
				c.col.null()
			} else {
				c.col.bytes(m.rec.Key)
			}
		case ColOp:
			if m.op == "" {
				c.col.null()
			} else {
				c.col.str(m.op)
			}
		case ColEventTime:
			c.col.time(m.eventTime)
		}
	}
	t.rows++
	ev := m.eventTime
	if ev.IsZero() {
		ev = m.rec.Timestamp
	}
	if ev.After(t.maxEvent) {
		t.maxEvent = ev
	}
}

// take returns the poll's rows as one record of the table's schema (nil
// when there are none) and resets the builders.
func (t *tableOut) take() arrow.RecordBatch {
	if t.probe.Len() > 0 {
		t.probe.NewRecord().Release()
	}
	if t.rows == 0 {
		return nil
	}
	data := t.bld.NewRecord()
	defer data.Release()
	// The next poll starts with this one's capacity, capped (see
	// jsonrow.Builder.NewRecord).
	dataLen := make([]int, len(t.meta))
	for i, c := range t.meta {
		if vb, ok := c.col.b.(varBuilder); ok {
			dataLen[i] = min(vb.DataLen(), 1<<20)
		}
	}
	meta := t.metaB.NewRecordBatch()
	defer meta.Release()
	t.metaB.Reserve(min(t.rows, 1<<14))
	for i, c := range t.meta {
		if dataLen[i] > 0 {
			c.col.b.(varBuilder).ReserveData(dataLen[i])
		}
	}
	cols := make([]arrow.Array, len(t.slot))
	for i, s := range t.slot {
		if s >= 0 {
			cols[i] = data.Column(s)
		} else {
			cols[i] = meta.Column(-1 - s)
		}
	}
	n := int64(t.rows)
	t.rows = 0
	return array.NewRecordBatch(t.schema, cols, n)
}

// change is one row a record carries: its JSON and, for CDC envelopes, the
// change type and event time.
type change struct {
	row       []byte
	op        string
	eventTime time.Time
}

// errSkip marks a record that carries no row and is not an error: a
// Debezium tombstone, a Canal DDL message.
var errSkip = errors.New("no row")

// unwrap returns the rows a record value carries in format.
func unwrap(format string, value []byte, out []change) ([]change, error) {
	switch format {
	case FormatCanal:
		return unwrapCanal(value, out)
	case FormatDebezium:
		return unwrapDebezium(value, out)
	}
	if len(bytes.TrimSpace(value)) == 0 {
		return out, errors.New("empty value")
	}
	return append(out, change{row: value}), nil
}

type canalMessage struct {
	Data []json.RawMessage `json:"data"`
	// Old holds, for an UPDATE, the previous values of the changed
	// columns of each row of Data.
	Old      []json.RawMessage `json:"old"`
	Type     string            `json:"type"`
	IsDdl    bool              `json:"isDdl"`
	SQL      string            `json:"sql"`
	Database string            `json:"database"`
	Table    string            `json:"table"`
	Es       int64             `json:"es"`
	Ts       int64             `json:"ts"`
	PkNames  []string          `json:"pkNames"`
}

// parseCanal decodes a Canal flat message.
func parseCanal(value []byte) (canalMessage, error) {
	if m, ok := fastCanal(value); ok {
		return m, nil
	}
	var m canalMessage
	if err := json.Unmarshal(value, &m); err != nil {
		return m, fmt.Errorf("decode canal-json message: %w", err)
	}
	return m, nil
}

// canalOp maps a Canal row-change type to the change type: insert, update
// or delete; "" for any other type (DDL: CREATE, ALTER, QUERY, ...).
func canalOp(typ string) string {
	switch strings.ToUpper(typ) {
	case "INSERT":
		return "insert"
	case "UPDATE":
		return "update"
	case "DELETE":
		return "delete"
	}
	return ""
}

// eventTime is the Canal message's event time (es), or zero.
func (m *canalMessage) eventTime() time.Time {
	if m.Es > 0 {
		return time.UnixMilli(m.Es).UTC()
	}
	return time.Time{}
}

func unwrapCanal(value []byte, out []change) ([]change, error) {
	m, err := parseCanal(value)
	if err != nil {
		return out, err
	}
	if m.IsDdl {
		return out, errSkip
	}
	op := canalOp(m.Type)
	switch {
	case m.Type == "":
		return out, errors.New("decode canal-json message: no type")
	case op == "":
		return out, errSkip // CREATE, ALTER, QUERY, ...: no row images
	}
	ev := m.eventTime()
	for _, d := range m.Data {
		out = append(out, change{row: d, op: op, eventTime: ev})
	}
	if len(out) == 0 {
		return out, errSkip
	}
	return out, nil
}

type debeziumEvent struct {
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Op     string          `json:"op"`
	TsMs   int64           `json:"ts_ms"`
	Source struct {
		TsMs int64 `json:"ts_ms"`
	} `json:"source"`
	// Payload holds the event when the converter wrote the schema
	// envelope ({"schema": ..., "payload": {...}}).
	Payload json.RawMessage `json:"payload"`
}

// isTombstone reports whether a record value is null or empty: a Kafka
// tombstone (Debezium's after a delete).
func isTombstone(value []byte) bool {
	v := bytes.TrimSpace(value)
	return len(v) == 0 || bytes.Equal(v, []byte("null"))
}

// parseDebezium decodes a Debezium change event, with or without the
// schema envelope. The value must not be a tombstone.
func parseDebezium(value []byte) (debeziumEvent, error) {
	e, ok := fastDebezium(value)
	if !ok {
		e = debeziumEvent{}
		if err := json.Unmarshal(value, &e); err != nil {
			return e, fmt.Errorf("decode debezium-json event: %w", err)
		}
	}
	if len(e.Payload) > 0 && e.Op == "" {
		p := e.Payload
		if e, ok = fastDebezium(p); ok {
			return e, nil
		}
		e = debeziumEvent{}
		if err := json.Unmarshal(p, &e); err != nil {
			return e, fmt.Errorf("decode debezium-json payload: %w", err)
		}
	}
	return e, nil
}

// eventTime is the event's source time (source.ts_ms, else ts_ms), or
// zero.
func (e *debeziumEvent) eventTime() time.Time {
	switch {
	case e.Source.TsMs > 0:
		return time.UnixMilli(e.Source.TsMs).UTC()
	case e.TsMs > 0:
		return time.UnixMilli(e.TsMs).UTC()
	}
	return time.Time{}
}

// isNull reports whether a row image is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func unwrapDebezium(value []byte, out []change) ([]change, error) {
	if isTombstone(value) {
		return out, errSkip // tombstone after a delete
	}
	e, err := parseDebezium(value)
	if err != nil {
		return out, err
	}
	c := change{}
	switch e.Op {
	case "c":
		c.op, c.row = "insert", e.After
	case "u":
		c.op, c.row = "update", e.After
	case "r":
		c.op, c.row = "read", e.After
	case "d":
		c.op, c.row = "delete", e.Before
	case "t":
		return out, errSkip // truncate: no row image
	case "":
		return out, errors.New("decode debezium-json event: no op (not a change event)")
	default:
		return out, fmt.Errorf("decode debezium-json event: unknown op %q", e.Op)
	}
	if isNull(c.row) {
		return out, fmt.Errorf("decode debezium-json event: op %q without its row image", e.Op)
	}
	c.eventTime = e.eventTime()
	return append(out, c), nil
}

// fieldValue returns the string value of the top-level field name of a JSON
// object, for routing.
func fieldValue(value []byte, name string) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(value, &m); err != nil {
		return "", fmt.Errorf("decode value to route on %s: %w", name, err)
	}
	raw, ok := m[name]
	if !ok {
		return "", fmt.Errorf("route on %s: the record has no such field", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("route on %s: the field is not a string", name)
	}
	return s, nil
}
