//go:build !unix

package mysql

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
