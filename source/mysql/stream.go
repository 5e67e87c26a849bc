package mysql

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// stream follows the binlog from start until ctx is done or a failure.
//
// Transactions are read whole: every row event between a transaction's
// first event (its GTID event, or BEGIN) and its XID (or COMMIT) is
// collected into per-table batches, and batches are handed to the tables
// only at transaction ends, with the position after the transaction. A
// table skips every transaction that starts before its own position (it
// holds it already), so tables that committed to different positions —
// a transaction spanning tables, cut by a crash between their commits —
// resume exactly.
func (r *run) stream(ctx context.Context, start binlogPos) error {
	cfg := replication.BinlogSyncerConfig{
		ServerID:                r.cfg.ServerID,
		Flavor:                  r.flavor,
		Host:                    r.dsn.Host,
		Port:                    r.dsn.Port,
		User:                    r.dsn.User,
		Password:                r.dsn.Password,
		ParseTime:               false,
		TimestampStringLocation: time.UTC,
		UseDecimal:              false,
		HeartbeatPeriod:         r.cfg.HeartbeatPeriod,
		ReadTimeout:             3*r.cfg.HeartbeatPeriod + 10*time.Second,
		DisableRetrySync:        true,
		Logger:                  slog.New(quietHandler{r.log.Handler()}),
	}
	syncer := replication.NewBinlogSyncer(cfg)
	defer syncer.Close()
	file := fileName(r.binlog, start.seq)
	st, err := syncer.StartSync(gmysql.Position{Name: file, Pos: start.offset})
	if err != nil {
		return fmt.Errorf("start binlog stream at %s:%d: %w", file, start.offset, err)
	}
	r.log.Info("streaming binlog", "file", file, "offset", start.offset)

	cur := start.seq
	txStart := int64(-1) // start of the open transaction; -1 between transactions
	var lastEnd int64    // the end of the last complete transaction
	wctx, cancel := ctx, context.CancelFunc(func() {})
	defer func() { cancel() }()
	for {
		ev, err := st.GetEvent(wctx)
		if err != nil {
			if ctx.Err() != nil {
				// Shutting down: hand over the complete transactions.
				if r.pendingTx && txStart < 0 {
					if ferr := r.flush(context.WithoutCancel(ctx), lastEnd); ferr != nil {
						return ferr
					}
				}
				return ctx.Err()
			}
			if wctx != ctx && errors.Is(err, context.DeadlineExceeded) {
				// The batch waited long enough.
				cancel()
				wctx, cancel = ctx, func() {}
				if r.pendingTx && txStart < 0 {
					if err := r.flush(ctx, lastEnd); err != nil {
						return err
					}
				}
				continue
			}
			return fmt.Errorf("read binlog: %w", err)
		}
		h := ev.Header
		evStart := binlogPos{seq: cur, offset: h.LogPos - h.EventSize}.encode()
		if h.Timestamp > 0 {
			r.lastEvent = time.Unix(int64(h.Timestamp), 0)
			r.s.m.lag.Set(r.s.now().Sub(r.lastEvent).Seconds())
		}
		endTx := func() error {
			lastEnd = binlogPos{seq: cur, offset: h.LogPos}.encode()
			txStart = -1
			r.pendingTx = true
			if r.batchRows >= r.cfg.BatchRows {
				cancel()
				wctx, cancel = ctx, func() {}
				return r.flush(ctx, lastEnd)
			}
			if wctx == ctx {
				wctx, cancel = context.WithTimeout(ctx, r.cfg.BatchDelay)
			}
			return nil
		}
		switch e := ev.Event.(type) {
		case *replication.RotateEvent:
			seq, err := fileSeq(string(e.NextLogName))
			if err != nil {
				return err
			}
			cur = seq
			r.binlog = string(e.NextLogName)
		case *replication.MariadbGTIDEvent, *replication.GTIDEvent:
			txStart = evStart
		case *replication.QueryEvent:
			q := strings.TrimSpace(string(e.Query))
			switch {
			case strings.EqualFold(q, "BEGIN"):
				if txStart < 0 {
					txStart = evStart
				}
			case strings.EqualFold(q, "COMMIT"):
				if err := endTx(); err != nil {
					return err
				}
			default:
				if txStart < 0 {
					txStart = evStart
				}
				next := binlogPos{seq: cur, offset: h.LogPos}.encode()
				if err := r.statement(ctx, q, string(e.Schema), txStart, next); err != nil {
					return err
				}
				if err := endTx(); err != nil {
					return err
				}
			}
		case *replication.RowsEvent:
			if txStart < 0 {
				txStart = evStart
			}
			if err := r.rowsEvent(ctx, e, h.EventType, txStart, evStart, time.Unix(int64(h.Timestamp), 0)); err != nil {
				return err
			}
		case *replication.XIDEvent:
			if err := endTx(); err != nil {
				return err
			}
		}
	}
}

// quietHandler passes go-mysql's warnings and errors on, not its chatter.
type quietHandler struct{ slog.Handler }

func (q quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && q.Handler.Enabled(ctx, l)
}

