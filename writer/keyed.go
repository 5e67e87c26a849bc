package writer

// Keyed tables: rows identified by a primary key (the table's Iceberg
// identifier fields) that sources upsert and delete, committed as row
// deltas — new data files and position-delete files in one snapshot,
// together with the positions they advance, through the same
// table.Committer protocol as appends.
//
// # Delete strategy: a primary-key index and position deletes
//
// A KeyedTable keeps an in-memory index from every live key to the data
// file and row position holding its current image (as Moonlink and Paimon
// do). An upsert or delete of a key that is in the table becomes a
// position delete of that row; the new image goes into a new data file.
// Within one commit only the last image of a key is written (earlier ones
// never reach a file), so a commit holds at most one live row per key.
//
// Equality deletes (Flink's upsert mode) need no index but cost readers:
// every data file must be checked against every equality-delete file
// committed after it, and iceberg-go v0.7.0's compaction refuses to commit
// beside concurrent equality deletes (shared/ICEBERG-GO.md, item 7). The
// measurement behind the choice is in source/mysql's package comment and
// BenchmarkDeleteStrategy.
//
// The index is rebuilt when a table is opened, from the key columns of
// its live data files and its position deletes (equality deletes written
// by another engine are rejected). It holds one entry per live row: about
// 60 bytes plus the key. If any other writer changes the table's files
// (a compaction, another engine), the index no longer matches the files;
// the next commit notices (it checks every snapshot committed since its
// last one) and fails with ErrKeyIndexStale, and the source restarts from
// the table, which rebuilds the index.
//
// Keyed tables must be unpartitioned, format version 2 or later, and have
// identifier fields.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/floe-lake/floe/table"
)

// Op is what one row of Changes does to its key.
type Op uint8

const (
	// OpUpsert makes the row the key's current image (insert or update).
	OpUpsert Op = 1
	// OpDelete removes the key; only the row's key columns are read.
	OpDelete Op = 2
)

// Changes are row changes to a keyed table, applied in order, and the
// positions after them. A source hands over whole source transactions
// only: a commit takes everything applied so far, so a Changes boundary is
// the finest grain a reader can observe.
type Changes struct {
	// Record holds the rows, with the Arrow schema KeyedTable.Schema
	// returned; nil when the changes only advance positions. Apply takes
	// ownership (it calls Release).
	Record arrow.RecordBatch
	// Ops has one entry per row of Record.
	Ops []Op
	// Next are the positions after these changes; nil leaves them where
	// they are (rows applied without positions are not committed until a
	// later Changes or Truncate advances them: a snapshot load uses this
	// to commit all its rows in one snapshot).
	Next table.Positions
	// MaxEventTime is the newest source event time, for the freshness
	// metric; zero if unknown.
	MaxEventTime time.Time
}

// KeyedOptions tune a KeyedTable.
type KeyedOptions struct {
	// PositionCommitInterval commits positions alone (an empty append
	// snapshot) when they moved but no row changed for this long, so that a
	// table its source rarely touches does not pin the source's resume
	// position far in the past. 0 never does. Default: 0.
	PositionCommitInterval time.Duration
	// MaxDeleteFiles bounds the position-delete files of the table: when
	// a commit brings them to this many, a rewrite snapshot (operation
	// replace: no rows change) merges them into one and drops data files
	// whose rows are all deleted. Readers then open at most this many
	// delete files however many updates accumulated. Default: 8.
	MaxDeleteFiles int
}

// KeyedSink is a Sink that also writes keyed tables. *Writer implements it.
type KeyedSink interface {
	Sink
	// OpenKeyed opens spec's table for keyed writes by source, creating it
	// from spec when it does not exist. An existing table is opened as it
	// is: its schema may differ from spec's (a keyed source evolves it in
	// step with its input, with AlterSchema or EnsureSchema).
	OpenKeyed(ctx context.Context, spec table.Spec, source string, opts KeyedOptions) (*KeyedTable, error)
}

var _ KeyedSink = (*Writer)(nil)

// ErrKeyIndexStale means another writer changed the table's files (a
// compaction, another engine) since this KeyedTable built its key index.
// Nothing was committed; reopen the table (restart the source) to rebuild
// the index.
var ErrKeyIndexStale = errors.New("the table's files were changed by another writer; the key index must be rebuilt")

// SchemaChangeError is returned by AlterSchema when the change cannot be
// applied to the table (e.g. dropping an identifier column). Nothing was
// committed and the KeyedTable remains usable.
type SchemaChangeError struct{ Err error }

func (e *SchemaChangeError) Error() string { return "schema change: " + e.Err.Error() }
func (e *SchemaChangeError) Unwrap() error { return e.Err }

// PropHalted is the table property a keyed source sets to stop following a
// table it cannot follow (e.g. an unsupported DDL), with the reason.
const PropHalted = "floe.halted"

// KeyedTable writes upserts and deletes by key to one table. Apply may be
// called from one goroutine at a time; the table flushes and commits in
// the background on the writer's CommitInterval, CommitRows and FlushBytes.
type KeyedTable struct {
	w         *Writer
	name      string
	source    string
	opts      KeyedOptions
	log       *slog.Logger
	committer *table.Committer
	writeID   string // unique per KeyedTable: file names

	mu       sync.Mutex
	space    *sync.Cond // broadcast when the buffer shrinks, or on failure/close
	tbl      *icetable.Table
	schema   *arrow.Schema
	keyCols  []int // identifier columns, as indexes into schema
	keyIDs   []int // their field ids
	index    map[string]uint64
	files    []*dataFileState // file number → state
	recs     []arrow.RecordBatch
	keys     [][]string
	pend     map[string]uint64 // key → record<<32 | row, the buffered image
	dels     []uint64          // locations to delete
	bufBytes int64
	bufRows  int64
	inflight int64 // bytes taken by a flush being written
	pending  table.Positions
	event    time.Time
	err      error
	closed   bool

	// Guarded by io: one flush or commit at a time.
	io          sync.Mutex
	staged      []iceberg.DataFile
	stagedDels  []uint64
	stagedPos   table.Positions
	stagedRows  int64
	stagedBytes int64
	stagedEvent time.Time
	committed   table.Positions // also read under mu
	lastSnap    int64           // our last snapshot (or the head at open); -1: none
	lastCommit  time.Time
	fileSeq     int
	liveDels    []iceberg.DataFile // the table's position-delete files

	wake    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
	loopCtx context.Context
	cancel  context.CancelFunc
}

