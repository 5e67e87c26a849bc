// Package faultproxy is a TCP proxy for fault-injection tests: it sits
// between Floe and one server (Kafka, MariaDB, MinIO, PostgreSQL) and, while
// traffic flows, adds latency, limits bandwidth, resets connections, stalls
// them until the client times out, and makes the server unreachable (an
// outage), without touching the server itself.
//
// It does what the tests need of Toxiproxy (github.com/Shopify/toxiproxy/v2)
// in about 300 lines and no new module dependency: Toxiproxy's server
// package brings zerolog, gorilla/mux and its own Prometheus collectors into
// go.mod, and the tests drive the faults in-process anyway. Faults are set
// for the whole proxy and apply to every open connection from the next
// chunk on.
//
// This package forwards bytes; it never parses a protocol.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Faults are the faults a proxy injects. The zero value forwards traffic
// untouched.
type Faults struct {
	// Latency delays every chunk of data, in each direction, by this much
	// plus a random part of Jitter.
	Latency time.Duration
	Jitter  time.Duration
	// BytesPerSecond limits each direction of each connection; 0 is no
	// limit.
	BytesPerSecond int64
	// Stall holds all data, in both directions, until Stall is cleared: a
	// network that accepts connections and then goes silent, so clients
	// run into their timeouts. New connections are accepted and stall too.
	Stall bool
	// Down is an outage: open connections are reset and new ones are
	// reset as soon as they are accepted, until Down is cleared.
	Down bool
}

// String describes the faults for logs, e.g. "latency=50ms bandwidth=64KiB/s".
func (f Faults) String() string {
	s := ""
	add := func(part string) {
		if s != "" {
			s += " "
		}
		s += part
	}
	if f.Down {
		add("down")
	}
	if f.Stall {
		add("stall")
	}
	if f.Latency > 0 || f.Jitter > 0 {
		add(fmt.Sprintf("latency=%s+%s", f.Latency, f.Jitter))
	}
	if f.BytesPerSecond > 0 {
		add(fmt.Sprintf("bandwidth=%dB/s", f.BytesPerSecond))
	}
	if s == "" {
		return "none"
	}
	return s
}

// Stats count what a proxy did.
type Stats struct {
	Accepted int64 // connections accepted
	Refused  int64 // connections reset at once because the proxy was down
	Reset    int64 // open connections reset by Down or ResetAll
	Bytes    int64 // bytes forwarded, both directions
}

// Proxy forwards the connections it accepts to one upstream address. All
// methods may be called concurrently.
type Proxy struct {
	name     string
	upstream string
	ln       net.Listener
	log      *slog.Logger
	dial     func(network, addr string) (net.Conn, error)

	mu     sync.Mutex
	faults Faults
	conns  map[*link]struct{}
	closed bool

	wg                              sync.WaitGroup
	accepted, refused, reset, bytes atomic.Int64
}

// link is one client connection and its upstream connection.
type link struct {
	client, server net.Conn
	once           sync.Once
	closed         atomic.Bool
}

// Listen starts a proxy named name (for logs) on addr (e.g. 127.0.0.1:0)
// that forwards to upstream.
func Listen(name, addr, upstream string, log *slog.Logger) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for proxy %s: %w", name, err)
	}
	p := &Proxy{name: name, upstream: upstream, ln: ln, log: log, conns: map[*link]struct{}{},
		dial: func(network, addr string) (net.Conn, error) { return net.DialTimeout(network, addr, 5*time.Second) }}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Upstream is the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.upstream }

// Faults returns the faults in force.
func (p *Proxy) Faults() Faults {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults
}

// Set replaces the faults in force. Setting Down resets every open
// connection.
func (p *Proxy) Set(f Faults) {
	p.mu.Lock()
	p.faults = f
	p.mu.Unlock()
	p.log.Info("fault proxy", "proxy", p.name, "faults", f.String())
	if f.Down {
		p.ResetAll()
	}
}

// ResetAll resets every open connection (a TCP RST to the client) and
// returns how many it reset.
func (p *Proxy) ResetAll() int {
	p.mu.Lock()
	links := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.close(true)
	}
	p.reset.Add(int64(len(links)))
	return len(links)
}

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	return Stats{Accepted: p.accepted.Load(), Refused: p.refused.Load(), Reset: p.reset.Load(), Bytes: p.bytes.Load()}
}

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.ResetAll()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Warn("fault proxy: accept", "proxy", p.name, "err", err)
			}
			return
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve connects c to the upstream and pipes both ways until either side
// closes or the link is reset.
func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	if p.Faults().Down {
		p.refused.Add(1)
		abort(c)
		return
	}
	s, err := p.dial("tcp", p.upstream)
	if err != nil {
		p.log.Debug("fault proxy: dial upstream", "proxy", p.name, "err", err)
		abort(c)
		return
	}
	l := &link{client: c, server: s}
	p.mu.Lock()
	if p.closed || p.faults.Down {
		p.mu.Unlock()
		l.close(true)
		return
	}
	p.conns[l] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(l, s, c) }()
	go func() { defer wg.Done(); p.pipe(l, c, s) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, l)
	p.mu.Unlock()
}

// pipe copies src to dst chunk by chunk, applying the faults in force to
// each chunk, until an error; then it closes the link.
func (p *Proxy) pipe(l *link, dst, src net.Conn) {
	defer l.close(false)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.delay(l, n) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			p.bytes.Add(int64(n))
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite() // half-close: the other direction may still carry data
					return
				}
			}
			return
		}
	}
}

// delay waits as the faults in force say before n bytes are forwarded. It
// returns false when the link should be dropped (down, or closed meanwhile).
func (p *Proxy) delay(l *link, n int) bool {
	for {
		f := p.Faults()
		if f.Down {
			return false
		}
		if !f.Stall {
			d := f.Latency
			if f.Jitter > 0 {
				d += rand.N(f.Jitter)
			}
			if f.BytesPerSecond > 0 {
				d += time.Duration(float64(n) / float64(f.BytesPerSecond) * float64(time.Second))
			}
			if d > 0 {
				time.Sleep(d)
			}
			return true
		}
		time.Sleep(50 * time.Millisecond)
		if l.isClosed() {
			return false
		}
	}
}

// close closes both ends once; with rst, the client's end with a TCP RST
// (linger 0) instead of a FIN.
func (l *link) close(rst bool) {
	l.once.Do(func() {
		l.closed.Store(true)
		if rst {
			abort(l.client)
			abort(l.server)
			return
		}
		_ = l.client.Close()
		_ = l.server.Close()
	})
}

func (l *link) isClosed() bool { return l.closed.Load() }

// abort closes c with a TCP RST.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
