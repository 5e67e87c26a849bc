package main

import (
	"log/slog"
	"strings"
	"testing"
)

// TestCrashSpecs: FLOE_CRASH names points and probabilities; a malformed
// pair or a point the command does not have fails at start-up, naming it.
func TestCrashSpecs(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	h, err := faultHooks(" after-flush:0, after-commit:0", log)
	if err != nil {
		t.Fatal(err)
	}
	if h.AfterFlush == nil || h.AfterCommit == nil || h.BeforeCommit != nil {
		t.Fatalf("hooks set: after-flush %v, before-commit %v, after-commit %v",
			h.AfterFlush != nil, h.BeforeCommit != nil, h.AfterCommit != nil)
	}
	h.AfterFlush("t") // probability 0: returns
	ch, err := compactFaultHooks("after-rewrite:0", log)
	if err != nil {
		t.Fatal(err)
	}
	if ch.AfterRewrite == nil || ch.BeforeCommit != nil || ch.AfterRewrite("t") != nil {
		t.Fatalf("compaction hooks: after-rewrite %v, before-commit %v", ch.AfterRewrite != nil, ch.BeforeCommit != nil)
	}
	if h, err := faultHooks("", log); err != nil || h.AfterFlush != nil || h.BeforeCommit != nil || h.AfterCommit != nil {
		t.Fatalf("empty spec: %+v, %v", h, err)
	}
	for spec, want := range map[string]string{
		"after-flush":       `"after-flush": want point:probability`,
		"after-flush:1.5":   `"after-flush:1.5": want point:probability`,
		"after-flush:x":     `want point:probability`,
		"after-rewrite:0.1": `unknown point "after-rewrite" (after-flush, before-commit, after-commit)`,
	} {
		if _, err := faultHooks(spec, log); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %s", spec, err, want)
		}
	}
	if _, err := compactFaultHooks("after-flush:0.1", log); err == nil || !strings.Contains(err.Error(), `unknown point "after-flush"`) {
		t.Errorf("compact with an ingest point: %v", err)
	}
}
