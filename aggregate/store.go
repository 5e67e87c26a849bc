package aggregate

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/reader"
)

// partitionFilter selects the window starts of the partitions parts
// (ascending partition starts, in microseconds): one range per run of
// adjacent partitions.
func partitionFilter(parts []int64, unit int64) iceberg.BooleanExpression {
	ref := iceberg.Reference(ColWindowStart)
	var ranges []iceberg.BooleanExpression
	for i := 0; i < len(parts); {
		j := i + 1
		for j < len(parts) && parts[j] == parts[j-1]+unit {
			j++
		}
		ranges = append(ranges, iceberg.NewAnd(
			iceberg.GreaterThanEqual(ref, iceberg.Timestamp(parts[i])),
			iceberg.LessThan(ref, iceberg.Timestamp(parts[j-1]+unit))))
		i = j
	}
	switch len(ranges) {
	case 0:
		return iceberg.AlwaysFalse{}
	case 1:
		return ranges[0]
	}
	return iceberg.NewOr(ranges[0], ranges[1], ranges[2:]...)
}

// loadStored folds the stored states of the output rows matching filter,
// as of tbl (the output table as loaded), into the group table route
// returns for each row's window start.
func (a *Aggregator) loadStored(ctx context.Context, tbl *icetable.Table, filter iceberg.BooleanExpression, route func(ws int64) *groupTable, st *batchState) error {
	if tbl.CurrentSnapshot() == nil {
		return nil
	}
	cols := append([]string{ColWindowStart}, a.spec.Dimensions...)
	cols = append(cols, ColState)
	if a.plan.cumulative() {
		cols = append(cols, ColWindowEnd)
	}
	r, err := reader.New(a.cat, a.spec.Output, reader.Config{
		Columns: cols, Filter: filter, Concurrency: a.opts.Concurrency, Logger: a.log, Clock: a.opts.Clock,
	})
	if err != nil {
		return err
	}
	stream, err := r.SnapshotIn(ctx, tbl, reader.At{})
	if err != nil {
		return fmt.Errorf("read stored groups of %s: %w", a.spec.Output, err)
	}
	for rec, err := range stream.Records() {
		if err != nil {
			return fmt.Errorf("read stored groups of %s: %w", a.spec.Output, err)
		}
		err = a.plan.addStored(route, rec, st)
		rec.Release()
		if err != nil {
			return fmt.Errorf("stored groups of %s: %w", a.spec.Output, err)
		}
	}
	return nil
}

// addStored folds output rows (window_start, dimensions, _state) into the
// group tables route returns.
func (p *plan) addStored(route func(ws int64) *groupTable, rec arrow.RecordBatch, st *batchState) error {
	n := int(rec.NumRows())
	wcol, err := column(rec, ColWindowStart)
	if err != nil {
		return err
	}
	ws, ok := wcol.(*array.Timestamp)
	if !ok {
		return fmt.Errorf("column %s is an Arrow %s, not a timestamp", ColWindowStart, wcol.DataType())
	}
	st.times = micros(ws, st.times)
	scol, err := column(rec, ColState)
	if err != nil {
		return err
	}
	state, ok := scol.(*array.Binary)
	if !ok {
		return fmt.Errorf("column %s is an Arrow %s, not binary", ColState, scol.DataType())
	}
	var ends *array.Timestamp
	var endTimes []int64
	if p.cumulative() {
		ecol, err := column(rec, ColWindowEnd)
		if err != nil {
			return err
		}
		if ends, ok = ecol.(*array.Timestamp); !ok {
			return fmt.Errorf("column %s is an Arrow %s, not a timestamp", ColWindowEnd, ecol.DataType())
		}
		endTimes = micros(ends, nil)
	}
	dims := make([]*colView, len(p.dims))
	for i, d := range p.dims {
		c, err := column(rec, d.name)
		if err != nil {
			return err
		}
		if dims[i], err = newColView(c, d.kind, &st.s); err != nil {
			return fmt.Errorf("column %q: %w", d.name, err)
		}
	}
	defer func() {
		for _, v := range dims {
			st.s.release(v)
		}
	}()
	for i := range n {
		if ws.IsNull(i) || state.IsNull(i) {
			return fmt.Errorf("row %d has no %s or %s", i, ColWindowStart, ColState)
		}
		t := route(st.times[i])
		if t == nil {
			return fmt.Errorf("row at %s is outside the partitions read", fmtMicros(st.times[i]))
		}
		st.key = appendWindow(st.key[:0], st.times[i])
		for _, v := range dims {
			st.key = appendDim(st.key, v, i)
		}
		if p.cumulative() {
			// A step's row: its delta, keyed by the step's number.
			if ends.IsNull(i) || endTimes[i] <= st.times[i] {
				return fmt.Errorf("row %d of the cumulative window at %s has no valid %s", i, fmtMicros(st.times[i]), ColWindowEnd)
			}
			if bytes.Equal(state.Value(i), p.emptyState) {
				continue
			}
			st.key = binary.BigEndian.AppendUint32(st.key, uint32((endTimes[i]-st.times[i]+p.step-1)/p.step-1))
		}
		g := t.lookup(st.key)
		t.sync()
		if err := t.mergeState(g, state.Value(i)); err != nil {
			return fmt.Errorf("group at %s: %w", fmtMicros(st.times[i]), err)
		}
	}
	return nil
}

// outputSchema is the Arrow schema of the output table's rows.
func outputSchema(tbl *icetable.Table) (*arrow.Schema, error) {
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("arrow schema of %s: %w", tbl.Identifier(), err)
	}
	return sc, nil
}
