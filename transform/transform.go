package transform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/query"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// Options tune a Transformer. Zero values take the defaults.
type Options struct {
	// PollInterval is how often a caught-up stream polls the source.
	// Default: 1s.
	PollInterval time.Duration
	// MaxBatchDelay bounds how long a streaming batch waits after its
	// first change before it is committed. Default: 2s.
	MaxBatchDelay time.Duration
	// MaxBatchRows commits a streaming batch once it holds this many
	// source rows. Default: 1,000,000.
	MaxBatchRows int64
	// Concurrency is how many files are read, and (backfill) batches
	// transformed, in parallel. Default: min(GOMAXPROCS, 8).
	Concurrency int
	// CommitTimeout bounds one commit, retries included, and the final
	// commit after cancellation. Default: 2m.
	CommitTimeout time.Duration
	// WriterID goes into every summary as floe.writer-id. Default:
	// "floe-transform".
	WriterID string
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Clock; default the system clock.
	Clock reader.Clock
	// Allocator for the records built. Default: memory.DefaultAllocator.
	Allocator memory.Allocator
	// Hooks run around every commit (crash tests).
	Hooks Hooks
	// OnCommit, when set, is called after every commit.
	OnCommit func(CommitInfo)
}

// Hooks are called around commits.
type Hooks struct {
	BeforeCommit, AfterCommit func()
}

