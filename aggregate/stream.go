package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// Options are an Aggregator's collaborators and tuning. Zero values take
// the defaults.
type Options struct {
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Clock paces polling and batching; default reader.SystemClock().
	Clock reader.Clock
	// PollInterval is how often the source is polled when caught up.
	// Default 1s; at least 10ms.
	PollInterval time.Duration
	// MaxBatchRows ends a streaming batch once its changes hold this many
	// source rows. Default 1,000,000.
	MaxBatchRows int64
	// MaxBatchDelay ends a streaming batch this long after its first
	// change: the longest a change waits to be committed. Default 2s.
	MaxBatchDelay time.Duration
	// Concurrency is how many source files are read in parallel, and how
	// many goroutines aggregate a backfill. Default min(GOMAXPROCS, 8).
	Concurrency int
	// CommitTimeout bounds one commit, retries included. Default 2m.
	CommitTimeout time.Duration
	// WriterID goes into every summary as floe.writer-id. Default
	// "floe-aggregate".
	WriterID string
	// StateCacheBytes bounds the encoded states of the output partitions
	// a streaming aggregator keeps decoded in memory between steps, so
	// that a step merges into them instead of reading them back from the
	// table (valid while the table's head is this process's last commit).
	// Default 256 MiB; negative disables the cache.
	StateCacheBytes int64
	// Allocator for output batches; default memory.DefaultAllocator.
	Allocator memory.Allocator
	// Hooks run at points of the commit path, for crash tests.
	Hooks Hooks
	// OnCommit is called after each commit.
	OnCommit func(CommitInfo)
}

// Hooks are called at points of the commit path; nil hooks are skipped.
type Hooks struct {
	// BeforeCommit runs after the output rows are built, right before the
	// commit.
	BeforeCommit func()
	// AfterCommit runs right after a commit succeeded.
	AfterCommit func()
}

func (o *Options) applyDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = reader.SystemClock()
	}
	if o.PollInterval == 0 {
		o.PollInterval = time.Second
	}
	if o.MaxBatchRows == 0 {
		o.MaxBatchRows = 1_000_000
	}
	if o.MaxBatchDelay == 0 {
		o.MaxBatchDelay = 2 * time.Second
	}
	if o.Concurrency == 0 {
		o.Concurrency = min(runtime.GOMAXPROCS(0), 8)
	}
	if o.CommitTimeout == 0 {
		o.CommitTimeout = 2 * time.Minute
	}
	if o.WriterID == "" {
		o.WriterID = "floe-aggregate"
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	if o.StateCacheBytes == 0 {
		o.StateCacheBytes = 256 << 20
	}
}

func (o *Options) validate() error {
	switch {
	case o.PollInterval < 10*time.Millisecond:
		return fmt.Errorf("aggregate options: poll interval %s is below 10ms", o.PollInterval)
	case o.MaxBatchRows < 1:
		return fmt.Errorf("aggregate options: max batch rows %d is below 1", o.MaxBatchRows)
	case o.MaxBatchDelay <= 0:
		return fmt.Errorf("aggregate options: max batch delay %s is not positive", o.MaxBatchDelay)
	case o.Concurrency < 1:
		return fmt.Errorf("aggregate options: concurrency %d is below 1", o.Concurrency)
	case o.CommitTimeout <= 0:
		return fmt.Errorf("aggregate options: commit timeout %s is not positive", o.CommitTimeout)
	}
	return nil
}

// CommitInfo describes one commit to the summary table.
type CommitInfo struct {
	// Kind is "stream" (a streaming batch), "backfill" or "cursor" (the
	// changes read had no rows for the output; only the cursor moved).
	Kind       string
	SnapshotID int64
	// Cursor is the source snapshot the output holds after the commit.
	Cursor int64
	// Changes is the number of source snapshots the commit covers
	// (streaming).
	Changes int
	// SourceRows were read; Groups output rows written, in Partitions
	// partitions.
	SourceRows int64
	Groups     int
	Partitions int
	Duration   time.Duration
}

// Result sums up a CatchUp or Backfill.
type Result struct {
	// Cursor is the source snapshot the output holds.
	Cursor     int64
	SourceRows int64
	Groups     int
	Commits    int
}

