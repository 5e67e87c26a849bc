package compaction

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/bytesize"
	"github.com/floe-lake/floe/internal/pqfile"
	"github.com/floe-lake/floe/internal/pqgo"
)

// Keyed compaction: the data-file rewrite of a keyed table, run by its
// writer (writer.KeyedTable) between its own commits.
//
// Why in the writer. A keyed table's writer holds an index from every
// live key to the file and row position of its current image, and turns
// every update and delete into a position delete. A rewrite by anyone
// else moves rows to new files: the index no longer matches the table
// (the writer must rebuild it from every data file), and a position
// delete the writer commits while the rewrite is in flight targets a
// file the rewrite is about to remove — the daemon has to drop such a
// group, and under a steady stream of updates (500/s, 2 s commits on a
// 5M-row table) it drops every one. Apache Paimon compacts primary-key
// tables inside the writer for this reason; Floe does the same:
//
//   - The writer plans with PlanKeyedGroup from what it holds in memory
//     (its files, their sizes and deleted row counts), under Iceberg's
//     RewriteDataFiles option names (KeyedConfig).
//   - KeyedRewrite.Write reads the group's files with the positions the
//     writer knows dead skipped, and writes the live rows, in order, as
//     one data file through internal/pqfile. It runs beside the writer's
//     commits: nothing is locked while it reads and writes.
//   - The writer then commits the rewrite (KeyedRewrite.Stage) through its
//     own committer, positions carried forward, and moves its index
//     entries for the moved rows with KeyedRewrite.Moved — no rebuild.
//     Rows its commits deleted while the rewrite was in flight are
//     deleted again in the output in the same snapshot: since iceberg-go
//     adds a delete file in a rewrite only in place of others, that
//     snapshot also merges the table's position-delete files (DeleteMerge).
//
// The table property PropCompactionOwner=OwnerWriter, which the keyed
// writer sets when it opens a table with its compaction on, tells the
// daemon to leave the table's data files alone (it still merges
// manifests, expires snapshots and removes orphans).
//
// Write amplification. Plain bin-packing would rewrite a table smaller
// than the target file size whole every few commits, however little
// changed. PlanKeyedGroup takes candidates smallest first and stops at a
// file larger than twice the group so far (a size-tiered rule, as
// Paimon's universal compaction has), so a file is rewritten when what
// joins it is at least half its size: each row is rewritten about
// log1.5(target size / commit file size) times, not once per group.

// The table property that names who rewrites a table's data files.
const (
	// PropCompactionOwner is the table property naming who compacts the
	// table's data files. Absent, or any value but OwnerWriter, the daemon
	// does.
	PropCompactionOwner = "floe.compaction.owner"
	// OwnerWriter: the table's writer (a keyed writer) compacts its data
	// files between its commits; the daemon skips the table's rewrite step
	// and does the rest of its maintenance. A keyed writer sets it on open
	// when its compaction is on, and removes it when its compaction is
	// off; remove it by hand to hand a table whose writer is gone back to
	// the daemon.
	OwnerWriter = "writer"
)

// DefaultDeleteRatioThreshold is KeyedConfig.DeleteRatioThreshold's
// default, Iceberg's delete-ratio-threshold default.
const DefaultDeleteRatioThreshold = 0.3

// keyedSizeRatio: a file joins a keyed group only when it is at most this
// many times the size of the smaller files already in it.
const keyedSizeRatio = 2

// keyedTierFloor divides TargetFileSizeBytes into the size below which
// files join a group whatever the size ratio (512 KiB at the default
// 512 MiB target): the ratio rule compares a file with at least this
// much, so that a tiny file — a commit of a few rows — can no longer stop
// a tier (files of 2.2, 4.6, 4.9, 9.8 and 91 KiB formed no group:
// 4.6 > 2 × 2.2), and a partition's small files stay bounded. Rewriting
// files of a few hundred KiB more often costs little.
const keyedTierFloor = 1024

