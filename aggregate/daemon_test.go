package aggregate

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/internal/daemon"
	"github.com/floe-lake/floe/table"
)

// unreachableCatalog fails its first LoadTable calls as a catalog that
// does not answer would.
type unreachableCatalog struct {
	icecat.Catalog
	failures atomic.Int32
}

func (c *unreachableCatalog) LoadTable(ctx context.Context, ident icetable.Identifier) (*icetable.Table, error) {
	if c.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	}
	return c.Catalog.LoadTable(ctx, ident)
}

func gauge(t *testing.T, reg *prometheus.Registry, name, job string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "name" && lp.GetValue() != job {
					continue metric
				}
				if lp.GetName() == "reason" && (len(labels) == 0 || lp.GetValue() != labels[0]) {
					continue metric
				}
			}
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

// TestFollowJob runs FollowJob on a daemon runner: errors that may pass
// are retried until the job follows; errors of the spec or its tables
// halt it, and the runner stays up until its context ends.
func TestFollowJob(t *testing.T) {
	ctx := context.Background()
	cat, _ := generated(t)
	base := exampleSpec(t, "page_traffic_hourly.yaml")
	for _, tc := range []struct {
		name string
		spec func() Spec
		// before prepares the catalog; unreachable LoadTable calls fail
		// first.
		before      func(t *testing.T, s Spec)
		unreachable int32
		halt        bool
	}{
		{name: "an unreachable catalog is retried", unreachable: 2, spec: func() Spec { return withOutput(base, "dws.retried") }},
		{name: "a column the source lacks halts", halt: true, spec: func() Spec {
			s := withOutput(base, "dws.nocolumn")
			s.Dimensions = append(s.Dimensions, "no_such_column")
			return s
		}},
		{name: "an output holding another spec's states halts", halt: true,
			spec: func() Spec { s := withOutput(base, "dws.other"); s.Filter = "event_type = 'view'"; return s },
			before: func(t *testing.T, s Spec) {
				other := withOutput(base, s.Output)
				a, err := New(ctx, cat, other, Options{Logger: quietLogger()})
				if err != nil {
					t.Fatal(err)
				}
				catchUp(t, a)
			}},
		{name: "an output whose schema the spec cannot evolve halts", halt: true,
			spec: func() Spec { return withOutput(base, "dws.schema") },
			before: func(t *testing.T, s Spec) {
				// A column of the output in a type the spec's measure
				// cannot be promoted to.
				ts := table.Spec{Name: s.Output, Schema: []table.Field{{Name: s.Measures[0].Name, Type: "string"}}}
				if _, err := table.Ensure(ctx, cat, ts); err != nil {
					t.Fatal(err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec()
			if tc.before != nil {
				tc.before(t, s)
			}
			ucat := &unreachableCatalog{Catalog: cat}
			ucat.failures.Store(tc.unreachable)
			committed := make(chan struct{}, 100)
			opts := Options{Logger: quietLogger(), PollInterval: 20 * time.Millisecond, MaxBatchDelay: 50 * time.Millisecond,
				OnCommit: func(CommitInfo) { committed <- struct{}{} }}
			reg := prometheus.NewRegistry()
			r := daemon.New(daemon.Options{Logger: quietLogger(), Registerer: reg, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			done := make(chan error, 1)
			job := FollowJob(ucat, s, opts)
			go func() { done <- r.Run(rctx, job) }()
			if tc.halt {
				for deadline := time.Now().Add(30 * time.Second); len(r.Halted()) == 0; time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("the job did not halt")
					}
				}
				err := r.Halted()[job.Name]
				if !IsPermanent(err) {
					t.Errorf("halted on %v, not a permanent error", err)
				}
				if v := gauge(t, reg, "floe_daemon_job_halted", job.Name); v != 1 {
					t.Errorf("halted gauge %v", v)
				}
				select {
				case err := <-done:
					t.Fatalf("Run returned %v on a halt; it must stay up", err)
				case <-time.After(50 * time.Millisecond):
				}
			} else {
				select {
				case <-committed:
				case <-time.After(30 * time.Second):
					t.Fatal("no commit after the catalog came back")
				}
				if v := gauge(t, reg, "floe_daemon_restarts_total", job.Name, "failure"); v != float64(tc.unreachable) {
					t.Errorf("restarts counted %v, want %d", v, tc.unreachable)
				}
				if len(r.Halted()) != 0 {
					t.Errorf("halted: %v", r.Halted())
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run returned %v at shutdown", err)
			}
		})
	}
}

func TestIsPermanent(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, false},
		{table.ErrConflictRetriesExhausted, false},
		{context.DeadlineExceeded, false},
		{permanent(errors.New("bad spec")), true},
		{ErrNotRetractable, true},
		{errors.Join(errors.New("x"), table.ErrIncompatibleSchema), true},
	} {
		if got := IsPermanent(tc.err); got != tc.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
