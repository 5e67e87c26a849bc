package cdcgen

import (
	"fmt"
	"strconv"
	"time"
)

// The formats Encode renders, named as Floe's Kafka routes name them.
const (
	FormatCanal    = "canal-json"
	FormatDebezium = "debezium-json"
)

// Database is the source database's name in the messages.
const Database = "shop"

// sourceZone is the source database's time zone: Canal renders DATETIME
// values as its wall clock.
var sourceZone = time.FixedZone("CST", 8*3600)

// Record is a Kafka record: partition, key and value (nil: a tombstone).
type Record struct {
	Partition int32
	Key       []byte
	Value     []byte
}

// Encode renders ev as the records format sends for it:
//
//   - canal-json: one flat message per event (data holds every row; old,
//     for an UPDATE, the previous values of the changed columns; a DDL
//     event is a message with isDdl and sql). Every value is a string, as
//     Canal writes them; DATETIME values carry the source's UTC offset
//     ("2026-12-06 23:30:00.000+08:00") — Canal writes the wall clock
//     alone, which only a timestamp-without-zone column can take.
//   - debezium-json: one event per row change (op c, u or d, with before
//     and after; numbers as JSON numbers, decimals as strings as with
//     decimal.handling.mode=string, DATETIME as epoch milliseconds) and a
//     tombstone after every delete. An update that changes the primary
//     key is a delete of the old key, its tombstone and a create, as
//     Debezium sends it. A DDL event has no record (Debezium writes DDL to
//     its schema-change topic). The initial load's rows are snapshot
//     reads (op r, source.snapshot "true").
//
// Canal records have no key; Debezium's key is {"<key column>": key}.
func Encode(format string, ev Event) ([]Record, error) {
	switch format {
	case FormatCanal:
		return []Record{{Partition: ev.Partition, Value: canalMessage(ev)}}, nil
	case FormatDebezium:
		return debeziumEvents(ev), nil
	}
	return nil, fmt.Errorf("encode event: unknown format %q (want %s or %s)", format, FormatCanal, FormatDebezium)
}

