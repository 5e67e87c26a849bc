package reader

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/table"
)

// TableLoader loads a table; every iceberg-go catalog is one. Tests wrap it
// to hand out tables with instrumented IO.
type TableLoader interface {
	LoadTable(ctx context.Context, ident icetable.Identifier) (*icetable.Table, error)
}

// LoaderFunc adapts a function to TableLoader.
type LoaderFunc func(ctx context.Context, ident icetable.Identifier) (*icetable.Table, error)

// LoadTable calls f.
func (f LoaderFunc) LoadTable(ctx context.Context, ident icetable.Identifier) (*icetable.Table, error) {
	return f(ctx, ident)
}

// Reader reads one table. It is safe for concurrent use.
type Reader struct {
	loader TableLoader
	ident  icetable.Identifier
	name   string
	cfg    Config
	filter iceberg.BooleanExpression
	cache  *ManifestCache
}

// New returns a Reader of the table name ("namespace.table") loaded through
// loader. cfg takes defaults for unset fields and must then be valid.
func New(loader TableLoader, name string, cfg Config) (*Reader, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ident, err := table.ParseIdent(name)
	if err != nil {
		return nil, err
	}
	cfg.Columns = slices.Clone(cfg.Columns)
	cache := cfg.ManifestCache
	if cache == nil {
		cache = NewManifestCache(DefaultManifestCacheBytes)
	}
	return &Reader{loader: loader, ident: ident, name: name, cfg: cfg, filter: cfg.rowFilter(), cache: cache}, nil
}

// Name is the table's name.
func (r *Reader) Name() string { return r.name }

// Config is the reader's configuration, defaults applied.
func (r *Reader) Config() Config { return r.cfg }

// Load loads the table's current metadata. The table it returns opens its
// file IO once, on first use, and shares it between all the reads made
// with it: iceberg-go's catalogs build a new IO (for S3, a new client) on
// every use otherwise, which costs more than reading a small file. A table
// is loaded afresh for every read and every Tail poll, so credentials a
// catalog vends are renewed at that pace.
func (r *Reader) Load(ctx context.Context) (*icetable.Table, error) {
	tbl, err := r.loader.LoadTable(ctx, r.ident)
	if err != nil {
		return nil, fmt.Errorf("load table %s: %w", r.name, err)
	}
	fsOnce := sync.OnceValues(func() (iceio.IO, error) {
		// The IO may keep the context it was made with for later calls.
		return tbl.FS(context.WithoutCancel(ctx))
	})
	fsF := func(context.Context) (iceio.IO, error) { return fsOnce() }
	cat, _ := r.loader.(icetable.CatalogIO)
	return icetable.New(tbl.Identifier(), tbl.Metadata(), tbl.MetadataLocation(), fsF, cat), nil
}

// SnapshotInfo describes one snapshot.
type SnapshotInfo struct {
	ID int64
	// ParentID is 0 for a table's first snapshot.
	ParentID int64
	Sequence int64
	Time     time.Time
	// Operation is Iceberg's: append, replace, overwrite, delete.
	Operation string
}

func infoOf(s *icetable.Snapshot) SnapshotInfo {
	info := SnapshotInfo{ID: s.SnapshotID, Sequence: s.SequenceNumber, Time: time.UnixMilli(s.TimestampMs).UTC()}
	if s.ParentSnapshotID != nil {
		info.ParentID = *s.ParentSnapshotID
	}
	if s.Summary != nil {
		info.Operation = string(s.Summary.Operation)
	}
	return info
}

// Stream is the result of one read: its Arrow schema, what it covers, and
// its record batches, read lazily when Records is iterated.
type Stream struct {
	// Schema of every batch: the table's projected columns, plus the
	// changelog columns in ModeChangelog.
	Schema *arrow.Schema
	// Snapshots the read covers, oldest first, replace snapshots included.
	Snapshots []SnapshotInfo
	// Files is the number of data file reads planned, Rows the rows those
	// files hold before filtering (an upper bound of the rows returned, for
	// progress) and Bytes their size.
	Files int
	Rows  int64
	Bytes int64

	ctx  context.Context
	read func(ctx context.Context, yield func(arrow.RecordBatch, error) bool)
	used atomic.Bool
}

// Records iterates the stream's batches; the caller must Release each one.
// Files are read Config.Concurrency at a time and returned in plan order,
// under the context of the call that made the stream: cancelling it ends
// the iteration with its error.
// An error ends the iteration. A Stream can be iterated once; a second
// iteration yields ErrStreamConsumed.
func (s *Stream) Records() iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		if s.used.Swap(true) {
			yield(nil, ErrStreamConsumed)
			return
		}
		if s.read != nil {
			s.read(s.ctx, yield)
		}
	}
}

// Change is one snapshot's changes, as Tail yields them.
type Change struct {
	Snapshot SnapshotInfo
	*Stream
}

