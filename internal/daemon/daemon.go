// Package daemon runs a process's long-lived jobs — one table's
// compaction, one aggregation spec, an ingest pipeline — until the context
// ends, with one error policy for all of them, modelled on the Thanos
// compactor's HaltError/RetryError split. A job's error is classified:
//
//   - retry (the default for an error that carries no class): counted in
//     floe_daemon_restarts_total{reason="failure"}, and the job restarts
//     after a jittered exponential backoff, which starts over once a run
//     has stayed healthy for Options.HealthyRun;
//   - restart (Restart): not a failure — a consumer group rebalanced, say:
//     logged at INFO, counted with reason="requested", and the job restarts
//     at once (at most once per MinBackoff) without growing its backoff;
//   - halt (Halt): this job stops for good — logged at ERROR with the
//     reason, floe_daemon_job_halted{name} set to 1 — while the process
//     and every other job go on, so that a person can inspect it;
//   - fatal (Fatal): every job is stopped and Run returns the error.
//
// The package knows nothing of tables or sources: callers classify their
// own errors (with the constructors here, or a Job's Classify). It does
// not recover panics.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Class is what the runner does with a job's error.
type Class int

// The classes of errors, in the order of their gravity.
const (
	// ClassRetry restarts the job after a jittered exponential backoff.
	ClassRetry Class = iota
	// ClassRestart restarts the job at once; it is not a failure.
	ClassRestart
	// ClassHalt stops the job and leaves the others running.
	ClassHalt
	// ClassFatal stops every job; Run returns the error.
	ClassFatal
)

func (c Class) String() string {
	switch c {
	case ClassRetry:
		return "retry"
	case ClassRestart:
		return "restart"
	case ClassHalt:
		return "halt"
	case ClassFatal:
		return "fatal"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// classified is an error with a class. Its message is the wrapped error's.
type classified struct {
	err   error
	class Class
}

func (e *classified) Error() string { return e.err.Error() }
func (e *classified) Unwrap() error { return e.err }

func mark(err error, c Class) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, class: c}
}

// Retry marks err as retryable, overriding a Job's Classify. Unmarked
// errors are retried too unless Classify says otherwise. Retry(nil) is nil.
func Retry(err error) error { return mark(err, ClassRetry) }

// Restart marks err as a restart that is not a failure (a rebalance, a
// reconfiguration): the job restarts at once and its backoff does not
// grow. Restart(nil) is nil.
func Restart(err error) error { return mark(err, ClassRestart) }

// Halt marks err as one that retrying cannot fix and that needs a person:
// the job stops, the others go on. Halt(nil) is nil.
func Halt(err error) error { return mark(err, ClassHalt) }

// Fatal marks err as one that must stop the process: every job stops and
// Run returns it. Fatal(nil) is nil.
func Fatal(err error) error { return mark(err, ClassFatal) }

// ClassOf returns the class err was marked with (the outermost mark), and
// false when it carries none.
func ClassOf(err error) (Class, bool) {
	var c *classified
	if errors.As(err, &c) {
		return c.class, true
	}
	return ClassRetry, false
}

// IsHalt reports whether err is marked Halt.
func IsHalt(err error) bool { c, ok := ClassOf(err); return ok && c == ClassHalt }

// IsFatal reports whether err is marked Fatal.
func IsFatal(err error) bool { c, ok := ClassOf(err); return ok && c == ClassFatal }

// IsRestart reports whether err is marked Restart.
func IsRestart(err error) bool { c, ok := ClassOf(err); return ok && c == ClassRestart }

// Job is one named unit of work.
type Job struct {
	// Name identifies the job: unique within a Runner, the name label of
	// its metrics and the "job" key of its log lines.
	Name string
	// Run does the work until ctx is done, then returns (nil, or ctx's
	// error). Returning nil before that means the job is finished: it is
	// not restarted. Any other error is classified and handled as the
	// package comment says; an error returned after ctx is done is not
	// classified but returned by Runner.Run. Run is called again for each
	// restart, never concurrently with itself.
	Run func(ctx context.Context) error
	// Classify, when set, classifies the errors of Run that carry no mark
	// (see Halt, Fatal, Restart, Retry). Default: every unmarked error is
	// ClassRetry.
	Classify func(error) Class
	// WarnOnRetry logs the failures that are retried at WARN rather than
	// ERROR: for a job that waits out an expected outage (a catalog that
	// does not answer yet at start-up).
	WarnOnRetry bool
}

// Clock is the time the runner measures runs and waits with.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type funcClock struct{ now func() time.Time }

