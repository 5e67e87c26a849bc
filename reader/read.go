package reader

import (
	"context"
	"fmt"
	"iter"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	icetable "github.com/apache/iceberg-go/table"
)

// changelogSchema is sc with the changelog columns appended.
func changelogSchema(sc *arrow.Schema) *arrow.Schema {
	fields := append(sc.Fields(),
		arrow.Field{Name: ColChangeType, Type: arrow.BinaryTypes.String},
		arrow.Field{Name: ColChangeOrdinal, Type: arrow.PrimitiveTypes.Int32},
		arrow.Field{Name: ColCommitSnapshotID, Type: arrow.PrimitiveTypes.Int64},
	)
	md := sc.Metadata()
	return arrow.NewSchema(fields, &md)
}

// unitReader reads planned units with one scan (its projection, filter and
// concurrency).
type unitReader struct {
	r      *Reader
	scan   *icetable.Scan
	post   *postFilter // nil: the scan applies the whole filter
	schema *arrow.Schema
	name   string
}

// readScan reads tasks with the scan, filtered by the post filter.
func (u *unitReader) readScan(ctx context.Context, tasks []icetable.FileScanTask) (iter.Seq2[arrow.RecordBatch, error], error) {
	_, seq, err := u.scan.ReadTasks(ctx, tasks)
	if err != nil {
		return nil, err
	}
	return u.post.wrap(ctx, seq), nil
}

type yieldFn = func(arrow.RecordBatch, error) bool

func (u *unitReader) read(ctx context.Context, units []unit, yield yieldFn) {
	if u.r.cfg.Mode == ModeAppend {
		// Only inserts: one read, files in parallel across snapshots.
		var tasks []icetable.FileScanTask
		for _, un := range units {
			tasks = append(tasks, un.tasks...)
		}
		u.readTasks(ctx, tasks, nil, yield)
		return
	}
	for _, un := range units {
		var ok bool
		switch un.kind {
		case unitInsert:
			ok = u.readTasks(ctx, un.tasks, u.tagger(ChangeInsert, un), yield)
		case unitDelete:
			ok = u.readTasks(ctx, un.tasks, u.tagger(ChangeDelete, un), yield)
		case unitDiff:
			ok = u.readDiff(ctx, un, yield)
		}
		if !ok {
			return
		}
	}
}

// readTasks yields the rows of tasks, each batch passed through tag when it
// is not nil. It returns false when the iteration ended (consumer stopped,
// or an error was yielded).
func (u *unitReader) readTasks(ctx context.Context, tasks []icetable.FileScanTask, tag func(arrow.RecordBatch) arrow.RecordBatch, yield yieldFn) bool {
	if len(tasks) == 0 {
		return true
	}
	seq, err := u.readScan(ctx, tasks)
	if err != nil {
		yield(nil, fmt.Errorf("read data files of %s: %w", u.name, err))
		return false
	}
	for rec, err := range seq {
		if err != nil {
			yield(nil, fmt.Errorf("read data files of %s: %w", u.name, err))
			return false
		}
		if rec.NumRows() == 0 {
			rec.Release()
			continue
		}
		if tag != nil {
			rec = tag(rec)
		}
		if !yield(rec, nil) {
			return false
		}
	}
	return true
}

// tagger returns a function that appends the changelog columns of un's
// change kind to a batch, taking ownership of it.
func (u *unitReader) tagger(kind string, un unit) func(arrow.RecordBatch) arrow.RecordBatch {
	return func(rec arrow.RecordBatch) arrow.RecordBatch {
		defer rec.Release()
		n := int(rec.NumRows())
		mem := memory.DefaultAllocator
		kb := array.NewStringBuilder(mem)
		ob := array.NewInt32Builder(mem)
		sb := array.NewInt64Builder(mem)
		defer kb.Release()
		defer ob.Release()
		defer sb.Release()
		kb.Reserve(n)
		ob.Reserve(n)
		sb.Reserve(n)
		for range n {
			kb.Append(kind)
			ob.Append(un.ordinal)
			sb.Append(un.snapshot)
		}
		extra := []arrow.Array{kb.NewArray(), ob.NewArray(), sb.NewArray()}
		defer func() {
			for _, a := range extra {
				a.Release()
			}
		}()
		cols := append(append([]arrow.Array{}, rec.Columns()...), extra...)
		return array.NewRecordBatch(u.schema, cols, int64(n))
	}
}

