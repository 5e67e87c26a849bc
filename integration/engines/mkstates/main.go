// Command mkstates writes the table states of Floe's engines matrix into a
// catalog with Floe's own packages (catalog.Open, table.Ensure, the writer,
// the compactor, table.Committer) and dumps Floe's view of each table — an
// iceberg-go scan — as canonical JSON lines, for external engines
// (integration/engines/read.py) to be compared against. It also dumps
// Floe's view of tables other engines wrote (the other direction).
//
//	mkstates write -catalog-type sqlite -catalog-uri DIR/catalog.db -warehouse DIR/wh -ns e2e -out OUT
//	mkstates dump  -catalog-type sqlite -catalog-uri DIR/catalog.db -warehouse DIR/wh -out OUT ns.t1 ns.t2
//
// write creates namespace -ns and one table per state in it, and writes
// OUT/manifest.json (the tables, their states and the filters engines
// also run) and OUT/<table>.jsonl (Floe's rows) and
// OUT/<table>.filter.jsonl (the rows the filter selects, computed from the
// rows, not by iceberg-go's pruning). dump writes OUT/<table>.jsonl for the
// tables named. S3 settings come from FLOE_S3_* as for floe itself.
//
// The canonical form, shared with integration/engines/canon.py: one JSON
// object per row, keyed by column name; null as null; booleans; integers as
// numbers; floats as numbers; decimals as strings with exactly the column's
// scale; strings; binary and fixed as lower-case hex; uuid as
// 8-4-4-4-12 lower-case; date "2006-01-02"; time "15:04:05.000000";
// timestamp "2006-01-02T15:04:05.000000"; timestamptz the same in UTC with
// a trailing "Z"; structs as objects; lists as arrays; maps as arrays of
// [key, value] pairs sorted by the key's JSON.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	var cc catalog.Config
	fs.StringVar(&cc.Type, "catalog-type", "sqlite", "sqlite, postgres or rest")
	fs.StringVar(&cc.Name, "catalog-name", "floe", "catalog name")
	fs.StringVar(&cc.URI, "catalog-uri", "", "SQLite file, PostgreSQL DSN or REST URL")
	fs.StringVar(&cc.Warehouse, "warehouse", "", "local path, file:///abs or s3://bucket/prefix")
	ns := fs.String("ns", "e2e", "namespace of the state tables (write)")
	out := fs.String("out", "", "output directory")
	only := fs.String("only", "", "comma-separated states to write (default: all)")
	_ = fs.Parse(args)
	if *out == "" {
		usage()
	}
	cc.ApplyDefaults()
	if err := cc.Validate(); err != nil {
		fatal(err)
	}
	ctx := context.Background()
	cat, err := catalog.Open(ctx, cc)
	if err != nil {
		fatal(err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fatal(err)
	}
	switch cmd {
	case "write":
		var sel []string
		if *only != "" {
			sel = strings.Split(*only, ",")
		}
		err = writeStates(ctx, cat, *ns, *out, sel)
	case "dump":
		for _, name := range fs.Args() {
			if _, err = dumpTable(ctx, cat, name, *out, nil); err != nil {
				break
			}
		}
	default:
		usage()
	}
	if err != nil {
		fatal(err)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mkstates write|dump -catalog-type T -catalog-uri U -warehouse W [-ns NS] -out DIR [tables...]")
	os.Exit(2)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mkstates:", err)
	os.Exit(1)
}

// Filter is a predicate engines also run against a table: column = value,
// or lo <= column < hi. Values are in the canonical form.
type Filter struct {
	Column string `json:"column"`
	Op     string `json:"op"` // "eq" or "range"
	Value  any    `json:"value,omitempty"`
	Lo     string `json:"lo,omitempty"`
	Hi     string `json:"hi,omitempty"`
}

// TableEntry is one table of manifest.json.
type TableEntry struct {
	Table string `json:"table"`
	State string `json:"state"`
	// Type is the Iceberg type of each top-level column, for the record.
	Rows   int     `json:"rows"`
	Filter *Filter `json:"filter,omitempty"`
	// Notes say what the state holds (snapshots, delete files).
	Notes string `json:"notes"`
}

type state struct {
	name   string
	filter *Filter
	build  func(ctx context.Context, b *builder, name string) (notes string, err error)
}

func states() []state {
	return []state{
		{name: "appends", build: buildAppends},
		{name: "part_day", build: buildPartitioned("day"),
			filter: &Filter{Column: "ts", Op: "range", Lo: "2026-01-02T00:00:00.000000Z", Hi: "2026-01-03T00:00:00.000000Z"}},
		{name: "part_hour", build: buildPartitioned("hour"),
			filter: &Filter{Column: "ts", Op: "range", Lo: "2026-01-01T05:00:00.000000Z", Hi: "2026-01-01T06:00:00.000000Z"}},
		{name: "part_bucket", build: buildPartitioned("bucket"),
			filter: &Filter{Column: "id", Op: "eq", Value: 17}},
		{name: "part_bucket_str", build: buildPartitioned("bucket_str"),
			filter: &Filter{Column: "name", Op: "eq", Value: "user-13"}},
		{name: "part_truncate", build: buildPartitioned("truncate"),
			filter: &Filter{Column: "name", Op: "eq", Value: "user-27"}},
		{name: "part_truncate_long", build: buildPartitioned("truncate_long"),
			filter: &Filter{Column: "id", Op: "eq", Value: 42}},
		{name: "compacted", build: buildCompacted(false)},
		{name: "expired", build: buildCompacted(true)},
		{name: "cdc_equality", build: buildCDCEquality},
		{name: "cdc_position", build: buildCDCPosition},
		{name: "evolved", build: buildEvolved},
		{name: "nested", build: buildNested},
		{name: "decimals", build: buildDecimals},
		{name: "timestamps", build: buildTimestamps},
		{name: "time_of_day", build: buildTimeOfDay},
		{name: "uuids", build: buildUUIDs},
	}
}

// builder holds what the states are built with.
type builder struct {
	cat icecat.Catalog
	ns  string
	w   *writer.Writer
	pos int64
}

func writeStates(ctx context.Context, cat icecat.Catalog, ns, out string, only []string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w := writer.New(cat, writer.Config{CommitInterval: time.Hour, WriterID: "mkstates"}, writer.Options{Logger: log})
	defer w.Abort()
	b := &builder{cat: cat, ns: ns, w: w}
	var entries []TableEntry
	for _, s := range states() {
		if len(only) > 0 && !slices.Contains(only, s.name) {
			continue
		}
		name := ns + "." + s.name
		start := time.Now()
		notes, err := s.build(ctx, b, name)
		if err != nil {
			return fmt.Errorf("state %s: %w", s.name, err)
		}
		rows, err := dumpTable(ctx, cat, name, out, s.filter)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "mkstates: %-32s %4d rows  %s  (%s)\n", name, rows, notes, time.Since(start).Round(time.Millisecond))
		entries = append(entries, TableEntry{Table: name, State: s.name, Rows: rows, Filter: s.filter, Notes: notes})
	}
	if err := w.Close(ctx); err != nil {
		return err
	}
	data, err := json.MarshalIndent(map[string]any{"namespace": ns, "tables": entries}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "manifest.json"), data, 0o644)
}

