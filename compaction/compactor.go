package compaction

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/internal/daemon"
	"github.com/floe-lake/floe/table"
)

// Hooks run at points of a table's rewrite, for tests that crash there. A
// hook's error aborts the table's pass as a crash would: nothing more is
// committed, no further step runs, and the files written so far are left
// to the orphan cleaner. Nil hooks are skipped.
type Hooks struct {
	// AfterRewrite runs after a group's output files are written, before
	// anything of it is committed.
	AfterRewrite func(table string) error
	// BeforeCommit runs right before a compaction commit.
	BeforeCommit func(table string) error
	// AfterCommit runs right after a compaction commit landed.
	AfterCommit func(table string) error
}

// Options are the compactor's collaborators.
type Options struct {
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer receives the compactor's metrics; default: a private
	// registry.
	Registerer prometheus.Registerer
	// Now is the clock: snapshot ages, orphan ages and the orphan
	// schedule are measured against it. Default: time.Now.
	Now func() time.Time
	// WriterID goes into the summary of compaction snapshots as
	// floe.writer-id. Default: "floe-compact".
	WriterID string
	// OnGroup is called once per file group, when its fate is known, from
	// the goroutine that handled the group. Default: none.
	OnGroup func(GroupReport)
	// Hooks are crash points for tests. Default: none.
	Hooks Hooks
	// Board, when set, records the state of every table's job, its
	// errors and its finished passes (daemon.Board), for /status and
	// /readyz. Default: none.
	Board *daemon.Board
	// TestOrphanOlderThan, when set, replaces orphan-older-than without its
	// 1h floor (0 included). For tests only: in production a young
	// threshold deletes the files of commits still in flight. Default: nil.
	TestOrphanOlderThan *time.Duration
}

// GroupReport describes one file group of a pass.
type GroupReport struct {
	Table string
	// Partition is the group's partition as name=value/…, "" when the
	// table is unpartitioned.
	Partition string
	// Index is the group's number in the table's plan, from 1, of Of.
	Index, Of   int
	InputFiles  int
	InputBytes  int64
	OutputFiles int
	OutputBytes int64
	Records     int64
	// Result is ResultCommitted, ResultDropped or ResultFailed.
	Result string
	// Reason says why a group was dropped or failed.
	Reason   string
	Duration time.Duration
}

// TableReport summarises one pass over one table.
type TableReport struct {
	Table string
	// Candidates are the files the planner considered; Groups the groups it
	// planned.
	Candidates, Groups int
	// Committed, Dropped and Failed count groups by result.
	Committed, Dropped, Failed int
	// FilesRewritten and BytesRewritten are the inputs of committed groups;
	// FilesWritten their outputs.
	FilesRewritten, FilesWritten int
	BytesRewritten               int64
	// MaxFilesPerPartition is the most live data files in one partition
	// after the rewrite (as planned, less what the pass replaced).
	MaxFilesPerPartition int
	// Conflicts counts commit attempts retried after a conflict.
	Conflicts          int
	ManifestsRewritten int
	SnapshotsExpired   int
	OrphansRemoved     int
	Duration           time.Duration
}

// PassReport summarises one pass over all tables.
type PassReport struct {
	Tables []TableReport
}

// Compactor keeps tables fast while ingest keeps committing: it rewrites
// small files, merges manifests, expires snapshots and removes orphan
// files, every table on the daemon's interval. It is safe for concurrent
// use, though one Compactor per process is the intended shape.
type Compactor struct {
	cat  icecat.Catalog
	cfg  Config
	opts Options
	log  *slog.Logger
	m    *metrics

	mu          sync.Mutex
	lastOrphans map[string]time.Time // table → last orphan sweep
}

// New returns a Compactor. cfg gets its defaults applied and is validated.
func New(cat icecat.Catalog, cfg Config, opts Options) (*Compactor, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WriterID == "" {
		opts.WriterID = "floe-compact"
	}
	return &Compactor{
		cat: cat, cfg: cfg, opts: opts, log: opts.Logger,
		m:           newMetrics(opts.Registerer),
		lastOrphans: map[string]time.Time{},
	}, nil
}

