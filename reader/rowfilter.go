package reader

import (
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/compute/exprs"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/substrait"
	"github.com/substrait-io/substrait-go/v8/expr"
)

// iceberg-go v0.7.0 skips Parquet row groups it should read: its row-group
// statistics evaluator (inclusiveMetricsEval.TestRowGroup) takes arrow-go's
// Statistics.NumValues(), which is the count of non-null values, for
// Iceberg's value count, which includes nulls. A row group whose filtered
// column holds as many nulls as non-null values then looks all null, and a
// comparison on that column (=, <, >, in, starts with, not null) skips it
// with its matching rows. Manifest metrics count values correctly, so data
// file pruning is right.
//
// The reader therefore plans with the whole filter (manifest and data file
// pruning) and reads with the filter's top-level conjuncts split in two:
//   - a conjunct on required top-level columns only, which hold no nulls, is
//     handed to iceberg-go as it is;
//   - a conjunct c on nullable top-level columns x, y, ... is handed to
//     iceberg-go as "c or x is null or y is null ...", so a row group is
//     pruned by c only when those columns have no nulls in it (where the
//     counts are right), and c itself is applied by the reader to the
//     batches iceberg-go returns (postFilter), with the Substrait conversion
//     iceberg-go uses, so rows are kept or dropped exactly as iceberg-go
//     would;
//   - a conjunct on a nested field is applied by the reader only.
//
// Row groups of nullable columns that hold nulls are thus read, not pruned,
// and such conjuncts are evaluated twice per row. iceberg-go's issue tracker
// had no report of this (searched December 2026).

// readFilter is how one read applies the reader's filter.
type readFilter struct {
	// pushed is evaluated by iceberg-go (row-group pruning and rows).
	pushed iceberg.BooleanExpression
	// post is evaluated on the batches iceberg-go returns; AlwaysTrue when
	// iceberg-go evaluates the whole filter.
	post iceberg.BooleanExpression
	// extra are the columns the post filter needs that the output does not
	// project; the read projects them too and drops them after filtering.
	extra []string
}

// splitFilter splits the reader's filter for a read of tbl with the scan
// options extra (a snapshot's schema, for a read as of a snapshot).
func (r *Reader) splitFilter(tbl *icetable.Table, extra []icetable.ScanOption) (readFilter, error) {
	if r.filter == nil || r.filter.Equals(iceberg.AlwaysTrue{}) {
		return readFilter{pushed: iceberg.AlwaysTrue{}, post: iceberg.AlwaysTrue{}}, nil
	}
	sc, err := tbl.Scan(extra...).Projection()
	if err != nil {
		return readFilter{}, fmt.Errorf("read schema of %s: %w", r.name, err)
	}
	cs := !r.cfg.CaseInsensitive
	parts, err := iceberg.VisitExpr(r.filter, conjuncts{})
	if err != nil {
		return readFilter{}, fmt.Errorf("split filter of %s: %w", r.name, err)
	}
	var pushed, post []iceberg.BooleanExpression
	var postIDs []int
	for _, p := range parts {
		bound, err := iceberg.BindExpr(sc, p, cs)
		if err != nil {
			return readFilter{}, fmt.Errorf("bind filter of %s: %w", r.name, err)
		}
		ids, err := iceberg.ExtractFieldIDs(bound)
		if err != nil {
			return readFilter{}, fmt.Errorf("bind filter of %s: %w", r.name, err)
		}
		slices.Sort(ids)
		guarded, nested := []iceberg.BooleanExpression{p}, false
		for _, id := range ids {
			f, top := topLevel(sc, id)
			switch {
			case !top:
				nested = true
			case !f.Required:
				guarded = append(guarded, iceberg.IsNull(iceberg.Reference(f.Name)))
			}
		}
		switch {
		case nested:
			// iceberg-go v0.7.0 panics evaluating "or" over a nested
			// field (index out of range in arrow's take kernel), so the
			// conjunct is not guarded but left to the reader alone.
		case len(guarded) == 1:
			pushed = append(pushed, p)
			continue
		default:
			pushed = append(pushed, iceberg.NewOr(guarded[0], guarded[1], guarded[2:]...))
		}
		post = append(post, p)
		postIDs = append(postIDs, ids...)
	}
	rf := readFilter{pushed: and(pushed), post: and(post)}
	if len(r.cfg.Columns) == 0 || slices.Contains(r.cfg.Columns, "*") || len(post) == 0 {
		return rf, nil
	}
	proj, err := sc.Select(cs, r.cfg.Columns...)
	if err != nil {
		return readFilter{}, fmt.Errorf("project columns of %s: %w", r.name, err)
	}
	for _, id := range postIDs {
		if _, ok := proj.FindFieldByID(id); ok {
			continue
		}
		if name, ok := sc.FindColumnName(id); ok && !slices.Contains(rf.extra, name) {
			rf.extra = append(rf.extra, name)
		}
	}
	return rf, nil
}

