package reader

import "errors"

// Sentinel errors, matchable with errors.Is.
var (
	// ErrCursorExpired means the starting snapshot (a consumer's cursor) is
	// older than the oldest snapshot the table retains, so the changes after
	// it can no longer be read. Restart from the current snapshot, or
	// backfill the table as of a snapshot and follow from that snapshot.
	ErrCursorExpired = errors.New("cursor expired")
	// ErrNotAppendOnly means an append read met a snapshot that can remove
	// rows (overwrite or delete). Read with ModeChangelog instead.
	ErrNotAppendOnly = errors.New("snapshot is not append-only")
	// ErrNotAncestor means the starting snapshot is not in the ending
	// snapshot's history (the table was rolled back, or the id belongs to
	// another branch or table).
	ErrNotAncestor = errors.New("snapshot is not an ancestor")
	// ErrSnapshotNotFound means a snapshot id or time names no snapshot of
	// the table.
	ErrSnapshotNotFound = errors.New("snapshot not found")
	// ErrInvalidFilter means a filter expression could not be parsed.
	ErrInvalidFilter = errors.New("invalid filter")
	// ErrStreamConsumed is returned by a Stream's records when they are
	// iterated a second time.
	ErrStreamConsumed = errors.New("stream already consumed")
)
