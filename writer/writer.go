// Package writer turns batches of Arrow rows, tagged with their source
// positions, into Parquet data files and commits them to Iceberg tables, one
// snapshot per table per commit interval, exactly once.
//
// Rows are buffered per table under a memory budget; when a table's buffer
// reaches FlushBytes it is encoded into data files (iceberg-go's
// WriteRecords: partition fan-out, column statistics, rolling at the
// table's target file size), and at every commit interval — or earlier on
// the row and byte thresholds — the files are committed through
// table.Committer with the positions they cover. Positions reach a
// snapshot only with the rows before them. When the budget is full, Write
// blocks: that is the back-pressure sources feel.
//
// A failed commit (fenced, conflicts past the deadline, an unresolvable
// error) fails the Writer: every later Write returns the error, and the
// owner aborts it and starts over from the tables' positions. Files written
// for a failed commit are never referenced; the orphan cleaner removes them.
//
// Keyed tables — rows upserted and deleted by primary key, committed as
// row deltas — are KeyedTable's (keyed*.go; the design is at the top of
// keyed.go). It keeps its delete files few with compaction's delete-merge
// step and its data files few with compaction's keyed rewrite, both run
// by the table between its own commits; the rest of maintenance
// (manifests, expiry, orphans) is the daemon's. Both paths encode Parquet as internal/pqfile derives it
// from the table's properties.
//
// This package does not decode input, and does not create tables (see
// table.Ensure); it writes and commits.
package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/internal/pqgo"
	"github.com/floe-lake/floe/table"
)

// ErrClosed is returned by Write after Close or Abort.
var ErrClosed = errors.New("writer closed")

// CommitInfo describes one snapshot the writer committed.
type CommitInfo struct {
	Table      string
	SnapshotID int64
	Rows       int64
	Files      int
	Bytes      int64
	Attempts   int
	Conflicts  int
	Duration   time.Duration
	Positions  table.PositionMap
}

// Hooks are called at points of the write path; for tests that crash the
// process there. Nil hooks are skipped.
type Hooks struct {
	// AfterFlush runs after data files were written, before any commit.
	AfterFlush func(table string)
	// BeforeCommit runs right before a table's commit.
	BeforeCommit func(table string)
	// AfterCommit runs right after a table's commit succeeded.
	AfterCommit func(table string)
	// CompactionWritten runs after a keyed table's compaction step wrote
	// its file, before the step commits; the table's own commits go on
	// meanwhile.
	CompactionWritten func(table string)
}

// Options are the writer's collaborators.
type Options struct {
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Metrics; default: registered on a private registry.
	Metrics *Metrics
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OnCommit is called after each successful table commit, before the
	// observers registered with ObserveCommits.
	OnCommit func(CommitInfo)
	Hooks    Hooks
	// SetMemoryLimit is kept for compatibility: the writer no longer
	// changes the soft memory limit (keyed_memory.go spills key indexes
	// instead).
	SetMemoryLimit func(int64) int64
}

// Writer buffers, encodes and commits rows for any number of tables. Open,
// Write and Commit may be called from many goroutines.
type Writer struct {
	cat  icecat.Catalog
	cfg  Config
	opts Options
	log  *slog.Logger
	m    *Metrics
	// bufGauge is floe_writer_buffered_bytes{writer=cfg.WriterID}.
	bufGauge prometheus.Gauge

	mu       sync.Mutex
	space    *sync.Cond // broadcast when buffered drops, or on failure/close
	tables   map[string]*tableState
	buffered int64
	err      error // sticky failure
	closed   bool

	wake    chan struct{}
	stop    chan struct{} // closed to end the loop after its current operation
	stopped chan struct{}
	// abort cancels the loop's in-flight flush or commit (Abort only: a
	// Close lets it finish).
	loopCtx context.Context
	abort   context.CancelFunc

	obsMu     sync.Mutex
	observers []func(CommitInfo) // ObserveCommits

	// Key index memory (keyed_memory.go): indexShare mirrors indexBytes
	// for Write, which reads it under w.mu.
	memMu      sync.Mutex
	indexBytes int64
	overBudget bool
	indexShare atomic.Int64
	// Mapped key index slots and running compaction steps, and whether
	// the indexes are spilled (keyed_memory.go).
	mappedBytes  int64
	compactBytes int64
	// residentBytes: what the mapped slots may hold resident (part of
	// mappedBytes), counted against the rows even when spilled.
	residentBytes int64
	spilling      atomic.Bool
}

