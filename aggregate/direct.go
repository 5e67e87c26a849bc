package aggregate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/reader"
)

// A backfill of a YAML spec reads its source's Parquet files directly
// (directBackfill) rather than through the reader's Arrow record batches:
// the files the reader plans (reader.PlanSnapshot: the same snapshot,
// schema and pruning), only the columns the spec and its filter use,
// resolved by Iceberg field id, decoded page by page (directpage.go) into
// buffers reused from batch to batch, the filter
// evaluated by the read (directfilter.go) and the rows folded in by the
// same addViews as every other read. It reads no Arrow arrays, so string
// values are copied once instead of built into arrays, filtered (iceberg-go
// gathers the kept rows into new arrays) and viewed.
//
// It declines (errNoDirect) what it does not implement, and the backfill
// then reads through the reader as before: SQL specs, row-level deletes
// (a task with delete files), files split into ranges, a column nested,
// missing from the snapshot's schema, or stored otherwise than Iceberg
// writes it (a timestamp not in microseconds, INT96, a decimal of another
// scale), files without field ids, and filters over nested fields. A file
// declined mid-read restarts the backfill through the reader.

// errNoDirect means the direct read does not take this backfill.
var errNoDirect = errors.New("backfill cannot read the files directly")

// directBatchRows is the rows decoded per batch and column.
const directBatchRows = 64 << 10

// directCol is a source column the direct read decodes.
type directCol struct {
	id   int
	name string
	typ  iceberg.Type
	kind valueKind
}

// directRead is a backfill's direct read: its plan and columns.
type directRead struct {
	p    *plan
	sp   *reader.SnapshotPlan
	fs   iceio.IO
	cols []directCol
	// timeCol, dimCols and measCols index cols (measCols[m] -1 for count
	// of rows).
	timeCol  int
	dimCols  []int
	measCols []int
	// filterUses marks the columns the filter reads.
	filterUses []bool
	filter     iceberg.BooleanExpression // bound; nil: every row
	keep       func(int64) bool
	progress   Progress
}

// directBackfill aggregates the source as of snapshot snap, read with
// cfg's columns and filter, or returns errNoDirect.
func (a *Aggregator) directBackfill(ctx context.Context, cfg reader.Config, snap int64, keep func(int64) bool, pr Progress) (*groupTable, int64, error) {
	if a.plan.proj != nil {
		return nil, 0, fmt.Errorf("%w: a SQL spec", errNoDirect)
	}
	r, err := reader.New(a.cat, a.spec.Source, cfg)
	if err != nil {
		return nil, 0, err
	}
	sp, err := r.PlanSnapshot(ctx, reader.At{SnapshotID: snap})
	if err != nil {
		return nil, 0, fmt.Errorf("aggregate %s: backfill: %w", a.spec.Name, err)
	}
	d := &directRead{p: a.plan, sp: sp, keep: keep, progress: pr}
	if err := d.bind(!cfg.CaseInsensitive); err != nil {
		return nil, 0, err
	}
	var rows, bytes int64
	for _, t := range sp.Tasks {
		if len(t.DeleteFiles)+len(t.EqualityDeleteFiles)+len(t.DeletionVectorFiles) > 0 {
			return nil, 0, fmt.Errorf("%w: data file %s has row-level deletes", errNoDirect, t.File.FilePath())
		}
		if t.File.FileFormat() != iceberg.ParquetFile {
			return nil, 0, fmt.Errorf("%w: data file %s is %s", errNoDirect, t.File.FilePath(), t.File.FileFormat())
		}
		if t.Start != 0 || (t.Length != 0 && t.Length != t.File.FileSizeBytes()) {
			return nil, 0, fmt.Errorf("%w: data file %s is split", errNoDirect, t.File.FilePath())
		}
		rows += t.File.Count()
		bytes += t.File.FileSizeBytes()
	}
	if pr != nil {
		pr.SetTotals(rows, bytes)
	}
	if d.fs, err = sp.Table.FS(ctx); err != nil {
		return nil, 0, fmt.Errorf("aggregate %s: backfill: open file IO of %s: %w", a.spec.Name, a.spec.Source, err)
	}
	groups, n, err := d.run(ctx, a.opts.Concurrency)
	if err != nil && !errors.Is(err, errNoDirect) {
		return nil, 0, fmt.Errorf("aggregate %s: backfill of %s snapshot %d: %w", a.spec.Name, a.spec.Source, snap, err)
	}
	return groups, n, err
}

