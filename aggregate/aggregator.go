package aggregate

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"time"

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
	// viaReader makes backfills read through the reader, never directly
	// (tests compare the two); lastDirect records whether the last
	// backfill read the files directly, lastPqgo whether the last commit
	// wrote its files with internal/pqgo.
	viaReader, lastDirect, lastPqgo bool
}

// New binds spec to its source table and creates the summary table when
// it is missing (table.Ensure of the derived spec, which also adds new
// measure columns to an existing one). It fails when the source has
// row-level deletes in its history and the spec has measures that cannot
// retract them.
func New(ctx context.Context, cat icecat.Catalog, spec Spec, opts Options) (*Aggregator, error) {
	if err := spec.Validate(); err != nil {
		return nil, permanent(err)
	}
	opts.applyDefaults()
	if err := opts.validate(); err != nil {
		return nil, permanent(err)
	}
	filter, err := reader.ParseFilter(spec.Filter)
	if err != nil {
		return nil, permanent(fmt.Errorf("aggregate %s: filter: %w", spec.Name, err))
	}
	srcIdent, _ := table.ParseIdent(spec.Source)
	srcTbl, err := cat.LoadTable(ctx, srcIdent)
	if err != nil {
		return nil, fmt.Errorf("load source table %s: %w", spec.Source, err)
	}
	p, err := bind(spec, srcTbl.Schema())
	if err != nil {
		return nil, permanent(err)
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
	for s := range table.CurrentAncestors(tbl.Metadata()) {
		if s.Summary != nil {
			switch s.Summary.Operation {
			case icetable.OpOverwrite, icetable.OpDelete:
				return s.SnapshotID, s.Summary.Operation, true
			}
		}
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
