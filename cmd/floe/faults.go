package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/writer"
)

// crashPoints parses a FLOE_CRASH spec — point:probability pairs,
// comma-separated — into a function per named point that SIGKILLs this
// process with the point's probability. Every point must be in points.
func crashPoints(spec string, points []string, log *slog.Logger) (map[string]func(tbl string), error) {
	kills := map[string]func(string){}
	if spec == "" {
		return kills, nil
	}
	for _, part := range strings.Split(spec, ",") {
		name, ps, ok := strings.Cut(strings.TrimSpace(part), ":")
		p, err := strconv.ParseFloat(ps, 64)
		if !ok || err != nil || p < 0 || p > 1 {
			return nil, fmt.Errorf("FLOE_CRASH: %q: want point:probability", part)
		}
		if !slices.Contains(points, name) {
			return nil, fmt.Errorf("FLOE_CRASH: unknown point %q (%s)", name, strings.Join(points, ", "))
		}
		kills[name] = func(tbl string) {
			if rand.Float64() < p {
				log.Warn("crash injected", "point", name, "table", tbl)
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	return kills, nil
}

// faultHooks builds writer hooks that SIGKILL this process at named points
// of the write path with a probability, for crash tests:
//
//	FLOE_CRASH=after-flush:0.2,before-commit:0.2,after-commit:0.1
//
// Points: after-flush (files written, nothing committed), before-commit,
// after-commit. An empty spec gives no hooks.
func faultHooks(spec string, log *slog.Logger) (writer.Hooks, error) {
	kills, err := crashPoints(spec, []string{"after-flush", "before-commit", "after-commit"}, log)
	if err != nil {
		return writer.Hooks{}, err
	}
	return writer.Hooks{AfterFlush: kills["after-flush"], BeforeCommit: kills["before-commit"], AfterCommit: kills["after-commit"]}, nil
}

// openCatalogCrashing opens the catalog of the config at cfgPath and builds
// FLOE_CRASH's hooks (faultHooks) for output's commits: nil where unasked.
func openCatalogCrashing(ctx context.Context, cfgPath, output string, log *slog.Logger) (cat icecat.Catalog, before, after func(), err error) {
	cfg, err := loadConfig(cfgPath, catalogSection)
	if err != nil {
		return nil, nil, nil, err
	}
	if cat, err = openCatalog(ctx, cfg); err != nil {
		return nil, nil, nil, err
	}
	hooks, err := faultHooks(os.Getenv("FLOE_CRASH"), log)
	if err != nil {
		return nil, nil, nil, usageError{err}
	}
	if h := hooks.BeforeCommit; h != nil {
		before = func() { h(output) }
	}
	if h := hooks.AfterCommit; h != nil {
		after = func() { h(output) }
	}
	return cat, before, after, nil
}
