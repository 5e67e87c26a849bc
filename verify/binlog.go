package verify

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/floe-lake/floe/source/mysql"
)

// serverEvent reports whether a binlog event type is one a server
// writes on its own, outside any transaction: a rotation to a new file, a
// file's header and the GTID bookkeeping at its start, a checkpoint, a
// shutdown.
func serverEvent(typ string) bool {
	switch typ {
	case "Rotate", "Format_desc", "Gtid_list", "Binlog_checkpoint", "Stop", "Start_encryption", "Previous_gtids":
		return true
	}
	return false
}

var binlogName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// maxQuietEvents bounds the events quietBetween reads: beyond it the
// positions are not taken as equivalent and the check waits on.
const maxQuietEvents = 1000

// binlogProbe reads the binlog's event list over a connection of its
// own, opened when first needed.
type binlogProbe struct {
	dsn string
	mu  sync.Mutex
	db  *sql.DB
}

func (p *binlogProbe) open() (*sql.DB, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.db != nil {
		return p.db, nil
	}
	cfg, err := gomysql.ParseDSN(p.dsn)
	if err != nil {
		return nil, fmt.Errorf("parse DSN: %w", err)
	}
	if pw := os.Getenv(mysql.EnvPassword); pw != "" {
		cfg.Passwd = pw
	}
	cfg.DBName = ""
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.Addr, err)
	}
	p.db = sql.OpenDB(c)
	p.db.SetMaxOpenConns(1)
	return p.db, nil
}

func (p *binlogProbe) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.db == nil {
		return nil
	}
	return p.db.Close()
}

// splitPos splits a position of the mysql source (floe.positions: the
// binlog file's sequence number << 32 | offset).
func splitPos(p int64) (seq uint32, off uint32) { return uint32(p >> 32), uint32(p) }

// quietBetween reports whether the binlog holds no transaction from
// position from up to position to (from < to): only events the server
// writes on its own (serverEvent). A table whose committed position is
// from then holds what the database holds at to. This is the case after
// a rotation on a quiet server: the database's position is in the new
// file, past its header, while the source, which has read no transaction
// since, holds its position in the old one.
func (p *binlogProbe) quietBetween(ctx context.Context, from, to int64) (bool, error) {
	fromSeq, fromOff := splitPos(from)
	toSeq, toOff := splitPos(to)
	if from >= to {
		return true, nil
	}
	db, err := p.open()
	if err != nil {
		return false, err
	}
	files, err := binlogFiles(ctx, db)
	if err != nil {
		return false, err
	}
	read := 0
	for seq := fromSeq; seq <= toSeq; seq++ {
		name, ok := files[seq]
		if !ok {
			return false, nil // purged, or not ours
		}
		start := uint32(4)
		if seq == fromSeq {
			start = fromOff
		}
		q := fmt.Sprintf("SHOW BINLOG EVENTS IN '%s' FROM %d LIMIT %d", name, start, maxQuietEvents+1-read)
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return false, fmt.Errorf("%s: %w", q, err)
		}
		quiet, n, err := serverEventsOnly(rows, seq == toSeq, toOff)
		if err != nil {
			return false, fmt.Errorf("%s: %w", q, err)
		}
		if read += n; !quiet || read > maxQuietEvents {
			return false, nil
		}
	}
	return true, nil
}

// serverEventsOnly reads SHOW BINLOG EVENTS rows (those at or past end
// when last) and reports whether all were server events, and how many it
// read.
func serverEventsOnly(rows *sql.Rows, last bool, end uint32) (bool, int, error) {
	defer func() { _ = rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		return false, 0, err
	}
	posIdx, typeIdx := -1, -1
	for i, c := range cols {
		switch strings.ToLower(c) {
		case "pos":
			posIdx = i
		case "event_type":
			typeIdx = i
		}
	}
	if posIdx < 0 || typeIdx < 0 {
		return false, 0, fmt.Errorf("no Pos and Event_type columns in %v", cols)
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return false, n, err
		}
		pos, err := strconv.ParseUint(string(vals[posIdx]), 10, 32)
		if err != nil {
			return false, n, fmt.Errorf("event position %q: %w", vals[posIdx], err)
		}
		if last && uint32(pos) >= end {
			break
		}
		n++
		if !serverEvent(string(vals[typeIdx])) {
			return false, n, nil
		}
	}
	return true, n, rows.Err()
}

// binlogFiles maps the server's binlog files by sequence number.
func binlogFiles(ctx context.Context, db *sql.DB) (map[uint32]string, error) {
	rows, err := db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, fmt.Errorf("show binary logs: %w", err)
	}
	defer func() { _ = rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	out := map[uint32]string{}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		name := string(vals[0])
		i := strings.LastIndexByte(name, '.')
		seq, err := strconv.ParseUint(name[i+1:], 10, 32)
		if i < 0 || err != nil || !binlogName.MatchString(name) {
			continue
		}
		out[uint32(seq)] = name
	}
	return out, rows.Err()
}
