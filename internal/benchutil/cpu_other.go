//go:build !unix

package benchutil

import "time"

// ProcessCPU is not measured on this platform: it returns 0, false.
func ProcessCPU() (time.Duration, bool) { return 0, false }