func (o *Options) applyDefaults() {
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.MaxBatchDelay <= 0 {
		o.MaxBatchDelay = 2 * time.Second
	}
	if o.MaxBatchRows <= 0 {
		o.MaxBatchRows = 1_000_000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = min(runtime.GOMAXPROCS(0), 8)
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 2 * time.Minute
	}
	if o.WriterID == "" {
		o.WriterID = "floe-transform"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = reader.SystemClock()
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
}

// CommitInfo describes one commit to the output table.
type CommitInfo struct {
	// Kind: stream (rows and cursor), cursor (the cursor alone: no row
	// passed) or backfill.
	Kind       string
	SnapshotID int64
	// Cursor is the source snapshot the output covers after the commit.
	Cursor int64
	// Changes is the number of source snapshots in the commit.
	Changes    int
	SourceRows int64
	// Rows is the number of output rows written.
	Rows     int64
	Duration time.Duration
}

// Result sums a run's commits.
type Result struct {
	Cursor     int64
	SourceRows int64
	Rows       int64
	Commits    int
}

// Transformer runs one spec. It runs one operation at a time; it is not
// safe for concurrent use.
type Transformer struct {
	cat       icecat.Catalog
	spec      Spec
	opts      Options
	log       *slog.Logger
	plan      *plan
	src       *reader.Reader
	srcName   string
	dims      []*dimTable
	committer *table.Committer
	// out is the output table's Arrow schema; outMap maps each of its
	// fields to the plan's output column, or -1 (a column the spec does
	// not fill: null).
	out    *arrow.Schema
	outMap []int
	dedup  *dedupPlan
	// state is the dedup state as of the output's last commit by this
	// Transformer; nil: rebuild it from the table.
	state *dedupState
	// keyed, for a keyed output (a keyed source whose key the select
	// list keeps): the key's columns.
	keyed *keyedPlan
}

// New binds spec to its tables: the source's and the dimensions' current
// schemas, and the output table, which it creates (table.Ensure) from the
// select list when missing.
func New(ctx context.Context, cat icecat.Catalog, spec Spec, opts Options) (*Transformer, error) {
	opts.applyDefaults()
	if err := spec.Validate(); err != nil {
		return nil, permanent(err)
	}
	t := &Transformer{cat: cat, spec: spec, opts: opts, log: opts.Logger.With("transform", spec.name())}
	sel, err := parseSelect(spec.SQL)
	if err != nil {
		return nil, permanent(fmt.Errorf("transform %s: %w", spec.name(), err))
	}
	t.srcName = sel.From.Name
	if t.srcName == spec.Output {
		return nil, permanent(fmt.Errorf("transform %s: the output %s is its own source", spec.name(), spec.Output))
	}
	rcfg := reader.Config{Concurrency: opts.Concurrency, PollInterval: opts.PollInterval, Logger: opts.Logger, Clock: opts.Clock}
	srcR, err := reader.New(cat, t.srcName, rcfg)
	if err != nil {
		return nil, permanent(err)
	}
	srcTbl, err := srcR.Load(ctx)
	if err != nil {
		return nil, classifyLoad(err)
	}
	dimReaders := make([]*reader.Reader, len(sel.Joins))
	dimSchemas := make([]*iceberg.Schema, len(sel.Joins))
	for i, j := range sel.Joins {
		if j.Table.Name == spec.Output {
			return nil, permanent(fmt.Errorf("transform %s: the output %s is joined", spec.name(), spec.Output))
		}
		if dimReaders[i], err = reader.New(cat, j.Table.Name, rcfg); err != nil {
			return nil, permanent(err)
		}
		dt, err := dimReaders[i].Load(ctx)
		if err != nil {
			return nil, classifyLoad(err)
		}
		dimSchemas[i] = dt.Schema()
	}
	if t.plan, err = bind(sel, srcTbl.Schema(), dimSchemas); err != nil {
		return nil, permanent(fmt.Errorf("transform %s: %w", spec.name(), err))
	}
	for i, d := range t.plan.dims {
		for k, right := range d.right {
			f, _ := d.rel.sc.FindFieldByName(right)
			rt, err := arrowType(f)
			if err != nil {
				return nil, permanent(err)
			}
			if lt := d.left[k].typ; !compatible(lt, rt) {
				return nil, permanent(fmt.Errorf("transform %s: join %s: ON %s = %s compares %s with %s: cast one side",
					spec.name(), sel.Joins[i].Table.Name, sel.Joins[i].Keys[k].Left, right, lt, rt))
			}
		}
		t.dims = append(t.dims, &dimTable{plan: d, reader: dimReaders[i], mem: opts.Allocator, clock: opts.Clock})
	}
	rcfg.Mode = reader.ModeChangelog
	rcfg.Columns = t.plan.src.cols
	if t.src, err = reader.New(cat, t.srcName, rcfg); err != nil {
		return nil, permanent(err)
	}
	srcKey := identifierNames(srcTbl.Schema())
	keyNames := t.plan.keyedOutput(srcTbl.Schema())
	if keyNames != nil && spec.Dedup != nil {
		return nil, permanent(fmt.Errorf("transform %s: dedup over a keyed source (%s, key %v) is %w: its changes are applied by key instead",
			spec.name(), t.srcName, srcKey, ErrUnsupported))
	}
	if keyNames != nil && len(spec.Partition) > 0 {
		return nil, permanent(fmt.Errorf("transform %s: a keyed output (the key %v of %s) must be unpartitioned: an equality delete in one partition would miss a row in another",
			spec.name(), srcKey, t.srcName))
	}
	outTbl, err := table.Ensure(ctx, cat, t.plan.outputSpec(spec, keyNames))
	if err != nil {
		if errors.Is(err, table.ErrIncompatibleSchema) {
			return nil, permanent(fmt.Errorf("transform %s: %w", spec.name(), err))
		}
		return nil, fmt.Errorf("transform %s: %w", spec.name(), err)
	}
	if t.out, err = icetable.SchemaToArrowSchema(outTbl.Schema(), nil, true, false); err != nil {
		return nil, permanent(fmt.Errorf("transform %s: arrow schema of %s: %w", spec.name(), spec.Output, err))
	}
	t.outMap = make([]int, t.out.NumFields())
	for i, f := range t.out.Fields() {
		t.outMap[i] = -1
		for j, o := range t.plan.out {
			if o.name == f.Name {
				t.outMap[i] = j
			}
		}
	}
	if keyNames != nil {
		if t.keyed, err = newKeyedPlan(t.plan, keyNames, srcKey, t.out, outTbl.Schema()); err != nil {
			return nil, permanent(fmt.Errorf("transform %s: %w", spec.name(), err))
		}
	}
	if spec.Dedup != nil {
		if t.dedup, err = newDedupPlan(*spec.Dedup, t.out); err != nil {
			return nil, permanent(fmt.Errorf("transform %s: %w", spec.name(), err))
		}
	}
	ident, _ := table.ParseIdent(spec.Output)
	t.committer = table.NewCommitter(cat, ident, table.CommitterConfig{
		WriterID: opts.WriterID, Timeout: opts.CommitTimeout, Logger: opts.Logger,
		Now: opts.Clock.Now,
	})
	return t, nil
}

// identifierNames names a schema's identifier fields.
func identifierNames(sc *iceberg.Schema) []string {
	var out []string
	for _, id := range sc.IdentifierFieldIDs {
		if f, ok := sc.FindFieldByID(id); ok {
			out = append(out, f.Name)
		}
	}
	return out
}

// classifyLoad marks a table that does not exist as permanent.
func classifyLoad(err error) error {
	if errors.Is(err, icecat.ErrNoSuchTable) {
		return permanent(err)
	}
	return err
}

// Close releases the dimension indexes.
func (t *Transformer) Close() {
	for _, d := range t.dims {
		d.close()
	}
}

// Source is the source table's name; Output the output's.
func (t *Transformer) Source() string { return t.srcName }

// Output is the output table's name.
func (t *Transformer) Output() string { return t.spec.Output }

// job is one source batch to transform: its rows, the source snapshot
// they came from, and the dimension versions they join.
type job struct {
	rec      arrow.RecordBatch
	snapshot int64
	dims     []*dimIndex
	// del: the batch holds DELETE rows (keyed outputs only).
	del bool
}

// prepare checks a source batch (no deletes unless the output is keyed)
// and finds the dimension versions it joins: those current at its
// snapshot's commit time.
func (t *Transformer) prepare(ctx context.Context, rec arrow.RecordBatch, snap reader.SnapshotInfo) (job, error) {
	j := job{rec: rec, snapshot: snap.ID, dims: make([]*dimIndex, len(t.dims))}
	if idx := rec.Schema().FieldIndices(reader.ColChangeType); len(idx) > 0 {
		del, err := deleteBatch(rec.Column(idx[0]))
		switch {
		case err != nil:
			return job{}, fmt.Errorf("transform %s: %s snapshot %d: %w", t.spec.name(), t.srcName, snap.ID, err)
		case del && t.keyed == nil:
			hint := ""
			if key := identifierNames(t.plan.src.sc); len(key) > 0 {
				hint = fmt.Sprintf(" (keep its key %v in the select list for a keyed output that applies them)", key)
			}
			return job{}, permanent(fmt.Errorf("transform %s: %s snapshot %d (%s, committed %s): %w%s",
				t.spec.name(), t.srcName, snap.ID, snap.Operation, snap.Time.Format(time.RFC3339), ErrSourceDeletes, hint))
		case del:
			j.del = true
			return j, nil
		}
	}
	for i, d := range t.dims {
		x, err := d.versionAt(ctx, snap.Time)
		if err != nil {
			return job{}, err
		}
		j.dims[i] = x
	}
	return j, nil
}

// ErrSourceDeletes fails a transform with an append-only output whose
// source deletes or updates rows.
var ErrSourceDeletes = errors.New("the source deleted or updated rows, which an append-only output cannot apply")

// deleteBatch reports whether a changelog batch holds DELETE rows: the
// reader tags a batch's rows with one change type.
func deleteBatch(col arrow.Array) (bool, error) {
	s, ok := col.(*array.String)
	if !ok || s.Len() == 0 {
		return false, nil
	}
	del := s.Value(0) == reader.ChangeDelete
	for i := 1; i < s.Len(); i++ {
		if (s.Value(i) == reader.ChangeDelete) != del {
			return false, errors.New("a batch mixes inserted and deleted rows")
		}
	}
	return del, nil
}

// run transforms one batch: filter, joins, projection. It returns nil
// when no row passes. It does not dedup (that runs in source order, after
// it) and is safe to call from several goroutines.
func (t *Transformer) run(ctx context.Context, j job) (arrow.RecordBatch, error) {
	if j.del {
		return t.keys(ctx, j.rec)
	}
	p := t.plan
	rec := j.rec
	n := rec.NumRows()
	cols := make([]arrow.Array, 0, p.joined.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for i, name := range p.src.cols {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("source column %s missing from the rows read", name)
		}
		c := rec.Column(idx[0])
		if !arrow.TypeEqual(c.DataType(), p.src.fields[i].Type) {
			return nil, fmt.Errorf("source column %s is now %s, was %s when the transform started: restarting binds it anew", name, c.DataType(), p.src.fields[i].Type)
		}
		c.Retain()
		cols = append(cols, c)
	}
	filter := func(sc *arrow.Schema, cond *query.Program) error {
		r := array.NewRecordBatch(sc, cols, n)
		defer r.Release()
		mask, err := cond.Eval(r)
		if err != nil {
			return fmt.Errorf("WHERE: %w", err)
		}
		defer mask.Release()
		kept, err := compute.FilterRecordBatch(ctx, r, mask, compute.DefaultFilterOptions())
		if err != nil {
			return fmt.Errorf("WHERE: %w", err)
		}
		defer kept.Release()
		for i := range cols {
			cols[i].Release()
			cols[i] = kept.Column(i)
			cols[i].Retain()
		}
		n = kept.NumRows()
		return nil
	}
	if p.early != nil {
		if err := filter(p.schemas[0], p.early); err != nil {
			return nil, err
		}
	}
	if n == 0 {
		return nil, nil
	}
	var rows []int32
	for di, d := range p.dims {
		r := array.NewRecordBatch(p.schemas[di], cols, n)
		keys := make([]arrow.Array, len(d.left))
		var err error
		for k, op := range d.left {
			if keys[k], err = op.eval(r); err != nil {
				break
			}
		}
		if err == nil {
			rows, err = j.dims[di].lookup(keys, rows)
		}
		r.Release()
		for _, k := range keys {
			if k != nil {
				k.Release()
			}
		}
		if err != nil {
			return nil, fmt.Errorf("join %s: %w", d.rel.table, err)
		}
		taken, err := take(ctx, t.opts.Allocator, j.dims[di].cols, rows)
		if err != nil {
			return nil, fmt.Errorf("join %s: %w", d.rel.table, err)
		}
		cols = append(cols, taken...)
	}
	if p.where != nil {
		if err := filter(p.joined, p.where); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, nil
		}
	}
	joined := array.NewRecordBatch(p.joined, cols, n)
	defer joined.Release()
	out := make([]arrow.Array, len(t.outMap))
	defer func() {
		for _, c := range out {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, m := range t.outMap {
		want := t.out.Field(i).Type
		var a arrow.Array
		switch {
		case m < 0:
			a = array.MakeArrayOfNull(t.opts.Allocator, want, int(n))
		case p.out[m].prog != nil:
			var err error
			if a, err = p.out[m].prog.Eval(joined); err != nil {
				return nil, fmt.Errorf("select item %s: %w", p.out[m].name, err)
			}
		default:
			a = cols[p.out[m].field]
			a.Retain()
		}
		if !arrow.TypeEqual(a.DataType(), want) {
			c, err := compute.CastArray(ctx, a, compute.SafeCastOptions(want))
			a.Release()
			if err != nil {
				return nil, fmt.Errorf("output column %s: %w", t.out.Field(i).Name, err)
			}
			a = c
		}
		out[i] = a
	}
	res := array.NewRecordBatch(t.out, out, n)
	return res, nil
}

// take gathers the dimension rows of a join: row -1 is null.
func take(ctx context.Context, mem memory.Allocator, cols []arrow.Array, rows []int32) ([]arrow.Array, error) {
	b := array.NewInt32Builder(mem)
	defer b.Release()
	valid := make([]bool, len(rows))
	any := false
	for i, r := range rows {
		valid[i] = r >= 0
		any = any || r >= 0
	}
	out := make([]arrow.Array, len(cols))
	if !any {
		for i, c := range cols {
			out[i] = array.MakeArrayOfNull(mem, c.DataType(), len(rows))
		}
		return out, nil
	}
	b.AppendValues(rows, valid)
	idx := b.NewArray()
	defer idx.Release()
	for i, c := range cols {
		a, err := compute.TakeArray(ctx, c, idx)
		if err != nil {
			for _, o := range out[:i] {
				o.Release()
			}
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}
