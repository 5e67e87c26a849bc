package transform

import (
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
)

// A keyed source (Iceberg identifier fields: a CDC mirror) whose key
// columns the select list keeps as plain column references gets a keyed
// output: the same key under the output's names, as identifier fields.
// Its changelog is applied: a source DELETE row deletes the output row of
// its key; an INSERT row (a new key, or the new image of an update, which
// the changelog gives as a DELETE of the old image and an INSERT) upserts
// it when it passes the WHERE filter. A batch commits one row delta:
// equality deletes of every key the batch touched, and the last image of
// each key that is still live — with the cursor.

// keyedPlan locates the key in the source rows and the output.
type keyedPlan struct {
	// src are the key columns' indexes in the source's used columns;
	// out their indexes in the output schema; ids the output's field ids.
	src, out []int
	ids      []int
	names    []string
	schema   *arrow.Schema // the key columns of the output
}

// keyedOutput finds the output columns that copy the source's key: nil
// when the source has no key or the select list drops part of it.
func (p *plan) keyedOutput(src *iceberg.Schema) []string {
	if len(src.IdentifierFieldIDs) == 0 {
		return nil
	}
	var names []string
	for _, id := range src.IdentifierFieldIDs {
		f, ok := src.FindFieldByID(id)
		if !ok {
			return nil
		}
		i := p.src.index(f.Name)
		if i < 0 {
			return nil
		}
		found := ""
		for _, o := range p.out {
			if o.prog == nil && o.field == i {
				found = o.name
				break
			}
		}
		if found == "" {
			return nil
		}
		names = append(names, found)
	}
	return names
}

func newKeyedPlan(p *plan, names []string, srcKey []string, out *arrow.Schema, sc *iceberg.Schema) (*keyedPlan, error) {
	k := &keyedPlan{names: names}
	var fields []arrow.Field
	for i, n := range names {
		idx := out.FieldIndices(n)
		f, ok := sc.FindFieldByName(n)
		if len(idx) == 0 || !ok {
			return nil, fmt.Errorf("key column %s is not in the output", n)
		}
		if !slices.Contains(sc.IdentifierFieldIDs, f.ID) {
			return nil, fmt.Errorf("the output's identifier fields %v do not include %s: write to a new output table", sc.IdentifierFieldIDs, n)
		}
		k.out = append(k.out, idx[0])
		k.ids = append(k.ids, f.ID)
		k.src = append(k.src, p.src.index(srcKey[i]))
		fields = append(fields, out.Field(idx[0]))
	}
	k.schema = arrow.NewSchema(fields, nil)
	return k, nil
}

// keys builds the output key record of a source batch of DELETE rows.
func (t *Transformer) keys(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	k := t.keyed
	cols := make([]arrow.Array, len(k.src))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, si := range k.src {
		name := t.plan.src.cols[si]
		idx := rec.Schema().FieldIndices(name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("source key column %s missing from the rows read", name)
		}
		c := rec.Column(idx[0])
		want := k.schema.Field(i).Type
		if arrow.TypeEqual(c.DataType(), want) {
			c.Retain()
		} else {
			var err error
			if c, err = compute.CastArray(ctx, c, compute.SafeCastOptions(want)); err != nil {
				return nil, fmt.Errorf("key column %s: %w", name, err)
			}
		}
		cols[i] = c
	}
	return array.NewRecordBatch(k.schema, cols, rec.NumRows()), nil
}

// sink receives a transform's output in source order.
type sink interface {
	// add takes ownership of rec: output rows, or (del) the keys of
	// deleted rows.
	add(ctx context.Context, rec arrow.RecordBatch, del bool) error
	// release drops what the sink holds.
	release()
}

// appendSink collects output rows, deduplicated when the spec says so.
type appendSink struct {
	dedup *dedupPlan
	state *dedupState // nil without dedup
	recs  []arrow.RecordBatch
}

func (s *appendSink) add(ctx context.Context, rec arrow.RecordBatch, del bool) error {
	if del {
		rec.Release()
		return fmt.Errorf("%w", ErrSourceDeletes)
	}
	if s.state != nil {
		d, err := s.state.apply(ctx, s.dedup, rec)
		rec.Release()
		if err != nil {
			return err
		}
		rec = d
	}
	if rec != nil {
		s.recs = append(s.recs, rec)
	}
	return nil
}

