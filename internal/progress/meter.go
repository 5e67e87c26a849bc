package progress

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/floe-lake/floe/internal/units"
)

// MeterOptions configure a Meter.
type MeterOptions struct {
	// Label names the work ("compact", "snapshot shop.orders").
	Label string
	// Terminal draws a bar in place on W (at most ten times a second);
	// otherwise Log gets a line every Interval. Set it from IsTerminal of
	// the stream W is.
	Terminal bool
	// W is the terminal; default: nothing drawn.
	W io.Writer
	// Log receives the periodic lines when not on a terminal; default:
	// none.
	Log *slog.Logger
	// TotalRows and TotalBytes are the work's size when known (0: unknown,
	// no ETA).
	TotalRows, TotalBytes int64
	// Interval between log lines; default 10s.
	Interval time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Meter reports the progress of one-shot work: rows and bytes done, the
// rate and, when the totals are known, the percentage and the ETA — as a
// bar redrawn in place on a terminal, or as a log line every Interval
// otherwise. Its methods are safe for concurrent use; a nil Meter does
// nothing.
type Meter struct {
	o     MeterOptions
	mu    sync.Mutex
	start time.Time
	last  time.Time
	rows  int64
	bytes int64
	drawn bool
}

// NewMeter starts a Meter.
func NewMeter(o MeterOptions) *Meter {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	now := o.Now()
	return &Meter{o: o, start: now, last: now}
}

// SetTotals sets the work's size once it is known.
func (m *Meter) SetTotals(rows, bytes int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.o.TotalRows, m.o.TotalBytes = rows, bytes
	m.mu.Unlock()
}

// Add records rows and bytes more done, and reports when it is time.
func (m *Meter) Add(rows, bytes int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows += rows
	m.bytes += bytes
	now := m.o.Now()
	every := m.o.Interval
	if m.o.Terminal {
		every = 100 * time.Millisecond
	}
	if now.Sub(m.last) >= every {
		m.last = now
		m.report(now, false)
	}
}

// Done reports the final state (and ends the terminal's line).
func (m *Meter) Done() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.report(m.o.Now(), true)
}

// report draws the bar or logs the line. m.mu held.
func (m *Meter) report(now time.Time, done bool) {
	elapsed := now.Sub(m.start)
	secs := elapsed.Seconds()
	rate, brate := 0.0, 0.0
	if secs > 0 {
		rate, brate = float64(m.rows)/secs, float64(m.bytes)/secs
	}
	frac, eta := -1.0, time.Duration(-1)
	switch {
	case m.o.TotalBytes > 0:
		frac = min(float64(m.bytes)/float64(m.o.TotalBytes), 1)
	case m.o.TotalRows > 0:
		frac = min(float64(m.rows)/float64(m.o.TotalRows), 1)
	}
	if frac > 0 && !done {
		eta = time.Duration(float64(elapsed) * (1 - frac) / frac).Round(time.Second)
	}
	if m.o.Terminal {
		if m.o.W == nil {
			return
		}
		var b strings.Builder
		b.WriteString("\r" + m.o.Label + " ")
		if frac >= 0 {
			const width = 24
			n := int(frac * width)
			fmt.Fprintf(&b, "[%s%s] %3.0f%% ", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100)
		}
		fmt.Fprintf(&b, "%d rows  %s  %.0f rows/s  %s/s  %s", m.rows, units.Bytes(m.bytes), rate, units.Bytes(int64(brate)), elapsed.Round(100*time.Millisecond))
		if eta >= 0 {
			fmt.Fprintf(&b, "  ETA %s", eta)
		}
		b.WriteString(" ")
		_, _ = io.WriteString(m.o.W, b.String())
		m.drawn = true
		if done {
			_, _ = io.WriteString(m.o.W, "\n")
		}
		return
	}
	if m.o.Log == nil || (done && !m.drawn && elapsed < m.o.Interval) {
		return // short work: no progress lines
	}
	m.drawn = true
	attrs := []any{"rows", m.rows, "bytes", m.bytes, "rows_per_s", int64(rate), "bytes_per_s", int64(brate), "elapsed", elapsed.Round(time.Second)}
	if frac >= 0 {
		attrs = append(attrs, "percent", int(frac*100))
	}
	if eta >= 0 {
		attrs = append(attrs, "eta", eta)
	}
	msg := m.o.Label + ": progress"
	if done {
		msg = m.o.Label + ": done"
	}
	m.o.Log.Info(msg, attrs...)
}
