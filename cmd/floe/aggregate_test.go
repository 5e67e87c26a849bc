package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/floe-lake/floe/aggregate"
	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/gentest"
	"github.com/floe-lake/floe/source/gen"
	"github.com/floe-lake/floe/writer"
)

// aggregateTestConfig writes a config naming a fresh SQLite catalog that
// holds a small generator run, and returns its path and the catalog
// config.
func aggregateTestConfig(t *testing.T) (string, catalog.Config) {
	t.Helper()
	ctx := context.Background()
	cfgPath, cc, cat := sqliteConfig(t, "")
	gc := gen.DefaultConfig()
	gc.Partitions, gc.RowsPerPartition, gc.BadFraction = 1, 20_000, 0
	gentest.Ensure(t, cat, gc)
	if err := gentest.Run(ctx, cat, gc, writer.Config{CommitInterval: time.Hour, CommitRows: 5_000}, nil); err != nil {
		t.Fatal(err)
	}
	return cfgPath, cc
}

func TestAggregateCommand(t *testing.T) {
	cfgPath, cc := aggregateTestConfig(t)
	spec := filepath.Join("..", "..", "examples", "aggregate", "orders_city_5m.yaml")
	tests := []cmdCase{
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
		t.Run(tt.name, tt.check)
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
