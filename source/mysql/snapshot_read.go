package mysql

// This file reads the rows of a snapshot: connections in consistent
// snapshot transactions, through go-mysql's client (its streaming SELECT
// hands each row over as typed values in reused buffers: no allocation
// and no interface per value, where database/sql boxes every value and
// converts it again on Scan), and the rows of a SELECT decoded straight
// into a table's column builders.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/go-mysql-org/go-mysql/client"
	gmysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/floe-lake/floe/internal/progress"
	"github.com/floe-lake/floe/writer"
)

// snapConn is one connection of a snapshot, in its consistent-snapshot
// transaction once begin returned.
type snapConn struct {
	c    *client.Conn
	stop func() bool // ends the watch that unblocks c when ctx is done
}

// dialSnapshot opens a connection for reading a snapshot: the DSN's
// server, user, password and TLS, UTF-8 results, TIMESTAMP values in UTC
// (as the database/sql connections and the binlog have them), REPEATABLE
// READ, backslash escapes in literals. When ctx is done, its reads fail.
func (r *run) dialSnapshot(ctx context.Context) (*snapConn, error) {
	d := r.dsn.cfg
	var opts []client.Option
	if d.TLS != nil {
		tc := d.TLS
		opts = append(opts, func(c *client.Conn) error { c.SetTLSConfig(tc); return nil })
	}
	dctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	c, err := client.ConnectWithContext(dctx, d.Addr, d.User, d.Passwd, "", r.cfg.ConnectTimeout, opts...)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", d.Addr, err)
	}
	sc := &snapConn{c: c, stop: context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })}
	for _, q := range []string{
		"SET NAMES utf8mb4",
		"SET time_zone = '+00:00'",
		"SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
		"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
	} {
		if err := sc.exec(q); err != nil {
			sc.close()
			return nil, fmt.Errorf("snapshot connection: %s: %w", q, err)
		}
	}
	return sc, nil
}

