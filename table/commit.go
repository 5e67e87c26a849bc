package table

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
)

// ErrFenced means the committer is a zombie: since its batch started, the
// table's position for one of the batch's partitions moved (another process
// took the partition over and committed). Nothing was committed; the caller
// must drop its buffered rows and re-seek from the table.
var ErrFenced = errors.New("fenced: the table's positions moved since the batch started")

// ErrConflictRetriesExhausted means commits kept conflicting until the
// commit deadline passed. Nothing was committed.
var ErrConflictRetriesExhausted = errors.New("commit conflicts until the deadline")

// IsConflict reports whether err is a clean commit conflict: the catalog
// refused the commit because the table changed, and nothing was committed.
// iceberg-go's SQL catalog reports a failed requirement as a plain error
// ("requirement failed: branch "main" has changed: ...", "... was created
// concurrently"), not as table.ErrCommitFailed; both are recognised.
func IsConflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, icetable.ErrCommitFailed) {
		return true
	}
	msg := strings.ToLower(err.Error())
	if !strings.Contains(msg, "requirement failed") {
		return false
	}
	// table/requirements.go: a ref or id that moved, a branch created or
	// removed by someone else since the transaction read the table.
	return strings.Contains(msg, "has changed") ||
		strings.Contains(msg, "was created concurrently") ||
		strings.Contains(msg, "is missing, expected")
}

// Advance moves one source's positions in a commit.
type Advance struct {
	// Base are the positions the batch started from, for every partition in
	// Next that the table had a position for when the batch started. A
	// partition absent from Base must be absent from the table too.
	Base Positions
	// Next are the positions after the batch's rows.
	Next Positions
}

// Commit is one snapshot Floe asks for.
type Commit struct {
	// Operation names the commit in the summary (floe.operation): ingest,
	// compact, aggregate.
	Operation string
	// Advances maps source id to the positions the commit advances; empty
	// for commits that advance none (compaction), which carry the table's
	// positions forward unchanged.
	Advances map[string]Advance
	// Apply stages the commit's changes on txn, passing props to the
	// snapshot-producing call so they land in the summary. It runs once per
	// attempt, against a freshly loaded table, and must be idempotent.
	Apply func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error
}

// CommitResult says how a commit ended.
type CommitResult struct {
	SnapshotID int64
	CommitID   string
	Attempts   int
	Conflicts  int
	// Recovered is true when an attempt's outcome was unknown and the
	// commit was then found in the table's history.
	Recovered bool
	// Positions is the table's whole position map after the commit.
	Positions PositionMap
}

