package mysql

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-mysql-org/go-mysql/replication"
	sqlparser "github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // the parser's literal values

	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// This file finds the changes of the binlog Floe cannot apply — DML logged
// as a statement (binlog_format STATEMENT or MIXED in the writing session)
// and row images without the columns applying them needs (binlog_row_image
// MINIMAL or NOBLOB) — and halts the tables they touch at the start of
// their transaction, so that no table moves past a change it did not get.
//
// A halt found inside a transaction waits for the transaction's end: the
// table's rows of that transaction are dropped (the rows of the complete
// transactions before it are handed over) and the table is halted at the
// transaction's start, while the other tables take the whole transaction.

// dmlKeywords start the statements that change rows when the binlog logs
// them as statements. SELECT and DO are logged only when they call a
// function that changes data; the tables it changes cannot be told.
var dmlKeywords = map[string]bool{
	"INSERT": true, "REPLACE": true, "UPDATE": true, "DELETE": true, "LOAD": true,
	"WITH": true, "SELECT": true, "DO": true,
}

// isDML reports whether a query event of the binlog changes rows: a
// statement-format INSERT, UPDATE, DELETE, REPLACE, LOAD DATA, or a SELECT
// or DO calling a function that does.
func isDML(q string) bool {
	// The first word is enough; comments (executable ones included) may
	// come before it.
	toks := tokenize(q[:min(len(q), 512)])
	for _, t := range toks {
		if t.quoted {
			return false
		}
		if t.s == "(" {
			continue
		}
		return dmlKeywords[strings.ToUpper(t.s)]
	}
	return false
}

// dmlTables returns the tables a DML statement changes ("db.table"; a
// table without a database is in defaultDB), or an error when it cannot
// tell: a statement the parser does not understand, or one whose changes
// are made by a function it calls. A multi-table UPDATE or DELETE gives
// every table it joins, also those it only reads; INSERT ... SELECT gives
// the table inserted into.
func dmlTables(p *sqlparser.Parser, q, defaultDB string) ([]string, error) {
	stmts, _, err := p.Parse(q, "", "")
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	c := &tableCollector{db: defaultDB, seen: map[string]bool{}}
	for _, s := range stmts {
		switch s := s.(type) {
		case *ast.InsertStmt:
			if s.Table != nil {
				s.Table.Accept(c)
			}
		case *ast.UpdateStmt:
			if s.TableRefs != nil {
				s.TableRefs.Accept(c)
			}
		case *ast.DeleteStmt:
			if s.TableRefs != nil {
				s.TableRefs.Accept(c)
			}
		case *ast.LoadDataStmt:
			if s.Table != nil {
				s.Table.Accept(c)
			}
		default:
			return nil, fmt.Errorf("a %s statement changes tables it does not name (through a function)", strings.TrimPrefix(fmt.Sprintf("%T", s), "*ast."))
		}
	}
	if len(c.tables) == 0 {
		return nil, errors.New("it names no table")
	}
	return c.tables, nil
}

// tableCollector gathers the table names of a syntax tree.
type tableCollector struct {
	db     string
	tables []string
	seen   map[string]bool
}

func (c *tableCollector) Enter(n ast.Node) (ast.Node, bool) {
	if tn, ok := n.(*ast.TableName); ok {
		db := tn.Schema.O
		if db == "" {
			db = c.db
		}
		full := db + "." + tn.Name.O
		if !c.seen[full] {
			c.seen[full] = true
			c.tables = append(c.tables, full)
		}
	}
	return n, false
}

func (c *tableCollector) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// statementDML handles a DML statement of the binlog (statement format):
// the captured tables it changes are halted at the start of its
// transaction. When its tables cannot be told, every captured table of its
// default database and of the databases it names is halted.
func (r *run) statementDML(q, defaultDB string, txStart int64) {
	if r.parser == nil {
		r.parser = sqlparser.New()
	}
	stmt := fmt.Sprintf("%q at binlog %s", abbreviate(q, 300), decodePos(txStart))
	reason := "a change logged as a statement, which Floe cannot apply (CDC needs binlog_format=ROW in every session that writes captured tables): " + stmt
	names, err := dmlTables(r.parser, q, defaultDB)
	if err == nil {
		for _, n := range names {
			if t := r.tables[n]; t != nil {
				r.markHalt(t, txStart, reason)
			}
		}
		return
	}
	dbs := statementDatabases(q, defaultDB)
	var which string
	switch {
	case len(dbs) == 0:
		which = "every captured table is halted"
	default:
		which = "every captured table of database " + strings.Join(sortedKeys(dbs), ", ") + " is halted"
	}
	reason = fmt.Sprintf("%s; the tables it changes cannot be told (%v), so %s", reason, err, which)
	for _, t := range r.sortedTables() {
		if len(dbs) == 0 || dbs[t.db] {
			r.markHalt(t, txStart, reason)
		}
	}
}

