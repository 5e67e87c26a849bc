package compaction

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

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
	// Replace are the position-delete files the merged files replace.
	Replace []iceberg.DataFile
	// Merged are the merged position-delete files once Write has written
	// them: one per partition of Keep's data files, in the partition's
	// spec and values; none while Keep is empty.
	Merged []iceberg.DataFile
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

// Write writes the merged position-delete files, one per partition of
// Keep's data files, each at a path newPath returns, in tbl's storage,
// encoded as the table's properties ask; nothing when there is nothing to
// keep. The files are unreferenced until Stage's rewrite is committed.
func (m *DeleteMerge) Write(ctx context.Context, tbl *icetable.Table, newPath func() string) error {
	if len(m.Keep) == 0 {
		return nil
	}
	type part struct {
		key  string
		file iceberg.DataFile // one of the partition's data files
		dels []pqfile.Deletes
	}
	var parts []*part
	byKey := map[string]*part{}
	for _, f := range m.Keep {
		key := PartitionKey(f.File)
		p, ok := byKey[key]
		if !ok {
			p = &part{key: key, file: f.File}
			byKey[key] = p
			parts = append(parts, p)
		}
		p.dels = append(p.dels, pqfile.Deletes{Path: f.File.FilePath(), Positions: f.Positions})
	}
	slices.SortFunc(parts, func(a, b *part) int { return strings.Compare(a.key, b.key) })
	m.Merged = m.Merged[:0]
	for _, p := range parts {
		spec, values, err := FilePartition(tbl.Metadata(), p.file)
		if err != nil {
			return err
		}
		df, err := pqfile.WritePartitionPositionDeletes(ctx, tbl, newPath(), spec, values, p.dels)
		if err != nil {
			return fmt.Errorf("write merged position deletes: %w", err)
		}
		m.Merged = append(m.Merged, df)
	}
	return nil
}

// FilePartition returns the partition spec and values of a table's data
// file: what a position-delete file for it, or a file rewritten from it,
// must carry.
func FilePartition(meta icetable.Metadata, df iceberg.DataFile) (iceberg.PartitionSpec, map[int]any, error) {
	spec := meta.PartitionSpecByID(int(df.SpecID()))
	if spec == nil {
		return iceberg.PartitionSpec{}, nil, fmt.Errorf("data file %s: partition spec %d is not in the table", df.FilePath(), df.SpecID())
	}
	if spec.IsUnpartitioned() {
		return *spec, nil, nil
	}
	return *spec, df.Partition(), nil
}

// PartitionKey is an opaque key of a data file's partition: equal for two
// files exactly when they are in the same partition of the same partition
// spec. Values are compared as the partition type holds them, whatever Go
// type carries them (a day as iceberg.Date or int32, a value read from a
// manifest or computed by a writer); null differs from every value.
func PartitionKey(df iceberg.DataFile) string {
	vals := df.Partition()
	ids := make([]int, 0, len(vals))
	for id := range vals {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b := binary.AppendUvarint(nil, uint64(df.SpecID()))
	for _, id := range ids {
		v := vals[id]
		if v == nil {
			// An absent field and a null one are the same partition.
			continue
		}
		b = binary.AppendUvarint(b, uint64(id))
		b = appendPartitionValue(b, v)
	}
	return string(b)
}

// appendPartitionValue encodes a partition value by what it means: every
// integer-like type (int32, int64, date, time, timestamp) as a 64-bit
// integer, strings and bytes alike, so that one value carried in two Go
// types encodes the same.
func appendPartitionValue(b []byte, v any) []byte {
	integer := func(n int64) []byte { return binary.BigEndian.AppendUint64(append(b, 'i'), uint64(n)) }
	bytesOf := func(x []byte) []byte {
		b = binary.AppendUvarint(append(b, 's'), uint64(len(x)))
		return append(b, x...)
	}
	switch x := v.(type) {
	case bool:
		if x {
			return append(b, 'b', 1)
		}
		return append(b, 'b', 0)
	case int:
		return integer(int64(x))
	case int32:
		return integer(int64(x))
	case int64:
		return integer(x)
	case iceberg.Date:
		return integer(int64(x))
	case iceberg.Time:
		return integer(int64(x))
	case iceberg.Timestamp:
		return integer(int64(x))
	case iceberg.TimestampNano:
		return integer(int64(x))
	case float32:
		return binary.BigEndian.AppendUint64(append(b, 'f'), math.Float64bits(float64(x)))
	case float64:
		return binary.BigEndian.AppendUint64(append(b, 'f'), math.Float64bits(x))
	case string:
		return bytesOf([]byte(x))
	case []byte:
		return bytesOf(x)
	case uuid.UUID:
		return bytesOf(x[:])
	case iceberg.Decimal:
		b = binary.AppendVarint(append(b, 'd'), int64(x.Scale))
		b = binary.BigEndian.AppendUint64(b, uint64(x.Val.HighBits()))
		return binary.BigEndian.AppendUint64(b, x.Val.LowBits())
	case iceberg.DecimalLiteral: // as a manifest reads a decimal
		return appendPartitionValue(b, iceberg.Decimal(x))
	}
	return fmt.Appendf(append(b, '?'), "%T:%v;", v, v)
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
	for _, df := range m.Merged {
		rw.AddDeleteFile(df)
	}
	return rw.Commit(ctx)
}
