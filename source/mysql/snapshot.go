package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// snapshotBatchRows is how many rows of a snapshot are handed to a table
// at a time.
const snapshotBatchRows = 8192

// snapshot copies the rows of ts as of one binlog position and returns it:
//
//	(the reading connections are opened)
//	FLUSH TABLES WITH READ LOCK          -- writes and DDL wait
//	START TRANSACTION WITH CONSISTENT SNAPSHOT   -- on each reading connection
//	SHOW MASTER STATUS                   -- the position of the snapshots
//	(the tables' columns are read)
//	UNLOCK TABLES
//	SELECT ... FROM each table           -- in the snapshot transactions
//
// as mydumper does: every transaction starts while the lock holds the
// binlog still, so all see the tables as of the position read under it.
// Config.SnapshotParallelism connections read, each table in chunks of
// its key (snapshot_chunk.go). Where the lock is not allowed (no RELOAD
// privilege) MariaDB's binlog_snapshot_file and binlog_snapshot_position
// status give each transaction's position without it: the connections
// are used when all report the same position (no commit came between
// their starts), tried again a few times, else the snapshot is read on
// one connection. Each table is truncated
// first (a table re-snapshotted after its position was purged, or after a
// DDL Floe follows by copying, ends up equal to MySQL), loaded without
// positions, and then moved to the snapshot's position: its next commit
// holds the whole copy. A table whose snapshot fails to commit is copied
// again on the next run. A table capTable without a KeyedTable is opened
// (created) here, from the schema read under the lock.
func (r *run) snapshot(ctx context.Context, ts []*capTable) (int64, error) {
	start := r.s.now()
	conns, err := r.dialSnapshots(ctx, r.cfg.SnapshotParallelism)
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("snapshot: connect: %w", err)
	}
	defer conn.Close() //nolint:errcheck // the snapshot is read-only
	exec := func(q string) error {
		qctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
		defer cancel()
		_, err := conn.ExecContext(qctx, q)
		return err
	}
	locked := true
	if err := exec("FLUSH TABLES WITH READ LOCK"); err != nil {
		var me *gomysql.MySQLError
		if !errors.As(err, &me) || (me.Number != 1045 && me.Number != 1227) || r.flavor != FlavorMariaDB {
			return 0, fmt.Errorf("snapshot: FLUSH TABLES WITH READ LOCK: %w", err)
		}
		r.log.Warn("snapshot without FLUSH TABLES WITH READ LOCK (no RELOAD privilege): using MariaDB's binlog_snapshot position", "err", err)
		locked = false
	}
	unlock := func() {
		if locked {
			_ = exec("UNLOCK TABLES")
			locked = false
		}
	}
	defer unlock()
	var pos binlogPos
	if locked {
		for _, c := range conns {
			if err := c.begin(); err != nil {
				return 0, fmt.Errorf("snapshot: %w", err)
			}
		}
		pos, err = r.masterStatus(ctx, conn)
	} else {
		conns, pos, err = r.alignSnapshots(ctx, conns)
	}
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	names := make([][2]string, len(ts))
	for i, t := range ts {
		names[i] = [2]string{t.db, t.tbl}
	}
	qctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defs, errs, err := describeTables(qctx, conn, names)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	unlock()
	r.log.Info("snapshot started", "tables", len(ts), "position", pos, "connections", len(conns), "locked", r.s.now().Sub(start))

	p := pos.encode()
	var loaded []*capTable
	for _, t := range ts {
		def := defs[t.full]
		if e := errs[t.full]; e != nil || def == nil {
			if e == nil {
				e = fmt.Errorf("table %s no longer exists%s", t.full, warnings(ctx, conn, r.cfg.ConnectTimeout))
			}
			if t.kt != nil && !t.halted {
				if err := r.halt(ctx, t, fmt.Sprintf("snapshot of %s at %s: %v", t.full, pos, e)); err != nil {
					return 0, err
				}
			} else {
				r.log.Error("table not captured", "table", t.full, "err", e)
				r.s.m.skipped.Inc()
			}
			continue
		}
		spec := r.s.spec(def, t.full, t.name)
		if t.kt == nil {
			kt, err := r.sink.OpenKeyed(ctx, spec, r.cfg.ID, r.keyedOptions())
			if err != nil {
				if ctx.Err() != nil || transient(err) {
					return 0, fmt.Errorf("open %s: %w", t.name, err)
				}
				r.log.Error("table not captured: its Iceberg table cannot be opened", "table", t.full, "iceberg_table", t.name, "err", err)
				r.s.m.skipped.Inc()
				continue
			}
			t.kt = kt
			r.tables[t.full] = t
		} else if err := t.kt.EnsureSchema(ctx, spec); err != nil {
			if ctx.Err() != nil {
				return 0, err
			}
			if herr := r.halt(ctx, t, fmt.Sprintf("snapshot of %s: its Iceberg table cannot take the MySQL schema: %v", t.full, err)); herr != nil {
				return 0, herr
			}
			continue
		}
		t.resetBatch()
		if err := t.kt.Truncate(nil); err != nil {
			return 0, err
		}
		n, err := r.readTable(ctx, conns, t, def, p)
		if err != nil {
			return 0, fmt.Errorf("snapshot of %s: %w", t.full, err)
		}
		r.log.Info("table copied", "table", t.full, "rows", n, "position", pos)
		loaded = append(loaded, t)
	}
	// Dead letters of the copy become durable before the tables' commits.
	if rec := r.dl.take(); rec != nil {
		if err := r.sink.Write(writer.Batch{Table: r.dlTable, Source: r.cfg.ID, Record: rec,
			Next: table.Positions{PartitionBinlog: p}}); err != nil {
			return 0, err
		}
		if err := r.sink.Commit(ctx); err != nil {
			return 0, err
		}
	}
	for _, t := range loaded {
		if err := t.kt.Apply(writer.Changes{Next: table.Positions{PartitionBinlog: p}}); err != nil {
			return 0, err
		}
		t.pos, t.applied = p, p
	}
	r.log.Info("snapshot done", "tables", len(loaded), "position", pos, "took", r.s.now().Sub(start))
	return p, nil
}

