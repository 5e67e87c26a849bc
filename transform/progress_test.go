package transform

import (
	"context"
	"sync"
	"testing"
	"time"
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

// TestBackfillProgress: a backfill tells its Progress the planned read of
// every snapshot and then every row it reads.
func TestBackfillProgress(t *testing.T) {
	cat := warehouse(t)
	appendRows(t, cat, "ods.orders", order(1, 10, 100, 0), order(2, 11, 200, time.Minute))
	appendRows(t, cat, "ods.orders", order(3, 10, 5, 2*time.Minute))
	tr := newT(t, cat, Spec{SQL: "SELECT order_id, amount FROM ods.orders WHERE amount > 10", Output: "dwd.progress"})
	var p recordingProgress
	res, err := tr.Backfill(context.Background(), BackfillOptions{Progress: &p})
	if err != nil {
		t.Fatal(err)
	}
	if p.totalRows != 3 || p.totalBytes == 0 || p.rows != 3 || res.SourceRows != 3 || p.bytes < p.totalBytes*99/100 || p.bytes > p.totalBytes {
		t.Fatalf("progress %+v for %d source rows", &p, res.SourceRows)
	}
}
