package transform

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// Dedup's persistent state is the output table itself: the kept rows. The
// newest kept event time (the dedup watermark) is a table.Positions entry
// committed with the rows, under DedupSource; the seen keys are rebuilt
// from the output's rows newer than that less the window.

// DedupSource is the position-map source id under which a transform with
// dedup keeps the newest event time of its kept rows (partition
// DedupPartition, in microseconds), committed with the rows and cursor.
const DedupSource = "transform:dedup"

// DedupPartition is the partition of DedupSource's entry.
const DedupPartition = "max-event-time-us"

// dedupPlan locates the dedup columns in the output schema.
type dedupPlan struct {
	spec    Dedup
	keyCols []int
	timeCol int
	window  int64 // microseconds
}

func newDedupPlan(d Dedup, out *arrow.Schema) (*dedupPlan, error) {
	p := &dedupPlan{spec: d, window: time.Duration(d.Window).Microseconds()}
	for _, k := range d.Key {
		idx := out.FieldIndices(k)
		if len(idx) == 0 {
			return nil, fmt.Errorf("dedup.key: %s is not an output column", k)
		}
		if _, err := classOf(out.Field(idx[0]).Type); err != nil {
			return nil, fmt.Errorf("dedup.key: %s: %w", k, err)
		}
		p.keyCols = append(p.keyCols, idx[0])
	}
	idx := out.FieldIndices(d.Time)
	if len(idx) == 0 {
		return nil, fmt.Errorf("dedup.time: %s is not an output column", d.Time)
	}
	ts, ok := out.Field(idx[0]).Type.(*arrow.TimestampType)
	if !ok || ts.Unit != arrow.Microsecond {
		return nil, fmt.Errorf("dedup.time: %s is %s, not a timestamp", d.Time, out.Field(idx[0]).Type)
	}
	p.timeCol = idx[0]
	return p, nil
}

// dedupState is the seen keys: per key, the newest event time of a kept
// row, and the newest kept event time overall (max).
type dedupState struct {
	seen map[string]int64
	max  int64
	have bool // max is set
}

func newDedupState() *dedupState { return &dedupState{seen: map[string]int64{}} }

// apply decides, in order, which rows of rec are kept, updates the state,
// and returns the kept rows (rec itself when all are; nil when none). The
// rule: a row whose key has a kept row at e, with e no older than max −
// window (max: the newest kept event time so far) and |t − e| < window,
// is a duplicate. A row without event time is kept and not recorded.
func (s *dedupState) apply(ctx context.Context, p *dedupPlan, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	n := int(rec.NumRows())
	keys := make([]arrow.Array, len(p.keyCols))
	for i, c := range p.keyCols {
		keys[i] = rec.Column(c)
	}
	enc, err := newKeyEncoder(keys)
	if err != nil {
		return nil, err
	}
	times := rec.Column(p.timeCol).(*array.Timestamp)
	mask := make([]bool, n)
	kept := 0
	var buf []byte
	for i := range n {
		if times.IsNull(i) {
			mask[i] = true
			kept++
			continue
		}
		t := int64(times.Value(i))
		buf, _ = enc.append(buf[:0], i)
		e, ok := s.seen[string(buf)]
		if ok && (!s.have || e >= s.max-p.window) && abs(t-e) < p.window {
			continue
		}
		mask[i] = true
		kept++
		if !ok || t > e {
			s.seen[string(buf)] = t
		}
		if !s.have || t > s.max {
			s.max, s.have = t, true
		}
	}
	switch kept {
	case n:
		rec.Retain()
		return rec, nil
	case 0:
		return nil, nil
	}
	return filterRows(ctx, rec, mask)
}

// evict drops keys that can no longer match (older than max − window).
func (s *dedupState) evict(p *dedupPlan) {
	if !s.have {
		return
	}
	for k, e := range s.seen {
		if e < s.max-p.window {
			delete(s.seen, k)
		}
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// noMax is the DedupPartition position of a state without kept rows.
const noMax = math.MinInt64

// positions is the state's position-map entry.
func (s *dedupState) positions() table.Positions {
	if !s.have {
		return table.Positions{DedupPartition: noMax}
	}
	return table.Positions{DedupPartition: s.max}
}

// loadDedupState rebuilds the state as of the output table tbl: the
// newest kept event time from its positions, the seen keys from its rows
// at most a window older.
func (t *Transformer) loadDedupState(ctx context.Context, tbl *icetable.Table) (*dedupState, error) {
	s := newDedupState()
	pm, err := table.CurrentPositions(tbl)
	if err != nil {
		return nil, err
	}
	max, ok := pm[DedupSource][DedupPartition]
	if !ok || max == noMax || tbl.CurrentSnapshot() == nil {
		return s, nil
	}
	s.max, s.have = max, true
	p := t.dedup
	// The key columns, then the time unless the key holds it (a column
	// is read once).
	cols := append([]string{}, p.spec.Key...)
	timeCol := slices.Index(cols, p.spec.Time)
	if timeCol < 0 {
		cols, timeCol = append(cols, p.spec.Time), len(cols)
	}
	r, err := reader.New(loaderOf(tbl), t.spec.Output, reader.Config{
		Columns:     cols,
		Filter:      iceberg.GreaterThanEqual(iceberg.Reference(p.spec.Time), iceberg.Timestamp(max-p.window)),
		Concurrency: t.opts.Concurrency, Logger: t.log, Clock: t.opts.Clock,
	})
	if err != nil {
		return nil, err
	}
	st, err := r.SnapshotIn(ctx, tbl, reader.At{})
	if err != nil {
		return nil, fmt.Errorf("read dedup state of %s: %w", t.spec.Output, err)
	}
	for rec, err := range st.Records() {
		if err != nil {
			return nil, fmt.Errorf("read dedup state of %s: %w", t.spec.Output, err)
		}
		err = s.load(rec, len(p.spec.Key), timeCol)
		rec.Release()
		if err != nil {
			return nil, fmt.Errorf("dedup state of %s: %w", t.spec.Output, err)
		}
	}
	return s, nil
}

// load folds stored rows (the nkeys key columns, the time in column
// timeCol: after them, or one of them) into the state.
func (s *dedupState) load(rec arrow.RecordBatch, nkeys, timeCol int) error {
	keys := make([]arrow.Array, nkeys)
	for i := range nkeys {
		keys[i] = rec.Column(i)
	}
	enc, err := newKeyEncoder(keys)
	if err != nil {
		return err
	}
	times, ok := rec.Column(timeCol).(*array.Timestamp)
	if !ok {
		return fmt.Errorf("time column is %s", rec.Column(timeCol).DataType())
	}
	var buf []byte
	for i := range int(rec.NumRows()) {
		if times.IsNull(i) {
			continue
		}
		v := int64(times.Value(i))
		buf, _ = enc.append(buf[:0], i)
		if e, ok := s.seen[string(buf)]; !ok || v > e {
			s.seen[string(buf)] = v
		}
	}
	return nil
}
