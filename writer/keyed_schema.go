package writer

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/table"
)

// SchemaChangeError is returned by AlterSchema when the change cannot be
// applied to the table (e.g. dropping an identifier column). Nothing was
// committed and the KeyedTable remains usable.
type SchemaChangeError struct{ Err error }

func (e *SchemaChangeError) Error() string { return "schema change: " + e.Err.Error() }
func (e *SchemaChangeError) Unwrap() error { return e.Err }

// PropHalted is the table property a keyed source sets to stop following a
// table it cannot follow (e.g. an unsupported DDL), with the reason.
const PropHalted = "floe.halted"

// Halted returns the reason the table was halted (PropHalted), or "".
func (k *KeyedTable) Halted() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.tbl.Properties()[PropHalted]
}

// AlterSchema commits everything applied so far, then applies change to
// the table's schema in a snapshot that moves the positions to next (an
// empty append): the schema change and the positions past the statement
// that caused it land together, exactly once. A change the table cannot
// take returns a *SchemaChangeError, with nothing committed. Afterwards
// Schema returns the new Arrow schema.
func (k *KeyedTable) AlterSchema(ctx context.Context, next table.Positions, change func(*icetable.UpdateSchema)) error {
	if err := k.Commit(ctx); err != nil {
		return err
	}
	k.io.Lock()
	defer k.io.Unlock()
	if err := k.flushLocked(ctx); err != nil {
		return err
	}
	if len(k.staged) > 0 || len(k.stagedDels) > 0 {
		return fmt.Errorf("alter schema of %s: rows were applied without positions", k.name)
	}
	k.mu.Lock()
	before := k.pending.Clone()
	if k.pending == nil {
		k.pending = table.Positions{}
	}
	maps.Copy(k.pending, next)
	k.stagedPos = k.pending.Clone()
	k.mu.Unlock()
	err := k.commitLocked(ctx, "schema", func(txn *icetable.Transaction) error {
		var opts []icetable.UpdateSchemaOption
		if nm := k.tbl.NameMapping(); nm != nil {
			opts = append(opts, icetable.WithNameMapping(nm))
		}
		us := txn.UpdateSchema(true, false, opts...)
		change(us)
		if err := us.Commit(); err != nil {
			return &SchemaChangeError{Err: err}
		}
		return keepsPartitionSources(txn)
	})
	if err != nil {
		var sce *SchemaChangeError
		if errors.As(err, &sce) {
			// Nothing committed: the positions stay before the statement.
			k.mu.Lock()
			k.pending, k.stagedPos = before, before.Clone()
			k.mu.Unlock()
		}
		return err
	}
	return k.reload(ctx)
}

// keepsPartitionSources fails with a SchemaChangeError when the schema
// staged on txn lost a source column of the table's partition spec (as
// Iceberg's Java implementation refuses to drop one; iceberg-go v0.7.0
// lets it go, and the table could no longer be partitioned).
func keepsPartitionSources(txn *icetable.Transaction) error {
	st, err := txn.StagedTable()
	if err != nil {
		return err
	}
	sc := st.Schema()
	spec := st.Spec()
	for _, pf := range spec.Fields() {
		if _, ok := sc.FindFieldByID(pf.SourceID()); !ok {
			return &SchemaChangeError{Err: fmt.Errorf("partition field %s: its source column (field %d) cannot be dropped while the table is partitioned by it", pf.Name, pf.SourceID())}
		}
	}
	return nil
}

// EnsureSchema commits everything applied so far and evolves the table's
// schema towards spec as table.Ensure does (new optional columns, allowed
// type promotions), without a snapshot. For a source about to (re)load a
// table from scratch.
func (k *KeyedTable) EnsureSchema(ctx context.Context, spec table.Spec) error {
	if err := k.Commit(ctx); err != nil {
		return err
	}
	k.io.Lock()
	defer k.io.Unlock()
	if _, err := table.Ensure(ctx, k.w.cat, spec); err != nil {
		return err
	}
	return k.reload(ctx)
}

// reload loads the table and adopts its schema; k.io must be held and the
// buffer empty.
func (k *KeyedTable) reload(ctx context.Context) error {
	tbl, err := k.committer.Load(ctx)
	if err != nil {
		k.fail(err)
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.recs) > 0 {
		return fmt.Errorf("reload %s: rows are buffered", k.name)
	}
	return k.load(tbl)
}

// Halt commits everything applied so far and sets PropHalted on the table
// with reason: its source stops following it, and the table stays at the
// positions committed, until someone removes the property (after dropping
// or repairing the table).
func (k *KeyedTable) Halt(ctx context.Context, reason string) error {
	if err := k.Commit(ctx); err != nil {
		return err
	}
	k.io.Lock()
	defer k.io.Unlock()
	ident, _ := table.ParseIdent(k.name)
	for attempt := 1; ; attempt++ {
		tbl, err := k.committer.Load(ctx)
		if err != nil {
			return err
		}
		txn := tbl.NewTransaction()
		if err := txn.SetProperties(iceberg.Properties{PropHalted: reason}); err != nil {
			return fmt.Errorf("halt %s: %w", k.name, err)
		}
		_, err = txn.Commit(ctx)
		if err == nil {
			break
		}
		if !table.IsConflict(err) || attempt >= 5 {
			return fmt.Errorf("halt %s: %w", k.name, err)
		}
	}
	tbl, err := k.w.cat.LoadTable(ctx, ident)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.tbl = tbl
	k.mu.Unlock()
	return nil
}
