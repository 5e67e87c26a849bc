package table

import (
	"iter"
	"slices"
	"strconv"

	icetable "github.com/apache/iceberg-go/table"
)

// Snapshot history: every walk of a table's snapshot ancestry (the newest
// Floe snapshot carrying positions or a commit id, the snapshots between two
// ids) goes through these helpers, so they all treat an expired parent and
// malformed metadata alike.

// Ancestors yields the snapshot fromID and then its ancestors, newest
// first, following parent ids through meta. It stops after a snapshot
// without a parent, before a parent meta no longer holds (expired), and
// before a snapshot it already yielded (a cycle in malformed metadata). It
// yields nothing when meta does not hold fromID.
//
// The snapshots are meta's copies: a caller may keep them. To tell a root
// from an expired parent, look at the last snapshot's ParentSnapshotID: nil
// means the walk reached the table's first snapshot.
func Ancestors(meta icetable.Metadata, fromID int64) iter.Seq[*icetable.Snapshot] {
	return func(yield func(*icetable.Snapshot) bool) {
		walk(meta, meta.SnapshotByID(fromID), yield)
	}
}

// CurrentAncestors is Ancestors from meta's current snapshot: the table's
// current history, newest first. It yields nothing for a table without
// snapshots.
func CurrentAncestors(meta icetable.Metadata) iter.Seq[*icetable.Snapshot] {
	return func(yield func(*icetable.Snapshot) bool) {
		walk(meta, meta.CurrentSnapshot(), yield)
	}
}

func walk(meta icetable.Metadata, s *icetable.Snapshot, yield func(*icetable.Snapshot) bool) {
	var seen map[int64]bool
	for s != nil {
		if !yield(s) || s.ParentSnapshotID == nil {
			return
		}
		if seen == nil {
			seen = map[int64]bool{}
		}
		seen[s.SnapshotID] = true
		if seen[*s.ParentSnapshotID] {
			return
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
}

// AncestorsBetween returns the snapshots in toID's ancestry after fromID
// (exclusive) up to toID (inclusive), oldest first; fromID 0 means from
// the table's first snapshot, and fromID == toID returns none. fromID
// itself need not be in meta any more: its child's parent id is enough. It
// reads only metadata.
//
// complete is false when the walk ended before it reached fromID: meta
// does not hold toID (the result is empty); fromID is not an ancestor of
// toID (the first snapshot returned has no parent); or the history between
// them has expired (the first snapshot returned is the oldest meta retains
// and its parent is gone, or the parent ids form a cycle).
func AncestorsBetween(meta icetable.Metadata, fromID, toID int64) (snaps []icetable.Snapshot, complete bool) {
	if fromID == toID {
		return nil, meta.SnapshotByID(toID) != nil
	}
	for s := range Ancestors(meta, toID) {
		snaps = append(snaps, *s)
		if s.ParentSnapshotID == nil {
			complete = fromID == 0
			break
		}
		// fromID itself may have expired: its child's parent id is enough.
		if *s.ParentSnapshotID == fromID {
			complete = true
			break
		}
	}
	slices.Reverse(snaps)
	return snaps, complete
}

// SummaryInt reads an integer from snap's summary, such as Iceberg's
// "total-records" or "added-delete-files". ok is false when snap has no
// summary, the summary lacks key, or its value is not an integer.
func SummaryInt(snap *icetable.Snapshot, key string) (n int64, ok bool) {
	if snap == nil || snap.Summary == nil {
		return 0, false
	}
	v, ok := snap.Summary.Properties[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}