// KeyedConfig tunes a keyed writer's compaction, under Iceberg's
// RewriteDataFiles option names. Zero values take the defaults.
type KeyedConfig struct {
	// Disabled turns the writer's compaction off: its data files are left
	// to the daemon, which then makes the writer rebuild its key index
	// whenever it rewrites some. Default: false.
	Disabled bool `yaml:"disabled"`
	// TargetFileSizeBytes bounds a group's input bytes, and so its output
	// file. Default: the table's write.target-file-size-bytes (iceberg-go's
	// 512MiB when the table has none).
	TargetFileSizeBytes bytesize.Bytes `yaml:"target-file-size-bytes"`
	// MinFileSizeBytes: smaller files are candidates. Default: 0.75 ×
	// target-file-size-bytes.
	MinFileSizeBytes bytesize.Bytes `yaml:"min-file-size-bytes"`
	// MaxFileSizeBytes: larger files are candidates only for their
	// deletes. Default: 1.8 × target-file-size-bytes.
	MaxFileSizeBytes bytesize.Bytes `yaml:"max-file-size-bytes"`
	// MinInputFiles is how many small files a group needs; a group with a
	// file over delete-ratio-threshold needs one. Default: 5.
	MinInputFiles int `yaml:"min-input-files"`
	// DeleteRatioThreshold makes a file whose deleted rows are at least
	// this fraction of its rows a candidate whatever its size. Default:
	// 0.3.
	DeleteRatioThreshold float64 `yaml:"delete-ratio-threshold"`
}

// Keyed returns the keyed writer's compaction settings that follow the
// daemon's: the file sizes and min-input-files of the compaction: section.
func (c Config) Keyed() KeyedConfig {
	return KeyedConfig{
		TargetFileSizeBytes: c.TargetFileSizeBytes, MinFileSizeBytes: c.MinFileSizeBytes,
		MaxFileSizeBytes: c.MaxFileSizeBytes, MinInputFiles: c.MinInputFiles,
	}
}

// PlanOptions resolves c for a table with properties props.
func (c KeyedConfig) PlanOptions(props iceberg.Properties) (PlanOptions, error) {
	if c.MinInputFiles < 0 {
		return PlanOptions{}, fmt.Errorf("compaction.min-input-files: %d is negative", c.MinInputFiles)
	}
	cfg := Config{
		TargetFileSizeBytes: c.TargetFileSizeBytes, MinFileSizeBytes: c.MinFileSizeBytes,
		MaxFileSizeBytes: c.MaxFileSizeBytes, MinInputFiles: c.MinInputFiles,
	}
	o, err := cfg.planOptions(props)
	if err != nil {
		return PlanOptions{}, err
	}
	o.DeleteRatioThreshold = c.DeleteRatioThreshold
	if o.DeleteRatioThreshold == 0 {
		o.DeleteRatioThreshold = DefaultDeleteRatioThreshold
	}
	return o, o.validate()
}

// PlanKeyedGroup picks the next group a keyed writer rewrites, or nil when
// none is due: one group per step, of at most TargetFileSizeBytes of
// input (a single delete-laden file may pass it), so that a step stays
// short and commits keep flowing beside it. files are the table's live
// data files, with their DeletedRecords and Partition keys (PartitionKey);
// a group never mixes partitions.
//
// Within a partition, candidates — files under MinFileSizeBytes, and
// delete-laden files (DeleteRatioThreshold, DeleteFileThreshold) — are
// taken smallest first while each is at most twice the size of the group
// so far (at least TargetFileSizeBytes/1024) and the group stays within
// the target; the group is due with
// max(MinInputFiles, 2) files. Otherwise the delete-laden files that are
// not small form the group, if any: a small file's deletes wait for
// company (the writer's delete merge already drops files whose rows are
// all deleted). Of the partitions with a due group, the one with the most
// input files is taken (the first by key on a tie), so the partition that
// needs it most goes first and every other is taken once it does.
// Deterministic: the same files in any order give the same group.
func PlanKeyedGroup(files []FileInfo, o PlanOptions) *PlannedGroup {
	byPart := map[string][]FileInfo{}
	for _, f := range files {
		if o.candidate(f) {
			byPart[f.Partition] = append(byPart[f.Partition], f)
		}
	}
	keys := slices.Sorted(maps.Keys(byPart))
	var best *PlannedGroup
	for _, k := range keys {
		g := planKeyedPartition(byPart[k], o)
		if g != nil && (best == nil || len(g.Files) > len(best.Files)) {
			g.Partition = k
			best = g
		}
	}
	return best
}

