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
	cfg, p, _, err := prepare(tbl, sc, opts)
	if err != nil {
		return nil, err
	}
	if rows != nil && len(rows) != len(recs) {
		return nil, fmt.Errorf("pqgo: %d row lists for %d batches", len(rows), len(recs))
	}
	part := &partition{values: values}
	for b, rec := range recs {
		if !rec.Schema().Equal(sc) {
			return nil, fmt.Errorf("%w: batch %d has schema %s, want %s", ErrUnsupported, b, rec.Schema(), sc)
		}
		s := sel{hi: int(rec.NumRows())}
		if rows != nil {
			s = sel{idx: rows[b]}
		}
		if s.n() > 0 {
			part.segs = append(part.segs, segment{batch: b, sel: s})
			part.rows += int64(s.n())
		}
	}
	j, err := newJob(ctx, tbl, cfg, p, recs, opts)
	if err != nil {
		return nil, err
	}
	defer j.pool.close()
	fw, err := j.fs.Create(path)
	if err != nil {
		return nil, err
	}
	f := j.newFile(&pqfile.CountingWriter{W: fw})
	f.path, f.fw = path, fw
	segs := part.segs
	var unit []segment
	for len(segs) > 0 {
		if err := ctx.Err(); err != nil {
			j.abort(f)
			return nil, err
		}
		unit, segs = take(unit[:0], segs, int(min(int64(j.unit), cfg.rowGroupRows-f.rgRows)))
		if err := j.writeUnit(f, unit); err != nil {
			j.abort(f)
			return nil, err
		}
		if err := j.afterUnit(f, unit); err != nil {
			j.abort(f)
			return nil, err
		}
	}
	return j.finish(f, part)
}