// ---- building blocks -------------------------------------------------------

// ensure creates the table from its spec.
func (b *builder) ensure(ctx context.Context, s table.Spec) (*icetable.Table, error) {
	return table.Ensure(ctx, b.cat, s)
}

// appendJSON writes rows (a JSON array of objects in Arrow's JSON form for
// the table's schema) through Floe's writer and commits them as one
// snapshot.
func (b *builder) appendJSON(ctx context.Context, name, rows string) error {
	_, sc, err := b.w.Open(name, "mkstates")
	if err != nil {
		return err
	}
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, sc, strings.NewReader(rows))
	if err != nil {
		return fmt.Errorf("rows for %s: %w", name, err)
	}
	b.pos += rec.NumRows()
	if err := b.w.Write(writer.Batch{Table: name, Source: "mkstates", Record: rec, Next: table.Positions{"p0": b.pos}}); err != nil {
		return err
	}
	return b.w.Commit(ctx)
}

// reopen makes the writer pick up a changed schema: a fresh writer.
func (b *builder) reopen(ctx context.Context) error {
	if err := b.w.Close(ctx); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b.w = writer.New(b.cat, writer.Config{CommitInterval: time.Hour, WriterID: "mkstates"}, writer.Options{Logger: log})
	return nil
}

// jsonRows renders n rows with f as a JSON array.
func jsonRows(from, to int, f func(i int) string) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := from; i < to; i++ {
		if i > from {
			sb.WriteByte(',')
		}
		sb.WriteString(f(i))
	}
	sb.WriteByte(']')
	return sb.String()
}

func q(s string) string { b, _ := json.Marshal(s); return string(b) }

// nullOr returns JSON null when i%every == 0, else v.
func nullOr(i, every int, v string) string {
	if every > 0 && i%every == 0 {
		return "null"
	}
	return v
}

func load(ctx context.Context, cat icecat.Catalog, name string) (*icetable.Table, error) {
	ident, err := table.ParseIdent(name)
	if err != nil {
		return nil, err
	}
	return cat.LoadTable(ctx, ident)
}

// ---- the states ------------------------------------------------------------

func buildAppends(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "name", Type: "string"},
		{Name: "n", Type: "int"},
		{Name: "score", Type: "double"},
		{Name: "ratio", Type: "float"},
		{Name: "ok", Type: "boolean"},
	}})
	if err != nil {
		return "", err
	}
	for c := 0; c < 3; c++ {
		rows := jsonRows(c*40, c*40+40, func(i int) string {
			return fmt.Sprintf(`{"id":%d,"name":%s,"n":%s,"score":%s,"ratio":%s,"ok":%s}`, i,
				nullOr(i, 7, q(fmt.Sprintf("row %d — ü", i))), nullOr(i, 5, strconv.Itoa(i*3-50)),
				nullOr(i, 11, strconv.FormatFloat(float64(i)*1.25-3.5, 'g', -1, 64)),
				nullOr(i, 13, strconv.FormatFloat(float64(i)/3, 'g', -1, 64)),
				nullOr(i, 6, strconv.FormatBool(i%2 == 0)))
		})
		if err := b.appendJSON(ctx, name, rows); err != nil {
			return "", err
		}
	}
	return "3 append snapshots, unpartitioned", nil
}

