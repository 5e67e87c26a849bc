package compaction_test

import (
	"slices"
	"testing"

	"github.com/apache/iceberg-go"

	"github.com/floe-lake/floe/compaction"
)

// TestPlanKeyedGroupPartitions: a keyed group never mixes partitions, and
// of the partitions with a due group the one with the most files goes
// first, the same in any order.
func TestPlanKeyedGroupPartitions(t *testing.T) {
	o := compaction.PlanOptions{
		TargetFileSizeBytes: 1000, MinFileSizeBytes: 750, MaxFileSizeBytes: 1800,
		MinInputFiles: 3, DeleteFileThreshold: 1 << 30, DeleteRatioThreshold: 0.3,
	}
	f := func(part, path string) compaction.FileInfo {
		return compaction.FileInfo{Path: path, Partition: part, SizeBytes: 10, Records: 1}
	}
	cases := []struct {
		name  string
		files []compaction.FileInfo
		want  []string
		part  string
	}{
		{name: "small files spread over partitions are not due",
			files: []compaction.FileInfo{f("p1", "a"), f("p1", "b"), f("p2", "c"), f("p2", "d")}},
		{name: "the partition with most files",
			files: []compaction.FileInfo{f("p1", "a"), f("p1", "b"), f("p1", "c"), f("p2", "d"), f("p2", "e"), f("p2", "f"), f("p2", "g")},
			want:  []string{"d", "e", "f", "g"}, part: "p2"},
		{name: "a tie goes to the first partition",
			files: []compaction.FileInfo{f("p2", "d"), f("p2", "e"), f("p2", "f"), f("p1", "a"), f("p1", "b"), f("p1", "c")},
			want:  []string{"a", "b", "c"}, part: "p1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, files := range [][]compaction.FileInfo{tc.files, reversed(tc.files)} {
				g := compaction.PlanKeyedGroup(files, o)
				var got []string
				part := ""
				if g != nil {
					part = g.Partition
					for _, fi := range g.Files {
						got = append(got, fi.Path)
						if fi.Partition != g.Partition {
							t.Errorf("file %s of partition %s in a group of %s", fi.Path, fi.Partition, g.Partition)
						}
					}
					slices.Sort(got)
				}
				if !slices.Equal(got, tc.want) || part != tc.part {
					t.Errorf("group %v of %q, want %v of %q", got, part, tc.want, tc.part)
				}
			}
		})
	}
}

// TestPartitionKey: one partition value carried in different Go types (as
// a writer computes it, as a manifest reads it) gives one key; different
// values, null, and another spec differ.
func TestPartitionKey(t *testing.T) {
	spec := iceberg.NewPartitionSpecID(3,
		iceberg.PartitionField{SourceIDs: []int{1}, FieldID: 1000, Name: "ts_day", Transform: iceberg.DayTransform{}},
		iceberg.PartitionField{SourceIDs: []int{2}, FieldID: 1001, Name: "region", Transform: iceberg.IdentityTransform{}},
	)
	file := func(spec iceberg.PartitionSpec, day, region any) iceberg.DataFile {
		t.Helper()
		b, err := iceberg.NewDataFileBuilder(spec, iceberg.EntryContentData, "f", iceberg.ParquetFile,
			map[int]any{1000: day, 1001: region}, nil, nil, 1, 100)
		if err != nil {
			t.Fatal(err)
		}
		return b.Build()
	}
	key := compaction.PartitionKey
	base := key(file(spec, iceberg.Date(20454), "eu"))
	if k := key(file(spec, int32(20454), "eu")); k != base {
		t.Error("a day as int32 and as iceberg.Date differ")
	}
	if k := key(file(spec, iceberg.Date(20454), []byte("eu"))); k != base {
		t.Error("a string value as []byte differs")
	}
	for name, df := range map[string]iceberg.DataFile{
		"another day":    file(spec, iceberg.Date(20455), "eu"),
		"null region":    file(spec, iceberg.Date(20454), nil),
		"another region": file(spec, iceberg.Date(20454), "e"),
		"another spec":   file(iceberg.NewPartitionSpecID(4, spec.Field(0), spec.Field(1)), iceberg.Date(20454), "eu"),
	} {
		if key(df) == base {
			t.Errorf("%s: same key", name)
		}
	}
	if key(file(spec, iceberg.Date(20454), nil)) == key(file(spec, iceberg.Date(20454), "")) {
		t.Error("null and the empty string: same key")
	}
}
