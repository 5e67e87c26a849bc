package writer

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/floe-lake/floe/table"
)

// Sink is everything a source may do with the tables it writes. A source
// gets one sink per run (source.Supervise makes a fresh *Writer for every
// run); *Writer implements it.
//
// Concurrency: every method may be called from several goroutines at
// once, except that a source must not Write batches for partitions while
// a Resync of them runs.
//
// Failure: an error from Write, Commit, Resync or OpenKeyed (other than a
// bad argument) means the sink has failed: the run must end and return it.
// The supervisor then discards the sink, dropping everything it had not
// committed, and starts the next run on a fresh one, which re-reads the
// positions from the tables. Positions and rows are only ever committed
// together, so this neither loses nor repeats a row.
//
// Dead letters are rows like any other: a source opens its dead-letter
// table (table.DeadLetterSpec) with Open, builds its rows with
// table.DeadLetterBuilder and writes them with their positions.
type Sink interface {
	// Open registers source as a writer of tbl (the table must exist:
	// table.Ensure creates it) and returns the table's committed positions
	// for the source and the Arrow schema batches for it must have. The
	// source must not write records below these positions to tbl: they
	// are already in the table. Idempotent: opening a table again returns
	// the positions committed so far.
	Open(tbl, source string) (table.Positions, *arrow.Schema, error)
	// Write hands a batch for a table opened with Open to the sink, which
	// takes ownership of b.Record. It blocks while the memory budget is
	// full (back-pressure). Not idempotent: every batch is appended once.
	// An error is terminal for the run (table.ErrFenced means another
	// process took the table's partitions over).
	Write(b Batch) error
	// OpenKeyed opens spec's table for row deltas (upserts and deletes by
	// key) by source, creating it from spec when it does not exist. An
	// existing table is opened as it is: its schema may differ from
	// spec's. Every call returns a new KeyedTable with its own key index;
	// the KeyedTable commits in the background and is closed (commit) or
	// aborted by the source at the end of its run.
	OpenKeyed(ctx context.Context, spec table.Spec, source string, opts KeyedOptions) (*KeyedTable, error)
	// Resync commits what tbl (opened with Open) buffers, then reloads
	// source's positions for partitions from the table and makes them the
	// positions the next batches start from. A source calls it when it is
	// (re)assigned partitions that another process may have committed
	// meanwhile (a Kafka rebalance), before it seeks to the returned
	// positions. Repeating it is harmless.
	Resync(ctx context.Context, tbl, source string, partitions []string) (table.Positions, error)
	// Commit flushes and commits everything buffered now, one snapshot per
	// table with data or moved positions. It blocks until done; with
	// nothing buffered it commits nothing. A source calls it to make rows
	// durable before it moves on (the MySQL source commits its dead
	// letters before any table moves past them).
	Commit(ctx context.Context) error
	// ObserveCommits registers fn to be called after every successful
	// commit of a table through this sink — appended or keyed, including
	// the final commit after the run ended — with the table's cumulative
	// positions of every source. fn may be called from several goroutines
	// at once and must not block. Every call adds an observer: register
	// once per sink.
	ObserveCommits(fn func(CommitInfo))
}

var _ Sink = (*Writer)(nil)

// ObserveCommits implements Sink.
func (w *Writer) ObserveCommits(fn func(CommitInfo)) {
	if fn == nil {
		return
	}
	w.obsMu.Lock()
	defer w.obsMu.Unlock()
	w.observers = append(w.observers, fn)
}

// notifyCommit calls Options.OnCommit and the observers registered with
// ObserveCommits.
func (w *Writer) notifyCommit(user func(CommitInfo), ci CommitInfo) {
	if user != nil {
		user(ci)
	}
	w.obsMu.Lock()
	obs := w.observers
	w.obsMu.Unlock()
	for _, fn := range obs {
		fn(ci)
	}
}