func buildPartitioned(kind string) func(context.Context, *builder, string) (string, error) {
	return func(ctx context.Context, b *builder, name string) (string, error) {
		var part table.PartitionField
		switch kind {
		case "day":
			part = table.PartitionField{Column: "ts", Transform: "day"}
		case "hour":
			part = table.PartitionField{Column: "ts", Transform: "hour"}
		case "bucket":
			part = table.PartitionField{Column: "id", Transform: "bucket[8]"}
		case "bucket_str":
			part = table.PartitionField{Column: "name", Transform: "bucket[4]"}
		case "truncate":
			part = table.PartitionField{Column: "name", Transform: "truncate[6]"}
		case "truncate_long":
			part = table.PartitionField{Column: "id", Transform: "truncate[10]"}
		}
		_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "name", Type: "string"},
			{Name: "v", Type: "decimal(10,2)"},
		}, Partition: []table.PartitionField{part}})
		if err != nil {
			return "", err
		}
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for c := 0; c < 2; c++ {
			rows := jsonRows(c*60, c*60+60, func(i int) string {
				// 120 rows over 4 days, and over 24 hours of the first day.
				var ts time.Time
				if kind == "hour" {
					ts = base.Add(time.Duration(i%24)*time.Hour + time.Duration(i)*time.Second + 123456*time.Microsecond)
				} else {
					ts = base.Add(time.Duration(i%4)*24*time.Hour + time.Duration(i)*time.Minute + 654321*time.Microsecond)
				}
				name := nullOr(i, 17, q(fmt.Sprintf("user-%d", i%30)))
				return fmt.Sprintf(`{"id":%d,"ts":%q,"name":%s,"v":%s}`, i, ts.Format("2006-01-02T15:04:05.000000Z"),
					name, nullOr(i, 9, q(fmt.Sprintf("%d.%02d", i*7-100, i%100))))
			})
			if err := b.appendJSON(ctx, name, rows); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("2 appends, partitioned by %s(%s)", part.Transform, part.Column), nil
	}
}

// buildCompacted writes five small appends over two days and runs Floe's
// compactor (rewrite only) on the table; with expire, it then expires every
// snapshot but the current one, which deletes the files only they held.
func buildCompacted(expire bool) func(context.Context, *builder, string) (string, error) {
	return func(ctx context.Context, b *builder, name string) (string, error) {
		props := map[string]string{}
		if expire {
			props["history.expire.max-snapshot-age-ms"] = "1"
			props["history.expire.min-snapshots-to-keep"] = "1"
		}
		_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "name", Type: "string"},
		}, Partition: []table.PartitionField{{Column: "ts", Transform: "day"}}, Properties: props})
		if err != nil {
			return "", err
		}
		base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
		for c := 0; c < 5; c++ {
			rows := jsonRows(c*20, c*20+20, func(i int) string {
				ts := base.Add(time.Duration(i%2)*24*time.Hour + time.Duration(i)*time.Second)
				return fmt.Sprintf(`{"id":%d,"ts":%q,"name":%s}`, i, ts.Format(time.RFC3339Nano), nullOr(i, 8, q(fmt.Sprintf("c%d", i))))
			})
			if err := b.appendJSON(ctx, name, rows); err != nil {
				return "", err
			}
		}
		before, err := load(ctx, b.cat, name)
		if err != nil {
			return "", err
		}
		no := false
		cfg := compaction.Config{
			Tables: []string{name}, MinInputFiles: 2,
			ExpireSnapshots: &expire, RemoveOrphanFiles: &no, RewriteManifests: &no,
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		comp, err := compaction.New(b.cat, cfg, compaction.Options{Logger: log,
			// Snapshots are "older than 1 ms" a minute from now.
			Now: func() time.Time { return time.Now().Add(time.Minute) }})
		if err != nil {
			return "", err
		}
		rep, err := comp.Table(ctx, name)
		if err != nil {
			return "", fmt.Errorf("compact: %w", err)
		}
		after, err := load(ctx, b.cat, name)
		if err != nil {
			return "", err
		}
		op := ""
		if s := after.CurrentSnapshot(); s != nil && s.Summary != nil {
			op = string(s.Summary.Operation)
		}
		if rep.FilesRewritten == 0 {
			return "", errors.New("the compactor rewrote no files")
		}
		notes := fmt.Sprintf("5 appends, then Floe's compactor rewrote %d files (current snapshot: %s); snapshots %d → %d",
			rep.FilesRewritten, op, len(before.Metadata().Snapshots()), len(after.Metadata().Snapshots()))
		if expire {
			if rep.SnapshotsExpired == 0 {
				return "", errors.New("the compactor expired no snapshots")
			}
			notes += fmt.Sprintf("; %d snapshots expired, their files deleted", rep.SnapshotsExpired)
		}
		return notes, nil
	}
}

