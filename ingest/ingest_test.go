package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/ingest"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/source/all"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// counterConfig is the counter: section of a source entry.
type counterConfig struct {
	ID         string `yaml:"id"`
	Table      string `yaml:"table"`
	Partitions int    `yaml:"partitions"`
	Rows       int64  `yaml:"rows"` // per partition
	Batch      int64  `yaml:"batch"`
	// FailAfter ends the first run with an error after that many
	// batches, to show a restart resumes from the table; 0: never.
	FailAfter int `yaml:"fail-after"`
	// FailRuns fails that many runs at once, before anything is written.
	FailRuns int `yaml:"fail-runs"`
}

func (c *counterConfig) ApplyDefaults() {
	if c.Batch == 0 {
		c.Batch = 7
	}
}

func (c *counterConfig) Validate() error {
	if c.Rows <= 0 {
		return errors.New("counter.rows: must be > 0")
	}
	return nil
}

// counter is a source that writes n = 0..Rows-1 of every partition as rows
// (partition, n), with positions: partition → next n.
type counter struct {
	cfg      counterConfig
	mu       sync.Mutex
	runs     int
	closed   bool
	observed table.Positions // the newest committed positions it was told of
	health   error           // what Health returns
}

func counterKind(made *[]*counter) source.Kind {
	return source.NewKind("counter", func() counterConfig { return counterConfig{ID: "counter", Partitions: 2} },
		func(c counterConfig, _ source.Options) (source.Source, error) {
			s := &counter{cfg: c}
			*made = append(*made, s)
			return s, nil
		})
}

func (c *counter) ID() string { return c.cfg.ID }

func (c *counter) Specs(declared []table.Spec) ([]table.Spec, error) {
	for _, d := range declared {
		if d.Name == c.cfg.Table {
			return nil, nil
		}
	}
	return []table.Spec{{Name: c.cfg.Table, Schema: []table.Field{
		{Name: "partition", Type: "string", Required: true},
		{Name: "n", Type: "long", Required: true},
	}}}, nil
}

func (c *counter) Health() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.health
}

