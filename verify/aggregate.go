package verify

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/aggregate"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// AggregateRange selects the windows Aggregate checks.
type AggregateRange struct {
	// From and To bound the windows by their start, [From, To), widened
	// to whole output partitions. Zero: from the first, to the last
	// window of the table (found from its files' statistics when Step is
	// set).
	From, To time.Time
	// Step, when positive, checks the range a step at a time (rounded up
	// to whole output partitions): each step recomputes only its windows
	// and compares them, so memory holds one step's groups, and the source
	// is read once per step (pruned by its partitions and event-time
	// statistics). Default 0: the whole range at once.
	Step time.Duration
}

// Aggregate checks a summary table against its spec: it recomputes the
// spec as a backfill in memory (aggregate.Recompute) over exactly the
// source snapshot the table's cursor holds — all windows, or those of the
// range — and compares the result with the table's rows of those windows,
// per window and group: groups missing from the table, extra groups, and
// groups whose window_end, measures, rank or _state differ, with the
// absolute and relative error of each numeric measure. _state is compared
// only when every measure is exact in both modes (no float sums or
// averages of float columns, whose last bits depend on the order of
// addition).
func Aggregate(ctx context.Context, cat icecat.Catalog, spec aggregate.Spec, r AggregateRange, o Options) (*Report, error) {
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
	tr := newTableReport(spec.Output, o.MaxListed)
	rep.Tables = append(rep.Tables, tr)
	if r.Step <= 0 {
		_, err := aggregateStep(ctx, cat, spec, r.From, r.To, exact, o, tr)
		return rep, err
	}
	unit := spec.PartitionUnit()
	step := (r.Step + unit - 1) / unit * unit
	from, to := r.From, r.To
	if from.IsZero() || to.IsZero() {
		lo, hi, ok, err := windowBounds(ctx, cat, spec.Output)
		if err != nil {
			return nil, err
		}
		if !ok {
			_, err := aggregateStep(ctx, cat, spec, r.From, r.To, exact, o, tr)
			return rep, err
		}
		if from.IsZero() {
			from = lo
		}
		if to.IsZero() {
			to = hi.Add(time.Microsecond)
		}
	}
	from = from.Truncate(unit)
	cursors := map[int64]bool{}
	for t := from; t.Before(to); t = t.Add(step) {
		cur, err := aggregateStep(ctx, cat, spec, t, minTime(t.Add(step), to), exact, o, tr)
		if err != nil {
			return nil, err
		}
		cursors[cur] = true
	}
	if len(cursors) > 1 {
		tr.Notes = append(tr.Notes, fmt.Sprintf("the table's cursor moved during the check: the steps were compared at %d source snapshots", len(cursors)))
	}
	return rep, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// windowBounds returns the least and greatest window_start of the
// summary table's current snapshot, from its data files' statistics.
func windowBounds(ctx context.Context, cat icecat.Catalog, name string) (lo, hi time.Time, ok bool, err error) {
	ident, err := table.ParseIdent(name)
	if err != nil {
		return lo, hi, false, err
	}
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return lo, hi, false, fmt.Errorf("load summary table %s: %w", name, err)
	}
	if tbl.CurrentSnapshot() == nil {
		return lo, hi, false, nil
	}
	f, found := tbl.Schema().FindFieldByName(aggregate.ColWindowStart)
	if !found {
		return lo, hi, false, fmt.Errorf("summary table %s has no %s column", name, aggregate.ColWindowStart)
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return lo, hi, false, fmt.Errorf("plan %s: %w", name, err)
	}
	var minUS, maxUS int64
	for _, task := range tasks {
		l, lok := task.File.LowerBoundValues()[f.ID]
		h, hok := task.File.UpperBoundValues()[f.ID]
		if !lok || !hok || len(l) != 8 || len(h) != 8 {
			return lo, hi, false, fmt.Errorf("summary table %s: a data file has no %s bounds; check without -step or give -from and -to", name, aggregate.ColWindowStart)
		}
		lv, hv := int64(binary.LittleEndian.Uint64(l)), int64(binary.LittleEndian.Uint64(h))
		if !ok || lv < minUS {
			minUS = lv
		}
		if !ok || hv > maxUS {
			maxUS = hv
		}
		ok = true
	}
	return time.UnixMicro(minUS).UTC(), time.UnixMicro(maxUS).UTC(), ok, nil
}

// aggregateStep recomputes and compares the windows starting in
// [from, to) (widened to partitions; zero: open) into tr, and returns
// the source snapshot compared.
func aggregateStep(ctx context.Context, cat icecat.Catalog, spec aggregate.Spec, from, to time.Time, exact map[string]bool, o Options, tr *TableReport) (int64, error) {
	rec, err := aggregate.Recompute(ctx, cat, spec, aggregate.RecomputeOptions{
		From: from, To: to, Concurrency: o.Concurrency, Logger: o.Logger,
	})
	if err != nil {
		return 0, err
	}
	defer rec.Release()
	tr.Against = fmt.Sprintf("%s snapshot %d", spec.Source, rec.Cursor)
	if s := rec.Output.CurrentSnapshot(); s != nil {
		tr.Snapshot = s.SnapshotID
	}
	keyCols := append([]string{aggregate.ColWindowStart}, spec.Dimensions...)
	cmpCols := []string{aggregate.ColWindowEnd}
	if spec.Window.Step > 0 {
		// A cumulative window has a row per step: window_end is key.
		keyCols, cmpCols = append(keyCols, aggregate.ColWindowEnd), nil
	}
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
		note := "_state not compared: float sums depend on the order rows were added"
		if !slices.Contains(tr.Notes, note) {
			tr.Notes = append(tr.Notes, note)
		}
	}

	// The recomputed groups, by key.
	type ref struct{ b, i int32 }
	index := map[string]ref{}
	seen := make([][]bool, len(rec.Records))
	wantCols := make([][]arrow.Array, len(rec.Records))
	var kb []byte
	for b, r := range rec.Records {
		kcols, err := columns(r, keyCols)
		if err != nil {
			return 0, fmt.Errorf("recomputed rows: %w", err)
		}
		if wantCols[b], err = columns(r, cmpCols); err != nil {
			return 0, fmt.Errorf("recomputed rows: %w", err)
		}
		seen[b] = make([]bool, r.NumRows())
		for i := range int(r.NumRows()) {
			kb = appendKey(kb[:0], kcols, i)
			index[string(kb)] = ref{int32(b), int32(i)}
		}
	}

	rd, err := reader.New(cat, spec.Output, reader.Config{Filter: rec.Filter, Concurrency: o.Concurrency, Logger: o.Logger})
	if err != nil {
		return 0, err
	}
	stream, err := rd.SnapshotIn(ctx, rec.Output, reader.At{})
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", spec.Output, err)
	}
	for got, err := range stream.Records() {
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", spec.Output, err)
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
				wcols := wantCols[r.b]
				for c, name := range cmpCols {
					compareValue(tr, o.MaxError, measures[name], keyCols, kcols, i, name, wcols[c], int(r.i), gcols[c], i)
				}
			}
			return nil
		}()
		if err != nil {
			return 0, err
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
	return rec.Cursor, nil
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
