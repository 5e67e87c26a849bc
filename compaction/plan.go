package compaction

import (
	"cmp"
	"fmt"
	"slices"
)

// PlanOptions are the planner's thresholds, resolved for one table.
type PlanOptions struct {
	// TargetFileSizeBytes bounds a file group: the planner packs candidates
	// into groups of at most this many input bytes (a single candidate
	// larger than it forms a group of its own).
	TargetFileSizeBytes int64
	// MinFileSizeBytes: smaller files are candidates.
	MinFileSizeBytes int64
	// MaxFileSizeBytes: larger files are never candidates for their size.
	MaxFileSizeBytes int64
	// MinInputFiles a partition and a group need; groups with a file over
	// DeleteFileThreshold are exempt.
	MinInputFiles int
	// DeleteFileThreshold makes a file with this many delete files a
	// candidate whatever its size.
	DeleteFileThreshold int
	// DeleteRatioThreshold makes a file whose deleted rows are at least
	// this fraction of its rows a candidate whatever its size (Iceberg's
	// delete-ratio-threshold). 0 disables it: the daemon does not know
	// how many rows its delete files delete; a keyed writer does
	// (KeyedConfig).
	DeleteRatioThreshold float64
}

func (o PlanOptions) validate() error {
	switch {
	case o.TargetFileSizeBytes <= 0:
		return fmt.Errorf("compaction.target-file-size-bytes: %d must be positive", o.TargetFileSizeBytes)
	case o.MinFileSizeBytes < 0 || o.MinFileSizeBytes > o.TargetFileSizeBytes:
		return fmt.Errorf("compaction.min-file-size-bytes: %d must be in [0, target-file-size-bytes=%d]", o.MinFileSizeBytes, o.TargetFileSizeBytes)
	case o.MaxFileSizeBytes < o.TargetFileSizeBytes:
		return fmt.Errorf("compaction.max-file-size-bytes: %d must be at least target-file-size-bytes=%d", o.MaxFileSizeBytes, o.TargetFileSizeBytes)
	case o.MinInputFiles < 1:
		return fmt.Errorf("compaction.min-input-files: %d must be at least 1", o.MinInputFiles)
	case o.DeleteFileThreshold < 1:
		return fmt.Errorf("compaction.delete-file-threshold: %d must be at least 1", o.DeleteFileThreshold)
	case o.DeleteRatioThreshold < 0 || o.DeleteRatioThreshold > 1:
		return fmt.Errorf("compaction.delete-ratio-threshold: %v must be in [0, 1]", o.DeleteRatioThreshold)
	}
	return nil
}

// FileInfo is what the planner knows of one live data file.
type FileInfo struct {
	// Path identifies the file.
	Path string
	// Partition is an opaque key: files with the same key are in the same
	// partition of the same partition spec.
	Partition string
	SizeBytes int64
	Records   int64
	// Deletes counts the delete files (position, equality, deletion
	// vectors) that apply to the file.
	Deletes int
	// DeletedRecords counts the file's deleted rows, where the caller
	// knows them (a keyed writer); 0 otherwise.
	DeletedRecords int64
}

// Reasons a group is rewritten.
const (
	ReasonSmallFiles = "small-files" // enough small files
	ReasonDeletes    = "deletes"     // a file over delete-file-threshold
)

// PlannedGroup is a set of files of one partition to rewrite together.
type PlannedGroup struct {
	Partition string
	Files     []FileInfo
	SizeBytes int64
	Records   int64
	Reason    string
}

// Plan is the planner's output for a table.
type Plan struct {
	// Groups are ordered by partition, then by size, largest first.
	Groups []PlannedGroup
	// FilesPerPartition counts the live data files of every partition.
	FilesPerPartition map[string]int
	// Candidates is how many files were candidates; Skipped how many of
	// them no group took (too few in their partition or their bin).
	Candidates, Skipped int
	// Owner is the table's compaction owner (PropCompactionOwner) when it
	// is not the daemon: the daemon then plans no group for the table.
	Owner string
}

