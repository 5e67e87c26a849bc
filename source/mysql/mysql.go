package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/go-mysql-org/go-mysql/replication"
	gomysql "github.com/go-sql-driver/mysql"
	sqlparser "github.com/pingcap/tidb/pkg/parser"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// Options are a Source's collaborators.
type Options struct {
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer for the source's metrics; default: a private registry.
	Registerer prometheus.Registerer
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Source captures the changes of MySQL or MariaDB tables into Iceberg
// tables. It holds no state between runs beyond its configuration and
// metrics: Run re-opens the tables and resumes from their positions.
type Source struct {
	cfg        Config
	log        *slog.Logger
	now        func() time.Time
	include    []*regexp.Regexp
	exclude    []*regexp.Regexp
	partitions []*regexp.Regexp // Config.Partitions' Tables, anchored
	m          *metrics

	// connMu guards connErr and connSince: the error of the last attempt
	// to reach and log in to the server (nil once one succeeded), and
	// since when the attempts fail.
	connMu    sync.Mutex
	connErr   error
	connSince time.Time
}

var _ source.Source = (*Source)(nil)

// New returns a source for cfg (after ApplyDefaults), or the first setting
// Validate rejects.
func New(cfg Config, opts Options) (*Source, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new mysql source: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Source{cfg: cfg, log: opts.Logger.With("source", cfg.ID), now: opts.Now, m: newMetrics(reg, cfg.ID)}
	for _, p := range cfg.Include {
		s.include = append(s.include, regexp.MustCompile(anchor(p)))
	}
	for _, p := range cfg.Exclude {
		s.exclude = append(s.exclude, regexp.MustCompile(anchor(p)))
	}
	for _, p := range cfg.Partitions {
		s.partitions = append(s.partitions, regexp.MustCompile(anchor(p.Tables)))
	}
	return s, nil
}

// spec is the Iceberg table spec of a captured table, full its
// "database.table": its columns and key (tableDef.spec), partitioned as
// the first matching Config.Partitions entry says.
func (s *Source) spec(def *tableDef, full, name string) table.Spec {
	sp := def.spec(name)
	for i, re := range s.partitions {
		if re.MatchString(full) {
			sp.Partition = slices.Clone(s.cfg.Partitions[i].Partition)
			break
		}
	}
	return sp
}

// anchor makes a pattern match the whole "db.table".
func anchor(p string) string { return "^(?:" + p + ")$" }

// ID is the source id positions are stored under (Config.ID).
func (s *Source) ID() string { return s.cfg.ID }

// Specs are the specs of the tables the source needs that do not come from
// MySQL: the dead-letter table, unless declared. The captured tables are
// created from the MySQL schema when Run opens them.
func (s *Source) Specs(declared []table.Spec) ([]table.Spec, error) {
	if slices.ContainsFunc(declared, func(d table.Spec) bool { return d.Name == s.cfg.DeadLetterTable }) {
		return nil, nil
	}
	return []table.Spec{table.DeadLetterSpec(s.cfg.DeadLetterTable)}, nil
}

// Close implements source.Source: a Source holds no connection between
// runs.
func (s *Source) Close() error { return nil }

// Health implements source.Source: the error of the attempts to reach
// and log in to the server while they fail (a server down, a wrong
// password), with since when; nil once one succeeded. floe_mysql_up says
// the same.
func (s *Source) Health() error {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.connErr == nil {
		return nil
	}
	return fmt.Errorf("%w since %s: %w", ErrUnreachable, s.connSince.UTC().Format(time.RFC3339), s.connErr)
}

// ErrUnreachable is wrapped by Health while the server cannot be reached
// or refuses the login.
var ErrUnreachable = errors.New("mysql server unreachable or login refused")

// setConn records the outcome of an attempt to reach the server.
func (s *Source) setConn(err error) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	switch {
	case err == nil:
		if s.connErr != nil {
			s.log.Info("mysql server answers again", "after", s.now().Sub(s.connSince).Round(time.Millisecond))
		}
		s.connErr = nil
		s.m.up.Set(1)
	case s.connErr == nil:
		s.connErr, s.connSince = err, s.now()
		s.m.up.Set(0)
	default:
		s.connErr = err
	}
}