// Aggregator runs one spec: streaming (Follow, CatchUp) or batch
// (Backfill), with the same aggregation code.
type Aggregator struct {
	cat  icecat.Catalog
	spec Spec
	plan *plan
	opts Options
	log  *slog.Logger

	filter    iceberg.BooleanExpression
	src       *reader.Reader
	committer *table.Committer
	// fingerprintOK: the output's stored states were computed with this
	// spec (or it has none yet).
	fingerprintOK bool
	fingerprint   string
	cache         *stateCache
}

// New binds spec to its source table and creates the summary table when
// it is missing (table.Ensure of the derived spec, which also adds new
// measure columns to an existing one). It fails when the source has
// row-level deletes in its history and the spec has measures that cannot
// retract them.
func New(ctx context.Context, cat icecat.Catalog, spec Spec, opts Options) (*Aggregator, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	opts.applyDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	filter, err := reader.ParseFilter(spec.Filter)
	if err != nil {
		return nil, fmt.Errorf("aggregate %s: filter: %w", spec.Name, err)
	}
	srcIdent, _ := table.ParseIdent(spec.Source)
	srcTbl, err := cat.LoadTable(ctx, srcIdent)
	if err != nil {
		return nil, fmt.Errorf("load source table %s: %w", spec.Source, err)
	}
	p, err := bind(spec, srcTbl.Schema())
	if err != nil {
		return nil, err
	}
	if !p.retractable {
		if id, op, ok := rowDeletes(srcTbl); ok {
			return nil, fmt.Errorf("%w (snapshot %d of %s is a %s)", p.notRetractable(), id, spec.Source, op)
		}
	}
	outTbl, err := table.Ensure(ctx, cat, p.outputSpec())
	if err != nil {
		return nil, fmt.Errorf("aggregate %s: %w", spec.Name, err)
	}
	a := &Aggregator{
		cat: cat, spec: spec, plan: p, opts: opts, log: opts.Logger.With("aggregate", spec.Name),
		filter:      filter,
		fingerprint: spec.Fingerprint(),
		cache:       newStateCache(int(max(opts.StateCacheBytes, 0))),
	}
	got := outTbl.Properties()[PropFingerprint]
	a.fingerprintOK = got == a.fingerprint || (got == "" && outTbl.CurrentSnapshot() == nil)
	a.src, err = reader.New(cat, spec.Source, a.readerConfig(nil))
	if err != nil {
		return nil, err
	}
	outIdent, _ := table.ParseIdent(spec.Output)
	a.committer = table.NewCommitter(cat, outIdent, table.CommitterConfig{
		WriterID: opts.WriterID, Timeout: opts.CommitTimeout, Logger: a.log,
		Now: opts.Clock.Now,
	})
	return a, nil
}

// Spec is the aggregator's spec.
func (a *Aggregator) Spec() Spec { return a.spec }

func (a *Aggregator) readerConfig(tr *reader.TimeRange) reader.Config {
	return reader.Config{
		Mode:         reader.ModeChangelog,
		Columns:      a.plan.columns,
		Filter:       a.filter,
		EventTime:    tr,
		Concurrency:  a.opts.Concurrency,
		PollInterval: a.opts.PollInterval,
		Logger:       a.log,
		Clock:        a.opts.Clock,
	}
}

