package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/inspect"
	"github.com/floe-lake/floe/internal/units"
	"github.com/floe-lake/floe/table"
)

const tableUsage = `usage: floe table [flags] <subcommand> [args]

subcommands:
  list [namespace]       namespaces (nested ones included) and their tables
  describe <ns.table>    schema, partitioning, sort order, properties, positions
  snapshots <ns.table>   the table's snapshots, oldest first
  files <ns.table>       the data files of the current snapshot

Flags go before the subcommand: floe table -format json describe ods.events

flags:
`

// The JSON shapes of 'floe table list' and 'floe table files'.
type (
	namespaceListing = inspect.Namespace
	fileInfo         = inspect.File
)

// registerTable is 'floe table': read-only inspection of the catalog.
func registerTable(fs *flag.FlagSet) func(ctx context.Context, env *env, args []string) error {
	cfgPath := configFlag(fs)
	format := fs.String("format", "text", "output format: text (aligned columns) or json")
	asJSON := fs.Bool("json", false, "same as -format json")
	fs.Usage = func() {
		_, _ = fmt.Fprint(fs.Output(), tableUsage)
		fs.PrintDefaults()
	}
	return func(ctx context.Context, env *env, args []string) error {
		if *asJSON {
			*format = "json"
		}
		if *format != "text" && *format != "json" {
			return usageError{fmt.Errorf("-format: %q is not text or json", *format)}
		}
		return runTable(ctx, env, *cfgPath, *format == "json", args)
	}
}

func runTable(ctx context.Context, env *env, cfgPath string, asJSON bool, args []string) error {
	if len(args) == 0 {
		return usageError{errors.New("missing subcommand: list, describe, snapshots or files (see floe table -h)")}
	}
	sub, rest := args[0], args[1:]
	for _, a := range rest {
		if strings.HasPrefix(a, "-") {
			return usageError{fmt.Errorf("flag %s must come before the subcommand (floe table %s %s <args>)", a, a, sub)}
		}
	}
	var ident icetable.Identifier
	switch sub {
	case "list":
		if len(rest) > 1 {
			return usageError{errors.New("usage: floe table list [namespace]")}
		}
		if len(rest) == 1 {
			ident = strings.Split(rest[0], ".")
			if slices.Contains(ident, "") {
				return usageError{fmt.Errorf("namespace %q: empty part", rest[0])}
			}
		}
	case "describe", "snapshots", "files":
		if len(rest) != 1 {
			return usageError{fmt.Errorf("usage: floe table %s <namespace.table>", sub)}
		}
		var err error
		if ident, err = table.ParseIdent(rest[0]); err != nil {
			return usageError{err}
		}
	default:
		return usageError{fmt.Errorf("unknown subcommand %q: want list, describe, snapshots or files", sub)}
	}

	cfg, err := loadConfig(cfgPath, catalogSection)
	if err != nil {
		return err
	}
	cat, err := openCatalog(ctx, cfg)
	if err != nil {
		return err
	}
	if c, ok := cat.(io.Closer); ok {
		defer func() {
			if err := c.Close(); err != nil {
				env.log.Warn("close catalog", "err", err)
			}
		}()
	}
	out := printer{w: env.stdout, json: asJSON}
	if sub == "list" {
		listing, err := inspect.List(ctx, cat, env.log, ident)
		if err != nil {
			return err
		}
		return out.list(listing)
	}
	tbl, err := inspect.Load(ctx, cat, ident)
	if err != nil {
		return err
	}
	switch sub {
	case "describe":
		return out.describe(inspect.Describe(tbl))
	case "snapshots":
		return out.snapshots(inspect.Snapshots(tbl))
	}
	files, err := inspect.Files(ctx, tbl)
	if err != nil {
		return err
	}
	return out.files(files, tbl.Location())
}

// printer writes either indented JSON or tab-aligned columns.
type printer struct {
	w    io.Writer
	json bool
}

