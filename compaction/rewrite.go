package compaction

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/table"
)

// OperationCompact is the floe.operation of compaction snapshots.
const OperationCompact = "compact"

// Rewrite pipeline bounds. A group's files are read by readConcurrency
// workers in batches of readBatchRows rows, each holding the batches of at
// most one input file until the writer takes them (iceberg-go's ReadTasks
// bound); the writer buffers at most writeBufferBatches batches and one
// Parquet row group. Nothing holds a whole group or partition: rewriting
// 100 MB of 1 MB files peaks at ~250 MiB of heap (the benchmark), where
// iceberg-go's own path, with 128k-row batches, peaks at 0.6–2 GiB.
const (
	readConcurrency    = 2
	readBatchRows      = 16384
	writeBufferBatches = 8
)

// mergeInCommit: a replace whose parent has more manifests merges them in
// the same commit.
const mergeInCommit = 8

// errNothingToCommit ends a commit whose groups were all dropped.
var errNothingToCommit = errors.New("nothing left to commit")

// tableRun is one pass over one table.
type tableRun struct {
	c         *Compactor
	name      string
	committer *table.Committer
	rep       *TableReport

	mu sync.Mutex
	// own are the commit ids of this run's compaction commits: snapshots
	// whose removals are known (other groups' inputs).
	own map[string]bool
}

// group is a planned group bound to the table it was planned on.
type group struct {
	PlannedGroup
	index   int
	display string
	specID  int
	tasks   []icetable.FileScanTask
	inputs  []iceberg.DataFile
	deletes bool // delete files apply to some input

	outputs  []iceberg.DataFile
	outBytes int64
	outRows  int64
	took     time.Duration
}

// tablePlan is a plan of the table's snapshot planSnap.
type tablePlan struct {
	Plan
	planSnap *icetable.Snapshot
	groups   []*group
}

// PlanTable plans a rewrite of the table's current snapshot without
// writing anything (a dry run).
func (c *Compactor) PlanTable(ctx context.Context, name string) (Plan, error) {
	ident, err := table.ParseIdent(name)
	if err != nil {
		return Plan{}, err
	}
	tbl, err := c.cat.LoadTable(ctx, ident)
	if err != nil {
		return Plan{}, fmt.Errorf("load table %s: %w", name, err)
	}
	if owner := writerOwned(tbl); owner != "" {
		return Plan{FilesPerPartition: map[string]int{}, Owner: owner}, nil
	}
	o, err := c.cfg.planOptions(tbl.Properties())
	if err != nil {
		return Plan{}, fmt.Errorf("table %s: %w: %w", name, errConfig, err)
	}
	p, err := planTable(ctx, tbl, o)
	if err != nil {
		return Plan{}, err
	}
	return p.Plan, nil
}

// planTable plans tbl's current snapshot.
func planTable(ctx context.Context, tbl *icetable.Table, o PlanOptions) (*tablePlan, error) {
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		return &tablePlan{Plan: Plan{FilesPerPartition: map[string]int{}}}, nil
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan files of snapshot %d: %w", snap.SnapshotID, err)
	}
	// A large file may be split into several tasks; the planner sees files.
	byPath := map[string][]icetable.FileScanTask{}
	var files []FileInfo
	displays := map[string]string{}
	meta := tbl.Metadata()
	for _, t := range tasks {
		p := t.File.FilePath()
		if _, seen := byPath[p]; !seen {
			key, display := partitionKey(meta, t.File)
			displays[key] = display
			files = append(files, FileInfo{
				Path: p, Partition: key, SizeBytes: t.File.FileSizeBytes(), Records: t.File.Count(),
				Deletes: len(t.DeleteFiles) + len(t.EqualityDeleteFiles) + len(t.DeletionVectorFiles),
			})
		}
		byPath[p] = append(byPath[p], t)
	}
	plan := PlanGroups(files, o)
	tp := &tablePlan{Plan: plan, planSnap: snap}
	for i, pg := range plan.Groups {
		g := &group{PlannedGroup: pg, index: i + 1, display: displays[pg.Partition]}
		for _, f := range pg.Files {
			ts := byPath[f.Path]
			g.tasks = append(g.tasks, ts...)
			g.inputs = append(g.inputs, ts[0].File)
			g.specID = int(ts[0].File.SpecID())
			if f.Deletes > 0 {
				g.deletes = true
			}
		}
		tp.groups = append(tp.groups, g)
	}
	return tp, nil
}

