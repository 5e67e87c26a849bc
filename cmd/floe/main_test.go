package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCPUProfile: -cpuprofile writes a profile go tool pprof reads, and a
// path it cannot create fails at start-up with the flag's name.
func TestCPUProfile(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "cpu.pprof")
	var out, errOut bytes.Buffer
	if code := run([]string{"read", "-cpuprofile", prof, "-h"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, &errOut)
	}
	// -h ends before the run: nothing profiled, no file.
	if _, err := os.Stat(prof); err == nil {
		t.Fatalf("-h wrote a profile")
	}
	code := run([]string{"table", "-cpuprofile", prof, "-config", filepath.Join(dir, "missing.yaml"), "list"}, &out, &errOut)
	if code == 0 {
		t.Fatalf("table list with a missing config succeeded")
	}
	// A profile is a gzipped protocol buffer.
	b, err := os.ReadFile(prof)
	if err != nil {
		t.Fatal(err)
	}
	if zr, err := gzip.NewReader(bytes.NewReader(b)); err != nil {
		t.Fatalf("the profile is not gzipped: %v", err)
	} else if _, err := io.ReadAll(zr); err != nil {
		t.Fatalf("the profile does not decompress: %v", err)
	}

	errOut.Reset()
	if code := run([]string{"table", "-cpuprofile", filepath.Join(dir, "no", "such", "dir", "p"), "list"}, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "-cpuprofile") {
		t.Fatalf("exit %d, stderr %q: want 2 naming -cpuprofile", code, &errOut)
	}
}
