package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/source/jsonrow"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// ErrRebalanced ends a run whose partitions were revoked or lost in a group
// rebalance: the writer is then started afresh and the partitions still
// owned re-seek from the tables. It is classified source.ErrRestart: a
// routine restart, not a failure.
var ErrRebalanced = source.Restart(errors.New("partitions were revoked or lost in a group rebalance"))

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("kafka source closed")

// Options are the source's collaborators.
type Options struct {
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer for the source's metrics; default: a private registry.
	Registerer prometheus.Registerer
	// Now stamps dead letters and measures freshness; default time.Now.
	Now func() time.Time
	// Allocator for Arrow batches; default memory.DefaultAllocator.
	Allocator memory.Allocator
	// ClientOpts are appended to the franz-go options the source builds
	// from its Config; for tests (e.g. a kfake cluster's quirks).
	ClientOpts []kgo.Opt
	// OffsetCommitInterval is how often group offsets and the lag and
	// freshness gauges are updated. Default: 1s.
	OffsetCommitInterval time.Duration
}

// tp is a topic partition.
type tp struct {
	topic string
	part  int32
}

func (t tp) key() string { return t.topic + "/" + strconv.Itoa(int(t.part)) }

// route is a configured route with its tables resolved to indices into
// Source.tables.
type route struct {
	Route
	// tables the route's partitions feed: its tables, then the dead-letter
	// table (always last).
	tables []int
	// slot maps a table index to its place in tables.
	slot map[int]int
	// byValue maps a Field value to a table index; def is Table's, or -1.
	byValue map[string]int
	def     int
}

// Source is a Kafka source. It is safe for use by one Run at a time;
// Supervise runs it again after a failure, and the group membership
// survives between runs. Close it when done.
type Source struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	mem   memory.Allocator
	m     *metrics
	kopts []kgo.Opt
	every time.Duration
	gate  *authGate  // spaces out connections while brokers refuse the client
	klog  *kgoLogger // the client's logger, with cl

	tables []string // routed tables, sorted, then the dead-letter table
	dl     int      // index of the dead-letter table
	cdc    map[int]bool
	keyed  map[int]bool // tables of upsert routes
	um     *upsertMetrics
	routes map[string]*route // by topic
	topics []string

	mu       sync.Mutex
	cond     *sync.Cond // broadcast when run or closed change
	cl       *kgo.Client
	health   *health // with cl
	run      *run
	assigned map[tp]bool
	closed   bool
	done     chan struct{} // closed by Close: stops commitLoop
	wg       sync.WaitGroup

	// Guarded by offMu (never held while calling out): state the commit
	// observer and commitLoop share.
	offMu       sync.Mutex
	owned       map[tp]bool
	hwm         map[tp]int64
	committed   map[int]table.Positions // table index → this source's positions
	groupDone   map[tp]int64            // group offset last committed
	marks       map[int][]eventMark     // table index → event times awaiting commit
	lastEvent   map[int]time.Time       // newest committed event time
	latestStart map[tp]int64            // start-offset latest: where a partition first started
	// base is, per owned partition and routed table, the position the
	// table had when the partition was seeked (-1: unknown, start-offset
	// latest and never read), for the lag before the first commit.
	base map[tp]map[int]int64
	kick chan struct{} // wakes commitLoop after an assignment
}

// eventMark is the newest event time of a batch and the positions that
// commit it.
type eventMark struct {
	pos table.Positions
	ev  time.Time
}

var _ source.Source = (*Source)(nil)