// commitCDC commits one row-level change through Floe's commit protocol.
func commitCDC(ctx context.Context, cat icecat.Catalog, name string, apply func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error) error {
	ident, err := table.ParseIdent(name)
	if err != nil {
		return err
	}
	c := table.NewCommitter(cat, ident, table.CommitterConfig{WriterID: "mkstates"})
	_, err = c.Commit(ctx, table.Commit{Operation: "cdc", Apply: apply})
	return err
}

// arrowRecord builds a record of sc from JSON rows.
func arrowRecord(sc *arrow.Schema, rows string) (arrow.RecordBatch, error) {
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, sc, strings.NewReader(rows))
	return rec, err
}

func one(rec arrow.RecordBatch) func(func(arrow.RecordBatch, error) bool) {
	return func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }
}

func cdcRow(i int, status string, ver int) string {
	return fmt.Sprintf(`{"id":%d,"status":%q,"amount":"%d.%02d","version":%d}`, i, status, i*10, i%100, ver)
}

// buildCDCEquality is a CDC table keyed by id: two appends, then an update
// of ids 5 and 7 as one row delta (equality deletes + the new rows), then a
// delete of ids 2 and 9 (equality deletes only).
func buildCDCEquality(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "status", Type: "string"},
		{Name: "amount", Type: "decimal(12,2)"},
		{Name: "version", Type: "int"},
	}, IdentifierFields: []string{"id"}})
	if err != nil {
		return "", err
	}
	for c := 0; c < 2; c++ {
		if err := b.appendJSON(ctx, name, jsonRows(c*10, c*10+10, func(i int) string { return cdcRow(i, "created", 1) })); err != nil {
			return "", err
		}
	}
	eqDelete := func(ids string, upserts string) error {
		return commitCDC(ctx, b.cat, name, func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
			staged, err := txn.StagedTable()
			if err != nil {
				return err
			}
			sc := staged.Schema()
			idField, ok := sc.FindFieldByName("id")
			if !ok {
				return errors.New("no id column")
			}
			keySc, err := icetable.SchemaToArrowSchema(iceberg.NewSchema(0, idField), nil, true, false)
			if err != nil {
				return err
			}
			keys, err := arrowRecord(keySc, ids)
			if err != nil {
				return err
			}
			defer keys.Release()
			dels, err := txn.WriteEqualityDeletes(ctx, []int{idField.ID}, one(keys))
			if err != nil {
				return fmt.Errorf("write equality deletes: %w", err)
			}
			rd := txn.NewRowDelta(props).AddDeletes(dels...)
			if upserts != "" {
				fullSc, err := icetable.SchemaToArrowSchema(sc, nil, true, false)
				if err != nil {
					return err
				}
				rec, err := arrowRecord(fullSc, upserts)
				if err != nil {
					return err
				}
				for df, err := range icetable.WriteRecords(ctx, staged.Table, fullSc, one(rec)) {
					if err != nil {
						return fmt.Errorf("write upserted rows: %w", err)
					}
					rd.AddRows(df)
				}
			}
			return rd.Commit(ctx)
		})
	}
	if err := eqDelete(`[{"id":5},{"id":7}]`, "["+cdcRow(5, "paid", 2)+","+cdcRow(7, "shipped", 2)+"]"); err != nil {
		return "", err
	}
	if err := eqDelete(`[{"id":2},{"id":9}]`, ""); err != nil {
		return "", err
	}
	return "2 appends, a row delta (equality deletes of ids 5, 7 + their new rows), equality deletes of ids 2, 9", nil
}

// buildCDCPosition is a merge-on-read table: three appends, then two
// deletes by predicate, which iceberg-go writes as position delete files.
func buildCDCPosition(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "status", Type: "string"},
		{Name: "amount", Type: "decimal(12,2)"},
		{Name: "version", Type: "int"},
	}, IdentifierFields: []string{"id"}, Properties: map[string]string{
		icetable.WriteDeleteModeKey: icetable.WriteModeMergeOnRead,
	}})
	if err != nil {
		return "", err
	}
	for c := 0; c < 3; c++ {
		if err := b.appendJSON(ctx, name, jsonRows(c*10, c*10+10, func(i int) string { return cdcRow(i, "created", 1) })); err != nil {
			return "", err
		}
	}
	del := func(filter iceberg.BooleanExpression) error {
		return commitCDC(ctx, b.cat, name, func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
			return txn.Delete(ctx, filter, props)
		})
	}
	if err := del(iceberg.IsIn(iceberg.Reference("id"), int64(3), int64(14), int64(25))); err != nil {
		return "", err
	}
	if err := del(iceberg.NewAnd(iceberg.GreaterThanEqual(iceberg.Reference("id"), int64(20)), iceberg.LessThan(iceberg.Reference("id"), int64(23)))); err != nil {
		return "", err
	}
	tbl, err := load(ctx, b.cat, name)
	if err != nil {
		return "", err
	}
	sum := tbl.CurrentSnapshot().Summary.Properties
	if sum["total-position-deletes"] == "" || sum["total-position-deletes"] == "0" {
		return "", fmt.Errorf("merge-on-read deletes wrote no position deletes (summary %v)", sum)
	}
	return fmt.Sprintf("3 appends, 2 merge-on-read deletes: %s position delete files, %s position deletes, %s data files",
		sum["total-delete-files"], sum["total-position-deletes"], sum["total-data-files"]), nil
}