func (s *appendSink) release() {
	releaseAll(s.recs)
	s.recs = nil
}

// keyedSink applies changes by key: the last image of every key touched,
// and the keys touched.
type keyedSink struct {
	k    *keyedPlan
	recs []arrow.RecordBatch // upserted rows
	dels []arrow.RecordBatch // deleted keys
	// last maps a key to its last upsert (record<<32 | row), or -1 when
	// its last change deleted it.
	last map[string]int64
}

func newKeyedSink(k *keyedPlan) *keyedSink { return &keyedSink{k: k, last: map[string]int64{}} }

func (s *keyedSink) add(_ context.Context, rec arrow.RecordBatch, del bool) error {
	keyCols := make([]arrow.Array, len(s.k.out))
	for i := range keyCols {
		if del {
			keyCols[i] = rec.Column(i)
		} else {
			keyCols[i] = rec.Column(s.k.out[i])
		}
	}
	enc, err := newKeyEncoder(keyCols)
	if err != nil {
		rec.Release()
		return err
	}
	ri := int64(len(s.recs))
	var buf []byte
	for i := range int(rec.NumRows()) {
		buf, _ = enc.append(buf[:0], i)
		if del {
			s.last[string(buf)] = -1
		} else {
			s.last[string(buf)] = ri<<32 | int64(i)
		}
	}
	if del {
		s.dels = append(s.dels, rec)
	} else {
		s.recs = append(s.recs, rec)
	}
	return nil
}

func (s *keyedSink) release() {
	releaseAll(s.recs)
	releaseAll(s.dels)
	s.recs, s.dels, s.last = nil, nil, map[string]int64{}
}

// rows returns the live last images (caller releases) and the key
// records of every key touched (owned by the sink).
func (s *keyedSink) rows(ctx context.Context) (upserts, keys []arrow.RecordBatch, err error) {
	keys = append(keys, s.dels...)
	for ri, rec := range s.recs {
		keyCols := make([]arrow.Array, len(s.k.out))
		for i, c := range s.k.out {
			keyCols[i] = rec.Column(c)
		}
		kr := array.NewRecordBatch(s.k.schema, keyCols, rec.NumRows())
		s.dels = append(s.dels, kr) // released with the sink
		keys = append(keys, kr)
		enc, err := newKeyEncoder(keyCols)
		if err != nil {
			releaseAll(upserts)
			return nil, nil, err
		}
		mask := make([]bool, rec.NumRows())
		all := true
		var buf []byte
		for i := range mask {
			buf, _ = enc.append(buf[:0], i)
			mask[i] = s.last[string(buf)] == int64(ri)<<32|int64(i)
			all = all && mask[i]
		}
		if all {
			rec.Retain()
			upserts = append(upserts, rec)
			continue
		}
		live, err := filterRows(ctx, rec, mask)
		if err != nil {
			releaseAll(upserts)
			return nil, nil, err
		}
		if live.NumRows() == 0 {
			live.Release()
			continue
		}
		upserts = append(upserts, live)
	}
	return upserts, keys, nil
}

// applyRowDelta stages a keyed batch on txn: equality deletes of keys,
// the rows as new data files, in one row delta.
func (t *Transformer) applyRowDelta(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties, rows, keys []arrow.RecordBatch) error {
	rd := txn.NewRowDelta(props)
	if len(keys) > 0 {
		dels, err := txn.WriteEqualityDeletes(ctx, t.keyed.ids, seqOf(keys))
		if err != nil {
			return fmt.Errorf("write equality deletes: %w", err)
		}
		rd.AddDeletes(dels...)
	}
	if len(rows) > 0 {
		staged, err := txn.StagedTable()
		if err != nil {
			return err
		}
		for df, err := range icetable.WriteRecords(ctx, staged.Table, t.out, seqOf(rows)) {
			if err != nil {
				return fmt.Errorf("write data files: %w", err)
			}
			rd.AddRows(df)
		}
	}
	return rd.Commit(ctx)
}

// seqOf yields recs, each retained first: iceberg-go's writers release
// the batches they consume, and a commit attempt that fails is staged
// again from the same batches.
func seqOf(recs []arrow.RecordBatch) func(yield func(arrow.RecordBatch, error) bool) {
	return func(yield func(arrow.RecordBatch, error) bool) {
		for _, r := range recs {
			r.Retain()
			if !yield(r, nil) {
				r.Release()
				return
			}
		}
	}
}
