//go:build unix

package reader_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time this process has used (user + system), which,
// unlike wall time, other processes on a shared machine do not inflate.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
