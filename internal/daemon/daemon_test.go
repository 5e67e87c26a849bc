package daemon_test

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/internal/daemon"
)

// fakeClock is a clock tests move by hand. Every After reports its
// duration on waits, so a test knows when the runner waits and for how
// long.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	waits   chan time.Duration
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), waits: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	c.mu.Unlock()
	c.waits <- d
	return ch
}

// Advance moves the clock and fires the waits that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// nextWait returns the next wait the runner asked for.
func (c *fakeClock) nextWait(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.waits:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("the runner did not wait")
		return 0
	}
}

// checkNoJobGoroutines fails when goroutines of the runner outlive Run
// (goleak-style, without the dependency).
func checkNoJobGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "internal/daemon.(*Runner).loop") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job goroutines left running after Run returned:\n%s", stacks)
		}
		time.Sleep(time.Millisecond)
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

type runResult struct{ err error }

func start(r *daemon.Runner, ctx context.Context, jobs ...daemon.Job) chan runResult {
	done := make(chan runResult, 1)
	go func() { done <- runResult{r.Run(ctx, jobs...)} }()
	return done
}

func wait(t *testing.T, done chan runResult) error {
	t.Helper()
	select {
	case res := <-done:
		checkNoJobGoroutines(t)
		return res.err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

var errBoom = errors.New("boom")

func TestClassOf(t *testing.T) {
	wrapped := func(err error) error { return errors.Join(errors.New("context"), err) }
	for _, tc := range []struct {
		name  string
		err   error
		class daemon.Class
		ok    bool
	}{
		{"unmarked", errBoom, daemon.ClassRetry, false},
		{"retry", daemon.Retry(errBoom), daemon.ClassRetry, true},
		{"restart", daemon.Restart(errBoom), daemon.ClassRestart, true},
		{"halt", daemon.Halt(errBoom), daemon.ClassHalt, true},
		{"fatal", daemon.Fatal(errBoom), daemon.ClassFatal, true},
		{"halt, wrapped", wrapped(daemon.Halt(errBoom)), daemon.ClassHalt, true},
		{"outermost mark wins", daemon.Fatal(daemon.Halt(errBoom)), daemon.ClassFatal, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			class, ok := daemon.ClassOf(tc.err)
			if class != tc.class || ok != tc.ok {
				t.Errorf("ClassOf = %v, %v; want %v, %v", class, ok, tc.class, tc.ok)
			}
			if !errors.Is(tc.err, errBoom) {
				t.Error("the mark hides the error from errors.Is")
			}
			if daemon.IsHalt(tc.err) != (tc.ok && tc.class == daemon.ClassHalt) ||
				daemon.IsFatal(tc.err) != (tc.ok && tc.class == daemon.ClassFatal) ||
				daemon.IsRestart(tc.err) != (tc.ok && tc.class == daemon.ClassRestart) {
				t.Error("Is* disagree with ClassOf")
			}
		})
	}
	if daemon.Halt(errBoom).Error() != "boom" {
		t.Errorf("message %q: a mark must not change it", daemon.Halt(errBoom))
	}
	if daemon.Halt(nil) != nil || daemon.Fatal(nil) != nil || daemon.Restart(nil) != nil || daemon.Retry(nil) != nil {
		t.Error("marking nil is not nil")
	}
}

// TestRetryBackoff: failures back off exponentially with jitter, capped,
// and a run that stayed healthy starts the backoff over.
func TestRetryBackoff(t *testing.T) {
	const minB, maxB, healthy = 100 * time.Millisecond, 800 * time.Millisecond, time.Minute
	for _, tc := range []struct {
		name string
		// runs: how long each run lasts before it fails; the job
		// finishes after the last.
		runs []time.Duration
		// want: the backoff before jitter after each failure.
		want []time.Duration
	}{
		{"doubles up to the cap", []time.Duration{0, 0, 0, 0, 0, 0}, []time.Duration{100, 200, 400, 800, 800, 800}},
		{"a healthy run starts over", []time.Duration{0, 0, 0, healthy, 0}, []time.Duration{100, 200, 400, 100, 200}},
		{"a short run does not", []time.Duration{0, 0, healthy - time.Second, 0}, []time.Duration{100, 200, 400, 800}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			reg := prometheus.NewRegistry()
			r := daemon.New(daemon.Options{Logger: quiet(), Registerer: reg, Clock: clk, MinBackoff: minB, MaxBackoff: maxB, HealthyRun: healthy})
			var n atomic.Int32
			job := daemon.Job{Name: "j", Run: func(ctx context.Context) error {
				i := int(n.Add(1)) - 1
				if i == len(tc.runs) {
					return nil
				}
				clk.Advance(tc.runs[i])
				return errBoom
			}}
			done := start(r, context.Background(), job)
			for i, w := range tc.want {
				base := w * time.Millisecond
				d := clk.nextWait(t)
				if d < base/2 || d > base {
					t.Errorf("wait %d: %s, want %s jittered to [%s, %s]", i, d, base, base/2, base)
				}
				clk.Advance(d)
			}
			if err := wait(t, done); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := value(t, reg, "floe_daemon_restarts_total", "j", "failure"); got != float64(len(tc.runs)) {
				t.Errorf("restarts counted: %v, want %d", got, len(tc.runs))
			}
		})
	}
}

