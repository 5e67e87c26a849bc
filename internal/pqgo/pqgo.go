// Package pqgo writes Arrow record batches to Iceberg data files with
// parquet-go instead of pqarrow. Write is a drop-in for iceberg-go's
// table.WriteRecords: the same Arrow input (the table's schema as
// table.SchemaToArrowSchema derives it, field ids in the field metadata),
// the same output (DataFiles ready for Transaction.AddDataFiles) with the
// same partition values and column statistics, written through the
// table's IO at the locations its location provider gives, honouring the
// partition spec, the sort order (per batch, as iceberg-go), the
// compression codec, row group and page sizes and the target file size.
//
// Files carry Iceberg field ids on every column and the physical types
// pqarrow writes, except decimals of precision ≤ 18, which are INT32 or
// INT64 as the Iceberg spec recommends (parquet-go orders fixed-length
// decimals as unsigned bytes). Tables this package does not write —
// decimals above precision 18, nanosecond timestamps, variant and
// geospatial types, bloom filters, codecs parquet-go lacks, format version
// 3 — get an error wrapping ErrUnsupported: use the pqarrow path then.
package pqgo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	stdio "io"
	"maps"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"

	"github.com/floe-lake/floe/internal/pqfile"
)

// ErrUnsupported is wrapped by the errors of tables or inputs this
// package does not write; the caller should use iceberg-go's WriteRecords
// (pqarrow) for them. Nothing has been written when Write returns it.
var ErrUnsupported = errors.New("pqgo: not supported, the table needs the pqarrow path")

// Options tune Write. The zero value is the default.
type Options struct {
	// Workers bounds the goroutines encoding columns (and files, when
	// there are several partitions). Default GOMAXPROCS.
	Workers int
	// WriteUUID names the files ({partition}-{task}-{uuid}-{count}.parquet,
	// as iceberg-go). Default: random.
	WriteUUID uuid.UUID
	// TargetFileSize overrides write.target-file-size-bytes.
	TargetFileSize int64
	// RowGroupRows overrides write.parquet.row-group-limit.
	RowGroupRows int64
	// UnitRows is how many rows the column encoders take between
	// synchronisation points (file-size and row-group checks). Default
	// 65536.
	UnitRows int
	// ZstdLevel is the zstd level (1–22) used when the table's codec is
	// zstd and it does not set write.parquet.compression-level. Default:
	// zstd's default, 3.
	ZstdLevel int
	// FastSnappy compresses the pages of a snappy table with s2's fastest
	// Snappy-compatible encoder rather than parquet-go's (klauspost's
	// snappy.Encode, which searches harder for matches): the same format,
	// about half the CPU, pages a little larger where they compress.
	FastSnappy bool
}

// Supported reports whether Write handles the table with Arrow schema
// sc; the error wraps ErrUnsupported when it does not.
func Supported(tbl *icetable.Table, sc *arrow.Schema) error {
	_, _, _, err := prepare(tbl, sc, Options{})
	return err
}

