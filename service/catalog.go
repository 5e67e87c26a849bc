package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/daemon"
)

// CatalogOptions configure a CatalogStart.
type CatalogOptions struct {
	// Config is the catalog Open opens by default.
	Config catalog.Config
	// Open opens the catalog; default catalog.Open of Config.
	Open func(context.Context) (icecat.Catalog, error)
	// Prepare, when set, runs on the opened catalog (ensure the tables);
	// when it fails the catalog is closed and both are retried.
	Prepare func(context.Context, icecat.Catalog) error
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer receives the runner's metrics; default: a private one.
	Registerer prometheus.Registerer
	// Board records the job CatalogJob; default: a new Board.
	Board *daemon.Board
	// Clock times the backoffs; default the system clock.
	Clock daemon.Clock
	// Once: Open tries once and returns the failure (a one-shot command,
	// not a daemon).
	Once bool
	// MinBackoff and MaxBackoff bound the waits before a retry. Defaults:
	// internal/daemon's (500ms and 30s).
	MinBackoff, MaxBackoff time.Duration
}

// CatalogStart opens a daemon's catalog as the job CatalogJob of a daemon
// runner — retried with a backoff, each failure logged at WARN with its
// reason — so that a catalog or object store that does not answer at
// start-up is waited for, not fatal (a supervisor would only restart the
// process in a loop). Ready tells the wait to /readyz meanwhile. floe run
// and the separate daemons (ingest, compact, aggregate -follow, transform
// -follow) start this way.
type CatalogStart struct {
	o     CatalogOptions
	open  atomic.Bool
	ready atomic.Pointer[func() error]
}

// NewCatalogStart returns a CatalogStart; call Open once.
func NewCatalogStart(o CatalogOptions) *CatalogStart {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Open == nil {
		cc := o.Config
		o.Open = func(ctx context.Context) (icecat.Catalog, error) { return catalog.Open(ctx, cc) }
	}
	if o.Board == nil {
		o.Board = daemon.NewBoard(nil)
	}
	return &CatalogStart{o: o}
}

// Open opens the catalog and prepares it, retrying until both succeed. It
// returns the catalog, or nil and nil when ctx ended first, or a fatal
// error (one marked daemon.Fatal).
func (c *CatalogStart) Open(ctx context.Context) (icecat.Catalog, error) {
	if c.o.Once {
		cat, err := c.o.Open(ctx)
		if err == nil && c.o.Prepare != nil {
			if err = c.o.Prepare(ctx, cat); err != nil {
				closeCatalog(cat, c.o.Logger)
			}
		}
		if err != nil {
			return nil, err
		}
		c.open.Store(true)
		return cat, nil
	}
	r := daemon.New(daemon.Options{
		Logger: c.o.Logger, Registerer: c.o.Registerer, Board: c.o.Board, Clock: c.o.Clock,
		MinBackoff: c.o.MinBackoff, MaxBackoff: c.o.MaxBackoff,
	})
	var cat icecat.Catalog
	err := r.Run(ctx, daemon.Job{Name: CatalogJob, WarnOnRetry: true, Run: func(ctx context.Context) error {
		cc, err := c.o.Open(ctx)
		if err != nil {
			return fmt.Errorf("open catalog: %w", err)
		}
		if c.o.Prepare != nil {
			if err := c.o.Prepare(ctx, cc); err != nil {
				closeCatalog(cc, c.o.Logger)
				return err
			}
		}
		cat = cc
		c.o.Board.Progress(CatalogJob)
		return nil
	}})
	if err != nil || ctx.Err() != nil || cat == nil {
		if cat != nil {
			closeCatalog(cat, c.o.Logger)
		}
		return nil, err
	}
	c.open.Store(true)
	return cat, nil
}

// Pending is nil once Open succeeded, else why the process is not ready:
// the catalog is being opened, and the last failure and since when.
func (c *CatalogStart) Pending() error {
	if c.open.Load() {
		return nil
	}
	return catalogPending(c.o.Board)
}

func catalogPending(b *daemon.Board) error {
	j, _ := b.Job(CatalogJob)
	msg := "starting: opening the catalog"
	if j.LastError != "" {
		msg += " (failing since " + j.FailingSince.UTC().Format(time.RFC3339) + ": " + j.LastError + ")"
	}
	return errors.New(msg)
}

// Ready is Pending until the catalog is open, then the readiness given to
// ReadyThen (none: ready). It is a daemon's /readyz.
func (c *CatalogStart) Ready() error {
	if err := c.Pending(); err != nil {
		return err
	}
	if f := c.ready.Load(); f != nil && *f != nil {
		return (*f)()
	}
	return nil
}

// ReadyThen sets the readiness Ready reports once the catalog is open.
func (c *CatalogStart) ReadyThen(f func() error) { c.ready.Store(&f) }