// dialSnapshots opens up to n connections for a snapshot's transactions:
// at least one, or the error; fewer when the server refuses more (too
// many connections), which is logged.
func (r *run) dialSnapshots(ctx context.Context, n int) ([]*snapConn, error) {
	conns := make([]*snapConn, 0, n)
	for range n {
		c, err := r.dialSnapshot(ctx)
		if err != nil {
			if len(conns) == 0 || ctx.Err() != nil {
				for _, c := range conns {
					c.close()
				}
				return nil, err
			}
			r.log.Info("snapshot on fewer connections than snapshot-parallelism: the server refused another", "connections", len(conns), "err", err)
			break
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// snapshotAlignAttempts is how often the transactions of a snapshot
// without the lock are started again when their positions differ.
const snapshotAlignAttempts = 5

// alignSnapshots starts the consistent-snapshot transactions of conns
// without the lock (MariaDB): each reports its binlog position, and they
// are kept when all are the same — no transaction committed between their
// starts, so all see the tables as of that position. When writes keep
// coming between them, the snapshot is read on the first connection
// alone. It returns the connections kept and their position.
func (r *run) alignSnapshots(ctx context.Context, conns []*snapConn) ([]*snapConn, binlogPos, error) {
	for attempt := 1; ; attempt++ {
		// All at once, so that a commit rarely comes between them.
		errs := make([]error, len(conns))
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = c.begin()
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return conns, binlogPos{}, err
		}
		var file string
		off := -1
		aligned := true
		for i, c := range conns {
			f, o, err := c.snapshotStatus()
			if err != nil {
				return conns, binlogPos{}, err
			}
			if i == 0 {
				file, off = f, o
			} else if f != file || o != off {
				aligned = false
			}
		}
		if aligned || attempt == snapshotAlignAttempts || ctx.Err() != nil {
			if !aligned {
				r.log.Info("snapshot on one connection: without the RELOAD privilege the transactions of a parallel snapshot start at the same position only when no write comes between them, and writes kept coming",
					"attempts", attempt)
				for _, c := range conns[1:] {
					c.close()
				}
				conns = conns[:1]
			}
			seq, err := fileSeq(file)
			if err != nil {
				return conns, binlogPos{}, err
			}
			r.binlog = file
			return conns, binlogPos{seq: seq, offset: uint32(off)}, ctx.Err()
		}
		for _, c := range conns {
			if err := c.exec("ROLLBACK"); err != nil {
				return conns, binlogPos{}, err
			}
		}
	}
}

func (s *snapConn) exec(q string) error {
	_, err := s.c.Execute(q)
	return err
}

// begin starts the connection's consistent-snapshot transaction.
func (s *snapConn) begin() error {
	if err := s.exec("START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
		return fmt.Errorf("START TRANSACTION WITH CONSISTENT SNAPSHOT: %w", err)
	}
	return nil
}

// snapshotStatus returns MariaDB's binlog position of the connection's
// consistent snapshot (binlog_snapshot_file and _position).
func (s *snapConn) snapshotStatus() (file string, off int, err error) {
	res, err := s.c.Execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return "", 0, err
	}
	defer res.Close()
	off = -1
	for i := range res.RowNumber() {
		k, _ := res.GetString(i, 0)
		v, _ := res.GetString(i, 1)
		switch k {
		case "binlog_snapshot_file", "Binlog_snapshot_file":
			file = v
		case "binlog_snapshot_position", "Binlog_snapshot_position":
			off, _ = atoi(v)
		}
	}
	if file == "" || off < 0 {
		return "", 0, errors.New("no binlog_snapshot_file/position status")
	}
	return file, off, nil
}

// close ends the transaction (the server rolls it back) and the
// connection.
func (s *snapConn) close() {
	s.stop()
	_ = s.c.Close()
}

// stream runs query and hands each row to fn; fn must not keep the row.
func (s *snapConn) stream(query string, fn func([]gmysql.FieldValue) error) error {
	var res gmysql.Result
	return s.c.ExecuteSelectStreaming(query, &res, fn, nil)
}

// rowSink decodes a table's snapshot rows into a batch of upserts and
// hands full batches to the table; rows that cannot be mapped become dead
// letters. Each reading connection has its own.
type rowSink struct {
	r        *run
	t        *capTable
	pos      int64
	now      time.Time
	sels     []selected
	colNames []string
	keySel   []int // the key's columns among sels, for dead letters
	b        *array.RecordBuilder
	fields   []array.Builder
	ops      []writer.Op
	rows     int
	vals     []value
	n        int64 // rows handed over
	dataLen  []int // per column: the most value bytes of a batch so far
	meter    *progress.Meter
	dlMu     *sync.Mutex // guards r.dl between sinks
	// apply hands a batch over: t.kt.Apply (a benchmark of the decoding
	// alone drops the batches).
	apply func(writer.Changes) error
	// newKeys: the batches are handed over as writer.Changes.NewKeys (see
	// snapshotNewKeys).
	newKeys bool
}

// snapshotNewKeys reports whether the rows of def's snapshot can be
// handed to its table, truncated before the copy, as new keys
// (writer.Changes.NewKeys: the table does not look each up in its key
// index): the table's key is MySQL's primary key, whose rows have
// distinct values that stay distinct as Iceberg values, and the chunks
// read every row once. FLOAT and DOUBLE keys are excluded: their text
// form need not tell two values apart.
func snapshotNewKeys(def *tableDef, keyNames []string) bool {
	if len(keyNames) == 0 || len(keyNames) != len(def.PK) {
		return false
	}
	kinds := make(map[string]kind, len(def.Columns))
	for _, c := range def.Columns {
		kinds[c.Name] = c.Kind
	}
	for _, n := range keyNames {
		k, ok := kinds[n]
		if !ok || !slices.Contains(def.PK, n) || k == kFloat || k == kDouble {
			return false
		}
	}
	return true
}

// newRowSink returns a sink of t's rows; the sinks of a table share
// applyMu (their Apply calls) and dlMu (the dead letters).
func (r *run) newRowSink(t *capTable, sels []selected, pos int64, meter *progress.Meter, applyMu, dlMu *sync.Mutex) *rowSink {
	s := &rowSink{r: r, t: t, pos: pos, now: r.s.now(), sels: sels, meter: meter, dlMu: dlMu,
		b: array.NewRecordBuilder(memory.DefaultAllocator, t.schema), vals: make([]value, len(t.targets))}
	s.fields = s.b.Fields()
	s.dataLen = make([]int, len(s.fields))
	if t.kt != nil {
		// KeyedTable.Apply may be called from one goroutine at a time.
		s.apply = func(ch writer.Changes) error {
			applyMu.Lock()
			defer applyMu.Unlock()
			return t.kt.Apply(ch)
		}
	}
	s.reserve()
	s.colNames = make([]string, len(sels))
	for i, sel := range sels {
		s.colNames[i] = t.targets[sel.target].name
	}
	for _, k := range t.keyNames {
		for i, c := range s.colNames {
			if c == k {
				s.keySel = append(s.keySel, i)
				break
			}
		}
	}
	return s
}

// row decodes one row of the SELECT of selectColumns.
func (s *rowSink) row(row []gmysql.FieldValue) error {
	vals := s.vals
	for i := range vals {
		// The kind alone: the fields a kind reads are written with it
		// (clearing the whole value, with its pointers, costs more).
		vals[i].k = vNull
	}
	var bad error
	for i, sel := range s.sels {
		fv := &row[i]
		v := &vals[sel.target]
		switch fv.Type {
		case gmysql.FieldValueTypeNull:
		case gmysql.FieldValueTypeSigned:
			v.k, v.i = vInt, fv.AsInt64()
		case gmysql.FieldValueTypeUnsigned:
			v.k, v.u = vUint, fv.AsUint64()
		case gmysql.FieldValueTypeFloat:
			v.k, v.f = vFloat, fv.AsFloat64()
		default:
			if err := decodeText(fv.AsString(), sel.kind, v); err != nil {
				bad = fmt.Errorf("column %s: %w", s.colNames[i], err)
			}
		}
		if bad != nil {
			break
		}
	}
	if bad == nil {
		for i := range s.t.targets {
			if err := prepare(&vals[i], &s.t.targets[i]); err != nil {
				bad = fmt.Errorf("column %s: %w", s.t.targets[i].name, err)
				break
			}
		}
	}
	if bad != nil {
		s.deadLetter(row, bad)
		return nil
	}
	for i, f := range s.fields {
		appendValue(f, &vals[i])
	}
	s.ops = append(s.ops, writer.OpUpsert)
	s.rows++
	if s.rows >= snapshotBatchRows {
		return s.flush()
	}
	return nil
}

// fieldText is a value as the text protocol sends it (numbers as
// database/sql renders them: what the dead letters of a snapshot hold).
func fieldText(fv *gmysql.FieldValue) any {
	switch fv.Type {
	case gmysql.FieldValueTypeNull:
		return nil
	case gmysql.FieldValueTypeSigned:
		return strconv.FormatInt(fv.AsInt64(), 10)
	case gmysql.FieldValueTypeUnsigned:
		return strconv.FormatUint(fv.AsUint64(), 10)
	case gmysql.FieldValueTypeFloat:
		return strconv.FormatFloat(fv.AsFloat64(), 'g', -1, 64)
	}
	return string(fv.AsString())
}

func (s *rowSink) deadLetter(row []gmysql.FieldValue, why error) {
	rowVals := make([]any, len(s.sels))
	for i := range s.sels {
		rowVals[i] = fieldText(&row[i])
	}
	keyNames := make([]string, len(s.keySel))
	keyVals := make([]any, len(s.keySel))
	for j, i := range s.keySel {
		keyNames[j] = s.colNames[i]
		if t, ok := rowVals[i].(string); ok {
			keyVals[j] = textKeyValue([]byte(t), s.sels[i].kind)
		}
	}
	s.dlMu.Lock()
	s.r.dl.add(s.t.name, s.pos, keyJSON(keyNames, keyVals), rawJSON(s.colNames, rowVals), "snapshot: "+why.Error(), s.now)
	s.dlMu.Unlock()
	s.r.s.m.deadLetters.WithLabelValues(s.t.name).Inc()
}

// flush hands the batch to the table.
func (s *rowSink) flush() error {
	if s.rows == 0 {
		return nil
	}
	for i, f := range s.fields {
		if bb, ok := f.(interface{ DataLen() int }); ok {
			s.dataLen[i] = max(s.dataLen[i], bb.DataLen())
		}
	}
	rec := s.b.NewRecordBatch()
	ops := s.ops
	s.meter.Add(int64(s.rows), 0)
	s.n += int64(s.rows)
	s.ops, s.rows = make([]writer.Op, 0, snapshotBatchRows), 0
	s.reserve()
	return s.apply(writer.Changes{Record: rec, Ops: ops, NewKeys: s.newKeys})
}

// reserve sizes the builders for a full batch, so that they do not grow
// (and copy) value by value.
func (s *rowSink) reserve() {
	for i, f := range s.fields {
		f.Reserve(snapshotBatchRows)
		if bb, ok := f.(interface{ ReserveData(int) }); ok && s.dataLen[i] > 0 {
			bb.ReserveData(s.dataLen[i])
		}
	}
}

func (s *rowSink) release() { s.b.Release() }
