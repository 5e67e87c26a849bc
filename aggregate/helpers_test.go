package aggregate

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/internal/gentest"
	"github.com/floe-lake/floe/internal/readertest"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/source/gen"
	"github.com/floe-lake/floe/writer"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// exampleSpec loads a spec shipped in examples/aggregate.
func exampleSpec(t testing.TB, file string) Spec {
	t.Helper()
	s, err := LoadSpec(filepath.Join("..", "examples", "aggregate", file))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// genConfig is a small generator run: one partition of rows offsets,
// starting at 00:40 so that event time crosses hours, with 10 % of events
// up to 2 h late (into the previous day).
func genConfig(rows int64) gen.Config {
	c := gen.DefaultConfig()
	c.Seed = 11
	c.Partitions = 1
	c.RowsPerPartition = rows
	c.BatchRows = 4096
	c.LateFraction = 0.1
	c.BadFraction = 0
	c.StartTime = time.Date(2026, 3, 1, 0, 40, 0, 0, time.UTC)
	return c
}

// generated is a fresh catalog holding a run of the generator cfg
// describes (20,000 events), committed every 5,000 rows per table.
func generated(t testing.TB) (cat icecat.Catalog, cfg gen.Config) {
	t.Helper()
	cat = tabletest.OpenSQLite(t)
	cfg = genConfig(20_000)
	gentest.Ensure(t, cat, cfg)
	if err := generate(context.Background(), cat, cfg, 5_000); err != nil {
		t.Fatal(err)
	}
	return cat, cfg
}

// generate runs the generator to its end through a writer that commits
// every commitRows rows per table.
func generate(ctx context.Context, cat icecat.Catalog, cfg gen.Config, commitRows int64) error {
	return gentest.Run(ctx, cat, cfg, writer.Config{CommitInterval: time.Hour, CommitRows: commitRows}, quietLogger())
}

// tableRows reads every row of a table as strings, sorted: one string per
// row, every column (or cols).
func tableRows(t testing.TB, cat icecat.Catalog, name string, cols ...string) []string {
	t.Helper()
	var out []string
	eachRecord(t, cat, name, cols, func(rec arrow.RecordBatch) { out = append(out, recordRows(rec)...) })
	slices.Sort(out)
	return out
}

// eachRecord reads the current snapshot of a table, every column (or
// cols), and calls fn on each record batch, releasing it afterwards.
func eachRecord(t testing.TB, cat icecat.Catalog, name string, cols []string, fn func(arrow.RecordBatch)) {
	t.Helper()
	readertest.Each(t, cat, name, nil, reader.Config{Logger: quietLogger(), Columns: cols}, fn)
}

func recordRows(rec arrow.RecordBatch) []string {
	var out []string
	var b strings.Builder
	for i := range int(rec.NumRows()) {
		b.Reset()
		for c, col := range rec.Columns() {
			if c > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(rec.Schema().Field(c).Name)
			b.WriteByte('=')
			switch {
			case col.IsNull(i):
				b.WriteString("null")
			default:
				if bin, ok := col.(*array.Binary); ok {
					b.WriteString(hex.EncodeToString(bin.Value(i)))
				} else {
					b.WriteString(col.ValueStr(i))
				}
			}
		}
		out = append(out, b.String())
	}
	return out
}

// tableColumns reads named columns of every row: one map per row.
func tableColumns(t testing.TB, cat icecat.Catalog, name string, cols ...string) []map[string]any {
	t.Helper()
	var out []map[string]any
	eachRecord(t, cat, name, cols, func(rec arrow.RecordBatch) {
		for i := range int(rec.NumRows()) {
			m := map[string]any{}
			for c, col := range rec.Columns() {
				name := rec.Schema().Field(c).Name
				if col.IsNull(i) {
					m[name] = nil
					continue
				}
				switch a := col.(type) {
				case *array.Int64:
					m[name] = a.Value(i)
				case *array.Int32:
					m[name] = int64(a.Value(i))
				case *array.String:
					m[name] = a.Value(i)
				case *array.Timestamp:
					m[name] = int64(a.Value(i))
				default:
					m[name] = col.ValueStr(i)
				}
			}
			out = append(out, m)
		}
	})
	return out
}

// diffRows describes the first differences of two sorted row lists.
func diffRows(a, b []string) string {
	var out []string
	i, j := 0, 0
	for (i < len(a) || j < len(b)) && len(out) < 6 {
		switch {
		case j >= len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, "- "+a[i])
			i++
		case i >= len(a) || a[i] > b[j]:
			out = append(out, "+ "+b[j])
			j++
		default:
			i++
			j++
		}
	}
	return fmt.Sprintf("%d vs %d rows; first differences:\n%s", len(a), len(b), strings.Join(out, "\n"))
}

// withOutput is s writing to another table.
func withOutput(s Spec, out string) Spec {
	s.Output = out
	return s
}