// buildEvolved changes the schema between appends: Ensure adds columns
// (and promotes int to long), iceberg-go's UpdateSchema renames one and
// drops another.
func buildEvolved(ctx context.Context, b *builder, name string) (string, error) {
	spec := table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "label", Type: "string"},
		{Name: "legacy", Type: "string"},
		{Name: "qty", Type: "int"},
		{Name: "price", Type: "decimal(9,2)"},
	}}
	if _, err := b.ensure(ctx, spec); err != nil {
		return "", err
	}
	if err := b.appendJSON(ctx, name, jsonRows(0, 10, func(i int) string {
		return fmt.Sprintf(`{"id":%d,"label":"l%d","legacy":"old%d","qty":%d,"price":"%d.50"}`, i, i, i, i*2, i)
	})); err != nil {
		return "", err
	}
	// 1. Ensure: add a column and a struct column, qty int → long, price (9,2) → (12,2).
	spec.Schema[3].Type = "long"
	spec.Schema[4].Type = "decimal(12,2)"
	spec.Schema = append(spec.Schema,
		table.Field{Name: "added", Type: "double"},
		table.Field{Name: "info", Type: "struct", Fields: []table.Field{{Name: "a", Type: "int"}, {Name: "b", Type: "string"}}})
	if _, err := b.ensure(ctx, spec); err != nil {
		return "", err
	}
	if err := b.reopen(ctx); err != nil {
		return "", err
	}
	if err := b.appendJSON(ctx, name, jsonRows(10, 20, func(i int) string {
		return fmt.Sprintf(`{"id":%d,"label":"l%d","legacy":"old%d","qty":%d,"price":"%d.25","added":%d.5,"info":{"a":%d,"b":"x%d"}}`,
			i, i, i, int64(i)<<33, i*1000, i, i, i)
	})); err != nil {
		return "", err
	}
	// 2. Rename label → title and a struct field info.b → info.bee; drop legacy.
	evolve := func(f func(us *icetable.UpdateSchema)) error {
		return commitCDC(ctx, b.cat, name, func(ctx context.Context, txn *icetable.Transaction, _ iceberg.Properties) error {
			us := txn.UpdateSchema(true, false)
			f(us)
			return us.Commit()
		})
	}
	if err := evolve(func(us *icetable.UpdateSchema) {
		us.RenameColumn([]string{"label"}, "title")
		us.RenameColumn([]string{"info", "b"}, "bee")
	}); err != nil {
		return "", fmt.Errorf("rename: %w", err)
	}
	if err := b.reopen(ctx); err != nil {
		return "", err
	}
	if err := b.appendJSON(ctx, name, jsonRows(20, 30, func(i int) string {
		return fmt.Sprintf(`{"id":%d,"title":"t%d","legacy":"old%d","qty":%d,"price":"%d.75","added":null,"info":{"a":%d,"bee":"y%d"}}`, i, i, i, i, i, i, i)
	})); err != nil {
		return "", err
	}
	if err := evolve(func(us *icetable.UpdateSchema) { us.DeleteColumn([]string{"legacy"}) }); err != nil {
		return "", fmt.Errorf("drop: %w", err)
	}
	if err := b.reopen(ctx); err != nil {
		return "", err
	}
	if err := b.appendJSON(ctx, name, jsonRows(30, 40, func(i int) string {
		return fmt.Sprintf(`{"id":%d,"title":"t%d","qty":%d,"price":null,"added":%d.125,"info":null}`, i, i, -i, i)
	})); err != nil {
		return "", err
	}
	tbl, err := load(ctx, b.cat, name)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("4 appends across schemas 0→%d: added added/info, qty int→long, price decimal(9,2)→(12,2), renamed label→title and info.b→info.bee, dropped legacy",
		tbl.Schema().ID), nil
}

