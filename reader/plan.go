package reader

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
)

type unitKind int

const (
	// unitInsert reads tasks as inserted rows.
	unitInsert unitKind = iota
	// unitDelete reads tasks (data files a snapshot removed, with the
	// deletes that applied to them before) as deleted rows.
	unitDelete
	// unitDiff reads, as deleted rows, the rows of before missing from
	// after: one data file before and after a snapshot added deletes to it.
	unitDiff
)

// unit is a part of a read: some data files of one snapshot.
type unit struct {
	kind     unitKind
	snapshot int64
	ordinal  int32
	tasks    []icetable.FileScanTask
	// before and after, for unitDiff.
	before, after icetable.FileScanTask
}

func (u unit) files() []icetable.FileScanTask {
	if u.kind == unitDiff {
		return []icetable.FileScanTask{u.before, u.after}
	}
	return u.tasks
}

// planSnapshot plans the changes one snapshot made.
func (r *Reader) planSnapshot(ctx context.Context, tbl *icetable.Table, s *icetable.Snapshot, ordinal int32) ([]unit, error) {
	var op icetable.Operation
	if s.Summary != nil {
		op = s.Summary.Operation
	}
	switch op {
	case icetable.OpReplace:
		// Compaction rewrote rows that were read before: nothing new.
		return nil, nil
	case icetable.OpAppend:
		tasks, err := r.appendTasks(ctx, tbl, s)
		if err != nil {
			return nil, err
		}
		return []unit{{kind: unitInsert, snapshot: s.SnapshotID, ordinal: ordinal, tasks: tasks}}, nil
	case "":
		return nil, fmt.Errorf("read %s: snapshot %d has no operation in its summary", r.name, s.SnapshotID)
	}
	if r.cfg.Mode == ModeAppend {
		return nil, fmt.Errorf("read %s: %w: snapshot %d has operation %q, which can remove or replace rows that an append read cannot return; read the table's changelog instead (changelog mode)",
			r.name, ErrNotAppendOnly, s.SnapshotID, op)
	}
	return r.diffPlan(ctx, tbl, s, ordinal)
}

// appendTasks plans the data files an append snapshot added, with
// iceberg-go's incremental append planning restricted to that one snapshot:
// it reads the snapshot's manifest list and only the manifests the snapshot
// itself added, pruned by the filter (partition summaries, partition
// values, column statistics).
//
// iceberg-go's planner first walks the ending snapshot's whole ancestry,
// deep-copying every snapshot of the table's history (about 5ms for 1,440
// snapshots, more than reading a minute of rows). It is therefore given a
// view of the metadata that knows this one snapshot only (snapshotView): the
// walk stops there, and everything else (schemas, specs, properties) is the
// table's.
//
// Without a filter there is nothing to prune, and the read plans from the
// reader's manifest cache instead (cachedAppendTasks).
func (r *Reader) appendTasks(ctx context.Context, tbl *icetable.Table, s *icetable.Snapshot) ([]icetable.FileScanTask, error) {
	if _, all := r.filter.(iceberg.AlwaysTrue); all {
		return r.cachedAppendTasks(ctx, tbl, s)
	}
	view := icetable.New(tbl.Identifier(), snapshotView{Metadata: tbl.Metadata(), snap: *s},
		tbl.MetadataLocation(), tbl.FS, nil)
	inc := view.NewIncrementalAppendScan(r.planOptions()...).
		FromSnapshotInclusive(s.SnapshotID).ToSnapshot(s.SnapshotID)
	tasks, err := inc.PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan files of %s snapshot %d: %w", r.name, s.SnapshotID, err)
	}
	for i := range tasks {
		// The residual was bound to the snapshot's schema; the read binds
		// the filter to the schema it reads with.
		tasks[i].Residual = nil
	}
	return tasks, nil
}