// topLevel returns the top-level column of sc with field id id; ok is
// false for a nested field (a required field of an optional struct is null
// when the struct is, so only a top-level column's Required is trusted).
func topLevel(sc *iceberg.Schema, id int) (iceberg.NestedField, bool) {
	for _, f := range sc.Fields() {
		if f.ID == id {
			return f, true
		}
	}
	return iceberg.NestedField{}, false
}

func and(parts []iceberg.BooleanExpression) iceberg.BooleanExpression {
	switch len(parts) {
	case 0:
		return iceberg.AlwaysTrue{}
	case 1:
		return parts[0]
	}
	return iceberg.NewAnd(parts[0], parts[1], parts[2:]...)
}

// conjuncts lists an expression's top-level conjuncts.
type conjuncts struct{}

func (conjuncts) VisitTrue() []iceberg.BooleanExpression { return nil }
func (conjuncts) VisitFalse() []iceberg.BooleanExpression {
	return []iceberg.BooleanExpression{iceberg.AlwaysFalse{}}
}
func (conjuncts) VisitNot(c []iceberg.BooleanExpression) []iceberg.BooleanExpression {
	return []iceberg.BooleanExpression{iceberg.NewNot(and(c))}
}
func (conjuncts) VisitAnd(l, r []iceberg.BooleanExpression) []iceberg.BooleanExpression {
	return append(l, r...)
}
func (conjuncts) VisitOr(l, r []iceberg.BooleanExpression) []iceberg.BooleanExpression {
	return []iceberg.BooleanExpression{iceberg.NewOr(and(l), and(r))}
}
func (conjuncts) VisitUnbound(p iceberg.UnboundPredicate) []iceberg.BooleanExpression {
	return []iceberg.BooleanExpression{p}
}
func (conjuncts) VisitBound(p iceberg.BoundPredicate) []iceberg.BooleanExpression {
	return []iceberg.BooleanExpression{p}
}

// readOptions are the scan options of reading data files: planOptions with
// the filter iceberg-go evaluates and the columns the post filter needs.
func (r *Reader) readOptions(rf readFilter, extra ...icetable.ScanOption) []icetable.ScanOption {
	opts := []icetable.ScanOption{
		icetable.WithRowFilter(rf.pushed),
		icetable.WithCaseSensitive(!r.cfg.CaseInsensitive),
		icetable.WithMaxConcurrency(r.cfg.Concurrency),
		icetable.WithSelectedFields(append(slices.Clone(r.cfg.Columns), rf.extra...)...),
		icetable.WithArrowBatchSize(r.cfg.BatchSize),
	}
	return append(opts, extra...)
}

// postFilter evaluates a filter on the batches of a read and projects them
// to the output schema.
type postFilter struct {
	ext  *expr.ExtensionRegistry
	expr expr.Expression
	// out is the output schema when the read projects extra columns.
	out *arrow.Schema
}