// rowDeletes finds a snapshot in tbl's current history that can remove
// rows (overwrite or delete).
func rowDeletes(tbl *icetable.Table) (int64, icetable.Operation, bool) {
	meta := tbl.Metadata()
	for s := tbl.CurrentSnapshot(); s != nil; {
		if s.Summary != nil {
			switch s.Summary.Operation {
			case icetable.OpOverwrite, icetable.OpDelete:
				return s.SnapshotID, s.Summary.Operation, true
			}
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	return 0, "", false
}

// cursorState is the output's cursor on the source.
type cursorState struct {
	id    int64
	found bool
}

func (a *Aggregator) cursorOf(tbl *icetable.Table) (cursorState, error) {
	pm, err := table.CurrentPositions(tbl)
	if err != nil {
		return cursorState{}, fmt.Errorf("read cursor of %s: %w", a.spec.Output, err)
	}
	id, found := reader.CursorFromPositions(pm, a.spec.Source)
	return cursorState{id: id, found: found}, nil
}

// Cursor returns the source snapshot the summary table holds (found is
// false before the first commit).
func (a *Aggregator) Cursor(ctx context.Context) (id int64, found bool, err error) {
	tbl, err := a.committer.Load(ctx)
	if err != nil {
		return 0, false, err
	}
	c, err := a.cursorOf(tbl)
	return c.id, c.found, err
}

func fmtMicros(us int64) string { return time.UnixMicro(us).UTC().Format(time.RFC3339) }

func specJSON(s Spec) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// partitionFilter selects the window starts of the partitions parts
// (ascending partition starts, in microseconds): one range per run of
// adjacent partitions.
func partitionFilter(parts []int64, unit int64) iceberg.BooleanExpression {
	ref := iceberg.Reference(ColWindowStart)
	var ranges []iceberg.BooleanExpression
	for i := 0; i < len(parts); {
		j := i + 1
		for j < len(parts) && parts[j] == parts[j-1]+unit {
			j++
		}
		ranges = append(ranges, iceberg.NewAnd(
			iceberg.GreaterThanEqual(ref, iceberg.Timestamp(parts[i])),
			iceberg.LessThan(ref, iceberg.Timestamp(parts[j-1]+unit))))
		i = j
	}
	switch len(ranges) {
	case 0:
		return iceberg.AlwaysFalse{}
	case 1:
		return ranges[0]
	}
	return iceberg.NewOr(ranges[0], ranges[1], ranges[2:]...)
}

// loadStored folds the stored states of the output rows matching filter,
// as of tbl (the output table as loaded), into the group table route
// returns for each row's window start.
func (a *Aggregator) loadStored(ctx context.Context, tbl *icetable.Table, filter iceberg.BooleanExpression, route func(ws int64) *groupTable, st *batchState) error {
	if tbl.CurrentSnapshot() == nil {
		return nil
	}
	cols := append([]string{ColWindowStart}, a.spec.Dimensions...)
	cols = append(cols, ColState)
	r, err := reader.New(a.cat, a.spec.Output, reader.Config{
		Columns: cols, Filter: filter, Concurrency: a.opts.Concurrency, Logger: a.log, Clock: a.opts.Clock,
	})
	if err != nil {
		return err
	}
	stream, err := r.SnapshotIn(ctx, tbl, reader.At{})
	if err != nil {
		return fmt.Errorf("read stored groups of %s: %w", a.spec.Output, err)
	}
	for rec, err := range stream.Records() {
		if err != nil {
			return fmt.Errorf("read stored groups of %s: %w", a.spec.Output, err)
		}
		err = a.plan.addStored(route, rec, st)
		rec.Release()
		if err != nil {
			return fmt.Errorf("stored groups of %s: %w", a.spec.Output, err)
		}
	}
	return nil
}

// addStored folds output rows (window_start, dimensions, _state) into the
// group tables route returns.
func (p *plan) addStored(route func(ws int64) *groupTable, rec arrow.RecordBatch, st *batchState) error {
	n := int(rec.NumRows())
	wcol, err := column(rec, ColWindowStart)
	if err != nil {
		return err
	}
	ws, ok := wcol.(*array.Timestamp)
	if !ok {
		return fmt.Errorf("column %s is an Arrow %s, not a timestamp", ColWindowStart, wcol.DataType())
	}
	st.times = micros(ws, st.times)
	scol, err := column(rec, ColState)
	if err != nil {
		return err
	}
	state, ok := scol.(*array.Binary)
	if !ok {
		return fmt.Errorf("column %s is an Arrow %s, not binary", ColState, scol.DataType())
	}
	dims := make([]*colView, len(p.dims))
	for i, d := range p.dims {
		c, err := column(rec, d.name)
		if err != nil {
			return err
		}
		if dims[i], err = newColView(c, d.kind, &st.s); err != nil {
			return fmt.Errorf("column %q: %w", d.name, err)
		}
	}
	defer func() {
		for _, v := range dims {
			st.s.release(v)
		}
	}()
	for i := range n {
		if ws.IsNull(i) || state.IsNull(i) {
			return fmt.Errorf("row %d has no %s or %s", i, ColWindowStart, ColState)
		}
		t := route(st.times[i])
		if t == nil {
			return fmt.Errorf("row at %s is outside the partitions read", fmtMicros(st.times[i]))
		}
		st.key = appendWindow(st.key[:0], st.times[i])
		for _, v := range dims {
			st.key = appendDim(st.key, v, i)
		}
		g := t.lookup(st.key)
		t.sync()
		if err := t.mergeState(g, state.Value(i)); err != nil {
			return fmt.Errorf("group at %s: %w", fmtMicros(st.times[i]), err)
		}
	}
	return nil
}

// commitReq is one commit to the summary table.
type commitReq struct {
	kind string
	// filter selects the output rows replaced; nil for a cursor-only
	// commit.
	filter     iceberg.BooleanExpression
	records    []arrow.RecordBatch
	base       cursorState
	next       int64
	changes    int
	sourceRows int64
	groups     int
	partitions int
	// setFingerprint stores the spec's fingerprint in the table.
	setFingerprint bool
	started        time.Time
}

func (a *Aggregator) commit(ctx context.Context, r commitReq) (CommitInfo, error) {
	if h := a.opts.Hooks.BeforeCommit; h != nil {
		h()
	}
	sc := (*arrow.Schema)(nil)
	if len(r.records) > 0 {
		sc = r.records[0].Schema()
	}
	res, err := a.committer.Commit(ctx, table.Commit{
		Operation: "aggregate",
		Advances: map[string]table.Advance{
			reader.UpstreamSource(a.spec.Source): reader.CursorAdvance(r.base.id, r.base.found, r.next),
		},
		Apply: func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
			if r.setFingerprint {
				if err := txn.SetProperties(iceberg.Properties{PropFingerprint: a.fingerprint, PropSpec: specJSON(a.spec)}); err != nil {
					return err
				}
			}
			if r.filter == nil {
				// Only the cursor moves: an empty append carries it.
				return txn.AddFiles(ctx, nil, props, true)
			}
			if sc == nil {
				tbl, err := txn.StagedTable()
				if err != nil {
					return err
				}
				if sc, err = icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false); err != nil {
					return err
				}
			}
			rdr, err := array.NewRecordReader(sc, r.records)
			if err != nil {
				return err
			}
			defer rdr.Release()
			return txn.Overwrite(ctx, rdr, props, icetable.WithOverwriteFilter(r.filter),
				icetable.WithOverwriteConcurrency(a.opts.Concurrency))
		},
	})
	if err != nil {
		return CommitInfo{}, err
	}
	if h := a.opts.Hooks.AfterCommit; h != nil {
		h()
	}
	if r.setFingerprint {
		a.fingerprintOK = true
	}
	info := CommitInfo{
		Kind: r.kind, SnapshotID: res.SnapshotID, Cursor: r.next, Changes: r.changes,
		SourceRows: r.sourceRows, Groups: r.groups, Partitions: r.partitions,
		Duration: a.opts.Clock.Now().Sub(r.started),
	}
	a.log.Debug("aggregate commit", "kind", info.Kind, "snapshot", info.SnapshotID, "cursor", info.Cursor,
		"changes", info.Changes, "source_rows", info.SourceRows, "groups", info.Groups,
		"partitions", info.Partitions, "duration", info.Duration, "attempts", res.Attempts)
	if a.opts.OnCommit != nil {
		a.opts.OnCommit(info)
	}
	return info, nil
}

