package writer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/table"
)

// A keyed table's compaction of its data files (the design is in
// keyed.go and compaction/keyed.go). One step at a time:
//
//  1. plan (maybeCompactLocked, right after a commit, k.io held): one
//     group of files from what the table knows — sizes, deleted rows —
//     with compaction.PlanKeyedGroup; the inputs' dead positions and how
//     many there were are noted;
//  2. write (runStep, nothing held): the inputs' rows but the dead ones
//     into one file, noting each written row's key; Apply, flushes and
//     commits go on meanwhile;
//  3. commit (commitStepLocked, k.io held): rows deleted by commits since
//     planning (late deletes) are deleted again in the output, merged
//     with the table's other position deletes; the replace snapshot is
//     committed through the table's committer (positions carried
//     forward, other writers' changes refused as for every commit); then,
//     under k.mu, every index entry and every pending delete that points
//     into an input is moved to the output position of its row.
//
// A step that fails to write or commit is dropped with a warning and
// counted (floe_writer_keyed_compactions_total{result="failed"}); its file
// is left to the orphan cleaner and the next commit plans again. Only a
// commit whose outcome is unknown, or a table changed by another writer,
// fails the table.

// keyedStep is one compaction step in flight.
type keyedStep struct {
	rw      *compaction.KeyedRewrite
	fileNos []int // the inputs' file numbers, in input order
	deadAt  []int // len(files[n].dead) at planning
	path    string
	reason  string
	tbl     *icetable.Table
	schema  *arrow.Schema
	keyCols []int
	// The output rows' keys, in order: keys[ends[j-1]:ends[j]]; only
	// when the step has at most keyedStepMaxKeys rows (byKeys), otherwise
	// the commit moves the index entries by a scan of the index.
	byKeys bool
	keys   []byte
	ends   []int
	mem    int64 // counted in the writer's budget while the step runs
}

// keyedStepMaxKeys is the most output rows a compaction step notes the
// keys of (about 16–24 bytes a row in the heap) to move their index
// entries one by one; a larger step — the first rewrite of a snapshot
// load's files, millions of rows — moves them with one sequential scan of
// the committed index instead (slotTable.remap), in constant memory.
const keyedStepMaxKeys = 1 << 18

