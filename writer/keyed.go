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
// beside concurrent equality deletes (its rewrite validation rejects any,
// where Java's accepts them with use-starting-sequence-number). The
// measurement behind the choice is in source/mysql's package comment and
// BenchmarkDeleteStrategy.
//
// The index holds one entry per live row in a pointer-free hash table
// (keyed_hashindex.go): about 20 bytes per key of one integer column, 30
// per other key. Its committed part — exactly what the table's committed
// snapshots say, never ahead of them — lives in memory-mapped files under
// the cache directory (~/.cache/floe/index/<table uuid>,
// KeyedOptions.IndexDir; keyindex_file.go), tagged after every commit
// with the snapshot it describes; changes not committed yet are layered
// above it in the heap and folded in when their commit succeeds
// (keyindex_view.go). When a table is opened the persisted index is
// validated against the table's history (checksums, table uuid, key
// columns, the tag an ancestor of the current snapshot) and caught up
// with the files committed after its tag; only if it does not validate is
// it rebuilt from the key columns of the table's live data files and its
// position deletes, and the log says why (keyindex_restore.go; equality
// deletes written by another engine are rejected).
// floe_writer_keyed_index_opens_total{how} counts validated and rebuilt
// opens, floe_writer_keyed_index_memory_bytes{kind} its heap and mapped
// bytes.
// If any other writer changes the table's files (a compaction, another
// engine), the index no longer matches the files; the next commit notices (it checks
// every snapshot committed since its last one) and fails with
// ErrKeyIndexStale, and the source restarts from the table, which
// validates the persisted index and catches it up with the changed files.
//
// The index and the table's compaction step count in the writer's memory
// budget (Config.MemoryBudget): buffered rows get what they leave, down to
// FlushBytes; above that the writer logs a WARN. The mapped index pages
// are dropped from the process after every commit and as passes over the
// index go (keyed_memory.go). It never raises the
// soft memory limit.
//
// # Maintenance: merging delete files between commits
//
// Every commit that deletes adds a position-delete file (one per
// partition it deletes in), which every reader opens. When a table (a
// partition) has KeyedOptions.MaxDeleteFiles of them, the KeyedTable runs
// compaction's delete-merge step (compaction.DeleteMerge) right after its
// commit: the deletes of all of them, which it knows from memory, become
// one file per partition, and data files whose rows are all deleted are
// dropped, in a replace snapshot that changes no row. It runs between the
// table's own commits, so it never races them (Apache Paimon compacts
// primary-key tables inside the writer for the same reason).
//
// # Maintenance: compacting data files beside the commits
//
// Every flush adds a small data file. The KeyedTable rewrites them
// itself (keyed_compact.go, with compaction's keyed rewrite,
// compaction.KeyedRewrite): after a commit it plans one bounded group
// (KeyedOptions.Compaction, under Iceberg's RewriteDataFiles option
// names), writes the group's live rows — the positions it knows dead
// skipped — into one file while ingest commits go on, then commits a
// replace snapshot through its committer, positions carried forward, and
// moves the index entries of the moved rows to the new file. Rows its
// commits deleted meanwhile are deleted again in the new file in the same
// snapshot. No index rebuild, no dropped rewrite. It marks the table
// compaction.PropCompactionOwner=writer so that the daemon (floe compact)
// leaves the table's data files alone and does the rest of its
// maintenance (manifests, expiry, orphans).
//
// Keyed tables must be format version 2 or later and have identifier
// fields. They may be partitioned, by any of Iceberg's transforms of
// top-level columns (keyed_partition.go): files are written per
// partition, and since the key index is global the partition columns need
// not be part of the key (Flink's upsert sink requires them to be, as its
// equality deletes are scoped to a partition); an update that moves a row
// to another partition deletes it by position in the old one.
//
// # Files
//
// keyed.go: the types, OpenKeyed, Apply and the table's loop; keyed_commit.go:
// flush, commit and maintenance; keyed_compact.go: data-file compaction;
// keyed_schema.go: AlterSchema, EnsureSchema and Halt; keyed_files.go:
// data and delete files; keyed_partition.go: rows to partitions;
// keyed_index.go: building the key index and the key encoding;
// keyed_hashindex.go, keyindex_view.go, keyindex_file.go,
// keyindex_restore.go: the index, its layers, its files, its validation.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/floe-lake/floe/compaction"
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
	// Ops has one entry per row of Record, or, when Deletes is set, per
	// row of Record and Deletes together, in the order they apply: each
	// OpUpsert is Record's next row, each OpDelete Deletes' next row.
	Ops []Op
	// Deletes, when set, holds the rows of the OpDelete entries of Ops:
	// the key columns only, in the order of the identifier fields and of
	// their types in Schema (every row of Record is then an upsert). A
	// source with interleaved upserts and deletes hands them over in one
	// Apply this way without building full rows for its deletes. Apply
	// takes ownership.
	Deletes arrow.RecordBatch
	// Next are the positions after these changes; nil leaves them where
	// they are (rows applied without positions are not committed until a
	// later Changes or Truncate advances them: a snapshot load uses this
	// to commit all its rows in one snapshot).
	Next table.Positions
	// MaxEventTime is the newest source event time, for the freshness
	// metric; zero if unknown.
	MaxEventTime time.Time
	// NewKeys promises that no key Record upserts has a live row in the
	// table when Apply is called, other than rows of Record itself: a
	// load into a table just truncated, of rows whose keys are distinct
	// (a database's snapshot by primary key). Apply then does not look
	// the keys up in the key index. A wrong promise leaves two rows of a
	// key in the table.
	NewKeys bool
}

