package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/config"
	"github.com/floe-lake/floe/internal/daemon"
	"github.com/floe-lake/floe/source/all"
)

// genConfig writes a floe.yaml with a finite generator source and the two
// example aggregation specs into dir, and loads it.
func genConfig(t testing.TB, dir string, extra string) *config.File {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	yml := fmt.Sprintf(`catalog:
  type: sqlite
  uri: %[1]s/catalog.db
  warehouse: %[1]s/warehouse
writer:
  commit-interval: 1s
run:
  unavailable-timeout: 1s
aggregations:
  - spec: %[2]s/examples/aggregate/page_traffic_hourly.yaml
  - spec: %[2]s/examples/aggregate/orders_city_5m.yaml
sources:
  - type: gen
    gen:
      id: gen
      seed: 3
      partitions: 2
      rate: 0
      rows-per-partition: 3000
      bad-fraction: 0.01
      events-table: ods.events
      orders-table: ods.orders
      dead-letter-table: floe.dead_letters
%[3]s`, dir, root, extra)
	p := filepath.Join(dir, "floe.yaml")
	if err := os.WriteFile(p, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p, config.Run, all.Registry())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startService runs a Service over cfg whose catalog fails to open while
// *down is true, and serves its routes; it stops when the test ends.
func startService(t *testing.T, cfg *config.File, down *atomic.Bool) (*Service, *httptest.Server) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, Options{
		Logger: slog.New(slog.DiscardHandler), Registry: reg, StatusRefresh: time.Millisecond,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OpenCatalog: func(ctx context.Context) (icecat.Catalog, error) {
			if down != nil && down.Load() {
				return nil, errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
			}
			return catalog.Open(ctx, cfg.Catalog)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	srv := httptest.NewUnstartedServer(Mux(reg, s.Ready, s.Routes))
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = s.Close()
	})
	return s, srv
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url) //nolint:gosec,noctx // a test server
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() //nolint:errcheck // read below
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestRunCatalogUnreachableThenEverything: a catalog that cannot be
// reached at start-up keeps the process not ready with the reason; once it
// answers, every job runs — the generator into its tables, compaction,
// both aggregations — and /status, the page and /readyz say so.
func TestRunCatalogUnreachableThenEverything(t *testing.T) {
	cfg := genConfig(t, t.TempDir(), "")
	var down atomic.Bool
	down.Store(true)
	s, srv := startService(t, cfg, &down)

	waitFor(t, 10*time.Second, "the catalog job to fail", func() bool {
		j, ok := s.Board().Job(CatalogJob)
		return ok && j.Restarts > 0
	})
	code, body := get(t, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "opening the catalog") || !strings.Contains(body, "connection refused") {
		t.Fatalf("/readyz with the catalog down = %d %q, want 503 naming the catalog and the cause", code, body)
	}
	_, st := get(t, srv.URL+"/status")
	if !strings.Contains(st, `"ready": false`) || !strings.Contains(st, "connection refused") {
		t.Fatalf("/status with the catalog down does not show it:\n%s", st)
	}
	down.Store(false)
	waitFor(t, 60*time.Second, "every job to make progress", func() bool {
		for _, name := range []string{IngestJob("gen"), "aggregate/page_traffic_hourly", "aggregate/orders_city_5m", "compaction/ods.events"} {
			if j, ok := s.Board().Job(name); !ok || j.LastProgress.IsZero() {
				return false
			}
		}
		return true
	})
	waitFor(t, 30*time.Second, "readiness", func() bool { return s.Ready() == nil })
	if code, body := get(t, srv.URL+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d %q, want 200", code, body)
	}
	var ev TableStatus
	waitFor(t, 30*time.Second, "ods.events in /status with every row", func() bool {
		for _, ts := range s.Status(context.Background()).Tables {
			if ts.Name == "ods.events" && ts.Rows > 0 {
				ev = ts
				return ts.CommittedRows >= float64(ts.Rows) && j(s, IngestJob("gen")).State == daemon.StateFinished
			}
		}
		return false
	})
	if len(ev.Snapshots) == 0 || len(ev.FileSizes) == 0 || len(ev.FilesPerPartition) == 0 {
		t.Fatalf("ods.events status lacks history or files: %+v", ev)
	}
	st2 := s.Status(context.Background())
	if len(st2.DeadLetters) == 0 || st2.DeadLetters[0].Count == 0 || len(st2.DeadLetters[0].Latest) == 0 {
		t.Fatalf("dead letters by reason missing: %+v", st2.DeadLetters)
	}
	_, page := get(t, srv.URL+"/")
	for _, want := range []string{`class="plot timeline"`, `class="plot files-per-partition"`, `class="plot file-sizes"`, `data-table="ods.events"`, `data-name="aggregate/orders_city_5m"`, `data-ready="true"`} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %s", want)
		}
	}
	if strings.Contains(page, "http://") && strings.Contains(page, "<script") {
		t.Error("status page loads scripts")
	}
}

func j(s *Service, name string) daemon.JobStatus {
	js, _ := s.Board().Job(name)
	return js
}

// TestReadyFailingJobAfterTimeout: a job that fails is reported only once
// it has failed for run.unavailable-timeout; a halted job at once; a job
// that ran for the timeout since its last failure is taken as recovered.
func TestReadyFailingJobAfterTimeout(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	cfg := &config.File{}
	cfg.Run.ApplyDefaults()
	cfg.Run.UnavailableTimeout = 30 * time.Second
	s, err := New(cfg, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	s.cat = fakeOpen{}
	s.board.Progress("compaction/a")
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready = %v, want nil", err)
	}
	s.board.Fail("compaction/a", errors.New("store unreachable"))
	now = now.Add(29 * time.Second)
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready 29s into a failure = %v, want nil", err)
	}
	s.board.Fail("compaction/a", errors.New("store unreachable"))
	now = now.Add(2 * time.Second)
	if err := s.Ready(); err == nil || !strings.Contains(err.Error(), "compaction/a failing since") || !strings.Contains(err.Error(), "store unreachable") {
		t.Fatalf("Ready 31s into a failure = %v, want the job and its error", err)
	}
	s.board.Progress("compaction/a")
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready after progress = %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := daemon.New(daemon.Options{Board: s.board, Logger: slog.New(slog.DiscardHandler)})
	go func() {
		_ = r.Run(ctx, daemon.Job{Name: "aggregate/x", Run: func(context.Context) error { return daemon.Halt(errors.New("bad spec")) }})
	}()
	waitFor(t, 5*time.Second, "the job to halt", func() bool { return j(s, "aggregate/x").State == daemon.StateHalted })
	if err := s.Ready(); err == nil || !strings.Contains(err.Error(), "aggregate/x halted: bad spec") {
		t.Fatalf("Ready with a halted job = %v", err)
	}
}

// fakeOpen stands for an open catalog in Ready's tests.
type fakeOpen struct{ icecat.Catalog }
