package mysql

// This file splits a table's snapshot into chunks of its key and reads
// them on several connections at once, as Flink CDC's and Debezium's
// chunked snapshots do: the boundaries are keys of the table, found one
// after the other (SELECT key ... WHERE key >= lo ORDER BY key LIMIT 1
// OFFSET chunkRows), and chunk i holds the keys k with b[i] <= k <
// b[i+1], the first unbounded below and the last above, so that the
// chunks cover every key exactly once whatever the boundaries are. Every
// connection reads in a transaction of the same consistent snapshot
// (snapshot.go), so the rows are those of one binlog position however
// the key space is cut.

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	gmysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/floe-lake/floe/internal/progress"
)

// defaultSnapshotChunkRows is how many rows a snapshot chunk has.
const defaultSnapshotChunkRows = 50000

// chunkKey returns the key columns of def a snapshot can be chunked by
// (keyNames, in key order), or why it cannot: each column must compare
// in SQL as its ORDER BY sorts and render as a literal that compares
// equal to it. FLOAT and DOUBLE (text is not exact), ENUM and SET (they
// sort by index, compare as text) and BIT are not.
func chunkKey(def *tableDef, keyNames []string) ([]column, string) {
	if len(keyNames) == 0 {
		return nil, "the table has no key"
	}
	byName := make(map[string]column, len(def.Columns))
	for _, c := range def.Columns {
		byName[c.Name] = c
	}
	out := make([]column, 0, len(keyNames))
	for _, n := range keyNames {
		c, ok := byName[n]
		if !ok {
			return nil, fmt.Sprintf("key column %s is not in MySQL's table", n)
		}
		switch c.Kind {
		case kFloat, kDouble, kBit:
			return nil, fmt.Sprintf("key column %s is a %s", n, c.Type)
		case kString:
			if t := strings.ToLower(c.Type); strings.HasPrefix(t, "enum") || strings.HasPrefix(t, "set") {
				return nil, fmt.Sprintf("key column %s is an %s", n, c.Type)
			}
		}
		out = append(out, c)
	}
	return out, ""
}