func (s *Source) included(db, tbl string) bool {
	full := db + "." + tbl
	ok := false
	for _, re := range s.include {
		if re.MatchString(full) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for _, re := range s.exclude {
		if re.MatchString(full) {
			return false
		}
	}
	return true
}

// capTable is one captured table in a run.
type capTable struct {
	db, tbl string
	full    string // db.table in MySQL
	name    string // the Iceberg table
	kt      *writer.KeyedTable
	// pos: the table holds every transaction that starts before it.
	pos     int64
	applied int64 // the newest position handed to kt
	halted  bool

	// The batch being collected.
	schema   *arrow.Schema
	targets  []target
	keyNames []string
	b        *array.RecordBuilder
	ops      []writer.Op
	rows     int
	event    time.Time
	// The binlog row mapping, for the table map it was built from.
	mapTM  *replication.TableMapEvent
	mapper *rowMapper
	// The batch's rows from txBase on are of the transaction starting at
	// txStart (-1: none); those before are of complete transactions.
	txStart int64
	txBase  int
	// A change at haltAt (a transaction's start) Floe cannot apply: the
	// table is halted there, with haltWhy, when the transaction ends.
	haltAt  int64
	haltWhy string
}

// resetBatch (re)creates the batch builder for the table's current schema.
func (t *capTable) resetBatch() {
	if t.b != nil {
		t.b.Release()
	}
	t.schema = t.kt.Schema()
	t.targets = targetsOf(t.schema)
	sc := t.kt.IcebergSchema()
	t.keyNames = t.keyNames[:0]
	for _, id := range sc.IdentifierFieldIDs {
		if n, ok := sc.FindColumnName(id); ok {
			t.keyNames = append(t.keyNames, n)
		}
	}
	t.b = array.NewRecordBuilder(memory.DefaultAllocator, t.schema)
	t.ops, t.rows, t.txStart = nil, 0, -1
	t.mapTM, t.mapper = nil, nil
}

// run is the state of one Run call.
type run struct {
	s       *Source
	cfg     *Config
	log     *slog.Logger
	sink    writer.Sink
	db      *sql.DB
	dsn     *dsn
	flavor  string
	binlog  string // a binlog file name of the server, for naming files by sequence
	tables  map[string]*capTable
	dl      *deadLetters
	dlPos   int64
	dlTable string

	// Stream state.
	batchRows int
	pendingTx bool // complete transactions are in the batch
	vals      []value
	lastEvent time.Time
	halting   bool              // a table is marked to halt (capTable.haltWhy)
	checksum  bool              // binlog events end with a CRC32
	parser    *sqlparser.Parser // for statement-format DML
}

// Run captures the included tables: it opens (creating when missing) their
// Iceberg tables, snapshots those without a position, and streams the
// binlog from the lowest position of the others, until ctx is done (it
// commits what it applied and returns ctx.Err()) or a failure (it drops
// what was not committed and returns the error; a supervisor restarts it
// from the tables' positions).
func (s *Source) Run(ctx context.Context, sink writer.Sink) (err error) {
	r := &run{s: s, cfg: &s.cfg, log: s.log, sink: sink, tables: map[string]*capTable{}, dlTable: s.cfg.DeadLetterTable}
	defer func() {
		r.close(ctx, err)
	}()
	start, err := r.open(ctx)
	if err != nil {
		return err
	}
	return r.stream(ctx, start)
}

// close commits (on a clean stop) or drops (on failure) every table.
func (r *run) close(ctx context.Context, err error) {
	clean := err == nil || (ctx.Err() != nil && errors.Is(err, ctx.Err()))
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, t := range r.tables {
		if t.kt == nil {
			continue
		}
		if clean && !t.halted {
			if cerr := t.kt.Close(cctx); cerr != nil {
				r.log.Warn("commit on shutdown failed", "table", t.name, "err", cerr)
			}
		} else {
			t.kt.Abort()
		}
		if t.b != nil {
			t.b.Release()
		}
	}
	if r.dl != nil {
		r.dl.release()
	}
	if r.db != nil {
		_ = r.db.Close()
	}
}

// connect parses the DSN into r.dsn and opens r.db on it: no default
// database, the configured connect timeout, TIMESTAMP values in UTC.
func (r *run) connect() error {
	d, err := parseDSN(r.cfg.DSN)
	if err != nil {
		return fmt.Errorf("mysql.dsn: %w", err)
	}
	r.dsn = d
	dc := d.cfg.Clone()
	dc.DBName = ""
	dc.Timeout = r.cfg.ConnectTimeout
	dc.ParseTime = false
	dc.InterpolateParams = true
	if dc.Params == nil {
		dc.Params = map[string]string{}
	}
	// TIMESTAMP values in UTC, as the binlog holds them.
	dc.Params["time_zone"] = "'+00:00'"
	connector, err := gomysql.NewConnector(dc)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", d.cfg.Addr, err)
	}
	r.db = sql.OpenDB(connector)
	return nil
}

