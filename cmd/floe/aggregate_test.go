package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-lake/floe/aggregate"
	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/source/gen"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// aggregateTestConfig writes a config naming a fresh SQLite catalog that
// holds a small generator run, and returns its path and the catalog
// config.
func aggregateTestConfig(t *testing.T) (string, catalog.Config) {
	t.Helper()
	t.Setenv(catalog.EnvCatalogURI, "")
	ctx := context.Background()
	dir := t.TempDir()
	cc := catalog.Config{Type: catalog.TypeSQLite, Name: "test", URI: filepath.Join(dir, "cat.db"), Warehouse: filepath.Join(dir, "wh")}
	cat, err := catalog.Open(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	gc := gen.DefaultConfig()
	gc.Partitions, gc.RowsPerPartition, gc.BadFraction = 1, 20_000, 0
	g, err := gen.New(gc)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := g.Specs(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if _, err := table.Ensure(ctx, cat, s); err != nil {
			t.Fatal(err)
		}
	}
	wc := writer.Config{CommitInterval: time.Hour, CommitRows: 5_000}
	wc.ApplyDefaults()
	w := writer.New(cat, wc, writer.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := g.Run(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "floe.yaml")
	cfg := fmt.Sprintf("catalog:\n  type: sqlite\n  name: test\n  uri: %q\n  warehouse: %q\n", cc.URI, cc.Warehouse)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, cc
}

func TestAggregateCommand(t *testing.T) {
	cfgPath, cc := aggregateTestConfig(t)
	spec := filepath.Join("..", "..", "examples", "aggregate", "orders_city_5m.yaml")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
		wantErr  []string
	}{
		{name: "once", args: []string{"aggregate", "-config", cfgPath, "--spec", spec, "--once"},
			wantOut: []string{"orders_city_5m (once): ods.orders → ads.orders_city_5m at source snapshot"}},
		{name: "once again: caught up", args: []string{"aggregate", "-config", cfgPath, "--spec", spec, "--once"},
			wantOut: []string{"0 source rows, 0 groups written in 0 commits"}},
		{name: "backfill into another table", args: []string{"aggregate", "-config", cfgPath, "--spec", spec, "--backfill", "--output", "ads.orders_check"},
			wantOut: []string{"orders_city_5m (backfill): ods.orders → ads.orders_check", "in 1 commits"}},
		{name: "ranged backfill", args: []string{"aggregate", "-config", cfgPath, "--spec", spec, "--backfill", "--from", "2026-01-01", "--to", "2026-01-01T00:30:00Z"},
			wantOut: []string{"(backfill)"}},

		{name: "no spec", args: []string{"aggregate", "-config", cfgPath, "--once"}, wantCode: 2, wantErr: []string{"--spec: required"}},
		{name: "no mode", args: []string{"aggregate", "-config", cfgPath, "--spec", spec}, wantCode: 2, wantErr: []string{"want exactly one of --follow, --once and --backfill"}},
		{name: "two modes", args: []string{"aggregate", "-config", cfgPath, "--spec", spec, "--once", "--backfill"}, wantCode: 2, wantErr: []string{"exactly one"}},
		{name: "range without backfill", args: []string{"aggregate", "-config", cfgPath, "--spec", spec, "--once", "--from", "2026-01-01"}, wantCode: 2,
			wantErr: []string{"--from, --to and --snapshot go with --backfill"}},
		{name: "bad time", args: []string{"aggregate", "-config", cfgPath, "--spec", spec, "--backfill", "--from", "yesterday"}, wantCode: 2,
			wantErr: []string{`--from: "yesterday" is not an RFC 3339 time`}},
		{name: "missing spec file", args: []string{"aggregate", "-config", cfgPath, "--spec", "nope.yaml", "--once"}, wantCode: 2,
			wantErr: []string{"read aggregate spec"}},
		{name: "bad output", args: []string{"aggregate", "-config", cfgPath, "--spec", spec, "--once", "--output", "nodot"}, wantCode: 2,
			wantErr: []string{"output:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tt.args, &out, &errOut)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, &out, &errOut)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout does not mention %q:\n%s", w, &out)
				}
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr does not mention %q:\n%s", w, &errOut)
				}
			}
		})
	}

	// runAggregation, as the demo calls it: a backfill of another spec.
	t.Run("runAggregation", func(t *testing.T) {
		ctx := context.Background()
		cat, err := catalog.Open(ctx, cc)
		if err != nil {
			t.Fatal(err)
		}
		s, err := aggregate.LoadSpec(filepath.Join("..", "..", "examples", "aggregate", "page_traffic_hourly.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		e := &env{stdout: &out, stderr: io.Discard, log: slog.New(slog.DiscardHandler)}
		for _, mode := range []string{"backfill", "once"} {
			if err := runAggregation(ctx, e, cat, s, mode); err != nil {
				t.Fatalf("%s: %v", mode, err)
			}
		}
		if err := runAggregation(ctx, e, cat, s, "sideways"); err == nil {
			t.Fatal("unknown mode: no error")
		}
		if !strings.Contains(out.String(), "page_traffic_hourly (backfill)") || !strings.Contains(out.String(), "page_traffic_hourly (once)") {
			t.Fatalf("output:\n%s", &out)
		}
	})
}
