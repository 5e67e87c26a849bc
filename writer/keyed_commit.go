package writer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/table"
)

func (k *KeyedTable) flush(ctx context.Context) error {
	k.io.Lock()
	defer k.io.Unlock()
	return k.flushLocked(ctx)
}

// flushLocked writes the buffered live rows into data files, one per
// partition they fall in, and stages them with the buffered deletes; k.io
// must be held.
func (k *KeyedTable) flushLocked(ctx context.Context) error {
	k.mu.Lock()
	if err := k.failedLocked(); err != nil {
		k.mu.Unlock()
		return err
	}
	recs, keys, pend, dels := k.recs, k.keys, k.pend, k.dels
	nbytes, ev := k.bufBytes, k.event
	pos := k.pending.Clone()
	sc, tbl := k.schema, k.tbl
	k.recs, k.keys, k.pend, k.dels = nil, nil, map[string]uint64{}, nil
	k.bufBytes, k.bufRows = 0, 0
	k.inflight = nbytes
	// Live rows, in arrival order, take positions 0, 1, ... of the new file
	// of their partition; the index points there from now on, so that
	// deletes applied while the files are written refer to them.
	var files []*flushFile
	var live int64
	if len(pend) > 0 {
		var err error
		files, live, err = k.placeLocked(tbl, recs, keys, pend)
		if err != nil {
			err = fmt.Errorf("partition rows of %s: %w", k.name, err)
			if k.err == nil {
				k.err = err
			}
			k.inflight = 0
			k.space.Broadcast()
			k.mu.Unlock()
			for _, r := range recs {
				r.Release()
			}
			return err
		}
	}
	// The changes so far are this flush's: later ones go to a new layer
	// (a full one may have spilled: the budget hears of it).
	k.index.Seal()
	k.reportIndexLocked()
	k.mu.Unlock()

	done := func() {
		k.mu.Lock()
		k.inflight = 0
		k.space.Broadcast()
		k.mu.Unlock()
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	if live > 0 {
		start := k.w.opts.Now()
		dfs := make([]iceberg.DataFile, len(files))
		for i, f := range files {
			df, err := writeKeyedData(ctx, tbl, sc, f.path, recs, f.rows, f.values)
			if err != nil {
				done()
				err = fmt.Errorf("write data file for %s: %w", k.name, err)
				k.fail(err)
				return err
			}
			dfs[i] = df
		}
		done()
		k.w.m.flushSeconds.WithLabelValues(k.name).Observe(k.w.opts.Now().Sub(start).Seconds())
		k.mu.Lock()
		for i, f := range files {
			st := k.files[f.fileNo]
			st.df, st.rows = dfs[i], f.live
		}
		k.mu.Unlock()
		for _, df := range dfs {
			k.staged = append(k.staged, df)
			k.stagedBytes += df.FileSizeBytes()
		}
		k.stagedRows += live
		if h := k.w.opts.Hooks.AfterFlush; h != nil {
			h(k.name)
		}
	} else {
		done()
	}
	k.stagedDels = append(k.stagedDels, dels...)
	k.stagedPos = pos
	if ev.After(k.stagedEvent) {
		k.stagedEvent = ev
	}
	return nil
}

// flushFile is one data file a flush writes: the live rows of one
// partition.
type flushFile struct {
	fileNo int
	path   string
	values map[int]any // partition values; nil when unpartitioned
	rows   keyedRows
	live   int64
}

// placeLocked assigns the live rows of a flush (pend: key → record<<32 |
// row) to new data files, one per partition, and points the index at
// their positions there; it returns the files and the number of live
// rows. k.mu and k.io must be held. The keys of pend are in no file the
// index knows (applyLocked deleted them from the index as they came), so
// they are added without a lookup.
func (k *KeyedTable) placeLocked(tbl *icetable.Table, recs []arrow.RecordBatch, keys [][]string, pend map[string]uint64) ([]*flushFile, int64, error) {
	masks := make([][]bool, len(recs))
	for i, r := range recs {
		masks[i] = make([]bool, r.NumRows())
	}
	narrow := 0
	for key, v := range pend {
		masks[v>>32][uint32(v)] = true
		if len(key) == 8 {
			narrow++
		}
	}
	k.index.Reserve(narrow, len(pend)-narrow)
	// Each live row's file, in arrival order, before anything changes.
	var parts *rowPartitioner
	var files []*flushFile
	var fileOf []*flushFile // per live row
	newFile := func() *flushFile {
		f := &flushFile{}
		files = append(files, f)
		return f
	}
	if k.partitioned {
		var err error
		if parts, err = newRowPartitioner(tbl.Spec(), tbl.Schema()); err != nil {
			return nil, 0, err
		}
		byKey := map[string]*flushFile{}
		fileOf = make([]*flushFile, 0, len(pend))
		for ri, m := range masks {
			for row, ok := range m {
				if !ok {
					continue
				}
				pk, err := parts.rowKey(recs[ri], row)
				if err != nil {
					return nil, 0, fmt.Errorf("row %d: %w", row, err)
				}
				f, ok := byKey[string(pk)]
				if !ok {
					f = newFile()
					f.values = parts.values(string(pk))
					f.rows.take = make([][]int32, len(recs))
					byKey[string(pk)] = f
				}
				f.rows.take[ri] = append(f.rows.take[ri], int32(row))
				fileOf = append(fileOf, f)
			}
		}
	} else {
		newFile().rows.masks = masks
	}
	for _, f := range files {
		k.fileSeq++
		f.path = k.dataPath(tbl, fmt.Sprintf("%05d-data", k.fileSeq))
		f.fileNo = len(k.files)
		k.files = append(k.files, &dataFileState{path: f.path})
	}
	var live int64
	for ri, m := range masks {
		for row, ok := range m {
			if !ok {
				continue
			}
			f := files[0]
			if fileOf != nil {
				f = fileOf[live]
			}
			key := keys[ri][row]
			k.index.Add(key, uint64(f.fileNo)<<32|uint64(f.live))
			f.live++
			live++
		}
	}
	return files, live, nil
}

// mergedPath returns the path maker of merged delete files; k.io must be
// held while it is used.
func (k *KeyedTable) mergedPath(tbl *icetable.Table) func() string {
	return func() string {
		k.fileSeq++
		return k.dataPath(tbl, fmt.Sprintf("%05d-deletes-merged", k.fileSeq))
	}
}

func (k *KeyedTable) dataPath(tbl *icetable.Table, suffix string) string {
	name := k.writeID + "-" + suffix + ".parquet"
	lp, err := tbl.LocationProvider()
	if err != nil {
		return strings.TrimRight(tbl.Location(), "/") + "/data/" + name
	}
	return lp.NewDataLocation(name)
}

// Commit flushes and commits everything applied with positions, as one
// snapshot. Rows applied without positions since the last positions are
// held back (see Changes.Next).
func (k *KeyedTable) Commit(ctx context.Context) error {
	return k.commit(ctx, false)
}

// commit flushes and commits; periodic allows a positions-only commit when
// PositionCommitInterval has passed.
func (k *KeyedTable) commit(ctx context.Context, periodic bool) error {
	k.io.Lock()
	defer k.io.Unlock()
	if err := k.flushLocked(ctx); err != nil {
		return err
	}
	k.mu.Lock()
	moved := !positionsEqual(k.stagedPos, k.committed)
	k.mu.Unlock()
	if !moved {
		// Nothing to commit, or rows of a load still waiting for their
		// positions.
		return nil
	}
	if len(k.staged) == 0 && len(k.stagedDels) == 0 {
		if !periodic || k.opts.PositionCommitInterval <= 0 || k.w.opts.Now().Sub(k.lastCommit) < k.opts.PositionCommitInterval {
			return nil
		}
		return k.commitLocked(ctx, "ingest", nil)
	}
	if err := k.commitLocked(ctx, "ingest", nil); err != nil {
		return err
	}
	// While a compaction step is in flight the delete merge waits: it
	// may drop the step's inputs. The step merges them when it commits
	// with late deletes, or runs the merge after it.
	if k.step == nil && k.deleteMergeDue() {
		if err := k.maintainLocked(ctx); err != nil {
			return err
		}
	}
	k.maybeCompactLocked()
	return nil
}

// commitLocked commits the staged files and deletes (possibly none) with
// the staged positions; alter, when set, stages a schema change in the
// same snapshot. k.io must be held.
func (k *KeyedTable) commitLocked(ctx context.Context, op string, alter func(*icetable.Transaction) error) error {
	k.mu.Lock()
	adv := table.Advance{Base: k.committed.Clone(), Next: k.stagedPos.Clone()}
	tbl, lastSnap := k.tbl, k.lastSnap
	k.mu.Unlock()
	files := k.staged
	var delFiles []iceberg.DataFile
	if len(k.stagedDels) > 0 {
		var err error
		delFiles, err = k.writePositionDeletes(ctx, tbl, func() string {
			k.fileSeq++
			return k.dataPath(tbl, fmt.Sprintf("%05d-deletes", k.fileSeq))
		})
		if err != nil {
			err = fmt.Errorf("write position deletes for %s: %w", k.name, err)
			k.fail(err)
			return err
		}
	}
	var nbytes int64
	for _, f := range files {
		nbytes += f.FileSizeBytes()
	}
	if h := k.w.opts.Hooks.BeforeCommit; h != nil {
		h(k.name)
	}
	start := k.w.opts.Now()
	advances := map[string]table.Advance{}
	if len(adv.Next) > 0 {
		advances[k.source] = adv
	}
	res, err := k.committer.Commit(ctx, table.Commit{
		Operation: op,
		Advances:  advances,
		Apply: func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
			if err := checkForeign(txn, lastSnap); err != nil {
				return err
			}
			if alter != nil {
				if err := alter(txn); err != nil {
					return err
				}
			}
			if len(files) == 0 && len(delFiles) == 0 {
				return txn.AddFiles(ctx, nil, props, true)
			}
			return txn.NewRowDelta(props).AddRows(files...).AddDeletes(delFiles...).Commit(ctx)
		},
	})
	dur := k.w.opts.Now().Sub(start)
	k.w.m.conflicts.WithLabelValues(k.name).Add(float64(res.Conflicts))
	if err != nil {
		var sce *SchemaChangeError
		if errors.As(err, &sce) {
			return sce
		}
		result := "error"
		if errors.Is(err, table.ErrFenced) {
			result = "fenced"
		}
		k.w.m.commits.WithLabelValues(k.name, result).Inc()
		k.fail(err)
		return err
	}
	if h := k.w.opts.Hooks.AfterCommit; h != nil {
		h(k.name)
	}
	result := "ok"
	if res.Recovered {
		result = "recovered"
	}
	k.w.m.commits.WithLabelValues(k.name, result).Inc()
	k.w.m.commitSeconds.WithLabelValues(k.name).Observe(dur.Seconds())
	k.w.m.rows.WithLabelValues(k.name).Add(float64(k.stagedRows))
	k.w.m.files.WithLabelValues(k.name).Add(float64(len(files)))
	k.w.m.fileBytes.WithLabelValues(k.name).Add(float64(nbytes))
	if !k.stagedEvent.IsZero() {
		k.w.m.eventTime.WithLabelValues(k.name).Set(float64(k.stagedEvent.UnixMilli()) / 1e3)
	}
	rows, ndels := k.stagedRows, len(k.stagedDels)
	k.mu.Lock()
	k.committed = adv.Next
	k.lastSnap = res.SnapshotID
	for _, loc := range k.stagedDels {
		f := k.files[loc>>32]
		f.dead = append(f.dead, uint32(loc))
	}
	// The staged changes are committed: into the committed index.
	folded := k.index.HeapBytes()
	k.index.Fold()
	folded -= k.index.HeapBytes()
	k.indexGaugesLocked()
	k.mu.Unlock()
	if folded >= keyedReturnLayerBytes && k.idx != nil {
		// A snapshot load's layer (200 MiB at 10M keys) is now in the
		// mapped index: give its heap back to the system at once rather
		// than as the scavenger gets to it, while the first compaction
		// steps start beside it.
		debug.FreeOSMemory()
	}
	k.liveDels = append(k.liveDels, delFiles...)
	k.staged, k.stagedDels, k.stagedRows, k.stagedBytes = nil, nil, 0, 0
	_ = k.persistIndexLocked()
	k.lastCommit = k.w.opts.Now()
	k.log.Debug("keyed commit", "snapshot", res.SnapshotID, "rows", rows, "deletes", ndels, "files", len(files), "attempts", res.Attempts)
	if k.w.opts.OnCommit != nil {
		k.w.opts.OnCommit(CommitInfo{
			Table: k.name, SnapshotID: res.SnapshotID, Rows: rows, Files: len(files), Bytes: nbytes,
			Attempts: res.Attempts, Conflicts: res.Conflicts, Duration: dur, Positions: res.Positions,
		})
	}
	return nil
}