// open connects, checks the server, opens the tables and snapshots those
// that need it. It returns the binlog position to stream from.
func (r *run) open(ctx context.Context) (binlogPos, error) {
	cfg := r.cfg
	if err := r.connect(); err != nil {
		return binlogPos{}, err
	}
	r.db.SetMaxOpenConns(4)
	if err := r.checkServer(ctx); err != nil {
		return binlogPos{}, err
	}
	cur, err := r.masterStatus(ctx, r.db)
	if err != nil {
		return binlogPos{}, err
	}
	oldest, err := r.oldestBinlog(ctx)
	if err != nil {
		return binlogPos{}, err
	}

	// Tables.
	qctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	all, err := listTables(qctx, r.db)
	cancel()
	if err != nil {
		return binlogPos{}, err
	}
	var names [][2]string
	for _, n := range all {
		if r.s.included(n[0], n[1]) {
			names = append(names, n)
		}
	}
	r.reportMissing(all)
	qctx, cancel = context.WithTimeout(ctx, cfg.ConnectTimeout)
	defs, errs, err := describeTables(qctx, r.db, names)
	cancel()
	if err != nil {
		return binlogPos{}, err
	}
	var icebergNames []string
	for _, n := range names {
		icebergNames = append(icebergNames, cfg.icebergName(n[0], n[1]))
	}
	if err := ensureUnique(icebergNames); err != nil {
		return binlogPos{}, fmt.Errorf("mysql.table-name: %w", err)
	}
	var snap []*capTable
	for _, n := range names {
		full := n[0] + "." + n[1]
		if e := errs[full]; e != nil {
			r.log.Error("table not captured", "table", full, "err", e)
			r.s.m.skipped.Inc()
			continue
		}
		t := &capTable{db: n[0], tbl: n[1], full: full, name: cfg.icebergName(n[0], n[1])}
		kt, err := r.sink.OpenKeyed(ctx, r.s.spec(defs[full], full, t.name), cfg.ID, r.keyedOptions())
		if err != nil {
			if ctx.Err() != nil || transient(err) {
				return binlogPos{}, fmt.Errorf("open %s: %w", t.name, err)
			}
			r.log.Error("table not captured: its Iceberg table cannot be opened", "table", full, "iceberg_table", t.name, "err", err)
			r.s.m.skipped.Inc()
			continue
		}
		t.kt = kt
		r.tables[full] = t
		if reason := kt.Halted(); reason != "" {
			t.halted = true
			r.log.Error("table halted earlier; not captured until the Iceberg table is dropped or its property removed",
				"table", full, "iceberg_table", t.name, "property", writer.PropHalted, "reason", reason)
			r.s.m.halted.Inc()
			continue
		}
		t.resetBatch()
		pos, ok := kt.Positions()[PartitionBinlog]
		switch {
		case !ok:
			snap = append(snap, t)
		case decodePos(pos).seq < oldest:
			r.log.Warn("the table's binlog position was purged from the server; re-snapshotting it",
				"table", full, "position", decodePos(pos), "oldest_binlog_seq", oldest)
			snap = append(snap, t)
		default:
			t.pos, t.applied = pos, pos
		}
	}

	// Dead letters.
	dlPos, dlSchema, err := r.sink.Open(r.dlTable, cfg.ID)
	if err != nil {
		return binlogPos{}, fmt.Errorf("open %s: %w", r.dlTable, err)
	}
	r.dlPos = dlPos[PartitionBinlog]
	if r.dl, err = newDeadLetters(cfg.ID, r.dlTable, dlSchema); err != nil {
		return binlogPos{}, err
	}

	if len(snap) > 0 {
		if cfg.Snapshot {
			if _, err := r.snapshot(ctx, snap); err != nil {
				return binlogPos{}, err
			}
		} else {
			for _, t := range snap {
				if err := t.kt.Truncate(table.Positions{PartitionBinlog: cur.encode()}); err != nil {
					return binlogPos{}, err
				}
				t.pos, t.applied = cur.encode(), cur.encode()
			}
		}
	}
	start := int64(-1)
	for _, t := range r.tables {
		if t.halted || t.kt == nil {
			continue
		}
		if start < 0 || t.pos < start {
			start = t.pos
		}
	}
	if start < 0 {
		// Nothing captured (yet): follow the binlog from now, for tables
		// created later.
		start = cur.encode()
	}
	r.log.Info("mysql source open", "flavor", r.flavor, "tables", len(r.tables), "snapshotted", len(snap),
		"stream_from", decodePos(start))
	return decodePos(start), nil
}

