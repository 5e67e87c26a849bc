package compaction

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/table"
)

// Commit timing. A compaction commit's attempt (reading the head's
// manifests, rewriting the ones holding inputs) takes far longer than an
// ingest append, and every attempt is staged on a freshly loaded table.
// Started at a random moment between two ingest commits, an attempt of
// duration D lands with probability about (G-D)/G when ingest commits every
// G; started right after an ingest commit, it lands whenever D < G. And
// while it keeps losing, each ingest commit adds a manifest that makes the
// next attempt longer.
//
// So after an attempt lost, a compaction commit waits for its window: it
// polls the table (the committer's reload, with short backoffs) and stages
// again only when the head moves between two polls (an ingest commit just
// landed: the whole gap to the next one is ahead), or when the head has not
// moved for three times as long as staging took (the table is quiet). A
// poll that declines costs a reload, not a staging. Durations here are
// wall-clock time, whatever clock the compactor was given.
const (
	minCommitBackoff = 5 * time.Millisecond
	maxCommitBackoff = 25 * time.Millisecond
	minQuiet         = 100 * time.Millisecond
)

// errNoWindow declines an attempt; the committer treats it as a conflict
// (nothing was committed) and reloads after a short backoff.
var errNoWindow = fmt.Errorf("%w: waiting for the table to change or quiet down", icetable.ErrCommitFailed)

// commitWindow times the attempts of one commit. Apply runs sequentially,
// so it needs no lock.
type commitWindow struct {
	log        *slog.Logger
	attempts   int           // attempts staged
	polls      int           // attempts declined
	staged     bool          // the last Apply staged (and then lost)
	lastHead   int64         // head seen by the last Apply
	lastChange time.Time     // when lastHead was first seen
	stageTime  time.Duration // how long the last staging took
}

func (w *commitWindow) wrap(apply func(context.Context, *icetable.Transaction, iceberg.Properties) error) func(context.Context, *icetable.Transaction, iceberg.Properties) error {
	return func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
		staged, err := txn.StagedTable()
		if err != nil {
			return fmt.Errorf("read the fresh table: %w", err)
		}
		head := int64(-1)
		if s := staged.CurrentSnapshot(); s != nil {
			head = s.SnapshotID
		}
		now := time.Now()
		switch {
		case w.attempts == 0:
			// The first attempt goes at once.
		case w.staged:
			// The last attempt lost: the head moved at some moment during
			// it, maybe long ago. Wait for a move seen between two polls.
			w.staged, w.lastHead, w.lastChange = false, head, now
			w.polls++
			return errNoWindow
		case head != w.lastHead:
			// Moved since the last poll.
		case now.Sub(w.lastChange) >= max(3*w.stageTime, minQuiet):
			// Quiet.
		default:
			w.polls++
			return errNoWindow
		}
		w.attempts++
		w.staged, w.lastHead, w.lastChange = true, head, now
		err = apply(ctx, txn, props)
		w.stageTime = time.Since(now)
		w.log.Debug("compaction commit attempt staged", "took", w.stageTime, "attempt", w.attempts, "polls", w.polls, "err", err)
		return err
	}
}

// commit commits cm through the table's committer, in commit windows.
// Conflicts counts real conflicts, not declined polls.
func (r *tableRun) commitInWindow(ctx context.Context, cm table.Commit) (table.CommitResult, error) {
	w := &commitWindow{log: r.c.log}
	cm.Apply = w.wrap(cm.Apply)
	res, err := r.committer.Commit(ctx, cm)
	res.Conflicts = max(0, res.Conflicts-w.polls)
	r.mu.Lock()
	r.rep.Conflicts += res.Conflicts
	r.mu.Unlock()
	return res, err
}
