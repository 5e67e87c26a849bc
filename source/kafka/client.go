package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// connOpts are the options that connect to the brokers: seeds, client id,
// TLS and SASL. Secrets go into the mechanisms only, never into logs.
func connOpts(cfg *Config) ([]kgo.Opt, error) { return gatedConnOpts(cfg, nil) }

// gatedConnOpts are connOpts whose connections wait for gate, when it is
// set (authGate): a broker that refuses the client's credentials or
// certificate is dialled again only after a backoff.
func gatedConnOpts(cfg *Config, gate *authGate) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
	}
	var tc *tls.Config
	if cfg.TLS.on() {
		var err error
		if tc, err = tlsConfig(cfg.TLS); err != nil {
			return nil, err
		}
	}
	switch {
	case gate != nil:
		opts = append(opts, kgo.Dialer(gate.dialer(tc)))
	case tc != nil:
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := saslMechanism(cfg.SASL); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// authGate spaces out the client's connections while the brokers refuse
// its credentials or certificate. franz-go dials again for every request
// that needs a connection — a metadata refresh, the group's coordinator,
// the health probe — with no backoff of its own for a failed
// authentication: with a wrong SASL password it tried, and logged at
// ERROR, every 0.6 s. After a refusal every dial first waits out a
// backoff of 1 s, doubling with every refusal in a row, at most
// authBackoffMax; a connection that works (the health probe's answer)
// starts it over.
type authGate struct {
	now   func() time.Time
	after func(time.Duration) <-chan time.Time

	mu      sync.Mutex
	refusal int       // refusals in a row
	until   time.Time // dials wait until then
	reason  error     // of the last refusal
}

// authBackoffMax caps the wait between connections to brokers that refuse
// the client.
const authBackoffMax = 30 * time.Second

func newAuthGate(now func() time.Time) *authGate {
	return &authGate{now: now, after: time.After}
}

// authBackoff is the wait after the n-th refusal in a row (n ≥ 1).
func authBackoff(n int) time.Duration {
	return min(time.Second<<min(n-1, 16), authBackoffMax)
}

// refused notes that a broker refused the client, for reason.
func (g *authGate) refused(reason error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refusal++
	g.reason = reason
	g.until = g.now().Add(authBackoff(g.refusal))
}

// ok notes that a broker accepted the client; it reports whether that
// ends a run of refusals.
func (g *authGate) ok() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	was := g.refusal > 0
	g.refusal, g.until, g.reason = 0, time.Time{}, nil
	return was
}

// wait returns once no backoff is in force, or with ctx's error and the
// reason of the backoff (what a health probe cut short reports).
func (g *authGate) wait(ctx context.Context) error {
	g.mu.Lock()
	d, reason := g.until.Sub(g.now()), g.reason
	g.mu.Unlock()
	if d <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		// No changing figures in the message: franz-go logs it at every
		// dial, and kgoLogger folds repeats of the same message.
		return fmt.Errorf("backing off after the broker refused the client (%w): %w", reason, ctx.Err())
	case <-g.after(d):
		return nil
	}
}

// dialer dials as franz-go does (TLS with tc when it is set), after the
// gate; a certificate the client refuses counts as a refusal.
func (g *authGate) dialer(tc *tls.Config) func(ctx context.Context, network, host string) (net.Conn, error) {
	nd := &net.Dialer{Timeout: 10 * time.Second}
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		if err := g.wait(ctx); err != nil {
			return nil, err
		}
		if tc == nil {
			return nd.DialContext(ctx, network, host)
		}
		c := tc.Clone()
		if c.ServerName == "" {
			server, _, err := net.SplitHostPort(host)
			if err != nil {
				return nil, fmt.Errorf("split host:port %q for dialing: %w", host, err)
			}
			c.ServerName = server
		}
		conn, err := (&tls.Dialer{NetDialer: nd, Config: c}).DialContext(ctx, network, host)
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			g.refused(err)
		}
		return conn, err
	}
}

func tlsConfig(c TLSConfig) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // an explicit, documented test-only setting
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read kafka.tls.ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read kafka.tls.ca-file %s: no PEM certificates in it", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load kafka.tls.cert-file and key-file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func saslMechanism(c SASLConfig) sasl.Mechanism {
	user, pass := c.Username, string(c.Password)
	switch strings.ToUpper(c.Mechanism) {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	return nil
}

