// Package gentest has helpers for tests that fill tables from the
// generator source (source/gen): create its tables, and run it to its end
// through a writer; and for tests that run any source under
// source.Supervise. It is for tests only.
package gentest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/source/gen"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// Ensure builds the generator cfg describes and creates its tables,
// failing the test on error.
func Ensure(t testing.TB, cat icecat.Catalog, cfg gen.Config) *gen.Generator {
	t.Helper()
	g, err := gen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := g.Specs(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if _, err := table.Ensure(context.Background(), cat, s); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

// Run runs the generator cfg describes to its end through a writer with
// wc (defaults applied) that logs to logger (nil: nowhere), then closes
// the writer; on a failed run it aborts the writer.
func Run(ctx context.Context, cat icecat.Catalog, cfg gen.Config, wc writer.Config, logger *slog.Logger) error {
	g, err := gen.New(cfg)
	if err != nil {
		return err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	wc.ApplyDefaults()
	w := writer.New(cat, wc, writer.Options{Logger: logger})
	if err := g.Run(ctx, w); err != nil {
		w.Abort()
		return err
	}
	return w.Close(ctx)
}

// Supervise creates the tables specs declare and runs src into cat under
// source.Supervise (a commit a second, quick restarts, logging to logger)
// until the test ends; the test fails if the run ends with an error.
func Supervise(t testing.TB, cat icecat.Catalog, src source.Source, specs []table.Spec, logger *slog.Logger) {
	t.Helper()
	for _, s := range specs {
		if _, err := table.Ensure(context.Background(), cat, s); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	wc := writer.Config{CommitInterval: time.Second}
	wc.ApplyDefaults()
	go func() {
		done <- source.Supervise(ctx, cat, []source.Source{src}, source.SuperviseOptions{
			Writer: wc, Logger: logger, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("supervise: %v", err)
		}
	})
}
