package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/aggregate"
	"github.com/floe-lake/floe/catalog"
)

// TestAggregateFollowHalts: a spec that does not fit its source halts the
// follower, which stays up (serving the halted gauge) until it is stopped,
// and then returns the halt's reason.
func TestAggregateFollowHalts(t *testing.T) {
	_, cc := aggregateTestConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cat, err := catalog.Open(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := aggregate.LoadSpec(filepath.Join("..", "..", "examples", "aggregate", "orders_city_5m.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s.Dimensions = append(s.Dimensions, "no_such_column")
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	e := &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(&logs, nil))}
	done := make(chan error, 1)
	go func() { done <- runAggregationWith(ctx, e, cat, s, aggregationRun{mode: "follow", registerer: reg}) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		halted := false
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				halted = halted || mf.GetName() == "floe_daemon_job_halted" && m.GetGauge().GetValue() == 1
			}
		}
		if halted {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the follower returned %v instead of halting and staying up", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the follower did not halt")
		}
	}
	select {
	case err := <-done:
		t.Fatalf("the follower returned %v on a halt; it must stay up", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	err = <-done
	if err == nil || !strings.Contains(err.Error(), "halted") || !strings.Contains(err.Error(), "no_such_column") {
		t.Fatalf("after the halt, stopping returned %v", err)
	}
	if !strings.Contains(logs.String(), "level=ERROR msg=\"job halted") {
		t.Errorf("the halt was not logged at ERROR:\n%s", &logs)
	}
}

// TestAggregateMetricsAddress: -metrics-address, its default per mode,
// and a default address some other process holds.
func TestAggregateMetricsAddress(t *testing.T) {
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		return addr
	}
	// Hold the default address, as another follower would (if something
	// else holds it already, it is held all the same).
	if ln, err := net.Listen("tcp", defaultAggregateMetricsAddress); err == nil {
		defer func() { _ = ln.Close() }()
	}
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Close() }()
	for _, tc := range []struct {
		name, addr, mode string
		serves           bool
		wantErr, wantLog string
	}{
		{name: "once serves none", mode: "once"},
		{name: "backfill serves none", mode: "backfill"},
		{name: "follow: a held default is skipped", mode: "follow", wantLog: "the default metrics address is in use"},
		{name: "explicit address", addr: free(), mode: "once", serves: true},
		{name: "explicit and held", addr: held.Addr().String(), mode: "follow", wantErr: "metrics-address: listen on"},
		{name: "off", addr: "off", mode: "follow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			e := &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(&logs, nil))}
			stop, err := serveAggregateMetrics(tc.addr, tc.mode, newRegistry(), e)
			if wantError(t, err, tc.wantErr) {
				return
			}
			defer stop()
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log %q does not mention %q", &logs, tc.wantLog)
			}
			served := strings.Contains(logs.String(), "serving metrics")
			if served != tc.serves {
				t.Fatalf("served: %v, want %v (log %s)", served, tc.serves, &logs)
			}
			if !tc.serves {
				return
			}
			for _, path := range []string{"/metrics", "/healthz"} {
				resp, err := http.Get("http://" + tc.addr + path)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: %s", path, resp.Status)
				}
			}
		})
	}
}