// cachedAppendTasks plans the data files append snapshot s added from the
// reader's manifest cache: the data manifests of s's manifest list that s
// added, and in them the entries s added, sorted by path, as
// IncrementalAppendScan plans them when no filter prunes anything.
func (r *Reader) cachedAppendTasks(ctx context.Context, tbl *icetable.Table, s *icetable.Snapshot) ([]icetable.FileScanTask, error) {
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan files of %s snapshot %d: get file IO: %w", r.name, s.SnapshotID, err)
	}
	mfs, err := r.cache.manifests(fs, s)
	if err != nil {
		return nil, fmt.Errorf("plan files of %s snapshot %d: read manifest list: %w", r.name, s.SnapshotID, err)
	}
	var tasks []icetable.FileScanTask
	for _, mf := range mfs {
		if mf.ManifestContent() != iceberg.ManifestContentData || mf.SnapshotID() != s.SnapshotID {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		entries, err := r.cache.entries(fs, mf)
		if err != nil {
			return nil, fmt.Errorf("plan files of %s snapshot %d: %w", r.name, s.SnapshotID, err)
		}
		for _, e := range entries {
			if e.Status() != iceberg.EntryStatusADDED || e.SnapshotID() != s.SnapshotID {
				continue
			}
			df := e.DataFile()
			task := icetable.FileScanTask{File: df, Start: 0, Length: df.FileSizeBytes(), FirstRowID: df.FirstRowID()}
			if seq := e.SequenceNum(); seq >= 0 {
				task.DataSequenceNumber = &seq
			}
			tasks = append(tasks, task)
		}
	}
	slices.SortFunc(tasks, func(a, b icetable.FileScanTask) int { return strings.Compare(a.File.FilePath(), b.File.FilePath()) })
	return tasks, nil
}

// snapshotView is table metadata in which one snapshot is the only one.
type snapshotView struct {
	icetable.Metadata
	snap icetable.Snapshot
}

// SnapshotByID knows the view's snapshot only.
func (v snapshotView) SnapshotByID(id int64) *icetable.Snapshot {
	if id != v.snap.SnapshotID {
		return nil
	}
	s := v.snap
	return &s
}

// Snapshots lists the view's snapshot.
func (v snapshotView) Snapshots() []icetable.Snapshot { return []icetable.Snapshot{v.snap} }

// Equals compares the underlying metadata.
func (v snapshotView) Equals(other icetable.Metadata) bool {
	if o, ok := other.(snapshotView); ok {
		return v.snap.SnapshotID == o.snap.SnapshotID && v.Metadata.Equals(o.Metadata)
	}
	return false
}

// diffPlan plans the changelog of a snapshot that can remove rows as the
// difference between the table as of its parent and as of itself.
func (r *Reader) diffPlan(ctx context.Context, tbl *icetable.Table, s *icetable.Snapshot, ordinal int32) ([]unit, error) {
	var before map[string]icetable.FileScanTask
	if s.ParentSnapshotID != nil {
		parent := *s.ParentSnapshotID
		if tbl.SnapshotByID(parent) == nil {
			return nil, fmt.Errorf("read %s: changes of snapshot %d: %w: its parent %d expired, so the rows it removed cannot be computed; backfill the table as of snapshot %d and follow from there",
				r.name, s.SnapshotID, ErrCursorExpired, parent, s.SnapshotID)
		}
		var err error
		if before, err = r.liveFiles(ctx, tbl, parent); err != nil {
			return nil, err
		}
	}
	after, err := r.liveFiles(ctx, tbl, s.SnapshotID)
	if err != nil {
		return nil, err
	}
	removed := unit{kind: unitDelete, snapshot: s.SnapshotID, ordinal: ordinal}
	added := unit{kind: unitInsert, snapshot: s.SnapshotID, ordinal: ordinal}
	var diffs []unit
	for _, path := range sortedKeys(before) {
		b := before[path]
		a, ok := after[path]
		switch {
		case !ok:
			removed.tasks = append(removed.tasks, b)
		case !slices.Equal(deletePaths(b), deletePaths(a)):
			diffs = append(diffs, unit{kind: unitDiff, snapshot: s.SnapshotID, ordinal: ordinal, before: b, after: a})
		}
	}
	for _, path := range sortedKeys(after) {
		if _, ok := before[path]; !ok {
			added.tasks = append(added.tasks, after[path])
		}
	}
	var out []unit
	if len(removed.tasks) > 0 {
		out = append(out, removed)
	}
	out = append(out, diffs...)
	if len(added.tasks) > 0 {
		out = append(out, added)
	}
	return out, nil
}

