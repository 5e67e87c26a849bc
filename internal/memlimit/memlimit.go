// Package memlimit keeps a process's resident memory under a target by
// steering the Go soft memory limit (runtime/debug.SetMemoryLimit).
//
// The Go runtime limits the memory it maps itself — the heap, goroutine
// stacks, its own metadata — and sees nothing else the process holds
// resident: the pages of its binary and of the files it maps (a keyed
// table's key index is a memory-mapped file). Those are file-backed pages
// (RssFile and RssShmem in /proc/self/status, "shared" in
// /proc/self/statm): the kernel can drop and re-read them, but while they
// are mapped in they count in the process's RSS. A fixed soft limit
// either leaves them out — the process then overshoots its target by
// them: 60–190 MiB in the 10M-key runs of the keyed benchmark — or has to
// guess them.
//
// A Governor measures them every Interval and sets the soft limit to
// Target minus them and a margin of 1/32 of Target (16 MiB of 512 MiB)
// for what comes between two measurements, never below Floor: below what the writer may keep
// live the collector would run back to back for little, so the process
// then exceeds its target instead, and logs that once at WARN (and once
// at INFO when it fits again). Off Linux, where the pages cannot be
// read, the limit stays at Target.
package memlimit

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"
)

// Governor steers the Go soft memory limit; see the package comment.
type Governor struct {
	// Target is the resident memory the process aims to stay under.
	Target int64
	// Floor is the least the soft limit is set to.
	Floor int64
	// Interval is how often the file-backed pages are measured.
	// Default: 100ms.
	Interval time.Duration
	Log      *slog.Logger
	// FileBytes returns the file-backed resident bytes of the process.
	// Default: FileResident.
	FileBytes func() (int64, error)
	// SetLimit sets the soft limit and returns the previous one.
	// Default: debug.SetMemoryLimit.
	SetLimit func(int64) int64

	limit   int64 // the limit set last; 0: none yet
	atFloor bool
	failed  bool
}

// margin: the limit stays Target/margin (16 MiB of 512) below what the
// pages leave, for what they and the heap's overshoot of a soft limit
// bring between two steps.
const margin = 32

// minChange is the least change of the limit a Step makes: smaller ones
// are noise of the binary's pages coming and going.
const minChange = 1 << 20

func (g *Governor) defaults() {
	if g.Interval <= 0 {
		g.Interval = 100 * time.Millisecond
	}
	if g.Log == nil {
		g.Log = slog.New(slog.DiscardHandler)
	}
	if g.FileBytes == nil {
		g.FileBytes = FileResident
	}
	if g.SetLimit == nil {
		g.SetLimit = debug.SetMemoryLimit
	}
}

// Step measures the file-backed pages once and moves the soft limit to
// what they leave of Target (within [Floor, Target]). It returns the
// limit in effect.
func (g *Governor) Step() int64 {
	g.defaults()
	file, err := g.FileBytes()
	if err != nil {
		// Unmeasurable (not Linux, no /proc): Target alone, as a fixed
		// limit would.
		if !g.failed {
			g.failed = true
			g.Log.Debug("file-backed memory not measurable: the Go memory limit stays at the target", "err", err, "target_bytes", g.Target)
		}
		file = 0
	}
	want := g.Target - file - g.Target/margin
	floor := want < g.Floor
	if floor {
		want = g.Floor
	}
	if floor != g.atFloor {
		g.atFloor = floor
		if floor {
			g.Log.Warn("file-backed pages (the binary, mapped key indexes) leave the Go heap less than its floor: resident memory may exceed the target",
				"file_bytes", file, "target_bytes", g.Target, "floor_bytes", g.Floor)
		} else {
			g.Log.Info("resident memory fits its target again", "file_bytes", file, "target_bytes", g.Target)
		}
	}
	if d := want - g.limit; g.limit == 0 || d >= minChange || d <= -minChange {
		g.SetLimit(want)
		g.limit = want
	}
	return g.limit
}

// Run steps every Interval until ctx ends.
func (g *Governor) Run(ctx context.Context) {
	g.defaults()
	g.Step()
	t := time.NewTicker(g.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.Step()
		}
	}
}