// At selects the snapshot of a backfill read: by id, else by time (the
// snapshot current at that time), else the current snapshot.
type At struct {
	SnapshotID int64
	Time       time.Time
}

// Current returns the id of the table's current snapshot, 0 for a table
// without snapshots.
func Current(tbl *icetable.Table) int64 {
	if s := tbl.CurrentSnapshot(); s != nil {
		return s.SnapshotID
	}
	return 0
}

// Changes reads the changes after snapshot from (exclusive; 0 means from
// the table's first snapshot) up to snapshot to (inclusive; 0 means the
// current snapshot), as of the table's current metadata.
func (r *Reader) Changes(ctx context.Context, from, to int64) (*Stream, error) {
	tbl, err := r.Load(ctx)
	if err != nil {
		return nil, err
	}
	return r.ChangesIn(ctx, tbl, from, to)
}

// ChangesIn is Changes on an already loaded table.
func (r *Reader) ChangesIn(ctx context.Context, tbl *icetable.Table, from, to int64) (*Stream, error) {
	if to == 0 {
		to = Current(tbl)
		if to == 0 {
			if from != 0 {
				return nil, fmt.Errorf("read %s after snapshot %d: %w: the table has no snapshots", r.name, from, ErrSnapshotNotFound)
			}
			return r.stream(ctx, tbl, nil, nil)
		}
	}
	snaps, err := snapshotsBetween(r.name, tbl.Metadata(), from, to)
	if err != nil {
		return nil, err
	}
	var units []unit
	for i := range snaps {
		u, err := r.planSnapshot(ctx, tbl, &snaps[i], int32(i))
		if err != nil {
			return nil, err
		}
		units = append(units, u...)
	}
	return r.stream(ctx, tbl, snaps, units)
}

// Snapshot reads the whole table as of a snapshot (a backfill), as of the
// table's current metadata.
func (r *Reader) Snapshot(ctx context.Context, at At) (*Stream, error) {
	tbl, err := r.Load(ctx)
	if err != nil {
		return nil, err
	}
	return r.SnapshotIn(ctx, tbl, at)
}

// SnapshotIn is Snapshot on an already loaded table. In ModeChangelog
// every row is an INSERT by the selected snapshot.
func (r *Reader) SnapshotIn(ctx context.Context, tbl *icetable.Table, at At) (*Stream, error) {
	snap, err := r.resolve(tbl, at)
	if err != nil {
		return nil, err
	}
	if snap == nil {
		return r.stream(ctx, tbl, nil, nil)
	}
	scan := tbl.Scan(r.planOptions(icetable.WithSnapshotID(snap.SnapshotID))...)
	tasks, err := scan.PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan read of %s at snapshot %d: %w", r.name, snap.SnapshotID, err)
	}
	u := unit{kind: unitInsert, snapshot: snap.SnapshotID, tasks: tasks}
	return r.streamWith(ctx, tbl, []icetable.ScanOption{icetable.WithSnapshotID(snap.SnapshotID)}, []icetable.Snapshot{*snap}, []unit{u})
}

func (r *Reader) resolve(tbl *icetable.Table, at At) (*icetable.Snapshot, error) {
	switch {
	case at.SnapshotID != 0:
		s := tbl.SnapshotByID(at.SnapshotID)
		if s == nil {
			return nil, fmt.Errorf("read %s at snapshot %d: %w%s", r.name, at.SnapshotID, ErrSnapshotNotFound, oldestHint(tbl.Metadata()))
		}
		return s, nil
	case !at.Time.IsZero():
		s := tbl.SnapshotAsOf(at.Time.UnixMilli(), true)
		if s == nil {
			return nil, fmt.Errorf("read %s as of %s: %w: no snapshot was current then%s", r.name, at.Time.UTC().Format(time.RFC3339Nano), ErrSnapshotNotFound, oldestHint(tbl.Metadata()))
		}
		return s, nil
	}
	return tbl.CurrentSnapshot(), nil
}

// SnapshotBefore returns the id of the newest snapshot in the current
// snapshot's history committed at or before t: reading changes after it
// reads the changes committed after t. It returns 0 when every snapshot is
// newer than t. When the history before t has expired, it returns the
// parent of the oldest retained snapshot, and ok is false.
func SnapshotBefore(tbl *icetable.Table, t time.Time) (id int64, ok bool) {
	ms := t.UnixMilli()
	var oldest *icetable.Snapshot
	for s := range table.CurrentAncestors(tbl.Metadata()) {
		if s.TimestampMs <= ms {
			return s.SnapshotID, true
		}
		oldest = s
	}
	if oldest != nil && oldest.ParentSnapshotID != nil {
		return *oldest.ParentSnapshotID, false
	}
	return 0, true
}