// writerOwned returns the table's compaction owner when it is its writer
// (PropCompactionOwner=OwnerWriter), "" otherwise.
func writerOwned(tbl *icetable.Table) string {
	if v := tbl.Properties()[PropCompactionOwner]; v == OwnerWriter {
		return v
	}
	return ""
}

// partitionKey renders a data file's partition: an opaque key (spec id and
// values) and a display form name=value/….
func partitionKey(meta icetable.Metadata, df iceberg.DataFile) (key, display string) {
	spec := meta.PartitionSpecByID(int(df.SpecID()))
	if spec == nil {
		return fmt.Sprintf("spec-%d:%v", df.SpecID(), df.Partition()), fmt.Sprint(df.Partition())
	}
	sc := meta.CurrentSchema()
	vals := df.Partition()
	var parts []string
	for _, f := range spec.Fields() {
		v := vals[f.FieldID]
		s := "null"
		if v != nil {
			s = fmt.Sprint(v)
			if src, ok := sc.FindFieldByID(f.SourceID()); ok {
				s = f.Transform.ToHumanStrType(f.Transform.ResultType(src.Type), v)
			}
		}
		parts = append(parts, f.Name+"="+s)
	}
	display = strings.Join(parts, "/")
	return strconv.Itoa(spec.ID()) + ":" + display, display
}