func releaseAll(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}

// outputSchema is the Arrow schema of the output table's rows.
func outputSchema(tbl *icetable.Table) (*arrow.Schema, error) {
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("arrow schema of %s: %w", tbl.Identifier(), err)
	}
	return sc, nil
}

// flush commits a streaming batch: delta holds the partial aggregates of
// the source changes after base up to next. The groups of the output
// partitions delta touches (from the state cache, or read from the table
// and decoded) are merged with it, and those partitions are replaced by
// the merged groups, with the cursor moved to next, in one commit.
func (a *Aggregator) flush(ctx context.Context, delta *groupTable, base cursorState, next int64, changes int, rows int64) (CommitInfo, error) {
	started := a.opts.Clock.Now()
	tbl, err := a.committer.Load(ctx)
	if err != nil {
		return CommitInfo{}, err
	}
	cur, err := a.cursorOf(tbl)
	if err != nil {
		return CommitInfo{}, err
	}
	if cur != base {
		a.cache.reset()
		return CommitInfo{}, fmt.Errorf("aggregate %s: the cursor of %s moved to %d since this batch started at %d: %w",
			a.spec.Name, a.spec.Output, cur.id, base.id, table.ErrFenced)
	}
	if !a.fingerprintOK {
		return CommitInfo{}, a.fingerprintError(tbl)
	}
	a.cache.validate(tbl)
	req := commitReq{
		kind: "stream", base: base, next: next, changes: changes, sourceRows: rows, started: started,
		setFingerprint: tbl.Properties()[PropFingerprint] != a.fingerprint,
	}
	if delta.len() == 0 {
		req.kind = "cursor"
		info, err := a.commit(ctx, req)
		if err != nil {
			a.cache.reset()
			return info, err
		}
		a.cache.put(info.SnapshotID, nil, nil)
		return info, nil
	}

	// The partitions touched: cached, or read from the table.
	parts := delta.partitions()
	tables := make(map[int64]*groupTable, len(parts))
	var missing []int64
	for _, pt := range parts {
		if t := a.cache.take(pt); t != nil {
			tables[pt] = t
			continue
		}
		tables[pt] = newGroupTable(a.plan)
		missing = append(missing, pt)
	}
	st := &batchState{}
	if len(missing) > 0 {
		route := func(ws int64) *groupTable { return tables[floorDiv(ws, a.plan.unit)*a.plan.unit] }
		if err := a.loadStored(ctx, tbl, partitionFilter(missing, a.plan.unit), route, st); err != nil {
			a.cache.reset()
			return CommitInfo{}, err
		}
	}
	for g, k := range delta.keys {
		tables[floorDiv(windowStart(k), a.plan.unit)*a.plan.unit].mergeGroupFrom(delta, int32(g))
	}

	sc, err := outputSchema(tbl)
	if err != nil {
		a.cache.reset()
		return CommitInfo{}, err
	}
	stateBytes := make(map[int64]int, len(parts))
	defer func() { releaseAll(req.records) }()
	for _, pt := range parts {
		recs, n, err := a.plan.build(tables[pt], sc, a.opts.Allocator)
		if err != nil {
			a.cache.reset()
			return CommitInfo{}, err
		}
		req.records = append(req.records, recs...)
		stateBytes[pt] = n
	}
	for _, r := range req.records {
		req.groups += int(r.NumRows())
	}
	req.filter = partitionFilter(parts, a.plan.unit)
	req.partitions = len(parts)
	info, err := a.commit(ctx, req)
	if err != nil {
		a.cache.reset()
		return info, err
	}
	a.cache.put(info.SnapshotID, tables, stateBytes)
	return info, nil
}

