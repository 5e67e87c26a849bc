package aggregate

import (
	"context"
	"sync"
	"testing"

	"github.com/floe-lake/floe/internal/gentest"
	"github.com/floe-lake/floe/internal/tabletest"
)

// recordingProgress keeps what a backfill reports.
type recordingProgress struct {
	mu                                 sync.Mutex
	totalRows, totalBytes, rows, bytes int64
}

func (p *recordingProgress) SetTotals(rows, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.totalRows, p.totalBytes = rows, bytes
}

func (p *recordingProgress) Add(rows, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rows, p.bytes = p.rows+rows, p.bytes+bytes
}

// TestBackfillProgress: a backfill tells its Progress the planned read
// and then every row it reads, with one worker or several.
func TestBackfillProgress(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	cfg := genConfig(0)
	gentest.Ensure(t, cat, cfg)
	cfg.RowsPerPartition = 20_000
	if err := generate(ctx, cat, cfg, 7_000); err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 3} {
		s := withOutput(exampleSpec(t, "orders_city_5m.yaml"), "ads.progress")
		s.Source, s.Time, s.Dimensions, s.Filter = "ods.events", "event_time", []string{"province", "city"}, ""
		a, err := New(ctx, cat, s, Options{Logger: quietLogger(), Concurrency: workers})
		if err != nil {
			t.Fatal(err)
		}
		var p recordingProgress
		res, err := a.Backfill(ctx, BackfillOptions{Progress: &p})
		if err != nil {
			t.Fatal(err)
		}
		if p.totalRows == 0 || p.totalBytes == 0 || p.rows != p.totalRows || p.rows != res.SourceRows ||
			p.bytes < p.totalBytes*99/100 || p.bytes > p.totalBytes {
			t.Fatalf("%d workers: progress %+v for %d source rows", workers, &p, res.SourceRows)
		}
	}
}