func (c funcClock) Now() time.Time                         { return c.now() }
func (c funcClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// SystemClock is the real clock.
func SystemClock() Clock { return funcClock{now: time.Now} }

// ClockFunc is a clock that reads the time from now and waits on real
// timers: for callers whose own clock is a func() time.Time.
func ClockFunc(now func() time.Time) Clock {
	if now == nil {
		now = time.Now
	}
	return funcClock{now: now}
}

// Options configure a Runner. Zero values take the defaults.
type Options struct {
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer receives floe_daemon_restarts_total{name,reason},
	// floe_daemon_job_running{name} and floe_daemon_job_halted{name}.
	// Registering them again on the same registry reuses the registered
	// ones. Default: a private registry.
	Registerer prometheus.Registerer
	// Clock times runs and backoffs. Default: SystemClock().
	Clock Clock
	// MinBackoff and MaxBackoff bound the wait before a retry: the n-th
	// failure in a row waits MinBackoff·2ⁿ⁻¹, at most MaxBackoff, jittered
	// down by up to half. Defaults: 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// HealthyRun is how long a run must last for the failure that ends it
	// to count as the first in a row again: a job that fails once an hour
	// must not wait MaxBackoff each time. Default: 1m.
	HealthyRun time.Duration
	// Board, when set, records the state of every job (running, backing
	// off, halted, finished) and its errors, for /status and /readyz.
	// Several runners may share one Board. Default: none.
	Board *Board
}

// Runner runs jobs. Its methods are safe for concurrent use; Run is called
// once.
type Runner struct {
	o Options
	m *metrics

	mu      sync.Mutex
	ctx     context.Context // Run's; nil before Run
	cancel  context.CancelCauseFunc
	stopped bool
	jobs    map[string]*jobState // running, backing off or halted
	active  int                  // jobs not halted
	halted  int
	idle    chan struct{} // closed when no job is active and none halted
	fatal   error
	late    []error // errors returned after the context ended
	wg      sync.WaitGroup
}

type jobState struct {
	job    Job
	halted error
}

// Errors of Go.
var (
	// ErrJobExists means a job of that name is running, backing off or
	// halted.
	ErrJobExists = errors.New("daemon: a job of that name exists")
	// ErrNotRunning means Run has not started or has returned.
	ErrNotRunning = errors.New("daemon: runner not running")
)

// New returns a Runner; it registers its metrics on o.Registerer.
func New(o Options) *Runner {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Clock == nil {
		o.Clock = SystemClock()
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.HealthyRun <= 0 {
		o.HealthyRun = time.Minute
	}
	return &Runner{o: o, m: newMetrics(o.Registerer), jobs: map[string]*jobState{}}
}

// Run runs jobs, and those Go adds, until ctx is done, a job fails
// fatally, or every job has finished. A halted job keeps Run (and so the
// process) up until ctx is done, for inspection. Run waits for every job
// to return. It returns a fatal error (prefixed with the job's name), or
// else the errors jobs returned after ctx was done other than ctx's own,
// or nil.
func (r *Runner) Run(ctx context.Context, jobs ...Job) error {
	r.mu.Lock()
	if r.ctx != nil {
		r.mu.Unlock()
		return errors.New("daemon: Run called twice")
	}
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	r.idle = make(chan struct{})
	defer r.cancel(nil)

	// The jobs given are all started, under one hold of the lock: a job
	// failing fatally at once, or ctx ending, while they are started
	// must not leave the later ones unstarted and Run returning
	// ErrNotRunning instead of the fatal error (each job sees ctx done
	// and returns).
	for _, j := range jobs {
		if err := r.startLocked(j); err != nil {
			r.mu.Unlock()
			r.cancel(nil)
			r.wg.Wait()
			r.stop()
			return err
		}
	}
	r.checkIdle()
	r.mu.Unlock()
	select {
	case <-r.ctx.Done():
	case <-r.idle:
	}
	r.cancel(nil)
	r.wg.Wait()
	r.stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fatal != nil {
		return r.fatal
	}
	return errors.Join(r.late...)
}

func (r *Runner) stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
}

// checkIdle closes idle when nothing runs and nothing is halted. r.mu held.
func (r *Runner) checkIdle() {
	if r.active == 0 && r.halted == 0 {
		select {
		case <-r.idle:
		default:
			close(r.idle)
		}
	}
}

// Go starts job while Run runs (from a job, say, to start one per table
// it discovers). It fails with ErrJobExists when a job of that name is
// running, backing off or halted — a halted job is never started again —
// and with ErrNotRunning outside Run.
func (r *Runner) Go(job Job) error {
	if job.Run == nil {
		return fmt.Errorf("daemon: job %q has no Run", job.Name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil || r.stopped || r.ctx.Err() != nil {
		return ErrNotRunning
	}
	return r.startLocked(job)
}

// startLocked starts job. r.mu held.
func (r *Runner) startLocked(job Job) error {
	if job.Run == nil {
		return fmt.Errorf("daemon: job %q has no Run", job.Name)
	}
	if _, ok := r.jobs[job.Name]; ok {
		return fmt.Errorf("start job %s: %w", job.Name, ErrJobExists)
	}
	js := &jobState{job: job}
	r.jobs[job.Name] = js
	r.active++
	r.m.halted.WithLabelValues(job.Name).Set(0)
	r.wg.Add(1)
	go r.loop(r.ctx, js)
	return nil
}

// Halted returns the halted jobs' names and the errors that halted them.
func (r *Runner) Halted() map[string]error {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]error{}
	for name, js := range r.jobs {
		if js.halted != nil {
			out[name] = js.halted
		}
	}
	return out
}

// loop runs one job until it finishes, halts or ctx is done.
func (r *Runner) loop(ctx context.Context, js *jobState) {
	defer r.wg.Done()
	name := js.job.Name
	log := r.o.Logger.With("job", name)
	running := r.m.running.WithLabelValues(name)
	failures := 0
	for {
		started := r.o.Clock.Now()
		running.Set(1)
		r.o.Board.set(name, StateRunning)
		err := js.job.Run(ctx)
		running.Set(0)
		ran := r.o.Clock.Now().Sub(started)
		if ctx.Err() != nil {
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				log.Error("job failed while stopping", "err", err)
				r.exit(js, fmt.Errorf("%s: %w", name, err))
			} else {
				r.exit(js, nil)
			}
			return
		}
		if err == nil {
			log.Info("job finished")
			r.o.Board.set(name, StateFinished)
			r.exit(js, nil)
			return
		}
		class, ok := ClassOf(err)
		if !ok && js.job.Classify != nil {
			class = js.job.Classify(err)
		}
		if ran >= r.o.HealthyRun {
			failures = 0
		}
		var wait time.Duration
		switch class {
		case ClassFatal:
			log.Error("job failed fatally; stopping every job", "err", err)
			r.fail(js, fmt.Errorf("%s: %w", name, err))
			return
		case ClassHalt:
			log.Error("job halted: it stays stopped until the process restarts; the other jobs go on", "err", err)
			r.o.Board.halted(name, err)
			r.halt(js, err)
			return
		case ClassRestart:
			wait = max(r.o.MinBackoff-ran, 0)
			r.m.restarts.WithLabelValues(name, "requested").Inc()
			log.Info("job restarting", "reason", err, "restart_in", wait)
		default:
			failures++
			wait = min(r.o.MinBackoff<<min(failures-1, 30), r.o.MaxBackoff)
			wait = wait/2 + rand.N(wait/2+1)
			r.m.restarts.WithLabelValues(name, "failure").Inc()
			r.o.Board.failed(name, err)
			level := slog.LevelError
			if js.job.WarnOnRetry {
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "job failed; restarting", "err", err, "restart_in", wait, "failures", failures)
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				r.exit(js, nil)
				return
			case <-r.o.Clock.After(wait):
			}
		}
	}
}