// keyedReturnLayerBytes is the size of a folded layer from which its
// memory is returned to the system right after the fold.
const keyedReturnLayerBytes = 64 << 20

// checkForeign fails with ErrKeyIndexStale when a snapshot committed since
// ours (lastSnap) added or removed data or delete files: the key index no
// longer describes the table.
func checkForeign(txn *icetable.Transaction, lastSnap int64) error {
	st, err := txn.StagedTable()
	if err != nil {
		return err
	}
	for s := range table.CurrentAncestors(st.Metadata()) {
		if s.SnapshotID == lastSnap {
			return nil
		}
		if touchesFiles(s) {
			return fmt.Errorf("%w: snapshot %d (%s) changed files", ErrKeyIndexStale, s.SnapshotID, operation(s))
		}
	}
	if lastSnap == noSnapshot {
		return nil
	}
	return fmt.Errorf("%w: our last snapshot %d is no longer in the table's history", ErrKeyIndexStale, lastSnap)
}

func operation(s *icetable.Snapshot) string {
	if s.Summary == nil {
		return "unknown"
	}
	return string(s.Summary.Operation)
}

// touchesFiles reports whether a snapshot added or removed data or delete
// files, by its summary; a snapshot without a summary is assumed to.
func touchesFiles(s *icetable.Snapshot) bool {
	if s.Summary == nil {
		return true
	}
	for _, key := range []string{"added-data-files", "deleted-data-files", "added-delete-files", "removed-delete-files",
		"added-position-delete-files", "removed-position-delete-files", "added-equality-delete-files", "removed-equality-delete-files"} {
		if v, ok := s.Summary.Properties[key]; ok && v != "0" {
			return true
		}
	}
	return false
}

