package mysql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

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
			if r.batchRows >= r.cfg.BatchRows || r.halting {
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
		case *replication.FormatDescriptionEvent:
			r.checksum = e.ChecksumAlgorithm == replication.BINLOG_CHECKSUM_ALG_CRC32
		case *replication.MariadbGTIDEvent, *replication.GTIDEvent:
			txStart = evStart
		case *replication.ExecuteLoadQueryEvent:
			// LOAD DATA logged as a statement.
			if txStart < 0 {
				txStart = evStart
			}
			q, db, err := executeLoadQuery(ev, r.checksum)
			if err != nil {
				q = fmt.Sprintf("LOAD DATA (%v)", err)
			}
			r.statementDML(q, db, txStart)
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
			case isDML(q):
				// A row change logged as a statement (binlog_format
				// STATEMENT or MIXED): part of its transaction, which its
				// XID or COMMIT ends.
				if txStart < 0 {
					txStart = evStart
				}
				r.statementDML(q, string(e.Schema), txStart)
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
