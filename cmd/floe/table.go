package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/table"
)

const tableUsage = `usage: floe table [flags] <subcommand> [args]

subcommands:
  list [namespace]       namespaces (nested ones included) and their tables
  describe <ns.table>    schema, partitioning, sort order, properties, positions
  snapshots <ns.table>   the table's snapshots, oldest first
  files <ns.table>       the data files of the current snapshot

Flags go before the subcommand: floe table -json describe ods.events

flags:
`

// registerTable is 'floe table': read-only inspection of the catalog.
func registerTable(fs *flag.FlagSet) func(ctx context.Context, env *env, args []string) error {
	cfgPath := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of aligned columns")
	fs.Usage = func() {
		_, _ = fmt.Fprint(fs.Output(), tableUsage)
		fs.PrintDefaults()
	}
	return func(ctx context.Context, env *env, args []string) error {
		return runTable(ctx, env, *cfgPath, *asJSON, args)
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
		return tableList(ctx, cat, env.log, ident, out)
	}
	name := strings.Join(ident, ".")
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		if errors.Is(err, icecat.ErrNoSuchTable) || errors.Is(err, icecat.ErrNoSuchNamespace) {
			return fmt.Errorf("table %s not found", name)
		}
		return fmt.Errorf("load table %s: %w", name, err)
	}
	switch sub {
	case "describe":
		return tableDescribe(tbl, out)
	case "snapshots":
		return tableSnapshots(tbl, out)
	default:
		return tableFiles(ctx, tbl, out)
	}
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

// namespaceListing is one namespace in 'floe table list'.
type namespaceListing struct {
	Namespace string   `json:"namespace"`
	Tables    []string `json:"tables"`
}

func tableList(ctx context.Context, cat icecat.Catalog, log *slog.Logger, root icetable.Identifier, out printer) error {
	if len(root) > 0 {
		ok, err := cat.CheckNamespaceExists(ctx, root)
		if err != nil {
			return fmt.Errorf("check namespace %s: %w", strings.Join(root, "."), err)
		}
		if !ok {
			return fmt.Errorf("namespace %s not found", strings.Join(root, "."))
		}
	}
	namespaces, err := allNamespaces(ctx, cat, log, root)
	if err != nil {
		return err
	}
	listing := make([]namespaceListing, 0, len(namespaces))
	for _, ns := range namespaces {
		l := namespaceListing{Namespace: strings.Join(ns, "."), Tables: []string{}}
		for ident, err := range cat.ListTables(ctx, ns) {
			if err != nil {
				return fmt.Errorf("list tables in %s: %w", l.Namespace, err)
			}
			l.Tables = append(l.Tables, strings.Join(ident, "."))
		}
		sort.Strings(l.Tables)
		listing = append(listing, l)
	}
	if out.json {
		return out.encode(listing)
	}
	rows := [][]string{{"NAMESPACE", "TABLE"}}
	for _, l := range listing {
		if len(l.Tables) == 0 {
			rows = append(rows, []string{l.Namespace, "-"})
		}
		for _, t := range l.Tables {
			rows = append(rows, []string{l.Namespace, catalogObjectName(t, l.Namespace)})
		}
	}
	return out.table(rows)
}

// catalogObjectName strips the namespace from a table's full name.
func catalogObjectName(full, ns string) string {
	if s, ok := strings.CutPrefix(full, ns+"."); ok {
		return s
	}
	return full
}

// allNamespaces lists root (when given) and every namespace below it,
// descending into nested namespaces where the catalog allows, sorted.
func allNamespaces(ctx context.Context, cat icecat.Catalog, log *slog.Logger, root icetable.Identifier) ([]icetable.Identifier, error) {
	seen := map[string]bool{}
	var out []icetable.Identifier
	add := func(ns icetable.Identifier) bool {
		k := strings.Join(ns, "\x00")
		if len(ns) == 0 || seen[k] {
			return false
		}
		seen[k] = true
		out = append(out, slices.Clone(ns))
		return true
	}
	add(root)
	queue := []icetable.Identifier{root}
	for i := 0; i < len(queue); i++ {
		parent := queue[i]
		children, err := cat.ListNamespaces(ctx, parent)
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("list namespaces: %w", err)
			}
			// Some catalogs do not nest namespaces.
			log.Debug("cannot list nested namespaces", "namespace", strings.Join(parent, "."), "err", err)
			continue
		}
		for _, c := range children {
			if add(c) {
				queue = append(queue, c)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return slices.Compare(out[i], out[j]) < 0 })
	return out, nil
}