// warnings returns the server's warnings for the last statement on conn,
// as ": w1; w2", or "" when there are none: information_schema skips a
// table it cannot open with only a warning.
func warnings(ctx context.Context, conn *sql.Conn, timeout time.Duration) string {
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rows, err := conn.QueryContext(qctx, "SHOW WARNINGS")
	if err != nil {
		return ""
	}
	defer rows.Close() //nolint:errcheck // read-only
	var ws []string
	for rows.Next() {
		var level, msg string
		var code int
		if rows.Scan(&level, &code, &msg) == nil {
			ws = append(ws, fmt.Sprintf("%s %d: %s", level, code, msg))
		}
	}
	if len(ws) == 0 {
		return ""
	}
	return " (information_schema warned: " + strings.Join(ws, "; ") + ")"
}

// snapshotStatus is MariaDB's position of the current consistent snapshot.
func (r *run) snapshotStatus(ctx context.Context, conn *sql.Conn) (binlogPos, error) {
	qctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	rows, err := conn.QueryContext(qctx, "SHOW STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return binlogPos{}, err
	}
	defer rows.Close() //nolint:errcheck // read-only
	var file string
	off := -1
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return binlogPos{}, err
		}
		switch strings.ToLower(k) {
		case "binlog_snapshot_file":
			file = v
		case "binlog_snapshot_position":
			off, _ = atoi(v)
		}
	}
	if file == "" || off < 0 {
		return binlogPos{}, errors.New("no binlog_snapshot_file/position status")
	}
	seq, err := fileSeq(file)
	if err != nil {
		return binlogPos{}, err
	}
	r.binlog = file
	return binlogPos{seq: seq, offset: uint32(off)}, nil
}

// quoteIdent quotes a MySQL identifier.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// selected is one column a snapshot SELECT reads: the index of the Iceberg
// column it fills and its MySQL kind.
type selected struct {
	target int
	kind   kind
}

// selectColumns returns the SELECT of every row of def with one
// expression per target column MySQL has, in targets' order, and what
// each fills: the query of the source's snapshot and of verify's
// consistent read, so that both map values alike.
func selectColumns(def *tableDef, targets []target) ([]selected, string) {
	byName := make(map[string]column, len(def.Columns))
	for _, c := range def.Columns {
		byName[c.Name] = c
	}
	var sels []selected
	var exprs []string
	for i, tg := range targets {
		c, ok := byName[tg.name]
		if !ok {
			continue
		}
		e := quoteIdent(c.Name)
		if c.Kind == kFloat {
			// A FLOAT's text form has 6 digits; as a double it is exact.
			e = "CAST(" + e + " AS DOUBLE)"
		}
		sels = append(sels, selected{target: i, kind: c.Kind})
		exprs = append(exprs, e)
	}
	return sels, "SELECT " + strings.Join(exprs, ", ") + " FROM " + quoteIdent(def.DB) + "." + quoteIdent(def.Name)
}

// textKeyValue is a key column's value of the text protocol as the binlog
// path renders keys in dead letters: integers and floats as numbers,
// everything else as text.
func textKeyValue(b []byte, k kind) any {
	if b == nil {
		return nil
	}
	var v value
	if decodeText(b, k, &v) == nil {
		switch v.k {
		case vInt:
			return v.i
		case vUint:
			return v.u
		case vFloat:
			return v.f
		}
	}
	return string(b)
}

// decodeText reads a value of the text protocol.
func decodeText(b []byte, k kind, v *value) error {
	switch k {
	case kSigned:
		n, ok := parseIntBytes(b)
		if !ok {
			return fmt.Errorf("not an integer: %q", b)
		}
		v.k, v.i = vInt, n
	case kUnsigned:
		n, ok := parseUintBytes(b)
		if !ok {
			return fmt.Errorf("not an unsigned integer: %q", b)
		}
		v.k, v.u = vUint, n
	case kFloat, kDouble:
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", b)
		}
		v.k, v.f = vFloat, f
	default:
		v.k, v.b = vBytes, b
	}
	return nil
}

func parseUintBytes(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func parseIntBytes(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	u, ok := parseUintBytes(b)
	if !ok {
		return 0, false
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}