func positionsEqual(a, b table.Positions) bool {
	return maps.Equal(a, b)
}

// deleteMergeDue reports whether the table's position-delete files reach
// KeyedOptions.MaxDeleteFiles: in all, or in one partition of a
// partitioned table (a reader of a data file opens only the delete files
// of its partition, and a merge leaves one per partition). k.io must be
// held.
func (k *KeyedTable) deleteMergeDue() bool {
	due, all := k.dueDeletePartitions()
	return all || len(due) > 0
}

// dueDeletePartitions returns the partitions (compaction.PartitionKey)
// whose position-delete files reach KeyedOptions.MaxDeleteFiles, or all
// when the table is unpartitioned and its files reach it. k.io must be
// held.
func (k *KeyedTable) dueDeletePartitions() (map[string]bool, bool) {
	if !k.partitioned {
		return nil, len(k.liveDels) >= k.opts.MaxDeleteFiles
	}
	if len(k.liveDels) < k.opts.MaxDeleteFiles {
		return nil, false
	}
	per := map[string]int{}
	due := map[string]bool{}
	for _, df := range k.liveDels {
		key := compaction.PartitionKey(df)
		per[key]++
		if per[key] >= k.opts.MaxDeleteFiles {
			due[key] = true
		}
	}
	return due, false
}