// New returns a source for cfg (after ApplyDefaults) or the first setting
// Validate rejects.
func New(cfg Config, o Options) (*Source, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new kafka source: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	if o.OffsetCommitInterval <= 0 {
		o.OffsetCommitInterval = time.Second
	}
	gate := newAuthGate(o.Now)
	kopts, err := gatedConnOpts(&cfg, gate)
	if err != nil {
		return nil, fmt.Errorf("new kafka source %s: %w", cfg.ID, err)
	}
	m, err := newMetrics(o.Registerer, cfg.ID)
	if err != nil {
		return nil, err
	}
	um, err := newUpsertMetrics(o.Registerer, cfg.ID)
	if err != nil {
		return nil, err
	}
	s := &Source{
		cfg: cfg, log: o.Logger.With("source", cfg.ID), now: o.Now, mem: o.Allocator, m: m, um: um, keyed: map[int]bool{},
		kopts: append(kopts, o.ClientOpts...), every: o.OffsetCommitInterval, gate: gate,
		cdc: map[int]bool{}, routes: map[string]*route{},
		assigned: map[tp]bool{}, done: make(chan struct{}),
		owned: map[tp]bool{}, hwm: map[tp]int64{}, committed: map[int]table.Positions{},
		groupDone: map[tp]int64{}, marks: map[int][]eventMark{}, lastEvent: map[int]time.Time{},
		latestStart: map[tp]int64{}, base: map[tp]map[int]int64{}, kick: make(chan struct{}, 1),
	}
	s.cond = sync.NewCond(&s.mu)
	seen := map[string]bool{}
	for _, r := range cfg.Routes {
		for _, t := range r.tables() {
			if !seen[t] {
				seen[t] = true
				s.tables = append(s.tables, t)
			}
		}
	}
	sort.Strings(s.tables)
	s.dl = len(s.tables)
	s.tables = append(s.tables, cfg.DeadLetterTable)
	index := func(name string) int { return slices.Index(s.tables, name) }
	for _, r := range cfg.Routes {
		rt := &route{Route: r, slot: map[int]int{}, byValue: map[string]int{}, def: -1}
		if r.Table != "" {
			rt.def = index(r.Table)
		}
		for v, t := range r.Tables {
			rt.byValue[v] = index(t)
		}
		for _, t := range r.tables() {
			rt.tables = append(rt.tables, index(t))
		}
		rt.tables = append(rt.tables, s.dl)
		for i, ti := range rt.tables {
			rt.slot[ti] = i
			if ti != s.dl && r.Format != FormatJSON {
				s.cdc[ti] = true
			}
			if ti != s.dl && r.Mode == ModeUpsert {
				s.keyed[ti] = true
			}
		}
		for _, t := range r.Topics {
			s.routes[t] = rt
			s.topics = append(s.topics, t)
		}
	}
	sort.Strings(s.topics)
	return s, nil
}

// ID is the source id positions are stored under (Config.ID).
func (s *Source) ID() string { return s.cfg.ID }

// Specs returns the specs of the tables the source writes that Ensure
// should apply: the dead-letter table, and — with MetadataColumns — every
// routed table of declared with the metadata columns it lacks added as
// optional columns. A routed table must be declared: the source cannot
// guess a schema.
func (s *Source) Specs(declared []table.Spec) ([]table.Spec, error) {
	byName := map[string]table.Spec{}
	for _, d := range declared {
		byName[d.Name] = d
	}
	var out []table.Spec
	for i, name := range s.tables[:s.dl] {
		d, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("kafka.routes: table %s is not declared under tables: (the source maps JSON to its columns)", name)
		}
		if !s.cfg.MetadataColumns {
			continue
		}
		spec := d
		spec.Schema = slices.Clone(d.Schema)
		for _, f := range metaColumns(s.cdc[i]) {
			if !slices.ContainsFunc(spec.Schema, func(x table.Field) bool { return x.Name == f.Name }) {
				spec.Schema = append(spec.Schema, f)
			}
		}
		out = append(out, spec)
	}
	if err := s.checkUpserts(byName); err != nil {
		return nil, err
	}
	if _, ok := byName[s.cfg.DeadLetterTable]; !ok {
		out = append(out, table.DeadLetterSpec(s.cfg.DeadLetterTable))
	}
	return out, nil
}

// Run opens the tables on sink, observes its commits (for group offsets,
// lag and freshness), joins the group on the first run, seeks every owned
// partition to the tables' positions (Sink.Resync) and writes a batch per
// table per poll until ctx is done (ctx.Err()), the partitions are
// rebalanced (ErrRebalanced) or a write or fetch fails (that error).
func (s *Source) Run(ctx context.Context, sink writer.Sink) error {
	r, err := s.open(ctx, sink)
	if err != nil {
		return err
	}
	sink.ObserveCommits(s.OnCommit)
	defer r.release()
	cl, err := s.client()
	if err != nil {
		return err
	}
	if err := s.activate(ctx, r, cl); err != nil {
		return err
	}
	defer s.deactivate(r)
	err = r.loop(ctx, cl)
	r.ups.close(ctx, err)
	if ctx.Err() == nil {
		reason := "error"
		switch {
		case errors.Is(err, ErrRebalanced):
			reason = "rebalanced"
		case errors.Is(err, table.ErrFenced):
			reason = "fenced"
		}
		s.m.restarts.WithLabelValues(reason).Inc()
		s.log.Info("kafka source run ended; the next run re-seeks from the tables", "reason", reason, "err", err)
	}
	return err
}

