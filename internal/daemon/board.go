package daemon

import (
	"sort"
	"sync"
	"time"
)

// The states of a job on a Board.
const (
	// StateRunning: a run is in progress.
	StateRunning = "running"
	// StateBackoff: the last run failed; the job waits to restart.
	StateBackoff = "backoff"
	// StateHalted: the job stopped on an error that needs a person.
	StateHalted = "halted"
	// StateFinished: the job returned nil (a finite input ended) or the
	// runner stopped it.
	StateFinished = "finished"
)

// JobStatus is what a Board knows of one job.
type JobStatus struct {
	Name  string    `json:"name"`
	State string    `json:"state"`
	Since time.Time `json:"since"` // when the job entered State
	// LastError is the newest error a run returned (or Fail reported),
	// kept after the job recovers; LastErrorAt is when.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// FailingSince is when the job started failing without progress in
	// between: its first failed run (or Fail) after its last Progress.
	// Zero while the job is healthy.
	FailingSince time.Time `json:"failing_since,omitzero"`
	// Restarts counts the runs that ended in an error.
	Restarts int `json:"restarts"`
	// LastProgress is the newest Progress (a commit, a pass); zero when
	// there was none.
	LastProgress time.Time `json:"last_progress,omitzero"`
}

// Board keeps the state of the jobs of every Runner it is given to
// (Options.Board), and the progress and faults their callers report, for
// a daemon's /status and /readyz. Its methods are safe for concurrent use
// and do nothing on a nil Board.
type Board struct {
	now  func() time.Time
	mu   sync.Mutex
	jobs map[string]*JobStatus
}

// NewBoard returns an empty Board reading the time from now (nil:
// time.Now).
func NewBoard(now func() time.Time) *Board {
	if now == nil {
		now = time.Now
	}
	return &Board{now: now, jobs: map[string]*JobStatus{}}
}

func (b *Board) job(name string) *JobStatus {
	j := b.jobs[name]
	if j == nil {
		j = &JobStatus{Name: name, Since: b.now()}
		b.jobs[name] = j
	}
	return j
}

func (b *Board) set(name, state string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	j := b.job(name)
	if j.State != state {
		j.State, j.Since = state, b.now()
	}
}

// Progress records that job name made progress (committed, finished a
// pass): it is no longer failing.
func (b *Board) Progress(name string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	j := b.job(name)
	j.LastProgress = b.now()
	j.FailingSince = time.Time{}
}

// Fail records an error of job name that did not end a run (a retried
// commit, a probe that found no broker): it is failing from now on until
// its next Progress.
func (b *Board) Fail(name string, err error) {
	if b == nil || err == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failLocked(b.job(name), err)
}

func (b *Board) failLocked(j *JobStatus, err error) {
	now := b.now()
	j.LastError, j.LastErrorAt = err.Error(), now
	if j.FailingSince.IsZero() {
		j.FailingSince = now
	}
}

// failed records a run that ended in err and will be retried.
func (b *Board) failed(name string, err error) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	j := b.job(name)
	j.Restarts++
	b.failLocked(j, err)
	if j.State != StateBackoff {
		j.State, j.Since = StateBackoff, b.now()
	}
}

// halted records a job that halted on err.
func (b *Board) halted(name string, err error) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	j := b.job(name)
	b.failLocked(j, err)
	j.State, j.Since = StateHalted, b.now()
}

// Jobs returns every job's status, sorted by name.
func (b *Board) Jobs() []JobStatus {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]JobStatus, 0, len(b.jobs))
	for _, j := range b.jobs {
		out = append(out, *j)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out
}

// Job returns the status of job name, and false when the Board has none.
func (b *Board) Job(name string) (JobStatus, bool) {
	if b == nil {
		return JobStatus{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	j, ok := b.jobs[name]
	if !ok {
		return JobStatus{}, false
	}
	return *j, true
}