const noSnapshot = -1

// dataFileState is what a KeyedTable knows of one data file.
type dataFileState struct {
	path string
	df   iceberg.DataFile // nil while it is being written
	rows int64
	dead []uint32 // committed deleted positions
	gone bool     // removed from the table (all its rows were dead)
}

// OpenKeyed implements KeyedSink.
func (w *Writer) OpenKeyed(ctx context.Context, spec table.Spec, source string, opts KeyedOptions) (*KeyedTable, error) {
	ident, err := table.ParseIdent(spec.Name)
	if err != nil {
		return nil, err
	}
	tbl, err := w.cat.LoadTable(ctx, ident)
	if errors.Is(err, icecat.ErrNoSuchTable) {
		tbl, err = table.Ensure(ctx, w.cat, spec)
	}
	if err != nil {
		return nil, fmt.Errorf("open keyed table %s: %w", spec.Name, err)
	}
	k := &KeyedTable{
		w: w, name: spec.Name, source: source, opts: opts,
		log:     w.log.With("table", spec.Name),
		writeID: uuid.NewString(),
		committer: table.NewCommitter(w.cat, ident, table.CommitterConfig{
			WriterID: w.cfg.WriterID, Timeout: w.cfg.CommitTimeout, Logger: w.log, Now: w.opts.Now,
		}),
		pend:    map[string]uint64{},
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	if k.opts.MaxDeleteFiles <= 0 {
		k.opts.MaxDeleteFiles = 8
	}
	k.space = sync.NewCond(&k.mu)
	if err := k.load(tbl); err != nil {
		return nil, err
	}
	pm, err := table.CurrentPositions(tbl)
	if err != nil {
		return nil, err
	}
	k.committed = pm[source].Clone()
	k.pending = k.committed.Clone()
	k.stagedPos = k.committed.Clone()
	start := w.opts.Now()
	if err := k.buildIndex(ctx, tbl); err != nil {
		return nil, fmt.Errorf("open keyed table %s: build key index: %w", spec.Name, err)
	}
	k.log.Debug("key index built", "keys", len(k.index), "files", len(k.files), "took", w.opts.Now().Sub(start))
	k.lastCommit = w.opts.Now()
	k.loopCtx, k.cancel = context.WithCancel(context.Background())
	go k.loop()
	return k, nil
}

// load adopts tbl's schema; k.mu must be held or k not yet shared.
func (k *KeyedTable) load(tbl *icetable.Table) error {
	if v := tbl.Metadata().Version(); v < 2 {
		return fmt.Errorf("keyed table %s: format version %d cannot hold row-level deletes; it needs 2 or later", k.name, v)
	}
	if !tbl.Spec().IsUnpartitioned() {
		return fmt.Errorf("keyed table %s: partitioned keyed tables are not supported", k.name)
	}
	sc := tbl.Schema()
	if len(sc.IdentifierFieldIDs) == 0 {
		return fmt.Errorf("keyed table %s: the table has no identifier fields (a primary key)", k.name)
	}
	asc, err := icetable.SchemaToArrowSchema(sc, nil, true, false)
	if err != nil {
		return fmt.Errorf("arrow schema of %s: %w", k.name, err)
	}
	var cols, ids []int
	for _, id := range sc.IdentifierFieldIDs {
		idx := -1
		for i, f := range sc.Fields() {
			if f.ID == id {
				idx = i
				break
			}
		}
		if idx < 0 {
			return fmt.Errorf("keyed table %s: identifier field %d is not a top-level column", k.name, id)
		}
		cols = append(cols, idx)
		ids = append(ids, id)
	}
	k.tbl, k.schema, k.keyCols, k.keyIDs = tbl, asc, cols, ids
	return nil
}

// Name is the table's name.
func (k *KeyedTable) Name() string { return k.name }

// Schema is the Arrow schema Changes records must have. It changes after
// AlterSchema and EnsureSchema.
func (k *KeyedTable) Schema() *arrow.Schema {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.schema
}

// IcebergSchema is the table's current Iceberg schema.
func (k *KeyedTable) IcebergSchema() *iceberg.Schema {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.tbl.Schema()
}

// Positions are the source's positions committed in the table.
func (k *KeyedTable) Positions() table.Positions {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.committed.Clone()
}

// Halted returns the reason the table was halted (PropHalted), or "".
func (k *KeyedTable) Halted() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.tbl.Properties()[PropHalted]
}

// Len is the number of live keys: the table's rows as of what was applied.
func (k *KeyedTable) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.index) + len(k.pend)
}

// Err returns the table's failure, if any.
func (k *KeyedTable) Err() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}

func (k *KeyedTable) failedLocked() error {
	if k.err != nil {
		return k.err
	}
	if k.closed {
		return ErrClosed
	}
	return nil
}

func (k *KeyedTable) fail(err error) {
	k.mu.Lock()
	if k.err == nil {
		k.err = err
	}
	k.space.Broadcast()
	k.mu.Unlock()
}

func (k *KeyedTable) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// Apply applies ch. It blocks while the table's buffer is full
// (back-pressure) and returns the table's failure, if it has failed. Apply
// takes ownership of ch.Record.
func (k *KeyedTable) Apply(ch Changes) error {
	rec := ch.Record
	if rec != nil && rec.NumRows() == 0 {
		rec.Release()
		rec = nil
	}
	var size int64
	if rec != nil {
		if len(ch.Ops) != int(rec.NumRows()) {
			rec.Release()
			return fmt.Errorf("apply to %s: %d ops for %d rows", k.name, len(ch.Ops), rec.NumRows())
		}
		size = recordSize(rec)
	}
	flushAt := int64(k.w.cfg.FlushBytes)
	k.mu.Lock()
	defer k.mu.Unlock()
	waited := false
	for k.err == nil && !k.closed && size > 0 && k.bufBytes > 0 && k.bufBytes+k.inflight+size > 2*flushAt {
		if !waited {
			k.w.m.blocked.Inc()
			waited = true
		}
		k.poke()
		k.space.Wait()
	}
	if err := k.failedLocked(); err != nil {
		if rec != nil {
			rec.Release()
		}
		return err
	}
	if rec != nil {
		if !rec.Schema().Equal(k.schema) {
			rec.Release()
			return fmt.Errorf("apply to %s: batch schema %s does not match the table's %s", k.name, rec.Schema(), k.schema)
		}
		if err := k.applyLocked(rec, ch.Ops); err != nil {
			rec.Release()
			k.err = err
			return err
		}
		k.bufBytes += size
		k.bufRows += rec.NumRows()
	}
	for p, v := range ch.Next {
		if k.pending == nil {
			k.pending = table.Positions{}
		}
		k.pending[p] = v
	}
	if ch.MaxEventTime.After(k.event) {
		k.event = ch.MaxEventTime
	}
	if k.bufBytes >= flushAt || (k.w.cfg.CommitRows > 0 && k.bufRows >= k.w.cfg.CommitRows) {
		k.poke()
	}
	return nil
}