// rewrite plans the table and rewrites its groups, committing them one at
// a time (partial progress) or together.
func (r *tableRun) rewrite(ctx context.Context) error {
	c := r.c
	tbl, err := r.committer.Load(ctx)
	if err != nil {
		return err
	}
	if owner := writerOwned(tbl); owner != "" {
		// Its writer rewrites its data files between its commits
		// (keyed.go); a rewrite here would race its deletes and make it
		// rebuild its key index.
		c.log.Info("data-file rewrite skipped: the table's writer compacts it", "table", r.name,
			"property", PropCompactionOwner+"="+owner)
		return nil
	}
	o, err := c.cfg.planOptions(tbl.Properties())
	if err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}
	tp, err := planTable(ctx, tbl, o)
	if err != nil {
		return err
	}
	r.rep.Candidates, r.rep.Groups = tp.Candidates, len(tp.groups)
	perPart := tp.FilesPerPartition
	defer func() {
		n := 0
		for _, v := range perPart {
			n = max(n, v)
		}
		r.rep.MaxFilesPerPartition = n
		c.m.filesPerPart.WithLabelValues(r.name).Set(float64(n))
	}()
	if len(tp.groups) == 0 {
		return nil
	}
	if c.cfg.Strategy == StrategySort && tbl.SortOrder().IsUnsorted() {
		c.log.Debug("strategy sort on a table without a sort order: bin-packing", "table", r.name)
	}
	c.log.Info("compacting", "table", r.name, "snapshot", tp.planSnap.SnapshotID, "groups", len(tp.groups),
		"candidates", tp.Candidates, "max_files_per_partition", tp.MaxFilesPerPartition())

	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		errs     []error
		done     []*group
		commitMu sync.Mutex
		wg       sync.WaitGroup
	)
	// fail records err; stop ends the table's rewrite (groups in flight
	// are abandoned, their files left to the orphan cleaner).
	fail := func(err error, stop bool) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
		if stop {
			cancel()
		}
	}
	sem := make(chan struct{}, c.cfg.MaxConcurrentFileGroupRewrites)
	for _, g := range tp.groups {
		select {
		case sem <- struct{}{}:
		case <-gctx.Done():
		}
		if gctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := r.rewriteGroup(gctx, tbl, g, o); err != nil {
				r.report(g, ResultFailed, err.Error())
				// With partial progress the other groups go on; an
				// atomic rewrite cannot commit without this one.
				fail(fmt.Errorf("rewrite group %d (%s): %w", g.index, g.display, err), !c.cfg.PartialProgress)
				return
			}
			if err := callHook(c.opts.Hooks.AfterRewrite, r.name); err != nil {
				fail(err, true)
				return
			}
			if !c.cfg.PartialProgress {
				mu.Lock()
				done = append(done, g)
				mu.Unlock()
				return
			}
			commitMu.Lock()
			defer commitMu.Unlock()
			if err := r.commit(gctx, tp, []*group{g}, perPart); err != nil {
				fail(err, true)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if !c.cfg.PartialProgress {
			for _, g := range done {
				r.report(g, ResultFailed, "not committed: another group of the table failed")
			}
		}
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !c.cfg.PartialProgress && len(done) > 0 {
		return r.commit(ctx, tp, done, perPart)
	}
	return nil
}

// rewriteGroup streams the group's input files, deletes applied, through
// WriteRecords into files of the target size.
func (r *tableRun) rewriteGroup(ctx context.Context, tbl *icetable.Table, g *group, o PlanOptions) error {
	start := r.c.opts.Now()
	sc, recs, err := tbl.Scan(icetable.WithMaxConcurrency(readConcurrency), icetable.WithArrowBatchSize(readBatchRows)).ReadTasks(ctx, g.tasks)
	if err != nil {
		return fmt.Errorf("read input files: %w", err)
	}
	if r.c.cfg.Strategy == StrategySort && !tbl.SortOrder().IsUnsorted() {
		// WriteRecords sorts each batch by the table's sort order; larger
		// batches make longer sorted runs.
		recs = concatRuns(recs, int64(r.c.cfg.SortBufferBytes))
	}
	opts := []icetable.WriteRecordOption{
		icetable.WithTargetFileSize(o.TargetFileSizeBytes),
		icetable.WithRecordBatchBufferSize(writeBufferBatches),
	}
	if g.specID == tbl.Metadata().DefaultPartitionSpec() {
		// One partition of the current spec: the clustered writer keeps
		// one file open. Files of an older spec may spread over several
		// partitions of the current one, in any order: fan out.
		opts = append(opts, icetable.WithClusteredWrite())
	}
	var rows, nbytes int64
	var out []iceberg.DataFile
	for df, err := range icetable.WriteRecords(ctx, tbl, sc, recs, opts...) {
		if err != nil {
			return fmt.Errorf("write output files: %w", err)
		}
		out = append(out, df)
		rows += df.Count()
		nbytes += df.FileSizeBytes()
	}
	// Without deletes every input row must come out exactly once.
	if !g.deletes && rows != g.Records {
		if err := ctx.Err(); err != nil {
			return err // stopped mid-group: not a broken table
		}
		return fmt.Errorf("%w: wrote %d rows for %d input rows", errInvariant, rows, g.Records)
	}
	g.outputs, g.outRows, g.outBytes = out, rows, nbytes
	g.took = r.c.opts.Now().Sub(start)
	return nil
}

// concatRuns concatenates consecutive batches into runs for sorting, so
// that a run, its concatenated copy and the sorted copy WriteRecords makes
// stay within maxBytes of Arrow memory together.
func concatRuns(recs iter.Seq2[arrow.RecordBatch, error], maxBytes int64) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		var run []arrow.RecordBatch
		var size int64
		release := func() {
			for _, b := range run {
				b.Release()
			}
			run, size = nil, 0
		}
		defer release()
		flush := func() (arrow.RecordBatch, error) {
			defer release()
			if len(run) == 1 {
				run[0].Retain()
				return run[0], nil
			}
			cols := make([]arrow.Array, run[0].NumCols())
			defer func() {
				for _, a := range cols {
					if a != nil {
						a.Release()
					}
				}
			}()
			var n int64
			for i := range cols {
				parts := make([]arrow.Array, len(run))
				for j, b := range run {
					parts[j] = b.Column(i)
				}
				a, err := array.Concatenate(parts, memory.DefaultAllocator)
				if err != nil {
					return nil, fmt.Errorf("concatenate a sort run: %w", err)
				}
				cols[i] = a
				n = int64(a.Len())
			}
			return array.NewRecordBatch(run[0].Schema(), cols, n), nil
		}
		for rec, err := range recs {
			if err != nil {
				yield(nil, err)
				return
			}
			run = append(run, rec)
			size += batchBytes(rec)
			if size < maxBytes/3 {
				continue
			}
			b, err := flush()
			if !yield(b, err) || err != nil {
				return
			}
		}
		if len(run) > 0 {
			b, err := flush()
			yield(b, err)
		}
	}
}