// liveFiles plans a full read of the table as of snapshot id: every live
// data file matching the filter, with the delete files that apply to it.
func (r *Reader) liveFiles(ctx context.Context, tbl *icetable.Table, id int64) (map[string]icetable.FileScanTask, error) {
	tasks, err := tbl.Scan(r.planOptions(icetable.WithSnapshotID(id))...).PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan files of %s as of snapshot %d: %w", r.name, id, err)
	}
	out := make(map[string]icetable.FileScanTask, len(tasks))
	for _, t := range tasks {
		t.Residual = nil
		if prev, ok := out[t.File.FilePath()]; ok {
			// A file split into ranges: keep one whole-file task.
			prev.Start, prev.Length = 0, prev.File.FileSizeBytes()
			out[t.File.FilePath()] = prev
			continue
		}
		out[t.File.FilePath()] = t
	}
	return out, nil
}

// deletePaths identifies the delete files applied to a task's data file.
func deletePaths(t icetable.FileScanTask) []string {
	var out []string
	for _, group := range [][]iceberg.DataFile{t.DeleteFiles, t.EqualityDeleteFiles, t.DeletionVectorFiles} {
		for _, f := range group {
			id := f.FilePath()
			if off := f.ContentOffset(); off != nil {
				// Deletion vectors of several data files share a Puffin file.
				id += "@" + strconv.FormatInt(*off, 10)
			}
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// SnapshotPlan is a read of a whole table as of one snapshot, planned but
// not read, for a caller that reads the data files itself (aggregate's
// backfill decodes Parquet directly). Tasks are the data files Snapshot
// would read, pruned by the reader's filter, with the delete files that
// apply to them; such a caller must apply the deletes and Filter, the
// reader's whole row filter, to every row itself.
type SnapshotPlan struct {
	Table *icetable.Table
	// Snapshot is nil for a table without snapshots (no tasks).
	Snapshot *icetable.Snapshot
	// Schema is the snapshot's schema (the table's current one without a
	// snapshot): the schema Snapshot reads with.
	Schema *iceberg.Schema
	Filter iceberg.BooleanExpression
	Tasks  []icetable.FileScanTask
}

// PlanSnapshot plans what Snapshot reads, as of the table's current
// metadata, without reading it.
func (r *Reader) PlanSnapshot(ctx context.Context, at At) (*SnapshotPlan, error) {
	tbl, err := r.Load(ctx)
	if err != nil {
		return nil, err
	}
	snap, err := r.resolve(tbl, at)
	if err != nil {
		return nil, err
	}
	p := &SnapshotPlan{Table: tbl, Snapshot: snap, Filter: r.filter}
	var extra []icetable.ScanOption
	if snap != nil {
		extra = append(extra, icetable.WithSnapshotID(snap.SnapshotID))
	}
	if p.Schema, err = tbl.Scan(extra...).Projection(); err != nil {
		return nil, fmt.Errorf("read schema of %s: %w", r.name, err)
	}
	if snap == nil {
		return p, nil
	}
	if p.Tasks, err = tbl.Scan(r.planOptions(extra...)...).PlanFiles(ctx); err != nil {
		return nil, fmt.Errorf("plan read of %s at snapshot %d: %w", r.name, snap.SnapshotID, err)
	}
	return p, nil
}
