package mysql

// This file turns the rows events of the binlog into the batches of the
// captured tables: row images decoded with the table map they were written
// under, upserts and deletes by key, and dead letters for images that
// cannot be mapped.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/floe-lake/floe/writer"
)

// rowsEvent collects the rows of one rows event of a transaction.
func (r *run) rowsEvent(ctx context.Context, e *replication.RowsEvent, et replication.EventType, txStart, evStart int64, evTime time.Time) error {
	full := string(e.Table.Schema) + "." + string(e.Table.Table)
	t := r.tables[full]
	if t == nil || t.halted || t.kt == nil || txStart < t.pos {
		return nil
	}
	if t.haltWhy != "" {
		return nil // halted at the transaction's start
	}
	m, err := t.mapperFor(e.Table)
	if err != nil {
		r.markHalt(t, txStart, fmt.Sprintf("rows at binlog %s: %v", decodePos(evStart), err))
		return nil
	}
	if gaps := m.imageGaps(e); gaps != "" {
		r.markHalt(t, txStart, fmt.Sprintf("%s rows at binlog %s: %s, which applying them needs (CDC needs binlog_row_image=FULL in every session that writes captured tables)",
			e.Type(), decodePos(evStart), gaps))
		return nil
	}
	if t.txStart != txStart {
		t.txStart, t.txBase = txStart, t.rows
	}
	dl := txStart >= r.dlPos
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		for _, row := range e.Rows {
			r.upsert(t, m, row, evStart, dl)
		}
	case replication.EnumRowsEventTypeUpdate:
		for i := 0; i+1 < len(e.Rows); i += 2 {
			before, after := e.Rows[i], e.Rows[i+1]
			if !m.sameKey(before, after) {
				r.deleteRow(t, m, before, evStart, dl)
			}
			r.upsert(t, m, after, evStart, dl)
		}
	case replication.EnumRowsEventTypeDelete:
		for _, row := range e.Rows {
			r.deleteRow(t, m, row, evStart, dl)
		}
	default:
		return fmt.Errorf("rows event of unknown type %s for %s", et, full)
	}
	if evTime.After(t.event) {
		t.event = evTime
	}
	return nil
}

// upsert appends a row image as an upsert; a row that cannot be mapped
// becomes a dead letter, and its key (when it can be read) is deleted.
func (r *run) upsert(t *capTable, m *rowMapper, row []any, pos int64, dl bool) {
	vals := r.rowValues(len(t.targets))
	var bad error
	for i, c := range m.cols {
		if c.target < 0 || i >= len(row) {
			continue
		}
		v := &vals[c.target]
		if err := decodeBinlog(row[i], &c, v); err != nil {
			bad = fmt.Errorf("column %s: %w", c.name, err)
			break
		}
		if err := prepare(v, &t.targets[c.target]); err != nil {
			bad = fmt.Errorf("column %s: %w", c.name, err)
			break
		}
	}
	if bad == nil {
		for _, ti := range m.missing {
			if err := prepare(&vals[ti], &t.targets[ti]); err != nil {
				bad = fmt.Errorf("column %s: %w", t.targets[ti].name, err)
				break
			}
		}
	}
	if bad != nil {
		r.badRow(t, m, row, pos, bad, dl)
		return
	}
	for i := range t.targets {
		appendValue(t.b.Field(i), &vals[i])
	}
	t.ops = append(t.ops, writer.OpUpsert)
	t.rows++
	r.batchRows++
}

// deleteRow appends the key of a row image as a delete. A key that cannot
// be mapped makes the image a dead letter: no row with that key was ever
// written, so there is nothing to delete.
func (r *run) deleteRow(t *capTable, m *rowMapper, row []any, pos int64, dl bool) {
	vals := r.rowValues(len(t.targets))
	if err := r.keyValues(t, m, row, vals); err != nil {
		r.deadLetter(t, m, row, pos, err, dl)
		return
	}
	r.appendDelete(t, vals)
}

// badRow makes a row image that cannot be mapped a dead letter and deletes
// its key (when the key can be mapped): the row is not in the table, so
// its previous image must not be either.
func (r *run) badRow(t *capTable, m *rowMapper, row []any, pos int64, why error, dl bool) {
	r.deadLetter(t, m, row, pos, why, dl)
	vals := r.rowValues(len(t.targets))
	if r.keyValues(t, m, row, vals) == nil {
		r.appendDelete(t, vals)
	}
}

// keyValues decodes the key columns of a row image into vals.
func (r *run) keyValues(t *capTable, m *rowMapper, row []any, vals []value) error {
	for _, i := range m.keyIdx {
		c := &m.cols[i]
		v := &vals[c.target]
		err := decodeBinlog(row[i], c, v)
		if err == nil {
			err = prepare(v, &t.targets[c.target])
		}
		if err != nil {
			return fmt.Errorf("key column %s: %w", c.name, err)
		}
	}
	return nil
}