// newPostFilter compiles rf.post for batches of scan's projection; out is
// the output schema.
func newPostFilter(scan *icetable.Scan, rf readFilter, out *arrow.Schema, caseSensitive bool) (*postFilter, error) {
	if rf.post.Equals(iceberg.AlwaysTrue{}) {
		return nil, nil
	}
	sc, err := scan.Projection()
	if err != nil {
		return nil, err
	}
	bound, err := iceberg.BindExpr(sc, rf.post, caseSensitive)
	if err != nil {
		return nil, err
	}
	ext, e, err := substrait.ConvertExpr(sc, bound, caseSensitive)
	if err != nil {
		return nil, err
	}
	p := &postFilter{ext: ext, expr: e}
	if len(rf.extra) > 0 {
		p.out = out
	}
	return p, nil
}

// wrap filters and projects the batches of seq.
func (p *postFilter) wrap(ctx context.Context, seq iter.Seq2[arrow.RecordBatch, error]) iter.Seq2[arrow.RecordBatch, error] {
	if p == nil {
		return seq
	}
	ctx = exprs.WithExtensionIDSet(ctx, exprs.NewExtensionSetDefault(*p.ext))
	return func(yield func(arrow.RecordBatch, error) bool) {
		for rec, err := range seq {
			if err == nil {
				rec, err = p.apply(ctx, rec)
			}
			if !yield(rec, err) || err != nil {
				return
			}
		}
	}
}

// apply filters rec, taking ownership of it.
func (p *postFilter) apply(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	defer rec.Release()
	in := compute.NewDatumWithoutOwning(rec)
	mask, err := exprs.ExecuteScalarExpression(ctx, rec.Schema(), p.expr, in)
	if err != nil {
		return nil, fmt.Errorf("evaluate filter: %w", err)
	}
	defer mask.Release()
	res, err := compute.Filter(ctx, in, mask, *compute.DefaultFilterOptions())
	if err != nil {
		return nil, fmt.Errorf("evaluate filter: %w", err)
	}
	out := res.(*compute.RecordDatum).Value
	if p.out == nil {
		return out, nil
	}
	defer out.Release()
	return project(out, p.out)
}

// project returns the columns of to from rec, whose columns (and struct
// fields) are a superset of them.
func project(rec arrow.RecordBatch, to *arrow.Schema) (arrow.RecordBatch, error) {
	cols := make([]arrow.Array, to.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, f := range to.Fields() {
		idx := rec.Schema().FieldIndices(f.Name)
		if len(idx) != 1 {
			return nil, fmt.Errorf("project filtered rows: no column %q in %s", f.Name, rec.Schema())
		}
		d, err := projectData(rec.Column(idx[0]).Data(), f.Type)
		if err != nil {
			return nil, err
		}
		cols[i] = array.MakeFromData(d)
		d.Release()
	}
	return array.NewRecordBatch(to, cols, rec.NumRows()), nil
}

// projectData returns d as type to, dropping struct fields to lacks.
func projectData(d arrow.ArrayData, to arrow.DataType) (arrow.ArrayData, error) {
	if arrow.TypeEqual(d.DataType(), to) {
		d.Retain()
		return d, nil
	}
	st, ok1 := to.(*arrow.StructType)
	from, ok2 := d.DataType().(*arrow.StructType)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("project filtered rows: %s is not %s", d.DataType(), to)
	}
	children := make([]arrow.ArrayData, st.NumFields())
	defer func() {
		for _, c := range children {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, f := range st.Fields() {
		j, ok := from.FieldIdx(f.Name)
		if !ok {
			return nil, fmt.Errorf("project filtered rows: no field %q in %s", f.Name, from)
		}
		c, err := projectData(d.Children()[j], f.Type)
		if err != nil {
			return nil, err
		}
		children[i] = c
	}
	return array.NewData(to, d.Len(), d.Buffers()[:1], children, d.NullN(), d.Offset()), nil
}