// planKeyedPartition is PlanKeyedGroup within one partition, over its
// candidates.
func planKeyedPartition(cands []FileInfo, o PlanOptions) *PlannedGroup {
	slices.SortFunc(cands, func(a, b FileInfo) int {
		return cmp.Or(cmp.Compare(a.SizeBytes, b.SizeBytes), cmp.Compare(a.Path, b.Path))
	})
	add := func(g *PlannedGroup, f FileInfo) {
		g.Files = append(g.Files, f)
		g.SizeBytes += f.SizeBytes
		g.Records += f.Records
	}
	var g PlannedGroup
	floor := o.TargetFileSizeBytes / keyedTierFloor
	for _, f := range cands {
		if len(g.Files) > 0 && (g.SizeBytes+f.SizeBytes > o.TargetFileSizeBytes || f.SizeBytes > keyedSizeRatio*max(g.SizeBytes, floor)) {
			break
		}
		add(&g, f)
	}
	if len(g.Files) >= max(o.MinInputFiles, 2) {
		g.Reason = ReasonSmallFiles
		if slices.ContainsFunc(g.Files, o.deleteLaden) {
			g.Reason = ReasonDeletes
		}
		return &g
	}
	g = PlannedGroup{Reason: ReasonDeletes}
	for _, f := range cands {
		if !o.deleteLaden(f) || f.SizeBytes < o.MinFileSizeBytes {
			continue
		}
		if len(g.Files) > 0 && g.SizeBytes+f.SizeBytes > o.TargetFileSizeBytes {
			break
		}
		add(&g, f)
	}
	if len(g.Files) == 0 {
		return nil
	}
	return &g
}

// KeyedInput is one input file of a KeyedRewrite.
type KeyedInput struct {
	File iceberg.DataFile
	// Dead are the file's deleted row positions as of planning, in any
	// order, possibly repeated: the rows not copied. NewKeyedRewrite takes
	// ownership (it sorts them in place).
	Dead []int64
}

// KeyedRewrite rewrites one group of a keyed table's data files, all of
// one partition, into one file of that partition. Plan it with PlanKeyedGroup, write it with Write (beside the
// writer's commits), and stage it with Stage in the writer's own commit.
type KeyedRewrite struct {
	Inputs []KeyedInput
	// PlanSnapshot is the snapshot the Dead positions describe (the
	// writer's last commit when it planned).
	PlanSnapshot int64
	// Output is the written file, after Write; nil when no input row was
	// live.
	Output iceberg.DataFile

	bases []int64 // output position of each input's first row
	live  int64
	// ArrowWriter writes with arrow-go's writer even where pqgo would:
	// the baseline of BenchmarkKeyedRewrite.
	ArrowWriter bool
}

// NewKeyedRewrite prepares the rewrite of inputs, in the order given (the
// output holds their live rows in that order), as of planSnapshot.
func NewKeyedRewrite(inputs []KeyedInput, planSnapshot int64) *KeyedRewrite {
	r := &KeyedRewrite{Inputs: inputs, PlanSnapshot: planSnapshot, bases: make([]int64, len(inputs))}
	for i := range r.Inputs {
		in := &r.Inputs[i]
		slices.Sort(in.Dead)
		in.Dead = slices.Compact(in.Dead)
		r.bases[i] = r.live
		r.live += in.File.Count() - int64(len(in.Dead))
	}
	return r
}