// client returns the group client, creating it (and joining the group) on
// the first call.
func (s *Source) client() (*kgo.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.cl != nil {
		return s.cl, nil
	}
	c := &s.cfg
	s.klog = newKgoLogger(s.log, s.gate)
	reset := kgo.NewOffset().AtStart()
	opts := append(slices.Clone(s.kopts), groupOpts(c)...)
	opts = append(opts,
		kgo.ConsumeTopics(s.topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Where a partition resumes after the broker lost data or
		// retention removed the position: the log start. Records below a
		// table's position are skipped, so this never duplicates.
		kgo.ConsumeResetOffset(reset),
		kgo.ConsumeStartOffset(reset),
		kgo.FetchMaxBytes(int32(c.FetchMaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(c.FetchMaxPartitionBytes)),
		kgo.FetchMaxWait(c.FetchMaxWait),
		kgo.AdjustFetchOffsetsFn(s.onAdjust),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onLost),
		kgo.WithLogger(s.klog),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("create kafka client for source %s: %w", s.cfg.ID, err)
	}
	h := newHealth(s)
	s.cl, s.health = cl, h
	s.wg.Add(2)
	go s.commitLoop(cl)
	go h.loop(cl, s.done)
	s.log.Info("kafka source joining group", "group", c.Group, "topics", s.topics, "brokers", c.Brokers)
	return cl, nil
}

// Health returns nil, or what the source has been unable to do for
// unavailable-timeout while it keeps retrying: reach any broker
// (ErrBrokersUnreachable) or find a routed topic (ErrTopicMissing), with
// the cause. It is nil before the first Run and after the fault ends; for
// a daemon's health endpoint.
func (s *Source) Health() error {
	s.mu.Lock()
	h := s.health
	s.mu.Unlock()
	if h == nil {
		return nil
	}
	return h.err()
}

// activate makes r the run the rebalance callbacks act on and seeks the
// partitions the group already gave us to the tables' positions.
func (s *Source) activate(ctx context.Context, r *run, cl *kgo.Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if len(s.assigned) > 0 {
		tps := make([]tp, 0, len(s.assigned))
		for t := range s.assigned {
			tps = append(tps, t)
		}
		starts, err := r.seek(ctx, tps)
		if err != nil {
			return err
		}
		set := map[string]map[int32]kgo.EpochOffset{}
		for t, o := range starts {
			if o < 0 {
				continue // latest and never consumed: the cursor is at the end
			}
			if set[t.topic] == nil {
				set[t.topic] = map[int32]kgo.EpochOffset{}
			}
			set[t.topic][t.part] = kgo.EpochOffset{Epoch: -1, Offset: o}
		}
		cl.SetOffsets(set)
		s.kickCommitLoop()
		s.log.Info("re-seeked owned partitions from the tables", "partitions", len(tps))
	}
	s.run = r
	s.cond.Broadcast()
	return nil
}

func (s *Source) deactivate(r *run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run == r {
		s.run = nil
	}
}

// onAdjust runs when the group assigns partitions, after their committed
// group offsets were fetched: it replaces them with the tables' positions.
// Between runs it waits for the next run (the writer it resyncs with).
func (s *Source) onAdjust(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.run == nil && !s.closed && ctx.Err() == nil {
		s.cond.Wait()
	}
	if s.closed {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var tps []tp
	for topic, parts := range offsets {
		for p := range parts {
			tps = append(tps, tp{topic, p})
		}
	}
	r := s.run
	starts, err := r.seek(ctx, tps)
	if err != nil {
		err = fmt.Errorf("seek assigned partitions to the tables' positions: %w", err)
		r.fail(err)
		return nil, err
	}
	out := make(map[string]map[int32]kgo.Offset, len(offsets))
	s.offMu.Lock()
	for t, o := range starts {
		s.assigned[t] = true
		s.owned[t] = true
		if out[t.topic] == nil {
			out[t.topic] = map[int32]kgo.Offset{}
		}
		if o < 0 {
			out[t.topic][t.part] = kgo.NewOffset().AtEnd()
		} else {
			out[t.topic][t.part] = kgo.NewOffset().At(o).WithEpoch(-1)
		}
	}
	s.offMu.Unlock()
	s.kickCommitLoop()
	s.log.Info("partitions assigned; fetching from the tables' positions", "partitions", fmtStarts(starts))
	return out, nil
}

func (s *Source) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	n := 0
	for _, ps := range assigned {
		n += len(ps)
	}
	s.m.rebalances.WithLabelValues("assigned").Add(float64(n))
}

// onRevoked commits everything buffered while the revoked partitions are
// still ours, then ends the run: its writer holds their positions.
func (s *Source) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	tps := flatten(revoked)
	if len(tps) == 0 {
		return
	}
	s.m.rebalances.WithLabelValues("revoked").Add(float64(len(tps)))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tps {
		delete(s.assigned, t)
	}
	if r := s.run; r != nil {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.RebalanceTimeout)
		err := errors.Join(r.sink.Commit(cctx), r.ups.commit(cctx))
		cancel()
		r.drop(tps)
		if err != nil {
			s.log.Error("commit before revoking partitions failed; their rows are dropped and re-read by the new owner", "partitions", fmtTPs(tps), "err", err)
			r.fail(fmt.Errorf("commit before revoking %s: %w", fmtTPs(tps), err))
		} else {
			r.fail(fmt.Errorf("revoked %s: %w", fmtTPs(tps), ErrRebalanced))
		}
	}
	s.commitGroupOffsets(ctx, cl, tps)
	s.disown(tps)
	s.log.Info("partitions revoked", "partitions", fmtTPs(tps))
}