// value reads one series of a gathered counter or gauge.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			got := []string{}
			for _, lp := range m.GetLabel() {
				got = append(got, lp.GetValue())
			}
			if strings.Join(got, ",") == strings.Join(labels, ",") {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// TestClasses runs a job that fails once with an error of each class next
// to a job that runs until the context ends.
func TestClasses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		classify func(error) daemon.Class
		// halted: the job stays halted and Run keeps going; fatal: Run
		// returns the error; restarted: the job ran again.
		halted, fatal, restarted bool
		reason                   string // the restarts_total reason counted
	}{
		{name: "retry", err: errBoom, restarted: true, reason: "failure"},
		{name: "restart", err: daemon.Restart(errBoom), restarted: true, reason: "requested"},
		{name: "halt", err: daemon.Halt(errBoom), halted: true},
		{name: "fatal", err: daemon.Fatal(errBoom), fatal: true},
		{name: "classified halt", err: errBoom, classify: func(error) daemon.Class { return daemon.ClassHalt }, halted: true},
		{name: "a mark beats Classify", err: daemon.Retry(errBoom), classify: func(error) daemon.Class { return daemon.ClassFatal }, restarted: true, reason: "failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			reg := prometheus.NewRegistry()
			r := daemon.New(daemon.Options{Logger: quiet(), Registerer: reg, Clock: clk, MinBackoff: 10 * time.Millisecond})
			var runs atomic.Int32
			secondRun := make(chan struct{})
			failing := daemon.Job{Name: "failing", Classify: tc.classify, Run: func(ctx context.Context) error {
				if runs.Add(1) == 1 {
					return tc.err
				}
				close(secondRun)
				<-ctx.Done()
				return ctx.Err()
			}}
			otherStopped := make(chan struct{})
			other := daemon.Job{Name: "other", Run: func(ctx context.Context) error {
				<-ctx.Done()
				close(otherStopped)
				return nil
			}}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := start(r, ctx, failing, other)
			switch {
			case tc.restarted:
				clk.Advance(clk.nextWait(t))
				select {
				case <-secondRun:
				case <-time.After(5 * time.Second):
					t.Fatal("the job was not restarted")
				}
				if got := value(t, reg, "floe_daemon_restarts_total", "failing", tc.reason); got != 1 {
					t.Errorf("restarts{reason=%s} = %v, want 1", tc.reason, got)
				}
				cancel()
				if err := wait(t, done); err != nil {
					t.Fatalf("Run: %v", err)
				}
			case tc.halted:
				waitFor(t, func() bool { return len(r.Halted()) == 1 })
				if !errors.Is(r.Halted()["failing"], errBoom) {
					t.Errorf("Halted() = %v", r.Halted())
				}
				if got := value(t, reg, "floe_daemon_job_halted", "failing"); got != 1 {
					t.Errorf("halted gauge %v, want 1", got)
				}
				if got := value(t, reg, "floe_daemon_job_halted", "other"); got != 0 {
					t.Errorf("halted gauge of the other job %v, want 0", got)
				}
				if err := r.Go(failing); !errors.Is(err, daemon.ErrJobExists) {
					t.Errorf("starting a halted job again: %v, want ErrJobExists", err)
				}
				select {
				case <-otherStopped:
					t.Fatal("a halt stopped the other job")
				case res := <-done:
					t.Fatalf("Run returned %v on a halt", res.err)
				case <-time.After(20 * time.Millisecond):
				}
				cancel()
				if err := wait(t, done); err != nil {
					t.Fatalf("Run: %v", err)
				}
			case tc.fatal:
				err := wait(t, done)
				if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "failing: boom") {
					t.Fatalf("Run returned %v, want the fatal error", err)
				}
				select {
				case <-otherStopped:
				default:
					t.Fatal("the other job was not stopped")
				}
			}
			if got := runs.Load(); tc.restarted != (got == 2) {
				t.Errorf("the failing job ran %d times", got)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRequestedRestartIsRateLimited: a restart that is not a failure
// waits what is left of MinBackoff, unjittered, and does not grow the
// backoff of the failures that follow.
func TestRequestedRestartIsRateLimited(t *testing.T) {
	clk := newFakeClock()
	r := daemon.New(daemon.Options{Logger: quiet(), Clock: clk, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	var n atomic.Int32
	done := start(r, context.Background(), daemon.Job{Name: "j", Run: func(ctx context.Context) error {
		switch n.Add(1) {
		case 1:
			clk.Advance(30 * time.Millisecond)
			return daemon.Restart(errors.New("rebalanced"))
		case 2, 3:
			return errBoom
		}
		return nil
	}})
	if d := clk.nextWait(t); d != 70*time.Millisecond {
		t.Errorf("requested restart waits %s, want the 70ms left of MinBackoff", d)
	}
	clk.Advance(70 * time.Millisecond)
	for _, base := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		d := clk.nextWait(t)
		if d < base/2 || d > base {
			t.Errorf("failure waits %s, want %s jittered", d, base)
		}
		clk.Advance(d)
	}
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
}

// TestRunEnds covers how Run ends.
func TestRunEnds(t *testing.T) {
	late := errors.New("final commit failed")
	for _, tc := range []struct {
		name   string
		jobs   func(clk *fakeClock) []daemon.Job
		cancel bool
		want   error // nil: Run returns nil
	}{
		{name: "no jobs", jobs: func(*fakeClock) []daemon.Job { return nil }},
		{name: "every job finished", jobs: func(*fakeClock) []daemon.Job {
			return []daemon.Job{
				{Name: "a", Run: func(context.Context) error { return nil }},
				{Name: "b", Run: func(context.Context) error { return nil }},
			}
		}},
		{name: "cancelled during a backoff", cancel: true, jobs: func(*fakeClock) []daemon.Job {
			return []daemon.Job{{Name: "a", Run: func(context.Context) error { return errBoom }}}
		}},
		{name: "ctx's own error is not returned", cancel: true, jobs: func(*fakeClock) []daemon.Job {
			return []daemon.Job{{Name: "a", Run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}}
		}},
		{name: "an error after the context ended is returned", cancel: true, want: late, jobs: func(*fakeClock) []daemon.Job {
			return []daemon.Job{{Name: "a", Run: func(ctx context.Context) error { <-ctx.Done(); return late }}}
		}},
		{name: "duplicate names", want: daemon.ErrJobExists, jobs: func(*fakeClock) []daemon.Job {
			run := func(ctx context.Context) error { <-ctx.Done(); return nil }
			return []daemon.Job{{Name: "a", Run: run}, {Name: "a", Run: run}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			r := daemon.New(daemon.Options{Logger: quiet(), Clock: clk})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := start(r, ctx, tc.jobs(clk)...)
			if tc.cancel {
				time.Sleep(5 * time.Millisecond)
				cancel()
			}
			err := wait(t, done)
			if (err == nil) != (tc.want == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Run returned %v, want %v", err, tc.want)
			}
			if err := r.Go(daemon.Job{Name: "late", Run: func(context.Context) error { return nil }}); !errors.Is(err, daemon.ErrNotRunning) {
				t.Errorf("Go after Run: %v, want ErrNotRunning", err)
			}
		})
	}
}

// TestGoFromAJob: a job starts others, as compaction's table discovery
// does; a finished job's name can be started again.
func TestGoFromAJob(t *testing.T) {
	r := daemon.New(daemon.Options{Logger: quiet(), Clock: newFakeClock()})
	if err := r.Go(daemon.Job{Name: "x", Run: func(context.Context) error { return nil }}); !errors.Is(err, daemon.ErrNotRunning) {
		t.Errorf("Go before Run: %v", err)
	}
	var ran sync.Map
	child := func(name string) daemon.Job {
		return daemon.Job{Name: name, Run: func(context.Context) error { ran.Store(name, true); return nil }}
	}
	done := start(r, context.Background(), daemon.Job{Name: "discover", Run: func(ctx context.Context) error {
		for _, n := range []string{"t1", "t2"} {
			if err := r.Go(child(n)); err != nil {
				return daemon.Fatal(err)
			}
		}
		waitFor(t, func() bool { _, ok := ran.Load("t1"); return ok })
		// t1 finished: its name is free again (poll: its exit races
		// with this goroutine).
		waitFor(t, func() bool { return r.Go(child("t1")) == nil })
		return nil
	}})
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if _, ok := ran.Load("t2"); !ok {
		t.Error("t2 did not run")
	}
}
