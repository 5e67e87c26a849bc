// Package demo runs floe demo on a local lake: the synthetic clickstream
// generator into Iceberg tables with the commits printed as they land, a
// compaction pass with the files per partition before and after, a read
// back of the events, and an aggregation streamed while ingest runs next to
// the same spec backfilled, checked to agree. The caller builds the catalog
// and the sources from the config WriteConfig writes; the demo prints to
// Config.Out and touches nothing outside Config.Dir.
package demo

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/ingest"
	"github.com/floe-lake/floe/internal/units"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

//go:embed demo.yaml
var demoConfig []byte

// WriteConfig removes dir, creates it again and writes the demo's
// floe.yaml into it (its paths under dir); it returns the file's path.
func WriteConfig(dir string) (string, error) {
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("remove old demo: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	cfgPath := filepath.Join(dir, "floe.yaml")
	// The embedded config names ./demo-lake; keep it valid for another dir.
	cfgText := []byte(strings.ReplaceAll(string(demoConfig), "demo-lake", dir))
	if err := os.WriteFile(cfgPath, cfgText, 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", cfgPath, err)
	}
	return cfgPath, nil
}

// Config is one run of the demo: the sections of the config WriteConfig
// wrote, as the caller loaded them, and where the demo prints.
type Config struct {
	// Dir and ConfigPath are WriteConfig's directory and file.
	Dir, ConfigPath string
	Catalog         catalog.Config
	Writer          writer.Config
	Compaction      compaction.Config
	// Duration is how long the generator runs.
	Duration time.Duration
	// Out receives the demo's report; Logger its logs.
	Out    io.Writer
	Logger *slog.Logger
}

// Run runs the demo's steps on cat, whose tables the caller has created,
// with the configured ingest pipeline p.
func Run(ctx context.Context, cat icecat.Catalog, p *ingest.Pipeline, cfg Config) error {
	out, duration := cfg.Out, cfg.Duration
	fmt.Fprintf(out, "== 1. ingest: generator → Iceberg for %s, a snapshot every %s ==\n", duration, cfg.Writer.CommitInterval)
	fmt.Fprintf(out, "   catalog %s, warehouse %s\n\n", cfg.Catalog.URI, cfg.Catalog.Warehouse)
	// Rows are printed as commits land, so widths are fixed, not tabwriter's.
	const row = "   %-18s %20v %8v %6v %10v %7v\n"
	fmt.Fprintf(out, row, "table", "snapshot", "rows", "files", "bytes", "commit")
	var total int64
	onCommit := func(ci writer.CommitInfo) {
		total += ci.Rows
		fmt.Fprintf(out, row, ci.Table, ci.SnapshotID, ci.Rows, ci.Files, units.Bytes(ci.Bytes), ci.Duration.Round(time.Millisecond))
	}
	aggSpec, stopAgg, err := streaming(ctx, cfg.Logger, cat)
	if err != nil {
		return err
	}
	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, duration)
	err = p.Run(runCtx, cat, ingest.RunOptions{OnCommit: onCommit})
	cancel()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n   %d rows committed in %s\n\n", total, time.Since(start).Round(time.Second))
	if err := stopAgg(); err != nil {
		return err
	}

	if err := compact(ctx, out, cfg.Logger, cat, cfg.Compaction); err != nil {
		return err
	}

	if err := printEventSummary(ctx, out, cat); err != nil {
		return err
	}
	if err := compare(ctx, out, cfg.Logger, cat, aggSpec); err != nil {
		return err
	}

	abs, _ := filepath.Abs(cfg.Dir)
	fmt.Fprintf(out, `
== what to look at now ==
   go run ./cmd/floe table -config %[1]s list
   go run ./cmd/floe table -config %[1]s snapshots ods.events
   go run ./cmd/floe table -config %[1]s files ods.events
   go run ./cmd/floe read  -config %[1]s dws.pv_uv_hourly
   go run ./cmd/floe read  -config %[1]s -where "event_type = 'pay'" -columns event_id,city,amount ods.events
   PyIceberg:  from pyiceberg.catalog.sql import SqlCatalog
               cat = SqlCatalog("floe", uri="sqlite:///%[2]s/catalog.db", warehouse="file://%[2]s/warehouse")
               cat.load_table("ods.events").scan().to_arrow()
`, cfg.ConfigPath, abs)
	return nil
}