func buildNested(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "point", Type: "struct", Fields: []table.Field{
			{Name: "x", Type: "double", Required: true}, {Name: "y", Type: "double"},
			{Name: "meta", Type: "struct", Fields: []table.Field{{Name: "tag", Type: "string"}, {Name: "n", Type: "int"}}},
		}},
		{Name: "tags", Type: "list", Element: &table.Field{Type: "string"}},
		{Name: "items", Type: "list", Element: &table.Field{Type: "struct", Fields: []table.Field{
			{Name: "sku", Type: "string", Required: true}, {Name: "qty", Type: "int"}, {Name: "price", Type: "decimal(10,2)"},
		}}},
		{Name: "attrs", Type: "map", Key: &table.Field{Type: "string"}, Value: &table.Field{Type: "string"}},
		{Name: "counts", Type: "map", Key: &table.Field{Type: "string"}, Value: &table.Field{Type: "long", Required: true}},
		{Name: "matrix", Type: "list", Element: &table.Field{Type: "list", Element: &table.Field{Type: "int"}}},
		{Name: "by_day", Type: "map", Key: &table.Field{Type: "date"}, Value: &table.Field{Type: "list", Element: &table.Field{Type: "string"}}},
	}})
	if err != nil {
		return "", err
	}
	rows := jsonRows(0, 30, func(i int) string {
		point := "null"
		if i%6 != 0 {
			meta := "null"
			if i%4 != 0 {
				meta = fmt.Sprintf(`{"tag":%s,"n":%s}`, nullOr(i, 5, q(fmt.Sprintf("m%d", i))), nullOr(i, 3, strconv.Itoa(i)))
			}
			point = fmt.Sprintf(`{"x":%d.5,"y":%s,"meta":%s}`, i, nullOr(i, 7, fmt.Sprintf("-%d.25", i)), meta)
		}
		tags := []string{"null", "[]", fmt.Sprintf(`["a%d"]`, i), fmt.Sprintf(`["a%d",null,"c"]`, i)}[i%4]
		items := []string{"[]", "null",
			fmt.Sprintf(`[{"sku":"s%d","qty":%d,"price":"%d.99"}]`, i, i, i),
			fmt.Sprintf(`[{"sku":"s%d","qty":null,"price":null},{"sku":"t%d","qty":2,"price":"-0.01"}]`, i, i)}[i%4]
		attrs := []string{"null", "[]", fmt.Sprintf(`[{"key":"k%d","value":"v%d"},{"key":"z","value":null}]`, i, i)}[i%3]
		counts := []string{fmt.Sprintf(`[{"key":"c","value":%d},{"key":"a","value":%d}]`, i, -i), "null", "[]"}[i%3]
		matrix := []string{"null", "[[1,2],[],null,[3,null]]", fmt.Sprintf("[[%d]]", i)}[i%3]
		byDay := []string{"null", fmt.Sprintf(`[{"key":"2026-03-%02d","value":["e%d"]},{"key":"1999-12-31","value":null}]`, i%28+1, i)}[i%2]
		return fmt.Sprintf(`{"id":%d,"point":%s,"tags":%s,"items":%s,"attrs":%s,"counts":%s,"matrix":%s,"by_day":%s}`,
			i, point, tags, items, attrs, counts, matrix, byDay)
	})
	if err := b.appendJSON(ctx, name, rows); err != nil {
		return "", err
	}
	return "1 append: struct in struct, list<string>, list<struct>, map<string,string>, map<string,long>, list<list<int>>, map<date,list<string>>, nulls at every level", nil
}

func buildDecimals(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "d9", Type: "decimal(9,2)"},
		{Name: "d18", Type: "decimal(18,6)"},
		{Name: "d38", Type: "decimal(38,10)"},
		{Name: "d0", Type: "decimal(5,0)"},
	}})
	if err != nil {
		return "", err
	}
	vals := [][4]string{
		{"0.00", "0.000000", "0.0000000000", "0"},
		{"1.50", "-1.500000", "1.0000000001", "-1"},
		{"-0.01", "0.000001", "-0.0000000001", "99999"},
		{"9999999.99", "999999999999.999999", "9999999999999999999999999999.9999999999", "-99999"},
		{"-9999999.99", "-999999999999.999999", "-9999999999999999999999999999.9999999999", "12345"},
		{"123.45", "42.424242", "3.1415926535", "7"},
	}
	rows := jsonRows(0, 24, func(i int) string {
		v := vals[i%len(vals)]
		return fmt.Sprintf(`{"id":%d,"d9":%s,"d18":%s,"d38":%s,"d0":%s}`, i,
			nullOr(i, 7, q(v[0])), nullOr(i+1, 7, q(v[1])), nullOr(i+2, 7, q(v[2])), nullOr(i+3, 7, q(v[3])))
	})
	if err := b.appendJSON(ctx, name, rows); err != nil {
		return "", err
	}
	return "1 append: decimal(9,2), (18,6), (38,10), (5,0) at their extremes, negative, zero, null", nil
}

var timestampVals = []string{
	"2026-01-01T00:00:00.000000", "1970-01-01T00:00:00.000000", "1969-12-31T23:59:59.999999",
	"1900-03-01T12:34:56.789012", "2262-04-11T23:47:16.854775", "2024-02-29T13:14:15.000001",
	"0001-01-01T00:00:00.000000", "9999-12-31T23:59:59.999999",
}

func buildTimestamps(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "ts", Type: "timestamp"},
		{Name: "tstz", Type: "timestamptz"},
		{Name: "d", Type: "date"},
	}})
	if err != nil {
		return "", err
	}
	rows := jsonRows(0, 24, func(i int) string {
		v := timestampVals[i%len(timestampVals)]
		w := timestampVals[(i+3)%len(timestampVals)]
		return fmt.Sprintf(`{"id":%d,"ts":%s,"tstz":%s,"d":%s}`, i,
			nullOr(i, 9, q(v)), nullOr(i+1, 9, q(w+"Z")), nullOr(i+2, 9, q(v[:10])))
	})
	if err := b.appendJSON(ctx, name, rows); err != nil {
		return "", err
	}
	return "1 append: timestamp (no zone), timestamptz, date; microseconds, before 1970, years 0001 and 9999, null", nil
}

