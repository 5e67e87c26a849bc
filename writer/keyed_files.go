package writer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/pqfile"
	"github.com/floe-lake/floe/internal/pqgo"
)

// The keyed writer's files: one data file per flush and partition with
// the live rows (the last image of each key), one position-delete file per
// commit and partition. Both
// are encoded as internal/pqfile derives from the table's properties (the
// same derivation as the append path's, at zstd's default level where the
// table sets none): the data files by the append path's encoder
// (internal/pqgo.WriteFile, arrow-go's where pqgo does not write the
// table), the delete files by arrow-go; merged delete files are
// compaction's (compaction.DeleteMerge).

// keyedRows selects the rows of buffered records that go to one data
// file: the rows masks sets (per record), or those take lists (per record,
// ascending; a partition's rows); all rows when both are nil.
type keyedRows struct {
	masks [][]bool
	take  [][]int32
}

// pick returns the selected rows of recs[i], nil when there are none; the
// caller releases it.
func (s keyedRows) pick(ctx context.Context, i int, r arrow.RecordBatch) (arrow.RecordBatch, error) {
	switch {
	case s.masks != nil && slices.Contains(s.masks[i], false):
		mb := array.NewBooleanBuilder(memory.DefaultAllocator)
		mb.AppendValues(s.masks[i], nil)
		mask := mb.NewArray()
		mb.Release()
		defer mask.Release()
		return compute.FilterRecordBatch(ctx, r, mask, compute.DefaultFilterOptions())
	case s.masks != nil:
		// Every row: the record as it is, not a copy (a snapshot load's
		// batches).
	case s.take != nil:
		if len(s.take[i]) == 0 {
			return nil, nil
		}
		return compaction.TakeRows(ctx, r, s.take[i])
	}
	r.Retain()
	return r, nil
}

// rowLists is the selection as pqgo.WriteFile takes it: nil for every
// row, else each record's rows.
func (s keyedRows) rowLists() [][]int32 {
	if s.take != nil {
		return s.take
	}
	if s.masks == nil {
		return nil
	}
	all := true
	for _, m := range s.masks {
		if slices.Contains(m, false) {
			all = false
			break
		}
	}
	if all {
		return nil
	}
	out := make([][]int32, len(s.masks))
	for i, m := range s.masks {
		n := 0
		for _, ok := range m {
			if ok {
				n++
			}
		}
		l := make([]int32, 0, n)
		for r, ok := range m {
			if ok {
				l = append(l, int32(r))
			}
		}
		out[i] = l
	}
	return out
}

// writeKeyedData writes the selected rows of recs to a data file at path,
// in the table's current partition spec with partition values partition
// (nil when the table is unpartitioned): with the append path's encoder
// (internal/pqgo) at the table's own compression level, or arrow-go's
// where pqgo does not write the table.
func writeKeyedData(ctx context.Context, tbl *icetable.Table, sc *arrow.Schema, path string, recs []arrow.RecordBatch,
	rows keyedRows, partition map[int]any,
) (iceberg.DataFile, error) {
	df, err := pqgo.WriteFile(ctx, tbl, sc, path, recs, rows.rowLists(), partition, pqgo.Options{})
	if !errors.Is(err, pqgo.ErrUnsupported) {
		return df, err
	}
	props, err := pqfile.ArrowProperties(tbl.Properties(), sc, 0)
	if err != nil {
		return nil, err
	}
	w, err := pqfile.Write(ctx, tbl, sc, path, props, func(fw *pqarrow.FileWriter) error {
		for i, r := range recs {
			f, err := rows.pick(ctx, i, r)
			if err != nil {
				return err
			}
			if f == nil {
				continue
			}
			err = fw.WriteBuffered(f)
			f.Release()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return icetable.DataFileFromMetadata(icetable.DataFileArgs{
		Schema: tbl.Schema(), Spec: tbl.Spec(), PartitionValues: partition, Format: iceberg.ParquetFile, Metadata: w.Meta,
		FilePath: path, FileSize: w.Size, Content: iceberg.EntryContentData,
		Properties: tbl.Properties(), FormatVersion: tbl.Metadata().Version(),
	})
}

// writePositionDeletes writes the staged deletes as position-delete
// files, one per partition of the data files they delete from (the
// Iceberg spec applies a position-delete file to data files of its own
// partition only), each sorted by file and position, at paths newPath
// returns.
func (k *KeyedTable) writePositionDeletes(ctx context.Context, tbl *icetable.Table, newPath func() string) ([]iceberg.DataFile, error) {
	type part struct {
		key  string
		file iceberg.DataFile // one of its data files
		dels []pqfile.Deletes
	}
	k.mu.Lock()
	byFile := map[uint64]int{}
	var dels []pqfile.Deletes
	var files []iceberg.DataFile
	for _, l := range k.stagedDels {
		i, ok := byFile[l>>32]
		if !ok {
			i = len(dels)
			byFile[l>>32] = i
			f := k.files[l>>32]
			dels = append(dels, pqfile.Deletes{Path: f.path})
			files = append(files, f.df)
		}
		dels[i].Positions = append(dels[i].Positions, int64(uint32(l)))
	}
	k.mu.Unlock()
	if !k.partitioned {
		df, err := pqfile.WritePositionDeletes(ctx, tbl, newPath(), dels)
		if err != nil {
			return nil, err
		}
		return []iceberg.DataFile{df}, nil
	}
	byPart := map[string]*part{}
	var parts []*part
	for i, d := range dels {
		if files[i] == nil {
			return nil, fmt.Errorf("delete from %s: the data file is not written", d.Path)
		}
		key := compaction.PartitionKey(files[i])
		p, ok := byPart[key]
		if !ok {
			p = &part{key: key, file: files[i]}
			byPart[key] = p
			parts = append(parts, p)
		}
		p.dels = append(p.dels, d)
	}
	slices.SortFunc(parts, func(a, b *part) int { return strings.Compare(a.key, b.key) })
	out := make([]iceberg.DataFile, 0, len(parts))
	for _, p := range parts {
		spec, values, err := compaction.FilePartition(tbl.Metadata(), p.file)
		if err != nil {
			return nil, err
		}
		df, err := pqfile.WritePartitionPositionDeletes(ctx, tbl, newPath(), spec, values, p.dels)
		if err != nil {
			return nil, err
		}
		out = append(out, df)
	}
	return out, nil
}