func batchBytes(r arrow.RecordBatch) int64 {
	var n int64
	var walk func(d arrow.ArrayData)
	walk = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += int64(b.Len())
			}
		}
		for _, ch := range d.Children() {
			walk(ch)
		}
	}
	for _, col := range r.Columns() {
		walk(col.Data())
	}
	return n
}

// commit commits gs as one replace snapshot through the table's commit
// protocol. Every attempt stages on a freshly loaded table and first
// re-checks each group against it: a group whose inputs are no longer all
// live, or that a delete committed since planning might affect, is
// dropped, its outputs left to the orphan cleaner. The positions of the
// table's sources are carried forward unchanged (no Advances).
func (r *tableRun) commit(ctx context.Context, tp *tablePlan, gs []*group, perPart map[string]int) error {
	c := r.c
	if err := callHook(c.opts.Hooks.BeforeCommit, r.name); err != nil {
		return err
	}
	var live, dropped []*group
	var reason string
	cm := table.Commit{
		Operation: OperationCompact,
		Apply: func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
			staged, err := txn.StagedTable()
			if err != nil {
				return fmt.Errorf("read the fresh table: %w", err)
			}
			live, dropped, reason, err = r.check(ctx, staged.Table, tp.planSnap, gs)
			if err != nil {
				return err
			}
			if len(live) == 0 {
				return errNothingToCommit
			}
			return r.stage(ctx, txn, staged.Table, live, props)
		},
	}
	res, err := r.commitInWindow(ctx, cm)
	if err != nil && !errors.Is(err, errNothingToCommit) {
		for _, g := range gs {
			r.report(g, ResultFailed, err.Error())
		}
		return err
	}
	if err == nil {
		r.mu.Lock()
		if r.own == nil {
			r.own = map[string]bool{}
		}
		r.own[res.CommitID] = true
		r.mu.Unlock()
	}
	for _, g := range dropped {
		r.report(g, ResultDropped, reason)
	}
	for _, g := range live {
		c.m.filesRewritten.WithLabelValues(r.name).Add(float64(len(g.inputs)))
		c.m.bytesRewritten.WithLabelValues(r.name).Add(float64(g.SizeBytes))
		c.m.filesWritten.WithLabelValues(r.name).Add(float64(len(g.outputs)))
		r.mu.Lock()
		r.rep.FilesRewritten += len(g.inputs)
		r.rep.FilesWritten += len(g.outputs)
		r.rep.BytesRewritten += g.SizeBytes
		perPart[g.Partition] += len(g.outputs) - len(g.inputs)
		r.mu.Unlock()
		r.report(g, ResultCommitted, "")
	}
	if len(live) > 0 {
		c.log.Debug("compaction committed", "table", r.name, "snapshot", res.SnapshotID, "groups", len(live),
			"dropped", len(dropped), "attempts", res.Attempts, "conflicts", res.Conflicts)
		return callHook(c.opts.Hooks.AfterCommit, r.name)
	}
	return nil
}

