package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer func() { _ = c.Close() }(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func newProxy(t *testing.T) *Proxy {
	t.Helper()
	p, err := Listen("echo", "127.0.0.1:0", echoServer(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// roundTrip sends one line through a new connection and returns the time
// the answer took, or the error.
func roundTrip(addr string, msg string, timeout time.Duration) (time.Duration, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(timeout))
	start := time.Now()
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, err
	}
	if line != msg+"\n" {
		return 0, errors.New("echo changed: " + line)
	}
	return time.Since(start), nil
}

func TestFaults(t *testing.T) {
	long := string(make([]byte, 20000))
	tests := []struct {
		name    string
		faults  Faults
		msg     string
		min     time.Duration // the round trip takes at least this long
		wantErr bool
	}{
		{name: "none", msg: "hello"},
		{name: "latency", faults: Faults{Latency: 100 * time.Millisecond}, msg: "hello", min: 200 * time.Millisecond},
		{name: "bandwidth", faults: Faults{BytesPerSecond: 100000}, msg: long, min: 300 * time.Millisecond},
		{name: "stall times the client out", faults: Faults{Stall: true}, msg: "hello", wantErr: true},
		{name: "down refuses", faults: Faults{Down: true}, msg: "hello", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProxy(t)
			p.Set(tt.faults)
			d, err := roundTrip(p.Addr(), tt.msg, time.Second)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("round trip through %s worked; want an error", tt.faults)
				}
				return
			}
			if err != nil {
				t.Fatalf("round trip through %s: %v", tt.faults, err)
			}
			if d < tt.min {
				t.Fatalf("round trip through %s took %s; want at least %s", tt.faults, d, tt.min)
			}
			p.Set(Faults{})
			if _, err := roundTrip(p.Addr(), "again", time.Second); err != nil {
				t.Fatalf("after clearing the faults: %v", err)
			}
		})
	}
}

// TestResetAndOutage: an open connection is reset by ResetAll and by Down;
// a stalled one carries its data once the stall ends.
func TestResetAndOutage(t *testing.T) {
	p := newProxy(t)
	for _, how := range []string{"reset", "down"} {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		if _, err := io.WriteString(c, "x\n"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		if how == "reset" {
			if n := p.ResetAll(); n != 1 {
				t.Fatalf("ResetAll reset %d connections; want 1", n)
			}
		} else {
			p.Set(Faults{Down: true})
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = io.WriteString(c, "y\n")
		_, err = r.ReadString('\n')
		if err == nil || errors.Is(err, syscall.ETIMEDOUT) {
			t.Fatalf("%s: read after the reset: %v; want a reset or EOF", how, err)
		}
		_ = c.Close()
	}
	p.Set(Faults{})
	if st := p.Stats(); st.Reset != 2 {
		t.Fatalf("stats %+v: want 2 resets", st)
	}

	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	p.Set(Faults{Stall: true})
	if _, err := io.WriteString(c, "held\n"); err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(300 * time.Millisecond); p.Set(Faults{}) }()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "held\n" {
		t.Fatalf("after the stall: %q, %v", line, err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("stalled data arrived after %s; want after the stall ended", d)
	}
}
