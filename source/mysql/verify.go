package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// This file is the source's read side for verification (floe verify
// mysql): a consistent read of the captured tables at a binlog position,
// with every row mapped to Arrow exactly as the snapshot maps it.

// CapturedTable is a MySQL table a source captures, and its Iceberg table.
type CapturedTable struct {
	DB, Table string
	// Iceberg is the Iceberg table's name (Config.TableName applied).
	Iceberg string
	// PK lists the primary key's columns in key order.
	PK []string
	// Columns are the MySQL columns, in order.
	Columns []string
}

// ConsistentRead is a read-only transaction WITH CONSISTENT SNAPSHOT and
// the binlog position it sees: every row it reads is the table's state
// after exactly the transactions before Position. Not safe for concurrent
// use; Close ends it.
type ConsistentRead struct {
	r      *run
	conn   *sql.Conn
	pos    binlogPos
	defs   map[string]*tableDef
	tables []CapturedTable
}

// OpenConsistentRead connects to cfg's server, lists the tables cfg
// captures (only those named in only, as "db.table", when it is not
// empty), and starts a consistent-snapshot transaction whose binlog
// position it reads: on MariaDB from the binlog_snapshot_file/position
// status of the transaction (no lock), on MySQL from SHOW MASTER STATUS
// taken under FLUSH TABLES WITH READ LOCK while the transaction starts,
// as the source's own snapshot does.
func OpenConsistentRead(ctx context.Context, cfg Config, only []string, log *slog.Logger) (*ConsistentRead, error) {
	src, err := New(cfg, Options{Logger: log})
	if err != nil {
		return nil, err
	}
	r := &run{s: src, cfg: &src.cfg, log: src.log}
	if err := r.connect(); err != nil {
		return nil, err
	}
	cr := &ConsistentRead{r: r}
	if err := cr.open(ctx, only); err != nil {
		_ = cr.Close()
		return nil, err
	}
	return cr, nil
}

func (c *ConsistentRead) open(ctx context.Context, only []string) error {
	r := c.r
	if err := r.checkServer(ctx); err != nil {
		return err
	}
	qctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	all, err := listTables(qctx, r.db)
	cancel()
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, o := range only {
		want[o] = true
	}
	var names [][2]string
	for _, n := range all {
		if r.s.included(n[0], n[1]) && (len(want) == 0 || want[n[0]+"."+n[1]]) {
			names = append(names, n)
			delete(want, n[0]+"."+n[1])
		}
	}
	if len(want) > 0 {
		missing := make([]string, 0, len(want))
		for w := range want {
			missing = append(missing, w)
		}
		sort.Strings(missing)
		return fmt.Errorf("tables %s are not captured by mysql source %s", strings.Join(missing, ", "), r.cfg.ID)
	}
	qctx, cancel = context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defs, errs, err := describeTables(qctx, r.db, names)
	cancel()
	if err != nil {
		return err
	}
	c.defs = defs
	for _, n := range names {
		full := n[0] + "." + n[1]
		if errs[full] != nil || defs[full] == nil {
			continue
		}
		def := defs[full]
		ct := CapturedTable{DB: n[0], Table: n[1], Iceberg: r.cfg.icebergName(n[0], n[1]), PK: append([]string(nil), def.PK...)}
		for _, col := range def.Columns {
			ct.Columns = append(ct.Columns, col.Name)
		}
		c.tables = append(c.tables, ct)
	}

	if c.conn, err = r.db.Conn(ctx); err != nil {
		return fmt.Errorf("connect to %s: %w", r.dsn.cfg.Addr, err)
	}
	if r.flavor == FlavorMariaDB {
		if _, err := c.conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
			return fmt.Errorf("start consistent snapshot: %w", err)
		}
		c.pos, err = r.snapshotStatus(ctx, c.conn)
		return err
	}
	if _, err := c.conn.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
		return fmt.Errorf("lock tables for a consistent snapshot: %w", err)
	}
	_, err = c.conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
	if err == nil {
		c.pos, err = r.masterStatus(ctx, c.conn)
	}
	if _, uerr := c.conn.ExecContext(ctx, "UNLOCK TABLES"); err == nil && uerr != nil {
		err = fmt.Errorf("unlock tables: %w", uerr)
	}
	return err
}

// Position is the binlog position the transaction sees, encoded as the
// source stores positions (PartitionBinlog): comparable with a table's
// committed position.
func (c *ConsistentRead) Position() int64 { return c.pos.encode() }

// Tables are the captured tables the read covers, with a primary key and
// mappable columns.
func (c *ConsistentRead) Tables() []CapturedTable { return c.tables }

// Scan reads every row of t in the transaction, mapped to the columns of
// sc (the Iceberg table's Arrow schema; columns MySQL does not have are
// null) exactly as the source's snapshot maps them, and hands them to fn
// in batches of up to batchRows rows; fn must not keep a batch after it
// returns. Rows the source would send to the dead letters are not handed
// over: their number is returned. The rows are read in one streaming
// SELECT; the whole table is never held.
func (c *ConsistentRead) Scan(ctx context.Context, t CapturedTable, sc *arrow.Schema, batchRows int, fn func(arrow.RecordBatch) error) (bad int64, err error) {
	def := c.defs[t.DB+"."+t.Table]
	if def == nil {
		return 0, fmt.Errorf("table %s.%s is not part of this read", t.DB, t.Table)
	}
	targets := targetsOf(sc)
	sels, query := selectColumns(def, targets)
	if len(sels) == 0 {
		return 0, fmt.Errorf("table %s.%s shares no column with its Iceberg table", t.DB, t.Table)
	}
	rows, err := c.conn.QueryContext(ctx, query)
	if err != nil {
		return 0, fmt.Errorf("read %s.%s: %w", t.DB, t.Table, err)
	}
	defer rows.Close() //nolint:errcheck // read-only
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	raw := make([]sql.RawBytes, len(sels))
	ptrs := make([]any, len(sels))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	vals := make([]value, len(targets))
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		rec := b.NewRecordBatch()
		defer rec.Release()
		n = 0
		return fn(rec)
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return bad, fmt.Errorf("read %s.%s: %w", t.DB, t.Table, err)
		}
		for i := range vals {
			vals[i] = value{}
		}
		ok := true
		for i, s := range sels {
			if raw[i] == nil {
				continue
			}
			if decodeText(raw[i], s.kind, &vals[s.target]) != nil {
				ok = false
				break
			}
		}
		for i := range targets {
			if !ok {
				break
			}
			ok = prepare(&vals[i], &targets[i]) == nil
		}
		if !ok {
			bad++
			continue
		}
		for i := range targets {
			appendValue(b.Field(i), &vals[i])
		}
		if n++; n >= batchRows {
			if err := flush(); err != nil {
				return bad, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return bad, fmt.Errorf("read %s.%s: %w", t.DB, t.Table, err)
	}
	return bad, flush()
}

// Close ends the transaction and closes the connection.
func (c *ConsistentRead) Close() error {
	if c.conn != nil {
		_, _ = c.conn.ExecContext(context.Background(), "ROLLBACK")
		_ = c.conn.Close()
	}
	return c.r.db.Close()
}

// FormatPosition renders a stored binlog position as file sequence and
// offset, "000042:1234".
func FormatPosition(p int64) string { return decodePos(p).String() }