// LiveRows is the number of rows the output holds.
func (r *KeyedRewrite) LiveRows() int64 { return r.live }

// Moved returns where row pos of input moves to in Output, and false when
// it does not move there (it was dead as of planning).
func (r *KeyedRewrite) Moved(input int, pos int64) (int64, bool) {
	in := r.Inputs[input]
	if pos < 0 || pos >= in.File.Count() {
		return 0, false
	}
	k, dead := slices.BinarySearch(in.Dead, pos)
	if dead {
		return 0, false
	}
	return r.bases[input] + pos - int64(k), true
}

// keyedReadBatchRows is the batch size of the rewrite's reads.
const keyedReadBatchRows = 16384

// Write reads the inputs with iceberg-go's scan (one file at a time, so
// rows come in file order, in the table's current schema), drops the
// Dead positions, and writes the rest to one data file at path in tbl's
// storage, in the inputs' partition (their spec and partition values;
// inputs of different partitions are an error), encoded as the table's
// properties ask: streamed through internal/pqgo, or arrow-go's writer
// (internal/pqfile) for a table pqgo does not write or inputs of an
// older partition spec. sc is the Arrow schema of the rows: the table's
// current schema as the writer maps it, field ids included. onBatch, if
// set, sees every batch read, in output order, with the rows of it that
// are written (nil: all), as it is written. The file is unreferenced
// until Stage's snapshot is committed; on an error it may be left partly
// written, for the orphan cleaner.
func (r *KeyedRewrite) Write(ctx context.Context, tbl *icetable.Table, sc *arrow.Schema, path string, onBatch func(rec arrow.RecordBatch, rows []int32) error) error {
	if r.live == 0 {
		return nil
	}
	part := PartitionKey(r.Inputs[0].File)
	for _, in := range r.Inputs[1:] {
		if PartitionKey(in.File) != part {
			return fmt.Errorf("rewrite %s and %s together: %w", r.Inputs[0].File.FilePath(), in.File.FilePath(), errMixedPartitions)
		}
	}
	spec, values, err := FilePartition(tbl.Metadata(), r.Inputs[0].File)
	if err != nil {
		return err
	}
	// pqgo unless it does not write this table (ErrUnsupported, before
	// anything is written) or the inputs are of an older spec.
	df, err := iceberg.DataFile(nil), error(pqgo.ErrUnsupported)
	if cur := tbl.Spec(); spec.ID() == cur.ID() && !r.ArrowWriter {
		df, err = r.writePqgo(ctx, tbl, sc, path, values, onBatch)
	}
	if errors.Is(err, pqgo.ErrUnsupported) {
		df, err = r.writeArrow(ctx, tbl, sc, path, spec, values, onBatch)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if df == nil || df.Count() != r.live {
		return fmt.Errorf("wrote %v rows, want %d", rowCount(df), r.live)
	}
	r.Output = df
	return nil
}

// writePqgo streams the live rows through a pqgo.FileWriter: a batch
// read is appended with the list of its live rows, no filtered copy.
func (r *KeyedRewrite) writePqgo(ctx context.Context, tbl *icetable.Table, sc *arrow.Schema, path string, values map[int]any,
	onBatch func(arrow.RecordBatch, []int32) error,
) (iceberg.DataFile, error) {
	w, err := pqgo.NewFileWriter(ctx, tbl, sc, path, values, pqgo.Options{})
	if err != nil {
		return nil, err
	}
	for i, in := range r.Inputs {
		err := readLive(ctx, tbl, sc, in, func(rec arrow.RecordBatch, rows []int32) error {
			var sel [][]int32
			if rows != nil {
				sel = [][]int32{rows}
			}
			// Appended first: an append pqgo refuses (ErrUnsupported, on
			// the first batch) leaves onBatch unseen for the arrow-go
			// writer to start over.
			if err := w.Append([]arrow.RecordBatch{rec}, sel); err != nil {
				return err
			}
			if onBatch != nil {
				return onBatch(rec, rows)
			}
			return nil
		})
		if err != nil {
			w.Abort()
			return nil, fmt.Errorf("copy input %d (%s): %w", i, in.File.FilePath(), err)
		}
	}
	return w.Close()
}

func rowCount(df iceberg.DataFile) int64 {
	if df == nil {
		return 0
	}
	return df.Count()
}

// writeArrow writes the live rows with arrow-go's writer, each batch
// filtered to its live rows.
func (r *KeyedRewrite) writeArrow(ctx context.Context, tbl *icetable.Table, sc *arrow.Schema, path string, spec iceberg.PartitionSpec, values map[int]any,
	onBatch func(arrow.RecordBatch, []int32) error,
) (iceberg.DataFile, error) {
	props, err := pqfile.ArrowProperties(tbl.Properties(), sc, 0)
	if err != nil {
		return nil, err
	}
	w, err := pqfile.Write(ctx, tbl, sc, path, props, func(fw *pqarrow.FileWriter) error {
		for i, in := range r.Inputs {
			err := readLive(ctx, tbl, sc, in, func(rec arrow.RecordBatch, rows []int32) error {
				if onBatch != nil {
					if err := onBatch(rec, rows); err != nil {
						return err
					}
				}
				if rows == nil {
					return fw.WriteBuffered(rec)
				}
				out, err := TakeRows(ctx, rec, rows)
				if err != nil {
					return err
				}
				defer out.Release()
				return fw.WriteBuffered(out)
			})
			if err != nil {
				return fmt.Errorf("copy input %d (%s): %w", i, in.File.FilePath(), err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return icetable.DataFileFromMetadata(icetable.DataFileArgs{
		Schema: tbl.Schema(), Spec: spec, PartitionValues: values, Format: iceberg.ParquetFile, Metadata: w.Meta,
		FilePath: path, FileSize: w.Size, Content: iceberg.EntryContentData,
		Properties: tbl.Properties(), FormatVersion: tbl.Metadata().Version(),
	})
}

// readLive reads in's rows and calls fn with every batch and the rows of
// it not in its Dead positions (nil: all of them), in file order; the
// batch is released when fn returns.
func readLive(ctx context.Context, tbl *icetable.Table, sc *arrow.Schema, in KeyedInput, fn func(rec arrow.RecordBatch, rows []int32) error) error {
	scan := tbl.Scan(icetable.WithMaxConcurrency(1), icetable.WithArrowBatchSize(keyedReadBatchRows))
	task := icetable.FileScanTask{File: in.File, Start: 0, Length: in.File.FileSizeBytes()}
	_, recs, err := scan.ReadTasks(ctx, []icetable.FileScanTask{task})
	if err != nil {
		return err
	}
	var pos int64
	dead := in.Dead
	var rows []int32
	for rec, err := range recs {
		if err != nil {
			return err
		}
		n := rec.NumRows()
		out, err := adopt(rec, sc)
		rec.Release()
		if err != nil {
			return err
		}
		// dead[:k] are the dead positions in [pos, pos+n).
		k, _ := slices.BinarySearch(dead, pos+n)
		var keep []int32 // nil: every row
		if k > 0 {
			rows = rows[:0]
			next := 0
			for i := range int32(n) {
				if next < k && dead[next]-pos == int64(i) {
					// Dead may repeat a position.
					for next < k && dead[next]-pos == int64(i) {
						next++
					}
					continue
				}
				rows = append(rows, i)
			}
			keep = rows
			dead = dead[k:]
		}
		pos += n
		if k == 0 || len(keep) > 0 { // not a batch of dead rows only
			err = fn(out, keep)
		}
		out.Release()
		if err != nil {
			return err
		}
	}
	if pos != in.File.Count() {
		return fmt.Errorf("read %d rows, the file has %d", pos, in.File.Count())
	}
	return nil
}

// TakeRows is rec's rows, in order, as a new batch (the keyed writer's
// files and the rewrite's arrow-go path both select rows this way).
func TakeRows(ctx context.Context, rec arrow.RecordBatch, rows []int32) (arrow.RecordBatch, error) {
	ib := array.NewInt32Builder(memory.DefaultAllocator)
	ib.AppendValues(rows, nil)
	idx := ib.NewArray()
	ib.Release()
	defer idx.Release()
	in, ix := compute.NewDatum(rec), compute.NewDatum(idx)
	defer in.Release()
	defer ix.Release()
	out, err := compute.Take(ctx, *compute.DefaultTakeOptions(), in, ix)
	if err != nil {
		return nil, err
	}
	rd, ok := out.(*compute.RecordDatum)
	if !ok {
		out.Release()
		return nil, fmt.Errorf("take returned %s, want a record batch", out.Kind())
	}
	return rd.Value, nil
}

// adopt gives rec the schema sc (field ids and nullability of the writer's
// mapping) when its columns have sc's types.
func adopt(rec arrow.RecordBatch, sc *arrow.Schema) (arrow.RecordBatch, error) {
	if int(rec.NumCols()) != sc.NumFields() {
		return nil, fmt.Errorf("read %d columns, want %d", rec.NumCols(), sc.NumFields())
	}
	for i, f := range sc.Fields() {
		if !arrow.TypeEqual(rec.Column(i).DataType(), f.Type) {
			return nil, fmt.Errorf("column %s: read %s, want %s", f.Name, rec.Column(i).DataType(), f.Type)
		}
	}
	return array.NewRecordBatch(sc, rec.Columns(), rec.NumRows()), nil
}

// errMixedPartitions: a rewrite's inputs are in different partitions.
var errMixedPartitions = errors.New("the files are in different partitions")

// errNoPlanSnapshot: the planning snapshot is gone (expired) and the
// rewrite cannot date its output.
var errNoPlanSnapshot = errors.New("the planning snapshot is no longer in the table")

// Stage stages the rewrite on txn as one replace snapshot with the summary
// properties props: Inputs out, Output in. merge, when not nil, is staged
// in the same snapshot (Drop and Replace out, Merged in): the writer
// passes one when rows of Output were deleted after planning, with their
// positions among merge.Keep, because iceberg-go adds a delete file in a
// rewrite only in place of others. The merged file inherits the largest
// data sequence number of the delete files it replaces; Output then
// takes the planning snapshot's, so that those deletes apply to it
// (Iceberg's use-starting-sequence-number; only position deletes, which
// name their file, apply to a keyed table). Write, and merge.Write,
// first. Stage does not check that the table still holds what was
// planned: that is the caller's.
func (r *KeyedRewrite) Stage(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties, merge *DeleteMerge) error {
	rw := txn.NewRewrite(props)
	for _, in := range r.Inputs {
		rw.DeleteFile(in.File)
	}
	if r.Output != nil {
		rw.AddDataFile(r.Output)
	}
	if merge != nil {
		for _, df := range merge.Drop {
			rw.DeleteFile(df)
		}
		for _, df := range merge.Replace {
			rw.DeleteFile(df)
		}
		for _, df := range merge.Merged {
			rw.AddDeleteFile(df)
		}
		if len(merge.Merged) > 0 {
			st, err := txn.StagedTable()
			if err != nil {
				return err
			}
			s := st.Metadata().SnapshotByID(r.PlanSnapshot)
			if s == nil {
				return fmt.Errorf("snapshot %d: %w", r.PlanSnapshot, errNoPlanSnapshot)
			}
			rw.DataSequenceNumber(s.SequenceNumber)
		}
	}
	return rw.Commit(ctx)
}