func (k *KeyedTable) applyLocked(rec arrow.RecordBatch, ops []Op) error {
	ri := uint64(len(k.recs))
	keys := make([]string, rec.NumRows())
	var buf []byte
	var err error
	for i := range keys {
		buf, err = appendKey(buf[:0], rec, k.keyCols, i)
		if err != nil {
			return fmt.Errorf("apply to %s: row %d: %w", k.name, i, err)
		}
		key := string(buf)
		keys[i] = key
		switch ops[i] {
		case OpUpsert:
			if _, ok := k.pend[key]; !ok {
				if loc, ok := k.index[key]; ok {
					k.dels = append(k.dels, loc)
					delete(k.index, key)
				}
			}
			k.pend[key] = ri<<32 | uint64(i)
		case OpDelete:
			if _, ok := k.pend[key]; ok {
				delete(k.pend, key)
			} else if loc, ok := k.index[key]; ok {
				k.dels = append(k.dels, loc)
				delete(k.index, key)
			}
		default:
			return fmt.Errorf("apply to %s: row %d: unknown op %d", k.name, i, ops[i])
		}
	}
	k.recs = append(k.recs, rec)
	k.keys = append(k.keys, keys)
	return nil
}

// Truncate deletes every row of the table (everything committed and
// everything applied before), and moves the positions to next.
func (k *KeyedTable) Truncate(next table.Positions) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.failedLocked(); err != nil {
		return err
	}
	for _, loc := range k.index {
		k.dels = append(k.dels, loc)
	}
	k.index = map[string]uint64{}
	for _, r := range k.recs {
		r.Release()
	}
	k.recs, k.keys, k.pend = nil, nil, map[string]uint64{}
	k.bufBytes, k.bufRows = 0, 0
	if k.pending == nil {
		k.pending = table.Positions{}
	}
	maps.Copy(k.pending, next)
	k.space.Broadcast()
	return nil
}

// loop commits on the interval and flushes or commits early on request.
func (k *KeyedTable) loop() {
	defer close(k.stopped)
	t := time.NewTicker(k.w.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
			if k.Err() == nil {
				if err := k.commit(k.loopCtx, true); err != nil && k.loopCtx.Err() == nil {
					k.log.Error("keyed commit failed", "err", err)
				}
			}
		case <-k.wake:
			if k.Err() != nil {
				continue
			}
			k.mu.Lock()
			rows, buf := k.bufRows, k.bufBytes
			k.mu.Unlock()
			var err error
			if k.w.cfg.CommitRows > 0 && rows >= k.w.cfg.CommitRows {
				err = k.commit(k.loopCtx, false)
			} else if buf >= int64(k.w.cfg.FlushBytes) {
				err = k.flush(k.loopCtx)
			}
			if err != nil && k.loopCtx.Err() == nil {
				k.log.Error("keyed flush or commit failed", "err", err)
			}
		}
	}
}

func (k *KeyedTable) flush(ctx context.Context) error {
	k.io.Lock()
	defer k.io.Unlock()
	return k.flushLocked(ctx)
}

