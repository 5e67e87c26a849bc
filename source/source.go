// Package source defines what every Floe input is: something with positions
// that turns its input into writer batches and can resume from the
// positions a table holds; the registry of source kinds a config names by
// type; and Supervise, which runs sources into a writer and restarts them
// from the tables' positions after a failure. One package per input lives
// below it: gen (a deterministic synthetic generator), kafka, mysql; the
// package all lists them.
//
// Decoding and type mapping live in the sources; records that cannot be
// decoded become dead-letter rows (table.DeadLetterBuilder) carrying their
// position, raw value and the reason. Sources never commit by themselves:
// positions become durable only when the writer commits them with the rows.
package source

import (
	"context"
	"errors"

	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// Source is one input. Its methods are called from one goroutine at a
// time, except that Close may be called while Run runs to make it return.
type Source interface {
	// ID is the source's id: the key its positions live under in the tables
	// it writes (floe.positions.<id>). Stable across restarts.
	ID() string
	// Specs returns the specs of the tables the source writes that the
	// declared specs (the config's tables:) do not already cover: the
	// tables it creates when they are not declared (a dead-letter table),
	// and declared tables it changes, returned with the change (the Kafka
	// source adds its metadata columns), to be applied after the declared
	// spec. It fails when a table the source needs must be declared. It is
	// called before Run; the caller ensures the tables (table.Ensure).
	Specs(declared []table.Spec) ([]table.Spec, error)
	// Run opens its tables on sink, seeks to the positions they return and
	// writes batches until ctx is done (returns ctx.Err()) or a finite input
	// ends (returns nil). Run may be called again after it returned, with a
	// fresh sink; it then re-opens and re-seeks from the tables. An error
	// wrapped with Restart ends the run routinely (a Kafka rebalance).
	Run(ctx context.Context, sink writer.Sink) error
	// Health returns nil while the source reaches its input, or what it
	// has been unable to do for a while as it keeps retrying (brokers
	// unreachable, a topic missing): for a daemon's readiness. Safe to
	// call at any time, concurrently with Run.
	Health() error
	// Close releases what the source holds across runs (the Kafka source
	// leaves its group). Call it after the last Run returned and its sink
	// committed. Idempotent; a no-op for sources that hold nothing.
	Close() error
}

// ErrRestart classifies the error of a run that ended routinely and should
// simply start over from the tables' positions — not a failure, such as a
// Kafka group rebalance. Match it with errors.Is; make one with Restart.
var ErrRestart = errors.New("routine restart")

// Restart returns err classified as a routine restart: errors.Is matches
// both ErrRestart and err, and the message is err's.
func Restart(err error) error {
	if err == nil {
		return nil
	}
	return &restartError{err}
}

type restartError struct{ err error }

func (e *restartError) Error() string   { return e.err.Error() }
func (e *restartError) Unwrap() []error { return []error{e.err, ErrRestart} }
