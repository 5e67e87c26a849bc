package compaction_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/floe-lake/floe/compaction"
)

// files makes FileInfos from a compact notation: "p:size" or
// "p:size:deletes", named p-0, p-1, … in order.
func files(specs ...string) []compaction.FileInfo {
	var out []compaction.FileInfo
	n := map[string]int{}
	for _, s := range specs {
		var p string
		var size int64
		var deletes int
		parts := strings.Split(s, ":")
		p = parts[0]
		if _, err := fmt.Sscan(parts[1], &size); err != nil {
			panic("bad test file spec " + s) // test data is literal; a typo should be loud
		}
		if len(parts) > 2 {
			if _, err := fmt.Sscan(parts[2], &deletes); err != nil {
				panic("bad test file spec " + s)
			}
		}
		out = append(out, compaction.FileInfo{Path: fmt.Sprintf("%s-%d", p, n[p]), Partition: p, SizeBytes: size, Records: size, Deletes: deletes})
		n[p]++
	}
	return out
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// groupView renders a plan's groups as "partition:[sizes]:reason".
func groupView(p compaction.Plan) []string {
	var out []string
	for _, g := range p.Groups {
		sizes := make([]int64, len(g.Files))
		for i, f := range g.Files {
			sizes[i] = f.SizeBytes
		}
		out = append(out, fmt.Sprintf("%s:%v:%s", g.Partition, sizes, g.Reason))
	}
	return out
}

func TestPlanGroups(t *testing.T) {
	// Target 100, min 75, max 180, as Iceberg's ratios.
	opts := compaction.PlanOptions{TargetFileSizeBytes: 100, MinFileSizeBytes: 75, MaxFileSizeBytes: 180, MinInputFiles: 3, DeleteFileThreshold: 2}
	for _, tc := range []struct {
		name       string
		files      []compaction.FileInfo
		opts       *compaction.PlanOptions
		want       []string
		candidates int
		skipped    int
		maxFiles   int
	}{
		{name: "empty table"},
		{
			name:  "too few candidates in the partition",
			files: files("a:10", "a:10", "a:90", "a:90"),
			want:  nil, candidates: 2, skipped: 2, maxFiles: 4,
		},
		{
			name:  "enough small files make one group",
			files: files("a:10", "a:20", "a:30", "a:80"),
			want:  []string{"a:[30 20 10]:small-files"}, candidates: 3, maxFiles: 4,
		},
		{
			name:  "first-fit decreasing into bins of the target size",
			files: files(repeat("a:30", 10)...),
			// 3×30 per bin; the tenth file is alone and not rewritten.
			want:       []string{"a:[30 30 30]:small-files", "a:[30 30 30]:small-files", "a:[30 30 30]:small-files"},
			candidates: 10, skipped: 1, maxFiles: 10,
		},
		{
			name:  "mixed sizes pack tightly",
			files: files("a:70", "a:60", "a:40", "a:30", "a:20", "a:10", "a:5", "a:5"),
			// 70+30, 60+40, then 20+10+5+5.
			want:       []string{"a:[70 30]:small-files", "a:[60 40]:small-files", "a:[20 10 5 5]:small-files"},
			candidates: 8, maxFiles: 8,
			opts: &compaction.PlanOptions{TargetFileSizeBytes: 100, MinFileSizeBytes: 75, MaxFileSizeBytes: 180, MinInputFiles: 2, DeleteFileThreshold: 2},
		},
		{
			name:  "a file with enough deletes is rewritten whatever its size",
			files: files("a:150:2", "a:10"),
			want:  []string{"a:[150]:deletes"}, candidates: 2, skipped: 1, maxFiles: 2,
		},
		{
			name:  "a file with deletes takes small files along",
			files: files("a:50:3", "a:10", "a:10"),
			want:  []string{"a:[50 10 10]:deletes"}, candidates: 3, maxFiles: 3,
		},
		{
			name:  "oversized files without deletes are left alone",
			files: files("a:500", "a:500:1", "a:200", "a:10", "a:10"),
			want:  nil, candidates: 2, skipped: 2, maxFiles: 5,
		},
		{
			name:  "right-sized files are not candidates",
			files: files("a:75", "a:99", "a:100", "a:180"),
			want:  nil, candidates: 0, maxFiles: 4,
		},
		{
			name:  "partitions are planned apart and in order",
			files: files("b:10", "a:10", "b:10", "a:10", "b:10", "a:10", "c:10", "c:10"),
			want:  []string{"a:[10 10 10]:small-files", "b:[10 10 10]:small-files"}, candidates: 8, skipped: 2, maxFiles: 3,
		},
		{
			name:  "one small file is never a group on its own",
			files: files("a:10"),
			opts:  &compaction.PlanOptions{TargetFileSizeBytes: 100, MinFileSizeBytes: 75, MaxFileSizeBytes: 180, MinInputFiles: 1, DeleteFileThreshold: 2},
			want:  nil, candidates: 1, skipped: 1, maxFiles: 1,
		},
		{
			name:  "1,440 commits a day make 1,440 files; they pack into full groups",
			files: files(repeat("day:1", 1440)...),
			// 100 per group: 14 groups and a last one of 40.
			want: append(repeat("day:["+strings.TrimSuffix(strings.Repeat("1 ", 100), " ")+"]:small-files", 14),
				"day:["+strings.TrimSuffix(strings.Repeat("1 ", 40), " ")+"]:small-files"),
			candidates: 1440, maxFiles: 1440,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts
			if tc.opts != nil {
				o = *tc.opts
			}
			p := compaction.PlanGroups(tc.files, o)
			if got := groupView(p); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("groups:\n got %v\nwant %v", got, tc.want)
			}
			if p.Candidates != tc.candidates || p.Skipped != tc.skipped {
				t.Errorf("candidates %d, skipped %d; want %d, %d", p.Candidates, p.Skipped, tc.candidates, tc.skipped)
			}
			if p.MaxFilesPerPartition() != tc.maxFiles {
				t.Errorf("max files per partition %d, want %d", p.MaxFilesPerPartition(), tc.maxFiles)
			}
			for _, g := range p.Groups {
				var size int64
				for _, f := range g.Files {
					size += f.SizeBytes
				}
				if size != g.SizeBytes {
					t.Errorf("group size %d, files sum to %d", g.SizeBytes, size)
				}
				if len(g.Files) > 1 && size > o.TargetFileSizeBytes {
					t.Errorf("group of %d bytes exceeds the target %d", size, o.TargetFileSizeBytes)
				}
			}
			// The plan does not depend on the order files are listed in.
			shuffled := slices.Clone(tc.files)
			rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if got := compaction.PlanGroups(shuffled, o); !reflect.DeepEqual(got, p) {
				t.Errorf("plan changes with the order of the files")
			}
		})
	}
}