// flushLocked writes the buffered live rows into a data file and stages it
// with the buffered deletes; k.io must be held.
func (k *KeyedTable) flushLocked(ctx context.Context) error {
	k.mu.Lock()
	if err := k.failedLocked(); err != nil {
		k.mu.Unlock()
		return err
	}
	recs, keys, pend, dels := k.recs, k.keys, k.pend, k.dels
	nbytes, ev := k.bufBytes, k.event
	pos := k.pending.Clone()
	sc, tbl := k.schema, k.tbl
	k.recs, k.keys, k.pend, k.dels = nil, nil, map[string]uint64{}, nil
	k.bufBytes, k.bufRows = 0, 0
	k.inflight = nbytes
	// Live rows, in arrival order, take positions 0, 1, ... of the new file;
	// the index points there from now on, so that deletes applied while the
	// file is written refer to it.
	var masks [][]bool
	var live int64
	var fileNo int
	var path string
	if len(pend) > 0 {
		masks = make([][]bool, len(recs))
		for i, r := range recs {
			masks[i] = make([]bool, r.NumRows())
		}
		for _, v := range pend {
			masks[v>>32][uint32(v)] = true
		}
		k.fileSeq++
		path = k.dataPath(tbl, fmt.Sprintf("%05d-data", k.fileSeq))
		fileNo = len(k.files)
		k.files = append(k.files, &dataFileState{path: path})
		for ri, m := range masks {
			for row, ok := range m {
				if ok {
					k.index[keys[ri][row]] = uint64(fileNo)<<32 | uint64(live)
					live++
				}
			}
		}
	}
	k.mu.Unlock()

	done := func() {
		k.mu.Lock()
		k.inflight = 0
		k.space.Broadcast()
		k.mu.Unlock()
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	if live > 0 {
		start := k.w.opts.Now()
		df, err := writeKeyedData(ctx, tbl, sc, path, recs, masks)
		done()
		if err != nil {
			err = fmt.Errorf("write data file for %s: %w", k.name, err)
			k.fail(err)
			return err
		}
		k.w.m.flushSeconds.WithLabelValues(k.name).Observe(k.w.opts.Now().Sub(start).Seconds())
		k.mu.Lock()
		k.files[fileNo].df, k.files[fileNo].rows = df, live
		k.mu.Unlock()
		k.staged = append(k.staged, df)
		k.stagedRows += live
		k.stagedBytes += df.FileSizeBytes()
		if h := k.w.opts.Hooks.AfterFlush; h != nil {
			h(k.name)
		}
	} else {
		done()
	}
	k.stagedDels = append(k.stagedDels, dels...)
	k.stagedPos = pos
	if ev.After(k.stagedEvent) {
		k.stagedEvent = ev
	}
	return nil
}

func (k *KeyedTable) dataPath(tbl *icetable.Table, suffix string) string {
	name := k.writeID + "-" + suffix + ".parquet"
	lp, err := tbl.LocationProvider()
	if err != nil {
		return strings.TrimRight(tbl.Location(), "/") + "/data/" + name
	}
	return lp.NewDataLocation(name)
}

// Commit flushes and commits everything applied with positions, as one
// snapshot. Rows applied without positions since the last positions are
// held back (see Changes.Next).
func (k *KeyedTable) Commit(ctx context.Context) error {
	return k.commit(ctx, false)
}

// commit flushes and commits; periodic allows a positions-only commit when
// PositionCommitInterval has passed.
func (k *KeyedTable) commit(ctx context.Context, periodic bool) error {
	k.io.Lock()
	defer k.io.Unlock()
	if err := k.flushLocked(ctx); err != nil {
		return err
	}
	k.mu.Lock()
	moved := !positionsEqual(k.stagedPos, k.committed)
	k.mu.Unlock()
	if !moved {
		// Nothing to commit, or rows of a load still waiting for their
		// positions.
		return nil
	}
	if len(k.staged) == 0 && len(k.stagedDels) == 0 {
		if !periodic || k.opts.PositionCommitInterval <= 0 || k.w.opts.Now().Sub(k.lastCommit) < k.opts.PositionCommitInterval {
			return nil
		}
		return k.commitLocked(ctx, "ingest", nil)
	}
	if err := k.commitLocked(ctx, "ingest", nil); err != nil {
		return err
	}
	if len(k.liveDels) >= k.opts.MaxDeleteFiles {
		return k.maintainLocked(ctx)
	}
	return nil
}

// commitLocked commits the staged files and deletes (possibly none) with
// the staged positions; alter, when set, stages a schema change in the
// same snapshot. k.io must be held.
func (k *KeyedTable) commitLocked(ctx context.Context, op string, alter func(*icetable.Transaction) error) error {
	k.mu.Lock()
	adv := table.Advance{Base: k.committed.Clone(), Next: k.stagedPos.Clone()}
	tbl, lastSnap := k.tbl, k.lastSnap
	k.mu.Unlock()
	files := k.staged
	var delFiles []iceberg.DataFile
	if len(k.stagedDels) > 0 {
		k.fileSeq++
		path := k.dataPath(tbl, fmt.Sprintf("%05d-deletes", k.fileSeq))
		df, err := k.writePositionDeletes(ctx, tbl, path)
		if err != nil {
			err = fmt.Errorf("write position deletes for %s: %w", k.name, err)
			k.fail(err)
			return err
		}
		delFiles = append(delFiles, df)
	}
	var nbytes int64
	for _, f := range files {
		nbytes += f.FileSizeBytes()
	}
	if h := k.w.opts.Hooks.BeforeCommit; h != nil {
		h(k.name)
	}
	start := k.w.opts.Now()
	advances := map[string]table.Advance{}
	if len(adv.Next) > 0 {
		advances[k.source] = adv
	}
	res, err := k.committer.Commit(ctx, table.Commit{
		Operation: op,
		Advances:  advances,
		Apply: func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
			if err := checkForeign(txn, lastSnap); err != nil {
				return err
			}
			if alter != nil {
				if err := alter(txn); err != nil {
					return err
				}
			}
			if len(files) == 0 && len(delFiles) == 0 {
				return txn.AddFiles(ctx, nil, props, true)
			}
			return txn.NewRowDelta(props).AddRows(files...).AddDeletes(delFiles...).Commit(ctx)
		},
	})
	dur := k.w.opts.Now().Sub(start)
	k.w.m.conflicts.WithLabelValues(k.name).Add(float64(res.Conflicts))
	if err != nil {
		var sce *SchemaChangeError
		if errors.As(err, &sce) {
			return sce
		}
		result := "error"
		if errors.Is(err, table.ErrFenced) {
			result = "fenced"
		}
		k.w.m.commits.WithLabelValues(k.name, result).Inc()
		k.fail(err)
		return err
	}
	if h := k.w.opts.Hooks.AfterCommit; h != nil {
		h(k.name)
	}
	result := "ok"
	if res.Recovered {
		result = "recovered"
	}
	k.w.m.commits.WithLabelValues(k.name, result).Inc()
	k.w.m.commitSeconds.WithLabelValues(k.name).Observe(dur.Seconds())
	k.w.m.rows.WithLabelValues(k.name).Add(float64(k.stagedRows))
	k.w.m.files.WithLabelValues(k.name).Add(float64(len(files)))
	k.w.m.fileBytes.WithLabelValues(k.name).Add(float64(nbytes))
	if !k.stagedEvent.IsZero() {
		k.w.m.eventTime.WithLabelValues(k.name).Set(float64(k.stagedEvent.UnixMilli()) / 1e3)
	}
	rows, ndels := k.stagedRows, len(k.stagedDels)
	k.mu.Lock()
	k.committed = adv.Next
	k.lastSnap = res.SnapshotID
	for _, loc := range k.stagedDels {
		f := k.files[loc>>32]
		f.dead = append(f.dead, uint32(loc))
	}
	k.mu.Unlock()
	k.liveDels = append(k.liveDels, delFiles...)
	k.staged, k.stagedDels, k.stagedRows, k.stagedBytes = nil, nil, 0, 0
	k.lastCommit = k.w.opts.Now()
	k.log.Debug("keyed commit", "snapshot", res.SnapshotID, "rows", rows, "deletes", ndels, "files", len(files), "attempts", res.Attempts)
	if k.w.opts.OnCommit != nil {
		k.w.opts.OnCommit(CommitInfo{
			Table: k.name, SnapshotID: res.SnapshotID, Rows: rows, Files: len(files), Bytes: nbytes,
			Attempts: res.Attempts, Conflicts: res.Conflicts, Duration: dur, Positions: res.Positions,
		})
	}
	return nil
}