type tableState struct {
	name      string
	tbl       *icetable.Table
	committer *table.Committer
	schema    *arrow.Schema
	// pqgo: the table's schema and properties are ones the parquet-go
	// encoder supports; otherwise iceberg-go's WriteRecords (pqarrow).
	pqgo bool

	// Guarded by Writer.mu.
	records   []arrow.RecordBatch
	bufBytes  int64
	bufRows   int64
	bufEvent  time.Time
	pending   map[string]table.Positions // cumulative positions handed in, per source
	committed map[string]table.Positions // positions in the table as of open / our last commit
	fileRows  int64
	fileBytes int64

	// Guarded by io: one flush or commit of this table at a time.
	io        sync.Mutex
	files     []iceberg.DataFile
	filesPos  map[string]table.Positions // positions covered by files
	fileEvent time.Time
}

// New returns a Writer and starts its commit loop. cfg must be valid.
func New(cat icecat.Catalog, cfg Config, opts Options) *Writer {
	cfg.ApplyDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w := &Writer{
		cat: cat, cfg: cfg, opts: opts, log: opts.Logger, m: opts.Metrics,
		bufGauge: opts.Metrics.buffered.WithLabelValues(cfg.WriterID),
		tables:   map[string]*tableState{},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	w.space = sync.NewCond(&w.mu)
	// Every commit, appended or keyed, reports through opts.OnCommit; it
	// also reaches the observers registered later.
	user := opts.OnCommit
	w.opts.OnCommit = func(ci CommitInfo) { w.notifyCommit(user, ci) }
	w.loopCtx, w.abort = context.WithCancel(context.Background())
	go w.loop()
	return w
}

// Open registers source as a writer of tbl and returns the table's
// committed positions for it and the Arrow schema of its batches. The
// table must exist (table.Ensure creates it).
func (w *Writer) Open(name, source string) (table.Positions, *arrow.Schema, error) {
	w.mu.Lock()
	ts := w.tables[name]
	w.mu.Unlock()
	if ts == nil {
		ident, err := table.ParseIdent(name)
		if err != nil {
			return nil, nil, err
		}
		c := table.NewCommitter(w.cat, ident, table.CommitterConfig{
			WriterID: w.cfg.WriterID, Timeout: w.cfg.CommitTimeout, Logger: w.log, Now: w.opts.Now,
		})
		tbl, err := c.Load(context.Background())
		if err != nil {
			return nil, nil, err
		}
		sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
		if err != nil {
			return nil, nil, fmt.Errorf("arrow schema of %s: %w", name, err)
		}
		pm, err := table.CurrentPositions(tbl)
		if err != nil {
			return nil, nil, err
		}
		ts = &tableState{
			name: name, tbl: tbl, committer: c, schema: sc, pqgo: pqgo.Supported(tbl, sc) == nil,
			pending: map[string]table.Positions{}, committed: map[string]table.Positions{},
			filesPos: map[string]table.Positions{},
		}
		for src, p := range pm {
			ts.committed[src] = p
		}
		w.mu.Lock()
		if prev := w.tables[name]; prev != nil {
			ts = prev // a concurrent Open won
		} else {
			w.tables[name] = ts
		}
		w.mu.Unlock()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return ts.committed[source].Clone(), ts.schema, nil
}

// Write buffers b. It blocks while the memory budget is full and returns
// the writer's failure, if it has failed. Write takes ownership of
// b.Record.
func (w *Writer) Write(b Batch) error {
	if b.Record == nil && len(b.Next) == 0 {
		return nil
	}
	var size, rows int64
	if b.Record != nil {
		size, rows = recordSize(b.Record), b.Record.NumRows()
	}
	w.mu.Lock()
	waited := false
	for w.err == nil && !w.closed && w.buffered > 0 && w.buffered+size > w.rowBudgetLocked() {
		if !waited {
			w.m.blocked.Inc()
			waited = true
		}
		w.poke()
		w.space.Wait()
	}
	if err := w.failedLocked(); err != nil {
		w.mu.Unlock()
		if b.Record != nil {
			b.Record.Release()
		}
		return err
	}
	ts := w.tables[b.Table]
	if ts == nil {
		w.mu.Unlock()
		if b.Record != nil {
			b.Record.Release()
		}
		return fmt.Errorf("write to %s: table not opened", b.Table)
	}
	if b.Record != nil && rows > 0 {
		if !b.Record.Schema().Equal(ts.schema) {
			w.mu.Unlock()
			b.Record.Release()
			return fmt.Errorf("write to %s: batch schema %s does not match the table's %s", b.Table, b.Record.Schema(), ts.schema)
		}
		ts.records = append(ts.records, b.Record)
		ts.bufBytes += size
		ts.bufRows += rows
		w.buffered += size
		w.bufGauge.Set(float64(w.buffered))
	} else if b.Record != nil {
		b.Record.Release()
	}
	if len(b.Next) > 0 {
		p := ts.pending[b.Source]
		if p == nil {
			p = table.Positions{}
			ts.pending[b.Source] = p
		}
		for k, v := range b.Next {
			p[k] = v
		}
	}
	if b.MaxEventTime.After(ts.bufEvent) {
		ts.bufEvent = b.MaxEventTime
	}
	poke := ts.bufBytes >= int64(w.cfg.FlushBytes) || w.buffered >= w.rowBudgetLocked() ||
		(w.cfg.CommitRows > 0 && ts.bufRows+ts.fileRows >= w.cfg.CommitRows) ||
		(w.cfg.CommitBytes > 0 && ts.fileBytes+ts.bufBytes/4 >= int64(w.cfg.CommitBytes))
	w.mu.Unlock()
	if poke {
		w.poke()
	}
	return nil
}

func (w *Writer) failedLocked() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	return nil
}

// Err returns the writer's failure, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *Writer) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Writer) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.space.Broadcast()
	w.mu.Unlock()
}