// exit removes a job that returned; late is its error after shutdown.
func (r *Runner) exit(js *jobState, late error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.jobs, js.job.Name)
	r.active--
	if late != nil {
		r.late = append(r.late, late)
	}
	r.checkIdle()
}

func (r *Runner) halt(js *jobState, err error) {
	r.m.halted.WithLabelValues(js.job.Name).Set(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	js.halted = err
	r.active--
	r.halted++
}

func (r *Runner) fail(js *jobState, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.jobs, js.job.Name)
	r.active--
	if r.fatal == nil {
		r.fatal = err
	}
	r.cancel(err)
	r.checkIdle()
}

type metrics struct {
	restarts *prometheus.CounterVec
	running  *prometheus.GaugeVec
	halted   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		restarts: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_daemon_restarts_total",
			Help: "Restarts of a daemon job, by reason: failure (a retried error) or requested (a restart that is not a failure).",
		}, []string{"name", "reason"})),
		running: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "floe_daemon_job_running",
			Help: "1 while a daemon job's run is in progress; 0 while it waits to restart, after it finished, or halted.",
		}, []string{"name"})),
		halted: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "floe_daemon_job_halted",
			Help: "1 once a daemon job halted on an error that needs a person (the reason is logged at ERROR); the process stays up.",
		}, []string{"name"})),
	}
}

// register registers c, or returns the collector already registered under
// its name.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A different collector holds the name: keep this one
		// unregistered rather than fail the daemon over its metrics.
	}
	return c
}