// checkForeign fails with ErrKeyIndexStale when a snapshot committed since
// ours (lastSnap) added or removed data or delete files: the key index no
// longer describes the table.
func checkForeign(txn *icetable.Transaction, lastSnap int64) error {
	st, err := txn.StagedTable()
	if err != nil {
		return err
	}
	meta := st.Metadata()
	for s := st.CurrentSnapshot(); s != nil; {
		if s.SnapshotID == lastSnap {
			return nil
		}
		if touchesFiles(s) {
			return fmt.Errorf("%w: snapshot %d (%s) changed files", ErrKeyIndexStale, s.SnapshotID, operation(s))
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	if lastSnap == noSnapshot {
		return nil
	}
	return fmt.Errorf("%w: our last snapshot %d is no longer in the table's history", ErrKeyIndexStale, lastSnap)
}

func operation(s *icetable.Snapshot) string {
	if s.Summary == nil {
		return "unknown"
	}
	return string(s.Summary.Operation)
}

// touchesFiles reports whether a snapshot added or removed data or delete
// files, by its summary; a snapshot without a summary is assumed to.
func touchesFiles(s *icetable.Snapshot) bool {
	if s.Summary == nil {
		return true
	}
	for _, key := range []string{"added-data-files", "deleted-data-files", "added-delete-files", "removed-delete-files",
		"added-position-delete-files", "removed-position-delete-files", "added-equality-delete-files", "removed-equality-delete-files"} {
		if v, ok := s.Summary.Properties[key]; ok && v != "0" {
			return true
		}
	}
	return false
}

func positionsEqual(a, b table.Positions) bool {
	return maps.Equal(a, b)
}

// AlterSchema commits everything applied so far, then applies change to
// the table's schema in a snapshot that moves the positions to next (an
// empty append): the schema change and the positions past the statement
// that caused it land together, exactly once. A change the table cannot
// take returns a *SchemaChangeError, with nothing committed. Afterwards
// Schema returns the new Arrow schema.
func (k *KeyedTable) AlterSchema(ctx context.Context, next table.Positions, change func(*icetable.UpdateSchema)) error {
	if err := k.Commit(ctx); err != nil {
		return err
	}
	k.io.Lock()
	defer k.io.Unlock()
	if err := k.flushLocked(ctx); err != nil {
		return err
	}
	if len(k.staged) > 0 || len(k.stagedDels) > 0 {
		return fmt.Errorf("alter schema of %s: rows were applied without positions", k.name)
	}
	k.mu.Lock()
	before := k.pending.Clone()
	if k.pending == nil {
		k.pending = table.Positions{}
	}
	maps.Copy(k.pending, next)
	k.stagedPos = k.pending.Clone()
	k.mu.Unlock()
	err := k.commitLocked(ctx, "schema", func(txn *icetable.Transaction) error {
		var opts []icetable.UpdateSchemaOption
		if nm := k.tbl.NameMapping(); nm != nil {
			opts = append(opts, icetable.WithNameMapping(nm))
		}
		us := txn.UpdateSchema(true, false, opts...)
		change(us)
		if err := us.Commit(); err != nil {
			return &SchemaChangeError{Err: err}
		}
		return nil
	})
	if err != nil {
		var sce *SchemaChangeError
		if errors.As(err, &sce) {
			// Nothing committed: the positions stay before the statement.
			k.mu.Lock()
			k.pending, k.stagedPos = before, before.Clone()
			k.mu.Unlock()
		}
		return err
	}
	return k.reload(ctx)
}

// EnsureSchema commits everything applied so far and evolves the table's
// schema towards spec as table.Ensure does (new optional columns, allowed
// type promotions), without a snapshot. For a source about to (re)load a
// table from scratch.
func (k *KeyedTable) EnsureSchema(ctx context.Context, spec table.Spec) error {
	if err := k.Commit(ctx); err != nil {
		return err
	}
	k.io.Lock()
	defer k.io.Unlock()
	if _, err := table.Ensure(ctx, k.w.cat, spec); err != nil {
		return err
	}
	return k.reload(ctx)
}

// reload loads the table and adopts its schema; k.io must be held and the
// buffer empty.
func (k *KeyedTable) reload(ctx context.Context) error {
	tbl, err := k.committer.Load(ctx)
	if err != nil {
		k.fail(err)
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.recs) > 0 {
		return fmt.Errorf("reload %s: rows are buffered", k.name)
	}
	return k.load(tbl)
}

// Halt commits everything applied so far and sets PropHalted on the table
// with reason: its source stops following it, and the table stays at the
// positions committed, until someone removes the property (after dropping
// or repairing the table).
func (k *KeyedTable) Halt(ctx context.Context, reason string) error {
	if err := k.Commit(ctx); err != nil {
		return err
	}
	k.io.Lock()
	defer k.io.Unlock()
	ident, _ := table.ParseIdent(k.name)
	for attempt := 1; ; attempt++ {
		tbl, err := k.committer.Load(ctx)
		if err != nil {
			return err
		}
		txn := tbl.NewTransaction()
		if err := txn.SetProperties(iceberg.Properties{PropHalted: reason}); err != nil {
			return fmt.Errorf("halt %s: %w", k.name, err)
		}
		_, err = txn.Commit(ctx)
		if err == nil {
			break
		}
		if !table.IsConflict(err) || attempt >= 5 {
			return fmt.Errorf("halt %s: %w", k.name, err)
		}
	}
	tbl, err := k.w.cat.LoadTable(ctx, ident)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.tbl = tbl
	k.mu.Unlock()
	return nil
}

// Close commits everything applied with positions and stops the table.
func (k *KeyedTable) Close(ctx context.Context) error {
	k.stopLoop()
	defer k.cancel()
	err := k.Commit(ctx)
	k.mu.Lock()
	k.closed = true
	k.releaseLocked()
	k.space.Broadcast()
	k.mu.Unlock()
	return err
}

// Abort stops the table and drops everything not committed. Files already
// written stay unreferenced, for the orphan cleaner.
func (k *KeyedTable) Abort() {
	k.cancel()
	k.stopLoop()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	k.releaseLocked()
	k.space.Broadcast()
}

func (k *KeyedTable) releaseLocked() {
	for _, r := range k.recs {
		r.Release()
	}
	k.recs, k.keys, k.pend = nil, nil, map[string]uint64{}
	k.bufBytes, k.bufRows = 0, 0
}

func (k *KeyedTable) stopLoop() {
	k.mu.Lock()
	select {
	case <-k.stop:
	default:
		close(k.stop)
	}
	k.mu.Unlock()
	<-k.stopped
}

// --- files ---

// countingWriter counts bytes written.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func parquetProps(props iceberg.Properties, sc *arrow.Schema) *parquet.WriterProperties {
	codec := compress.Codecs.Zstd
	switch strings.ToLower(props.Get("write.parquet.compression-codec", "zstd")) {
	case "snappy":
		codec = compress.Codecs.Snappy
	case "gzip":
		codec = compress.Codecs.Gzip
	case "uncompressed", "none":
		codec = compress.Codecs.Uncompressed
	case "lz4":
		codec = compress.Codecs.Lz4Raw
	}
	opts := []parquet.WriterProperty{
		parquet.WithCompression(codec),
		parquet.WithMaxRowGroupLength(1 << 20),
		parquet.WithStats(true),
	}
	// As iceberg-go does: columns whose dictionary does not pay off fall
	// back to plain encoding (arrow-go does so by default only for
	// uncompressed columns); high-cardinality keys encode about twice as
	// fast.
	for _, f := range sc.Fields() {
		opts = append(opts, parquet.WithDictionaryCostFallbackFor(f.Name, true))
	}
	return parquet.NewWriterProperties(opts...)
}

// writeParquet writes the selected rows of recs (all rows when masks is
// nil) to path and returns the file's metadata and size.
func writeParquet(ctx context.Context, tbl *icetable.Table, sc *arrow.Schema, path string, recs []arrow.RecordBatch, masks [][]bool) (*parquetResult, error) {
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	wfs, ok := fsys.(iceio.WriteFileIO)
	if !ok {
		return nil, errors.New("the table's file IO cannot write")
	}
	out, err := wfs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	cw := &countingWriter{w: out}
	fw, err := pqarrow.NewFileWriter(sc, cw, parquetProps(tbl.Properties(), sc),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		_ = out.Close()
		return nil, err
	}
	werr := func() error {
		for i, r := range recs {
			if masks != nil {
				mb := array.NewBooleanBuilder(memory.DefaultAllocator)
				mb.AppendValues(masks[i], nil)
				mask := mb.NewArray()
				mb.Release()
				f, err := compute.FilterRecordBatch(ctx, r, mask, compute.DefaultFilterOptions())
				mask.Release()
				if err != nil {
					return err
				}
				err = fw.WriteBuffered(f)
				f.Release()
				if err != nil {
					return err
				}
				continue
			}
			if err := fw.WriteBuffered(r); err != nil {
				return err
			}
		}
		return nil
	}()
	cerr := fw.Close()
	if werr != nil {
		_ = out.Close()
		return nil, werr
	}
	if cerr != nil {
		_ = out.Close()
		return nil, cerr
	}
	if err := out.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", path, err)
	}
	md, err := fw.FileMetadata()
	if err != nil {
		return nil, err
	}
	return &parquetResult{meta: md, size: cw.n}, nil
}