// check splits gs into the groups that may still be committed on fresh
// and the ones to drop, with the reason.
//
// iceberg-go's rewrite validator compares the transaction's base with the
// catalog's head at commit time; the commit protocol stages every attempt
// on a freshly loaded table, so that validator never sees a concurrent
// snapshot, and the checks it would make are made here against the
// planning snapshot instead:
//
//   - every input of a group must still be live (another compaction, an
//     overwrite or a copy-on-write delete may have replaced it: committing
//     would duplicate its rows);
//   - no delete file may have been committed since planning (it could
//     target rows the group read, and the rewritten copies would bring
//     them back).
//
// CDC equality deletes plug in at the second check: an equality delete
// only applies to data files with a lower data sequence number, so a
// rewrite that gives its outputs the planning snapshot's sequence number
// (RewriteFiles.DataSequenceNumber, Java's use-starting-sequence-number)
// stays correct under concurrent equality deletes, and only position
// deletes and deletion vectors on the inputs need to drop the group.
func (r *tableRun) check(ctx context.Context, fresh *icetable.Table, planSnap *icetable.Snapshot, gs []*group) (live, dropped []*group, reason string, err error) {
	head := fresh.CurrentSnapshot()
	if head == nil {
		return nil, gs, "the table has no snapshot any more", nil
	}
	needFull, found := false, false
	for s := range table.CurrentAncestors(fresh.Metadata()) {
		if s.SnapshotID == planSnap.SnapshotID {
			found = true
			break
		}
		if !r.isOwn(s) {
			if addsDeletes(s) {
				return nil, gs, fmt.Sprintf("snapshot %d committed delete files since planning", s.SnapshotID), nil
			}
			if mayRemoveData(s) {
				needFull = true
			}
		}
	}
	if !found {
		return nil, gs, fmt.Sprintf("planning snapshot %d is no longer in the table's history", planSnap.SnapshotID), nil
	}
	if !needFull {
		return gs, nil, "", nil
	}
	// Something since planning removed data files: look the inputs up in
	// the head's data manifests.
	want := map[string]bool{}
	for _, g := range gs {
		for _, f := range g.inputs {
			want[f.FilePath()] = false
		}
	}
	fsys, err := fresh.FS(ctx)
	if err != nil {
		return nil, nil, "", fmt.Errorf("open table storage: %w", err)
	}
	mans, err := head.Manifests(fsys)
	if err != nil {
		return nil, nil, "", fmt.Errorf("read manifest list of snapshot %d: %w", head.SnapshotID, err)
	}
	for _, m := range mans {
		if m.ManifestContent() != iceberg.ManifestContentData {
			continue
		}
		for e, err := range m.Entries(fsys, true) {
			if err != nil {
				return nil, nil, "", fmt.Errorf("read manifest %s: %w", m.FilePath(), err)
			}
			if _, ok := want[e.DataFile().FilePath()]; ok {
				want[e.DataFile().FilePath()] = true
			}
		}
	}
	for _, g := range gs {
		ok := true
		for _, f := range g.inputs {
			ok = ok && want[f.FilePath()]
		}
		if ok {
			live = append(live, g)
		} else {
			dropped = append(dropped, g)
		}
	}
	return live, dropped, "input files were removed by another commit", nil
}

func (r *tableRun) isOwn(s *icetable.Snapshot) bool {
	if s.Summary == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.own[s.Summary.Properties[table.PropCommitID]]
}

// addsDeletes reports whether s may have added delete files: its summary
// counts some, or it has no summary.
func addsDeletes(s *icetable.Snapshot) bool {
	if s.Summary == nil {
		return true
	}
	for _, k := range []string{"added-delete-files", "added-position-delete-files", "added-equality-delete-files"} {
		if n, ok := table.SummaryInt(s, k); ok && n > 0 {
			return true
		}
	}
	return false
}