// oldestHint names the oldest snapshot of the current history, for errors.
func oldestHint(meta icetable.Metadata) string {
	s := oldestAncestor(meta)
	if s == nil {
		return ""
	}
	return fmt.Sprintf(" (the oldest snapshot the table retains in its current history is %d, committed %s)",
		s.SnapshotID, time.UnixMilli(s.TimestampMs).UTC().Format(time.RFC3339))
}

func oldestAncestor(meta icetable.Metadata) *icetable.Snapshot {
	var oldest *icetable.Snapshot
	for s := range table.CurrentAncestors(meta) {
		oldest = s
	}
	return oldest
}

// snapshotsBetween returns the snapshots after from (exclusive; 0: from
// the first snapshot) up to to (inclusive) in to's ancestry, oldest first.
// It reads only metadata: the chain of parent ids from to back to from.
func snapshotsBetween(name string, meta icetable.Metadata, from, to int64) ([]icetable.Snapshot, error) {
	snaps, complete := table.AncestorsBetween(meta, from, to)
	switch {
	case complete:
		return snaps, nil
	case len(snaps) == 0:
		return nil, fmt.Errorf("read %s up to snapshot %d: %w%s", name, to, ErrSnapshotNotFound, oldestHint(meta))
	case snaps[0].ParentSnapshotID == nil:
		return nil, fmt.Errorf("read %s after snapshot %d: %w: it is not in the history of snapshot %d (the table was rolled back, or the id belongs to another table or branch)",
			name, from, ErrNotAncestor, to)
	default:
		return nil, expired(name, from, &snaps[0])
	}
}

// expired is the error for a start older than the oldest retained snapshot
// oldest.
func expired(name string, from int64, oldest *icetable.Snapshot) error {
	what := fmt.Sprintf("snapshot %d", from)
	if from == 0 {
		what = "the table's first snapshot"
	}
	return fmt.Errorf("read %s after %s: %w: the snapshots after it have expired; the oldest snapshot the table retains in its current history is %d (committed %s). "+
		"Restart from the current snapshot (dropping the changes in between), or backfill the table as of a snapshot and follow its changes from that snapshot",
		name, what, ErrCursorExpired, oldest.SnapshotID, time.UnixMilli(oldest.TimestampMs).UTC().Format(time.RFC3339))
}

// planOptions are the scan options of planning and reading.
func (r *Reader) planOptions(extra ...icetable.ScanOption) []icetable.ScanOption {
	opts := []icetable.ScanOption{
		icetable.WithRowFilter(r.filter),
		icetable.WithCaseSensitive(!r.cfg.CaseInsensitive),
		icetable.WithMaxConcurrency(r.cfg.Concurrency),
		icetable.WithSelectedFields(r.cfg.Columns...),
		icetable.WithArrowBatchSize(r.cfg.BatchSize),
	}
	return append(opts, extra...)
}

// stream reads units with a scan of the table's current schema.
func (r *Reader) stream(ctx context.Context, tbl *icetable.Table, snaps []icetable.Snapshot, units []unit) (*Stream, error) {
	return r.streamWith(ctx, tbl, nil, snaps, units)
}

// streamWith reads units with a scan of planOptions(extra...).
func (r *Reader) streamWith(ctx context.Context, tbl *icetable.Table, extra []icetable.ScanOption, snaps []icetable.Snapshot, units []unit) (*Stream, error) {
	scan := tbl.Scan(r.planOptions(extra...)...)
	sc, _, err := scan.ReadTasks(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("project columns %s of %s: %w", strings.Join(r.cfg.Columns, ","), r.name, err)
	}
	s := &Stream{Schema: sc, ctx: ctx}
	if r.cfg.Mode == ModeChangelog {
		s.Schema = changelogSchema(sc)
	}
	for i := range snaps {
		s.Snapshots = append(s.Snapshots, infoOf(&snaps[i]))
	}
	for _, u := range units {
		for _, t := range u.files() {
			s.Files++
			s.Rows += t.File.Count()
			s.Bytes += t.File.FileSizeBytes()
		}
	}
	if s.Files == 0 {
		return s, nil
	}
	rd := &unitReader{r: r, scan: scan, schema: s.Schema, name: r.name}
	rf, err := r.splitFilter(tbl, extra)
	if err != nil {
		return nil, err
	}
	if !rf.post.Equals(iceberg.AlwaysTrue{}) {
		// See rowfilter.go: iceberg-go reads with the filter's conjuncts it
		// evaluates correctly; the reader applies the others.
		rd.scan = tbl.Scan(r.readOptions(rf, extra...)...)
		if rd.post, err = newPostFilter(rd.scan, rf, sc, !r.cfg.CaseInsensitive); err != nil {
			return nil, fmt.Errorf("compile filter of %s: %w", r.name, err)
		}
	}
	s.read = func(ctx context.Context, yield func(arrow.RecordBatch, error) bool) {
		rd.read(ctx, units, yield)
	}
	return s, nil
}