type parquetResult struct {
	meta any
	size int64
}

func writeKeyedData(ctx context.Context, tbl *icetable.Table, sc *arrow.Schema, path string, recs []arrow.RecordBatch, masks [][]bool) (iceberg.DataFile, error) {
	pr, err := writeParquet(ctx, tbl, sc, path, recs, masks)
	if err != nil {
		return nil, err
	}
	return icetable.DataFileFromMetadata(icetable.DataFileArgs{
		Schema: tbl.Schema(), Spec: tbl.Spec(), Format: iceberg.ParquetFile, Metadata: pr.meta,
		FilePath: path, FileSize: pr.size, Content: iceberg.EntryContentData,
		Properties: tbl.Properties(), FormatVersion: tbl.Metadata().Version(),
	})
}

// writePositionDeletes writes the staged deletes, sorted by file and
// position, as one position-delete file.
func (k *KeyedTable) writePositionDeletes(ctx context.Context, tbl *icetable.Table, path string) (iceberg.DataFile, error) {
	k.mu.Lock()
	byFile := map[uint64][]uint32{}
	for _, l := range k.stagedDels {
		byFile[l>>32] = append(byFile[l>>32], uint32(l))
	}
	paths := make(map[uint64]string, len(byFile))
	for f := range byFile {
		paths[f] = k.files[f].path
	}
	k.mu.Unlock()
	return writeDeleteFile(ctx, tbl, path, paths, byFile)
}

// writeDeleteFile writes the positions of each data file (by file number,
// with its path) as one position-delete file sorted by path and position.
func writeDeleteFile(ctx context.Context, tbl *icetable.Table, path string, paths map[uint64]string, byFile map[uint64][]uint32) (iceberg.DataFile, error) {
	files := make([]uint64, 0, len(byFile))
	n := 0
	for f, ps := range byFile {
		files = append(files, f)
		slices.Sort(ps)
		byFile[f] = slices.Compact(ps)
		n += len(byFile[f])
	}
	slices.SortFunc(files, func(a, b uint64) int { return strings.Compare(paths[a], paths[b]) })
	sc := icetable.PositionalDeleteArrowSchema
	pb := array.NewStringBuilder(memory.DefaultAllocator)
	ob := array.NewInt64Builder(memory.DefaultAllocator)
	defer pb.Release()
	defer ob.Release()
	pb.Reserve(n)
	ob.Reserve(n)
	for _, f := range files {
		p := paths[f]
		for _, pos := range byFile[f] {
			pb.Append(p)
			ob.Append(int64(pos))
		}
	}
	pa, oa := pb.NewArray(), ob.NewArray()
	rec := array.NewRecordBatch(sc, []arrow.Array{pa, oa}, int64(n))
	pa.Release()
	oa.Release()
	defer rec.Release()
	pr, err := writeParquet(ctx, tbl, sc, path, []arrow.RecordBatch{rec}, nil)
	if err != nil {
		return nil, err
	}
	args := icetable.DataFileArgs{
		Schema: iceberg.PositionalDeleteSchema, Spec: tbl.Spec(), Format: iceberg.ParquetFile, Metadata: pr.meta,
		FilePath: path, FileSize: pr.size, Content: iceberg.EntryContentPosDeletes,
		// Exact file_path bounds let readers skip this file for data files
		// outside its range.
		Properties:    iceberg.Properties{"write.metadata.metrics.column.file_path": "full"},
		FormatVersion: tbl.Metadata().Version(),
	}
	if len(files) == 1 {
		ref := paths[files[0]]
		args.ReferencedDataFile = &ref
	}
	return icetable.DataFileFromMetadata(args)
}