func tableDescribe(tbl *icetable.Table, out printer) error {
	info := table.Describe(tbl)
	if out.json {
		return out.encode(info)
	}
	none := func(s []string, empty string) string {
		if len(s) == 0 {
			return empty
		}
		return strings.Join(s, ", ")
	}
	current := "none"
	if info.CurrentSnapshotID != nil {
		current = strconv.FormatInt(*info.CurrentSnapshotID, 10)
	}
	rows := [][]string{
		{"table", info.Name},
		{"uuid", info.UUID},
		{"location", info.Location},
		{"metadata", info.MetadataLocation},
		{"format-version", strconv.Itoa(info.FormatVersion)},
		{"last-updated", info.LastUpdated},
		{"current-snapshot", current},
		{"snapshots", strconv.Itoa(info.Snapshots)},
		{"partition", none(info.Partition, "unpartitioned")},
		{"sort", none(info.Sort, "unsorted")},
		{"identifier-fields", none(info.IdentifierFields, "none")},
	}
	if err := out.table(rows); err != nil {
		return err
	}

	sc := tbl.Schema()
	rows = [][]string{{}, {"ID", "COLUMN", "TYPE", "REQUIRED", "DOC"}}
	var walk func(prefix string, fields []table.Field)
	var descend func(path string, f table.Field)
	walk = func(prefix string, fields []table.Field) {
		for _, f := range fields {
			path := f.Name
			if prefix != "" {
				path = prefix + "." + f.Name
			}
			id := "?"
			if nf, ok := sc.FindFieldByName(path); ok {
				id = strconv.Itoa(nf.ID)
			}
			req := "optional"
			if f.Required {
				req = "required"
			}
			rows = append(rows, []string{id, path, typeLabel(f), req, f.Doc})
			descend(path, f)
		}
	}
	descend = func(path string, f table.Field) {
		switch {
		case f.Type == "struct":
			walk(path, f.Fields)
		case f.Type == "list" && f.Element != nil:
			descend(path+".element", *f.Element)
		case f.Type == "map" && f.Key != nil && f.Value != nil:
			descend(path+".key", *f.Key)
			descend(path+".value", *f.Value)
		}
	}
	walk("", info.Schema)
	if err := out.table(rows); err != nil {
		return err
	}

	rows = [][]string{{}, {"PROPERTY", "VALUE"}}
	keys := make([]string, 0, len(info.Properties))
	for k := range info.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rows = append(rows, []string{k, info.Properties[k]})
	}
	if err := out.table(rows); err != nil {
		return err
	}

	rows = [][]string{{}, {"SOURCE", "POSITIONS"}}
	switch {
	case info.PositionsError != "":
		rows = append(rows, []string{"?", "error: " + info.PositionsError})
	case len(info.Positions) == 0:
		rows = append(rows, []string{"-", "none (Floe has not committed to this table)"})
	}
	for _, src := range sortedKeys(info.Positions) {
		rows = append(rows, []string{src, info.Positions[src].String()})
	}
	return out.table(rows)
}

// typeLabel is a column's type in one word: primitives as they are, lists
// and maps with their element types, nested structs as "struct".
func typeLabel(f table.Field) string {
	switch f.Type {
	case "list":
		if f.Element != nil {
			return "list<" + typeLabel(*f.Element) + ">"
		}
	case "map":
		if f.Key != nil && f.Value != nil {
			return "map<" + typeLabel(*f.Key) + ", " + typeLabel(*f.Value) + ">"
		}
	}
	return f.Type
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// compactPositions renders a position map on one line:
// "src{part=pos part=pos} src2{...}".
func compactPositions(m table.PositionMap) string {
	if len(m) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(m))
	for _, src := range sortedKeys(m) {
		parts = append(parts, src+"{"+m[src].String()+"}")
	}
	return strings.Join(parts, " ")
}