func (r *run) appendDelete(t *capTable, vals []value) {
	for i := range t.targets {
		appendValue(t.b.Field(i), &vals[i])
	}
	t.ops = append(t.ops, writer.OpDelete)
	t.rows++
	r.batchRows++
}

// deadLetter records a row image that cannot be applied, with its key.
func (r *run) deadLetter(t *capTable, m *rowMapper, row []any, pos int64, why error, dl bool) {
	r.s.m.deadLetters.WithLabelValues(t.name).Inc()
	if !dl {
		return
	}
	names := make([]string, len(m.cols))
	for i, c := range m.cols {
		names[i] = c.name
	}
	keyVals := make([]any, len(m.keyIdx))
	keyNames := make([]string, len(m.keyIdx))
	for j, i := range m.keyIdx {
		keyVals[j], keyNames[j] = row[i], m.cols[i].name
	}
	r.dl.add(t.name, pos, keyJSON(keyNames, keyVals), rawJSON(names, row), why.Error(), r.s.now())
}

func (r *run) rowValues(n int) []value {
	if cap(r.vals) < n {
		r.vals = make([]value, n)
	}
	r.vals = r.vals[:n]
	for i := range r.vals {
		r.vals[i] = value{}
	}
	return r.vals
}

// binCol is one column of a binlog table map.
type binCol struct {
	name     string
	target   int // the Arrow column; -1 when the Iceberg table has none
	typ      byte
	meta     uint16
	unsigned bool
	enum     []string
	set      []string
	bits     int
	// fixedLen is the byte length of a CHAR/BINARY column: the binlog
	// drops BINARY's trailing zero bytes, which SELECT returns.
	fixedLen int
}

// rowMapper maps the columns of a binlog table map to a table's columns.
type rowMapper struct {
	cols    []binCol
	keyIdx  []int // binlog columns of the key
	missing []int // Arrow columns the binlog does not have
}

// mapperFor returns the mapping for tm, building it when the table map
// changed.
func (t *capTable) mapperFor(tm *replication.TableMapEvent) (*rowMapper, error) {
	if t.mapper != nil && sameTableMap(t.mapTM, tm) {
		t.mapTM = tm
		return t.mapper, nil
	}
	m, err := buildMapper(tm, t.targets, t.keyNames)
	if err != nil {
		return nil, err
	}
	t.mapTM, t.mapper = tm, m
	return m, nil
}

func sameTableMap(a, b *replication.TableMapEvent) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil || a.TableID != b.TableID || !bytes.Equal(a.ColumnType, b.ColumnType) ||
		len(a.ColumnMeta) != len(b.ColumnMeta) || len(a.ColumnName) != len(b.ColumnName) {
		return false
	}
	for i := range a.ColumnMeta {
		if a.ColumnMeta[i] != b.ColumnMeta[i] {
			return false
		}
	}
	for i := range a.ColumnName {
		if !bytes.Equal(a.ColumnName[i], b.ColumnName[i]) {
			return false
		}
	}
	return bytes.Equal(a.SignednessBitmap, b.SignednessBitmap) && len(a.EnumStrValue) == len(b.EnumStrValue) && len(a.SetStrValue) == len(b.SetStrValue)
}

func buildMapper(tm *replication.TableMapEvent, targets []target, keyNames []string) (*rowMapper, error) {
	names := tm.ColumnNameString()
	if len(names) != int(tm.ColumnCount) {
		return nil, errors.New("the binlog's table map has no column names; set binlog_row_metadata=FULL")
	}
	byName := map[string]int{}
	for i, t := range targets {
		byName[t.name] = i
	}
	unsigned := tm.UnsignedMap()
	enums := tm.EnumStrValueMap()
	sets := tm.SetStrValueMap()
	m := &rowMapper{cols: make([]binCol, len(names))}
	seen := make([]bool, len(targets))
	for i, n := range names {
		ti, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("column %s is not in the Iceberg table (a schema change Floe did not see?)", n)
		}
		seen[ti] = true
		c := binCol{name: n, target: ti, typ: tm.ColumnType[i], meta: tm.ColumnMeta[i], unsigned: unsigned[i]}
		switch {
		case tm.IsEnumColumn(i):
			c.typ, c.enum = gmysql.MYSQL_TYPE_ENUM, enums[i]
		case tm.IsSetColumn(i):
			c.typ, c.set = gmysql.MYSQL_TYPE_SET, sets[i]
		case c.typ == gmysql.MYSQL_TYPE_BIT:
			c.bits = int(c.meta>>8)*8 + int(c.meta&0xff)
		case c.typ == gmysql.MYSQL_TYPE_STRING && targets[ti].typ.ID() == arrow.BINARY:
			c.fixedLen = stringLength(c.meta)
		}
		m.cols[i] = c
	}
	for ti, ok := range seen {
		if !ok {
			if !targets[ti].nullable {
				return nil, fmt.Errorf("required column %s is not in the binlog's rows", targets[ti].name)
			}
			m.missing = append(m.missing, ti)
		}
	}
	for _, k := range keyNames {
		found := false
		for i, n := range names {
			if n == k {
				m.keyIdx = append(m.keyIdx, i)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("key column %s is not in the binlog's rows", k)
		}
	}
	return m, nil
}