// maintainLocked merges the table's position-delete files into one and
// drops the data files whose rows are all deleted, in a rewrite snapshot
// (operation replace) that changes no row and carries the positions
// forward. k.io must be held and nothing staged.
func (k *KeyedTable) maintainLocked(ctx context.Context) error {
	k.mu.Lock()
	tbl, lastSnap := k.tbl, k.lastSnap
	var drop []iceberg.DataFile
	var dropNos []int
	byFile := map[uint64][]uint32{}
	paths := map[uint64]string{}
	for no, f := range k.files {
		if f.gone || f.df == nil || len(f.dead) == 0 {
			continue
		}
		if int64(len(f.dead)) >= f.rows {
			drop = append(drop, f.df)
			dropNos = append(dropNos, no)
			continue
		}
		byFile[uint64(no)] = slices.Clone(f.dead)
		paths[uint64(no)] = f.path
	}
	k.mu.Unlock()
	var merged iceberg.DataFile
	if len(byFile) > 0 {
		k.fileSeq++
		var err error
		merged, err = writeDeleteFile(ctx, tbl, k.dataPath(tbl, fmt.Sprintf("%05d-deletes-merged", k.fileSeq)), paths, byFile)
		if err != nil {
			err = fmt.Errorf("merge position deletes of %s: %w", k.name, err)
			k.fail(err)
			return err
		}
	}
	remove := slices.Clone(k.liveDels)
	start := k.w.opts.Now()
	res, err := k.committer.Commit(ctx, table.Commit{
		Operation: "maintain",
		Apply: func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
			if err := checkForeign(txn, lastSnap); err != nil {
				return err
			}
			rw := txn.NewRewrite(props)
			for _, df := range drop {
				rw.DeleteFile(df)
			}
			for _, df := range remove {
				rw.DeleteFile(df)
			}
			if merged != nil {
				rw.AddDeleteFile(merged)
			}
			return rw.Commit(ctx)
		},
	})
	if err != nil {
		err = fmt.Errorf("maintain %s: %w", k.name, err)
		k.fail(err)
		return err
	}
	k.mu.Lock()
	k.lastSnap = res.SnapshotID
	for _, no := range dropNos {
		k.files[no].gone, k.files[no].dead, k.files[no].df = true, nil, nil
	}
	k.mu.Unlock()
	k.liveDels = k.liveDels[:0]
	if merged != nil {
		k.liveDels = append(k.liveDels, merged)
	}
	k.log.Debug("keyed maintenance", "snapshot", res.SnapshotID, "merged_delete_files", len(remove),
		"dropped_data_files", len(drop), "took", k.w.opts.Now().Sub(start))
	return nil
}

// --- the key index ---

// buildIndex reads the key columns of every live data file of tbl's current
// snapshot, with its position deletes applied, into k.index.
func (k *KeyedTable) buildIndex(ctx context.Context, tbl *icetable.Table) error {
	k.index = map[string]uint64{}
	k.lastSnap = noSnapshot
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		return nil
	}
	k.lastSnap = snap.SnapshotID
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return err
	}
	mans, err := snap.Manifests(fsys)
	if err != nil {
		return fmt.Errorf("read manifest list: %w", err)
	}
	type dataRef struct {
		df  iceberg.DataFile
		seq int64
	}
	var data []dataRef
	for _, m := range mans {
		for e, err := range m.Entries(fsys, true) {
			if err != nil {
				return fmt.Errorf("read manifest %s: %w", m.FilePath(), err)
			}
			df := e.DataFile()
			switch df.ContentType() {
			case iceberg.EntryContentData:
				data = append(data, dataRef{df: df, seq: e.SequenceNum()})
			case iceberg.EntryContentPosDeletes:
				if icetable.IsDeletionVector(df) {
					return fmt.Errorf("delete file %s is a deletion vector, which keyed writes do not read yet", df.FilePath())
				}
				k.liveDels = append(k.liveDels, df)
			default:
				return fmt.Errorf("delete file %s holds equality deletes (written by another engine); keyed writes need a table without them: compact it first", df.FilePath())
			}
		}
	}
	// Each position-delete file is read once, grouped by data file.
	deleted := map[string][]int64{}
	for _, d := range k.liveDels {
		if err := readPositionDeletes(ctx, fsys, d.FilePath(), deleted); err != nil {
			return fmt.Errorf("read position deletes %s: %w", d.FilePath(), err)
		}
	}
	// Oldest first, so that should a key be live twice the newer row wins.
	slices.SortFunc(data, func(a, b dataRef) int {
		return cmp.Or(cmp.Compare(a.seq, b.seq), strings.Compare(a.df.FilePath(), b.df.FilePath()))
	})
	dupes := 0
	for _, d := range data {
		path := d.df.FilePath()
		dels := deleted[path]
		slices.Sort(dels)
		dels = slices.Compact(dels)
		fileNo := uint64(len(k.files))
		st := &dataFileState{path: path, df: d.df, rows: d.df.Count()}
		for _, p := range dels {
			st.dead = append(st.dead, uint32(p))
		}
		k.files = append(k.files, st)
		err := readKeys(ctx, fsys, path, k.keyIDs, k.schema, k.keyCols, func(key string, pos int64) {
			if _, ok := slices.BinarySearch(dels, pos); ok {
				return
			}
			if prev, ok := k.index[key]; ok {
				// Two live rows for one key: keep the newer one, delete the
				// other with the next commit.
				dupes++
				k.stagedDels = append(k.stagedDels, prev)
			}
			k.index[key] = fileNo<<32 | uint64(pos)
		})
		if err != nil {
			return fmt.Errorf("read keys of %s: %w", path, err)
		}
	}
	if dupes > 0 {
		k.log.Error("keyed table had duplicate live keys; the older rows are deleted with the next commit", "duplicates", dupes)
	}
	return nil
}

func openParquet(ctx context.Context, fsys iceio.IO, path string) (*pqarrow.FileReader, func(), error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, nil, err
	}
	pf, err := file.NewParquetReader(f)
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10, Parallel: false}, memory.DefaultAllocator)
	if err != nil {
		_ = pf.Close()
		return nil, nil, err
	}
	return fr, func() { _ = pf.Close() }, nil
}