// statement handles a non-transactional statement of the binlog: DDL.
// Everything before it is handed to the tables first, so that a schema
// change lands after the rows written under the old schema.
func (r *run) statement(ctx context.Context, q, db string, txStart, next int64) error {
	acts := parseDDL(q, db)
	if len(acts) == 0 {
		return nil
	}
	relevant := false
	for _, a := range acts {
		t := r.tables[a.DB+"."+a.Table]
		switch {
		case a.Kind == ddlDropDB:
			relevant = true
		case t != nil && !t.halted && txStart >= t.pos:
			relevant = true
		case t == nil && (a.Kind == ddlCreate || a.Kind == ddlRename) && r.s.included(a.DB, a.Table):
			relevant = true
		case a.Kind == ddlRename && t == nil && r.s.included(a.ToDB, a.ToTable):
			relevant = true
		}
	}
	if !relevant {
		return nil
	}
	if err := r.flush(ctx, txStart); err != nil {
		return err
	}
	stmt := fmt.Sprintf("%q at binlog %s", abbreviate(q, 300), decodePos(txStart))
	for _, a := range acts {
		full := a.DB + "." + a.Table
		t := r.tables[full]
		if a.Kind == ddlDropDB {
			for _, t := range r.sortedTables() {
				if t.db == a.DB && !t.halted && t.kt != nil && txStart >= t.pos {
					if err := r.halt(ctx, t, "database dropped: "+stmt); err != nil {
						return err
					}
				}
			}
			continue
		}
		if t == nil || t.halted || t.kt == nil || txStart < t.pos {
			if (a.Kind == ddlCreate && r.s.included(a.DB, a.Table) && t == nil) ||
				(a.Kind == ddlRename && r.s.included(a.ToDB, a.ToTable) && r.tables[a.ToDB+"."+a.ToTable] == nil) {
				db, tbl := a.DB, a.Table
				if a.Kind == ddlRename {
					db, tbl = a.ToDB, a.ToTable
				}
				if err := r.addTable(ctx, db, tbl); err != nil {
					return err
				}
			}
			continue
		}
		switch a.Kind {
		case ddlDrop:
			if err := r.halt(ctx, t, "table dropped in MySQL: "+stmt); err != nil {
				return err
			}
		case ddlRename:
			if err := r.halt(ctx, t, fmt.Sprintf("table renamed to %s.%s in MySQL: %s", a.ToDB, a.ToTable, stmt)); err != nil {
				return err
			}
			if r.s.included(a.ToDB, a.ToTable) && r.tables[a.ToDB+"."+a.ToTable] == nil {
				if err := r.addTable(ctx, a.ToDB, a.ToTable); err != nil {
					return err
				}
			}
		case ddlCreate:
			// CREATE OR REPLACE of a captured table: a new table.
			if err := r.halt(ctx, t, "table re-created in MySQL: "+stmt); err != nil {
				return err
			}
		case ddlTruncate:
			if err := t.kt.Truncate(table.Positions{PartitionBinlog: next}); err != nil {
				return err
			}
			t.applied = next
			r.log.Info("table truncated", "table", t.full, "statement", stmt)
		case ddlAlter:
			if err := r.alter(ctx, t, a, stmt, next); err != nil {
				return err
			}
		}
	}
	return nil
}

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// addTable starts capturing a table created (or renamed into the include
// list) while streaming: it is snapshotted now, at a position past the
// statement.
func (r *run) addTable(ctx context.Context, db, tbl string) error {
	t := &capTable{db: db, tbl: tbl, full: db + "." + tbl, name: r.cfg.icebergName(db, tbl)}
	for _, o := range r.tables {
		if o.name == t.name {
			r.log.Error("table not captured: its Iceberg table is already the target of another MySQL table", "table", t.full, "iceberg_table", t.name)
			return nil
		}
	}
	r.log.Info("new table to capture", "table", t.full, "iceberg_table", t.name)
	r.s.m.missing.DeleteLabelValues(t.full)
	if err := r.awaitVisible(ctx, t, newTableVisibleWait); err != nil {
		return err
	}
	_, err := r.snapshot(ctx, []*capTable{t})
	return err
}

// newTableVisibleWait bounds how long a table whose CREATE TABLE is in the
// binlog may stay invisible to information_schema.
const newTableVisibleWait = 5 * time.Second