// statementDatabases returns the statement's default database and the
// databases it names in qualified names (db.table).
func statementDatabases(q, defaultDB string) map[string]bool {
	dbs := map[string]bool{}
	if defaultDB != "" {
		dbs[defaultDB] = true
	}
	toks := tokenize(q)
	for i := 0; i+2 < len(toks); i++ {
		a, dot, b := toks[i], toks[i+1], toks[i+2]
		if dot.s == "." && !dot.quoted && !a.str && !b.str && a.s != "" && (a.quoted || isIdentByte(a.s[0])) {
			dbs[a.s] = true
		}
	}
	return dbs
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// executeLoadQuery decodes the query and default database of an
// Execute_load_query event (LOAD DATA logged as a statement), which
// go-mysql leaves undecoded: a query event's body with 13 more bytes of
// post-header (file id, file name offsets, duplicate handling).
func executeLoadQuery(ev *replication.BinlogEvent, checksum bool) (q, db string, err error) {
	body := ev.RawData
	if len(body) < replication.EventHeaderSize+26 {
		return "", "", errors.New("execute_load_query event too short")
	}
	body = body[replication.EventHeaderSize:]
	if checksum {
		if len(body) < 26+replication.BinlogChecksumLength {
			return "", "", errors.New("execute_load_query event too short")
		}
		body = body[:len(body)-replication.BinlogChecksumLength]
	}
	data := append(append([]byte(nil), body[:13]...), body[26:]...)
	qe := &replication.QueryEvent{}
	if err := decodeSafely(qe, data); err != nil {
		return "", "", fmt.Errorf("decode execute_load_query event: %w", err)
	}
	return string(qe.Query), string(qe.Schema), nil
}

// decodeSafely decodes an event, turning a decoder's panic on malformed
// data into an error.
func decodeSafely(e replication.Event, data []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed event: %v", p)
		}
	}()
	return e.Decode(data)
}

// imageGaps names the columns the row images of a rows event lack that
// applying it needs — every column of an inserted or updated row's new
// image, the key of an old image — or returns "" when none is missing.
// Full row images (binlog_row_image=FULL) lack none.
func (m *rowMapper) imageGaps(e *replication.RowsEvent) string {
	if allSet(e.ColumnBitmap1, len(m.cols)) && (e.Type() != replication.EnumRowsEventTypeUpdate || allSet(e.ColumnBitmap2, len(m.cols))) {
		return "" // full images
	}
	var gaps []string
	check := func(bitmap []byte, image string, cols []int) {
		var miss []string
		for _, i := range cols {
			if bitmap != nil && (i>>3 >= len(bitmap) || bitmap[i>>3]&(1<<(uint(i)&7)) == 0) {
				miss = append(miss, m.cols[i].name)
			}
		}
		if len(miss) > 0 {
			gaps = append(gaps, image+" lacks "+strings.Join(miss, ", "))
		}
	}
	all := make([]int, len(m.cols))
	for i := range all {
		all[i] = i
	}
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		check(e.ColumnBitmap1, "the inserted image", all)
	case replication.EnumRowsEventTypeUpdate:
		check(e.ColumnBitmap1, "the image before the update", m.keyIdx)
		check(e.ColumnBitmap2, "the image after the update", all)
	case replication.EnumRowsEventTypeDelete:
		check(e.ColumnBitmap1, "the deleted image", m.keyIdx)
	}
	return strings.Join(gaps, "; ")
}

// allSet reports whether a column bitmap has the first n bits set (a nil
// bitmap stands for a full image).
func allSet(bitmap []byte, n int) bool {
	if bitmap == nil {
		return true
	}
	if len(bitmap) < (n+7)/8 {
		return false
	}
	for i := 0; i < n/8; i++ {
		if bitmap[i] != 0xff {
			return false
		}
	}
	if r := n % 8; r != 0 {
		mask := byte(1)<<r - 1
		return bitmap[n/8]&mask == mask
	}
	return true
}

// markHalt halts t at txStart, the start of the open transaction, once the
// transaction ends; t takes no more rows of it. The first reason counts.
func (r *run) markHalt(t *capTable, txStart int64, reason string) {
	if t.halted || t.kt == nil || txStart < t.pos || t.haltWhy != "" {
		return
	}
	t.haltAt, t.haltWhy = txStart, reason
	r.halting = true
}

// haltMarked hands t the rows of the complete transactions before its
// halt position, drops those of the transaction it halts at, and halts it
// there.
func (r *run) haltMarked(ctx context.Context, t *capTable) error {
	keep := t.rows
	if t.txStart == t.haltAt {
		keep = t.txBase
	}
	ch := writer.Changes{MaxEventTime: t.event}
	if t.rows > 0 {
		rec := t.b.NewRecordBatch()
		if keep > 0 {
			if keep < int(rec.NumRows()) {
				s := rec.NewSlice(0, int64(keep))
				rec.Release()
				rec = s
			}
			ch.Record, ch.Ops = rec, t.ops[:keep]
		} else {
			rec.Release()
		}
	}
	t.ops, t.rows, t.txStart = nil, 0, -1
	if t.haltAt > t.pos && t.haltAt > t.applied {
		ch.Next = table.Positions{PartitionBinlog: t.haltAt}
		t.applied = t.haltAt
	}
	if ch.Record != nil || ch.Next != nil {
		if err := t.kt.Apply(ch); err != nil {
			return fmt.Errorf("apply changes to %s: %w", t.name, err)
		}
	}
	reason := t.haltWhy
	t.haltWhy = ""
	return r.halt(ctx, t, reason)
}
