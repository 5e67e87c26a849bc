package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/cespare/xxhash/v2"

	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/source/mysql"
	"github.com/floe-lake/floe/table"
)

// MySQLOptions tune the mysql check.
type MySQLOptions struct {
	// Tables limits the check to these captured tables ("db.table").
	// Default: every table the source captures.
	Tables []string
	// Wait bounds how long a table's committed binlog position may take
	// to reach the database's. Default 1m.
	Wait time.Duration
	// PollInterval is how often the table is reloaded while waiting.
	// Default 1s.
	PollInterval time.Duration
	// ChunkRows is the rows per chunk of the first pass: a table is cut
	// into ceil(rows/ChunkRows) chunks by a hash of the primary key.
	// Default 1000.
	ChunkRows int
	// Rechecks is how many times a table with differences is checked
	// again when its snapshot was past the database's position (rows
	// changed in between would show as differences); only differences
	// found every time are reported. Default 1; negative: none.
	Rechecks int
	// MaxRowsInMemory bounds the rows of differing chunks held to find
	// the differing rows; beyond it the chunks are only counted.
	// Default 1,000,000.
	MaxRowsInMemory int
}

func (m *MySQLOptions) applyDefaults() {
	if m.Wait <= 0 {
		m.Wait = time.Minute
	}
	if m.PollInterval <= 0 {
		m.PollInterval = time.Second
	}
	if m.ChunkRows <= 0 {
		m.ChunkRows = 1000
	}
	if m.Rechecks == 0 {
		m.Rechecks = 1
	}
	if m.MaxRowsInMemory <= 0 {
		m.MaxRowsInMemory = 1_000_000
	}
}

// MySQL checks every table a mysql source captures against the database:
// it starts a consistent-snapshot transaction and reads its binlog
// position, waits (up to Wait) until the table's committed position
// reaches it, and compares the transaction's rows with the Iceberg
// snapshot at that position (see the package comment for how).
func MySQL(ctx context.Context, cat icecat.Catalog, cfg mysql.Config, mo MySQLOptions, o Options) (*Report, error) {
	o.applyDefaults()
	mo.applyDefaults()
	rep := &Report{Check: CheckMySQL, Started: o.Now()}
	defer func() { rep.Duration = o.Now().Sub(rep.Started) }()
	tables, err := mysqlRound(ctx, cat, cfg, mo.Tables, mo, o)
	if err != nil {
		return nil, err
	}
	// A table compared at a snapshot past the database's position may
	// show rows changed in between: check those again, in a new
	// transaction, and keep the differences found both times.
	for range mo.Rechecks {
		idx := map[string]int{}
		var again []string
		for i, tr := range tables {
			if tr.inexact && tr.Total() > 0 {
				idx[tr.mysqlName] = i
				again = append(again, tr.mysqlName)
			}
		}
		if len(again) == 0 {
			break
		}
		next, err := mysqlRound(ctx, cat, cfg, again, mo, o)
		if err != nil {
			return nil, err
		}
		for _, nt := range next {
			i := idx[nt.mysqlName]
			tables[i] = intersect(tables[i], nt)
		}
	}
	rep.Tables = tables
	return rep, nil
}

// mysqlRound checks the tables named only (all captured when empty) in
// one consistent-snapshot transaction.
func mysqlRound(ctx context.Context, cat icecat.Catalog, cfg mysql.Config, only []string, mo MySQLOptions, o Options) ([]*TableReport, error) {
	cr, err := mysql.OpenConsistentRead(ctx, cfg, only, o.Logger)
	if err != nil {
		return nil, err
	}
	defer cr.Close() //nolint:errcheck // read-only
	probe := &binlogProbe{dsn: cfg.DSN}
	defer probe.Close() //nolint:errcheck // read-only
	target := cr.Position()
	var out []*TableReport
	for _, t := range cr.Tables() {
		tr := newTableReport(t.Iceberg, o.MaxListed)
		tr.mysqlName = t.DB + "." + t.Table
		out = append(out, tr)
		tr.Against = fmt.Sprintf("%s.%s at binlog %s", t.DB, t.Table, mysql.FormatPosition(target))
		if err := checkMySQLTable(ctx, cat, cr, probe, cfg.ID, t, target, mo, o, tr); err != nil {
			return nil, fmt.Errorf("verify %s: %w", t.Iceberg, err)
		}
	}
	return out, nil
}