// planMergeLocked plans the merge of the position-delete files of the
// partitions in parts (all when all), skipping data files skip says, and
// returns it with the delete files it leaves alone. k.mu must be held.
func (k *KeyedTable) planMergeLocked(parts map[string]bool, all bool, skip func(n int) bool) (*compaction.DeleteMerge, []iceberg.DataFile) {
	in := func(df iceberg.DataFile) bool { return all || parts[compaction.PartitionKey(df)] }
	var replace, rest []iceberg.DataFile
	for _, df := range k.liveDels {
		if in(df) {
			replace = append(replace, df)
		} else {
			rest = append(rest, df)
		}
	}
	var dels []compaction.FileDeletes
	for n, f := range k.files {
		if f.gone || f.df == nil || len(f.dead) == 0 || (skip != nil && skip(n)) || !in(f.df) {
			continue
		}
		pos := make([]int64, len(f.dead))
		for i, p := range f.dead {
			pos[i] = int64(p)
		}
		dels = append(dels, compaction.FileDeletes{File: f.df, Positions: pos})
	}
	return compaction.PlanDeleteMerge(replace, dels), rest
}

// maintainLocked merges the table's position-delete files into one (per
// partition; of a partitioned table, those of the partitions that reach
// KeyedOptions.MaxDeleteFiles) and drops the data files whose rows are all
// deleted, in a rewrite snapshot
// (operation replace) that changes no row and carries the positions
// forward: compaction's delete-merge step (compaction.DeleteMerge), planned
// from the deletes this table made and staged in its own commit, so that it
// never races them. k.io must be held and nothing staged.
func (k *KeyedTable) maintainLocked(ctx context.Context) error {
	due, all := k.dueDeletePartitions()
	if !k.partitioned {
		all = true // an explicit merge of an unpartitioned table merges all
	} else if len(due) == 0 {
		return nil
	}
	k.mu.Lock()
	tbl, lastSnap := k.tbl, k.lastSnap
	merge, rest := k.planMergeLocked(due, all, nil)
	k.mu.Unlock()
	if err := merge.Write(ctx, tbl, k.mergedPath(tbl)); err != nil {
		err = fmt.Errorf("merge position deletes of %s: %w", k.name, err)
		k.fail(err)
		return err
	}
	start := k.w.opts.Now()
	res, err := k.committer.Commit(ctx, table.Commit{
		Operation: "maintain",
		Apply: func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
			if err := checkForeign(txn, lastSnap); err != nil {
				return err
			}
			return merge.Stage(ctx, txn, props)
		},
	})
	if err != nil {
		err = fmt.Errorf("maintain %s: %w", k.name, err)
		k.fail(err)
		return err
	}
	dropped := make(map[string]bool, len(merge.Drop))
	for _, df := range merge.Drop {
		dropped[df.FilePath()] = true
	}
	k.mu.Lock()
	k.lastSnap = res.SnapshotID
	for _, f := range k.files {
		if f.df != nil && dropped[f.path] {
			f.gone, f.dead, f.df = true, nil, nil
		}
	}
	k.mu.Unlock()
	k.liveDels = append(rest, merge.Merged...)
	_ = k.persistIndexLocked()
	k.log.Debug("keyed maintenance", "snapshot", res.SnapshotID, "merged_delete_files", len(merge.Replace),
		"dropped_data_files", len(merge.Drop), "took", k.w.opts.Now().Sub(start))
	return nil
}
