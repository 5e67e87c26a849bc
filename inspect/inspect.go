// Package inspect reports what a table holds: the catalog's namespaces and
// their tables, a table's schema, partitioning, properties and committed
// source positions, its snapshots, and the data files of its current
// snapshot with their partitions, record counts and sizes. It returns typed
// values for a caller to print as text or JSON.
//
// This package only reads: it never commits, writes or deletes anything in
// a catalog or a warehouse.
package inspect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// ErrNotFound means a table or namespace does not exist in the catalog.
var ErrNotFound = errors.New("not found")

// Namespace is one namespace and the tables in it.
type Namespace struct {
	// Namespace is the namespace's dotted name.
	Namespace string `json:"namespace"`
	// Tables are the full names (namespace.table) of its tables, sorted.
	Tables []string `json:"tables"`
}

// List lists root (every namespace when root is empty) and the namespaces
// nested below it, sorted, with their tables. Nested namespaces are
// descended into where the catalog allows; a catalog that does not nest
// them is logged at debug level. A root that does not exist fails with
// ErrNotFound.
func List(ctx context.Context, cat icecat.Catalog, log *slog.Logger, root icetable.Identifier) ([]Namespace, error) {
	if len(root) > 0 {
		ok, err := cat.CheckNamespaceExists(ctx, root)
		if err != nil {
			return nil, fmt.Errorf("check namespace %s: %w", strings.Join(root, "."), err)
		}
		if !ok {
			return nil, fmt.Errorf("namespace %s %w", strings.Join(root, "."), ErrNotFound)
		}
	}
	namespaces, err := allNamespaces(ctx, cat, log, root)
	if err != nil {
		return nil, err
	}
	listing := make([]Namespace, 0, len(namespaces))
	for _, ns := range namespaces {
		l := Namespace{Namespace: strings.Join(ns, "."), Tables: []string{}}
		for ident, err := range cat.ListTables(ctx, ns) {
			if err != nil {
				return nil, fmt.Errorf("list tables in %s: %w", l.Namespace, err)
			}
			l.Tables = append(l.Tables, strings.Join(ident, "."))
		}
		sort.Strings(l.Tables)
		listing = append(listing, l)
	}
	return listing, nil
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

// Load loads a table; a table or namespace that does not exist fails with
// ErrNotFound ("table ns.t not found").
func Load(ctx context.Context, cat icecat.Catalog, ident icetable.Identifier) (*icetable.Table, error) {
	name := strings.Join(ident, ".")
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		if errors.Is(err, icecat.ErrNoSuchTable) || errors.Is(err, icecat.ErrNoSuchNamespace) {
			return nil, fmt.Errorf("table %s %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("load table %s: %w", name, err)
	}
	return tbl, nil
}

// Description is table.Describe's report with the schema flattened into
// columns. Its JSON form is table.TableInfo's.
type Description struct {
	table.TableInfo
	// Columns are every field of the schema, nested ones included, in
	// schema order, each after its parent.
	Columns []Column `json:"-"`
	// KeyIndex describes the key index a keyed writer keeps for the
	// table; nil when the table has no identifier fields.
	KeyIndex *KeyIndex `json:"-"`
}

// KeyIndex is what the keyed writer's primary-key index of a table holds
// (writer/keyed_hashindex.go), as far as the table's metadata tells.
type KeyIndex struct {
	// Keys are the table's live rows: the current snapshot's records less
	// its position deletes, one key each.
	Keys int64 `json:"keys"`
	// Bytes is the memory an index of Keys keys takes in the writer
	// (writer.EstimateKeyIndexBytes); the running writer reports its own as
	// floe_writer_keyed_index_bytes.
	Bytes int64 `json:"bytes"`
	// Location is where the index lives.
	Location string `json:"location"`
	// Persisted is the index file of the table on this host, if any.
	Persisted writer.PersistedKeyIndex `json:"persisted"`
}

// Column is one field of a schema.
type Column struct {
	// ID is the Iceberg field id; 0 when the schema has no field at Path.
	ID int
	// Path is the dotted path: device.os, tags.element, attrs.key.
	Path string
	// Type is the type in one word: primitives as they are, lists and
	// maps with their element types (list<string>), structs as "struct".
	Type     string
	Required bool
	Doc      string
}

// Describe reports a table's schema, partitioning, sort order, properties
// and committed source positions.
func Describe(tbl *icetable.Table) Description {
	d := Description{TableInfo: table.Describe(tbl)}
	sc := tbl.Schema()
	var walk func(prefix string, fields []table.Field)
	var descend func(path string, f table.Field)
	walk = func(prefix string, fields []table.Field) {
		for _, f := range fields {
			path := f.Name
			if prefix != "" {
				path = prefix + "." + f.Name
			}
			c := Column{Path: path, Type: typeLabel(f), Required: f.Required, Doc: f.Doc}
			if nf, ok := sc.FindFieldByName(path); ok {
				c.ID = nf.ID
			}
			d.Columns = append(d.Columns, c)
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
	walk("", d.Schema)
	if len(sc.IdentifierFieldIDs) > 0 {
		keys := int64(0)
		if s := tbl.CurrentSnapshot(); s != nil && s.Summary != nil {
			keys = max(0, summaryInt(s.Summary.Properties, "total-records")-summaryInt(s.Summary.Properties, "total-position-deletes"))
		}
		d.KeyIndex = &KeyIndex{Keys: keys, Bytes: writer.EstimateKeyIndexBytes(sc, keys), Location: writer.KeyIndexLocation,
			Persisted: writer.ReadPersistedKeyIndex("", tbl.Metadata().TableUUID().String())}
	}
	return d
}

func summaryInt(props map[string]string, key string) int64 {
	v, _ := strconv.ParseInt(props[key], 10, 64)
	return v
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

// Snapshots reports the table's snapshots, oldest first, with their
// summaries and committed source positions.
func Snapshots(tbl *icetable.Table) []table.SnapshotInfo { return table.DescribeSnapshots(tbl) }

// File is one data file of a table's current snapshot.
type File struct {
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

// Files reports the data files of the table's current snapshot, sorted by
// partition and path.
func Files(ctx context.Context, tbl *icetable.Table) ([]File, error) {
	name := strings.Join(tbl.Identifier(), ".")
	scan := tbl.Scan()
	tasks, err := scan.PlanFiles(ctx)
	if cerr := scan.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("plan files of %s: %w", name, err)
	}
	files := make([]File, 0, len(tasks))
	for _, t := range tasks {
		df := t.File
		files = append(files, File{
			Path:          df.FilePath(),
			Partition:     PartitionPath(tbl, df),
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
	return files, nil
}

// PartitionPath renders a data file's partition values as Iceberg lays
// them out in paths: name=value/name=value, values in human form; empty
// when the file's spec is unpartitioned.
func PartitionPath(tbl *icetable.Table, df iceberg.DataFile) string {
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
