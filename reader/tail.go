package reader

import (
	"context"
	"errors"
	"iter"

	icetable "github.com/apache/iceberg-go/table"
)

// Tail follows the table from snapshot from (exclusive; 0 means from the
// table's first snapshot): it yields each snapshot committed after it, in
// commit order along the current snapshot's history, one Change per
// snapshot (replace snapshots too, with no rows, so a consumer's cursor
// moves past compactions). When it has caught up it polls the catalog every
// Config.PollInterval.
//
// A consumer reads each Change's Records, makes its output durable, and
// then stores Change.Snapshot.ID as its cursor; after a restart it resumes
// with Tail(ctx, cursor). A Change must be consumed before the next
// iteration step. Failures to load the table are logged and retried at the
// next poll; any other error (ErrCursorExpired, ErrNotAppendOnly,
// ErrNotAncestor, a failed plan) is yielded and ends the iteration. The
// iteration ends without error when ctx is cancelled.
func (r *Reader) Tail(ctx context.Context, from int64) iter.Seq2[*Change, error] {
	return func(yield func(*Change, error) bool) {
		cursor := from
		var ordinal int32
		for {
			if ctx.Err() != nil {
				return
			}
			tbl, err := r.Load(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				r.cfg.Logger.Warn("tail: loading the table failed; retrying at the next poll", "table", r.name, "err", err)
			} else if cur := Current(tbl); cur != 0 && cur != cursor {
				snaps, err := snapshotsBetween(r.name, tbl.Metadata(), cursor, cur)
				if err != nil {
					yield(nil, err)
					return
				}
				for i := range snaps {
					ch, err := r.change(ctx, tbl, &snaps[i], ordinal)
					if err != nil {
						if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
							return
						}
						yield(nil, err)
						return
					}
					if !yield(ch, nil) {
						return
					}
					cursor = snaps[i].SnapshotID
					ordinal++
				}
				// Look again at once: more may have been committed.
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-r.cfg.Clock.After(r.cfg.PollInterval):
			}
		}
	}
}

// change plans one snapshot's changes.
func (r *Reader) change(ctx context.Context, tbl *icetable.Table, s *icetable.Snapshot, ordinal int32) (*Change, error) {
	units, err := r.planSnapshot(ctx, tbl, s, ordinal)
	if err != nil {
		return nil, err
	}
	st, err := r.stream(ctx, tbl, []icetable.Snapshot{*s}, units)
	if err != nil {
		return nil, err
	}
	return &Change{Snapshot: infoOf(s), Stream: st}, nil
}
