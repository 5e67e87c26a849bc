package kafka

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// keyedRow is one row operation of an upsert route: an upsert of image,
// or a delete of the key of image (or of the record's key: json
// tombstones).
type keyedRow struct {
	// op is the change type: insert, update, read (a snapshot row) or
	// delete for Canal and Debezium; "" (an upsert) or delete for json.
	op string
	// image is the row: the new image of an upsert, the deleted row (at
	// least its key columns) of a delete; nil for a delete whose key is
	// the record's key.
	image json.RawMessage
	// prev is the row's previous image, for an update, when the message
	// has one: Canal's old (the changed columns only: partial) or
	// Debezium's before (the whole row).
	prev    json.RawMessage
	partial bool
	// eventTime is the source database's time of the change, or zero.
	eventTime time.Time
}

func (r *keyedRow) delete() bool { return r.op == "delete" }

// keyedMsg is what one record means to an upsert route: rows to apply in
// order, or a statement (a Canal DDL, a Debezium truncate) to act on.
type keyedMsg struct {
	rows []keyedRow
	// stmt is set for a Canal DDL message or a Debezium truncate.
	stmt *statement
}

// statement is a Canal DDL message or a Debezium truncate.
type statement struct {
	typ string // Canal's type (ALTER, TRUNCATE, ERASE, ...) or TRUNCATE
	sql string
}

// decodeKeyed returns the rows (or the statement) a record value carries
// for an upsert route; errSkip for a record that carries neither (a
// Debezium tombstone, a Canal message without rows).
func decodeKeyed(format string, value []byte) (keyedMsg, error) {
	switch format {
	case FormatCanal:
		return decodeCanalKeyed(value)
	case FormatDebezium:
		return decodeDebeziumKeyed(value)
	}
	if isTombstone(value) {
		return keyedMsg{rows: []keyedRow{{op: "delete"}}}, nil
	}
	return keyedMsg{rows: []keyedRow{{image: value}}}, nil
}

func decodeCanalKeyed(value []byte) (keyedMsg, error) {
	m, err := parseCanal(value)
	if err != nil {
		return keyedMsg{}, err
	}
	op := canalOp(m.Type)
	switch {
	case m.IsDdl || (op == "" && m.Type != ""):
		return keyedMsg{stmt: &statement{typ: strings.ToUpper(m.Type), sql: m.SQL}}, nil
	case m.Type == "":
		return keyedMsg{}, errors.New("decode canal-json message: no type")
	case len(m.Data) == 0:
		return keyedMsg{}, errSkip
	}
	ev := m.eventTime()
	out := keyedMsg{rows: make([]keyedRow, 0, len(m.Data))}
	for i, d := range m.Data {
		r := keyedRow{op: op, image: d, eventTime: ev}
		if op == "update" && i < len(m.Old) && !isNull(m.Old[i]) {
			r.prev, r.partial = m.Old[i], true
		}
		out.rows = append(out.rows, r)
	}
	return out, nil
}

func decodeDebeziumKeyed(value []byte) (keyedMsg, error) {
	if isTombstone(value) {
		return keyedMsg{}, errSkip // the tombstone after a delete
	}
	e, err := parseDebezium(value)
	if err != nil {
		return keyedMsg{}, err
	}
	r := keyedRow{eventTime: e.eventTime()}
	switch e.Op {
	case "c":
		r.op, r.image = "insert", e.After
	case "u":
		r.op, r.image = "update", e.After
		if !isNull(e.Before) {
			r.prev = e.Before
		}
	case "r":
		r.op, r.image = "read", e.After
	case "d":
		r.op, r.image = "delete", e.Before
	case "t":
		return keyedMsg{stmt: &statement{typ: "TRUNCATE"}}, nil
	case "":
		return keyedMsg{}, errors.New("decode debezium-json event: no op (not a change event)")
	default:
		return keyedMsg{}, fmt.Errorf("decode debezium-json event: unknown op %q", e.Op)
	}
	if isNull(r.image) {
		return keyedMsg{}, fmt.Errorf("decode debezium-json event: op %q without its row image", e.Op)
	}
	return keyedMsg{rows: []keyedRow{r}}, nil
}

// members decodes the top-level members of a JSON object.
func members(raw []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode row: %w", err)
	}
	if m == nil {
		return nil, errors.New("the row is not a JSON object")
	}
	return m, nil
}

// keyObject is the JSON object of the key columns' values in m: what the
// key decoder reads. A key column that is missing or null is an error.
func keyObject(m map[string]json.RawMessage, keys []string) ([]byte, error) {
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		v, ok := m[k]
		if !ok {
			return nil, fmt.Errorf("key column %q is missing", k)
		}
		if isNull(v) {
			return nil, fmt.Errorf("key column %q is null", k)
		}
		vals[i] = v
	}
	return appendKeyObject(nil, keys, vals), nil
}

// appendKeyObject appends the key object of the key columns' values vals
// (none missing or null) to b.
func appendKeyObject(b []byte, keys []string, vals [][]byte) []byte {
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, k)
		b = append(b, ':')
		b = append(b, bytes.TrimSpace(vals[i])...)
	}
	return append(b, '}')
}

// rowKey is the key object of a row image.
func rowKey(image []byte, keys []string) ([]byte, error) {
	m, err := members(image)
	if err != nil {
		return nil, err
	}
	return keyObject(m, keys)
}

