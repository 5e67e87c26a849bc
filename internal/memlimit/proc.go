package memlimit

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// FileResident returns the process's file-backed resident bytes (and
// shared memory's): the third field of /proc/self/statm, in pages. One
// read of a short file, about 10 µs.
func FileResident() (int64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, fmt.Errorf("read /proc/self/statm: %w", err)
	}
	return parseStatm(b, int64(os.Getpagesize()))
}

// parseStatm reads the shared pages of a statm line ("size resident
// shared text lib data dt") in bytes.
func parseStatm(b []byte, page int64) (int64, error) {
	f := bytes.Fields(b)
	if len(f) < 3 {
		return 0, fmt.Errorf("parse /proc/self/statm %q: want 7 fields", b)
	}
	n, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/self/statm %q: %w", b, err)
	}
	return n * page, nil
}
