package progress

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestMeter(t *testing.T) {
	tests := []struct {
		name     string
		terminal bool
		rows     int64 // total rows; bytes are 100 per row
		want     []string
		absent   []string
	}{
		{name: "terminal, size known", terminal: true, rows: 1000, want: []string{"\rcompact [############............]  50%", "500 rows", "48.8 KiB", "50 rows/s", "ETA 10s", "\n"}},
		{name: "terminal, size unknown", terminal: true, want: []string{"500 rows", "50 rows/s"}, absent: []string{"ETA", "%"}},
		{name: "log lines", terminal: false, rows: 1000, want: []string{"msg=\"compact: progress\"", "rows=500", "percent=50", "eta=10s", "msg=\"compact: done\"", "rows_per_s=50"}, absent: []string{"\r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var w, logs bytes.Buffer
			m := NewMeter(MeterOptions{
				Label: "compact", Terminal: tt.terminal, W: &w, Log: slog.New(slog.NewTextHandler(&logs, nil)),
				TotalRows: tt.rows, TotalBytes: tt.rows * 100, Interval: 5 * time.Second, Now: func() time.Time { return now },
			})
			for range 10 {
				now = now.Add(time.Second)
				m.Add(50, 5000)
			}
			m.Done()
			out := w.String() + logs.String()
			for _, s := range tt.want {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%q", s, out)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(out, s) {
					t.Errorf("output has %q:\n%q", s, out)
				}
			}
			if tt.terminal && logs.Len() > 0 || !tt.terminal && w.Len() > 0 {
				t.Errorf("wrote to the wrong stream: terminal %q, log %q", w.String(), logs.String())
			}
		})
	}
	var nilMeter *Meter
	nilMeter.Add(1, 1)
	nilMeter.Done()
}