// reportMissing warns of each table the include list names that is not
// among the server's tables, and sets floe_mysql_table_missing for it. Such
// a table is captured when a CREATE TABLE or RENAME of the binlog makes it.
func (r *run) reportMissing(all [][2]string) {
	exists := make(map[string]bool, len(all))
	for _, n := range all {
		exists[n[0]+"."+n[1]] = true
	}
	r.s.m.missing.Reset()
	for _, p := range r.cfg.Include {
		full, ok := namedTable(p)
		if !ok || exists[full] {
			continue
		}
		db, tbl, _ := strings.Cut(full, ".")
		if !r.s.included(db, tbl) {
			continue // excluded
		}
		r.log.Warn("included table does not exist in MySQL; it is captured once created", "table", full)
		r.s.m.missing.WithLabelValues(full).Set(1)
	}
}

// namedTable returns the "db.table" an include pattern names, when the
// pattern is one table's name rather than a pattern of several: letters
// and the like only, with one dot (escaped or not) between database and
// table.
func namedTable(p string) (string, bool) {
	lit := strings.ReplaceAll(p, `\.`, ".")
	if lit == "" || strings.ContainsAny(lit, `\^$*+?()[]{}|`) || strings.Count(lit, ".") != 1 {
		return "", false
	}
	db, tbl, _ := strings.Cut(lit, ".")
	if db == "" || tbl == "" {
		return "", false
	}
	return lit, true
}

func (r *run) keyedOptions() writer.KeyedOptions {
	return writer.KeyedOptions{PositionCommitInterval: r.cfg.PositionCommitInterval, MaxDeleteFiles: r.cfg.MaxDeleteFiles}
}

// checkServer checks what capture needs: a ROW binlog with full row images
// and full table-map metadata (column names, signedness, ENUM and SET
// labels), and detects the flavor.
func (r *run) checkServer(ctx context.Context) error {
	qctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	var version string
	if err := r.db.QueryRowContext(qctx, "SELECT VERSION()").Scan(&version); err != nil {
		err = fmt.Errorf("connect to %s: %w", r.dsn.cfg.Addr, err)
		if ctx.Err() == nil {
			r.s.setConn(err)
		}
		return err
	}
	r.s.setConn(nil)
	r.flavor = r.cfg.Flavor
	if r.flavor == "" {
		r.flavor = FlavorMySQL
		if strings.Contains(strings.ToLower(version), "mariadb") {
			r.flavor = FlavorMariaDB
		}
	}
	want := map[string]string{
		"log_bin":             "1",
		"binlog_format":       "ROW",
		"binlog_row_image":    "FULL",
		"binlog_row_metadata": "FULL",
	}
	for _, v := range []string{"log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata"} {
		var got string
		if err := r.db.QueryRowContext(qctx, "SELECT @@GLOBAL."+v).Scan(&got); err != nil {
			return fmt.Errorf("check server %s (%s): @@%s: %w (binlog_row_metadata needs MySQL 8.0.1 or MariaDB 10.5)", r.dsn.cfg.Addr, version, v, err)
		}
		if g := strings.ToUpper(got); g != want[v] && (v != "log_bin" || g != "ON") {
			return fmt.Errorf("check server %s: %s is %s; CDC needs %s=%s (set log-bin, binlog-format=ROW, binlog-row-image=FULL, binlog-row-metadata=FULL)",
				r.dsn.cfg.Addr, v, got, v, want[v])
		}
	}
	return nil
}

// masterStatus returns the server's current binlog position.
func (r *run) masterStatus(ctx context.Context, q querier) (binlogPos, error) {
	qctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	rows, err := q.QueryContext(qctx, "SHOW MASTER STATUS")
	if err != nil {
		// MySQL 8.4 renamed it.
		var err2 error
		rows, err2 = q.QueryContext(qctx, "SHOW BINARY LOG STATUS")
		if err2 != nil {
			return binlogPos{}, fmt.Errorf("read binlog position: %w", err)
		}
	}
	defer rows.Close() //nolint:errcheck // read-only
	cols, err := rows.Columns()
	if err != nil {
		return binlogPos{}, err
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return binlogPos{}, fmt.Errorf("read binlog position: %w", err)
		}
		return binlogPos{}, errors.New("read binlog position: SHOW MASTER STATUS returned nothing; is the binlog enabled (log-bin)?")
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return binlogPos{}, err
	}
	file := string(vals[0])
	seq, err := fileSeq(file)
	if err != nil {
		return binlogPos{}, err
	}
	off, ok := atoi(string(vals[1]))
	if !ok {
		return binlogPos{}, fmt.Errorf("read binlog position: bad position %q", vals[1])
	}
	r.binlog = file
	return binlogPos{seq: seq, offset: uint32(off)}, nil
}

