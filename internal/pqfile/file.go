package pqfile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"
)

// Written is a file Write wrote.
type Written struct {
	// Meta is the file's Parquet footer, for icetable.DataFileArgs.
	Meta *metadata.FileMetaData
	// Size is the file's length in bytes.
	Size int64
}

// Write creates path in tbl's storage and writes a Parquet file of schema
// sc with props: fill writes the rows. On an error the file may be left
// partly written (unreferenced, for the orphan cleaner).
func Write(ctx context.Context, tbl *icetable.Table, sc *arrow.Schema, path string, props *parquet.WriterProperties,
	fill func(*pqarrow.FileWriter) error,
) (Written, error) {
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return Written{}, err
	}
	wfs, ok := fsys.(iceio.WriteFileIO)
	if !ok {
		return Written{}, errors.New("the table's file IO cannot write")
	}
	out, err := wfs.Create(path)
	if err != nil {
		return Written{}, fmt.Errorf("create %s: %w", path, err)
	}
	cw := &CountingWriter{W: out}
	fw, err := pqarrow.NewFileWriter(sc, cw, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		_ = out.Close()
		return Written{}, err
	}
	werr := fill(fw)
	cerr := fw.Close()
	if werr != nil {
		_ = out.Close()
		return Written{}, werr
	}
	if cerr != nil {
		_ = out.Close()
		return Written{}, cerr
	}
	if err := out.Close(); err != nil {
		return Written{}, fmt.Errorf("close %s: %w", path, err)
	}
	md, err := fw.FileMetadata()
	if err != nil {
		return Written{}, err
	}
	return Written{Meta: md, Size: cw.N}, nil
}

// Deletes are deleted row positions of one data file.
type Deletes struct {
	// Path is the data file's path, as its manifest entry has it.
	Path string
	// Positions are row positions in the file, in any order, possibly
	// repeated.
	Positions []int64
}

// WritePositionDeletes writes dels as one position-delete file at path in
// tbl's storage, rows sorted by data file path and position (as the
// Iceberg spec requires), each position once, and returns its manifest
// entry. It sorts the Positions slices it is given in place. A file holding the
// deletes of one data file names it as its referenced data file. The file
// is in the table's current spec with no partition values: for
// unpartitioned tables (WritePartitionPositionDeletes otherwise).
func WritePositionDeletes(ctx context.Context, tbl *icetable.Table, path string, dels []Deletes) (iceberg.DataFile, error) {
	return WritePartitionPositionDeletes(ctx, tbl, path, tbl.Spec(), nil, dels)
}

// WritePartitionPositionDeletes is WritePositionDeletes for data files of
// one partition: the file carries spec and the partition values (by
// partition field id) of the data files it deletes from, as the Iceberg
// spec requires of a position-delete file.
func WritePartitionPositionDeletes(ctx context.Context, tbl *icetable.Table, path string, spec iceberg.PartitionSpec,
	partition map[int]any, dels []Deletes,
) (iceberg.DataFile, error) {
	dels = slices.Clone(dels)
	slices.SortStableFunc(dels, func(a, b Deletes) int { return strings.Compare(a.Path, b.Path) })
	// One entry per data file, none empty.
	j := 0
	for _, d := range dels {
		switch {
		case len(d.Positions) == 0:
		case j > 0 && dels[j-1].Path == d.Path:
			dels[j-1].Positions = slices.Concat(dels[j-1].Positions, d.Positions)
		default:
			dels[j] = d
			j++
		}
	}
	dels = dels[:j]
	n := 0
	for i := range dels {
		slices.Sort(dels[i].Positions)
		dels[i].Positions = slices.Compact(dels[i].Positions)
		n += len(dels[i].Positions)
	}
	sc := icetable.PositionalDeleteArrowSchema
	pb := array.NewStringBuilder(memory.DefaultAllocator)
	ob := array.NewInt64Builder(memory.DefaultAllocator)
	defer pb.Release()
	defer ob.Release()
	pb.Reserve(n)
	ob.Reserve(n)
	for _, d := range dels {
		for _, pos := range d.Positions {
			pb.Append(d.Path)
			ob.Append(pos)
		}
	}
	pa, oa := pb.NewArray(), ob.NewArray()
	rec := array.NewRecordBatch(sc, []arrow.Array{pa, oa}, int64(n))
	pa.Release()
	oa.Release()
	defer rec.Release()
	props, err := ArrowProperties(tbl.Properties(), sc, 0)
	if err != nil {
		return nil, err
	}
	w, err := Write(ctx, tbl, sc, path, props, func(fw *pqarrow.FileWriter) error { return fw.WriteBuffered(rec) })
	if err != nil {
		return nil, err
	}
	args := icetable.DataFileArgs{
		Schema: iceberg.PositionalDeleteSchema, Spec: spec, Format: iceberg.ParquetFile, Metadata: w.Meta,
		FilePath: path, FileSize: w.Size, Content: iceberg.EntryContentPosDeletes, PartitionValues: partition,
		// Exact file_path bounds let readers skip this file for data files
		// outside its range.
		Properties:    iceberg.Properties{"write.metadata.metrics.column.file_path": "full"},
		FormatVersion: tbl.Metadata().Version(),
	}
	if len(dels) == 1 {
		ref := dels[0].Path
		args.ReferencedDataFile = &ref
	}
	return icetable.DataFileFromMetadata(args)
}