func (a *Aggregator) fingerprintError(tbl *icetable.Table) error {
	return fmt.Errorf("aggregate %s: table %s holds states of another spec (fingerprint %q, this spec's is %q): "+
		"run a full backfill (without --from/--to) to rebuild it with this spec, or write to a new output table",
		a.spec.Name, a.spec.Output, tbl.Properties()[PropFingerprint], a.fingerprint)
}

// Follow aggregates the source's changes as they are committed, until ctx
// is cancelled: it reads the cursor the summary table holds (the source
// snapshot its rows cover), tails the source after it, and commits each
// batch of changes (bounded by MaxBatchRows and MaxBatchDelay) with the
// cursor in the same commit, so every source row is counted exactly once
// across crashes. When ctx is cancelled it commits the changes it has read
// completely and returns nil. A summary table without a cursor is
// followed from the source's first snapshot.
func (a *Aggregator) Follow(ctx context.Context) error {
	_, err := a.stream(ctx, false)
	if ctx.Err() != nil && (err == nil || errors.Is(err, ctx.Err())) {
		return nil
	}
	return err
}

// CatchUp is Follow up to the source's snapshot current when it is called:
// it returns once the summary table holds that snapshot's changes.
func (a *Aggregator) CatchUp(ctx context.Context) (Result, error) {
	return a.stream(ctx, true)
}