// MaxFilesPerPartition is the largest file count of any partition.
func (p Plan) MaxFilesPerPartition() int {
	n := 0
	for _, c := range p.FilesPerPartition {
		n = max(n, c)
	}
	return n
}

// PlanGroups bin-packs the candidate files of each partition into groups.
//
// A file is a candidate when it is smaller than MinFileSizeBytes (and not
// larger than MaxFileSizeBytes), or when DeleteFileThreshold or more delete
// files apply to it, whatever its size: rewriting it folds the deletes
// away. A partition with fewer than MinInputFiles candidates and no such
// delete-laden file is skipped. The candidates of a partition are packed
// first-fit-decreasing into bins of at most TargetFileSizeBytes; a bin
// becomes a group when it holds at least MinInputFiles files (and at least
// two), or any delete-laden file. Files over MaxFileSizeBytes without
// deletes are left alone: splitting large files is not this planner's job.
//
// PlanGroups is deterministic: the same files, in any order, give the same
// plan.
func PlanGroups(files []FileInfo, o PlanOptions) Plan {
	plan := Plan{FilesPerPartition: map[string]int{}}
	byPartition := map[string][]FileInfo{}
	for _, f := range files {
		plan.FilesPerPartition[f.Partition]++
		if !o.candidate(f) {
			continue
		}
		plan.Candidates++
		byPartition[f.Partition] = append(byPartition[f.Partition], f)
	}
	partitions := make([]string, 0, len(byPartition))
	for p := range byPartition {
		partitions = append(partitions, p)
	}
	slices.Sort(partitions)

	for _, p := range partitions {
		cands := byPartition[p]
		laden := slices.ContainsFunc(cands, o.deleteLaden)
		if len(cands) < o.MinInputFiles && !laden {
			plan.Skipped += len(cands)
			continue
		}
		for _, g := range o.pack(p, cands) {
			hasLaden := slices.ContainsFunc(g.Files, o.deleteLaden)
			switch {
			case hasLaden:
				g.Reason = ReasonDeletes
			case len(g.Files) >= max(o.MinInputFiles, 2):
				g.Reason = ReasonSmallFiles
			default:
				plan.Skipped += len(g.Files)
				continue
			}
			plan.Groups = append(plan.Groups, g)
		}
	}
	return plan
}

func (o PlanOptions) deleteLaden(f FileInfo) bool {
	if o.DeleteRatioThreshold > 0 && f.Records > 0 && f.DeletedRecords > 0 &&
		float64(f.DeletedRecords) >= o.DeleteRatioThreshold*float64(f.Records) {
		return true
	}
	return f.Deletes >= o.DeleteFileThreshold
}

func (o PlanOptions) candidate(f FileInfo) bool {
	if o.deleteLaden(f) {
		return true
	}
	// MinFileSizeBytes <= TargetFileSizeBytes <= MaxFileSizeBytes.
	return f.SizeBytes < o.MinFileSizeBytes
}

// pack packs one partition's candidates first-fit-decreasing into bins of
// at most TargetFileSizeBytes.
func (o PlanOptions) pack(partition string, files []FileInfo) []PlannedGroup {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b FileInfo) int {
		if c := cmp.Compare(b.SizeBytes, a.SizeBytes); c != 0 {
			return c
		}
		return cmp.Compare(a.Path, b.Path)
	})
	var bins []PlannedGroup
	for _, f := range files {
		placed := false
		for i := range bins {
			if bins[i].SizeBytes+f.SizeBytes <= o.TargetFileSizeBytes {
				bins[i].Files = append(bins[i].Files, f)
				bins[i].SizeBytes += f.SizeBytes
				bins[i].Records += f.Records
				placed = true
				break
			}
		}
		if !placed {
			bins = append(bins, PlannedGroup{Partition: partition, Files: []FileInfo{f}, SizeBytes: f.SizeBytes, Records: f.Records})
		}
	}
	return bins
}
