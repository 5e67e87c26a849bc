package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/aggregate"
	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/ingest"
	"github.com/floe-lake/floe/internal/config"
	"github.com/floe-lake/floe/internal/daemon"
	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/transform"
	"github.com/floe-lake/floe/writer"
)

// CatalogJob is the name of the job that opens the catalog and ensures
// the tables before the other jobs start.
const CatalogJob = "catalog"

// IngestJob is the name of the ingest job of the source with id.
func IngestJob(id string) string { return "ingest/" + id }

// Options are a Service's collaborators.
type Options struct {
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registry receives every job's metrics and is what Status reads the
	// lag and dead-letter counts from. Default: a new registry.
	Registry *prometheus.Registry
	// Now is the clock of readiness and status. Default: time.Now.
	Now func() time.Time
	// Hooks are the writers' crash points, for crash tests.
	Hooks writer.Hooks
	// OpenCatalog opens the catalog; default catalog.Open of the config's
	// catalog section.
	OpenCatalog func(context.Context) (icecat.Catalog, error)
	// MinBackoff and MaxBackoff bound the waits before the catalog job and
	// the aggregation jobs retry. Defaults: 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// StatusRefresh is how old the tables' status may get before a request
	// reloads it. Default: 5s.
	StatusRefresh time.Duration
}

// Service is every job of one config. Run it once.
type Service struct {
	cfg   *config.File
	o     Options
	log   *slog.Logger
	board *daemon.Board
	pipes []*pipe
	specs []aggregate.Spec
	tfs   []transform.Spec
	wm    *writer.Metrics

	mu     sync.Mutex
	cat    icecat.Catalog // nil until the catalog job succeeded
	tables map[string]bool
	runs   []CompactionRun // newest last, at most maxRuns

	st statusCache
}

// pipe is one source's ingest pipeline.
type pipe struct {
	id  string
	p   *ingest.Pipeline
	src source.Source
}

// New builds the pipelines of cfg's sources — one per source, each with
// its share of the writer's memory budget — and checks their settings
// against the tables; it creates nothing. cfg must have been loaded with
// config.Run. Close the Service when done.
func New(cfg *config.File, o Options) (*Service, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StatusRefresh <= 0 {
		o.StatusRefresh = 5 * time.Second
	}
	if o.OpenCatalog == nil {
		cc := cfg.Catalog
		o.OpenCatalog = func(ctx context.Context) (icecat.Catalog, error) { return catalog.Open(ctx, cc) }
	}
	s := &Service{
		cfg: cfg, o: o, log: o.Logger, board: daemon.NewBoard(o.Now), specs: cfg.Specs, tfs: cfg.TransformSpecs,
		wm: writer.NewMetrics(o.Registry), tables: map[string]bool{},
	}
	if err := o.Registry.Register(newCollector(s)); err != nil {
		return nil, fmt.Errorf("register floe run's metrics: %w", err)
	}
	wc := cfg.Writer
	wc.ApplyDefaults()
	if n := len(cfg.Sources); n > 1 {
		wc.MemoryBudget = max(wc.MemoryBudget/writer.Bytes(n), 1<<20)
		wc.FlushBytes = min(wc.FlushBytes, wc.MemoryBudget)
	}
	for i := range cfg.Sources {
		pc := wc
		if len(cfg.Sources) > 1 {
			// One writer per source: tell their commits apart.
			pc.WriterID = fmt.Sprintf("%s/%d", wc.WriterID, i)
		}
		hook := &failHook{board: s.board}
		p, err := ingest.New(ingest.Config{Tables: cfg.Tables, Writer: pc, Sources: cfg.Sources[i : i+1]},
			ingest.Options{Logger: hook.logger(o.Logger), Registerer: o.Registry})
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("sources[%d]: %w", i, err)
		}
		src := p.Sources()[0]
		hook.job = IngestJob(src.ID())
		s.pipes = append(s.pipes, &pipe{id: src.ID(), p: p, src: src})
		for _, sp := range p.Specs() {
			s.tables[sp.Name] = true
		}
	}
	for _, sp := range s.specs {
		s.tables[sp.Output] = true
	}
	for _, sp := range s.tfs {
		s.tables[sp.Output] = true
	}
	for _, t := range cfg.Compaction.Tables {
		s.tables[t] = true
	}
	return s, nil
}