// compact compacts the demo's tables once and shows the data files per
// partition before and after.
func compact(ctx context.Context, out io.Writer, log *slog.Logger, cat icecat.Catalog, ccfg compaction.Config) error {
	tables := []string{"ods.events", "ods.orders"}
	fmt.Fprintln(out, "== 2. compact: rewrite the small files of every commit into target-size files ==")
	before := map[string]map[string]int{}
	for _, name := range tables {
		fp, err := filesPerPartition(ctx, cat, name)
		if err != nil {
			return err
		}
		before[name] = fp
	}
	ccfg.Tables = tables
	c, err := compaction.New(cat, ccfg, compaction.Options{Logger: log})
	if err != nil {
		return err
	}
	report, err := c.RunOnce(ctx)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	const row = "   %-12s %-24s %14v %13v\n"
	fmt.Fprintf(out, row, "table", "partition", "files before", "files after")
	for _, name := range tables {
		after, err := filesPerPartition(ctx, cat, name)
		if err != nil {
			return err
		}
		parts := make([]string, 0, len(before[name]))
		for p := range before[name] {
			parts = append(parts, p)
		}
		sort.Strings(parts)
		for _, p := range parts {
			fmt.Fprintf(out, row, name, p, before[name][p], after[p])
		}
	}
	for _, t := range report.Tables {
		fmt.Fprintf(out, "   %s: %d files (%s) rewritten into %d, %d conflicts retried, in %s\n",
			t.Table, t.FilesRewritten, units.Bytes(t.BytesRewritten), t.FilesWritten, t.Conflicts, t.Duration.Round(time.Millisecond))
	}
	fmt.Fprintln(out)
	return nil
}

// loadTable loads the table name ("namespace.table").
func loadTable(ctx context.Context, cat icecat.Catalog, name string) (*icetable.Table, error) {
	ident, err := table.ParseIdent(name)
	if err != nil {
		return nil, err
	}
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	return tbl, nil
}

// filesPerPartition counts the live data files of each partition.
func filesPerPartition(ctx context.Context, cat icecat.Catalog, name string) (map[string]int, error) {
	tbl, err := loadTable(ctx, cat, name)
	if err != nil {
		return nil, err
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", name, err)
	}
	spec := tbl.Spec()
	out := map[string]int{}
	for _, t := range tasks {
		var parts []string
		for i := 0; i < spec.NumFields(); i++ {
			f := spec.Field(i)
			parts = append(parts, fmt.Sprintf("%s=%v", f.Name, partitionValue(f, t.File.Partition()[f.FieldID])))
		}
		out[strings.Join(parts, "/")]++
	}
	return out, nil
}

// partitionValue renders a day/hour transform's value as a date or hour.
func partitionValue(f iceberg.PartitionField, v any) string {
	var n int64
	switch x := v.(type) {
	case int32:
		n = int64(x)
	case iceberg.Date:
		n = int64(x)
	default:
		return fmt.Sprint(v)
	}
	switch f.Transform.(type) {
	case iceberg.DayTransform:
		return time.Unix(int64(n)*86400, 0).UTC().Format("2006-01-02")
	case iceberg.HourTransform:
		return time.Unix(int64(n)*3600, 0).UTC().Format("2006-01-02T15")
	}
	return fmt.Sprint(n)
}

// printEventSummary reads ods.events back and prints PV and GMV per event type.
func printEventSummary(ctx context.Context, out io.Writer, cat icecat.Catalog) error {
	ident, err := table.ParseIdent("ods.events")
	if err != nil {
		return err
	}
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return fmt.Errorf("load ods.events: %w", err)
	}
	scan := tbl.Scan(icetable.WithSelectedFields("event_type", "amount"))
	_, recs, err := scan.ToArrowRecords(ctx)
	if err != nil {
		return fmt.Errorf("scan ods.events: %w", err)
	}
	type agg struct {
		pv  int64
		gmv decimal128.Num
	}
	byType := map[string]*agg{}
	var scale int32
	for rec, err := range recs {
		if err != nil {
			return fmt.Errorf("scan ods.events: %w", err)
		}
		et := rec.Column(int(rec.Schema().FieldIndices("event_type")[0])).(*array.String)
		am := rec.Column(int(rec.Schema().FieldIndices("amount")[0])).(*array.Decimal128)
		scale = am.DataType().(*arrow.Decimal128Type).Scale
		for i := 0; i < int(rec.NumRows()); i++ {
			a := byType[et.Value(i)]
			if a == nil {
				a = &agg{}
				byType[et.Value(i)] = a
			}
			a.pv++
			if am.IsValid(i) {
				a.gmv = a.gmv.Add(am.Value(i))
			}
		}
		rec.Release()
	}
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return byType[types[i]].pv > byType[types[j]].pv })
	fmt.Fprintln(out, "== 3. read back from ods.events: PV and GMV per event type ==")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "event_type\tPV\tGMV\t")
	var pv int64
	for _, t := range types {
		a := byType[t]
		pv += a.pv
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", t, a.pv, a.gmv.ToString(scale))
	}
	fmt.Fprintf(tw, "total\t%d\t\t\n", pv)
	fmt.Fprintln(tw)
	return tw.Flush()
}
