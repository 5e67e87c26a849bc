package main

import (
	"os"
	"strings"
	"testing"
)

// TestCompactFlags covers the flags and config rules checked before any
// table is touched.
func TestCompactFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		// compaction is the compaction: section; extra goes after it.
		compaction, extra string
		args              []string
		code              int
		want              string
	}{
		{name: "concurrency", args: []string{"-concurrency", "2", "-dry-run"}, want: "ods.clicks:"},
		{name: "bad concurrency", args: []string{"-concurrency", "-1", "-once"}, code: 2,
			want: "-concurrency: compaction.concurrency: -1 must be at least 1"},
		{name: "orphans within the writer's commit window", args: []string{"-once"}, code: 2,
			compaction: "  orphan-older-than: 2h\n", extra: "writer:\n  commit-interval: 1h\n  commit-timeout: 1h\n",
			want: "compaction.orphan-older-than: 2h0m0s must exceed writer.commit-interval + writer.commit-timeout (2h0m0s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newCompactEnv(t, tc.compaction)
			f, err := os.OpenFile(e.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(tc.extra); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := e.floe(append([]string{"compact", "-config", e.cfgPath}, tc.args...)...)
			if code != tc.code || !strings.Contains(out+errOut, tc.want) {
				t.Errorf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
}