// kgoLogger routes franz-go's logs to slog, one level down: its info
// (every request, every assignment) is Floe's debug. franz-go logs a
// failure at every attempt — a refused SASL login at ERROR at every
// connection, a broker that does not answer at WARN at every dial — so a
// warning or error is logged at its level once, with its reason, and its
// repeats (same message, broker and error) at DEBUG, until the brokers
// accept the client again (recovered): once per change of state. A SASL
// refusal also closes the gate (authGate), when there is one.
type kgoLogger struct {
	log  *slog.Logger
	gate *authGate

	mu   sync.Mutex
	seen map[string]int // warnings and errors logged, with their repeats
}

func newKgoLogger(log *slog.Logger, gate *authGate) *kgoLogger {
	return &kgoLogger{log: log, gate: gate, seen: map[string]int{}}
}

// kgoSASLFailed is franz-go's message for a failed SASL login.
const kgoSASLFailed = "unable to initialize sasl"

func (l *kgoLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case l.log.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelInfo
	case l.log.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	}
	return kgo.LogLevelError
}

func (l *kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lvl = slog.LevelError
	case kgo.LogLevelWarn:
		lvl = slog.LevelWarn
	}
	if lvl >= slog.LevelWarn {
		if msg == kgoSASLFailed && l.gate != nil {
			l.gate.refused(kgoErr(keyvals))
		}
		key := fmt.Sprint(level, msg, keyvals)
		l.mu.Lock()
		n := l.seen[key]
		if n == 0 && len(l.seen) >= 256 { // bounded: varying errors are logged as they come
			clear(l.seen)
		}
		l.seen[key] = n + 1
		l.mu.Unlock()
		if n > 0 {
			lvl = slog.LevelDebug
			keyvals = append(keyvals, "repeat", n)
		} else {
			keyvals = append(keyvals, "repeats", "logged at DEBUG until the brokers accept the client")
		}
	}
	l.log.Log(context.Background(), lvl, "kafka client: "+msg, keyvals...)
}

// kgoErr is the value of franz-go's "err" key in keyvals.
func kgoErr(keyvals []any) error {
	for i := 0; i+1 < len(keyvals); i += 2 {
		if k, _ := keyvals[i].(string); k == "err" {
			if err, ok := keyvals[i+1].(error); ok {
				return err
			}
			return fmt.Errorf("%v", keyvals[i+1])
		}
	}
	return errors.New(kgoSASLFailed)
}

// recovered ends the state of the warnings and errors logged: the brokers
// answer the client. It returns how many repeats were logged at DEBUG.
func (l *kgoLogger) recovered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.seen {
		n += c - 1
	}
	clear(l.seen)
	return n
}

// Partition assignment strategies (partition-assignment-strategy), by
// their Java names.
const (
	StrategyCooperativeSticky = "cooperative-sticky"
	StrategySticky            = "sticky"
	StrategyRange             = "range"
	StrategyRoundRobin        = "roundrobin"
)

// strategyBalancer is franz-go's balancer for a strategy, or nil.
func strategyBalancer(name string) kgo.GroupBalancer {
	switch name {
	case StrategyCooperativeSticky:
		return kgo.CooperativeStickyBalancer()
	case StrategySticky:
		return kgo.StickyBalancer()
	case StrategyRange:
		return kgo.RangeBalancer()
	case StrategyRoundRobin:
		return kgo.RoundRobinBalancer()
	}
	return nil
}

// groupOpts are the membership options of the group client: balancer,
// session and rebalance timeouts, heartbeats and the static instance id.
func groupOpts(c *Config) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.ConsumerGroup(c.Group),
		kgo.Balancers(strategyBalancer(c.PartitionAssignmentStrategy)),
		kgo.SessionTimeout(c.SessionTimeout),
		kgo.RebalanceTimeout(c.RebalanceTimeout),
		kgo.HeartbeatInterval(c.HeartbeatInterval),
	}
	if c.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.InstanceID))
	}
	return opts
}

// validInstanceID reports whether id is a legal group.instance.id (Kafka's
// rule for group instance ids), or empty.
func validInstanceID(id string) bool {
	if len(id) > 249 || id == "." || id == ".." {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// recovered ends a run of refusals and repeated client errors once a
// broker answered the health probe.
func (s *Source) recovered() {
	refused := s.gate != nil && s.gate.ok()
	s.mu.Lock()
	klog := s.klog
	s.mu.Unlock()
	repeats := 0
	if klog != nil {
		repeats = klog.recovered()
	}
	if refused || repeats > 0 {
		s.log.Info("kafka brokers accept the client again", "brokers", s.cfg.Brokers, "repeats_logged_at_debug", repeats)
	}
}