// collect notes the keys of the rows of a batch written to the output
// (rows nil: all of them).
func (st *keyedStep) collect(rec arrow.RecordBatch, rows []int32) error {
	if !st.byKeys {
		return nil
	}
	add := func(i int) error {
		var err error
		if st.keys, err = appendKey(st.keys, rec, st.keyCols, i); err != nil {
			return err
		}
		st.ends = append(st.ends, len(st.keys))
		return nil
	}
	if rows != nil {
		for _, i := range rows {
			if err := add(int(i)); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range int(rec.NumRows()) {
		if err := add(i); err != nil {
			return err
		}
	}
	return nil
}

func (st *keyedStep) key(j int) []byte {
	from := 0
	if j > 0 {
		from = st.ends[j-1]
	}
	return st.keys[from:st.ends[j]]
}

// maybeCompactLocked plans a compaction step and starts it, unless one is
// in flight or none is due. k.io must be held and nothing staged: every
// file the table knows of is committed.
func (k *KeyedTable) maybeCompactLocked() {
	if k.step != nil || len(k.staged) > 0 || len(k.stagedDels) > 0 {
		return
	}
	k.mu.Lock()
	if k.closing || k.err != nil || k.compactOff || k.lastSnap == noSnapshot {
		k.mu.Unlock()
		return
	}
	infos := make([]compaction.FileInfo, 0, len(k.files))
	byPath := make(map[string]int, len(k.files))
	for n, f := range k.files {
		if f.gone || f.df == nil {
			continue
		}
		infos = append(infos, compaction.FileInfo{
			Path: f.path, Partition: compaction.PartitionKey(f.df), SizeBytes: f.df.FileSizeBytes(), Records: f.rows, DeletedRecords: int64(len(f.dead)),
		})
		byPath[f.path] = n
	}
	g := compaction.PlanKeyedGroup(infos, k.compactOpts)
	if g == nil {
		k.mu.Unlock()
		return
	}
	st := &keyedStep{reason: g.Reason, tbl: k.tbl, schema: k.schema, keyCols: slices.Clone(k.keyCols)}
	for _, fi := range g.Files {
		st.fileNos = append(st.fileNos, byPath[fi.Path])
	}
	// Oldest first: the output keeps the rows in the order they came.
	slices.Sort(st.fileNos)
	inputs := make([]compaction.KeyedInput, len(st.fileNos))
	for i, n := range st.fileNos {
		f := k.files[n]
		dead := make([]int64, len(f.dead))
		for j, p := range f.dead {
			dead[j] = int64(p)
		}
		inputs[i] = compaction.KeyedInput{File: f.df, Dead: dead}
		st.deadAt = append(st.deadAt, len(f.dead))
	}
	st.rw = compaction.NewKeyedRewrite(inputs, k.lastSnap)
	maxKeys := k.stepMaxKeys
	if maxKeys == 0 {
		maxKeys = keyedStepMaxKeys
	}
	st.byKeys = st.rw.LiveRows() <= maxKeys
	// The step's memory counts in the budget while it runs (keyed_memory.go):
	// the output's keys when it notes them (about 8 bytes and the key a
	// row, at most keyedStepMaxKeys rows) and the rewrite's batches and
	// row group, at most a flush's worth.
	st.mem = min(g.SizeBytes, int64(k.w.cfg.FlushBytes))
	if st.byKeys {
		st.mem += st.rw.LiveRows() * (16 + 8)
	}
	k.w.addMemory(0, 0, st.mem)
	// Added under k.mu, where stopSteps sets closing before it waits.
	k.stepWG.Add(1)
	k.mu.Unlock()
	k.fileSeq++
	st.path = k.dataPath(st.tbl, fmt.Sprintf("%05d-compacted", k.fileSeq))
	k.step = st
	k.log.Debug("keyed compaction step planned", "files", len(st.fileNos), "bytes", g.SizeBytes,
		"live_rows", st.rw.LiveRows(), "reason", g.Reason)
	go k.runStep(st)
}

// runStep writes st's file, then commits it.
func (k *KeyedTable) runStep(st *keyedStep) {
	defer k.stepWG.Done()
	defer k.w.addMemory(0, 0, -st.mem)
	start := k.w.opts.Now()
	err := st.rw.Write(k.stepCtx, st.tbl, st.schema, st.path, st.collect)
	if h := k.w.opts.Hooks.CompactionWritten; h != nil && err == nil {
		h(k.name)
	}
	k.io.Lock()
	defer k.io.Unlock()
	// A partitioned table plans its next step right away: its partitions
	// take turns, one group a step, and would otherwise wait for commits.
	next := false
	defer func() {
		k.step = nil
		if next {
			k.maybeCompactLocked()
		}
	}()
	if err != nil {
		if k.stepCtx.Err() != nil {
			k.w.m.compactions.WithLabelValues(k.name, CompactionAbandoned).Inc()
			return
		}
		k.w.m.compactions.WithLabelValues(k.name, CompactionFailed).Inc()
		k.log.Warn("keyed compaction step failed; its file is left to the orphan cleaner, the next commit plans again",
			"step", "write", "files", len(st.fileNos), "err", err)
		return
	}
	if k.Err() != nil || k.stepCtx.Err() != nil {
		k.w.m.compactions.WithLabelValues(k.name, CompactionAbandoned).Inc()
		return
	}
	// The commit runs under the table's lifetime, not the step's: Close
	// lets a step that got this far finish.
	ctx := k.loopCtx
	merged, err := k.commitStepLocked(ctx, st)
	if err != nil {
		k.w.m.compactions.WithLabelValues(k.name, CompactionFailed).Inc()
		if errors.Is(err, ErrKeyIndexStale) || ctx.Err() != nil {
			// Another writer changed the files, or the outcome is unknown:
			// the index cannot be trusted.
			k.fail(err)
			k.log.Error("keyed compaction commit failed", "err", err)
			return
		}
		// The committer committed nothing.
		k.log.Warn("keyed compaction step failed; its file is left to the orphan cleaner, the next commit plans again",
			"step", "commit", "files", len(st.fileNos), "err", err)
		return
	}
	k.w.m.compactions.WithLabelValues(k.name, CompactionCommitted).Inc()
	k.w.m.compactedFiles.WithLabelValues(k.name).Add(float64(len(st.fileNos)))
	k.log.Debug("keyed compaction committed", "files", len(st.fileNos), "rows", st.rw.LiveRows(),
		"merged_delete_files", merged, "reason", st.reason, "took", k.w.opts.Now().Sub(start))
	if !merged && k.deleteMergeDue() {
		if err := k.maintainLocked(ctx); err != nil {
			k.log.Error("keyed maintenance failed", "err", err)
			return
		}
	}
	next = k.partitioned
}

// errStepInputsGone: an input of the step left the table before it
// committed.
var errStepInputsGone = errors.New("an input file of the compaction step is no longer live")

// commitStepLocked commits st and moves the index to its output; it
// reports whether the commit also merged the table's delete files. k.io
// must be held.
func (k *KeyedTable) commitStepLocked(ctx context.Context, st *keyedStep) (bool, error) {
	rw := st.rw
	inputOf := make(map[uint64]int, len(st.fileNos))
	k.mu.Lock()
	tbl, lastSnap := k.tbl, k.lastSnap
	for i, n := range st.fileNos {
		if k.files[n].gone {
			k.mu.Unlock()
			return false, errStepInputsGone
		}
		inputOf[uint64(n)] = i
	}
	// Rows of the inputs that commits deleted since planning are in the
	// output: delete them there too.
	var late []int64
	for i, n := range st.fileNos {
		for _, p := range k.files[n].dead[st.deadAt[i]:] {
			if q, ok := rw.Moved(i, int64(p)); ok {
				late = append(late, q)
			}
		}
	}
	var merge *compaction.DeleteMerge
	var rest []iceberg.DataFile // delete files the merge leaves alone
	if len(late) > 0 && rw.Output != nil {
		// The merge covers the step's partition only: no other partition's
		// delete file refers to its files.
		parts := map[string]bool{compaction.PartitionKey(rw.Output): true}
		merge, rest = k.planMergeLocked(parts, !k.partitioned, func(n int) bool {
			_, in := inputOf[uint64(n)]
			return in
		})
		merge.Keep = append(merge.Keep, compaction.FileDeletes{File: rw.Output, Positions: slices.Clone(late)})
	}
	k.mu.Unlock()
	if merge != nil {
		if err := merge.Write(ctx, tbl, k.mergedPath(tbl)); err != nil {
			return false, fmt.Errorf("merge position deletes of %s: %w", k.name, err)
		}
	}
	res, err := k.committer.Commit(ctx, table.Commit{
		Operation: compaction.OperationCompact,
		Apply: func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
			if err := checkForeign(txn, lastSnap); err != nil {
				return err
			}
			return rw.Stage(ctx, txn, props, merge)
		},
	})
	if err != nil {
		return false, fmt.Errorf("commit compaction of %s: %w", k.name, err)
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	k.lastSnap = res.SnapshotID
	out := uint64(len(k.files))
	if rw.Output != nil {
		f := &dataFileState{path: rw.Output.FilePath(), df: rw.Output, rows: rw.Output.Count()}
		for _, q := range late {
			f.dead = append(f.dead, uint32(q))
		}
		k.files = append(k.files, f)
	}
	// move returns where loc, a row of an input, is now.
	move := func(loc uint64) (uint64, bool, bool) {
		i, in := inputOf[loc>>32]
		if !in {
			return loc, false, true
		}
		q, ok := rw.Moved(i, int64(uint32(loc)))
		return out<<32 | uint64(q), true, ok
	}
	// Each live key of the inputs is one row of the output: its entry
	// moves to that row.
	moved := 0
	var misplaced []string
	if !st.byKeys {
		// A row may be deleted more than once (positions can repeat).
		distinct := slices.Compact(slices.Sorted(slices.Values(late)))
		moved, misplaced = k.moveByScanLocked(move, rw.LiveRows()-int64(len(distinct)))
	}
	// In the committed index's slot order, dropping its mapped pages as
	// it goes (slotOrder): a step's random keys would otherwise make up
	// to the whole index resident beside the heap.
	for n, j := range k.slotOrder(st) {
		if n > 0 && n%keyedMovePageEvery == 0 {
			k.dropIndexPages()
		}
		key := st.key(j)
		// The committed index: the compaction is a committed snapshot
		// (an uncommitted change of the key is in a layer above).
		loc, ok := k.index.base.Get(string(key))
		if !ok {
			continue
		}
		nl, in, ok := move(loc)
		if !in {
			continue
		}
		if !ok || nl != out<<32|uint64(j) {
			misplaced = append(misplaced, FormatKey(string(key)))
			continue
		}
		k.index.base.Set(string(key), nl)
		moved++
	}
	// Deletes not committed yet follow their rows.
	for _, dels := range []*[]uint64{&k.dels, &k.stagedDels} {
		kept := (*dels)[:0]
		for _, loc := range *dels {
			if nl, _, ok := move(loc); ok {
				kept = append(kept, nl)
			}
		}
		*dels = kept
	}
	for _, n := range st.fileNos {
		f := k.files[n]
		f.gone, f.dead, f.df = true, nil, nil
	}
	if merge != nil {
		dropped := make(map[string]bool, len(merge.Drop))
		for _, df := range merge.Drop {
			dropped[df.FilePath()] = true
		}
		for _, f := range k.files {
			if f.df != nil && dropped[f.path] {
				f.gone, f.dead, f.df = true, nil, nil
			}
		}
		k.liveDels = append(rest, merge.Merged...)
	}
	k.indexGaugesLocked()
	if len(misplaced) > 0 {
		// The output's rows are not where the index expects them: its
		// entries cannot be trusted any more. The source restarts and
		// rebuilds the index from the table, which is correct.
		err := fmt.Errorf("%w: after compaction snapshot %d, %d keys are not at the rows they were copied to (e.g. %s)",
			ErrKeyIndexStale, res.SnapshotID, len(misplaced), misplaced[0])
		if k.err == nil {
			k.err = err
		}
		k.space.Broadcast()
		return merge != nil, err
	}
	k.mu.Unlock()
	_ = k.persistIndexLocked()
	k.mu.Lock()
	k.log.Debug("keyed compaction moved index entries", "snapshot", res.SnapshotID, "keys", moved, "late_deletes", len(late))
	return merge != nil, nil
}

// keyedMovePageEvery is how many index entries a compaction step moves
// by key between two drops of the mapped index's resident pages (about
// 16 MiB of pages at most).
const keyedMovePageEvery = 4096

// slotOrder returns the output rows of st (by key) in the order of their
// keys' home slots in the committed index: moved in that order, each
// page of a mapped index is touched once, so dropping the pages as the
// moves go costs no second fault.
func (k *KeyedTable) slotOrder(st *keyedStep) []int {
	type ord struct {
		wide bool
		home int
		j    int
	}
	os := make([]ord, len(st.ends))
	for j := range st.ends {
		t, h := k.index.base.slot(string(st.key(j)))
		os[j] = ord{t == &k.index.base.wide, 0, j}
		if t.cap > 0 {
			os[j].home = t.home(h)
		}
	}
	slices.SortFunc(os, func(a, b ord) int {
		if a.wide != b.wide {
			if a.wide {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.home, b.home)
	})
	out := make([]int, len(os))
	for i, o := range os {
		out[i] = o.j
	}
	return out
}

// dropIndexPages drops the committed index's mapped resident pages.
func (k *KeyedTable) dropIndexPages() {
	if k.idx != nil {
		k.idx.evict(k.index.base.narrow.slots)
		k.idx.evict(k.index.base.wide.slots)
	}
}

// moveByScanLocked moves the committed index's entries that point into a
// step's inputs to their output rows (move) with one scan of the index in
// slot order, for a step too large to note its keys; want is how many
// must move: the output's rows but those deleted by commits since
// planning (their keys point elsewhere now). It returns how many moved,
// and a description of the problem when that is not want or an entry
// points at an input row that is not in the output. k.mu must be held.
func (k *KeyedTable) moveByScanLocked(move func(loc uint64) (uint64, bool, bool), want int64) (int, []string) {
	dead := 0
	fn := func(loc uint64) (uint64, bool) {
		nl, in, ok := move(loc)
		if in && !ok {
			dead++
		}
		return nl, in && ok
	}
	moved := k.index.base.narrow.remap(fn) + k.index.base.wide.remap(fn)
	if dead > 0 || int64(moved) != want {
		return moved, []string{fmt.Sprintf("%d entries moved by a scan of the index, want %d; %d point at rows not copied", moved, want, dead)}
	}
	return moved, nil
}

// stopSteps keeps new compaction steps from starting, abandons the
// writing of the one in flight and waits for it (one already committing
// finishes).
func (k *KeyedTable) stopSteps() {
	k.mu.Lock()
	k.closing = true
	k.mu.Unlock()
	if k.stepCancel != nil {
		k.stepCancel()
	}
	k.stepWG.Wait()
}

// claimCompaction sets the table's compaction.PropCompactionOwner to
// compaction.OwnerWriter when the table compacts its data files itself,
// and removes it when it does not, so that the daemon knows whose the
// rewrite is. It commits table properties only (no snapshot) and only
// when they change.
func (k *KeyedTable) claimCompaction(ctx context.Context) error {
	k.mu.Lock()
	want := !k.compactOff
	owned := k.tbl.Properties()[compaction.PropCompactionOwner] == compaction.OwnerWriter
	k.mu.Unlock()
	if want == owned {
		return nil
	}
	for attempt := 1; ; attempt++ {
		tbl, err := k.committer.Load(ctx)
		if err != nil {
			return err
		}
		txn := tbl.NewTransaction()
		if want {
			err = txn.SetProperties(iceberg.Properties{compaction.PropCompactionOwner: compaction.OwnerWriter})
		} else {
			err = txn.RemoveProperties([]string{compaction.PropCompactionOwner})
		}
		if err == nil {
			_, err = txn.Commit(ctx)
		}
		if err == nil {
			break
		}
		if !table.IsConflict(err) || attempt >= 5 {
			return fmt.Errorf("set table property %s: %w", compaction.PropCompactionOwner, err)
		}
	}
	tbl, err := k.committer.Load(ctx)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.load(tbl)
}