func (p printer) encode(v any) error {
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// table writes rows as aligned columns.
func (p printer) table(rows [][]string) error {
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		if _, err := fmt.Fprintln(tw, strings.Join(r, "\t")); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func (p printer) list(listing []inspect.Namespace) error {
	if p.json {
		return p.encode(listing)
	}
	rows := [][]string{{"NAMESPACE", "TABLE"}}
	for _, l := range listing {
		if len(l.Tables) == 0 {
			rows = append(rows, []string{l.Namespace, "-"})
		}
		for _, t := range l.Tables {
			name, _ := strings.CutPrefix(t, l.Namespace+".")
			rows = append(rows, []string{l.Namespace, name})
		}
	}
	return p.table(rows)
}

func (p printer) describe(d inspect.Description) error {
	if p.json {
		return p.encode(d.TableInfo)
	}
	none := func(s []string, empty string) string {
		if len(s) == 0 {
			return empty
		}
		return strings.Join(s, ", ")
	}
	current := "none"
	if d.CurrentSnapshotID != nil {
		current = strconv.FormatInt(*d.CurrentSnapshotID, 10)
	}
	rows := [][]string{
		{"table", d.Name}, {"uuid", d.UUID}, {"location", d.Location}, {"metadata", d.MetadataLocation},
		{"format-version", strconv.Itoa(d.FormatVersion)}, {"last-updated", d.LastUpdated},
		{"current-snapshot", current}, {"snapshots", strconv.Itoa(d.Snapshots)},
		{"partition", none(d.Partition, "unpartitioned")}, {"sort", none(d.Sort, "unsorted")},
		{"identifier-fields", none(d.IdentifierFields, "none")},
	}
	if err := p.table(rows); err != nil {
		return err
	}
	rows = [][]string{{}, {"ID", "COLUMN", "TYPE", "REQUIRED", "DOC"}}
	for _, c := range d.Columns {
		id, req := "?", "optional"
		if c.ID != 0 {
			id = strconv.Itoa(c.ID)
		}
		if c.Required {
			req = "required"
		}
		rows = append(rows, []string{id, c.Path, c.Type, req, c.Doc})
	}
	if err := p.table(rows); err != nil {
		return err
	}
	rows = [][]string{{}, {"PROPERTY", "VALUE"}}
	for _, k := range slices.Sorted(maps.Keys(d.Properties)) {
		rows = append(rows, []string{k, d.Properties[k]})
	}
	if err := p.table(rows); err != nil {
		return err
	}
	rows = [][]string{{}, {"SOURCE", "POSITIONS"}}
	switch {
	case d.PositionsError != "":
		rows = append(rows, []string{"?", "error: " + d.PositionsError})
	case len(d.Positions) == 0:
		rows = append(rows, []string{"-", "none (Floe has not committed to this table)"})
	}
	for _, src := range slices.Sorted(maps.Keys(d.Positions)) {
		rows = append(rows, []string{src, d.Positions[src].String()})
	}
	return p.table(rows)
}

func (p printer) snapshots(snaps []table.SnapshotInfo) error {
	if p.json {
		return p.encode(snaps)
	}
	num := func(v *int64) string {
		if v == nil {
			return "-"
		}
		return strconv.FormatInt(*v, 10)
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	rows := [][]string{{"", "SNAPSHOT", "PARENT", "TIMESTAMP", "OPERATION", "ADDED-RECORDS", "ADDED-FILES", "TOTAL-RECORDS", "TOTAL-FILES", "WRITER", "POSITIONS"}}
	for _, s := range snaps {
		mark := ""
		if s.Current {
			mark = "*"
		}
		// Positions on one line: "src{part=pos part=pos} src2{...}".
		var pos []string
		for _, src := range slices.Sorted(maps.Keys(s.Positions)) {
			pos = append(pos, src+"{"+s.Positions[src].String()+"}")
		}
		rows = append(rows, []string{
			mark, strconv.FormatInt(s.ID, 10), num(s.ParentID), s.Timestamp, dash(s.Operation),
			num(s.AddedRecords), num(s.AddedDataFiles), num(s.TotalRecords), num(s.TotalDataFiles),
			dash(s.WriterID), dash(strings.Join(pos, " ")),
		})
	}
	return p.table(rows)
}

func (p printer) files(files []inspect.File, location string) error {
	if p.json {
		return p.encode(files)
	}
	if len(files) == 0 {
		return p.table([][]string{{"no data files in the current snapshot"}})
	}
	var records, bytes int64
	prefix := strings.TrimSuffix(location, "/") + "/"
	rows := [][]string{{"PATH (under " + prefix + ")", "PARTITION", "RECORDS", "SIZE"}}
	for _, f := range files {
		path, _ := strings.CutPrefix(f.Path, prefix)
		part := f.Partition
		if part == "" {
			part = "-"
		}
		rows = append(rows, []string{path, part, strconv.FormatInt(f.RecordCount, 10), units.Bytes(f.FileSizeBytes)})
		records += f.RecordCount
		bytes += f.FileSizeBytes
	}
	rows = append(rows, []string{fmt.Sprintf("%d files", len(files)), "", strconv.FormatInt(records, 10), units.Bytes(bytes)})
	return p.table(rows)
}