// RunOnce runs one pass over every table, orphan removal included
// whatever orphan-interval says. The error joins every table's failures,
// and ErrGroupsDropped when the pass dropped file groups.
func (c *Compactor) RunOnce(ctx context.Context) (PassReport, error) {
	rep, err := c.runPass(ctx, true)
	return rep, errors.Join(err, droppedError(rep))
}

func (c *Compactor) runPass(ctx context.Context, once bool) (PassReport, error) {
	names, err := c.tableNames(ctx)
	if err != nil {
		c.m.errors.WithLabelValues("", classify(err)).Inc()
		return PassReport{}, err
	}
	reps := make([]TableReport, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, c.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, name := range names {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			reps[i], errs[i] = c.table(ctx, name, once)
		}()
	}
	wg.Wait()
	var rep PassReport
	for i := range names {
		if reps[i].Table != "" {
			rep.Tables = append(rep.Tables, reps[i])
		}
	}
	return rep, errors.Join(errs...)
}

// Table runs one full pass over one table — manifests, rewrite, expiry,
// orphans — as RunOnce does for each.
func (c *Compactor) Table(ctx context.Context, name string) (TableReport, error) {
	return c.table(ctx, name, true)
}

// table runs the steps in order; a failed step is counted and the next
// ones still run (expiry and orphan removal are worth doing when a rewrite
// failed), unless ctx is done or a hook simulated a crash.
func (c *Compactor) table(ctx context.Context, name string, once bool) (TableReport, error) {
	rep := TableReport{Table: name}
	start := c.opts.Now()
	ident, err := table.ParseIdent(name)
	if err != nil {
		return rep, err
	}
	committer := table.NewCommitter(c.cat, ident, table.CommitterConfig{
		WriterID: c.opts.WriterID, Timeout: c.cfg.CommitTimeout,
		MinBackoff: minCommitBackoff, MaxBackoff: maxCommitBackoff, Logger: c.log, Now: c.opts.Now,
	})
	run := &tableRun{c: c, name: name, committer: committer, rep: &rep}
	steps := []struct {
		name, verb string // the step label of floe_compaction_duration_seconds, and for errors
		on         bool
		fn         func(context.Context) error
	}{
		// Manifests first: a replace commit reads every manifest of the
		// head, so merging them first keeps its attempts short enough to
		// land between ingest commits.
		{"manifests", "merge manifests", c.cfg.manifestsEnabled(), run.rewriteManifests},
		{"rewrite", "rewrite data files", true, run.rewrite},
		{"expire", "expire snapshots", c.cfg.expireEnabled(), run.expire},
		{"orphans", "remove orphan files", c.cfg.orphansEnabled() && (once || c.orphansDue(name)), run.removeOrphans},
	}
	var errs []error
	for _, s := range steps {
		if !s.on {
			continue
		}
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		t0 := c.opts.Now()
		err := s.fn(ctx)
		c.m.duration.WithLabelValues(name, s.name).Observe(c.opts.Now().Sub(t0).Seconds())
		var crash hookError
		if errors.As(err, &crash) {
			errs = append(errs, fmt.Errorf("%s: %w", s.verb, err))
			break
		}
		if err != nil {
			class := classify(err)
			c.m.errors.WithLabelValues(name, class).Inc()
			c.log.Warn("compaction step failed; retrying next pass", "table", name, "step", s.name, "class", class, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", s.verb, err))
		}
	}
	rep.Duration = c.opts.Now().Sub(start)
	c.m.conflicts.WithLabelValues(name).Add(float64(rep.Conflicts))
	if err := errors.Join(errs...); err != nil {
		return rep, fmt.Errorf("compact table %s: %w", name, err)
	}
	return rep, nil
}

// hookError is a hook's error: a simulated crash.
type hookError struct{ err error }

func (e hookError) Error() string { return "hook: " + e.err.Error() }
func (e hookError) Unwrap() error { return e.err }

// callHook runs h, if set, wrapping its error as a crash.
func callHook(h func(string) error, table string) error {
	if h == nil {
		return nil
	}
	if err := h(table); err != nil {
		return hookError{err}
	}
	return nil
}

// orphansDue reports whether the daemon should sweep name for orphans now,
// and records the sweep when it should.
func (c *Compactor) orphansDue(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	if last, ok := c.lastOrphans[name]; ok && now.Sub(last) < c.cfg.OrphanInterval {
		return false
	}
	c.lastOrphans[name] = now
	return true
}

// Tables lists the tables a pass covers: compaction.tables, or every table
// in the catalog, nested namespaces included.
func (c *Compactor) Tables(ctx context.Context) ([]string, error) {
	return c.tableNames(ctx)
}

func (c *Compactor) tableNames(ctx context.Context) ([]string, error) {
	if len(c.cfg.Tables) > 0 {
		return slices.Clone(c.cfg.Tables), nil
	}
	seen := map[string]bool{}
	var namespaces []icetable.Identifier
	var walk func(parent icetable.Identifier) error
	walk = func(parent icetable.Identifier) error {
		list, err := c.cat.ListNamespaces(ctx, parent)
		if err != nil {
			return fmt.Errorf("list namespaces under %q: %w", strings.Join(parent, "."), err)
		}
		for _, ns := range list {
			key := strings.Join(ns, "\x00")
			if seen[key] {
				continue
			}
			seen[key] = true
			namespaces = append(namespaces, ns)
			if err := walk(ns); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(nil); err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, ns := range namespaces {
		for ident, err := range c.cat.ListTables(ctx, ns) {
			if err != nil {
				return nil, fmt.Errorf("list tables in %s: %w", strings.Join(ns, "."), err)
			}
			names[strings.Join(ident, ".")] = true
		}
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// Error classes, the class label of floe_compaction_errors_total. They
// tell an operator where to look. The daemon retries a table after a
// backoff on every class but config and corrupt, which need a person: on
// those it halts the table's job (see Run).
const (
	ClassCanceled = "canceled" // the pass was stopped (shutdown)
	ClassConflict = "conflict" // commits kept conflicting with other writers until commit-timeout
	ClassTimeout  = "timeout"  // a deadline passed: commit-timeout while staging, or slow storage
	ClassNotFound = "not-found"
	ClassConfig   = "config"  // a table property or option is invalid; needs a person (halts)
	ClassCorrupt  = "corrupt" // the table's metadata cannot be parsed, or its files violate an invariant; needs a person (halts)
	ClassStorage  = "storage" // object storage or the network failed
	ClassOther    = "other"
)

// errConfig marks errors in a table's settings.
var errConfig = errors.New("invalid compaction settings")

// errInvariant marks a table whose files break an invariant a rewrite
// relies on (a group whose input files hold another number of rows than
// their metadata says).
var errInvariant = errors.New("invariant violated")

// Classify names the class of a compaction error (see the Class
// constants).
func Classify(err error) string { return classify(err) }

func classify(err error) string {
	var netErr net.Error
	var pathErr *fs.PathError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.Is(err, table.ErrConflictRetriesExhausted) || table.IsConflict(err):
		return ClassConflict
	case errors.Is(err, icecat.ErrNoSuchTable) || errors.Is(err, icecat.ErrNoSuchNamespace):
		return ClassNotFound
	case errors.Is(err, errConfig):
		return ClassConfig
	case corrupt(err):
		return ClassCorrupt
	case errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	case errors.As(err, &netErr) || errors.As(err, &pathErr):
		return ClassStorage
	}
	return ClassOther
}

// corrupt reports whether err says the table itself is broken: metadata
// that does not parse, or files that break an invariant. Manifests that do
// not decode are not recognised (their decoder's errors are not typed) and
// are retried.
func corrupt(err error) bool {
	return errors.Is(err, errInvariant) ||
		errors.Is(err, icetable.ErrInvalidMetadata) ||
		errors.Is(err, icetable.ErrInvalidMetadataFormatVersion) ||
		errors.Is(err, icetable.ErrPartitionSpecNotFound)
}

// halts reports whether a table's error needs a person: the daemon stops
// compacting the table until it restarts.
func halts(err error) bool {
	return errors.Is(err, errConfig) || corrupt(err)
}