// CommitterConfig tunes retries. Zero values take the defaults.
type CommitterConfig struct {
	// WriterID goes into every summary as floe.writer-id. Default: "floe".
	WriterID string
	// Timeout bounds one Commit, retries included. Default: 2m.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the jittered wait between attempts.
	// Defaults: 20ms and 2s.
	MinBackoff, MaxBackoff time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c *CommitterConfig) applyDefaults() {
	if c.WriterID == "" {
		c.WriterID = "floe"
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 20 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Committer commits snapshots to one table with Floe's protocol:
//
//   - every attempt loads the table afresh from the catalog (never chaining
//     the returned table, which leaks memory in iceberg-go v0.7.0);
//   - the batch's Base positions are checked against the table (fencing);
//   - the whole position map is copied forward with Next applied, and
//     written with a unique floe.commit-id into the summary;
//   - the commit asserts the branch head it read; a clean conflict is
//     retried with jittered backoff under a deadline;
//   - any other error leaves the outcome unknown: the table is reloaded and
//     the history searched for the commit id before anything is retried.
//
// A Committer is safe for concurrent use; concurrent Commits to one table
// conflict and retry like commits from different processes.
type Committer struct {
	cat   icecat.Catalog
	ident icetable.Identifier
	cfg   CommitterConfig

	fsMu sync.Mutex
	fs   iceio.IO // one IO for every table this committer loads
}

// NewCommitter returns a Committer for the table ident in cat.
func NewCommitter(cat icecat.Catalog, ident icetable.Identifier, cfg CommitterConfig) *Committer {
	cfg.applyDefaults()
	return &Committer{cat: cat, ident: ident, cfg: cfg}
}

// Load loads the table from the catalog. The table shares one IO with
// every other table this Committer loaded: iceberg-go's tables make a new
// IO — for S3, a new client — on every file operation otherwise.
func (c *Committer) Load(ctx context.Context) (*icetable.Table, error) {
	tbl, err := c.cat.LoadTable(ctx, c.ident)
	if err != nil {
		return nil, fmt.Errorf("load table %s: %w", strings.Join(c.ident, "."), err)
	}
	return icetable.New(c.ident, tbl.Metadata(), tbl.MetadataLocation(), c.fsFor(tbl), c.cat), nil
}

// fsFor returns a function giving the committer's shared IO, made from
// tbl's on first use.
func (c *Committer) fsFor(tbl *icetable.Table) icetable.FSysF {
	return func(ctx context.Context) (iceio.IO, error) {
		c.fsMu.Lock()
		defer c.fsMu.Unlock()
		if c.fs == nil {
			// The IO is kept for the committer's lifetime: it must not
			// keep the context of the call that happened to open it
			// first (a commit's, cancelled when the commit returns — on
			// S3 every later commit then failed with context canceled).
			fs, err := tbl.FS(context.WithoutCancel(ctx))
			if err != nil {
				return nil, err
			}
			c.fs = fs
		}
		return c.fs, nil
	}
}

// Positions returns the table's current position map.
func (c *Committer) Positions(ctx context.Context) (PositionMap, error) {
	tbl, err := c.Load(ctx)
	if err != nil {
		return nil, err
	}
	return CurrentPositions(tbl)
}

// Commit commits cm as one snapshot. It returns ErrFenced when the batch's
// base positions no longer match the table, ErrConflictRetriesExhausted when
// conflicts outlast the deadline, and otherwise the error that stopped it;
// in every error case nothing was committed, except that a context
// cancellation during an unknown outcome is reported as such.
func (c *Committer) Commit(ctx context.Context, cm Commit) (CommitResult, error) {
	name := strings.Join(c.ident, ".")
	res := CommitResult{CommitID: uuid.NewString()}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	started := c.cfg.Now()

	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if err := c.sleep(ctx, attempt); err != nil {
				if res.Conflicts > 0 {
					return res, fmt.Errorf("commit to %s after %d conflicts: %w", name, res.Conflicts, ErrConflictRetriesExhausted)
				}
				return res, fmt.Errorf("commit to %s: %w", name, err)
			}
		}
		res.Attempts++
		tbl, err := c.Load(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return res, err
			}
			c.cfg.Logger.Warn("commit: reload failed, retrying", "table", name, "err", err)
			continue
		}
		// An earlier attempt with an unknown outcome may have landed.
		if attempt > 0 {
			if id, ok := findCommit(tbl, res.CommitID, started); ok {
				res.SnapshotID, res.Recovered = id, true
				res.Positions, err = CurrentPositions(tbl)
				return res, err
			}
		}
		cur, err := CurrentPositions(tbl)
		if err != nil {
			return res, fmt.Errorf("commit to %s: %w", name, err)
		}
		next := cur.Clone()
		for src, adv := range cm.Advances {
			if err := checkFence(cur[src], adv.Base, adv.Next); err != nil {
				return res, fmt.Errorf("commit to %s, source %s: %w", name, src, err)
			}
			next[src] = cur[src].Merge(adv.Next)
		}
		props, err := next.summaryProps()
		if err != nil {
			return res, err
		}
		props[PropCommitID] = res.CommitID
		props[PropWriterID] = c.cfg.WriterID
		if cm.Operation != "" {
			props[PropOperation] = cm.Operation
		}

		txn := tbl.NewTransaction()
		// Pin the head we read: with iceberg-go's own retries enabled by a
		// table property, a replay on a newer head would skip our fence.
		if err := txn.AssertRefSnapshotID(icetable.MainBranch); err != nil {
			return res, fmt.Errorf("commit to %s: %w", name, err)
		}
		if err := cm.Apply(ctx, txn, props); err != nil {
			if IsConflict(err) {
				res.Conflicts++
				continue
			}
			return res, fmt.Errorf("stage commit to %s: %w", name, err)
		}
		out, err := txn.Commit(ctx)
		if err == nil {
			if s := out.CurrentSnapshot(); s != nil {
				res.SnapshotID = s.SnapshotID
			}
			res.Positions = next
			return res, nil
		}
		if IsConflict(err) {
			res.Conflicts++
			c.cfg.Logger.Debug("commit conflict, retrying", "table", name, "attempt", res.Attempts, "err", err)
			continue
		}
		// Unknown outcome: the next attempt reloads and looks for our
		// commit id before it stages anything.
		c.cfg.Logger.Warn("commit outcome unknown, checking the table's history", "table", name, "commit_id", res.CommitID, "err", err)
		if ctx.Err() != nil {
			// Look once more with a short, fresh deadline.
			lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			tbl, lerr := c.Load(lctx)
			lcancel()
			if lerr == nil {
				if id, ok := findCommit(tbl, res.CommitID, started); ok {
					res.SnapshotID, res.Recovered = id, true
					res.Positions, err = CurrentPositions(tbl)
					return res, err
				}
			}
			return res, fmt.Errorf("commit to %s: outcome unknown: %w", name, err)
		}
	}
}

// checkFence reports ErrFenced when the table's positions for the batch's
// partitions differ from the positions the batch started from.
func checkFence(table, base, next Positions) error {
	for p := range next {
		got, inTable := table[p]
		want, inBase := base[p]
		if inTable != inBase || got != want {
			return fmt.Errorf("%w: partition %s is at %s in the table, batch started at %s",
				ErrFenced, p, fmtPos(got, inTable), fmtPos(want, inBase))
		}
	}
	return nil
}

func fmtPos(v int64, ok bool) string {
	if !ok {
		return "none"
	}
	return fmt.Sprint(v)
}

// findCommit looks for a snapshot carrying commitID among the current
// snapshot's ancestors committed since the commit started (less a minute
// of clock skew).
func findCommit(tbl *icetable.Table, commitID string, since time.Time) (int64, bool) {
	floor := since.Add(-time.Minute).UnixMilli()
	for s := range CurrentAncestors(tbl.Metadata()) {
		if s.TimestampMs < floor {
			break
		}
		if s.Summary != nil && s.Summary.Properties[PropCommitID] == commitID {
			return s.SnapshotID, true
		}
	}
	return 0, false
}

func (c *Committer) sleep(ctx context.Context, attempt int) error {
	d := c.cfg.MinBackoff << min(attempt-1, 16)
	if d > c.cfg.MaxBackoff || d <= 0 {
		d = c.cfg.MaxBackoff
	}
	// Full jitter in [d/2, d).
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
