package main

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/floe-lake/floe/writer"
)

// faultHooks builds writer hooks that SIGKILL this process at named points
// of the write path with a probability, for crash tests:
//
//	FLOE_CRASH=after-flush:0.2,before-commit:0.2,after-commit:0.1
//
// Points: after-flush (files written, nothing committed), before-commit,
// after-commit. An empty spec gives no hooks.
func faultHooks(spec string, log *slog.Logger) (writer.Hooks, error) {
	var h writer.Hooks
	if spec == "" {
		return h, nil
	}
	for _, part := range strings.Split(spec, ",") {
		name, ps, ok := strings.Cut(strings.TrimSpace(part), ":")
		p, err := strconv.ParseFloat(ps, 64)
		if !ok || err != nil || p < 0 || p > 1 {
			return h, fmt.Errorf("FLOE_CRASH: %q: want point:probability", part)
		}
		kill := func(tbl string) {
			if rand.Float64() < p {
				log.Warn("crash injected", "point", name, "table", tbl)
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
		switch name {
		case "after-flush":
			h.AfterFlush = kill
		case "before-commit":
			h.BeforeCommit = kill
		case "after-commit":
			h.AfterCommit = kill
		default:
			return h, fmt.Errorf("FLOE_CRASH: unknown point %q (after-flush, before-commit, after-commit)", name)
		}
	}
	return h, nil
}