// readDiff yields, as deleted rows, the rows of un.before (the data file
// read with the deletes that applied before the snapshot) that are missing
// from un.after (read with the snapshot's deletes). Both reads return the
// file's surviving rows in file order, and the rows of after are a
// subsequence of the rows of before, so a merge that matches each row of
// after with the next equal row of before finds the deleted rows in one
// pass over both, holding one batch of each. When equal rows are deleted,
// which of them is reported cannot be told apart in the output.
func (u *unitReader) readDiff(ctx context.Context, un unit, yield yieldFn) bool {
	beforeSeq, err := u.readScan(ctx, []icetable.FileScanTask{un.before})
	if err != nil {
		yield(nil, fmt.Errorf("read data file %s of %s: %w", un.before.File.FilePath(), u.name, err))
		return false
	}
	afterSeq, err := u.readScan(ctx, []icetable.FileScanTask{un.after})
	if err != nil {
		yield(nil, fmt.Errorf("read data file %s of %s: %w", un.after.File.FilePath(), u.name, err))
		return false
	}
	after := newRowCursor(afterSeq)
	defer after.close()
	tag := u.tagger(ChangeDelete, un)
	for rec, err := range beforeSeq {
		if err != nil {
			yield(nil, fmt.Errorf("read data file %s of %s: %w", un.before.File.FilePath(), u.name, err))
			return false
		}
		keys := rowKeys(rec)
		mb := array.NewBooleanBuilder(memory.DefaultAllocator)
		mb.Reserve(len(keys))
		deleted := 0
		for _, k := range keys {
			next, ok, err := after.peek()
			if err != nil {
				mb.Release()
				rec.Release()
				yield(nil, fmt.Errorf("read data file %s of %s: %w", un.after.File.FilePath(), u.name, err))
				return false
			}
			if ok && next == k {
				after.advance()
				mb.Append(false)
				continue
			}
			mb.Append(true)
			deleted++
		}
		mask := mb.NewArray()
		mb.Release()
		if deleted == 0 {
			mask.Release()
			rec.Release()
			continue
		}
		out, err := compute.FilterRecordBatch(ctx, rec, mask, compute.DefaultFilterOptions())
		mask.Release()
		rec.Release()
		if err != nil {
			yield(nil, fmt.Errorf("filter deleted rows of %s: %w", un.before.File.FilePath(), err))
			return false
		}
		if !yield(tag(out), nil) {
			return false
		}
	}
	if _, ok, err := after.peek(); err != nil || ok {
		if err == nil {
			err = fmt.Errorf("rows of data file %s of %s after snapshot %d's deletes are not a subset of its rows before them",
				un.after.File.FilePath(), u.name, un.snapshot)
		}
		yield(nil, err)
		return false
	}
	return true
}

// rowCursor walks the rows of a batch iterator, as row keys.
type rowCursor struct {
	next func() (arrow.RecordBatch, error, bool)
	stop func()
	keys []string
	i    int
	done bool
}

func newRowCursor(seq iter.Seq2[arrow.RecordBatch, error]) *rowCursor {
	next, stop := iter.Pull2(seq)
	return &rowCursor{next: next, stop: stop}
}

// peek returns the current row's key; ok is false at the end.
func (c *rowCursor) peek() (key string, ok bool, err error) {
	for c.i >= len(c.keys) {
		if c.done {
			return "", false, nil
		}
		rec, err, more := c.next()
		if !more {
			c.done = true
			return "", false, nil
		}
		if err != nil {
			c.done = true
			return "", false, err
		}
		c.keys, c.i = rowKeys(rec), 0
		rec.Release()
	}
	return c.keys[c.i], true, nil
}

func (c *rowCursor) advance() { c.i++ }

func (c *rowCursor) close() { c.stop() }

// rowKeys encodes each row of rec as a string; equal rows, equal keys.
func rowKeys(rec arrow.RecordBatch) []string {
	n := int(rec.NumRows())
	keys := make([]string, n)
	var b strings.Builder
	for i := range n {
		b.Reset()
		for _, c := range rec.Columns() {
			if c.IsNull(i) {
				b.WriteString("N;")
				continue
			}
			v := c.ValueStr(i)
			b.WriteString(strconv.Itoa(len(v)))
			b.WriteByte(':')
			b.WriteString(v)
		}
		keys[i] = b.String()
	}
	return keys
}
