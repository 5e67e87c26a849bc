// Package gentest has helpers for tests that fill tables from the
// generator source (source/gen): create its tables, and run it to its end
// through a writer. It is for tests only.
package gentest

import (
	"context"
	"log/slog"
	"testing"

	icecat "github.com/apache/iceberg-go/catalog"

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