// oldestBinlog returns the sequence number of the oldest binlog file the
// server still has.
func (r *run) oldestBinlog(ctx context.Context) (uint32, error) {
	qctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	rows, err := r.db.QueryContext(qctx, "SHOW BINARY LOGS")
	if err != nil {
		return 0, fmt.Errorf("list binlogs: %w", err)
	}
	defer rows.Close() //nolint:errcheck // read-only
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	var oldest uint32
	first := true
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, err
		}
		seq, err := fileSeq(string(vals[0]))
		if err != nil {
			return 0, err
		}
		if first || seq < oldest {
			oldest, first = seq, false
		}
	}
	return oldest, rows.Err()
}

// halt stops following t: it commits what was applied and marks the
// Iceberg table halted with reason; the other tables go on.
func (r *run) halt(ctx context.Context, t *capTable, reason string) error {
	reason += fmt.Sprintf(". To capture %s again, drop the Iceberg table %s (it is re-created and re-snapshotted) or, once it matches, remove its table property %s",
		t.full, t.name, writer.PropHalted)
	r.log.Error("table halted: Floe cannot follow it; the other tables go on", "table", t.full, "iceberg_table", t.name, "reason", reason)
	t.halted = true
	r.s.m.halted.Inc()
	if err := t.kt.Halt(ctx, reason); err != nil {
		return fmt.Errorf("halt %s: %w", t.name, err)
	}
	return nil
}

// sortedTables returns the captured tables in a stable order.
func (r *run) sortedTables() []*capTable {
	out := make([]*capTable, 0, len(r.tables))
	for _, t := range r.tables {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].full < out[j].full })
	return out
}

// flush hands the collected rows of every table, and the dead letters, to
// the writer with the positions after them (next: the end of the last
// complete transaction). Dead letters are committed first, so that no
// table moves past a bad row before its dead letter is durable.
func (r *run) flush(ctx context.Context, next int64) error {
	if rec := r.dl.take(); rec != nil {
		if err := r.sink.Write(writer.Batch{Table: r.dlTable, Source: r.cfg.ID, Record: rec,
			Next: table.Positions{PartitionBinlog: next}}); err != nil {
			return err
		}
		if err := r.sink.Commit(ctx); err != nil {
			return err
		}
		r.dlPos = max(r.dlPos, next)
	}
	for _, t := range r.sortedTables() {
		if t.halted || t.kt == nil {
			continue
		}
		if t.haltWhy != "" {
			if err := r.haltMarked(ctx, t); err != nil {
				return err
			}
			continue
		}
		ch := writer.Changes{MaxEventTime: t.event}
		if t.rows > 0 {
			ch.Record, ch.Ops = t.b.NewRecordBatch(), t.ops
			t.ops, t.rows, t.txStart = nil, 0, -1
			r.s.m.rows.WithLabelValues(t.name).Add(float64(ch.Record.NumRows()))
		}
		if next > t.pos && next > t.applied {
			ch.Next = table.Positions{PartitionBinlog: next}
			t.applied = next
		}
		if ch.Record == nil && ch.Next == nil {
			continue
		}
		if err := t.kt.Apply(ch); err != nil {
			return fmt.Errorf("apply changes to %s: %w", t.name, err)
		}
	}
	r.batchRows, r.pendingTx, r.halting = 0, false, false
	return nil
}

func keyJSON(names []string, vals []any) []byte {
	return rawJSON(names, vals)
}

// ensureUnique is a guard for table names mapped twice.
func ensureUnique(names []string) error {
	s := slices.Clone(names)
	slices.Sort(s)
	for i := 1; i < len(s); i++ {
		if s[i] == s[i-1] {
			return fmt.Errorf("two MySQL tables map to the Iceberg table %s; set mysql.table-name to tell them apart", s[i])
		}
	}
	return nil
}

// transient reports whether err is a failure of the network or a deadline
// (object storage or the catalog unreachable for a while): opening the
// Iceberg table again later may work, so the run fails and is restarted
// instead of leaving the table uncaptured until the process restarts.
func transient(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF)
}