// keyLiteral renders the text value of a key column as an SQL literal
// that compares equal to it: numbers as they are, binary strings in hex,
// character strings (and temporal values) quoted with backslash escapes
// (the snapshot connections clear NO_BACKSLASH_ESCAPES).
func keyLiteral(c column, v string) string {
	switch c.Kind {
	case kSigned, kUnsigned, kDecimal:
		if v != "" && strings.Trim(v, "0123456789.-+") == "" {
			return v
		}
	case kBinary:
		return "X'" + hex.EncodeToString([]byte(v)) + "'"
	}
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\'', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// keyCompare is the condition that the key (cols, lexicographically) is
// at least bound (ge) or below it (!ge):
//
//	a > x OR (a = x AND (b > y OR (b = y AND c >= z)))
func keyCompare(cols []column, bound []string, ge bool) string {
	strict, last := " < ", " < "
	if ge {
		strict, last = " > ", " >= "
	}
	var expr string
	for i := len(cols) - 1; i >= 0; i-- {
		col := quoteIdent(cols[i].Name)
		lit := keyLiteral(cols[i], bound[i])
		if i == len(cols)-1 {
			expr = col + last + lit
			continue
		}
		expr = col + strict + lit + " OR (" + col + " = " + lit + " AND (" + expr + "))"
	}
	return "(" + expr + ")"
}

// chunk is a range of keys: lo <= key < hi; nil is unbounded.
type chunk struct {
	lo, hi []string
}

// where is the chunk's condition ("" for the whole table).
func (c chunk) where(cols []column) string {
	var conds []string
	if c.lo != nil {
		conds = append(conds, keyCompare(cols, c.lo, true))
	}
	if c.hi != nil {
		conds = append(conds, keyCompare(cols, c.hi, false))
	}
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// planChunks finds the chunks of def's key space, rows keys each, on q
// (a connection outside the snapshot: any boundaries cut the key space
// into chunks that cover it) and sends them to out in key order; it
// closes out when done.
func planChunks(ctx context.Context, q *snapConn, def *tableDef, cols []column, rows int, out chan<- chunk) error {
	defer close(out)
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = quoteIdent(c.Name)
	}
	list := strings.Join(names, ", ")
	from := " FROM " + quoteIdent(def.DB) + "." + quoteIdent(def.Name)
	var lo []string
	for {
		var next []string
		err := q.stream("SELECT "+list+from+chunk{lo: lo}.where(cols)+" ORDER BY "+list+fmt.Sprintf(" LIMIT 1 OFFSET %d", rows),
			func(row []gmysql.FieldValue) error {
				next = make([]string, len(row))
				for i := range row {
					v, ok := fieldText(&row[i]).(string)
					if !ok {
						return fmt.Errorf("key column %s is NULL", cols[i].Name)
					}
					next[i] = v
				}
				return nil
			})
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("plan snapshot chunks of %s.%s: %w", def.DB, def.Name, err)
		}
		select {
		case out <- chunk{lo: lo, hi: next}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if next == nil {
			return nil
		}
		lo = next
	}
}

// readTable reads every row of t on conns and hands them to t's table:
// in chunks of its key on all connections when there is more than one
// and the key allows it, else in one SELECT on the first.
func (r *run) readTable(ctx context.Context, conns []*snapConn, t *capTable, def *tableDef, pos int64) (int64, error) {
	sels, query := selectColumns(def, t.targets)
	// A long snapshot logs its progress every 10s (rows, rate).
	meter := progress.NewMeter(progress.MeterOptions{Label: "snapshot " + t.name, Log: r.log, Now: r.s.now})
	defer meter.Done()
	var applyMu, dlMu sync.Mutex
	// The table was truncated for the copy (snapshot.go), which reads
	// every row once.
	newKeys := snapshotNewKeys(def, t.keyNames)
	cols, why := chunkKey(def, t.keyNames)
	var planner *snapConn
	if len(conns) > 1 && why == "" {
		// The chunks' boundaries are found on a connection of their own.
		var err error
		if planner, err = r.dialSnapshot(ctx); err != nil {
			if ctx.Err() != nil {
				return 0, err
			}
			why = fmt.Sprintf("no connection to plan chunks on: %v", err)
		} else {
			defer planner.close()
		}
	}
	if len(conns) == 1 || why != "" {
		if why != "" && len(conns) > 1 {
			r.log.Info("snapshot of the table on one connection: its key cannot be chunked", "table", t.full, "reason", why)
		}
		s := r.newRowSink(t, sels, pos, meter, &applyMu, &dlMu)
		s.newKeys = newKeys
		defer s.release()
		if err := conns[0].stream(query, s.row); err != nil {
			return s.n, err
		}
		err := s.flush()
		r.s.m.snapshotRows.WithLabelValues(t.name).Add(float64(s.n))
		return s.n, err
	}
	chunkRows := r.cfg.snapshotChunkRows
	if chunkRows <= 0 {
		chunkRows = defaultSnapshotChunkRows
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	chunks := make(chan chunk, len(conns))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := planChunks(ctx, planner, def, cols, chunkRows, chunks); err != nil {
			cancel(err)
		}
	}()
	sinks := make([]*rowSink, len(conns))
	for i, c := range conns {
		s := r.newRowSink(t, sels, pos, meter, &applyMu, &dlMu)
		s.newKeys = newKeys
		sinks[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range chunks {
				if ctx.Err() != nil {
					continue // drain: the planner must not block
				}
				if d := r.cfg.snapshotChunkPause; d > 0 {
					time.Sleep(d)
				}
				err := c.stream(query+ch.where(cols), s.row)
				if err == nil {
					err = s.flush()
				}
				if err != nil {
					cancel(err)
				}
			}
		}()
	}
	wg.Wait()
	var n int64
	for _, s := range sinks {
		n += s.n
		s.release()
	}
	if err := context.Cause(ctx); err != nil {
		return n, err
	}
	r.s.m.snapshotRows.WithLabelValues(t.name).Add(float64(n))
	return n, nil
}
