package demo

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/aggregate"
)

//go:embed demo_pv.yaml
var demoPVSpec []byte

// streaming starts the demo's aggregation following ods.events while
// ingest runs. wait stops it (after ingest ended) and catches up with the
// last snapshots.
func streaming(ctx context.Context, log *slog.Logger, cat icecat.Catalog) (spec aggregate.Spec, wait func() error, err error) {
	spec, err = aggregate.ParseSpec(demoPVSpec)
	if err != nil {
		return spec, nil, err
	}
	opts := aggregate.Options{Logger: log, PollInterval: time.Second}
	a, err := aggregate.New(ctx, cat, spec, opts)
	if err != nil {
		return spec, nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Follow(fctx) }()
	return spec, func() error {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("streaming aggregation: %w", err)
		}
		// The follower may have stopped between polls: consume the rest.
		b, err := aggregate.New(ctx, cat, spec, opts)
		if err != nil {
			return err
		}
		_, err = b.CatchUp(ctx)
		return err
	}, nil
}

// compare backfills the same spec into a second table and prints the
// streaming and backfill results side by side.
func compare(ctx context.Context, out io.Writer, log *slog.Logger, cat icecat.Catalog, spec aggregate.Spec) error {
	batch := spec
	batch.Name += "_backfill"
	batch.Output += "_backfill"
	b, err := aggregate.New(ctx, cat, batch, aggregate.Options{Logger: log})
	if err != nil {
		return err
	}
	if _, err := b.Backfill(ctx, aggregate.BackfillOptions{}); err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	stream, err := readPV(ctx, cat, spec.Output)
	if err != nil {
		return err
	}
	backfill, err := readPV(ctx, cat, batch.Output)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "== 4. aggregate: page views per hour — streamed while ingest ran (%s) and backfilled (%s) from one spec ==\n", spec.Output, batch.Output)
	const row = "   %-17s %9v %9v %10v   %9v %9v %10v  %s\n"
	fmt.Fprintf(out, row, "hour (UTC)", "PV", "UV", "UV (HLL)", "PV", "UV", "UV (HLL)", "")
	fmt.Fprintf(out, "   %-17s %-31s %-31s\n", "", "-------- streaming --------", "--------- backfill ---------")
	hours := map[int64]bool{}
	for h := range stream {
		hours[h] = true
	}
	for h := range backfill {
		hours[h] = true
	}
	keys := make([]int64, 0, len(hours))
	for h := range hours {
		keys = append(keys, h)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	same := true
	for _, h := range keys {
		s, okS := stream[h]
		bf, okB := backfill[h]
		mark := "="
		if !okS || !okB || s != bf {
			mark, same = "DIFFERENT", false
		}
		fmt.Fprintf(out, row, time.UnixMicro(h).UTC().Format("2006-01-02 15:04"), s.pv, s.uv, s.hll, bf.pv, bf.uv, bf.hll, mark)
	}
	if same {
		fmt.Fprintf(out, "   streaming and backfill agree on every row (late events up to 2 h updated their past hours)\n\n")
		return nil
	}
	return errors.New("streaming and backfill aggregation disagree")
}

type pvRow struct{ pv, uv, hll int64 }

// readPV reads window_start, pv, uv and uv_approx of a demo summary table.
func readPV(ctx context.Context, cat icecat.Catalog, name string) (map[int64]pvRow, error) {
	tbl, err := loadTable(ctx, cat, name)
	if err != nil {
		return nil, err
	}
	_, recs, err := tbl.Scan(icetable.WithSelectedFields(aggregate.ColWindowStart, "pv", "uv", "uv_approx")).ToArrowRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", name, err)
	}
	out := map[int64]pvRow{}
	for rec, err := range recs {
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", name, err)
		}
		col := func(n string) *array.Int64 { return rec.Column(rec.Schema().FieldIndices(n)[0]).(*array.Int64) }
		ws := rec.Column(rec.Schema().FieldIndices(aggregate.ColWindowStart)[0]).(*array.Timestamp)
		pv, uv, hll := col("pv"), col("uv"), col("uv_approx")
		for i := 0; i < int(rec.NumRows()); i++ {
			out[int64(ws.Value(i))] = pvRow{pv.Value(i), uv.Value(i), hll.Value(i)}
		}
		rec.Release()
	}
	return out, nil
}