// Board is the state of every job, for tests and status.
func (s *Service) Board() *daemon.Board { return s.board }

// Run runs every job until ctx is done: the catalog job first (open the
// catalog, ensure every pipeline's tables; retried until it succeeds),
// then each source's pipeline, compaction (unless run.compaction is
// false), each aggregation spec and each transform spec. It returns nil when ctx ends, or the
// jobs' errors after it.
func (s *Service) Run(ctx context.Context) error {
	cat, err := NewCatalogStart(CatalogOptions{
		Open: s.o.OpenCatalog, Logger: s.log, Registerer: s.o.Registry, Board: s.board,
		MinBackoff: s.o.MinBackoff, MaxBackoff: s.o.MaxBackoff,
		Prepare: func(ctx context.Context, c icecat.Catalog) error {
			for _, p := range s.pipes {
				if err := p.p.EnsureTables(ctx, c); err != nil {
					return err
				}
			}
			return nil
		},
	}).Open(ctx)
	if err != nil || cat == nil {
		return err
	}
	defer closeCatalog(cat, s.log)
	s.mu.Lock()
	s.cat = cat
	s.mu.Unlock()
	s.log.Info("floe run starting", "sources", len(s.pipes), "aggregations", len(s.specs),
		"transforms", len(s.tfs), "compaction", *s.cfg.Run.Compaction, "warehouse", s.cfg.Catalog.Warehouse)
	return s.runJobs(ctx, cat)
}

// runJobs runs the pipelines, compaction, aggregations and transforms
// until ctx ends.
func (s *Service) runJobs(ctx context.Context, cat icecat.Catalog) error {
	var (
		wg   sync.WaitGroup
		emu  sync.Mutex
		errs []error
	)
	goRun := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && !errors.Is(err, context.Canceled) {
				emu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				emu.Unlock()
			}
		}()
	}
	for _, p := range s.pipes {
		name := IngestJob(p.id)
		goRun(name, func() error {
			return p.p.Run(ctx, cat, ingest.RunOptions{
				JobName: name, Board: s.board, WriterMetrics: s.wm, Hooks: s.o.Hooks,
				OnCommit: func(ci writer.CommitInfo) { s.sawTable(ci.Table) },
			})
		})
	}
	if *s.cfg.Run.Compaction {
		c, err := compaction.New(cat, s.cfg.Compaction, compaction.Options{
			Logger: s.log, Registerer: s.o.Registry, Now: s.o.Now, Board: s.board,
			OnGroup: s.recordRun,
		})
		if err != nil {
			return fmt.Errorf("compaction: %w", err)
		}
		goRun("compaction", func() error { return c.Run(ctx) })
	}
	if len(s.specs) > 0 {
		r := daemon.New(daemon.Options{
			Logger: s.log, Registerer: s.o.Registry, Board: s.board, Clock: daemon.ClockFunc(s.o.Now),
			MinBackoff: s.o.MinBackoff, MaxBackoff: s.o.MaxBackoff,
		})
		jobs := make([]daemon.Job, len(s.specs))
		for i, spec := range s.specs {
			name := "aggregate/" + spec.Name
			log := s.log.With("aggregate", spec.Name)
			jobs[i] = aggregate.FollowJob(cat, spec, aggregate.Options{Logger: s.log, OnCommit: func(ci aggregate.CommitInfo) {
				s.board.Progress(name)
				log.Info("committed", "kind", ci.Kind, "cursor", ci.Cursor, "source_rows", ci.SourceRows,
					"groups", ci.Groups, "snapshot", ci.SnapshotID, "duration", ci.Duration.Round(time.Millisecond))
			}})
		}
		goRun("aggregations", func() error { return r.Run(ctx, jobs...) })
	}
	if len(s.tfs) > 0 {
		r := daemon.New(daemon.Options{
			Logger: s.log, Registerer: s.o.Registry, Board: s.board, Clock: daemon.ClockFunc(s.o.Now),
			MinBackoff: s.o.MinBackoff, MaxBackoff: s.o.MaxBackoff,
		})
		jobs := make([]daemon.Job, len(s.tfs))
		for i, spec := range s.tfs {
			log := s.log.With("transform", spec.Output)
			var name string
			jobs[i] = transform.FollowJob(cat, spec, transform.Options{Logger: log, OnCommit: func(ci transform.CommitInfo) {
				s.board.Progress(name)
				s.sawTable(spec.Output)
				log.Info("committed", "kind", ci.Kind, "cursor", ci.Cursor, "source_rows", ci.SourceRows,
					"rows", ci.Rows, "snapshot", ci.SnapshotID, "duration", ci.Duration.Round(time.Millisecond))
			}})
			name = jobs[i].Name
		}
		goRun("transforms", func() error { return r.Run(ctx, jobs...) })
	}
	wg.Wait()
	s.log.Info("floe run stopped")
	return errors.Join(errs...)
}

