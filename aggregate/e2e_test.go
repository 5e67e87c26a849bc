package aggregate

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/internal/gentest"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
)

// TestStreamingEqualsBackfill: the example specs followed over the
// generator's stream (10 % of events up to 2 h late, many small snapshots,
// batches committed while the writer appends) produce, row for row and
// state for state, what a backfill of the final table produces; HLL
// estimates are identical between the modes and within 3 standard errors
// of the exact distinct count.
func TestStreamingEqualsBackfill(t *testing.T) {
	rows := int64(400_000) // 67 min of event time, late events back to the previous day
	if testing.Short() {
		rows = 120_000
	}
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	cfg := genConfig(rows)
	cfg.Rate = float64(rows) / 4 // a 4 s stream of many small snapshots
	gentest.Ensure(t, cat, cfg)

	specs := []Spec{
		exampleSpec(t, "page_traffic_hourly.yaml"),
		exampleSpec(t, "ad_show_hourly.yaml"),
		exampleSpec(t, "dau_daily.yaml"),
		exampleSpec(t, "orders_city_5m.yaml"),
		exampleSpec(t, "gmv_day_to_date.yaml"),
	}
	opts := Options{
		Logger: quietLogger(), PollInterval: 20 * time.Millisecond,
		MaxBatchDelay: 30 * time.Millisecond, MaxBatchRows: 50_000, Concurrency: 2,
	}
	var aggs []*Aggregator
	for _, s := range specs {
		a, err := New(ctx, cat, s, opts)
		if err != nil {
			t.Fatal(err)
		}
		aggs = append(aggs, a)
	}

	// Follow while the generator writes.
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make([]error, len(aggs))
	commits := make([]int, len(specs))
	for i, a := range aggs {
		a.opts.OnCommit = func(CommitInfo) { commits[i]++ }
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = a.Follow(fctx)
		}()
	}
	genErr := generate(ctx, cat, cfg, 10_000)
	if genErr != nil {
		stop()
		wg.Wait()
		t.Fatal(genErr)
	}
	// Wait for every follower to hold the sources' final snapshots.
	deadline := time.Now().Add(2 * time.Minute)
	for i, a := range aggs {
		srcTbl, err := a.src.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := reader.Current(srcTbl)
		for {
			got, _, err := a.Cursor(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got == want {
				break
			}
			if time.Now().After(deadline) || errs[i] != nil {
				stop()
				wg.Wait()
				t.Fatalf("%s: cursor %d, want %d (follow: %v)", a.spec.Name, got, want, errs[i])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stop()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: follow: %v", specs[i].Name, err)
		}
	}

	for i, s := range specs {
		t.Run(s.Name, func(t *testing.T) {
			if commits[i] < 3 {
				t.Errorf("only %d streaming commits; the test wants several batches", commits[i])
			}
			bs := withOutput(s, s.Output+"_backfill")
			b, err := New(ctx, cat, bs, Options{Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			res, err := b.Backfill(ctx, BackfillOptions{})
			if err != nil {
				t.Fatal(err)
			}
			streamed := tableRows(t, cat, s.Output)
			backfilled := tableRows(t, cat, bs.Output)
			if len(streamed) == 0 {
				t.Fatal("no output rows")
			}
			if !slices.Equal(streamed, backfilled) {
				t.Fatalf("streaming output differs from the backfill: %s", diffRows(streamed, backfilled))
			}
			t.Logf("%d source rows, %d output rows, %d streaming commits: equal", res.SourceRows, len(streamed), commits[i])
			// The backfill committed the snapshot it read as its cursor.
			got, found, err := b.Cursor(ctx)
			if err != nil || !found || got != res.Cursor {
				t.Fatalf("backfill cursor %d (found %v, err %v), want %d", got, found, err, res.Cursor)
			}
			checkHLL(t, cat, s)
		})
	}
}

// checkHLL compares each approximate distinct count with the exact count
// of the same column: within 3 standard errors (1.04/√m relative) plus 3
// for small counts, where the error is the number of register collisions
// (a handful at most) rather than a normal variable; and the root mean
// square relative error of groups of 100 or more within 1.5 standard
// errors.
func checkHLL(t *testing.T, cat icecat.Catalog, s Spec) {
	t.Helper()
	exact := map[string]string{}
	for _, m := range s.Measures {
		if m.Fn == FnCountDistinct {
			exact[m.Column] = m.Name
		}
	}
	sigma := 1.04 / math.Sqrt(hllM)
	for _, m := range s.Measures {
		if m.Fn != FnApproxCountDistinct {
			continue
		}
		ex, ok := exact[m.Column]
		if !ok {
			continue
		}
		rows := tableColumns(t, cat, s.Output, ex, m.Name)
		var worst, sq float64
		var big int
		for _, r := range rows {
			e, a := r[ex].(int64), r[m.Name].(int64)
			diff := math.Abs(float64(a - e))
			if diff > 3*sigma*float64(e)+3 {
				t.Errorf("%s = %d, %s = %d: off by more than 3σ", m.Name, a, ex, e)
			}
			if e >= 100 {
				rel := diff / float64(e)
				worst = max(worst, rel)
				sq += rel * rel
				big++
			}
		}
		rms := 0.0
		if big > 0 {
			rms = math.Sqrt(sq / float64(big))
			if rms > 1.5*sigma {
				t.Errorf("%s: root mean square relative error %.4f over %d groups exceeds 1.5σ = %.4f", m.Name, rms, big, 1.5*sigma)
			}
		}
		t.Logf("%s vs %s: %d groups; of %d with 100+ values: rms relative error %.4f, worst %.4f (σ = %.4f)",
			m.Name, ex, len(rows), big, rms, worst, sigma)
	}
}