// intersect combines a table's first check with its recheck: a recheck
// at the database's exact position stands alone; otherwise only the
// differences listed by both are kept (counted from the lists when both
// are complete, else the recheck's counts stand).
func intersect(first, again *TableReport) *TableReport {
	if !again.inexact || again.Skipped != "" {
		return again
	}
	key := func(d Difference) string { return d.Kind + "\x00" + d.Key + "\x00" + d.Column }
	had := map[string]bool{}
	for _, d := range first.Differences {
		had[key(d)] = true
	}
	complete := int64(len(first.Differences)) == first.Total() && int64(len(again.Differences)) == again.Total()
	kept := again.Differences[:0]
	counts := map[string]int64{}
	for _, d := range again.Differences {
		if had[key(d)] {
			kept = append(kept, d)
			counts[d.Kind]++
		}
	}
	again.Differences = kept
	if complete {
		again.Counts = counts
	}
	again.Notes = append(again.Notes, "checked twice: the differences listed were found both times")
	return again
}

// snapshotAt returns the snapshot of tbl's current history that holds the
// source's position target: the oldest snapshot whose committed position
// (that of its newest Floe ancestor) is at or past target, and after it
// every descendant holding the same position (snapshots of other engines
// and compactions, which change rows without moving the position). found
// is false while the table's position is before target; cur is then its
// current position.
func snapshotAt(tbl *icetable.Table, sourceID, partition string, target int64) (id, pos int64, found bool, cur int64, err error) {
	meta := tbl.Metadata()
	var chain []icetable.Snapshot
	for s := tbl.CurrentSnapshot(); s != nil; {
		chain = append(chain, *s)
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	eff := int64(-1)
	pick := -1
	for i := len(chain) - 1; i >= 0; i-- {
		s := chain[i]
		if s.Summary != nil {
			if _, floe := s.Summary.Properties[table.PropCommitID]; floe {
				if v, ok := s.Summary.Properties[table.PropPositionsPrefix+sourceID]; ok {
					var p table.Positions
					if err := json.Unmarshal([]byte(v), &p); err != nil {
						return 0, 0, false, 0, fmt.Errorf("snapshot %d: positions of %s: %w", s.SnapshotID, sourceID, err)
					}
					if n, ok := p[partition]; ok {
						eff = n
					}
				}
			}
		}
		switch {
		case pick < 0 && eff >= target:
			pick, pos = i, eff
		case pick >= 0 && eff == pos:
			pick = i
		}
		if pick >= 0 && eff != pos {
			break
		}
	}
	if pick < 0 {
		return 0, 0, false, eff, nil
	}
	return chain[pick].SnapshotID, pos, true, eff, nil
}

// chunkSums are the per-chunk checksums of one side: the sum of the rows'
// hashes (a sum, not a xor, so that a duplicated row does not cancel
// itself out) and their count.
type chunkSums struct {
	sum []uint64
	n   []int64
}

func newChunkSums(n int) *chunkSums {
	return &chunkSums{sum: make([]uint64, n), n: make([]int64, n)}
}

// keyedRows folds batches of one side into chunk sums, or collects the
// rows of selected chunks.
type keyedRows struct {
	keyIdx []int
	chunks uint64
	sums   *chunkSums
	// Second pass: the chunks whose rows are collected, and the rows
	// (rendered columns) by key.
	want  map[uint64]bool
	rows  map[string][]string
	dups  []string
	limit int
	full  bool
	kb    []byte
	rb    []byte
}

func (k *keyedRows) add(rec arrow.RecordBatch) {
	cols := rec.Columns()
	for i := range int(rec.NumRows()) {
		k.kb = k.kb[:0]
		for _, c := range k.keyIdx {
			k.kb = append(render(k.kb, cols[c], i), 0)
		}
		chunk := xxhash.Sum64(k.kb) % k.chunks
		if k.want == nil {
			k.rb = append(k.rb[:0], k.kb...)
			for _, c := range cols {
				k.rb = append(render(k.rb, c, i), 0)
			}
			k.sums.sum[chunk] += xxhash.Sum64(k.rb)
			k.sums.n[chunk]++
			continue
		}
		if !k.want[chunk] {
			continue
		}
		if _, dup := k.rows[string(k.kb)]; dup {
			k.dups = append(k.dups, string(k.kb))
			continue
		}
		if len(k.rows) >= k.limit {
			k.full = true
			continue
		}
		vals := make([]string, len(cols))
		for c, col := range cols {
			vals[c] = renderString(col, i)
		}
		k.rows[string(k.kb)] = vals
	}
}

func checkMySQLTable(ctx context.Context, cat icecat.Catalog, cr *mysql.ConsistentRead, probe *binlogProbe, sourceID string, t mysql.CapturedTable,
	target int64, mo MySQLOptions, o Options, tr *TableReport) error {
	ident, err := table.ParseIdent(t.Iceberg)
	if err != nil {
		return err
	}
	var tbl *icetable.Table
	var snap, pos int64
	// equivalent: the table's position is before the database's with no
	// transaction between them (a rotation on a quiet server).
	equivalent := false
	deadline := o.Now().Add(mo.Wait)
	for {
		var found bool
		cur := int64(-1)
		tbl, err = cat.LoadTable(ctx, ident)
		switch {
		case errors.Is(err, icecat.ErrNoSuchTable):
			// Not created yet: wait for it as for its position.
		case err != nil:
			return fmt.Errorf("load table: %w", err)
		default:
			if snap, pos, found, cur, err = snapshotAt(tbl, sourceID, mysql.PartitionBinlog, target); err != nil {
				return err
			}
			if found || cur < 0 {
				break
			}
			quiet, err := probe.quietBetween(ctx, cur, target)
			if err != nil {
				o.Logger.Debug("cannot read the binlog between the positions", "table", t.Iceberg, "from", mysql.FormatPosition(cur),
					"to", mysql.FormatPosition(target), "err", err)
				break
			}
			if !quiet {
				break
			}
			if snap, pos, found, _, err = snapshotAt(tbl, sourceID, mysql.PartitionBinlog, cur); err != nil {
				return err
			}
			if equivalent = found; found {
				o.Logger.Info("no transaction between the table's position and the database's", "table", t.Iceberg,
					"table_position", mysql.FormatPosition(cur), "database_position", mysql.FormatPosition(target))
			}
		}
		if found {
			break
		}
		if !o.Now().Before(deadline) {
			tr.Skipped = fmt.Sprintf("its binlog position %s did not reach the database's %s within %s",
				mysql.FormatPosition(max(cur, 0)), mysql.FormatPosition(target), mo.Wait)
			if tbl == nil {
				tr.Skipped = fmt.Sprintf("no Iceberg table after waiting %s", mo.Wait)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(mo.PollInterval):
		}
	}
	tr.Snapshot = snap
	if pos != target && !equivalent {
		tr.inexact = true
		tr.Notes = append(tr.Notes, fmt.Sprintf("snapshot %d holds binlog %s, past the database's %s: rows changed in between show as differences; run again to confirm",
			snap, mysql.FormatPosition(pos), mysql.FormatPosition(target)))
	}
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		return err
	}
	var keyIdx []int
	for _, k := range t.PK {
		idx := sc.FieldIndices(k)
		if len(idx) == 0 {
			tr.Skipped = fmt.Sprintf("primary key column %s is not in the Iceberg table", k)
			return nil
		}
		keyIdx = append(keyIdx, idx[0])
	}
	rows := int64(0)
	if s := tbl.Metadata().SnapshotByID(snap); s != nil && s.Summary != nil {
		fmt.Sscan(s.Summary.Properties["total-records"], &rows) //nolint:errcheck // an estimate; 0 is fine
	}
	chunks := uint64(max(rows/int64(mo.ChunkRows)+1, 1))
	rd, err := reader.New(cat, t.Iceberg, reader.Config{Concurrency: o.Concurrency, Logger: o.Logger})
	if err != nil {
		return err
	}
	readIceberg := func(k *keyedRows) error {
		stream, err := rd.SnapshotIn(ctx, tbl, reader.At{SnapshotID: snap})
		if err != nil {
			return fmt.Errorf("read snapshot %d: %w", snap, err)
		}
		for rec, err := range stream.Records() {
			if err != nil {
				return fmt.Errorf("read snapshot %d: %w", snap, err)
			}
			k.add(rec)
			rec.Release()
		}
		return nil
	}
	readMySQL := func(k *keyedRows) (int64, error) {
		var n int64
		bad, err := cr.Scan(ctx, t, sc, 4096, func(rec arrow.RecordBatch) error {
			k.add(rec)
			n += rec.NumRows()
			if k.want == nil {
				o.Metrics.addRows(CheckMySQL, t.Iceberg, rec.NumRows())
			}
			return nil
		})
		if bad > 0 && k.want == nil {
			tr.Notes = append(tr.Notes, fmt.Sprintf("%d MySQL rows cannot be mapped (Floe sends them to the dead letters) and were not compared", bad))
		}
		return n, err
	}

	// Pass 1: a checksum per chunk on both sides.
	ice := &keyedRows{keyIdx: keyIdx, chunks: chunks, sums: newChunkSums(int(chunks))}
	db := &keyedRows{keyIdx: keyIdx, chunks: chunks, sums: newChunkSums(int(chunks))}
	if err := readIceberg(ice); err != nil {
		return err
	}
	if tr.RowsCompared, err = readMySQL(db); err != nil {
		return err
	}
	differ := map[uint64]bool{}
	for c := range chunks {
		if ice.sums.sum[c] != db.sums.sum[c] || ice.sums.n[c] != db.sums.n[c] {
			differ[c] = true
		}
	}
	o.Logger.Info("compared chunks", "table", t.Iceberg, "snapshot", snap, "binlog", mysql.FormatPosition(target),
		"rows", tr.RowsCompared, "chunks", chunks, "differing_chunks", len(differ))
	if len(differ) == 0 {
		return nil
	}

	// Pass 2: the rows of the differing chunks.
	limit := mo.MaxRowsInMemory / 2
	ice2 := &keyedRows{keyIdx: keyIdx, chunks: chunks, want: differ, rows: map[string][]string{}, limit: limit}
	db2 := &keyedRows{keyIdx: keyIdx, chunks: chunks, want: differ, rows: map[string][]string{}, limit: limit}
	if err := readIceberg(ice2); err != nil {
		return err
	}
	if _, err := readMySQL(db2); err != nil {
		return err
	}
	if ice2.full || db2.full {
		tr.Notes = append(tr.Notes, fmt.Sprintf("%d differing chunks hold more than %d rows: only some of their rows were compared", len(differ), limit))
	}
	names := make([]string, len(sc.Fields()))
	for i, f := range sc.Fields() {
		names[i] = f.Name
	}
	keyText := func(vals []string) string {
		kv := make([]string, len(keyIdx))
		for i, c := range keyIdx {
			kv[i] = vals[c]
		}
		return joinKey(t.PK, kv)
	}
	for _, k := range sortedKeys(db2.rows) {
		want := db2.rows[k]
		got, ok := ice2.rows[k]
		if !ok {
			tr.add(Difference{Kind: KindMissing, Key: keyText(want)})
			continue
		}
		for c := range want {
			if want[c] != got[c] {
				tr.add(Difference{Kind: KindDifferent, Key: keyText(want), Column: names[c], Want: want[c], Got: got[c]})
			}
		}
	}
	for _, k := range sortedKeys(ice2.rows) {
		if _, ok := db2.rows[k]; !ok {
			tr.add(Difference{Kind: KindExtra, Key: keyText(ice2.rows[k])})
		}
	}
	for _, k := range ice2.dups {
		tr.add(Difference{Kind: KindDuplicate, Key: keyText(ice2.rows[k])})
	}
	return nil
}