// bind resolves the spec's and the filter's columns in the snapshot's
// schema.
func (d *directRead) bind(caseSensitive bool) error {
	add := func(f iceberg.NestedField) (int, valueKind, bool) {
		for i, c := range d.cols {
			if c.id == f.ID {
				return i, c.kind, true
			}
		}
		k, ok := kindOf(f.Type)
		if !ok {
			return 0, 0, false
		}
		d.cols = append(d.cols, directCol{id: f.ID, name: f.Name, typ: f.Type, kind: k})
		return len(d.cols) - 1, k, true
	}
	byName := func(name string) (int, error) {
		for _, f := range d.sp.Schema.Fields() {
			if f.Name == name {
				if i, _, ok := add(f); ok {
					return i, nil
				}
				break
			}
		}
		return 0, fmt.Errorf("%w: column %q in the schema of the snapshot read", errNoDirect, name)
	}
	var err error
	if d.timeCol, err = byName(d.p.spec.Time); err != nil {
		return err
	}
	for _, dim := range d.p.dims {
		i, err := byName(dim.name)
		if err != nil {
			return err
		}
		d.dimCols = append(d.dimCols, i)
	}
	for _, m := range d.p.measures {
		i := -1
		if m.Column != "" {
			if i, err = byName(m.Column); err != nil {
				return err
			}
		}
		d.measCols = append(d.measCols, i)
	}
	d.filterUses = make([]bool, len(d.cols))
	if d.sp.Filter == nil || d.sp.Filter.Equals(iceberg.AlwaysTrue{}) {
		return nil
	}
	bound, err := iceberg.BindExpr(d.sp.Schema, d.sp.Filter, caseSensitive)
	if err != nil {
		return fmt.Errorf("%w: bind filter: %w", errNoDirect, err)
	}
	if _, all := bound.(iceberg.AlwaysTrue); all {
		return nil
	}
	d.filter = bound
	// Compile once to add the filter's columns and check it is supported.
	_, err = d.compileFilter(true)
	return err
}

// compileFilter compiles the filter for one reader of files. The first
// compilation (add) adds the columns the filter reads to d.cols and marks
// them in d.filterUses; later ones, which run concurrently, only find them.
func (d *directRead) compileFilter(add bool) (fexpr, error) {
	if d.filter == nil {
		return nil, nil
	}
	c := &filterCompiler{col: func(f iceberg.NestedField) (int, valueKind, bool) {
		i := slices.IndexFunc(d.cols, func(c directCol) bool { return c.id == f.ID })
		if i < 0 && add {
			k, ok := kindOf(f.Type)
			if !ok {
				return 0, 0, false
			}
			d.cols = append(d.cols, directCol{id: f.ID, name: f.Name, typ: f.Type, kind: k})
			d.filterUses = append(d.filterUses, false)
			i = len(d.cols) - 1
		}
		if i < 0 {
			return 0, 0, false
		}
		if add {
			d.filterUses[i] = true
		}
		return i, d.cols[i].kind, true
	}}
	e, err := iceberg.VisitExpr[fexpr](d.filter, c)
	if err != nil {
		return nil, fmt.Errorf("%w: filter: %w", errNoDirect, err)
	}
	return e, c.err
}