// sameKey reports whether two images of a row have the same key.
func (m *rowMapper) sameKey(a, b []any) bool {
	for _, i := range m.keyIdx {
		x, y := a[i], b[i]
		switch xv := x.(type) {
		case []byte:
			yv, ok := y.([]byte)
			if !ok || !bytes.Equal(xv, yv) {
				return false
			}
		default:
			if x != y {
				return false
			}
		}
	}
	return true
}

// decodeBinlog reads a value decoded by go-mysql (ParseTime and UseDecimal
// off): integers as signed Go integers (made unsigned by the table map's
// signedness), ENUM and SET as their index and bit set (mapped to labels
// with the table map's labels), BIT as an integer, DECIMAL and temporal
// types as text, strings and blobs as string or []byte.
func decodeBinlog(x any, c *binCol, v *value) error {
	switch x := x.(type) {
	case nil:
		v.k = vNull
	case int8:
		if c.unsigned {
			v.k, v.u = vUint, uint64(uint8(x))
		} else {
			v.k, v.i = vInt, int64(x)
		}
	case int16:
		if c.unsigned {
			v.k, v.u = vUint, uint64(uint16(x))
		} else {
			v.k, v.i = vInt, int64(x)
		}
	case int32:
		switch {
		case !c.unsigned:
			v.k, v.i = vInt, int64(x)
		case c.typ == gmysql.MYSQL_TYPE_INT24:
			v.k, v.u = vUint, uint64(uint32(x)&0xffffff)
		default:
			v.k, v.u = vUint, uint64(uint32(x))
		}
	case int64:
		switch c.typ {
		case gmysql.MYSQL_TYPE_ENUM:
			switch {
			case x == 0:
				v.k, v.s = vStr, "" // MySQL's value for an invalid ENUM
			case int(x) <= len(c.enum):
				v.k, v.s = vStr, c.enum[x-1]
			default:
				return fmt.Errorf("ENUM index %d out of range (%d labels)", x, len(c.enum))
			}
		case gmysql.MYSQL_TYPE_SET:
			var b strings.Builder
			for i := 0; i < 64 && i < len(c.set); i++ {
				if uint64(x)&(1<<i) != 0 {
					if b.Len() > 0 {
						b.WriteByte(',')
					}
					b.WriteString(c.set[i])
				}
			}
			v.k, v.s = vStr, b.String()
		case gmysql.MYSQL_TYPE_BIT:
			n := (c.bits + 7) / 8
			buf := make([]byte, 8)
			for i := 0; i < 8; i++ {
				buf[7-i] = byte(uint64(x) >> (8 * i))
			}
			v.k, v.b = vBytes, buf[8-n:]
		default:
			if c.unsigned {
				v.k, v.u = vUint, uint64(x)
			} else {
				v.k, v.i = vInt, x
			}
		}
	case int:
		v.k, v.i = vInt, int64(x)
	case float32:
		v.k, v.f = vFloat, float64(x)
	case float64:
		v.k, v.f = vFloat, x
	case string:
		if c.fixedLen > len(x) {
			b := make([]byte, c.fixedLen)
			copy(b, x)
			v.k, v.b = vBytes, b
			return nil
		}
		v.k, v.s = vStr, x
	case []byte:
		v.k, v.b = vBytes, x
	default:
		return fmt.Errorf("unsupported binlog value %T (partial JSON updates need binlog_row_value_options='')", x)
	}
	return nil
}

// stringLength is the byte length a MYSQL_TYPE_STRING column's table-map
// metadata declares (as go-mysql decodes it).
func stringLength(meta uint16) int {
	if meta >= 256 {
		b0, b1 := uint8(meta>>8), uint8(meta&0xff)
		if b0&0x30 != 0x30 {
			return int(uint16(b1) | uint16((b0&0x30)^0x30)<<4)
		}
		return int(meta & 0xff)
	}
	return int(meta)
}
