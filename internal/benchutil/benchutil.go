// Package benchutil measures what Floe's benchmarks report besides wall
// time: CPU time of the process (user+system, so work on every core
// counts) and peak resident memory (read from /proc: Linux only). For
// benchmarks, not tests.
package benchutil

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CPUTime is the process's user+system CPU time so far (0 where it cannot
// be read).
func CPUTime() time.Duration {
	d, _ := ProcessCPU()
	return d
}

// ResetPeakRSS resets the kernel's high-water mark of resident memory
// (VmHWM) for this process, so PeakRSS measures from now.
func ResetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// PeakRSS is the process's peak resident memory in bytes since start or
// the last ResetPeakRSS.
func PeakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Meter reports rows per CPU-second, rows per wall-second and peak RSS of
// the work between Start and Stop.
type Meter struct {
	cpu  time.Duration
	wall time.Time
}

// Start begins measuring; call it after setup, with the timer reset.
func Start(b *testing.B) *Meter {
	b.Helper()
	ResetPeakRSS()
	b.ResetTimer()
	return &Meter{cpu: CPUTime(), wall: time.Now()}
}

// Stop reports rows/cpu-s, rows/s and peak-RSS-MiB for rows processed.
func (m *Meter) Stop(b *testing.B, rows int64) {
	b.Helper()
	b.StopTimer()
	cpu := CPUTime() - m.cpu
	wall := time.Since(m.wall)
	if cpu > 0 {
		b.ReportMetric(float64(rows)/cpu.Seconds(), "rows/cpu-s")
	}
	if wall > 0 {
		b.ReportMetric(float64(rows)/wall.Seconds(), "rows/s")
	}
	b.ReportMetric(float64(PeakRSS())/(1<<20), "peak-rss-MiB")
}
