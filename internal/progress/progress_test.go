package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBar(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tests := []struct {
		name  string
		on    bool
		files int
		steps []int64
		ok    bool
		want  []string // in the last line drawn
		empty bool
	}{
		{name: "off", on: false, files: 2, steps: []int64{10}, ok: true, empty: true},
		{name: "no files", on: true, files: 0, steps: []int64{10}, ok: true, empty: true},
		{name: "half then done", on: true, files: 3, steps: []int64{50}, ok: true, want: []string{"100%", "50/50 rows", "3 files", "25 rows/s", "2.0s"}},
		{name: "failed", on: true, files: 3, steps: []int64{50}, ok: false, want: []string{" 50%", "50/100 rows"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			b := New(&out, tt.on, 100, tt.files, clock)
			for _, r := range tt.steps {
				now = now.Add(2 * time.Second)
				b.Add(r)
			}
			b.Done(tt.ok)
			if tt.empty {
				if out.Len() != 0 {
					t.Fatalf("drew %q", out.String())
				}
				return
			}
			s := out.String()
			if !strings.HasSuffix(s, "\n") {
				t.Fatalf("the line is not ended: %q", s)
			}
			last := s[strings.LastIndex(s, "\r"):]
			for _, w := range tt.want {
				if !strings.Contains(last, w) {
					t.Errorf("%q does not contain %q", last, w)
				}
			}
		})
	}
	var nilBar *Bar
	nilBar.Add(1)
	nilBar.Done(true)
	if IsTerminal(&bytes.Buffer{}) {
		t.Fatal("a buffer is a terminal")
	}
}
