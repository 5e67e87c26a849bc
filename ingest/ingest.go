// Package ingest runs configured sources into their tables: it builds the
// sources of a config's sources: entries (resolved through a
// source.Registry), works out the tables they need beside the declared
// ones, ensures those tables, runs everything under source.Supervise and
// closes the sources. It is what `floe ingest` runs; the command keeps
// only flags, config loading, metrics serving and signals.
//
// The package knows no source kind: adding one touches its own package and
// the registry it is listed in (source/all), never this package.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/internal/daemon"
	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// Config is what an ingest pipeline runs: the config file's tables:,
// sources: and writer: sections.
type Config struct {
	// Tables are the declared tables: created when missing and evolved
	// when their spec adds optional columns.
	Tables []table.Spec
	// Sources feed the tables; every entry must be resolved
	// (source.Config.Resolve).
	Sources []source.Config
	// Writer configures the writer every run writes through.
	Writer writer.Config
}

// Options are a pipeline's collaborators.
type Options struct {
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer for the sources', the writer's and the supervisor's
	// metrics; default: a private registry.
	Registerer prometheus.Registerer
}

// Pipeline is a configured ingest: its sources and the specs of the tables
// they write. Its methods are called from one goroutine.
type Pipeline struct {
	cfg   Config
	log   *slog.Logger
	reg   prometheus.Registerer
	srcs  []source.Source
	specs []table.Spec

	mu sync.Mutex
	// failed is the error of the last failed run while no commit has
	// landed since; nil when the pipeline is healthy.
	failed error
}

// New builds the sources of cfg and asks each for the specs it needs
// (source.Source.Specs). An error names a setting the sources reject (a
// Kafka route to a table that is not declared); the sources built so far
// are closed. Close the pipeline when done.
func New(cfg Config, o Options) (*Pipeline, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	p := &Pipeline{cfg: cfg, log: o.Logger, reg: o.Registerer}
	p.specs = append(p.specs, cfg.Tables...)
	declared := map[string]bool{}
	for _, s := range cfg.Tables {
		declared[s.Name] = true
	}
	added := map[string]bool{}
	for i := range cfg.Sources {
		src, err := cfg.Sources[i].New(source.Options{Logger: o.Logger, Registerer: o.Registerer})
		if err != nil {
			_ = p.Close()
			return nil, err
		}
		p.srcs = append(p.srcs, src)
		specs, err := src.Specs(cfg.Tables)
		if err != nil {
			_ = p.Close()
			return nil, fmt.Errorf("sources[%d].%w", i, err)
		}
		for _, s := range specs {
			switch {
			case declared[s.Name]:
				// A declared table the source changes (metadata columns):
				// ensured after the declared spec.
				p.specs = append(p.specs, s)
			case !added[s.Name]:
				// The first source to need an undeclared table creates it.
				added[s.Name] = true
				p.specs = append(p.specs, s)
			}
		}
	}
	return p, nil
}

// Sources are the pipeline's sources, in config order.
func (p *Pipeline) Sources() []source.Source { return p.srcs }

// Specs are the specs EnsureTables applies, in order: the declared tables,
// then what the sources need.
func (p *Pipeline) Specs() []table.Spec { return p.specs }

// EnsureTables creates or evolves every table of Specs in cat.
func (p *Pipeline) EnsureTables(ctx context.Context, cat icecat.Catalog) error {
	for _, s := range p.specs {
		if _, err := table.Ensure(ctx, cat, s); err != nil {
			return fmt.Errorf("table %s: %w", s.Name, err)
		}
	}
	return nil
}

// RunOptions tune one Run.
type RunOptions struct {
	// OnCommit is called after every table commit (writer.Options.OnCommit).
	OnCommit func(writer.CommitInfo)
	// Hooks are the writer's fault-injection points, for crash tests.
	Hooks writer.Hooks
	// JobName names the pipeline's daemon job; default "ingest". Several
	// pipelines of one process (floe run) need different names.
	JobName string
	// Board, when set, records the job's state, errors and commits
	// (daemon.Board), for /status and /readyz.
	Board *daemon.Board
	// WriterMetrics, when set, are the writer's metrics; default: made
	// on the pipeline's Registerer. Several pipelines of one registry
	// share one.
	WriterMetrics *writer.Metrics
}

// Run runs the sources into the tables of cat under source.Supervise until
// ctx is done or every source has ended, then commits what is buffered.
// The tables must exist (EnsureTables). It registers the writer's and the
// supervisor's metrics on the pipeline's Registerer: call it once per
// Registerer.
func (p *Pipeline) Run(ctx context.Context, cat icecat.Catalog, o RunOptions) error {
	name := o.JobName
	if name == "" {
		name = "ingest"
	}
	onCommit := func(ci writer.CommitInfo) {
		p.setFailed(nil)
		o.Board.Progress(name)
		if o.OnCommit != nil {
			o.OnCommit(ci)
		}
	}
	m := o.WriterMetrics
	if m == nil {
		m = writer.NewMetrics(p.reg)
	}
	return source.Supervise(ctx, cat, p.srcs, source.SuperviseOptions{
		Writer: p.cfg.Writer,
		WriterOptions: writer.Options{
			Logger: p.log, Metrics: m, Hooks: o.Hooks, OnCommit: onCommit,
		},
		Logger:     p.log,
		Registerer: p.reg,
		OnFailure:  p.setFailed,
		JobName:    name,
		Board:      o.Board,
	})
}

func (p *Pipeline) setFailed(err error) {
	p.mu.Lock()
	p.failed = err
	p.mu.Unlock()
}

// Ready returns nil while the pipeline is making progress or idle for a
// known-good reason, else why not: the error of its last failed run when
// nothing has been committed since (a database that refuses the login, a
// catalog or store that cannot be reached), and every source's Health (a
// Kafka broker unreachable, a topic missing). For a daemon's /readyz.
func (p *Pipeline) Ready() error {
	var errs []error
	p.mu.Lock()
	if p.failed != nil {
		errs = append(errs, fmt.Errorf("the last run failed and nothing was committed since: %w", p.failed))
	}
	p.mu.Unlock()
	for _, s := range p.srcs {
		if err := s.Health(); err != nil {
			errs = append(errs, fmt.Errorf("source %s: %w", s.ID(), err))
		}
	}
	return errors.Join(errs...)
}

// Close closes every source (a Kafka source leaves its group); call it
// after Run returned. It returns every source's error.
func (p *Pipeline) Close() error {
	var errs []error
	for _, s := range p.srcs {
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close source %s: %w", s.ID(), err))
		}
	}
	return errors.Join(errs...)
}
