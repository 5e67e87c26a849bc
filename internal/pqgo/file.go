package pqgo

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/pqfile"
)

// WriteFile encodes rows of recs into one data file of tbl at path, as
// Write encodes a data file, and returns its DataFile with partition
// values values (partition field id → value; nil when the table is
// unpartitioned). Unlike Write it neither partitions, sorts nor rolls
// files: the file holds the rows in the order given, at positions 0, 1,
// ... (the keyed writer's position deletes refer to them). rows == nil
// takes every row of recs; otherwise rows[i] lists the rows of recs[i],
// ascending (none when empty). Tables Write does not handle get an error
// wrapping ErrUnsupported before anything is written. The file is
// removed when writing it fails.
func WriteFile(ctx context.Context, tbl *icetable.Table, sc *arrow.Schema, path string, recs []arrow.RecordBatch,
	rows [][]int32, values map[int]any, opts Options,
) (iceberg.DataFile, error) {
	w, err := NewFileWriter(ctx, tbl, sc, path, values, opts)
	if err != nil {
		return nil, err
	}
	if err := w.Append(recs, rows); err != nil {
		w.Abort()
		return nil, err
	}
	return w.Close()
}

// FileWriter writes one data file of tbl in appends, as WriteFile does in
// one call: the rows at positions 0, 1, ... in the order appended, row
// groups of the table's row-group size whatever the appends' sizes, the
// dictionaries chosen from the first append's batches. Values are copied
// as they are encoded: the batches of an append may be released when it
// returns. A rewrite of millions of rows streams through one.
type FileWriter struct {
	ctx    context.Context
	tbl    *icetable.Table
	sc     *arrow.Schema
	path   string
	opts   Options
	cfg    *config
	plan   *plan
	j      *job
	f      *pfile
	part   *partition
	failed error
}

// NewFileWriter prepares the file; nothing is written before the first
// Append. Tables Write does not handle get an error wrapping
// ErrUnsupported.
func NewFileWriter(ctx context.Context, tbl *icetable.Table, sc *arrow.Schema, path string, values map[int]any, opts Options) (*FileWriter, error) {
	cfg, p, _, err := prepare(tbl, sc, opts)
	if err != nil {
		return nil, err
	}
	return &FileWriter{ctx: ctx, tbl: tbl, sc: sc, path: path, opts: opts, cfg: cfg, plan: p, part: &partition{values: values}}, nil
}

// Append encodes rows of recs (rows as for WriteFile). A failed append
// fails the writer: Abort it.
func (w *FileWriter) Append(recs []arrow.RecordBatch, rows [][]int32) error {
	if w.failed != nil {
		return w.failed
	}
	if rows != nil && len(rows) != len(recs) {
		return fmt.Errorf("pqgo: %d row lists for %d batches", len(rows), len(recs))
	}
	var segs []segment
	for b, rec := range recs {
		if !rec.Schema().Equal(w.sc) {
			return fmt.Errorf("%w: batch %d has schema %s, want %s", ErrUnsupported, b, rec.Schema(), w.sc)
		}
		s := sel{hi: int(rec.NumRows())}
		if rows != nil {
			s = sel{idx: rows[b]}
		}
		if s.n() > 0 {
			segs = append(segs, segment{batch: b, sel: s})
			w.part.rows += int64(s.n())
		}
	}
	if len(segs) == 0 {
		return nil
	}
	if w.j == nil {
		j, err := newJob(w.ctx, w.tbl, w.cfg, w.plan, recs, w.opts)
		if err != nil {
			return err
		}
		fw, err := j.fs.Create(w.path)
		if err != nil {
			j.pool.close()
			return err
		}
		w.j = j
		w.f = j.newFile(&pqfile.CountingWriter{W: fw})
		w.f.path, w.f.fw = w.path, fw
	}
	j, f := w.j, w.f
	j.recs = recs
	defer func() { j.recs = nil }()
	var unit []segment
	for len(segs) > 0 {
		if err := w.ctx.Err(); err != nil {
			w.failed = err
			return err
		}
		unit, segs = take(unit[:0], segs, int(min(int64(j.unit), w.cfg.rowGroupRows-f.rgRows)))
		if err := j.writeUnit(f, unit); err != nil {
			w.failed = err
			return err
		}
		if err := j.afterUnit(f, unit); err != nil {
			w.failed = err
			return err
		}
	}
	return nil
}

// Rows is the number of rows appended.
func (w *FileWriter) Rows() int64 { return w.part.rows }

// Close finishes the file and returns its DataFile; nil when no row was
// appended (nothing was written).
func (w *FileWriter) Close() (iceberg.DataFile, error) {
	if w.failed != nil {
		w.Abort()
		return nil, w.failed
	}
	if w.j == nil {
		return nil, nil
	}
	defer w.j.pool.close()
	df, err := w.j.finish(w.f, w.part)
	w.j = nil
	return df, err
}

// Abort drops the file, removing what was written.
func (w *FileWriter) Abort() {
	if w.j == nil {
		return
	}
	w.j.abort(w.f)
	w.j.pool.close()
	w.j = nil
}
