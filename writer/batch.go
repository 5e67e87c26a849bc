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