func (a *Aggregator) stream(ctx context.Context, once bool) (Result, error) {
	var total Result
	for fenced := 0; ; fenced++ {
		tbl, err := a.committer.Load(ctx)
		if err != nil {
			return total, err
		}
		base, err := a.cursorOf(tbl)
		if err != nil {
			return total, err
		}
		total.Cursor = base.id
		if !a.fingerprintOK {
			return total, a.fingerprintError(tbl)
		}
		var target int64
		if once {
			srcTbl, err := a.src.Load(ctx)
			if err != nil {
				return total, err
			}
			target = reader.Current(srcTbl)
			if target == base.id {
				return total, nil
			}
		}
		res, err := a.streamFrom(ctx, base, target)
		total.SourceRows += res.SourceRows
		total.Groups += res.Groups
		total.Commits += res.Commits
		if res.Commits > 0 {
			total.Cursor = res.Cursor
		}
		if errors.Is(err, table.ErrFenced) && ctx.Err() == nil {
			// Another writer moved the cursor (a backfill, or a second
			// follower): drop the batch and resume from the table.
			a.log.Warn("fenced: the summary table's cursor moved; resuming from it", "err", err)
			select {
			case <-ctx.Done():
				return total, ctx.Err()
			case <-a.opts.Clock.After(min(time.Duration(fenced+1)*a.opts.PollInterval, 30*time.Second)):
			}
			continue
		}
		return total, err
	}
}

// streamFrom tails the source after base, committing batches, until ctx is
// cancelled or (target != 0) the change of snapshot target is committed.
func (a *Aggregator) streamFrom(ctx context.Context, base cursorState, target int64) (Result, error) {
	res := Result{Cursor: base.id}
	tctx, cancel := context.WithCancel(ctx)
	type item struct {
		ch  *reader.Change
		err error
	}
	items := make(chan item)
	ack := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(items)
		for ch, err := range a.src.Tail(tctx, base.id) {
			select {
			case items <- item{ch, err}:
			case <-tctx.Done():
				return
			}
			if err != nil {
				return
			}
			select {
			case <-ack:
			case <-tctx.Done():
				return
			}
		}
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()

	st := &batchState{}
	delta := newGroupTable(a.plan)
	next := base.id
	var changes int
	var rows int64
	var deadline <-chan time.Time
	flush := func(ctx context.Context) error {
		if changes == 0 {
			return nil
		}
		info, err := a.flush(ctx, delta, base, next, changes, rows)
		if err != nil {
			return err
		}
		res.Commits++
		res.Cursor = next
		res.SourceRows += rows
		res.Groups += info.Groups
		base = cursorState{id: next, found: true}
		delta = newGroupTable(a.plan)
		changes, rows, deadline = 0, 0, nil
		return nil
	}
	// finish commits what was read completely once ctx is cancelled.
	finish := func() (Result, error) {
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.CommitTimeout)
		defer fcancel()
		if err := flush(fctx); err != nil {
			return res, err
		}
		return res, ctx.Err()
	}
	for {
		select {
		case it, ok := <-items:
			if !ok {
				return finish()
			}
			if it.err != nil {
				return res, it.err
			}
			n, err := a.addStream(delta, it.ch.Stream, nil, st)
			select {
			case ack <- struct{}{}:
			case <-tctx.Done():
			}
			if err != nil {
				if ctx.Err() != nil {
					// Cancelled mid-change: the delta holds part of it
					// and must not be committed.
					return res, ctx.Err()
				}
				return res, fmt.Errorf("aggregate %s: changes of %s snapshot %d: %w", a.spec.Name, a.spec.Source, it.ch.Snapshot.ID, err)
			}
			next = it.ch.Snapshot.ID
			changes++
			rows += n
			if deadline == nil {
				deadline = a.opts.Clock.After(a.opts.MaxBatchDelay)
			}
			done := target != 0 && next == target
			if rows >= a.opts.MaxBatchRows || done {
				if err := flush(ctx); err != nil {
					return res, err
				}
			}
			if done {
				return res, nil
			}
		case <-deadline:
			if err := flush(ctx); err != nil {
				return res, err
			}
		case <-ctx.Done():
			return finish()
		}
	}
}

