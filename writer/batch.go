package writer

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/floe-lake/floe/table"
)

// Batch is rows for one table from one source, with the positions they
// advance. The writer takes ownership of Record (it calls Release).
type Batch struct {
	// Table is the target table, namespace.name, opened with Sink.Open.
	Table string
	// Source is the id of the source the rows came from.
	Source string
	// Record holds the rows; its schema must be the Arrow schema Sink.Open
	// returned for Table. Nil when the batch only advances positions.
	Record arrow.RecordBatch
	// Next are the positions after this batch for each source partition it
	// covers: every record of the partition before Next[p] has been routed
	// to Table or was not meant for it.
	Next table.Positions
	// MaxEventTime is the newest event time in Record, for the freshness
	// metric; zero if unknown.
	MaxEventTime time.Time
}

// Sink is what sources write into. The writer implements it.
type Sink interface {
	// Open registers source as a writer of tbl (creating the table from its
	// spec when missing) and returns the table's committed positions for
	// the source and the Arrow schema batches for it must have. The source
	// must not write records below these positions to tbl: they are
	// already in the table.
	Open(tbl, source string) (table.Positions, *arrow.Schema, error)
	// Write hands a batch to the writer. It blocks while the writer's
	// memory budget is full (back-pressure). An error is terminal for the
	// source's run: the source must stop, and is restarted from the
	// table's positions (ErrFenced means another process took over).
	Write(b Batch) error
}
