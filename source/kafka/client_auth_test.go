package kafka

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAuthGateBackoff: every refusal in a row doubles the wait before the
// next connection, from 1 s to at most 30 s; a broker that accepts the
// client starts it over.
func TestAuthGateBackoff(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := newAuthGate(func() time.Time { return now })
	tests := []struct {
		refusals int
		want     time.Duration
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {5, 16 * time.Second}, {6, 30 * time.Second}, {40, 30 * time.Second},
	}
	for _, tt := range tests {
		g.ok()
		for range tt.refusals {
			g.refused(errors.New("refused"))
		}
		if got := g.until.Sub(now); got != tt.want {
			t.Errorf("after %d refusals: wait %s, want %s", tt.refusals, got, tt.want)
		}
	}
	if !g.ok() || g.ok() {
		t.Fatal("ok: want true once after refusals, then false")
	}
	if err := g.wait(context.Background()); err != nil {
		t.Fatalf("wait with no refusal: %v", err)
	}
}

// TestAuthGateDialWaits: after a refusal the dialer connects only once the
// backoff has passed, and gives up with the context.
func TestAuthGateDialWaits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	g := newAuthGate(time.Now)
	release := make(chan time.Time)
	var asked atomic.Int64
	g.after = func(d time.Duration) <-chan time.Time { asked.Store(int64(d)); return release }
	dial := g.dialer(nil)
	g.refused(errors.New("refused"))
	done := make(chan error, 1)
	go func() {
		c, err := dial(context.Background(), "tcp", ln.Addr().String())
		if err == nil {
			_ = c.Close()
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Fatalf("%d connections during the backoff, want 0", n)
	}
	if d := time.Duration(asked.Load()); d <= 0 || d > time.Second {
		t.Fatalf("the dial waited %s, want the first backoff (at most 1s)", d)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("dial after the backoff: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.refused(errors.New("refused"))
	g.after = func(time.Duration) <-chan time.Time { return nil } // never
	cancel()
	_, err1 := dial(ctx, "tcp", ln.Addr().String())
	if !errors.Is(err1, context.Canceled) || !strings.Contains(err1.Error(), "refused") {
		t.Fatalf("dial with a cancelled context during the backoff: %v; want the context's error with the refusal", err1)
	}
	// The same message every time, so that kgoLogger folds the repeats.
	time.Sleep(20 * time.Millisecond)
	if _, err2 := dial(ctx, "tcp", ln.Addr().String()); err2 == nil || err2.Error() != err1.Error() {
		t.Fatalf("two dials cut short by one backoff: %q, then %q; want the same message", err1, err2)
	}
}

// TestKgoLoggerOncePerState: franz-go's repeated warnings and errors (a
// refused SASL login at every connection) are logged at their level once,
// then at DEBUG, until the brokers accept the client again; a different
// error is logged at once; a SASL refusal closes the gate.
func TestKgoLoggerOncePerState(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	g := newAuthGate(time.Now)
	l := newKgoLogger(log, g)
	saslErr := "SASL_AUTHENTICATION_FAILED: invalid credentials"
	for range 20 {
		l.Log(kgo.LogLevelError, kgoSASLFailed, "broker", "seed_0", "err", saslErr)
	}
	l.Log(kgo.LogLevelWarn, "unable to open connection to broker", "broker", "seed_0", "err", "connection refused")
	l.Log(kgo.LogLevelWarn, "unable to open connection to broker", "broker", "seed_0", "err", "connection refused")
	count := func(s string) int { return strings.Count(buf.String(), s) }
	if n := count("level=ERROR"); n != 1 {
		t.Fatalf("%d ERROR lines for 20 identical refusals, want 1:\n%s", n, buf.String())
	}
	if n := count("level=WARN"); n != 1 {
		t.Fatalf("%d WARN lines for 2 identical warnings, want 1:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "SASL_AUTHENTICATION_FAILED") {
		t.Fatalf("the reason is not logged:\n%s", buf.String())
	}
	if g.refusal != 20 {
		t.Fatalf("gate saw %d refusals, want 20", g.refusal)
	}
	if n := l.recovered(); n != 20 {
		t.Fatalf("recovered: %d repeats, want 20", n)
	}
	l.Log(kgo.LogLevelError, kgoSASLFailed, "broker", "seed_0", "err", saslErr)
	if n := count("level=ERROR"); n != 2 {
		t.Fatalf("a refusal after recovery: %d ERROR lines in all, want 2", n)
	}
}