// awaitVisible waits until information_schema describes t. Under load
// MariaDB can send a CREATE TABLE's binlog event a moment before
// information_schema lists the table (seen in CI: the snapshot that
// followed found no columns and the new table was never captured). A
// table that stays invisible was dropped or renamed again, which later
// statements of the binlog say; the snapshot then logs it as not captured.
func (r *run) awaitVisible(ctx context.Context, t *capTable, wait time.Duration) error {
	deadline := r.s.now().Add(wait)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 500*time.Millisecond) {
		qctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
		defs, errs, err := describeTables(qctx, r.db, [][2]string{{t.db, t.tbl}})
		cancel()
		if err == nil && (defs[t.full] != nil || errs[t.full] != nil) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !r.s.now().Before(deadline) {
			r.log.Warn("new table not visible in information_schema", "table", t.full, "waited", wait, "err", err)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// alter follows an ALTER TABLE of a captured table: adds, drops and
// renames of columns and allowed type promotions become one Iceberg schema
// change committed with the position past the statement. An added column
// that existing rows get a value for (a default, NOT NULL) is followed by
// copying the table again; a change Iceberg cannot express halts the table.
func (r *run) alter(ctx context.Context, t *capTable, a ddlAction, stmt string, next int64) error {
	ice := t.kt.IcebergSchema()
	var changes []func(*icetable.UpdateSchema)
	recopy := false
	for _, s := range a.Specs {
		switch s.Kind {
		case specIgnore:
		case specUnsupported:
			return r.halt(ctx, t, s.Reason+": "+stmt)
		case specAdd:
			_, ice2, err := mapType(s.DataType, s.ColumnType)
			if err != nil {
				return r.halt(ctx, t, fmt.Sprintf("column %s: %v: %s", s.Column, err, stmt))
			}
			if _, exists := ice.FindFieldByName(s.Column); exists || !s.Exact {
				recopy = true
				continue
			}
			typ, err := icebergType(ice2)
			if err != nil {
				return r.halt(ctx, t, fmt.Sprintf("column %s: %v: %s", s.Column, err, stmt))
			}
			name, doc := s.Column, "MySQL "+s.ColumnType
			changes = append(changes, func(u *icetable.UpdateSchema) { u.AddColumn([]string{name}, typ, doc, false, nil) })
		case specDrop:
			f, ok := ice.FindFieldByName(s.Column)
			if !ok {
				continue
			}
			if isIdentifier(ice, f.ID) {
				return r.halt(ctx, t, fmt.Sprintf("primary-key column %s dropped: %s", s.Column, stmt))
			}
			name := s.Column
			changes = append(changes, func(u *icetable.UpdateSchema) { u.DeleteColumn([]string{name}) })
		case specRename, specChange, specModify:
			f, ok := ice.FindFieldByName(s.Column)
			if !ok {
				return r.halt(ctx, t, fmt.Sprintf("column %s is not in the Iceberg table: %s", s.Column, stmt))
			}
			if s.Kind != specRename {
				_, ice2, err := mapType(s.DataType, s.ColumnType)
				if err != nil {
					return r.halt(ctx, t, fmt.Sprintf("column %s: %v: %s", s.Column, err, stmt))
				}
				typ, err := icebergType(ice2)
				if err != nil {
					return r.halt(ctx, t, fmt.Sprintf("column %s: %v: %s", s.Column, err, stmt))
				}
				if !typ.Equals(f.Type) {
					if !table.Promotable(f.Type, typ) {
						return r.halt(ctx, t, fmt.Sprintf("column %s changes type from %s to %s, which Iceberg cannot: %s", s.Column, f.Type, typ, stmt))
					}
					name := s.Column
					changes = append(changes, func(u *icetable.UpdateSchema) {
						u.UpdateColumn([]string{name}, icetable.ColumnUpdate{FieldType: iceberg.Optional[iceberg.Type]{Valid: true, Val: typ}})
					})
				}
			}
			if s.NewName != "" && s.NewName != s.Column {
				if _, exists := ice.FindFieldByName(s.NewName); exists {
					return r.halt(ctx, t, fmt.Sprintf("column %s renamed to %s, which the Iceberg table already has: %s", s.Column, s.NewName, stmt))
				}
				from, to := s.Column, s.NewName
				changes = append(changes, func(u *icetable.UpdateSchema) { u.RenameColumn([]string{from}, to) })
			}
		}
	}
	if len(changes) > 0 {
		err := t.kt.AlterSchema(ctx, table.Positions{PartitionBinlog: next}, func(us *icetable.UpdateSchema) {
			for _, c := range changes {
				c(us)
			}
		})
		var sce *writer.SchemaChangeError
		if errors.As(err, &sce) {
			return r.halt(ctx, t, fmt.Sprintf("the Iceberg schema change failed: %v: %s", sce.Err, stmt))
		}
		if err != nil {
			return err
		}
		t.applied = max(t.applied, next)
		t.resetBatch()
		r.log.Info("schema changed", "table", t.full, "statement", stmt)
	}
	if recopy {
		r.log.Info("copying the table again: its new columns have values in existing rows", "table", t.full, "statement", stmt)
		if _, err := r.snapshot(ctx, []*capTable{t}); err != nil {
			return err
		}
	}
	return nil
}

// rowsEvent collects the rows of one rows event of a transaction.
func (r *run) rowsEvent(ctx context.Context, e *replication.RowsEvent, et replication.EventType, txStart, evStart int64, evTime time.Time) error {
	full := string(e.Table.Schema) + "." + string(e.Table.Table)
	t := r.tables[full]
	if t == nil || t.halted || t.kt == nil || txStart < t.pos {
		return nil
	}
	m, err := t.mapperFor(e.Table)
	if err != nil {
		return r.halt(ctx, t, fmt.Sprintf("rows at binlog %s: %v", decodePos(evStart), err))
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