func tableSnapshots(tbl *icetable.Table, out printer) error {
	snaps := table.DescribeSnapshots(tbl)
	if out.json {
		return out.encode(snaps)
	}
	num := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatInt(*p, 10)
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
		rows = append(rows, []string{
			mark, strconv.FormatInt(s.ID, 10), num(s.ParentID), s.Timestamp, dash(s.Operation),
			num(s.AddedRecords), num(s.AddedDataFiles), num(s.TotalRecords), num(s.TotalDataFiles),
			dash(s.WriterID), compactPositions(s.Positions),
		})
	}
	return out.table(rows)
}

// fileInfo is one data file in 'floe table files'.
type fileInfo struct {
	Path string `json:"path"`
	// Partition is the file's partition as a path, e.g.
	// "event_time_day=2024-05-01/user_id_bucket_16=3"; empty when the
	// file's spec is unpartitioned.
	Partition     string `json:"partition"`
	SpecID        int32  `json:"spec-id"`
	Format        string `json:"format"`
	RecordCount   int64  `json:"record-count"`
	FileSizeBytes int64  `json:"file-size-bytes"`
	// DeleteFiles counts the delete files that apply to the data file.
	DeleteFiles int `json:"delete-files"`
}

func tableFiles(ctx context.Context, tbl *icetable.Table, out printer) error {
	name := strings.Join(tbl.Identifier(), ".")
	scan := tbl.Scan()
	tasks, err := scan.PlanFiles(ctx)
	if cerr := scan.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("plan files of %s: %w", name, err)
	}
	files := make([]fileInfo, 0, len(tasks))
	for _, t := range tasks {
		df := t.File
		files = append(files, fileInfo{
			Path:          df.FilePath(),
			Partition:     partitionPath(tbl, df),
			SpecID:        df.SpecID(),
			Format:        strings.ToLower(string(df.FileFormat())),
			RecordCount:   df.Count(),
			FileSizeBytes: df.FileSizeBytes(),
			DeleteFiles:   len(t.DeleteFiles) + len(t.EqualityDeleteFiles) + len(t.DeletionVectorFiles),
		})
	}
	sort.Slice(files, func(i, j int) bool {
		if files[i].Partition != files[j].Partition {
			return files[i].Partition < files[j].Partition
		}
		return files[i].Path < files[j].Path
	})
	if out.json {
		return out.encode(files)
	}
	if len(files) == 0 {
		return out.table([][]string{{"no data files in the current snapshot"}})
	}
	var records, bytes int64
	prefix := strings.TrimSuffix(tbl.Location(), "/") + "/"
	rows := [][]string{{"PATH (under " + prefix + ")", "PARTITION", "RECORDS", "SIZE"}}
	for _, f := range files {
		path, _ := strings.CutPrefix(f.Path, prefix)
		part := f.Partition
		if part == "" {
			part = "-"
		}
		rows = append(rows, []string{path, part, strconv.FormatInt(f.RecordCount, 10), humanBytes(f.FileSizeBytes)})
		records += f.RecordCount
		bytes += f.FileSizeBytes
	}
	rows = append(rows, []string{fmt.Sprintf("%d files", len(files)), "", strconv.FormatInt(records, 10), humanBytes(bytes)})
	return out.table(rows)
}

// partitionPath renders a data file's partition values as Iceberg lays
// them out in paths: name=value/name=value, values in human form.
func partitionPath(tbl *icetable.Table, df iceberg.DataFile) string {
	spec := tbl.Metadata().PartitionSpecByID(int(df.SpecID()))
	if spec == nil || spec.IsUnpartitioned() {
		return ""
	}
	sc := tbl.Schema()
	values := df.Partition()
	parts := make([]string, 0, spec.NumFields())
	for _, f := range spec.Fields() {
		var resultType iceberg.Type
		if src, ok := sc.FindFieldByID(f.SourceID()); ok {
			resultType = f.Transform.ResultType(src.Type)
		}
		parts = append(parts, f.Name+"="+f.Transform.ToHumanStrType(resultType, values[f.FieldID]))
	}
	return strings.Join(parts, "/")
}

// humanBytes renders n bytes with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
