package transform

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/reader"
)

// dimIndex is a dimension table as of one snapshot, in memory: its used
// columns and a hash index from the join key to the row.
type dimIndex struct {
	snapshot int64
	rows     int
	// cols are the dimension's used columns (dimPlan.rel.cols), whole.
	cols []arrow.Array
	// One of the two indexes: intKey for a single integer-class key
	// column, byKey otherwise.
	intKey map[int64]int32
	byKey  map[string]int32
	single bool
}

func (d *dimIndex) release() {
	for _, c := range d.cols {
		c.Release()
	}
}

// dimTable keeps one dimension's versions: the table's metadata, loaded
// again when a fact newer than the last load arrives, and the indexes of
// the last snapshots used.
type dimTable struct {
	plan   *dimPlan
	reader *reader.Reader
	mem    memory.Allocator
	clock  reader.Clock
	tbl    *icetable.Table
	loaded time.Time // when tbl was loaded
	cache  []*dimIndex
	// loads counts index builds (tests, logs).
	loads int
}

// keep is how many versions of one dimension stay in memory.
const keep = 2

// versionAt returns the dimension as of the snapshot current at t (the
// commit time of a fact's source snapshot): the newest snapshot in the
// dimension's current history committed at or before t. A dimension with
// no snapshot then is empty.
func (d *dimTable) versionAt(ctx context.Context, t time.Time) (*dimIndex, error) {
	if d.tbl == nil || !d.loaded.After(t) {
		now := d.clock.Now()
		tbl, err := d.reader.Load(ctx)
		if err != nil {
			return nil, err
		}
		d.tbl, d.loaded = tbl, now
	}
	id, ok := reader.SnapshotBefore(d.tbl, t)
	if !ok {
		return nil, permanent(fmt.Errorf("dimension %s: its history before %s has expired (oldest parent %d): the version a fact of that time joins is gone; backfill a later range",
			d.reader.Name(), t.UTC().Format(time.RFC3339Nano), id))
	}
	for i, x := range d.cache {
		if x.snapshot == id {
			// Most recent first.
			d.cache = append(append([]*dimIndex{x}, d.cache[:i]...), d.cache[i+1:]...)
			return x, nil
		}
	}
	x, err := d.build(ctx, id)
	if err != nil {
		return nil, err
	}
	d.cache = append([]*dimIndex{x}, d.cache...)
	if len(d.cache) > keep {
		// An index that falls out is not released: a backfill's workers
		// may still be joining with it. Its arrays are Go memory, which
		// the collector frees once the last batch using it is done.
		d.cache = d.cache[:keep]
	}
	return x, nil
}

func (d *dimTable) close() {
	for _, x := range d.cache {
		x.release()
	}
	d.cache = nil
}

