package reader

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	icetable "github.com/apache/iceberg-go/table"
)

// StartKind says how a Start names the point a read of changes begins
// after.
type StartKind int

const (
	// StartNone gives no start: the read is of the table as of a snapshot
	// (an At) instead of a range of changes.
	StartNone StartKind = iota
	// StartAfter starts after Start.SnapshotID (exclusive); 0 reads from
	// the table's first snapshot on.
	StartAfter
	// StartCurrent starts after the table's current snapshot: only what is
	// committed next.
	StartCurrent
	// StartSince starts after the newest snapshot committed Start.Since ago
	// or earlier (SnapshotBefore), on Config.Clock.
	StartSince
)

// Start says where a read of changes (Read, Follow) begins.
type Start struct {
	Kind StartKind
	// SnapshotID for StartAfter.
	SnapshotID int64
	// Since for StartSince; positive.
	Since time.Duration
}

// ParseStartSnapshot parses a start given as a snapshot: an id (after that
// snapshot), "earliest" (from the table's first snapshot on) or "current"
// ("latest": after the current snapshot). An empty string is StartNone.
func ParseStartSnapshot(s string) (Start, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "":
		return Start{}, nil
	case "earliest":
		return Start{Kind: StartAfter}, nil
	case "current", "latest":
		return Start{Kind: StartCurrent}, nil
	default:
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return Start{}, fmt.Errorf("%q is not a snapshot id, earliest or current", s)
		}
		return Start{Kind: StartAfter, SnapshotID: id}, nil
	}
}

// StartIn resolves s on a loaded table to the snapshot the changes come
// after; ok is false for StartNone. A StartSince that reaches back beyond
// the table's retained history starts at its oldest retained snapshot, with
// a warning on Config.Logger.
func (r *Reader) StartIn(tbl *icetable.Table, s Start) (from int64, ok bool) {
	switch s.Kind {
	case StartCurrent:
		return Current(tbl), true
	case StartAfter:
		return s.SnapshotID, true
	case StartSince:
		id, complete := SnapshotBefore(tbl, r.cfg.Clock.Now().Add(-s.Since))
		if !complete {
			r.cfg.Logger.Warn("the table's history does not reach back that far: reading from its oldest retained snapshot",
				"table", r.name, "since", s.Since)
		}
		return id, true
	}
	return 0, false
}

// Read reads once, as of the table's current metadata: the changes after
// start up to snapshot to (inclusive; 0: the current snapshot), or, when
// start is StartNone and to is 0, the whole table as of at.
func (r *Reader) Read(ctx context.Context, start Start, to int64, at At) (*Stream, error) {
	tbl, err := r.Load(ctx)
	if err != nil {
		return nil, err
	}
	if from, ok := r.StartIn(tbl, start); ok || to != 0 {
		return r.ChangesIn(ctx, tbl, from, to)
	}
	return r.SnapshotIn(ctx, tbl, at)
}

// Progress is told how far the writing of a Stream has come.
type Progress interface {
	// Add reports the rows written so far.
	Add(rows int64)
	// Done reports the end of the stream: ok is false when writing failed.
	Done(ok bool)
}

// Encode writes every batch of the stream with enc and returns the rows
// written; p, when not nil, is told the rows written after each batch (Done
// is the caller's). It neither flushes nor closes enc.
func (s *Stream) Encode(enc Encoder, p Progress) (int64, error) {
	var rows int64
	for rec, err := range s.Records() {
		if err != nil {
			return rows, err
		}
		err := enc.Write(rec)
		rows += rec.NumRows()
		rec.Release()
		if err != nil {
			return rows, err
		}
		if p != nil {
			p.Add(rows)
		}
	}
	return rows, nil
}
