package verify

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/aggregate"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// Aggregate checks a summary table against its spec: it recomputes the
// spec as a backfill in memory (aggregate.Recompute) over exactly the
// source snapshot the table's cursor holds — all windows, or those
// starting in [from, to) widened to whole partitions — and compares the
// result with the table's rows of those windows, per window and group:
// groups missing from the table, extra groups, and groups whose
// window_end, measures, rank or _state differ, with the absolute and
// relative error of each numeric measure. _state is compared only when
// every measure is exact in both modes (no float sums or averages of
// float columns, whose last bits depend on the order of addition).
func Aggregate(ctx context.Context, cat icecat.Catalog, spec aggregate.Spec, from, to time.Time, o Options) (*Report, error) {
	o.applyDefaults()
	rep := &Report{Check: CheckAggregate, Started: o.Now()}
	defer func() { rep.Duration = o.Now().Sub(rep.Started) }()
	srcIdent, err := table.ParseIdent(spec.Source)
	if err != nil {
		return nil, err
	}
	srcTbl, err := cat.LoadTable(ctx, srcIdent)
	if err != nil {
		return nil, fmt.Errorf("load source table %s: %w", spec.Source, err)
	}
	exact, err := aggregate.MeasureKinds(spec, srcTbl.Schema())
	if err != nil {
		return nil, err
	}
	rec, err := aggregate.Recompute(ctx, cat, spec, aggregate.RecomputeOptions{
		From: from, To: to, Concurrency: o.Concurrency, Logger: o.Logger,
	})
	if err != nil {
		return nil, err
	}
	defer rec.Release()

	tr := newTableReport(spec.Output, o.MaxListed)
	rep.Tables = append(rep.Tables, tr)
	tr.Against = fmt.Sprintf("%s snapshot %d", spec.Source, rec.Cursor)
	if s := rec.Output.CurrentSnapshot(); s != nil {
		tr.Snapshot = s.SnapshotID
	}
	keyCols := append([]string{aggregate.ColWindowStart}, spec.Dimensions...)
	cmpCols := []string{aggregate.ColWindowEnd}
	measures := map[string]bool{}
	allExact := true
	for _, m := range spec.Measures {
		cmpCols = append(cmpCols, m.Name)
		measures[m.Name] = true
		allExact = allExact && exact[m.Name]
	}
	if spec.Top != nil {
		cmpCols = append(cmpCols, aggregate.ColRank)
	}
	if allExact {
		cmpCols = append(cmpCols, aggregate.ColState)
	} else {
		tr.Notes = append(tr.Notes, "_state not compared: float sums depend on the order rows were added")
	}

	// The recomputed groups, by key.
	type ref struct{ b, i int32 }
	index := map[string]ref{}
	seen := make([][]bool, len(rec.Records))
	var kb []byte
	for b, r := range rec.Records {
		kcols, err := columns(r, keyCols)
		if err != nil {
			return nil, fmt.Errorf("recomputed rows: %w", err)
		}
		seen[b] = make([]bool, r.NumRows())
		for i := range int(r.NumRows()) {
			kb = appendKey(kb[:0], kcols, i)
			index[string(kb)] = ref{int32(b), int32(i)}
		}
	}

	rd, err := reader.New(cat, spec.Output, reader.Config{Filter: rec.Filter, Concurrency: o.Concurrency, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	stream, err := rd.SnapshotIn(ctx, rec.Output, reader.At{})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", spec.Output, err)
	}
	for got, err := range stream.Records() {
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", spec.Output, err)
		}
		err = func() error {
			defer got.Release()
			kcols, err := columns(got, keyCols)
			if err != nil {
				return fmt.Errorf("table %s: %w", spec.Output, err)
			}
			gcols, err := columns(got, cmpCols)
			if err != nil {
				return fmt.Errorf("table %s: %w", spec.Output, err)
			}
			for i := range int(got.NumRows()) {
				kb = appendKey(kb[:0], kcols, i)
				r, ok := index[string(kb)]
				switch {
				case !ok:
					tr.add(Difference{Kind: KindExtra, Key: keyText(keyCols, kcols, i)})
					continue
				case seen[r.b][r.i]:
					tr.add(Difference{Kind: KindDuplicate, Key: keyText(keyCols, kcols, i)})
					continue
				}
				seen[r.b][r.i] = true
				want := rec.Records[r.b]
				wcols, err := columns(want, cmpCols)
				if err != nil {
					return fmt.Errorf("recomputed rows: %w", err)
				}
				for c, name := range cmpCols {
					compareValue(tr, o.MaxError, measures[name], keyCols, kcols, i, name, wcols[c], int(r.i), gcols[c], i)
				}
			}
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	for b, r := range rec.Records {
		kcols, _ := columns(r, keyCols)
		for i := range int(r.NumRows()) {
			if !seen[b][i] {
				tr.add(Difference{Kind: KindMissing, Key: keyText(keyCols, kcols, i)})
			}
		}
		tr.RowsCompared += r.NumRows()
		o.Metrics.addRows(CheckAggregate, spec.Output, r.NumRows())
	}
	o.Logger.Info("verified summary table", "table", spec.Output, "cursor", rec.Cursor,
		"groups", tr.RowsCompared, "differences", tr.Total())
	return rep, nil
}

// columns returns rec's columns named names.
func columns(rec arrow.RecordBatch, names []string) ([]arrow.Array, error) {
	out := make([]arrow.Array, len(names))
	for i, n := range names {
		idx := rec.Schema().FieldIndices(n)
		if len(idx) == 0 {
			return nil, fmt.Errorf("no column %q", n)
		}
		out[i] = rec.Column(idx[0])
	}
	return out, nil
}

// appendKey appends the canonical rendering of row i of cols.
func appendKey(b []byte, cols []arrow.Array, i int) []byte {
	for _, c := range cols {
		b = render(b, c, i)
		b = append(b, 0)
	}
	return b
}

// keyText names row i of cols for people.
func keyText(names []string, cols []arrow.Array, i int) string {
	vals := make([]string, len(cols))
	for c := range cols {
		vals[c] = renderString(cols[c], i)
	}
	return joinKey(names, vals)
}

// compareValue compares one column of a row present on both sides and
// records a difference (or a tolerated measure error).
func compareValue(tr *TableReport, maxErr float64, measure bool, keyNames []string, keys []arrow.Array, ki int,
	name string, want arrow.Array, wi int, got arrow.Array, gi int) {
	w, g := render(nil, want, wi), render(nil, got, gi)
	if string(w) == string(g) {
		return
	}
	d := Difference{Kind: KindDifferent, Key: keyText(keyNames, keys, ki), Column: name, Want: string(w), Got: string(g)}
	if measure {
		wv, ok1 := number(want, wi)
		gv, ok2 := number(got, gi)
		if ok1 && ok2 {
			abs, rel := measureErrors(wv, gv)
			if rel <= maxErr {
				tr.Tolerated++
				return
			}
			d.AbsError = &abs
			if rel <= 1e300 {
				d.RelError = &rel
			}
		}
	}
	tr.add(d)
}
