package aggregate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// ErrNoCursor is returned by Recompute for a summary table that holds no
// cursor yet: nothing was aggregated into it, so there is nothing to
// recompute.
var ErrNoCursor = errors.New("summary table has no cursor")

// RecomputeOptions select the windows Recompute computes.
type RecomputeOptions struct {
	// From and To bound the windows by their start, [From, To), widened
	// to whole output partitions, as BackfillOptions does. Both zero: all.
	From, To time.Time
	// Concurrency is how many source files are read, and goroutines
	// aggregate, in parallel. Default min(GOMAXPROCS, 8).
	Concurrency int
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Recomputed is a backfill computed in memory and not committed: the rows
// Backfill would write to the summary table for the source snapshot its
// cursor holds.
type Recomputed struct {
	// Output is the summary table as loaded: its current snapshot holds
	// Cursor, and Filter selects its rows that Records recompute.
	Output *icetable.Table
	// Cursor is the source snapshot read.
	Cursor int64
	// Filter selects the output's rows whose window starts lie in the
	// (widened) range; AlwaysTrue without a range.
	Filter iceberg.BooleanExpression
	// SourceRows is the number of source rows aggregated.
	SourceRows int64
	// Records are the output rows, in the output table's Arrow schema,
	// ordered by window start and dimensions (with a Top: by window
	// start, Within dimensions and rank). Release them with Release.
	Records []arrow.RecordBatch
}

// Release releases the records.
func (r *Recomputed) Release() {
	releaseAll(r.Records)
	r.Records = nil
}

// Recompute computes, without committing anything and without creating or
// changing any table, the rows a backfill of spec would write over exactly
// the source snapshot the summary table's cursor holds (all windows, or
// the partitions of o's range), with the same aggregation code as
// Backfill. It fails with ErrNoCursor when the summary table holds no
// cursor, and when the table's states were computed with another spec
// (its fingerprint differs). The groups of the range are held in memory,
// as a backfill holds them.
func Recompute(ctx context.Context, cat icecat.Catalog, spec Spec, o RecomputeOptions) (*Recomputed, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	opts := Options{Logger: o.Logger, Concurrency: o.Concurrency}
	opts.applyDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	filter, err := reader.ParseFilter(spec.Filter)
	if err != nil {
		return nil, fmt.Errorf("aggregate %s: filter: %w", spec.Name, err)
	}
	srcIdent, _ := table.ParseIdent(spec.Source)
	srcTbl, err := cat.LoadTable(ctx, srcIdent)
	if err != nil {
		return nil, fmt.Errorf("load source table %s: %w", spec.Source, err)
	}
	p, err := bind(spec, srcTbl.Schema())
	if err != nil {
		return nil, err
	}
	outIdent, _ := table.ParseIdent(spec.Output)
	outTbl, err := cat.LoadTable(ctx, outIdent)
	if err != nil {
		return nil, fmt.Errorf("load summary table %s: %w", spec.Output, err)
	}
	if got := outTbl.Properties()[PropFingerprint]; got != spec.Fingerprint() {
		return nil, fmt.Errorf("aggregate %s: table %s holds states of another spec (fingerprint %q, this spec's is %q)",
			spec.Name, spec.Output, got, spec.Fingerprint())
	}
	a := &Aggregator{cat: cat, spec: spec, plan: p, opts: opts, log: opts.Logger.With("aggregate", spec.Name), filter: filter}
	cur, err := a.cursorOf(outTbl)
	if err != nil {
		return nil, err
	}
	if !cur.found {
		return nil, fmt.Errorf("aggregate %s: %s: %w", spec.Name, spec.Output, ErrNoCursor)
	}
	if !o.From.IsZero() && !o.To.IsZero() && !o.From.Before(o.To) {
		return nil, fmt.Errorf("aggregate %s: recompute from %s is not before to %s", spec.Name, o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	unit := p.unit
	from, to := int64(minTime), int64(maxTime)
	if !o.From.IsZero() {
		from = floorDiv(o.From.UnixMicro(), unit) * unit
	}
	if !o.To.IsZero() {
		to = -floorDiv(-o.To.UnixMicro(), unit) * unit
	}
	var keep func(int64) bool
	var tr *reader.TimeRange
	if from != minTime || to != maxTime {
		keep = func(ws int64) bool { return ws >= from && ws < to }
		tr = &reader.TimeRange{Column: spec.Time}
		if from != minTime {
			tr.Start = time.UnixMicro(from).UTC()
		}
		if to != maxTime {
			tr.End = time.UnixMicro(p.readEnd(to)).UTC()
		}
		if p.hasFirstSeen() {
			// New and returning users count against all of history.
			tr.Start = time.Time{}
		}
	}
	groups := newGroupTable(p)
	var rows int64
	if cur.id != 0 {
		r, err := reader.New(cat, spec.Source, a.readerConfig(tr))
		if err != nil {
			return nil, err
		}
		stream, err := r.SnapshotIn(ctx, srcTbl, reader.At{SnapshotID: cur.id})
		if err != nil {
			return nil, fmt.Errorf("aggregate %s: recompute: %w", spec.Name, err)
		}
		if groups, rows, err = a.aggregateParallel(stream, keep, nil); err != nil {
			return nil, fmt.Errorf("aggregate %s: recompute over %s snapshot %d: %w", spec.Name, spec.Source, cur.id, err)
		}
	}
	sc, err := outputSchema(outTbl)
	if err != nil {
		return nil, err
	}
	recs, _, err := p.build(groups, sc, opts.Allocator)
	if err != nil {
		return nil, err
	}
	return &Recomputed{Output: outTbl, Cursor: cur.id, Filter: rangeFilter(from, to), SourceRows: rows, Records: recs}, nil
}

// MeasureKinds tells, per measure name of spec over the source schema src,
// whether its value is exact in both streaming and batch (integer and
// decimal sums, counts, min, max), or a float computation whose last bits
// depend on the order rows were added (sum of float or double columns,
// avg of them).
func MeasureKinds(spec Spec, src *iceberg.Schema) (exact map[string]bool, err error) {
	p, err := bind(spec, src)
	if err != nil {
		return nil, err
	}
	exact = make(map[string]bool, len(p.measures))
	for _, m := range p.measures {
		floatSum := (m.Fn == FnSum || m.Fn == FnAvg) && m.kind == kFloat
		exact[m.Name] = !floatSum
	}
	return exact, nil
}