func (c *counter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

var errCounterDied = errors.New("counter died")

func (c *counter) Run(ctx context.Context, sink writer.Sink) error {
	c.mu.Lock()
	c.runs++
	first, fail := c.runs == 1, c.runs <= c.cfg.FailRuns
	c.mu.Unlock()
	if fail {
		return errCounterDied
	}
	sink.ObserveCommits(func(ci writer.CommitInfo) {
		if ci.Table != c.cfg.Table {
			return
		}
		c.mu.Lock()
		c.observed = ci.Positions[c.cfg.ID].Clone()
		c.mu.Unlock()
	})
	pos, sc, err := sink.Open(c.cfg.Table, c.cfg.ID)
	if err != nil {
		return err
	}
	batches := 0
	for p := range c.cfg.Partitions {
		part := "p" + strconv.Itoa(p)
		for next := pos[part]; next < c.cfg.Rows; {
			if err := ctx.Err(); err != nil {
				return err
			}
			end := min(next+c.cfg.Batch, c.cfg.Rows)
			var rows [][]any
			for n := next; n < end; n++ {
				rows = append(rows, []any{part, n})
			}
			rec := tabletest.Record(sc, rows...)
			if err := sink.Write(writer.Batch{Table: c.cfg.Table, Source: c.cfg.ID, Record: rec, Next: table.Positions{part: end}}); err != nil {
				return err
			}
			next = end
			if batches++; first && batches == c.cfg.FailAfter {
				// Make some of it durable, then fail with more buffered.
				if err := sink.Commit(ctx); err != nil {
					return err
				}
				return errCounterDied
			}
		}
	}
	return nil
}

// TestNewKindEndToEnd registers a source kind the built-in registry does
// not know, configures it in YAML as floe.yaml does, and runs it through
// the pipeline `floe ingest` runs, on a SQLite catalog: every row lands
// exactly once, across a failed first run, and the source saw the commits
// and was closed.
func TestNewKindEndToEnd(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	var made []*counter
	reg := all.Registry()
	if err := reg.Register(counterKind(&made)); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Sources []source.Config `yaml:"sources"`
	}
	doc := `
sources:
  - type: counter
    counter: {table: test.counts, partitions: 3, rows: 500, fail-after: 40}
  - type: gen
    gen: {id: g, partitions: 1, rows-per-partition: 1000, batch-rows: 100, orders-table: "", events-table: test.events, dead-letter-table: test.dead}
`
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Sources {
		if err := cfg.Sources[i].Resolve(reg, fmt.Sprintf("sources[%d]", i)); err != nil {
			t.Fatal(err)
		}
	}
	p, err := ingest.New(ingest.Config{
		Sources: cfg.Sources,
		Writer:  writer.Config{CommitInterval: time.Second, CommitRows: 300},
	}, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range p.Specs() {
		names = append(names, s.Name)
	}
	if fmt.Sprint(names) != "[test.counts test.events test.dead]" {
		t.Fatalf("specs %v", names)
	}
	if err := p.EnsureTables(ctx, cat); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := p.Run(runCtx, cat, ingest.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	if len(made) != 1 {
		t.Fatalf("%d counters built", len(made))
	}
	c := made[0]
	if c.runs < 2 || !c.closed {
		t.Fatalf("counter ran %d times, closed %v; want a restart after its failure, and Close", c.runs, c.closed)
	}
	want := table.Positions{"p0": 500, "p1": 500, "p2": 500}
	if c.observed.String() != want.String() {
		t.Fatalf("counter observed commits up to %v, want %v", c.observed, want)
	}
	got := map[string][]int64{}
	for _, r := range scan(t, cat, "test.counts") {
		got[r[0].(string)] = append(got[r[0].(string)], r[1].(int64))
	}
	for p := range 3 {
		ns := got["p"+strconv.Itoa(p)]
		sort.Slice(ns, func(i, j int) bool { return ns[i] < ns[j] })
		if len(ns) != 500 {
			t.Fatalf("p%d: %d rows, want 500", p, len(ns))
		}
		for i, n := range ns {
			if n != int64(i) {
				t.Fatalf("p%d: row %d is n=%d: a row is missing or repeated", p, i, n)
			}
		}
	}
	if n := len(scan(t, cat, "test.events")) + len(scan(t, cat, "test.dead")); n != 1000 {
		t.Fatalf("the generator beside it landed %d records, want 1000", n)
	}
}

// scan returns every row of a table as Go values.
func scan(t *testing.T, cat icecat.Catalog, name string) [][]any {
	t.Helper()
	return tabletest.Rows(t, tabletest.Load(t, cat, name))
}

// TestPipelineReady: the pipeline is not ready, with the reason, while its
// runs fail and nothing was committed since, and while a source reports
// itself unhealthy; it is ready again after a commit and once the source
// recovers.
func TestPipelineReady(t *testing.T) {
	ctx := context.Background()
	cat := tabletest.OpenSQLite(t)
	var made []*counter
	reg := source.NewRegistry(counterKind(&made))
	var cfg struct {
		Sources []source.Config `yaml:"sources"`
	}
	doc := "sources:\n  - type: counter\n    counter: {table: test.ready, partitions: 1, rows: 50, fail-runs: 3}\n"
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Sources[0].Resolve(reg, "sources[0]"); err != nil {
		t.Fatal(err)
	}
	p, err := ingest.New(ingest.Config{Sources: cfg.Sources, Writer: writer.Config{CommitInterval: time.Second}}, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.EnsureTables(ctx, cat); err != nil {
		t.Fatal(err)
	}
	if err := p.Ready(); err != nil {
		t.Fatalf("ready before the first run: %v", err)
	}
	// Record what Ready says after each failed run, through the commit
	// observer's clock: the pipeline ends once the counter's rows are in.
	var notReady []string
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, cat, ingest.RunOptions{}) }()
	deadline := time.Now().Add(time.Minute)
	for len(notReady) == 0 && time.Now().Before(deadline) {
		if err := p.Ready(); err != nil {
			notReady = append(notReady, err.Error())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(notReady) == 0 || !strings.Contains(notReady[0], "the last run failed") || !strings.Contains(notReady[0], errCounterDied.Error()) {
		t.Fatalf("not ready while runs failed: %q", notReady)
	}
	if err := p.Ready(); err != nil {
		t.Fatalf("ready after the rows were committed: %v", err)
	}
	made[0].mu.Lock()
	made[0].health = errors.New("broker unreachable")
	made[0].mu.Unlock()
	if err := p.Ready(); err == nil || !strings.Contains(err.Error(), "source counter: broker unreachable") {
		t.Fatalf("ready with an unhealthy source: %v", err)
	}
}
