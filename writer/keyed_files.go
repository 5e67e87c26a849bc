package writer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"
)

// countingWriter counts bytes written.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func parquetProps(props iceberg.Properties, sc *arrow.Schema) *parquet.WriterProperties {
	codec := compress.Codecs.Zstd
	switch strings.ToLower(props.Get("write.parquet.compression-codec", "zstd")) {
	case "snappy":
		codec = compress.Codecs.Snappy
	case "gzip":
		codec = compress.Codecs.Gzip
	case "uncompressed", "none":
		codec = compress.Codecs.Uncompressed
	case "lz4":
		codec = compress.Codecs.Lz4Raw
	}
	opts := []parquet.WriterProperty{
		parquet.WithCompression(codec),
		parquet.WithMaxRowGroupLength(1 << 20),
		parquet.WithStats(true),
	}
	// As iceberg-go does: columns whose dictionary does not pay off fall
	// back to plain encoding (arrow-go does so by default only for
	// uncompressed columns); high-cardinality keys encode about twice as
	// fast.
	for _, f := range sc.Fields() {
		opts = append(opts, parquet.WithDictionaryCostFallbackFor(f.Name, true))
	}
	return parquet.NewWriterProperties(opts...)
}

// writeParquet writes the selected rows of recs (all rows when masks is
// nil) to path and returns the file's metadata and size.
func writeParquet(ctx context.Context, tbl *icetable.Table, sc *arrow.Schema, path string, recs []arrow.RecordBatch, masks [][]bool) (*parquetResult, error) {
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	wfs, ok := fsys.(iceio.WriteFileIO)
	if !ok {
		return nil, errors.New("the table's file IO cannot write")
	}
	out, err := wfs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	cw := &countingWriter{w: out}
	fw, err := pqarrow.NewFileWriter(sc, cw, parquetProps(tbl.Properties(), sc),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		_ = out.Close()
		return nil, err
	}
	werr := func() error {
		for i, r := range recs {
			if masks != nil {
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
				continue
			}
			if err := fw.WriteBuffered(r); err != nil {
				return err
			}
		}
		return nil
	}()
	cerr := fw.Close()
	if werr != nil {
		_ = out.Close()
		return nil, werr
	}
	if cerr != nil {
		_ = out.Close()
		return nil, cerr
	}
	if err := out.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", path, err)
	}
	md, err := fw.FileMetadata()
	if err != nil {
		return nil, err
	}
	return &parquetResult{meta: md, size: cw.n}, nil
}

type parquetResult struct {
	meta any
	size int64
}

func writeKeyedData(ctx context.Context, tbl *icetable.Table, sc *arrow.Schema, path string, recs []arrow.RecordBatch, masks [][]bool) (iceberg.DataFile, error) {
	pr, err := writeParquet(ctx, tbl, sc, path, recs, masks)
	if err != nil {
		return nil, err
	}
	return icetable.DataFileFromMetadata(icetable.DataFileArgs{
		Schema: tbl.Schema(), Spec: tbl.Spec(), Format: iceberg.ParquetFile, Metadata: pr.meta,
		FilePath: path, FileSize: pr.size, Content: iceberg.EntryContentData,
		Properties: tbl.Properties(), FormatVersion: tbl.Metadata().Version(),
	})
}

// writePositionDeletes writes the staged deletes, sorted by file and
// position, as one position-delete file.
func (k *KeyedTable) writePositionDeletes(ctx context.Context, tbl *icetable.Table, path string) (iceberg.DataFile, error) {
	k.mu.Lock()
	byFile := map[uint64][]uint32{}
	for _, l := range k.stagedDels {
		byFile[l>>32] = append(byFile[l>>32], uint32(l))
	}
	paths := make(map[uint64]string, len(byFile))
	for f := range byFile {
		paths[f] = k.files[f].path
	}
	k.mu.Unlock()
	return writeDeleteFile(ctx, tbl, path, paths, byFile)
}

// writeDeleteFile writes the positions of each data file (by file number,
// with its path) as one position-delete file sorted by path and position.
func writeDeleteFile(ctx context.Context, tbl *icetable.Table, path string, paths map[uint64]string, byFile map[uint64][]uint32) (iceberg.DataFile, error) {
	files := make([]uint64, 0, len(byFile))
	n := 0
	for f, ps := range byFile {
		files = append(files, f)
		slices.Sort(ps)
		byFile[f] = slices.Compact(ps)
		n += len(byFile[f])
	}
	slices.SortFunc(files, func(a, b uint64) int { return strings.Compare(paths[a], paths[b]) })
	sc := icetable.PositionalDeleteArrowSchema
	pb := array.NewStringBuilder(memory.DefaultAllocator)
	ob := array.NewInt64Builder(memory.DefaultAllocator)
	defer pb.Release()
	defer ob.Release()
	pb.Reserve(n)
	ob.Reserve(n)
	for _, f := range files {
		p := paths[f]
		for _, pos := range byFile[f] {
			pb.Append(p)
			ob.Append(int64(pos))
		}
	}
	pa, oa := pb.NewArray(), ob.NewArray()
	rec := array.NewRecordBatch(sc, []arrow.Array{pa, oa}, int64(n))
	pa.Release()
	oa.Release()
	defer rec.Release()
	pr, err := writeParquet(ctx, tbl, sc, path, []arrow.RecordBatch{rec}, nil)
	if err != nil {
		return nil, err
	}
	args := icetable.DataFileArgs{
		Schema: iceberg.PositionalDeleteSchema, Spec: tbl.Spec(), Format: iceberg.ParquetFile, Metadata: pr.meta,
		FilePath: path, FileSize: pr.size, Content: iceberg.EntryContentPosDeletes,
		// Exact file_path bounds let readers skip this file for data files
		// outside its range.
		Properties:    iceberg.Properties{"write.metadata.metrics.column.file_path": "full"},
		FormatVersion: tbl.Metadata().Version(),
	}
	if len(files) == 1 {
		ref := paths[files[0]]
		args.ReferencedDataFile = &ref
	}
	return icetable.DataFileFromMetadata(args)
}