// mayRemoveData reports whether s may have removed data files.
func mayRemoveData(s *icetable.Snapshot) bool {
	if s.Summary == nil {
		return true
	}
	if s.Summary.Operation == icetable.OpAppend {
		return false
	}
	n, ok := table.SummaryInt(s, "deleted-data-files")
	return !ok || n > 0
}

// stage stages the groups' replace on txn: inputs out, outputs in, and the
// position deletes and deletion vectors the rewrite made dead.
func (r *tableRun) stage(ctx context.Context, txn *icetable.Transaction, fresh *icetable.Table, gs []*group, props iceberg.Properties) error {
	if r.c.cfg.manifestsEnabled() {
		// A replace reads every manifest of its parent and rewrites each
		// one holding an input: merging them first, in the same commit,
		// makes the attempt shorter, not longer (one manifest to read and
		// rewrite instead of one per ingest commit since the last merge).
		fsys, err := fresh.FS(ctx)
		if err != nil {
			return fmt.Errorf("open table storage: %w", err)
		}
		mans, err := fresh.CurrentSnapshot().Manifests(fsys)
		if err != nil {
			return fmt.Errorf("read manifest list: %w", err)
		}
		if len(mans) > mergeInCommit {
			if _, err := txn.RewriteManifests(ctx); err != nil {
				return fmt.Errorf("stage manifest merge: %w", err)
			}
		}
	}
	rw := txn.NewRewrite(props)
	rewritten := map[string]struct{}{}
	var tasks []icetable.FileScanTask
	hasDeletes := false
	for _, g := range gs {
		for _, f := range g.inputs {
			rw.DeleteFile(f)
			rewritten[f.FilePath()] = struct{}{}
		}
		for _, f := range g.outputs {
			rw.AddDataFile(f)
		}
		tasks = append(tasks, g.tasks...)
		hasDeletes = hasDeletes || g.deletes
	}
	if hasDeletes {
		fsys, err := fresh.FS(ctx)
		if err != nil {
			return fmt.Errorf("open table storage: %w", err)
		}
		dead, err := icetable.CollectDeadPositionDeletes(ctx, fsys, fresh.CurrentSnapshot(), rewritten)
		if err != nil {
			return fmt.Errorf("find position deletes made dead: %w", err)
		}
		seen := map[string]bool{}
		for _, d := range append(dead, icetable.CollectSafeDeletionVectors(tasks)...) {
			if !seen[d.FilePath()] {
				seen[d.FilePath()] = true
				rw.DeleteFile(d)
			}
		}
	}
	if err := rw.Commit(ctx); err != nil {
		return fmt.Errorf("stage replace: %w", err)
	}
	return nil
}

// report counts a group's result and tells OnGroup.
func (r *tableRun) report(g *group, result, reason string) {
	r.c.m.groups.WithLabelValues(r.name, result).Inc()
	r.mu.Lock()
	switch result {
	case ResultCommitted:
		r.rep.Committed++
	case ResultDropped:
		r.rep.Dropped++
	case ResultFailed:
		r.rep.Failed++
	}
	of := r.rep.Groups
	r.mu.Unlock()
	if result == ResultDropped {
		// Lost work: the group's rewrite is not in the table. RunOnce
		// fails (ErrGroupsDropped) so that a one-shot run says so.
		r.c.log.Warn("compaction group dropped; its files are left to the orphan cleaner", "table", r.name,
			"partition", g.display, "group", g.index, "files", len(g.inputs), "reason", reason)
	}
	if f := r.c.opts.OnGroup; f != nil {
		f(GroupReport{
			Table: r.name, Partition: g.display, Index: g.index, Of: of,
			InputFiles: len(g.inputs), InputBytes: g.SizeBytes, OutputFiles: len(g.outputs), OutputBytes: g.outBytes,
			Records: g.outRows, Result: result, Reason: reason, Duration: g.took,
		})
	}
}