// envelopeKey is rowKey of an image taken from a Canal or Debezium
// envelope, which encoding/json checked whole: it scans for the key
// columns instead of decoding the image (rowKey's errors when it cannot).
func envelopeKey(image []byte, keys []string) ([]byte, error) {
	if vals, ok := keyValues(image, keys); ok {
		return appendKeyObject(nil, keys, vals), nil
	}
	return rowKey(image, keys)
}

// previousKey returns the key an update moves its row away from, when the
// update changes the key: Canal's old lists changed columns only, so a key
// column in it means the key changed (the old key is the new image's key
// with old's values); Debezium's before is the whole previous row. ok is
// false when the key did not change or the update has no previous image.
func previousKey(r *keyedRow, keys []string) (old []byte, ok bool, err error) {
	if r.prev == nil {
		return nil, false, nil
	}
	// r.prev and r.image come from an envelope encoding/json checked
	// whole (only Canal and Debezium updates have a prev).
	if !r.partial {
		// The common case without decoding whole images: both keys
		// present; else the slow path says what is wrong.
		if pv, pok := keyValues(r.prev, keys); pok {
			if cv, cok := keyValues(r.image, keys); cok {
				for i := range keys {
					if !bytes.Equal(bytes.TrimSpace(pv[i]), bytes.TrimSpace(cv[i])) {
						return appendKeyObject(nil, keys, pv), true, nil
					}
				}
				return nil, false, nil
			}
		}
	} else if keysAbsent(r.prev, keys) {
		return nil, false, nil
	}
	prev, err := members(r.prev)
	if err != nil {
		return nil, false, fmt.Errorf("previous image: %w", err)
	}
	if r.partial {
		changed := false
		for _, k := range keys {
			if _, in := prev[k]; in {
				changed = true
			}
		}
		if !changed {
			return nil, false, nil
		}
		img, err := members(r.image)
		if err != nil {
			return nil, false, err
		}
		for _, k := range keys {
			if _, in := prev[k]; !in {
				prev[k] = img[k]
			}
		}
		old, err := keyObject(prev, keys)
		if err != nil {
			return nil, false, fmt.Errorf("previous key: %w", err)
		}
		return old, true, nil
	}
	old, err = keyObject(prev, keys)
	if err != nil {
		return nil, false, fmt.Errorf("previous key: %w", err)
	}
	cur, err := envelopeKey(r.image, keys)
	if err != nil {
		return nil, false, err
	}
	return old, !bytes.Equal(old, cur), nil
}

// recordKey is the key object of a json record's Kafka key, for a
// tombstone: a JSON object holding the key columns, or — when the key is
// one column — a JSON scalar or, failing that, the key's text as a string.
func recordKey(key []byte, keys []string) ([]byte, error) {
	k := bytes.TrimSpace(key)
	if len(k) == 0 {
		return nil, errors.New("a null value deletes the row of the record's key, and the record has no key")
	}
	if k[0] == '{' {
		m, err := members(k)
		if err != nil {
			return nil, fmt.Errorf("record key: %w", err)
		}
		return keyObject(m, keys)
	}
	if len(keys) != 1 {
		return nil, fmt.Errorf("record key: not a JSON object with the key columns %v", keys)
	}
	var v any
	if json.Unmarshal(k, &v) == nil && v != nil {
		return keyObject(map[string]json.RawMessage{keys[0]: k}, keys)
	}
	return keyObject(map[string]json.RawMessage{keys[0]: json.RawMessage(strconv.Quote(string(key)))}, keys)
}

// Statements an upsert table cannot follow: they change the key, or remove
// rows without row events.
var (
	rePrimaryKey = regexp.MustCompile(`(?i)\bprimary\s+key\b`)
	reTruncate   = regexp.MustCompile(`(?i)^\s*truncate\b`)
	reDropTable  = regexp.MustCompile(`(?i)^\s*drop\s+table\b`)
	reCreate     = regexp.MustCompile(`(?i)^\s*create\s+(temporary\s+)?table\b`)
)

// haltReason says why an upsert table with key columns keys cannot follow
// st, or "" when the table can skip it (the table's columns are mapped by
// name, so added columns are ignored and dropped ones become nulls):
//
//   - CREATE TABLE is skipped (a re-created table was dropped first);
//   - TRUNCATE (a Canal TRUNCATE, a Debezium truncate) and DROP TABLE
//     (Canal's ERASE) remove rows without row events;
//   - a statement naming PRIMARY KEY, or one that drops, renames or
//     changes (CHANGE, MODIFY) a key column, changes the key.
func haltReason(st *statement, keys []string) string {
	q := strings.TrimSpace(st.sql)
	short := q
	if len(short) > 300 {
		short = short[:300] + "…"
	}
	switch {
	case st.typ == "CREATE" || reCreate.MatchString(q):
		// A new table; a table re-created was dropped first.
		return ""
	case st.typ == "TRUNCATE" || reTruncate.MatchString(q):
		return fmt.Sprintf("TRUNCATE removes rows without row events (%q)", short)
	case st.typ == "ERASE" || reDropTable.MatchString(q):
		return fmt.Sprintf("the table was dropped (%q)", short)
	case rePrimaryKey.MatchString(q):
		return fmt.Sprintf("the statement changes the primary key (%q)", short)
	}
	for _, k := range keys {
		col := regexp.QuoteMeta(k)
		re := regexp.MustCompile(`(?i)\b(drop|change|modify|rename)\s+(column\s+)?(` + "`" + col + "`" + `|` + col + `\b)`)
		if re.MatchString(q) {
			return fmt.Sprintf("the statement changes key column %s (%q)", k, short)
		}
	}
	return ""
}
