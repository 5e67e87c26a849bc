package tabletest

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"
)

// StoredFiles lists every file under the table's location, as local paths
// (see Normalize), sorted; an error fails the test.
func StoredFiles(t testing.TB, tbl *icetable.Table) []string {
	t.Helper()
	fsys, err := tbl.FS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l, ok := fsys.(iceio.ListableIO)
	if !ok {
		t.Fatalf("storage %T cannot list", fsys)
	}
	var out []string
	err = l.WalkDir(tbl.Location(), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, Normalize(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// ReferencedFiles lists every file the table's metadata references: the
// current and previous metadata files, and each retained snapshot's
// manifest list, manifests and live data and delete files; as local paths
// (see Normalize), sorted.
func ReferencedFiles(t testing.TB, tbl *icetable.Table) []string {
	t.Helper()
	fsys, err := tbl.FS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{Normalize(tbl.MetadataLocation()): true}
	for e := range tbl.Metadata().PreviousFiles() {
		set[Normalize(e.MetadataFile)] = true
	}
	for _, s := range tbl.Metadata().Snapshots() {
		set[Normalize(s.ManifestList)] = true
		mans, err := s.Manifests(fsys)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mans {
			set[Normalize(m.FilePath())] = true
			for e, err := range m.Entries(fsys, true) {
				if err != nil {
					t.Fatal(err)
				}
				set[Normalize(e.DataFile().FilePath())] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Normalize makes local paths and file:// URLs comparable.
func Normalize(p string) string {
	return strings.TrimPrefix(strings.TrimPrefix(p, "file://"), "file:")
}

// PartitionGroups groups the data files of tasks by partition into
// compaction groups (sizes summed), leaving out partitions with one file.
func PartitionGroups(tasks []icetable.FileScanTask) []icetable.CompactionTaskGroup {
	byPart := map[string][]icetable.FileScanTask{}
	for _, task := range tasks {
		k := fmt.Sprint(task.File.Partition())
		byPart[k] = append(byPart[k], task)
	}
	var groups []icetable.CompactionTaskGroup
	for k, ts := range byPart {
		if len(ts) < 2 {
			continue
		}
		g := icetable.CompactionTaskGroup{PartitionKey: k, Tasks: ts}
		for _, task := range ts {
			g.TotalSizeBytes += task.File.FileSizeBytes()
		}
		groups = append(groups, g)
	}
	return groups
}

// LiveFiles lists the current snapshot's live data files (sorted) and
// position-delete files.
func LiveFiles(t testing.TB, tbl *icetable.Table) (data, deletes []string) {
	t.Helper()
	fsys, err := tbl.FS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	mans, err := tbl.CurrentSnapshot().Manifests(fsys)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mans {
		for e, err := range m.Entries(fsys, true) {
			if err != nil {
				t.Fatal(err)
			}
			if e.DataFile().ContentType() == iceberg.EntryContentData {
				data = append(data, e.DataFile().FilePath())
			} else {
				deletes = append(deletes, e.DataFile().FilePath())
			}
		}
	}
	slices.Sort(data)
	return data, deletes
}
