// Package source defines what every Floe input is: something with positions
// that turns its input into writer batches and can resume from the
// positions a table holds. One package per input lives below it: gen (a
// deterministic synthetic generator), kafka, mysql.
//
// Decoding and type mapping live in the sources; records that cannot be
// decoded become dead-letter rows carrying their position, raw value and
// the reason. Sources never commit: positions become durable only when the
// writer commits them with the rows.
package source

import (
	"context"

	"github.com/floe-lake/floe/writer"
)

// Source is one input.
type Source interface {
	// ID is the source's id: the key its positions live under in the tables
	// it writes (floe.positions.<id>). Stable across restarts.
	ID() string
	// Run opens its tables on sink, seeks to the positions they return and
	// writes batches until ctx is done (returns ctx.Err()) or a finite input
	// ends (returns nil). Run may be called again after it returned; it
	// then re-opens and re-seeks from the tables.
	Run(ctx context.Context, sink writer.Sink) error
}