// KeyedOptions tune a KeyedTable.
type KeyedOptions struct {
	// PositionCommitInterval commits positions alone (an empty append
	// snapshot) when they moved but no row changed for this long, so that a
	// table its source rarely touches does not pin the source's resume
	// position far in the past. 0 never does. Default: 0.
	PositionCommitInterval time.Duration
	// MaxDeleteFiles bounds the position-delete files of the table (of
	// each partition of a partitioned table): when a commit brings them to
	// this many, a rewrite snapshot (operation replace: no rows change)
	// merges them into one per partition and drops data files whose rows
	// are all deleted (compaction.DeleteMerge). Readers then open at most
	// this many delete files per data file however many updates
	// accumulated. Default: 8.
	MaxDeleteFiles int
	// Compaction tunes the table's own compaction of its data files,
	// between its commits (keyed_compact.go): small files are bin-packed
	// into files of the target size, a bounded group at a time, without
	// rebuilding the key index. The zero value compacts with the table's
	// write.target-file-size-bytes and Iceberg's RewriteDataFiles defaults;
	// Compaction.Disabled leaves the data files to the daemon.
	Compaction compaction.KeyedConfig
	// IndexDir is where the table's persistent key index lives, in a
	// directory per table uuid (keyindex_file.go); empty:
	// DefaultKeyIndexDir (~/.cache/floe/index).
	IndexDir string
	// HeapIndex keeps the whole key index in the Go heap, built from the
	// table at every open, as before the index was persistent.
	HeapIndex bool
}

// ErrKeyIndexStale means another writer changed the table's files (a
// compaction, another engine) since this KeyedTable built its key index.
// Nothing was committed; reopen the table (restart the source) to rebuild
// the index.
var ErrKeyIndexStale = errors.New("the table's files were changed by another writer; the key index must be rebuilt")

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

	mu      sync.Mutex
	space   *sync.Cond // broadcast when the buffer shrinks, or on failure/close
	tbl     *icetable.Table
	schema  *arrow.Schema
	keyCols []int // identifier columns, as indexes into schema
	keyIDs  []int // their field ids
	// partitioned: the table's current spec has partition fields; rows
	// are placed by keyed_partition.go.
	partitioned bool
	// index is the key index: the committed one under the uncommitted
	// changes (keyindex_view.go); idx its files when it is persistent
	// (nil: in the heap), indexInfo how it was opened.
	index         *indexView
	idx           *indexFiles
	indexInfo     IndexInfo
	indexKeyIDs   []int    // the key the index holds: field ids
	indexKeyTypes []string // and Arrow types
	// indexReported and mappedReported are the index memory last added
	// to the writer's accounting (keyed_memory.go).
	indexReported  int64
	mappedReported int64
	// residentReported: the index's ResidentBytes last added.
	residentReported int64
	files            []*dataFileState // file number → state
	recs             []arrow.RecordBatch
	keys             [][]string
	pend             map[string]uint64 // key → record<<32 | row, the buffered image
	dels             []uint64          // locations to delete
	bufBytes         int64
	bufRows          int64
	inflight         int64 // bytes taken by a flush being written
	pending          table.Positions
	event            time.Time
	err              error
	closed           bool
	closing          bool // Close or Abort began: no new compaction step
	// The table's compaction: its plan options (from KeyedOptions and the
	// table's properties), or off.
	compactOpts compaction.PlanOptions
	compactOff  bool
	// stepMaxKeys overrides keyedStepMaxKeys (tests; -1: always scan).
	stepMaxKeys int64

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
	step        *keyedStep         // the compaction step in flight, if any

	// stepWG counts compaction steps running; stepCtx ends their writing
	// (Close, Abort), loopCtx their commit (Abort).
	stepWG     sync.WaitGroup
	stepCtx    context.Context
	stepCancel context.CancelFunc

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

