package verify

import (
	"log/slog"
	"time"
)

// Options are a check's collaborators and tolerances. Zero values take
// the defaults.
type Options struct {
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Metrics, when set, count rows as they are compared; Observe the
	// report to set the rest. Default: none.
	Metrics *Metrics
	// MaxError is the relative error a numeric measure may have before it
	// counts as a difference (aggregate check); values within it are
	// counted as tolerated. Default 0: any difference counts.
	MaxError float64
	// MaxListed bounds the differences listed per table; all are counted.
	// Default 100.
	MaxListed int
	// Concurrency is how many files are read in parallel. Default
	// min(GOMAXPROCS, 8).
	Concurrency int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (o *Options) applyDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxListed <= 0 {
		o.MaxListed = 100
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}
