package writer

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/pqfile"
)

// The keyed writer's files: one data file per flush with the live rows
// (the last image of each key), one position-delete file per commit. Both
// are encoded as internal/pqfile derives from the table's properties (the
// same derivation as the append path's, at zstd's default level where the
// table sets none); merged delete files are compaction's
// (compaction.DeleteMerge).

// writeKeyedData writes the selected rows of recs (all rows when masks is
// nil) to a data file at path.
func writeKeyedData(ctx context.Context, tbl *icetable.Table, sc *arrow.Schema, path string, recs []arrow.RecordBatch, masks [][]bool) (iceberg.DataFile, error) {
	props, err := pqfile.ArrowProperties(tbl.Properties(), sc, 0)
	if err != nil {
		return nil, err
	}
	w, err := pqfile.Write(ctx, tbl, sc, path, props, func(fw *pqarrow.FileWriter) error {
		for i, r := range recs {
			if masks == nil {
				if err := fw.WriteBuffered(r); err != nil {
					return err
				}
				continue
			}
			mb := array.NewBooleanBuilder(memory.DefaultAllocator)
			mb.AppendValues(masks[i], nil)
			mask := mb.NewArray()
			mb.Release()
			f, err := compute.FilterRecordBatch(ctx, r, mask, compute.DefaultFilterOptions())
			mask.Release()
			if err != nil {
				return err
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
		Schema: tbl.Schema(), Spec: tbl.Spec(), Format: iceberg.ParquetFile, Metadata: w.Meta,
		FilePath: path, FileSize: w.Size, Content: iceberg.EntryContentData,
		Properties: tbl.Properties(), FormatVersion: tbl.Metadata().Version(),
	})
}

// writePositionDeletes writes the staged deletes, sorted by file and
// position, as one position-delete file.
func (k *KeyedTable) writePositionDeletes(ctx context.Context, tbl *icetable.Table, path string) (iceberg.DataFile, error) {
	k.mu.Lock()
	byFile := map[uint64]int{}
	var dels []pqfile.Deletes
	for _, l := range k.stagedDels {
		i, ok := byFile[l>>32]
		if !ok {
			i = len(dels)
			byFile[l>>32] = i
			dels = append(dels, pqfile.Deletes{Path: k.files[l>>32].path})
		}
		dels[i].Positions = append(dels[i].Positions, int64(uint32(l)))
	}
	k.mu.Unlock()
	return pqfile.WritePositionDeletes(ctx, tbl, path, dels)
}