// leafByFieldID finds the leaf column with field id id, or by name.
func leafByFieldID(fr *pqarrow.FileReader, id int, name string) int {
	sc := fr.ParquetReader().MetaData().Schema
	for i := 0; i < sc.NumColumns(); i++ {
		if int(sc.Column(i).SchemaNode().FieldID()) == id {
			return i
		}
	}
	for i := 0; i < sc.NumColumns(); i++ {
		if sc.Column(i).Path() == name {
			return i
		}
	}
	return -1
}

func readPositionDeletes(ctx context.Context, fsys iceio.IO, path string, out map[string][]int64) error {
	fr, closeFn, err := openParquet(ctx, fsys, path)
	if err != nil {
		return err
	}
	defer closeFn()
	pathCol := leafByFieldID(fr, 2147483546, "file_path")
	posCol := leafByFieldID(fr, 2147483545, "pos")
	if pathCol < 0 || posCol < 0 {
		return errors.New("not a position-delete file: no file_path or pos column")
	}
	rr, err := fr.GetRecordReader(ctx, []int{pathCol, posCol}, nil)
	if err != nil {
		return err
	}
	defer rr.Release()
	for rr.Next() {
		rec := rr.RecordBatch()
		var paths interface {
			Value(int) string
			Len() int
		}
		switch c := rec.Column(0).(type) {
		case *array.String:
			paths = c
		case *array.LargeString:
			paths = c
		default:
			return fmt.Errorf("file_path column is %s", c.DataType())
		}
		pos, ok := rec.Column(1).(*array.Int64)
		if !ok {
			return fmt.Errorf("pos column is %s", rec.Column(1).DataType())
		}
		for i := 0; i < paths.Len(); i++ {
			p := paths.Value(i)
			out[p] = append(out[p], pos.Value(i))
		}
	}
	return rr.Err()
}

// readKeys calls fn with the key and position of every row of a data file.
func readKeys(ctx context.Context, fsys iceio.IO, path string, keyIDs []int, sc *arrow.Schema, keyCols []int, fn func(key string, pos int64)) error {
	fr, closeFn, err := openParquet(ctx, fsys, path)
	if err != nil {
		return err
	}
	defer closeFn()
	leaves := make([]int, len(keyIDs))
	for i, id := range keyIDs {
		leaves[i] = leafByFieldID(fr, id, sc.Field(keyCols[i]).Name)
		if leaves[i] < 0 {
			return fmt.Errorf("no column for identifier field %d", id)
		}
	}
	// The reader returns columns in leaf order; map them back to key order.
	sorted := slices.Clone(leaves)
	slices.Sort(sorted)
	order := make([]int, len(leaves))
	for i, l := range leaves {
		order[i], _ = slices.BinarySearch(sorted, l)
	}
	rr, err := fr.GetRecordReader(ctx, slices.Compact(sorted), nil)
	if err != nil {
		return err
	}
	defer rr.Release()
	var pos int64
	var buf []byte
	for rr.Next() {
		rec := rr.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			buf = buf[:0]
			for _, o := range order {
				if buf, err = appendKeyValue(buf, rec.Column(o), i); err != nil {
					return err
				}
			}
			fn(string(buf), pos)
			pos++
		}
	}
	return rr.Err()
}

// appendKey appends the encoded key of row i of rec.
func appendKey(dst []byte, rec arrow.RecordBatch, cols []int, i int) ([]byte, error) {
	var err error
	for _, c := range cols {
		if dst, err = appendKeyValue(dst, rec.Column(c), i); err != nil {
			return nil, fmt.Errorf("key column %s: %w", rec.ColumnName(c), err)
		}
	}
	return dst, nil
}

// appendKeyValue encodes one key value so that equal values of any
// physical width (int and long, decimals of any precision) encode equally
// and a sequence of values decodes unambiguously.
func appendKeyValue(dst []byte, a arrow.Array, i int) ([]byte, error) {
	if a.IsNull(i) {
		return nil, errors.New("null key")
	}
	switch c := a.(type) {
	case *array.Int8:
		return binary.BigEndian.AppendUint64(dst, uint64(int64(c.Value(i)))), nil
	case *array.Int16:
		return binary.BigEndian.AppendUint64(dst, uint64(int64(c.Value(i)))), nil
	case *array.Int32:
		return binary.BigEndian.AppendUint64(dst, uint64(int64(c.Value(i)))), nil
	case *array.Int64:
		return binary.BigEndian.AppendUint64(dst, uint64(c.Value(i))), nil
	case *array.Uint8:
		return binary.BigEndian.AppendUint64(dst, uint64(c.Value(i))), nil
	case *array.Uint16:
		return binary.BigEndian.AppendUint64(dst, uint64(c.Value(i))), nil
	case *array.Uint32:
		return binary.BigEndian.AppendUint64(dst, uint64(c.Value(i))), nil
	case *array.Date32:
		return binary.BigEndian.AppendUint64(dst, uint64(int64(c.Value(i)))), nil
	case *array.Time64:
		return binary.BigEndian.AppendUint64(dst, uint64(c.Value(i))), nil
	case *array.Timestamp:
		return binary.BigEndian.AppendUint64(dst, uint64(c.Value(i))), nil
	case *array.Boolean:
		if c.Value(i) {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case *array.Decimal128:
		v := c.Value(i)
		dst = binary.BigEndian.AppendUint64(dst, uint64(v.HighBits()))
		return binary.BigEndian.AppendUint64(dst, v.LowBits()), nil
	case *array.String:
		return appendBytesKey(dst, []byte(c.Value(i))), nil
	case *array.LargeString:
		return appendBytesKey(dst, []byte(c.Value(i))), nil
	case *array.Binary:
		return appendBytesKey(dst, c.Value(i)), nil
	case *array.LargeBinary:
		return appendBytesKey(dst, c.Value(i)), nil
	case *array.FixedSizeBinary:
		return appendBytesKey(dst, c.Value(i)), nil
	case *array.Float32:
		return binary.BigEndian.AppendUint32(dst, math.Float32bits(c.Value(i))), nil
	case *array.Float64:
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(c.Value(i))), nil
	}
	return nil, fmt.Errorf("unsupported key type %s", a.DataType())
}

func appendBytesKey(dst, v []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

// FormatKey renders an encoded key for messages.
func FormatKey(key string) string {
	if len(key) == 8 {
		return strconv.FormatInt(int64(binary.BigEndian.Uint64([]byte(key))), 10)
	}
	return fmt.Sprintf("%x", bytes.TrimSpace([]byte(key)))
}
