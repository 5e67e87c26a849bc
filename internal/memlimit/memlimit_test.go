package memlimit

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const mib = 1 << 20

// TestStep follows a sequence of file-backed sizes: the limit is the
// target minus them, within [floor, target], moved only by ≥ 1 MiB, and
// reaching the floor logs one WARN, leaving it one INFO.
func TestStep(t *testing.T) {
	for _, tc := range []struct {
		name  string
		file  []int64 // MiB; -1: unreadable
		limit []int64 // MiB, the limit in effect after each step
		sets  int     // calls of SetLimit
		logs  []string
	}{
		{"binary only", []int64{60}, []int64{436}, 1, nil},
		{"follows the pages", []int64{60, 120, 80}, []int64{436, 376, 416}, 3, nil},
		{"steps of 1 MiB", []int64{60, 60, 61, 59}, []int64{436, 436, 435, 437}, 3, nil},
		{"floor", []int64{60, 250, 300, 100}, []int64{436, 320, 320, 396}, 3,
			[]string{"level=WARN msg=\"file-backed pages", "level=INFO msg=\"resident memory fits"}},
		{"unreadable: the target", []int64{-1, -1}, []int64{496, 496}, 1, []string{"level=DEBUG"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			i, sets, limit := 0, 0, int64(0)
			g := &Governor{
				Target: 512 * mib, Floor: 320 * mib,
				Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				FileBytes: func() (int64, error) {
					if tc.file[i] < 0 {
						return 0, errors.New("no /proc")
					}
					return tc.file[i] * mib, nil
				},
				SetLimit: func(v int64) int64 { sets++; old := limit; limit = v; return old },
			}
			for i = range tc.file {
				if got := g.Step(); got != tc.limit[i]*mib || limit != got {
					t.Fatalf("step %d (file %d MiB): limit %d (set %d), want %d MiB", i, tc.file[i], got/mib, limit/mib, tc.limit[i])
				}
			}
			if sets != tc.sets {
				t.Errorf("SetLimit called %d times, want %d", sets, tc.sets)
			}
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if logs.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(tc.logs) {
				t.Fatalf("logs:\n%s\nwant %d lines", logs.String(), len(tc.logs))
			}
			for j, want := range tc.logs {
				if !strings.Contains(lines[j], want) {
					t.Errorf("log line %d: %s\nwant %q", j, lines[j], want)
				}
			}
		})
	}
}

// TestSubMiB: a change under 1 MiB keeps the limit.
func TestSubMiB(t *testing.T) {
	file := int64(60 * mib)
	limit := int64(0)
	g := &Governor{Target: 512 * mib, Floor: 320 * mib,
		FileBytes: func() (int64, error) { return file, nil },
		SetLimit:  func(v int64) int64 { limit = v; return 0 }}
	g.Step()
	file += mib / 2
	if g.Step(); limit != 436*mib {
		t.Fatalf("limit %d after a 512 KiB change, want 436 MiB", limit)
	}
}

// TestRun steps until its context ends.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	steps := make(chan struct{}, 100)
	g := &Governor{Target: 512 * mib, Floor: 320 * mib, Interval: time.Millisecond,
		FileBytes: func() (int64, error) {
			select {
			case steps <- struct{}{}:
			default:
			}
			return 0, nil
		},
		SetLimit: func(int64) int64 { return 0 }}
	done := make(chan struct{})
	go func() { g.Run(ctx); close(done) }()
	for range 3 {
		<-steps
	}
	cancel()
	<-done
}

// TestFileResident reads this process's statm: the test binary's own
// pages are file-backed.
func TestFileResident(t *testing.T) {
	n, err := FileResident()
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	if n <= 0 {
		t.Fatalf("file-backed resident bytes %d, want > 0 (the binary's pages)", n)
	}
	if _, err := parseStatm([]byte("1 2"), 4096); err == nil {
		t.Fatal("a two-field statm parsed")
	}
	if got, _ := parseStatm([]byte("100 50 7 1 0 40 0\n"), 4096); got != 7*4096 {
		t.Fatalf("parseStatm: %d, want %d", got, 7*4096)
	}
}