// addStream folds a stream's rows into t.
func (a *Aggregator) addStream(t *groupTable, s *reader.Stream, keep func(int64) bool, st *batchState) (int64, error) {
	var rows int64
	for rec, err := range s.Records() {
		if err != nil {
			return rows, err
		}
		n, err := a.plan.addBatch(t, rec, keep, st)
		rec.Release()
		if err != nil {
			return rows, err
		}
		rows += n
	}
	return rows, nil
}

// BackfillOptions select what a backfill reads and replaces.
type BackfillOptions struct {
	// From and To bound the windows rebuilt by their start: [From, To),
	// widened to whole output partitions (hours or days). Both zero: the
	// whole table.
	From, To time.Time
	// SnapshotID is the source snapshot read. Default: the source's
	// current snapshot for a full backfill; the snapshot the summary
	// table's cursor holds for a ranged one (so that every partition
	// reflects the same source snapshot).
	SnapshotID int64
}

// Backfill computes the spec over the source as of one snapshot (all of
// it, or the windows starting in a range) and replaces the summary
// table's rows — all of them, or the range's partitions — with the
// result, committing the snapshot read as the cursor: following resumes
// after it. It runs the same aggregation as streaming, over a snapshot
// read instead of incremental changes, without merging stored states.
//
// A ranged backfill of a table that has no cursor yet sets the cursor
// too: the table then covers the range as of that snapshot, and every
// window after following.
func (a *Aggregator) Backfill(ctx context.Context, o BackfillOptions) (Result, error) {
	started := a.opts.Clock.Now()
	tbl, err := a.committer.Load(ctx)
	if err != nil {
		return Result{}, err
	}
	base, err := a.cursorOf(tbl)
	if err != nil {
		return Result{}, err
	}
	ranged := !o.From.IsZero() || !o.To.IsZero()
	if ranged && !a.fingerprintOK {
		return Result{}, a.fingerprintError(tbl)
	}
	if ranged && !o.From.IsZero() && !o.To.IsZero() && !o.From.Before(o.To) {
		return Result{}, fmt.Errorf("aggregate %s: backfill from %s is not before to %s", a.spec.Name, o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	unit := a.plan.unit
	from, to := int64(minTime), int64(maxTime)
	if !o.From.IsZero() {
		from = floorDiv(o.From.UnixMicro(), unit) * unit
	}
	if !o.To.IsZero() {
		to = -floorDiv(-o.To.UnixMicro(), unit) * unit
	}

	snap := o.SnapshotID
	switch {
	case ranged && base.found && snap != 0 && snap != base.id:
		return Result{}, fmt.Errorf("aggregate %s: a ranged backfill reads the snapshot the cursor of %s holds (%d), not %d, so that all of its partitions reflect one source snapshot; backfill the whole table to move the cursor",
			a.spec.Name, a.spec.Output, base.id, snap)
	case ranged && base.found:
		snap = base.id
	case snap == 0:
		srcTbl, err := a.src.Load(ctx)
		if err != nil {
			return Result{}, err
		}
		snap = reader.Current(srcTbl)
	}

	var keep func(int64) bool
	var tr *reader.TimeRange
	if ranged {
		keep = func(ws int64) bool { return ws >= from && ws < to }
		tr = &reader.TimeRange{Column: a.spec.Time}
		if from != minTime {
			tr.Start = time.UnixMicro(from).UTC()
		}
		if to != maxTime {
			// Rows up to the end of the last window starting before to.
			tr.End = time.UnixMicro(to - a.plan.slide + a.plan.size).UTC()
		}
	}
	groups := newGroupTable(a.plan)
	var rows int64
	if snap != 0 {
		r, err := reader.New(a.cat, a.spec.Source, a.readerConfig(tr))
		if err != nil {
			return Result{}, err
		}
		stream, err := r.Snapshot(ctx, reader.At{SnapshotID: snap})
		if err != nil {
			return Result{}, fmt.Errorf("aggregate %s: backfill: %w", a.spec.Name, err)
		}
		if groups, rows, err = a.aggregateParallel(stream, keep); err != nil {
			return Result{}, fmt.Errorf("aggregate %s: backfill of %s snapshot %d: %w", a.spec.Name, a.spec.Source, snap, err)
		}
	}
	sc, err := outputSchema(tbl)
	if err != nil {
		return Result{}, err
	}
	recs, _, err := a.plan.build(groups, sc, a.opts.Allocator)
	if err != nil {
		return Result{}, err
	}
	defer releaseAll(recs)
	req := commitReq{
		kind: "backfill", base: base, next: snap, sourceRows: rows, records: recs, started: started,
		filter:         iceberg.AlwaysTrue{},
		setFingerprint: tbl.Properties()[PropFingerprint] != a.fingerprint,
	}
	for _, r := range recs {
		req.groups += int(r.NumRows())
	}
	req.partitions = len(groups.partitions())
	if ranged {
		req.filter = rangeFilter(from, to)
	}
	a.cache.reset()
	info, err := a.commit(ctx, req)
	if err != nil {
		return Result{}, err
	}
	a.log.Info("backfill committed", "source_snapshot", snap, "source_rows", rows, "groups", info.Groups,
		"partitions", info.Partitions, "snapshot", info.SnapshotID, "duration", info.Duration)
	return Result{Cursor: snap, SourceRows: rows, Groups: info.Groups, Commits: 1}, nil
}

const (
	minTime = -1 << 63
	maxTime = 1<<63 - 1
)

// rangeFilter selects window starts in [from, to); minTime and maxTime
// leave a side open.
func rangeFilter(from, to int64) iceberg.BooleanExpression {
	ref := iceberg.Reference(ColWindowStart)
	var parts []iceberg.BooleanExpression
	if from != minTime {
		parts = append(parts, iceberg.GreaterThanEqual(ref, iceberg.Timestamp(from)))
	}
	if to != maxTime {
		parts = append(parts, iceberg.LessThan(ref, iceberg.Timestamp(to)))
	}
	switch len(parts) {
	case 0:
		return iceberg.AlwaysTrue{}
	case 1:
		return parts[0]
	}
	return iceberg.NewAnd(parts[0], parts[1])
}

// aggregateParallel folds a stream into group tables, one per worker
// (Options.Concurrency), and merges them: partial aggregates are
// mergeable, so how batches are split between workers does not change the
// result.
func (a *Aggregator) aggregateParallel(s *reader.Stream, keep func(int64) bool) (*groupTable, int64, error) {
	workers := a.opts.Concurrency
	if workers == 1 {
		t := newGroupTable(a.plan)
		rows, err := a.addStream(t, s, keep, &batchState{})
		return t, rows, err
	}
	recs := make(chan arrow.RecordBatch, workers)
	tables := make([]*groupTable, workers)
	rowsPer := make([]int64, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		tables[w] = newGroupTable(a.plan)
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := &batchState{}
			for rec := range recs {
				if errs[w] == nil {
					n, err := a.plan.addBatch(tables[w], rec, keep, st)
					rowsPer[w] += n
					errs[w] = err
				}
				rec.Release()
			}
		}()
	}
	var readErr error
	for rec, err := range s.Records() {
		if err != nil {
			readErr = err
			break
		}
		recs <- rec
	}
	close(recs)
	wg.Wait()
	if readErr != nil {
		return nil, 0, readErr
	}
	var rows int64
	for w := range workers {
		if errs[w] != nil {
			return nil, 0, errs[w]
		}
		rows += rowsPer[w]
	}
	// Merge the largest table into, so the least is copied.
	slices.SortFunc(tables, func(x, y *groupTable) int { return y.len() - x.len() })
	out := tables[0]
	for _, t := range tables[1:] {
		out.mergeFrom(t)
	}
	return out, rows, nil
}
