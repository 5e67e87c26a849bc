package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// The states, the manifest, and the building blocks the states share.

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
		{name: "keyed_part", build: buildKeyedPartitioned,
			filter: &Filter{Column: "ts", Op: "range", Lo: "2026-01-02T00:00:00.000000Z", Hi: "2026-01-03T00:00:00.000000Z"}},
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
