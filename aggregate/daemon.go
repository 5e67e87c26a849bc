package aggregate

import (
	"context"
	"errors"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/internal/daemon"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// permanent marks an error of the spec, or of the tables it names, that
// retrying cannot fix.
func permanent(err error) error { return daemon.Permanent(err) }

// IsPermanent reports whether err needs a person rather than a retry: an
// invalid spec or filter; a source column the spec names that is missing
// or of another type; measures that cannot retract the source's deletes
// (ErrNotRetractable); an output table that holds another spec's states,
// whose schema the spec cannot evolve (table.ErrIncompatibleSchema), or
// whose stored states do not decode; a group with more deletes than
// inserts; a cursor the source no longer retains (reader.ErrCursorExpired)
// or that is not in its history (reader.ErrNotAncestor). Everything else —
// a catalog or store that does not answer, a commit that kept conflicting
// until its deadline, a timeout — may pass, and is worth retrying.
func IsPermanent(err error) bool {
	return daemon.IsPermanent(err) ||
		errors.Is(err, ErrNotRetractable) ||
		errors.Is(err, errBadState) || errors.Is(err, errBadSet) || errors.Is(err, errBadHLL) ||
		errors.Is(err, table.ErrIncompatibleSchema) ||
		errors.Is(err, reader.ErrInvalidFilter) ||
		errors.Is(err, reader.ErrCursorExpired) ||
		errors.Is(err, reader.ErrNotAncestor)
}

// FollowJob is Follow as a job for an internal/daemon runner, named
// "aggregate/<spec name>". Every start binds the spec anew (New: the
// source's schema, the output table) and follows from the cursor the
// output holds, so a restart after any failure resumes exactly where the
// last commit left off. An error for which IsPermanent holds halts the
// job (daemon.Halt); any other is retried by the runner after its backoff.
// A fenced commit (another writer moved the cursor) never reaches the
// runner: Follow resumes from the table by itself.
func FollowJob(cat icecat.Catalog, spec Spec, opts Options) daemon.Job {
	return daemon.HaltOn("aggregate/"+spec.Name, IsPermanent, func(ctx context.Context) error {
		a, err := New(ctx, cat, spec, opts)
		if err != nil {
			return err
		}
		return a.Follow(ctx)
	})
}