// onLost ends the run without committing: another member may own the
// partitions already.
func (s *Source) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	tps := flatten(lost)
	s.m.rebalances.WithLabelValues("lost").Add(float64(len(tps)))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tps {
		delete(s.assigned, t)
	}
	if r := s.run; r != nil {
		r.drop(tps)
		r.fail(fmt.Errorf("lost %s: %w", fmtTPs(tps), ErrRebalanced))
	}
	s.disown(tps)
	s.log.Warn("partitions lost (group session expired); dropping what is buffered", "partitions", fmtTPs(tps))
}

func (s *Source) disown(tps []tp) {
	s.offMu.Lock()
	defer s.offMu.Unlock()
	for _, t := range tps {
		delete(s.owned, t)
		delete(s.hwm, t)
		delete(s.base, t)
		s.m.lag.DeleteLabelValues(t.topic, strconv.Itoa(int(t.part)))
	}
}

// Close leaves the group and closes the client. Call it after the last Run
// returned and the writer committed (Supervise returned), so the next owner
// of the partitions starts from our last commit.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cl := s.cl
	s.cond.Broadcast()
	s.mu.Unlock()
	if cl == nil {
		return nil
	}
	close(s.done)
	s.wg.Wait()
	s.mu.Lock()
	owned := make([]tp, 0, len(s.assigned))
	for t := range s.assigned {
		owned = append(owned, t)
	}
	s.mu.Unlock()
	s.commitGroupOffsets(context.Background(), cl, owned)
	cl.Close()
	s.log.Info("kafka source left the group", "group", s.cfg.Group)
	return nil
}

func flatten(m map[string][]int32) []tp {
	var out []tp
	for topic, ps := range m {
		for _, p := range ps {
			out = append(out, tp{topic, p})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].topic != out[j].topic {
			return out[i].topic < out[j].topic
		}
		return out[i].part < out[j].part
	})
	return out
}

func fmtTPs(tps []tp) string {
	p := table.Positions{}
	for _, t := range tps {
		p[t.key()] = 0
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return fmt.Sprint(keys)
}

func fmtStarts(starts map[tp]int64) string {
	p := table.Positions{}
	for t, o := range starts {
		p[t.key()] = o
	}
	return p.String()
}

// decoderOptions are the jsonrow options for a table: Canal writes every
// column value as a string, so its tables accept quoted numbers.
func decoderOptions(cdc bool) jsonrow.Options {
	return jsonrow.Options{QuotedNumbers: cdc}
}