// loop commits on the interval and flushes or commits early on request.
func (w *Writer) loop() {
	defer close(w.stopped)
	ctx := w.loopCtx
	t := time.NewTicker(w.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			if w.Err() == nil {
				if err := w.Commit(ctx); err != nil && ctx.Err() == nil {
					w.log.Error("commit failed", "err", err)
				}
			}
		case <-w.wake:
			if w.Err() != nil {
				continue
			}
			if err := w.onWake(ctx); err != nil && ctx.Err() == nil {
				w.log.Error("flush or commit failed", "err", err)
			}
		}
	}
}

// onWake flushes tables over FlushBytes (or the largest, when the budget is
// full) and commits when a row or byte threshold is reached.
func (w *Writer) onWake(ctx context.Context) error {
	w.mu.Lock()
	var flush []*tableState
	commit := false
	var largest *tableState
	for _, ts := range w.tables {
		if ts.bufBytes >= int64(w.cfg.FlushBytes) {
			flush = append(flush, ts)
		}
		if largest == nil || ts.bufBytes > largest.bufBytes {
			largest = ts
		}
		if (w.cfg.CommitRows > 0 && ts.bufRows+ts.fileRows >= w.cfg.CommitRows) ||
			(w.cfg.CommitBytes > 0 && ts.fileBytes+ts.bufBytes/4 >= int64(w.cfg.CommitBytes)) {
			commit = true
		}
	}
	if len(flush) == 0 && largest != nil && largest.bufBytes > 0 && w.buffered >= w.rowBudgetLocked()/2 {
		flush = append(flush, largest)
	}
	w.mu.Unlock()
	if commit {
		return w.Commit(ctx)
	}
	for _, ts := range flush {
		if err := w.flush(ctx, ts); err != nil {
			return err
		}
	}
	return nil
}

// flush encodes the table's buffered rows into data files. The positions
// of the rows taken move with them.
func (w *Writer) flush(ctx context.Context, ts *tableState) error {
	ts.io.Lock()
	defer ts.io.Unlock()
	return w.flushLocked(ctx, ts)
}

