package transform

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
// invalid spec or SQL; a table that does not exist; a dimension without a
// key or joined on columns that do not cover it (ErrNotKeyed); an output
// whose schema the select list cannot evolve (table.ErrIncompatibleSchema);
// a source that deleted or updated rows (ErrSourceDeletes); a dimension
// whose history at a fact's time expired; a cursor the source no longer
// retains (reader.ErrCursorExpired) or that is not in its history
// (reader.ErrNotAncestor). Everything else — a catalog or store that does
// not answer, a commit that kept conflicting until its deadline, a source
// schema that changed under a running transform (a restart binds it anew)
// — may pass, and is worth retrying.
func IsPermanent(err error) bool {
	return daemon.IsPermanent(err) ||
		errors.Is(err, ErrSourceDeletes) ||
		errors.Is(err, ErrNotKeyed) ||
		errors.Is(err, ErrUnsupported) ||
		errors.Is(err, table.ErrIncompatibleSchema) ||
		errors.Is(err, reader.ErrCursorExpired) ||
		errors.Is(err, reader.ErrNotAncestor)
}

// FollowJob is Follow as a job for an internal/daemon runner, named
// "transform/<spec name>". Every start binds the spec anew (New: the
// tables' schemas, the output table) and follows from the cursor the
// output holds, so a restart after any failure resumes exactly where the
// last commit left off. An error for which IsPermanent holds halts the
// job (daemon.Halt); any other is retried by the runner after its backoff.
// A fenced commit never reaches the runner: Follow resumes from the table
// by itself.
func FollowJob(cat icecat.Catalog, spec Spec, opts Options) daemon.Job {
	return daemon.HaltOn("transform/"+spec.name(), IsPermanent, func(ctx context.Context) error {
		t, err := New(ctx, cat, spec, opts)
		if err != nil {
			return err
		}
		defer t.Close()
		return t.Follow(ctx)
	})
}
