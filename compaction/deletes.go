package compaction

import (
	"context"
	"fmt"
	"slices"

	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/pqfile"
)

// Delete-file merging: the maintenance step for tables whose rows are
// deleted by position-delete files. Each commit of a keyed table adds one
// delete file; readers open every one, so they pile up. A merge writes the
// deletes of all of them as one file and removes the data files whose rows
// are all deleted, in a rewrite snapshot (operation replace) that changes
// no row.
//
// Who calls it: the keyed writer (writer.KeyedTable), between its own
// commits, when its delete files reach KeyedOptions.MaxDeleteFiles. It
// plans from what it holds in memory — which rows of which data file it
// has deleted — so it reads no delete file, and since nothing else commits
// deletes to its table, the merge never races a delete it does not know
// of. Apache Paimon compacts primary-key tables inside the writer for the
// same reason. The writer stages the merge inside its own commit, after
// checking that no one else changed the table's files since its last
// commit.
//
// The keyed writer's data-file compaction (KeyedRewrite, keyed.go) plans a
// merge too, in the same snapshot as its rewrite, when rows it copied
// were deleted while it ran.
//
// The daemon (Compactor) does not run this step. Its rewrite folds
// deletes away by rewriting the data files they apply to
// (delete-file-threshold) and removes the position deletes that made
// dead; it skips the data files of tables a keyed writer compacts
// (PropCompactionOwner), whose key index any change of files by another
// committer invalidates. A daemon pass that merged delete files would plan
// with PlanDeleteMerge from the deletes it read, and stage with Stage,
// like the writer.

// FileDeletes are the deleted row positions of one live data file.
type FileDeletes struct {
	File iceberg.DataFile
	// Positions are row positions in File, in any order, possibly
	// repeated. PlanDeleteMerge takes ownership (it sorts them in place).
	Positions []int64
}

// DeleteMerge is a planned merge of a table's position-delete files.
type DeleteMerge struct {
	// Drop are the data files whose rows are all deleted: the merge
	// removes them, and their deletes are not kept.
	Drop []iceberg.DataFile
	// Keep are the deletes of the other data files: the merged file's
	// rows.
	Keep []FileDeletes
	// Replace are the position-delete files the merged file replaces.
	Replace []iceberg.DataFile
	// Merged is the merged position-delete file once Write has written
	// it; nil while Keep is empty.
	Merged iceberg.DataFile
}

// PlanDeleteMerge plans the merge of deleteFiles, every position-delete
// file of the table, given every deleted position they hold, by data file
// (files; files without positions are ignored). The plan must cover all
// the table's position-delete files and all their deletes: Stage removes
// deleteFiles, and the merged file holds only files' positions.
func PlanDeleteMerge(deleteFiles []iceberg.DataFile, files []FileDeletes) *DeleteMerge {
	m := &DeleteMerge{Replace: slices.Clone(deleteFiles)}
	for _, f := range files {
		pos := f.Positions
		slices.Sort(pos)
		pos = slices.Compact(pos)
		switch {
		case len(pos) == 0:
		case int64(len(pos)) >= f.File.Count():
			m.Drop = append(m.Drop, f.File)
		default:
			m.Keep = append(m.Keep, FileDeletes{File: f.File, Positions: pos})
		}
	}
	return m
}

// Write writes the merged position-delete file to path in tbl's storage,
// encoded as the table's properties ask, unless there is nothing to keep.
// The file is unreferenced until Stage's rewrite is committed.
func (m *DeleteMerge) Write(ctx context.Context, tbl *icetable.Table, path string) error {
	if len(m.Keep) == 0 {
		return nil
	}
	dels := make([]pqfile.Deletes, len(m.Keep))
	for i, f := range m.Keep {
		dels[i] = pqfile.Deletes{Path: f.File.FilePath(), Positions: f.Positions}
	}
	df, err := pqfile.WritePositionDeletes(ctx, tbl, path, dels)
	if err != nil {
		return fmt.Errorf("write merged position deletes: %w", err)
	}
	m.Merged = df
	return nil
}

// Stage stages the merge on txn as a rewrite (a replace snapshot with the
// summary properties props): Drop and Replace out, Merged in. Call Write
// first. Stage does not check that the table still holds what was
// planned: that is the caller's (the keyed writer checks that no snapshot
// since its own last one changed files).
func (m *DeleteMerge) Stage(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
	rw := txn.NewRewrite(props)
	for _, df := range m.Drop {
		rw.DeleteFile(df)
	}
	for _, df := range m.Replace {
		rw.DeleteFile(df)
	}
	if m.Merged != nil {
		rw.AddDeleteFile(m.Merged)
	}
	return rw.Commit(ctx)
}