func (w *Writer) flushLocked(ctx context.Context, ts *tableState) error {
	w.mu.Lock()
	recs, nbytes, nrows, ev := ts.records, ts.bufBytes, ts.bufRows, ts.bufEvent
	pos := make(map[string]table.Positions, len(ts.pending))
	for src, p := range ts.pending {
		pos[src] = p.Clone()
	}
	ts.records, ts.bufBytes, ts.bufRows = nil, 0, 0
	w.mu.Unlock()

	release := func() {
		w.mu.Lock()
		w.buffered -= nbytes
		w.bufGauge.Set(float64(w.buffered))
		w.space.Broadcast()
		w.mu.Unlock()
	}
	if len(recs) > 0 {
		start := w.opts.Now()
		files, err := writeFiles(ctx, ts, recs, pqgo.Options{ZstdLevel: w.cfg.ZstdLevel})
		release()
		if err != nil {
			err = fmt.Errorf("write data files for %s: %w", ts.name, err)
			w.fail(err)
			return err
		}
		w.m.flushSeconds.WithLabelValues(ts.name).Observe(w.opts.Now().Sub(start).Seconds())
		var fb int64
		for _, f := range files {
			fb += f.FileSizeBytes()
		}
		ts.files = append(ts.files, files...)
		w.mu.Lock()
		ts.fileRows += nrows
		ts.fileBytes += fb
		w.mu.Unlock()
		if h := w.opts.Hooks.AfterFlush; h != nil {
			h(ts.name)
		}
	} else {
		release()
	}
	ts.filesPos = pos
	if ev.After(ts.fileEvent) {
		ts.fileEvent = ev
	}
	return nil
}

// writeFiles encodes recs into data files and releases them. It uses the
// parquet-go encoder (internal/pqgo: about 1.5× the rows per
// CPU-second of iceberg-go's pqarrow path, measured in
// BenchmarkPqgoWrite) where it supports the table, and iceberg-go's
// WriteRecords otherwise.
func writeFiles(ctx context.Context, ts *tableState, recs []arrow.RecordBatch, opts pqgo.Options) ([]iceberg.DataFile, error) {
	if ts.pqgo {
		files, err := pqgo.Write(ctx, ts.tbl, ts.schema, recs, opts)
		if !errors.Is(err, pqgo.ErrUnsupported) {
			for _, r := range recs {
				r.Release()
			}
			return files, err
		}
	}
	seq := func(yield func(arrow.RecordBatch, error) bool) {
		for i, r := range recs {
			if !yield(r, nil) {
				for _, rest := range recs[i+1:] {
					rest.Release()
				}
				return
			}
		}
	}
	var files []iceberg.DataFile
	for df, err := range icetable.WriteRecords(ctx, ts.tbl, ts.schema, seq) {
		if err != nil {
			return nil, err
		}
		files = append(files, df)
	}
	return files, nil
}