// sawTable records a table a job committed to (a MySQL table created from
// the server's schema), for Status.
func (s *Service) sawTable(name string) {
	s.mu.Lock()
	s.tables[name] = true
	s.mu.Unlock()
}

// maxRuns is how many compaction groups Status keeps.
const maxRuns = 100

// CompactionRun is one compaction file group, for Status.
type CompactionRun struct {
	Time        time.Time `json:"time"`
	Table       string    `json:"table"`
	Partition   string    `json:"partition"`
	Result      string    `json:"result"`
	Reason      string    `json:"reason,omitempty"`
	InputFiles  int       `json:"input_files"`
	InputBytes  int64     `json:"input_bytes"`
	OutputFiles int       `json:"output_files"`
	OutputBytes int64     `json:"output_bytes"`
	Records     int64     `json:"records"`
	DurationMS  int64     `json:"duration_ms"`
}

func (s *Service) recordRun(g compaction.GroupReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs = append(s.runs, CompactionRun{
		Time: s.o.Now(), Table: g.Table, Partition: g.Partition, Result: g.Result, Reason: g.Reason,
		InputFiles: g.InputFiles, InputBytes: g.InputBytes, OutputFiles: g.OutputFiles, OutputBytes: g.OutputBytes,
		Records: g.Records, DurationMS: g.Duration.Milliseconds(),
	})
	if len(s.runs) > maxRuns {
		s.runs = append(s.runs[:0], s.runs[len(s.runs)-maxRuns:]...)
	}
	s.tables[g.Table] = true
}

// Ready returns nil while every job runs and has made progress or is idle
// for a known reason; else every reason it is not: the catalog not open
// yet, a job halted, a job that has failed for run.unavailable-timeout or
// longer without progress, a source that reports a fault.
func (s *Service) Ready() error {
	var errs []error
	now := s.o.Now()
	timeout := s.cfg.Run.UnavailableTimeout
	s.mu.Lock()
	open := s.cat != nil
	s.mu.Unlock()
	if !open {
		errs = append(errs, catalogPending(s.board))
	}
	for _, j := range s.board.Jobs() {
		switch {
		case j.State == daemon.StateHalted:
			errs = append(errs, fmt.Errorf("job %s halted: %s", j.Name, j.LastError))
		case failing(j, now, timeout) && now.Sub(j.FailingSince) >= timeout && j.Name != CatalogJob:
			errs = append(errs, fmt.Errorf("job %s failing since %s: %s", j.Name, j.FailingSince.UTC().Format(time.RFC3339), j.LastError))
		}
	}
	for _, p := range s.pipes {
		if err := p.src.Health(); err != nil {
			errs = append(errs, fmt.Errorf("source %s: %w", p.id, err))
		}
	}
	return errors.Join(errs...)
}

// failing reports whether job j is failing now: it failed since its last
// progress, and it is backing off or its current run is younger than
// timeout (a run that has lasted that long since its last failure is
// taken as recovered even when it had nothing to commit).
func failing(j daemon.JobStatus, now time.Time, timeout time.Duration) bool {
	if j.FailingSince.IsZero() {
		return false
	}
	if j.State == daemon.StateBackoff || j.State == daemon.StateHalted {
		return true
	}
	return now.Sub(j.LastErrorAt) < timeout || now.Sub(j.Since) < timeout
}

// Close closes every source (a Kafka source leaves its group); call it
// after Run returned.
func (s *Service) Close() error {
	var errs []error
	for _, p := range s.pipes {
		if err := p.p.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func closeCatalog(cat icecat.Catalog, log *slog.Logger) {
	if c, ok := cat.(io.Closer); ok {
		if err := c.Close(); err != nil {
			log.Warn("close catalog", "err", err)
		}
	}
}