// build reads the dimension as of snapshot id (0: empty) and indexes it.
func (d *dimTable) build(ctx context.Context, id int64) (*dimIndex, error) {
	d.loads++
	p := d.plan
	x := &dimIndex{snapshot: id}
	// Columns read: the used ones, then the key columns not among them.
	read := slices.Clone(p.rel.cols)
	for _, k := range p.right {
		if !slices.Contains(read, k) {
			read = append(read, k)
		}
	}
	parts := make([][]arrow.Array, len(read))
	if id != 0 {
		r, err := reader.New(loaderOf(d.tbl), d.reader.Name(), readerConfigFrom(d.reader.Config(), read))
		if err != nil {
			return nil, err
		}
		st, err := r.SnapshotIn(ctx, d.tbl, reader.At{SnapshotID: id})
		if err != nil {
			return nil, fmt.Errorf("read dimension %s at snapshot %d: %w", d.reader.Name(), id, err)
		}
		for rec, err := range st.Records() {
			if err != nil {
				return nil, fmt.Errorf("read dimension %s at snapshot %d: %w", d.reader.Name(), id, err)
			}
			for i, name := range read {
				idx := rec.Schema().FieldIndices(name)
				if len(idx) == 0 {
					rec.Release()
					return nil, fmt.Errorf("dimension %s: column %s missing from its rows", d.reader.Name(), name)
				}
				c := rec.Column(idx[0])
				c.Retain()
				parts[i] = append(parts[i], c)
			}
			rec.Release()
		}
	}
	cols := make([]arrow.Array, len(read))
	defer func() {
		for _, ps := range parts {
			for _, c := range ps {
				c.Release()
			}
		}
	}()
	for i, ps := range parts {
		var err error
		switch len(ps) {
		case 0:
			f := p.rel.fields
			var t arrow.DataType
			if i < len(f) {
				t = f[i].Type
			} else {
				fld, _ := p.rel.sc.FindFieldByName(read[i])
				if t, err = arrowType(fld); err != nil {
					return nil, err
				}
			}
			cols[i] = array.MakeArrayOfNull(d.mem, t, 0)
		case 1:
			cols[i] = ps[0]
			cols[i].Retain()
		default:
			if cols[i], err = array.Concatenate(ps, d.mem); err != nil {
				return nil, fmt.Errorf("dimension %s: %w", d.reader.Name(), err)
			}
		}
	}
	for i, f := range p.rel.fields {
		if !arrow.TypeEqual(cols[i].DataType(), f.Type) {
			for _, c := range cols {
				c.Release()
			}
			return nil, fmt.Errorf("dimension %s: column %s is now %s, was %s when the transform started: restarting binds it anew",
				d.reader.Name(), read[i], cols[i].DataType(), f.Type)
		}
	}
	x.rows = cols[0].Len()
	keyCols := make([]arrow.Array, len(p.right))
	for i, k := range p.right {
		keyCols[i] = cols[slices.Index(read, k)]
	}
	if err := x.index(keyCols); err != nil {
		for _, c := range cols {
			c.Release()
		}
		return nil, fmt.Errorf("dimension %s: %w", d.reader.Name(), err)
	}
	x.cols = cols[:len(p.rel.cols)]
	for _, c := range cols[len(p.rel.cols):] {
		c.Release()
	}
	return x, nil
}

// index builds the key index; a later row of a key wins (a keyed table
// holds one live row per key).
func (x *dimIndex) index(keyCols []arrow.Array) error {
	if len(keyCols) == 1 {
		if c, _ := classOf(keyCols[0].DataType()); c == classInt {
			x.single = true
			x.intKey = make(map[int64]int32, x.rows)
			vals := ints(keyCols[0], nil)
			for i, v := range vals {
				if keyCols[0].IsValid(i) {
					x.intKey[v] = int32(i)
				}
			}
			return nil
		}
	}
	enc, err := newKeyEncoder(keyCols)
	if err != nil {
		return err
	}
	x.byKey = make(map[string]int32, x.rows)
	var buf []byte
	for i := range x.rows {
		var null bool
		buf, null = enc.append(buf[:0], i)
		if !null {
			x.byKey[string(buf)] = int32(i)
		}
	}
	return nil
}

// lookup returns, per fact row, the dimension row its key matches or -1.
func (x *dimIndex) lookup(keys []arrow.Array, dst []int32) ([]int32, error) {
	n := keys[0].Len()
	dst = slices.Grow(dst[:0], n)[:n]
	if x.single {
		k := keys[0]
		if c, _ := classOf(k.DataType()); c != classInt {
			return nil, fmt.Errorf("join key of type %s against an integer key", k.DataType())
		}
		vals := ints(k, nil)
		for i, v := range vals {
			row, ok := x.intKey[v]
			if !ok || k.IsNull(i) {
				row = -1
			}
			dst[i] = row
		}
		return dst, nil
	}
	enc, err := newKeyEncoder(keys)
	if err != nil {
		return nil, err
	}
	var buf []byte
	for i := range n {
		var null bool
		buf, null = enc.append(buf[:0], i)
		row, ok := x.byKey[string(buf)]
		if !ok || null {
			row = -1
		}
		dst[i] = row
	}
	return dst, nil
}

func loaderOf(tbl *icetable.Table) reader.TableLoader {
	return reader.LoaderFunc(func(context.Context, icetable.Identifier) (*icetable.Table, error) { return tbl, nil })
}

// readerConfigFrom is cfg reading only cols, in append mode.
func readerConfigFrom(cfg reader.Config, cols []string) reader.Config {
	cfg.Columns = cols
	cfg.Mode = reader.ModeAppend
	cfg.Filter = nil
	cfg.EventTime = nil
	return cfg
}