// Commit flushes every table and commits each table that has data files as
// one snapshot. It is what the commit interval runs; callers may call it
// to commit now.
func (w *Writer) Commit(ctx context.Context) error {
	w.mu.Lock()
	if err := w.err; err != nil {
		w.mu.Unlock()
		return err
	}
	tables := make([]*tableState, 0, len(w.tables))
	for _, ts := range w.tables {
		tables = append(tables, ts)
	}
	w.mu.Unlock()
	slices.SortFunc(tables, func(a, b *tableState) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	var errs []error
	for _, ts := range tables {
		if err := w.commitTable(ctx, ts); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (w *Writer) commitTable(ctx context.Context, ts *tableState) error {
	ts.io.Lock()
	defer ts.io.Unlock()
	if err := w.flushLocked(ctx, ts); err != nil {
		return err
	}
	if len(ts.files) == 0 {
		// Nothing to commit. Positions that moved without rows for this
		// table stay pending and go with its next data.
		return nil
	}
	w.mu.Lock()
	adv := make(map[string]table.Advance, len(ts.filesPos))
	for src, next := range ts.filesPos {
		adv[src] = table.Advance{Base: ts.committed[src].Clone(), Next: next}
	}
	rows := ts.fileRows
	w.mu.Unlock()
	files := ts.files
	var nbytes int64
	for _, f := range files {
		nbytes += f.FileSizeBytes()
	}

	if h := w.opts.Hooks.BeforeCommit; h != nil {
		h(ts.name)
	}
	start := w.opts.Now()
	res, err := ts.committer.Commit(ctx, table.Commit{
		Operation: "ingest",
		Advances:  adv,
		Apply: func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
			// File names are unique per write, so the duplicate check —
			// a read of every manifest of the table — is skipped.
			return txn.AddDataFiles(ctx, files, props, icetable.WithoutDuplicateCheck())
		},
	})
	dur := w.opts.Now().Sub(start)
	w.m.conflicts.WithLabelValues(ts.name).Add(float64(res.Conflicts))
	if err != nil {
		result := "error"
		if errors.Is(err, table.ErrFenced) {
			result = "fenced"
		}
		w.m.commits.WithLabelValues(ts.name, result).Inc()
		w.fail(err)
		return err
	}
	if h := w.opts.Hooks.AfterCommit; h != nil {
		h(ts.name)
	}
	result := "ok"
	if res.Recovered {
		result = "recovered"
	}
	w.m.commits.WithLabelValues(ts.name, result).Inc()
	w.m.commitSeconds.WithLabelValues(ts.name).Observe(dur.Seconds())
	w.m.rows.WithLabelValues(ts.name).Add(float64(rows))
	w.m.files.WithLabelValues(ts.name).Add(float64(len(files)))
	w.m.fileBytes.WithLabelValues(ts.name).Add(float64(nbytes))
	if !ts.fileEvent.IsZero() {
		w.m.eventTime.WithLabelValues(ts.name).Set(float64(ts.fileEvent.UnixMilli()) / 1e3)
	}

	w.mu.Lock()
	for src, next := range ts.filesPos {
		ts.committed[src] = ts.committed[src].Merge(next)
	}
	ts.fileRows -= rows
	ts.fileBytes -= nbytes
	w.mu.Unlock()
	ts.files = nil

	w.log.Debug("committed", "table", ts.name, "snapshot", res.SnapshotID, "rows", rows, "files", len(files), "attempts", res.Attempts)
	if w.opts.OnCommit != nil {
		w.opts.OnCommit(CommitInfo{
			Table: ts.name, SnapshotID: res.SnapshotID, Rows: rows, Files: len(files), Bytes: nbytes,
			Attempts: res.Attempts, Conflicts: res.Conflicts, Duration: dur, Positions: res.Positions,
		})
	}
	return nil
}

// Close stops the commit loop, commits everything buffered and closes the
// writer. It is what SIGTERM runs.
func (w *Writer) Close(ctx context.Context) error {
	w.stopLoop()
	defer w.abort()
	err := w.Commit(ctx)
	w.mu.Lock()
	w.closed = true
	w.space.Broadcast()
	w.mu.Unlock()
	return err
}

// Abort stops the writer and drops everything not committed. Data files
// already written stay unreferenced, for the orphan cleaner.
func (w *Writer) Abort() {
	w.abort()
	w.stopLoop()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for _, ts := range w.tables {
		for _, r := range ts.records {
			r.Release()
		}
		ts.records = nil
	}
	w.buffered = 0
	w.bufGauge.Set(0)
	w.space.Broadcast()
}

func (w *Writer) stopLoop() {
	w.mu.Lock()
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.mu.Unlock()
	<-w.stopped
}

// recordSize is the bytes held by a record's buffers: their capacity, not
// their length. Builders reserve ahead (the generator's string columns by
// their longest value), and counting lengths let the memory budget
// undercount what was allocated by a fifth.
func recordSize(r arrow.RecordBatch) int64 {
	var n int64
	for _, c := range r.Columns() {
		n += dataSize(c.Data())
	}
	return n
}

func dataSize(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(max(b.Len(), b.Cap()))
		}
	}
	for _, c := range d.Children() {
		n += dataSize(c)
	}
	return n
}

// Buffered returns the bytes of rows buffered in memory now.
func (w *Writer) Buffered() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buffered
}