// OpenKeyed implements Sink.
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
	if err := k.openIndex(ctx, tbl); err != nil {
		k.mu.Lock()
		k.closeIndexLocked()
		k.mu.Unlock()
		return nil, fmt.Errorf("open keyed table %s: build key index: %w", spec.Name, err)
	}
	k.indexGaugesLocked()
	k.lastCommit = w.opts.Now()
	k.loopCtx, k.cancel = context.WithCancel(context.Background())
	// (The committer's shared IO keeps no caller's context: table.Committer
	// opens it detached, so a first use inside a commit is safe.)
	if err := k.claimCompaction(ctx); err != nil {
		k.cancel()
		k.mu.Lock()
		k.closeIndexLocked()
		k.mu.Unlock()
		return nil, fmt.Errorf("open keyed table %s: %w", spec.Name, err)
	}
	k.stepCtx, k.stepCancel = context.WithCancel(k.loopCtx)
	go k.loop()
	return k, nil
}

// load adopts tbl's schema; k.mu must be held or k not yet shared.
func (k *KeyedTable) load(tbl *icetable.Table) error {
	if v := tbl.Metadata().Version(); v < 2 {
		return fmt.Errorf("keyed table %s: format version %d cannot hold row-level deletes; it needs 2 or later", k.name, v)
	}
	sc := tbl.Schema()
	partitioned := !tbl.Spec().IsUnpartitioned()
	if partitioned {
		if _, err := newRowPartitioner(tbl.Spec(), sc); err != nil {
			return fmt.Errorf("keyed table %s: %w", k.name, err)
		}
	}
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
	k.tbl, k.schema, k.keyCols, k.keyIDs, k.partitioned = tbl, asc, cols, ids, partitioned
	k.compactOff = k.opts.Compaction.Disabled
	if !k.compactOff {
		o, err := k.opts.Compaction.PlanOptions(tbl.Properties())
		if err != nil {
			// Ingest goes on; the data files are left to the daemon.
			k.log.Warn("keyed table compaction off: invalid settings", "err", err)
			k.compactOff = true
		}
		k.compactOpts = o
	}
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

// Len is the number of live keys: the table's rows as of what was applied.
func (k *KeyedTable) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.index.Len() + len(k.pend)
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
// takes ownership of ch.Record and ch.Deletes.
func (k *KeyedTable) Apply(ch Changes) error {
	_, err := k.ApplyCounted(ch)
	return err
}

// ApplyCounted is Apply, and also returns how many of ch's deletes found
// no live key (no-ops: the key was never there or already deleted).
func (k *KeyedTable) ApplyCounted(ch Changes) (unknownDeletes int, err error) {
	rec, dels := ch.Record, ch.Deletes
	if rec != nil && rec.NumRows() == 0 {
		rec.Release()
		rec = nil
	}
	if dels != nil && dels.NumRows() == 0 {
		dels.Release()
		dels = nil
	}
	release := func() {
		if rec != nil {
			rec.Release()
		}
		if dels != nil {
			dels.Release()
		}
	}
	var size, rows int64
	if rec != nil {
		size, rows = recordSize(rec), rec.NumRows()
	}
	if dels != nil {
		rows += dels.NumRows()
	}
	if len(ch.Ops) != int(rows) {
		release()
		return 0, fmt.Errorf("apply to %s: %d ops for %d rows", k.name, len(ch.Ops), rows)
	}
	if dels != nil {
		n := 0
		for _, op := range ch.Ops {
			if op == OpDelete {
				n++
			}
		}
		if n != int(dels.NumRows()) {
			release()
			return 0, fmt.Errorf("apply to %s: %d deletes in ops for %d keys", k.name, n, dels.NumRows())
		}
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
		release()
		return 0, err
	}
	if rec != nil && !rec.Schema().Equal(k.schema) {
		release()
		return 0, fmt.Errorf("apply to %s: batch schema %s does not match the table's %s", k.name, rec.Schema(), k.schema)
	}
	if dels != nil {
		if err := k.checkKeySchema(dels.Schema()); err != nil {
			release()
			return 0, err
		}
	}
	if rows > 0 {
		unknown, err := k.applyLocked(rec, dels, ch.Ops, ch.NewKeys)
		if dels != nil {
			dels.Release() // only its keys were read
		}
		if err != nil {
			if rec != nil {
				rec.Release()
			}
			k.err = err
			return 0, err
		}
		unknownDeletes = unknown
		k.bufBytes += size
		k.bufRows += rows
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
	return unknownDeletes, nil
}

// checkKeySchema checks the schema of a Changes.Deletes record: the key
// columns' types in identifier-field order.
func (k *KeyedTable) checkKeySchema(sc *arrow.Schema) error {
	ok := sc.NumFields() == len(k.keyCols)
	for j := 0; ok && j < len(k.keyCols); j++ {
		ok = arrow.TypeEqual(sc.Field(j).Type, k.schema.Field(k.keyCols[j]).Type)
	}
	if !ok {
		return fmt.Errorf("apply to %s: deletes schema %s is not the table's key columns", k.name, sc)
	}
	return nil
}

// applyLocked applies ops to the rows of rec, or — when dels is set —
// to rec's rows (upserts) and dels' rows (deletes, key columns only)
// interleaved; it returns how many deletes found no live key. rec (if
// any) is kept for the flush. newKeys is Changes.NewKeys.
func (k *KeyedTable) applyLocked(rec, dels arrow.RecordBatch, ops []Op, newKeys bool) (int, error) {
	ri := uint64(len(k.recs))
	var keys []string
	// arena holds the keys of rec's rows, cut from few allocations rather
	// than one per key; its bytes are never written again once cut.
	var arena []byte
	if rec != nil {
		keys = make([]string, rec.NumRows())
	}
	var delCols []int
	if dels != nil {
		delCols = make([]int, len(k.keyCols))
		for j := range delCols {
			delCols[j] = j
		}
	}
	var buf []byte
	var err error
	unknown, ui, di := 0, 0, 0
	for i, op := range ops {
		if op != OpUpsert && op != OpDelete {
			return 0, fmt.Errorf("apply to %s: row %d: unknown op %d", k.name, i, op)
		}
		var key string
		if dels != nil && op == OpDelete {
			buf, err = appendKey(buf[:0], dels, delCols, di)
			key = string(buf)
			di++
		} else {
			buf, err = appendKey(buf[:0], rec, k.keyCols, ui)
			if cap(arena)-len(arena) < len(buf) {
				// Room for the rest of rec's keys at this one's size.
				arena = make([]byte, 0, len(buf)*(len(keys)-ui))
			}
			start := len(arena)
			arena = append(arena, buf...)
			key = unsafe.String(unsafe.SliceData(arena[start:]), len(buf))
			keys[ui] = key
			ui++
		}
		if err != nil {
			return 0, fmt.Errorf("apply to %s: row %d: %w", k.name, i, err)
		}
		if op == OpUpsert {
			// One map access: the key is new to the buffer when the map
			// grew. Only then can the table hold an older row of it
			// (unless the caller promised it does not).
			n := len(k.pend)
			k.pend[key] = ri<<32 | uint64(ui-1)
			if len(k.pend) > n && !newKeys {
				if loc, ok := k.index.Delete(key); ok {
					k.dels = append(k.dels, loc)
				}
			}
			continue
		}
		if _, ok := k.pend[key]; ok {
			delete(k.pend, key)
		} else if loc, ok := k.index.Delete(key); ok {
			k.dels = append(k.dels, loc)
		} else {
			unknown++
		}
	}
	if rec != nil {
		k.recs = append(k.recs, rec)
		k.keys = append(k.keys, keys)
	}
	return unknown, nil
}

// Truncate deletes every row of the table (everything committed and
// everything applied before), and moves the positions to next.
func (k *KeyedTable) Truncate(next table.Positions) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.failedLocked(); err != nil {
		return err
	}
	k.index.Locations(func(loc uint64) { k.dels = append(k.dels, loc) })
	k.index.Truncate()
	k.indexGaugesLocked()
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

// Close commits everything applied with positions and stops the table. A
// compaction step still writing is abandoned (its file is left to the
// orphan cleaner); one committing finishes first.
func (k *KeyedTable) Close(ctx context.Context) error {
	k.stopLoop()
	defer k.cancel()
	k.stopSteps()
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
	k.stopSteps()
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
	k.reportIndexLocked() // closed: the index no longer counts
	// The index's files are released unless a commit (Commit from another
	// goroutine) still runs: it may fold into them. Then they stay mapped.
	if k.io.TryLock() {
		k.closeIndexLocked()
		k.io.Unlock()
	}
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
