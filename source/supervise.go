package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/internal/daemon"
	"github.com/floe-lake/floe/writer"
)

// SuperviseOptions configure Supervise.
type SuperviseOptions struct {
	// Writer is the writer's config.
	Writer writer.Config
	// WriterOptions are passed to every writer Supervise creates; set
	// WriterOptions.Metrics to share metrics across restarts.
	WriterOptions writer.Options
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer for the supervisor's own metrics; default: none kept.
	Registerer prometheus.Registerer
	// MinBackoff and MaxBackoff bound the wait before a restart.
	// Defaults: 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// CloseTimeout bounds the final commit on shutdown. Default: 1m.
	CloseTimeout time.Duration
	// Now is the clock that times runs for the backoff reset. Default:
	// time.Now.
	Now func() time.Time
	// OnFailure, when set, is called with the error of every run that
	// failed (before the backoff), for readiness; not for routine
	// restarts.
	OnFailure func(error)
	// JobName names the pipeline's daemon job (the name label of the
	// floe_daemon_* metrics). Default: "ingest".
	JobName string
	// Board, when set, records the job's state and errors (daemon.Board).
	Board *daemon.Board
}

// healthyRun is how long a run must last for its failure to count as the
// first in a row again.
const healthyRun = time.Minute

// Supervise runs srcs into one writer. It returns nil when ctx is done or
// every source has ended, after committing everything buffered. Any
// failure — a source error, a failed or fenced commit — aborts the writer,
// dropping what it buffered, and starts every source over from the
// tables' positions after a jittered backoff: the daemon never
// crash-loops, and nothing is lost or duplicated because positions and
// rows are only ever committed together. A run that ends with an error
// classified ErrRestart (a Kafka rebalance) restarts the same way, logged
// at INFO and without growing the backoff: it is routine, not a failure.
// The pipeline runs as the job "ingest" of the daemon runner every Floe
// daemon uses (internal/daemon: floe_daemon_* metrics, one backoff and
// error policy). Supervise does not close the sources.
func Supervise(ctx context.Context, cat icecat.Catalog, srcs []Source, o SuperviseOptions) error {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.WriterOptions.Logger == nil {
		o.WriterOptions.Logger = o.Logger
	}
	if o.WriterOptions.Metrics == nil {
		reg := o.Registerer
		if reg == nil {
			reg = prometheus.NewRegistry()
		}
		o.WriterOptions.Metrics = writer.NewMetrics(reg)
	}
	reg := o.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	restarts := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "floe_ingest_restarts_total", Help: "Times the ingest pipeline was restarted from the tables' positions after a failure or a routine restart (a Kafka rebalance).",
	})
	if err := reg.Register(restarts); err != nil {
		// Several pipelines of one process (floe run) share the counter.
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("register floe_ingest_restarts_total: %w", err)
		}
		if c, ok := are.ExistingCollector.(prometheus.Counter); ok {
			restarts = c
		}
	}
	if o.JobName == "" {
		o.JobName = "ingest"
	}

	r := daemon.New(daemon.Options{
		Logger: o.Logger, Registerer: reg, Clock: daemon.ClockFunc(o.Now),
		MinBackoff: o.MinBackoff, MaxBackoff: o.MaxBackoff, HealthyRun: healthyRun, Board: o.Board,
	})
	return r.Run(ctx, daemon.Job{
		Name: o.JobName,
		Run: func(ctx context.Context) error {
			w := writer.New(cat, o.Writer, o.WriterOptions)
			err := runAll(ctx, w, srcs)
			if err == nil || ctx.Err() != nil {
				// Finished or shutting down: commit what is buffered.
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.CloseTimeout)
				defer cancel()
				if cerr := w.Close(cctx); cerr != nil {
					if ctx.Err() == nil {
						restarts.Inc()
					}
					return cerr
				}
				return nil
			}
			w.Abort()
			restarts.Inc()
			if o.OnFailure != nil && !errors.Is(err, ErrRestart) {
				o.OnFailure(err)
			}
			return err
		},
		// A routine restart (a Kafka rebalance) is not a failure: the
		// runner logs it at INFO and does not grow the backoff. Every
		// other error restarts the pipeline from the tables' positions
		// after a jittered backoff.
		Classify: func(err error) daemon.Class {
			if errors.Is(err, ErrRestart) {
				return daemon.ClassRestart
			}
			return daemon.ClassRetry
		},
	})
}

// runAll runs every source until all end (nil), one fails (its error), or
// ctx is done (ctx.Err()). A source's error is a failure whatever it
// wraps unless ctx is done: one wrapping context.Canceled while ctx is
// alive (an inner context of a commit) must not pass for the end of the
// input, or the daemon would stop by itself with no error.
func runAll(ctx context.Context, w *writer.Writer, srcs []Source) error {
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, s := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(ctx, w); err != nil && parent.Err() == nil {
				once.Do(func() { first = err })
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return parent.Err()
}