func prepare(tbl *icetable.Table, sc *arrow.Schema, opts Options) (*config, *plan, *partitioner, error) {
	if v := tbl.Metadata().Version(); v > 2 {
		return nil, nil, nil, fmt.Errorf("%w: format version %d", ErrUnsupported, v)
	}
	cfg, err := loadConfig(tbl.Properties(), opts)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := compile(tbl.Schema(), sc, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	pt, err := newPartitioner(tbl.Spec(), tbl.Schema(), sc, tbl.SortOrder())
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, p, pt, nil
}

// newJob chooses the dictionaries, checks the Parquet schema and opens
// the table's IO for a write of recs (Write's and WriteFile's shared
// setup); the caller closes its pool.
func newJob(ctx context.Context, tbl *icetable.Table, cfg *config, p *plan, recs []arrow.RecordBatch, opts Options) (*job, error) {
	chooseDict(p, cfg, recs)
	schema := p.parquetSchema()
	if err := checkColumns(schema, p); err != nil {
		return nil, err
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	wfs, ok := fsys.(iceio.WriteFileIO)
	if !ok {
		return nil, fmt.Errorf("table IO %T cannot write files", fsys)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &job{
		ctx: ctx, tbl: tbl, cfg: cfg, plan: p, schema: schema, recs: recs,
		fs: wfs, spec: tbl.Spec(), unit: cmp.Or(max(opts.UnitRows, 0), 1<<16),
		workers: workers, pool: newPool(workers), order: leafOrder(p),
	}, nil
}

// Write encodes recs into Parquet data files of tbl and returns their
// DataFiles, for Transaction.AddDataFiles. sc is the batches' schema.
// Unlike WriteRecords, Write does not release recs: the caller keeps
// them (and may hand them to WriteRecords after an ErrUnsupported).
// Files written before an error are removed.
func Write(ctx context.Context, tbl *icetable.Table, sc *arrow.Schema, recs []arrow.RecordBatch, opts Options) ([]iceberg.DataFile, error) {
	cfg, p, pt, err := prepare(tbl, sc, opts)
	if err != nil {
		return nil, err
	}
	for b, rec := range recs {
		if !rec.Schema().Equal(sc) {
			return nil, fmt.Errorf("%w: batch %d has schema %s, want %s", ErrUnsupported, b, rec.Schema(), sc)
		}
		if err := pt.add(ctx, b, rec); err != nil {
			return nil, err
		}
	}
	var first arrow.RecordBatch
	for _, r := range recs {
		if r.NumRows() > 0 {
			first = r
			break
		}
	}
	if first == nil {
		return nil, nil
	}
	j, err := newJob(ctx, tbl, cfg, p, recs, opts)
	if err != nil {
		return nil, err
	}
	defer j.pool.close()
	props := tbl.Properties()
	rootURL, err := url.Parse(tbl.Location())
	if err != nil {
		return nil, err
	}
	loc, err := icetable.LoadLocationProvider(tbl.Location(), props)
	if err != nil {
		return nil, err
	}
	j.uuid = opts.WriteUUID
	if j.uuid == uuid.Nil {
		j.uuid = uuid.New()
	}
	j.loc = func(path string) (icetable.LocationProvider, error) {
		if path == "" {
			return loc, nil
		}
		pp := maps.Clone(props)
		if pp == nil {
			pp = iceberg.Properties{}
		}
		pp[icetable.WriteDataPathKey] = rootURL.JoinPath("data", path).String()
		return icetable.LoadLocationProvider(tbl.Location(), pp)
	}

	parts := pt.parts
	results := make([][]iceberg.DataFile, len(parts))
	errs := make([]error, len(parts))
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(j.workers, len(parts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(parts) || j.failed.Load() {
					return
				}
				results[i], errs[i] = j.writePartition(parts[i])
				if errs[i] != nil {
					j.failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	var files []iceberg.DataFile
	for _, r := range results {
		files = append(files, r...)
	}
	if err := errors.Join(errs...); err != nil {
		for _, f := range files {
			_ = j.fs.Remove(f.FilePath())
		}
		return nil, err
	}
	return files, nil
}

// checkColumns checks the plan's leaf indexes against the schema's.
func checkColumns(s *parquet.Schema, p *plan) error {
	cols := s.Columns()
	if len(cols) != len(p.leaves) {
		return fmt.Errorf("parquet schema has %d columns, plan %d", len(cols), len(p.leaves))
	}
	for _, lf := range p.leaves {
		if got := strings.Join(cols[lf.idx], "."); got != lf.path {
			return fmt.Errorf("parquet column %d is %s, plan has %s", lf.idx, got, lf.path)
		}
	}
	return nil
}

// job is one Write call.
type job struct {
	ctx    context.Context
	tbl    *icetable.Table
	cfg    *config
	plan   *plan
	schema *parquet.Schema
	recs   []arrow.RecordBatch
	fs     iceio.WriteFileIO
	spec   iceberg.PartitionSpec
	uuid   uuid.UUID
	unit   int
	pool   *pool
	// workers is the pool's size.
	workers int
	loc     func(path string) (icetable.LocationProvider, error)
	order   []int
	task    atomic.Int64
	failed  atomic.Bool
}

// pfile is one open data file.
type pfile struct {
	path string
	fw   iceio.FileWriter
	cw   *pqfile.CountingWriter
	// parquet.Writer is deprecated for writing Go values; pqgo writes
	// column pages through it directly, which GenericWriter does not offer.
	pw     *parquet.Writer //nolint:staticcheck // SA1019: see above
	encs   []*colEnc
	rows   int64
	rgRows int64
	rgBase int64 // pw.Size() when the row group started
}

func (j *job) open(part *partition, fileCount int, loc icetable.LocationProvider) (*pfile, error) {
	// As iceberg-go's dataFileName: {partitionID:05d}-{taskID}-{uuid}-{fileCount:05d}.parquet
	name := fmt.Sprintf("%05d-%d-%s-%05d.parquet", part.id, j.task.Add(1)-1, j.uuid, fileCount)
	path := loc.NewDataLocation(name)
	fw, err := j.fs.Create(path)
	if err != nil {
		return nil, err
	}
	f := j.newFile(&pqfile.CountingWriter{W: fw})
	f.path, f.fw = path, fw
	return f, nil
}

// newFile starts a Parquet file on cw.
func (j *job) newFile(cw *pqfile.CountingWriter) *pfile {
	f := &pfile{cw: cw}
	opts := []parquet.WriterOption{
		j.schema,
		parquet.Compression(j.cfg.codec),
		parquet.PageBufferSize(j.cfg.pageSize),
		parquet.DataPageVersion(j.cfg.pageVersion),
		parquet.DictionaryMaxBytes(j.cfg.dictSize),
		parquet.WriteBufferSize(1 << 20),
	}
	// Page headers carry no statistics (the column index and the column
	// chunks do): parquet-go would compute every page's bounds twice.
	for _, lf := range j.plan.leaves {
		opts = append(opts, parquet.SkipPageStatistics(strings.Split(lf.path, ".")...))
	}
	f.pw = parquet.NewWriter(f.cw, opts...)
	cws := f.pw.ColumnWriters()
	f.encs = make([]*colEnc, len(j.plan.leaves))
	for _, lf := range j.plan.leaves {
		f.encs[lf.idx] = newColEnc(lf, cws[lf.idx])
	}
	return f
}

// afterUnit counts the unit's rows and closes the row group when it is
// full.
func (j *job) afterUnit(f *pfile, unit []segment) error {
	n := 0
	for _, s := range unit {
		n += s.sel.n()
	}
	f.rows += int64(n)
	f.rgRows += int64(n)
	if size := f.pw.Size(); f.rgRows >= j.cfg.rowGroupRows || size-f.rgBase >= j.cfg.rowGroupBytes {
		if err := f.pw.Flush(); err != nil {
			return err
		}
		f.rgRows, f.rgBase = 0, f.pw.Size()
	}
	return nil
}

// leafOrder is the plan's leaves by decreasing cost, so the pool packs
// them well.
func leafOrder(p *plan) []int {
	order := make([]int, len(p.leaves))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return p.leaves[b].cost - p.leaves[a].cost })
	return order
}

func (j *job) abort(f *pfile) {
	_ = f.fw.Close()
	_ = j.fs.Remove(f.path)
}

func (j *job) finish(f *pfile, part *partition) (iceberg.DataFile, error) {
	if err := f.pw.Close(); err != nil {
		j.abort(f)
		return nil, err
	}
	if err := f.fw.Close(); err != nil {
		_ = j.fs.Remove(f.path)
		return nil, err
	}
	df, err := dataFile(j.spec, j.tbl.Schema(), j.plan.leaves, f.pw.File().Metadata(), f.path, f.cw.N, part)
	if err != nil {
		_ = j.fs.Remove(f.path)
		return nil, err
	}
	return df, nil
}

// writePartition writes a partition's rows into as many files as the
// target file size asks for.
func (j *job) writePartition(part *partition) (files []iceberg.DataFile, err error) {
	loc, err := j.loc(part.path)
	if err != nil {
		return nil, err
	}
	var f *pfile
	defer func() {
		if err != nil {
			if f != nil {
				j.abort(f)
			}
			for _, df := range files {
				_ = j.fs.Remove(df.FilePath())
			}
			files = nil
		}
	}()
	segs := part.segs
	var unit []segment
	for len(segs) > 0 {
		if err := j.ctx.Err(); err != nil {
			return files, err
		}
		if f == nil {
			if f, err = j.open(part, len(files)+1, loc); err != nil {
				return files, err
			}
		}
		// Take up to unit rows, without crossing the row group limit.
		want := int(min(int64(j.unit), j.cfg.rowGroupRows-f.rgRows))
		unit, segs = take(unit[:0], segs, want)
		if err := j.writeUnit(f, unit); err != nil {
			return files, err
		}
		if err := j.afterUnit(f, unit); err != nil {
			return files, err
		}
		if f.pw.Size() >= j.cfg.targetFileSize {
			df, err := j.finish(f, part)
			f = nil
			if err != nil {
				return files, err
			}
			files = append(files, df)
		}
	}
	if f != nil {
		df, err := j.finish(f, part)
		f = nil
		if err != nil {
			return files, err
		}
		files = append(files, df)
	}
	return files, nil
}

// take moves up to n rows from the front of segs into unit.
func take(unit, segs []segment, n int) ([]segment, []segment) {
	for n > 0 && len(segs) > 0 {
		s := segs[0]
		m := s.sel.n()
		if m <= n {
			unit = append(unit, s)
			segs = segs[1:]
			n -= m
			continue
		}
		unit = append(unit, segment{batch: s.batch, sel: s.sel.slice(0, n)})
		segs = append([]segment{{batch: s.batch, sel: s.sel.slice(n, m)}}, segs[1:]...)
		n = 0
	}
	return unit, segs
}

// writeUnit encodes the unit's rows into every column, in parallel.
func (j *job) writeUnit(f *pfile, unit []segment) error {
	errs := make([]error, len(f.encs))
	var wg sync.WaitGroup
	for _, li := range j.order {
		e := f.encs[j.plan.leaves[li].idx]
		wg.Add(1)
		j.pool.run(func() {
			defer wg.Done()
			for _, s := range unit {
				if err := e.write(j.recs[s.batch], s.sel); err != nil {
					errs[e.lf.idx] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// pool runs tasks on a fixed set of goroutines.
type pool struct {
	tasks chan func()
	wg    sync.WaitGroup
}

func newPool(n int) *pool {
	p := &pool{tasks: make(chan func(), 256)}
	for range n {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for t := range p.tasks {
				t()
			}
		}()
	}
	return p
}

func (p *pool) run(t func()) { p.tasks <- t }

func (p *pool) close() {
	close(p.tasks)
	p.wg.Wait()
}

// Encode writes recs as one Parquet file to w, the way Write encodes a
// data file (schema, field ids, encodings, codec, row groups, column
// encoders in parallel), without partitioning, file rolling, statistics or
// the table's IO: the encoding cost alone, for benchmarks and tools. It
// returns the bytes written.
func Encode(w stdio.Writer, tbl *icetable.Table, sc *arrow.Schema, recs []arrow.RecordBatch, opts Options) (int64, error) {
	cfg, p, _, err := prepare(tbl, sc, opts)
	if err != nil {
		return 0, err
	}
	var first arrow.RecordBatch
	part := &partition{}
	for b, r := range recs {
		if r.NumRows() == 0 {
			continue
		}
		if first == nil {
			first = r
		}
		part.segs = append(part.segs, segment{batch: b, sel: sel{lo: 0, hi: int(r.NumRows())}})
		part.rows += r.NumRows()
	}
	chooseDict(p, cfg, recs)
	schema := p.parquetSchema()
	if err := checkColumns(schema, p); err != nil {
		return 0, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	j := &job{cfg: cfg, plan: p, schema: schema, recs: recs, unit: cmp.Or(opts.UnitRows, 1<<16), pool: newPool(workers)}
	defer j.pool.close()
	j.order = leafOrder(p)
	cw := &pqfile.CountingWriter{W: w}
	f := j.newFile(cw)
	segs := part.segs
	var unit []segment
	for len(segs) > 0 {
		unit, segs = take(unit[:0], segs, int(min(int64(j.unit), cfg.rowGroupRows-f.rgRows)))
		if err := j.writeUnit(f, unit); err != nil {
			return cw.N, err
		}
		if err := j.afterUnit(f, unit); err != nil {
			return cw.N, err
		}
	}
	err = f.pw.Close()
	return cw.N, err
}