// run reads the planned files in workers goroutines, each into its own
// group table, and merges the tables.
func (d *directRead) run(ctx context.Context, workers int) (*groupTable, int64, error) {
	workers = max(1, min(workers, len(d.sp.Tasks)))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tasks := make(chan icetable.FileScanTask)
	tables := make([]*groupTable, workers)
	rowsPer := make([]int64, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		tables[w] = newBatchTable(d.p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fr, err := d.newFileReader()
			if err != nil {
				errs[w] = err
				cancel()
				return
			}
			defer fr.close()
			for t := range tasks {
				n, err := fr.read(ctx, t, tables[w])
				rowsPer[w] += n
				if err != nil {
					errs[w] = err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for _, t := range d.sp.Tasks {
		select {
		case tasks <- t:
		case <-ctx.Done():
			break feed
		}
	}
	close(tasks)
	wg.Wait()
	var rows int64
	for w := range workers {
		if errs[w] != nil {
			// A declined file wins over the errors of the workers it
			// cancelled.
			for _, e := range errs {
				if errors.Is(e, errNoDirect) {
					return nil, 0, e
				}
			}
			return nil, 0, errs[w]
		}
		rows += rowsPer[w]
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	slices.SortFunc(tables, func(x, y *groupTable) int { return y.len() - x.len() })
	out := tables[0]
	for _, t := range tables[1:] {
		out.mergeFrom(t)
	}
	return out, rows, nil
}

// fileReader is one worker's reader of files: its column buffers, filter
// and batch state, reused from file to file.
type fileReader struct {
	d      *directRead
	bufs   []*colBuf
	filter fexpr
	st     batchState
	pages  *pageBufs
	// kept lists the rows of a batch the filter keeps.
	kept []int32
	// notNull is the column of a filter that only keeps its non-null
	// rows (-1: another filter); valid holds its rows' validity.
	notNull int
	valid   []bool
	// dicts counts the dictionaries decoded.
	dicts int
}

func (d *directRead) newFileReader() (*fileReader, error) {
	f, err := d.compileFilter(false)
	if err != nil {
		return nil, err
	}
	pages, err := newPageBufs(len(d.cols))
	if err != nil {
		return nil, err
	}
	fr := &fileReader{d: d, filter: f, pages: pages, notNull: -1}
	if p, ok := f.(*fpred); ok && p.op == iceberg.OpNotNull {
		fr.notNull = p.col
	}
	for i, c := range d.cols {
		fr.bufs = append(fr.bufs, &colBuf{kind: c.kind, wantCodes: slices.Contains(d.dimCols, i)})
	}
	return fr, nil
}

func (fr *fileReader) close() { fr.pages.close() }

// read folds the rows of one data file into t and returns how many the
// filter kept.
func (fr *fileReader) read(ctx context.Context, t icetable.FileScanTask, gt *groupTable) (n int64, err error) {
	path := t.File.FilePath()
	in, err := fr.d.fs.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open data file %s: %w", path, err)
	}
	pf, err := file.NewParquetReader(in)
	if err != nil {
		_ = in.Close()
		return 0, fmt.Errorf("open data file %s: %w", path, err)
	}
	defer func() {
		if cerr := pf.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close data file %s: %w", path, cerr)
		}
	}()
	sc := pf.MetaData().Schema
	leaves, err := fr.d.leaves(sc)
	if err != nil {
		return 0, fmt.Errorf("%w: data file %s: %w", errNoDirect, path, err)
	}
	fileRows := max(pf.NumRows(), 1)
	fmd := pf.MetaData()
	for g := range pf.NumRowGroups() {
		rg := pf.RowGroup(g)
		srcs := make([]chunkSource, len(leaves))
		for i, leaf := range leaves {
			if leaf < 0 {
				continue
			}
			if srcs[i], err = newChunkSource(in, fmd.GetSourceFileSize(), fmd, rg, leaf, sc.Column(leaf), fr.d.cols[i].kind, fr.pages, i, &fr.dicts); err != nil {
				return n, fmt.Errorf("read data file %s: %w", path, err)
			}
		}
		left := rg.NumRows()
		for left > 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			b := int(min(left, directBatchRows))
			kept, err := fr.batch(srcs, b, gt)
			if err != nil {
				return n, fmt.Errorf("read data file %s: %w", path, err)
			}
			n += kept
			left -= int64(b)
			if p := fr.d.progress; p != nil {
				p.Add(int64(b), int64(float64(b)/float64(fileRows)*float64(t.File.FileSizeBytes())))
			}
		}
	}
	return n, nil
}

// leaves maps the read's columns to the file's leaf columns by field id
// (-1: the file predates the column, whose values are then null).
func (d *directRead) leaves(sc *schema.Schema) ([]int, error) {
	out := make([]int, len(d.cols))
	for i := range out {
		out[i] = -1
	}
	for leaf, col := range sc.Columns() {
		path := col.ColumnPath()
		id := int(col.SchemaNode().FieldID())
		if id < 0 {
			// Columns are then matched by a name mapping, which only
			// the reader applies.
			return nil, fmt.Errorf("column %s has no field id", col.Path())
		}
		for i, c := range d.cols {
			if c.id != id {
				continue
			}
			if len(path) != 1 || col.MaxRepetitionLevel() != 0 {
				return nil, fmt.Errorf("column %s is not a top-level primitive", c.name)
			}
			if err := checkPhysical(c, col); err != nil {
				return nil, err
			}
			out[i] = leaf
		}
	}
	return out, nil
}

// checkPhysical checks that col stores c as Iceberg writes it.
func checkPhysical(c directCol, col *schema.Column) error {
	bad := func() error {
		return fmt.Errorf("column %s (%s) is stored as %s %s", c.name, c.typ, col.PhysicalType(), col.LogicalType())
	}
	pt := col.PhysicalType()
	switch c.typ.(type) {
	case iceberg.Int32Type, iceberg.DateType:
		if pt != parquet.Types.Int32 {
			return bad()
		}
	case iceberg.Int64Type:
		if pt != parquet.Types.Int64 && pt != parquet.Types.Int32 {
			return bad()
		}
	case iceberg.TimestampType, iceberg.TimestampTzType:
		lt, ok := col.LogicalType().(schema.TimestampLogicalType)
		if pt != parquet.Types.Int64 || !ok || lt.TimeUnit() != schema.TimeUnitMicros {
			return bad()
		}
	case iceberg.Float32Type:
		if pt != parquet.Types.Float {
			return bad()
		}
	case iceberg.Float64Type:
		if pt != parquet.Types.Double && pt != parquet.Types.Float {
			return bad()
		}
	case iceberg.DecimalType:
		lt, ok := col.LogicalType().(schema.DecimalLogicalType)
		if !ok || int(lt.Scale()) != c.typ.(iceberg.DecimalType).Scale() {
			return bad()
		}
		switch pt {
		case parquet.Types.Int32, parquet.Types.Int64, parquet.Types.FixedLenByteArray, parquet.Types.ByteArray:
		default:
			return bad()
		}
	case iceberg.StringType, iceberg.BinaryType:
		if pt != parquet.Types.ByteArray {
			return bad()
		}
	case iceberg.BooleanType:
		if pt != parquet.Types.Boolean {
			return bad()
		}
	default:
		return bad()
	}
	return nil
}

// batch decodes the next n rows of every column, filters them and folds
// the rows kept into gt.
func (fr *fileReader) batch(srcs []chunkSource, n int, gt *groupTable) (int64, error) {
	d := fr.d
	read := func(filtered bool, sel []bool, kept []int32) error {
		for i, b := range fr.bufs {
			if d.filterUses[i] != filtered {
				continue
			}
			if err := b.read(srcs[i], n, sel, kept); err != nil {
				return fmt.Errorf("column %s: %w", d.cols[i].name, err)
			}
		}
		return nil
	}
	// The filter's columns first: the other columns are decoded into the
	// rows it keeps only, and the filter's are then compacted to them.
	var sel []bool
	kept := int64(n)
	if fr.filter != nil {
		if c := fr.notNull; c >= 0 {
			// The filter keeps the column's non-null rows: they are
			// all its read stores.
			fr.valid = growBools(fr.valid, n)
			if err := fr.bufs[c].readValid(srcs[c], n, fr.valid); err != nil {
				return 0, fmt.Errorf("column %s: %w", d.cols[c].name, err)
			}
			sel = fr.valid
		} else {
			if err := read(true, nil, nil); err != nil {
				return 0, err
			}
			sel = fr.filter.eval(fr.bufs, n)
		}
		// The kept rows, listed once for every column's pages.
		fr.kept = grow(fr.kept, n+1)
		w := 0
		for i, ok := range sel {
			fr.kept[w] = int32(i)
			w += b2i(ok)
		}
		fr.kept = fr.kept[:w]
		kept = int64(w)
		if kept == 0 {
			for i, src := range srcs {
				if src != nil && !d.filterUses[i] {
					if err := src.skip(n); err != nil {
						return 0, fmt.Errorf("column %s: %w", d.cols[i].name, err)
					}
				}
			}
			return 0, nil
		}
	}
	var keptRows []int32
	if sel != nil {
		keptRows = fr.kept
	}
	if err := read(false, sel, keptRows); err != nil {
		return 0, err
	}
	if sel != nil {
		// Every column holds the kept rows only.
		for i, b := range fr.bufs {
			if d.filterUses[i] && i != fr.notNull {
				b.compact(sel)
			}
		}
	}
	tb := fr.bufs[d.timeCol]
	m := tb.n
	bv := &batchViews{n: m, times: tb.ints[:m]}
	if tb.nulls {
		fr.st.tnull = slices.Grow(fr.st.tnull[:0], m)[:m]
		for i, ok := range tb.valids[:m] {
			fr.st.tnull[i] = !ok
		}
		bv.tnull = fr.st.tnull
	}
	// One view per column, so that measures of a column share its hashes.
	views := make([]*colView, len(fr.bufs))
	view := func(c int) *colView {
		if views[c] == nil {
			views[c] = fr.bufs[c].view()
		}
		return views[c]
	}
	for _, c := range d.dimCols {
		bv.dims = append(bv.dims, view(c))
	}
	for _, c := range d.measCols {
		var v *colView
		if c >= 0 {
			v = view(c)
		}
		bv.meas = append(bv.meas, v)
	}
	defer func() {
		for _, v := range views {
			if v != nil {
				fr.st.s.release(v)
			}
		}
	}()
	if _, err := d.p.addViews(gt, bv, d.keep, &fr.st); err != nil {
		return 0, err
	}
	return kept, nil
}