func canalMessage(ev Event) []byte {
	t := ev.Table
	b := make([]byte, 0, 256+200*len(ev.Changes))
	es := ev.Time.UnixMilli()
	if ev.DDL != "" {
		b = append(b, `{"data":null,"database":"`...)
		b = append(b, Database...)
		b = append(b, `","es":`...)
		b = strconv.AppendInt(b, es, 10)
		b = append(b, `,"id":`...)
		b = strconv.AppendInt(b, ev.Seq, 10)
		b = append(b, `,"isDdl":true,"mysqlType":null,"old":null,"pkNames":null,"sql":`...)
		b = strconv.AppendQuote(b, ev.DDL)
		b = append(b, `,"sqlType":null,"table":"`...)
		b = append(b, t.Name...)
		b = append(b, `","ts":`...)
		b = strconv.AppendInt(b, es+3, 10)
		return append(b, `,"type":"ALTER"}`...)
	}
	b = append(b, `{"data":[`...)
	for i, c := range ev.Changes {
		if i > 0 {
			b = append(b, ',')
		}
		row := c.After
		if ev.Op == OpDelete {
			row = c.Before
		}
		b = canalRow(b, t, row, nil)
	}
	b = append(b, `],"database":"`...)
	b = append(b, Database...)
	b = append(b, `","es":`...)
	b = strconv.AppendInt(b, es, 10)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, ev.Seq, 10)
	b = append(b, `,"isDdl":false,"mysqlType":{`...)
	for i, col := range t.Columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, col.Name)
		b = append(b, ':', '"')
		b = append(b, mysqlType(col.Kind)...)
		b = append(b, '"')
	}
	b = append(b, `},"old":`...)
	if ev.Op == OpUpdate {
		b = append(b, '[')
		for i, c := range ev.Changes {
			if i > 0 {
				b = append(b, ',')
			}
			b = canalRow(b, t, c.Before, c.After)
		}
		b = append(b, ']')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"pkNames":["`...)
	b = append(b, t.Key()...)
	b = append(b, `"],"sql":"","table":"`...)
	b = append(b, t.Name...)
	b = append(b, `","ts":`...)
	b = strconv.AppendInt(b, es+3, 10)
	b = append(b, `,"type":"`...)
	b = append(b, canalType(ev.Op)...)
	return append(b, `"}`...)
}

// canalRow appends row as a Canal data object, every value a string;
// with unless set, only the columns whose value differs from unless's
// (Canal's old).
func canalRow(b []byte, t *Table, row, unless Row) []byte {
	b = append(b, '{')
	first := true
	for i, col := range t.Columns {
		if unless != nil && equal(row[i], unless[i]) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = strconv.AppendQuote(b, col.Name)
		b = append(b, ':')
		switch v := row[i].(type) {
		case nil:
			b = append(b, "null"...)
		case int64:
			b = append(b, '"')
			b = strconv.AppendInt(b, v, 10)
			b = append(b, '"')
		case string:
			b = strconv.AppendQuote(b, v)
		case time.Time:
			b = append(b, '"')
			b = v.In(sourceZone).AppendFormat(b, "2006-01-02 15:04:05.000-07:00")
			b = append(b, '"')
		}
	}
	return append(b, '}')
}

func equal(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	return a == b
}

func canalType(op Op) string {
	switch op {
	case OpInsert:
		return "INSERT"
	case OpUpdate:
		return "UPDATE"
	}
	return "DELETE"
}

func mysqlType(k Kind) string {
	switch k {
	case Long:
		return "bigint"
	case Decimal:
		return "decimal(10,2)"
	case Time:
		return "datetime(3)"
	}
	return "varchar(64)"
}

func debeziumEvents(ev Event) []Record {
	if ev.DDL != "" {
		return nil
	}
	t := ev.Table
	var out []Record
	for i, c := range ev.Changes {
		switch {
		case ev.Op == OpInsert && ev.Load:
			out = append(out, debeziumRecord(ev, i, "r", nil, c.After)) // the connector's snapshot
		case ev.Op == OpInsert:
			out = append(out, debeziumRecord(ev, i, "c", nil, c.After))
		case ev.Op == OpDelete:
			out = append(out, debeziumRecord(ev, i, "d", c.Before, nil),
				Record{Partition: ev.Partition, Key: debeziumKey(t, c.Before)})
		case c.Before.key() != c.After.key():
			out = append(out, debeziumRecord(ev, i, "d", c.Before, nil),
				Record{Partition: ev.Partition, Key: debeziumKey(t, c.Before)},
				debeziumRecord(ev, i, "c", nil, c.After))
		default:
			out = append(out, debeziumRecord(ev, i, "u", c.Before, c.After))
		}
	}
	return out
}

func debeziumKey(t *Table, r Row) []byte {
	b := append([]byte(`{`), strconv.Quote(t.Key())...)
	b = append(b, ':')
	b = strconv.AppendInt(b, r.key(), 10)
	return append(b, '}')
}

func debeziumRecord(ev Event, i int, op string, before, after Row) Record {
	t := ev.Table
	key := after
	if key == nil {
		key = before
	}
	ms := ev.Time.UnixMilli()
	b := make([]byte, 0, 600)
	b = append(b, `{"before":`...)
	b = debeziumRow(b, t, before)
	b = append(b, `,"after":`...)
	b = debeziumRow(b, t, after)
	b = append(b, `,"source":{"version":"2.7.3.Final","connector":"mysql","name":"`...)
	b = append(b, Database...)
	b = append(b, `","ts_ms":`...)
	b = strconv.AppendInt(b, ms, 10)
	b = append(b, `,"snapshot":"`...)
	b = strconv.AppendBool(b, ev.Load)
	b = append(b, `","db":"`...)
	b = append(b, Database...)
	b = append(b, `","table":"`...)
	b = append(b, t.Name...)
	b = append(b, `","server_id":1,"file":"mysql-bin.000003","pos":`...)
	b = strconv.AppendInt(b, 4+ev.Seq*311, 10)
	b = append(b, `,"row":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `},"op":"`...)
	b = append(b, op...)
	b = append(b, `","ts_ms":`...)
	b = strconv.AppendInt(b, ms+5, 10)
	b = append(b, `,"transaction":null}`...)
	return Record{Partition: ev.Partition, Key: debeziumKey(t, key), Value: b}
}

// debeziumRow appends row as a Debezium row image (null for nil).
func debeziumRow(b []byte, t *Table, row Row) []byte {
	if row == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, col := range t.Columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, col.Name)
		b = append(b, ':')
		switch v := row[i].(type) {
		case nil:
			b = append(b, "null"...)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case string:
			b = strconv.AppendQuote(b, v)
		case time.Time:
			b = strconv.AppendInt(b, v.UnixMilli(), 10)
		}
	}
	return append(b, '}')
}

// JSON renders row as a JSON object: numbers, decimals as strings, times
// in RFC 3339 in UTC (time.RFC3339Nano: no trailing zeros) — as `floe
// read -format jsonl` renders these types. The replay's form.
func JSON(t *Table, row Row) []byte {
	b := []byte{'{'}
	for i, col := range t.Columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, col.Name)
		b = append(b, ':')
		switch v := row[i].(type) {
		case nil:
			b = append(b, "null"...)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case string:
			b = strconv.AppendQuote(b, v)
		case time.Time:
			b = append(b, '"')
			b = v.UTC().AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		}
	}
	return append(b, '}')
}