func buildTimeOfDay(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "t", Type: "time"},
	}})
	if err != nil {
		return "", err
	}
	tv := []string{"00:00:00.000000", "12:34:56.789012", "23:59:59.999999", "07:08:09.000001"}
	rows := jsonRows(0, 12, func(i int) string { return fmt.Sprintf(`{"id":%d,"t":%s}`, i, nullOr(i, 5, q(tv[i%len(tv)]))) })
	if err := b.appendJSON(ctx, name, rows); err != nil {
		return "", err
	}
	return "1 append: time (microseconds), null", nil
}

func buildUUIDs(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "u", Type: "uuid"},
		{Name: "bin", Type: "binary"},
		{Name: "fx", Type: "fixed[4]"},
	}})
	if err != nil {
		return "", err
	}
	rows := jsonRows(0, 20, func(i int) string {
		u := uuid.NewSHA1(uuid.NameSpaceOID, []byte(strconv.Itoa(i)))
		if i == 1 {
			u = uuid.UUID{}
		}
		bin := []byte(fmt.Sprintf("bytes-%d\x00\xff", i))
		fx := []byte{byte(i), 0, 0xff, byte(255 - i)}
		// Arrow's JSON form of binary and fixed is base64.
		return fmt.Sprintf(`{"id":%d,"u":%s,"bin":%s,"fx":%s}`, i, nullOr(i, 6, q(u.String())),
			nullOr(i+2, 6, q(b64(bin))), nullOr(i+4, 6, q(b64(fx))))
	})
	if err := b.appendJSON(ctx, name, rows); err != nil {
		return "", err
	}
	return "1 append: uuid, binary, fixed[4], null", nil
}

// ---- Floe's view: scan and canonical JSON ----------------------------------

// dumpTable scans name with iceberg-go and writes OUT/<name>.jsonl, sorted,
// and, with a filter, OUT/<name>.filter.jsonl. It returns the row count.
func dumpTable(ctx context.Context, cat icecat.Catalog, name, out string, f *Filter) (int, error) {
	tbl, err := load(ctx, cat, name)
	if err != nil {
		return 0, fmt.Errorf("load %s: %w", name, err)
	}
	rows, err := ScanCanonical(ctx, tbl)
	if err != nil {
		return 0, fmt.Errorf("scan %s: %w", name, err)
	}
	if err := writeLines(filepath.Join(out, name+".jsonl"), rows); err != nil {
		return 0, err
	}
	if f != nil {
		var sel []map[string]any
		for _, r := range rows {
			if f.match(r) {
				sel = append(sel, r)
			}
		}
		if len(sel) == 0 {
			return 0, fmt.Errorf("%s: filter %+v selects no row", name, *f)
		}
		if err := writeLines(filepath.Join(out, name+".filter.jsonl"), sel); err != nil {
			return 0, err
		}
	}
	return len(rows), nil
}

func (f *Filter) match(r map[string]any) bool {
	v := r[f.Column]
	switch f.Op {
	case "eq":
		a, _ := json.Marshal(v)
		b, _ := json.Marshal(f.Value)
		return v != nil && bytes.Equal(a, b)
	case "range":
		s, ok := v.(string)
		return ok && s >= f.Lo && s < f.Hi
	}
	return false
}

func writeLines(path string, rows []map[string]any) error {
	lines := make([]string, 0, len(rows))
	for _, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		lines = append(lines, string(b))
	}
	sort.Strings(lines)
	var buf bytes.Buffer
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// ScanCanonical reads the whole table with iceberg-go's scan and returns
// its rows in the canonical form.
func ScanCanonical(ctx context.Context, tbl *icetable.Table) ([]map[string]any, error) {
	sc := tbl.Schema()
	_, recs, err := tbl.Scan().ToArrowRecords(ctx)
	if err != nil {
		return nil, err
	}
	var rows []map[string]any
	for rec, err := range recs {
		if err != nil {
			return nil, err
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			row := make(map[string]any, len(sc.Fields()))
			for _, f := range sc.Fields() {
				idx := rec.Schema().FieldIndices(f.Name)
				if len(idx) != 1 {
					rec.Release()
					return nil, fmt.Errorf("column %s missing from the scan", f.Name)
				}
				v, err := canon(rec.Column(idx[0]), i, f.Type)
				if err != nil {
					rec.Release()
					return nil, fmt.Errorf("column %s: %w", f.Name, err)
				}
				row[f.Name] = v
			}
			rows = append(rows, row)
		}
		rec.Release()
	}
	return rows, nil
}

const (
	tsLayout = "2006-01-02T15:04:05.000000"
)

