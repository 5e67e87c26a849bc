// Package progress reports the progress of one-shot work: Bar draws a
// one-line bar of rows read on a terminal (floe read), with the rate and
// the ETA; Meter reports rows and bytes done, the rate and the ETA as a bar
// on a terminal or as periodic log lines otherwise (floe compact -once, a
// MySQL source's initial snapshot). It only writes to the writer or logger
// it is given.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Bar draws the rows written out of a total, the files, the rate and the
// time elapsed, redrawn in place. A nil or disabled Bar draws nothing.
type Bar struct {
	w     io.Writer
	on    bool
	total int64
	files int
	now   func() time.Time
	start time.Time
	last  time.Time
	rows  int64
}

// New returns a bar of total rows in files data files, drawn on w when on
// and files > 0. now is the clock (nil: time.Now).
func New(w io.Writer, on bool, total int64, files int, now func() time.Time) *Bar {
	if now == nil {
		now = time.Now
	}
	return &Bar{w: w, on: on && files > 0, total: total, files: files, now: now, start: now()}
}

// Add records rows written so far, redrawing at most ten times a second.
func (b *Bar) Add(rows int64) {
	if b == nil || !b.on {
		return
	}
	b.rows = rows
	if now := b.now(); now.Sub(b.last) >= 100*time.Millisecond {
		b.last = now
		b.draw()
	}
}

func (b *Bar) draw() {
	const width = 30
	frac := 1.0
	if b.total > 0 {
		frac = min(float64(b.rows)/float64(b.total), 1)
	}
	n := int(frac * width)
	bar := strings.Repeat("#", n) + strings.Repeat(".", width-n)
	elapsed := b.now().Sub(b.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(b.rows) / elapsed
	}
	eta := ""
	if rate > 0 && b.rows < b.total {
		eta = fmt.Sprintf(" ETA %s", time.Duration(float64(b.total-b.rows)/rate*float64(time.Second)).Round(time.Second))
	}
	_, _ = fmt.Fprintf(b.w, "\r[%s] %3.0f%%  %d/%d rows  %d files  %.0f rows/s  %.1fs%s ", bar, frac*100, b.rows, b.total, b.files, rate, elapsed, eta)
}

// Done draws the final state and ends the line. When ok, the total becomes
// the rows written (a filter keeps fewer rows than the files hold).
func (b *Bar) Done(ok bool) {
	if b == nil || !b.on {
		return
	}
	if ok {
		b.total = b.rows
	}
	b.draw()
	_, _ = fmt.Fprintln(b.w)
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
