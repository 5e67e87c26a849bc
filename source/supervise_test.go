package source_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-lake/floe/internal/gentest"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/source/gen"
	"github.com/floe-lake/floe/writer"
)

// dying wraps a source and fails its first run after the sink has taken
// some batches, as a source whose broker connection drops would.
type dying struct {
	source.Source
	runs atomic.Int32
	// failCommits is set while the second run is on, and cleared when
	// the third starts.
	failCommits *atomic.Bool
}

type countingSink struct {
	writer.Sink
	n *atomic.Int32
}

func (s countingSink) Write(b writer.Batch) error {
	s.n.Add(1)
	return s.Sink.Write(b)
}

var errSourceDied = errors.New("source died")

func (d *dying) Run(ctx context.Context, sink writer.Sink) error {
	switch d.runs.Add(1) {
	case 1:
	case 2:
		d.failCommits.Store(true)
		return d.Source.Run(ctx, sink)
	default:
		d.failCommits.Store(false)
		return d.Source.Run(ctx, sink)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var n atomic.Int32
	done := make(chan error, 1)
	go func() { done <- d.Source.Run(ctx, countingSink{sink, &n}) }()
	for n.Load() < 20 {
		select {
		case err := <-done:
			return err
		case <-time.After(time.Millisecond):
		}
	}
	cancel(errSourceDied)
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return errSourceDied
}

// TestSuperviseRestartsFromTablePositions fails the pipeline twice — a
// source that dies with rows buffered, and commits that fail with an
// unknown outcome until the commit deadline passes — and checks that
// Supervise restarts it from the tables' positions until the finite
// generator stream is in the table exactly once.
func TestSuperviseRestartsFromTablePositions(t *testing.T) {
	ctx := context.Background()
	base := tabletest.OpenSQLite(t)
	var failCommits atomic.Bool
	cat := &tabletest.FaultCatalog{Catalog: base, Before: func(int) error {
		if failCommits.Load() {
			return tabletest.ErrInjected
		}
		return nil
	}}
	cfg := gen.DefaultConfig()
	cfg.Partitions, cfg.RowsPerPartition, cfg.BatchRows = 2, 20000, 500
	cfg.OrdersTable, cfg.BadFraction = "", 0
	cfg.Rate = 20000 // two seconds of stream: the second run commits mid-stream
	g := gentest.Ensure(t, base, cfg)
	// The second run's commits all fail past the commit deadline, so the
	// writer fails and the pipeline restarts once more.
	src := &dying{Source: g, failCommits: &failCommits}
	err := source.Supervise(ctx, cat, []source.Source{src}, source.SuperviseOptions{
		Writer:     writer.Config{CommitInterval: 100 * time.Millisecond, CommitTimeout: 300 * time.Millisecond, MemoryBudget: 8 << 20},
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if runs := src.runs.Load(); runs < 3 {
		t.Fatalf("the source ran %d times; want a restart after the source died and after the failed commits", runs)
	}

	ids := tabletest.Int64s(t, tabletest.Load(t, base, cfg.EventsTable), "event_id")
	want := int(cfg.Partitions) * int(cfg.RowsPerPartition)
	if len(ids) != want {
		t.Fatalf("table holds %d events, want %d", len(ids), want)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			t.Fatalf("event %d is in the table twice", ids[i])
		}
	}
}

// rebalancing ends its first run as a Kafka rebalance does: with an error
// classified source.ErrRestart, after the sink took some batches.
type rebalancing struct {
	source.Source
	runs atomic.Int32
}

func (r *rebalancing) Run(ctx context.Context, sink writer.Sink) error {
	if r.runs.Add(1) > 1 {
		return r.Source.Run(ctx, sink)
	}
	return source.Restart(fmt.Errorf("revoked p0: %w", errRebalanced))
}

var errRebalanced = errors.New("partitions were revoked")

// logRecord is one record a test handler kept.
type logRecord struct {
	level slog.Level
	msg   string
}

type keepHandler struct {
	mu   *sync.Mutex
	recs *[]logRecord
}

func (h keepHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h keepHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.recs = append(*h.recs, logRecord{r.Level, r.Message})
	return nil
}
func (h keepHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h keepHandler) WithGroup(string) slog.Handler      { return h }

// TestSuperviseRoutineRestart: a run that ends with a routine restart (a
// Kafka rebalance) restarts from the tables' positions and is logged at
// INFO, not as a failure at ERROR.
func TestSuperviseRoutineRestart(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	cfg := gen.DefaultConfig()
	cfg.Partitions, cfg.RowsPerPartition, cfg.BatchRows = 1, 1000, 100
	cfg.OrdersTable, cfg.BadFraction = "", 0
	g := gentest.Ensure(t, cat, cfg)
	var mu sync.Mutex
	var recs []logRecord
	src := &rebalancing{Source: g}
	err := source.Supervise(ctx, cat, []source.Source{src}, source.SuperviseOptions{
		Writer:     writer.Config{CommitInterval: time.Second},
		Logger:     slog.New(keepHandler{&mu, &recs}),
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := src.runs.Load(); n != 2 {
		t.Fatalf("the source ran %d times, want 2", n)
	}
	restarted := false
	for _, r := range recs {
		if r.level >= slog.LevelError {
			t.Errorf("logged at %v: %q", r.level, r.msg)
		}
		if r.level == slog.LevelInfo && strings.Contains(r.msg, "restarting") {
			restarted = true
		}
	}
	if !restarted {
		t.Errorf("the restart was not logged at INFO: %v", recs)
	}
}

// TestRestart: Restart keeps the error's message and identity and adds
// the ErrRestart class.
func TestRestart(t *testing.T) {
	base := errors.New("rebalanced")
	err := fmt.Errorf("run: %w", source.Restart(base))
	if !errors.Is(err, source.ErrRestart) || !errors.Is(err, base) || err.Error() != "run: rebalanced" {
		t.Fatalf("Restart: %v (is ErrRestart %v, is base %v)", err, errors.Is(err, source.ErrRestart), errors.Is(err, base))
	}
	if source.Restart(nil) != nil {
		t.Fatal("Restart(nil) != nil")
	}
	if errors.Is(base, source.ErrRestart) {
		t.Fatal("an unclassified error is a restart")
	}
}

// canceledOnce fails its first run with an error that wraps
// context.Canceled while the pipeline's context is alive — a commit whose
// own context was cancelled under a slow catalog — and runs its source
// after that.
type canceledOnce struct {
	source.Source
	runs atomic.Int32
}

func (c *canceledOnce) Run(ctx context.Context, sink writer.Sink) error {
	if c.runs.Add(1) > 1 {
		return c.Source.Run(ctx, sink)
	}
	return fmt.Errorf("commit: %w", context.Canceled)
}

// TestSuperviseSourceErrorWrappingCanceled: a source error that wraps
// context.Canceled is a failure (the pipeline restarts), not the end of
// the input: a daemon must not stop by itself with no error.
func TestSuperviseSourceErrorWrappingCanceled(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	cfg := gen.DefaultConfig()
	cfg.Partitions, cfg.RowsPerPartition, cfg.BatchRows = 1, 500, 100
	cfg.OrdersTable, cfg.BadFraction = "", 0
	src := &canceledOnce{Source: gentest.Ensure(t, cat, cfg)}
	err := source.Supervise(context.Background(), cat, []source.Source{src}, source.SuperviseOptions{
		Writer:     writer.Config{CommitInterval: time.Second},
		Logger:     slog.New(slog.DiscardHandler),
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := src.runs.Load(); n != 2 {
		t.Fatalf("the source ran %d times, want 2: its canceled error was taken for the end of its input", n)
	}
}