// canon converts value i of arr, of Iceberg type t, to the canonical form.
func canon(arr arrow.Array, i int, t iceberg.Type) (any, error) {
	if arr.IsNull(i) {
		return nil, nil
	}
	switch tt := t.(type) {
	case iceberg.BooleanType:
		return arr.(*array.Boolean).Value(i), nil
	case iceberg.Int32Type, iceberg.Int64Type:
		switch a := arr.(type) {
		case *array.Int32:
			return int64(a.Value(i)), nil
		case *array.Int64:
			return a.Value(i), nil
		}
	case iceberg.Float32Type, iceberg.Float64Type:
		switch a := arr.(type) {
		case *array.Float32:
			return float64(a.Value(i)), nil
		case *array.Float64:
			return a.Value(i), nil
		}
	case iceberg.DecimalType:
		if a, ok := arr.(*array.Decimal128); ok {
			return a.Value(i).ToString(int32(tt.Scale())), nil
		}
	case iceberg.StringType:
		switch a := arr.(type) {
		case *array.String:
			return a.Value(i), nil
		case *array.LargeString:
			return a.Value(i), nil
		case *array.StringView:
			return a.Value(i), nil
		}
	case iceberg.BinaryType, iceberg.FixedType:
		switch a := arr.(type) {
		case *array.Binary:
			return hex.EncodeToString(a.Value(i)), nil
		case *array.LargeBinary:
			return hex.EncodeToString(a.Value(i)), nil
		case *array.BinaryView:
			return hex.EncodeToString(a.Value(i)), nil
		case *array.FixedSizeBinary:
			return hex.EncodeToString(a.Value(i)), nil
		}
	case iceberg.UUIDType:
		switch a := arr.(type) {
		case *extensions.UUIDArray:
			return a.Value(i).String(), nil
		case *array.FixedSizeBinary:
			u, err := uuid.FromBytes(a.Value(i))
			return u.String(), err
		}
	case iceberg.DateType:
		if a, ok := arr.(*array.Date32); ok {
			return a.Value(i).ToTime().UTC().Format("2006-01-02"), nil
		}
	case iceberg.TimeType:
		if a, ok := arr.(*array.Time64); ok {
			us := int64(a.Value(i))
			if a.DataType().(*arrow.Time64Type).Unit == arrow.Nanosecond {
				us /= 1000
			}
			return time.UnixMicro(us).UTC().Format("15:04:05.000000"), nil
		}
	case iceberg.TimestampType, iceberg.TimestampTzType:
		if a, ok := arr.(*array.Timestamp); ok {
			unit := a.DataType().(*arrow.TimestampType).Unit
			v := int64(a.Value(i))
			var tm time.Time
			switch unit {
			case arrow.Microsecond:
				tm = time.UnixMicro(v)
			case arrow.Nanosecond:
				tm = time.Unix(0, v)
			case arrow.Millisecond:
				tm = time.UnixMilli(v)
			default:
				tm = time.Unix(v, 0)
			}
			s := tm.UTC().Format(tsLayout)
			if _, tz := t.(iceberg.TimestampTzType); tz {
				s += "Z"
			}
			return s, nil
		}
	case *iceberg.StructType:
		a, ok := arr.(*array.Struct)
		if !ok {
			break
		}
		st := a.DataType().(*arrow.StructType)
		obj := make(map[string]any, len(tt.FieldList))
		for _, f := range tt.FieldList {
			idx, ok := st.FieldIdx(f.Name)
			if !ok {
				return nil, fmt.Errorf("struct field %s missing", f.Name)
			}
			v, err := canon(a.Field(idx), i, f.Type)
			if err != nil {
				return nil, err
			}
			obj[f.Name] = v
		}
		return obj, nil
	case *iceberg.ListType:
		var values arrow.Array
		var start, end int64
		switch a := arr.(type) {
		case *array.List:
			values = a.ListValues()
			start, end = a.ValueOffsets(i)
		case *array.LargeList:
			values = a.ListValues()
			start, end = a.ValueOffsets(i)
		default:
			return nil, fmt.Errorf("list of arrow type %s", arr.DataType())
		}
		out := make([]any, 0, end-start)
		for j := start; j < end; j++ {
			v, err := canon(values, int(j), tt.Element)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case *iceberg.MapType:
		a, ok := arr.(*array.Map)
		if !ok {
			break
		}
		start, end := a.ValueOffsets(i)
		type kv struct {
			k   string
			val [2]any
		}
		var pairs []kv
		for j := start; j < end; j++ {
			k, err := canon(a.Keys(), int(j), tt.KeyType)
			if err != nil {
				return nil, err
			}
			v, err := canon(a.Items(), int(j), tt.ValueType)
			if err != nil {
				return nil, err
			}
			kj, _ := json.Marshal(k)
			pairs = append(pairs, kv{string(kj), [2]any{k, v}})
		}
		sort.Slice(pairs, func(x, y int) bool { return pairs[x].k < pairs[y].k })
		out := make([]any, len(pairs))
		for j, p := range pairs {
			out[j] = []any{p.val[0], p.val[1]}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected arrow type %s for Iceberg type %s", arr.DataType(), t)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
