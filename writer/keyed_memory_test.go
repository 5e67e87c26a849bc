package writer

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestIndexMemoryBudget checks the key indexes' accounting: rows get what
// the indexes leave of the budget, down to FlushBytes; crossing the budget
// logs one WARN (and one INFO back) and never moves the soft memory limit
// (issue 17: spill or back-pressure, not a larger heap).
func TestIndexMemoryBudget(t *testing.T) {
	const mib = 1 << 20
	cfg := Config{MemoryBudget: 8 * mib, FlushBytes: 2 * mib}
	cfg.ApplyDefaults()
	base := int64(cfg.MemoryLimit)
	for _, tc := range []struct {
		name      string
		limit     int64 // the limit in effect before
		wantLimit []int64
	}{
		{"config limit", base, []int64{base, base, base, base}},
		{"user limit", 100 * mib, []int64{100 * mib, 100 * mib, 100 * mib, 100 * mib}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			limit := tc.limit
			w := New(nil, cfg, Options{
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				SetMemoryLimit: func(v int64) int64 {
					old := limit
					if v >= 0 {
						limit = v
					}
					return old
				},
			})
			defer w.Abort()
			steps := []struct {
				add        int64
				wantBudget int64
			}{
				{5 * mib, 3 * mib},  // fits: rows get the rest
				{3 * mib, 2 * mib},  // 8 MiB of index: over, rows held to FlushBytes
				{1 * mib, 2 * mib},  // still over: no second WARN
				{-9 * mib, 8 * mib}, // back
			}
			for i, s := range steps {
				w.addIndexBytes(s.add)
				w.mu.Lock()
				got := w.rowBudgetLocked()
				w.mu.Unlock()
				if got != s.wantBudget {
					t.Errorf("step %d: row budget %d, want %d", i, got, s.wantBudget)
				}
				if limit != tc.wantLimit[i] {
					t.Errorf("step %d: memory limit %d, want %d", i, limit, tc.wantLimit[i])
				}
			}
			if n := strings.Count(logs.String(), "level=WARN msg=\"key indexes exceed"); n != 1 {
				t.Errorf("%d WARNs, want 1:\n%s", n, logs.String())
			}
			if n := strings.Count(logs.String(), "fit the writer's memory budget again"); n != 1 {
				t.Errorf("%d INFOs, want 1:\n%s", n, logs.String())
			}
		})
	}
}
