package inspect

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/floe-lake/floe/internal/units"
	"github.com/floe-lake/floe/table"
)

// Printer writes floe table's reports: either indented JSON or tab-aligned columns.
type Printer struct {
	// W receives the output.
	W io.Writer
	// JSON selects indented JSON instead of columns.
	JSON bool
}

func (p Printer) encode(v any) error {
	enc := json.NewEncoder(p.W)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// table writes rows as aligned columns.
func (p Printer) table(rows [][]string) error {
	tw := tabwriter.NewWriter(p.W, 0, 4, 2, ' ', 0)
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

// List writes List's namespaces and tables.
func (p Printer) List(listing []Namespace) error {
	if p.JSON {
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

// Describe writes a table's description (JSON: its table.TableInfo).
func (p Printer) Describe(d Description) error {
	if p.JSON {
		return p.encode(struct {
			table.TableInfo
			KeyIndex *KeyIndex `json:"key-index,omitempty"`
		}{d.TableInfo, d.KeyIndex})
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
	if x := d.KeyIndex; x != nil {
		rows = append(rows, []string{"key-index", fmt.Sprintf("%d keys, %s in memory (estimated)", x.Keys, units.Bytes(x.Bytes))},
			[]string{"key-index-location", x.Location})
		if ps := x.Persisted; ps.Found {
			rows = append(rows, []string{"key-index-file", fmt.Sprintf("%s: %d keys, %s mapped, as of snapshot %d (writer %s)", ps.Dir, ps.Keys, units.Bytes(ps.Bytes), ps.Snapshot, ps.Writer)})
		} else if ps.Dir != "" {
			rows = append(rows, []string{"key-index-file", fmt.Sprintf("none on this host (%s: %s)", ps.Dir, ps.Problem)})
		}
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

// Snapshots writes a table's snapshots with their positions.
func (p Printer) Snapshots(snaps []table.SnapshotInfo) error {
	if p.JSON {
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

// Files writes the data files of a table at location (paths are shown
// relative to it).
func (p Printer) Files(files []File, location string) error {
	if p.JSON {
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
