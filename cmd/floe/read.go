package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

const readUsage = `usage: floe read [flags] <namespace.table> [flags]

Reads a table's rows, or the rows that arrived between two snapshots, to
stdout or -o FILE.

  floe read ods.events                         the table as of its current snapshot
  floe read -as-of 2026-01-02T00:00:00Z ods.events    ... as of a time (or -as-of SNAPSHOT_ID)
  floe read -from-snapshot 123 ods.events      the rows appended after snapshot 123
  floe read -since 1h ods.events               the rows appended in the last hour
  floe read -changelog -from-snapshot 123 cdc.users   inserted and deleted rows (_change_type)
  floe read -follow -cursor-file c.json -o out.jsonl ods.events
                                               the table, then every new snapshot's rows,
                                               exactly once into out.jsonl across restarts

Snapshot ranges are Iceberg's incremental reads: after -from-snapshot
(exclusive) up to -to-snapshot (inclusive, default the current snapshot).
Compactions contribute no rows. Without -changelog, a snapshot that deletes
rows (a CDC row delta, a delete) fails the read.

-follow polls for new snapshots every -poll and writes each one's rows.
Without a cursor it first writes the table as of -as-of (default: the
current snapshot) unless -from-snapshot or -since says where to start. With
-cursor-file F, F records after each snapshot the last snapshot written and
the length of the output file at that point (written to a temporary file,
synced, renamed). A restarted follower truncates -o to that length and
resumes after that snapshot, so the output holds every row exactly once
whenever the process is killed. Output to stdout is at least once.

flags:
`

// readFlags are floe read's options.
type readFlags struct {
	cfgPath      *string
	fromSnapshot *string
	toSnapshot   *int64
	since        *string
	asOf         *string
	follow       *bool
	cursorFile   *string
	poll         *time.Duration
	where        *string
	columns      *string
	format       *string
	output       *string
	changelog    *bool
	eventTime    *string
	eventFrom    *string
	eventTo      *string
	progress     *bool
	concurrency  *int
}

// registerRead is 'floe read': incremental, tailing and batch reads.
func registerRead(fs *flag.FlagSet) func(ctx context.Context, env *env, args []string) error {
	f := readFlags{
		cfgPath:      configFlag(fs),
		fromSnapshot: fs.String("from-snapshot", "", "read the changes after this snapshot (exclusive): an id, earliest (the table's first snapshot on) or current"),
		toSnapshot:   fs.Int64("to-snapshot", 0, "read changes up to this snapshot id (inclusive); default the current snapshot"),
		since:        fs.String("since", "", "read the changes committed in this last period, e.g. 90s, 1h, 2d"),
		asOf:         fs.String("as-of", "", "read the table as of a time (RFC 3339, or a date) or a snapshot id"),
		follow:       fs.Bool("follow", false, "keep reading new snapshots as they are committed"),
		cursorFile:   fs.String("cursor-file", "", "with -follow: keep the cursor in this file and resume from it"),
		poll:         fs.Duration("poll", 10*time.Second, "with -follow: how often to look for new snapshots"),
		where:        fs.String("where", "", `filter rows: col op literal [and ...], ops = != < <= > >=, e.g. "amount > 10 and country = 'DE'"`),
		columns:      fs.String("columns", "", "comma-separated columns to output (dotted paths for nested fields); default all"),
		format:       fs.String("format", "jsonl", "output format: jsonl, csv, parquet or arrow (-follow: jsonl or csv)"),
		output:       fs.String("o", "", "write to this file instead of stdout"),
		changelog:    fs.Bool("changelog", false, "read inserts and deletes, with _change_type, _change_ordinal and _commit_snapshot_id columns"),
		eventTime:    fs.String("event-time", "", "event-time column for -event-from/-event-to"),
		eventFrom:    fs.String("event-from", "", "keep rows whose -event-time is at or after this time (RFC 3339 or a date)"),
		eventTo:      fs.String("event-to", "", "keep rows whose -event-time is before this time (RFC 3339 or a date)"),
		progress:     fs.Bool("progress", false, "show a progress bar on stderr (default: only when stderr is a terminal)"),
		concurrency:  fs.Int("concurrency", 0, "data files read in parallel (default min(GOMAXPROCS, 8))"),
	}
	fs.Usage = func() {
		_, _ = fmt.Fprint(fs.Output(), readUsage)
		fs.PrintDefaults()
	}
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) == 0 {
			return usageError{errors.New("missing table: floe read [flags] <namespace.table>")}
		}
		name := args[0]
		if len(args) > 1 {
			// Flags may follow the table name.
			if err := fs.Parse(args[1:]); err != nil {
				return usageError{err}
			}
			if rest := fs.Args(); len(rest) > 0 {
				return usageError{fmt.Errorf("unexpected arguments %q after the table", rest)}
			}
		}
		return runRead(ctx, e, name, f)
	}
}

// readPlan is the validated command line.
type readPlan struct {
	name       string
	cfg        reader.Config
	format     reader.Format
	output     string
	follow     bool
	cursorFile string
	progress   bool
	// Where a range or follow starts: fromSet with from (0: earliest) or
	// fromCurrent; or since.
	fromSet, fromCurrent bool
	from                 int64
	since                time.Duration
	to                   int64
	at                   reader.At
	asOfSet              bool
}

func parseReadFlags(e *env, name string, f readFlags) (*readPlan, error) {
	p := &readPlan{name: name, output: *f.output, follow: *f.follow, cursorFile: *f.cursorFile, to: *f.toSnapshot}
	if _, err := table.ParseIdent(name); err != nil {
		return nil, err
	}
	var err error
	if p.format, err = reader.ParseFormat(*f.format); err != nil {
		return nil, fmt.Errorf("-format: %w", err)
	}
	p.cfg = reader.Config{Logger: e.log, PollInterval: *f.poll, Concurrency: *f.concurrency}
	if *f.changelog {
		p.cfg.Mode = reader.ModeChangelog
	}
	if s := strings.TrimSpace(*f.columns); s != "" {
		for _, c := range strings.Split(s, ",") {
			p.cfg.Columns = append(p.cfg.Columns, strings.TrimSpace(c))
		}
	}
	if *f.where != "" {
		if p.cfg.Filter, err = reader.ParseFilter(*f.where); err != nil {
			return nil, fmt.Errorf("-where: %w", err)
		}
	}
	if *f.eventTime != "" || *f.eventFrom != "" || *f.eventTo != "" {
		if *f.eventTime == "" {
			return nil, errors.New("-event-from and -event-to need -event-time COLUMN")
		}
		if *f.eventFrom == "" && *f.eventTo == "" {
			return nil, errors.New("-event-time needs -event-from or -event-to")
		}
		tr := &reader.TimeRange{Column: *f.eventTime}
		if *f.eventFrom != "" {
			if tr.Start, err = parseTime(*f.eventFrom); err != nil {
				return nil, fmt.Errorf("-event-from: %w", err)
			}
		}
		if *f.eventTo != "" {
			if tr.End, err = parseTime(*f.eventTo); err != nil {
				return nil, fmt.Errorf("-event-to: %w", err)
			}
		}
		p.cfg.EventTime = tr
	}
	switch v := strings.ToLower(strings.TrimSpace(*f.fromSnapshot)); v {
	case "":
	case "earliest":
		p.fromSet = true
	case "current", "latest":
		p.fromSet, p.fromCurrent = true, true
	default:
		if p.from, err = strconv.ParseInt(v, 10, 64); err != nil || p.from <= 0 {
			return nil, fmt.Errorf("-from-snapshot: %q is not a snapshot id, earliest or current", *f.fromSnapshot)
		}
		p.fromSet = true
	}
	if *f.since != "" {
		if p.fromSet {
			return nil, errors.New("-since and -from-snapshot both say where to start; give one")
		}
		if p.since, err = parseSince(*f.since); err != nil {
			return nil, fmt.Errorf("-since: %w", err)
		}
	}
	if *f.asOf != "" {
		p.asOfSet = true
		if id, err := strconv.ParseInt(*f.asOf, 10, 64); err == nil {
			p.at.SnapshotID = id
		} else if p.at.Time, err = parseTime(*f.asOf); err != nil {
			return nil, fmt.Errorf("-as-of: %w; or give a snapshot id", err)
		}
		if p.fromSet || p.since > 0 || p.to != 0 {
			return nil, errors.New("-as-of reads one snapshot; it does not combine with -from-snapshot, -since or -to-snapshot")
		}
	}
	if p.to < 0 {
		return nil, errors.New("-to-snapshot: a snapshot id is positive")
	}
	if p.follow {
		if p.to != 0 {
			return nil, errors.New("-follow has no end: drop -to-snapshot")
		}
		if !p.format.Appendable() {
			return nil, fmt.Errorf("-follow writes jsonl or csv, not %s", p.format)
		}
	} else if p.cursorFile != "" {
		return nil, errors.New("-cursor-file keeps the cursor of -follow; add -follow")
	}
	p.progress = *f.progress || isTerminal(e.stderr)
	cfg := p.cfg
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// parseTime accepts RFC 3339 (with or without fractional seconds) or a
// date (midnight UTC).
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02)", s)
}

// parseSince parses a Go duration, or a number of days ("2d").
func parseSince(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n float64
		if n, err = strconv.ParseFloat(days, 64); err == nil {
			d = time.Duration(n * float64(24*time.Hour))
		}
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration like 90s, 1h or 2d", s)
	}
	return d, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func runRead(ctx context.Context, e *env, name string, f readFlags) error {
	p, err := parseReadFlags(e, name, f)
	if err != nil {
		return usageError{err}
	}
	cfg, err := loadConfig(*f.cfgPath, catalogSection)
	if err != nil {
		return err
	}
	cat, err := openCatalog(ctx, cfg)
	if err != nil {
		return err
	}
	if c, ok := cat.(io.Closer); ok {
		defer func() { _ = c.Close() }()
	}
	r, err := reader.New(cat, p.name, p.cfg)
	if err != nil {
		return usageError{err}
	}
	if p.follow {
		crash, cerr := readCrashHook(os.Getenv("FLOE_READ_CRASH"), e)
		if cerr != nil {
			return usageError{cerr}
		}
		err = runFollow(ctx, e, r, p, crash)
	} else {
		err = runBatch(ctx, e, r, p)
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil // interrupted: everything written was complete
	}
	return withHint(err, p)
}

// withHint adds what to do next to the errors that need a decision.
func withHint(err error, p *readPlan) error {
	switch {
	case errors.Is(err, reader.ErrCursorExpired):
		if p.cursorFile != "" {
			return fmt.Errorf("%w\nTo start over, remove %s: the next run writes the table as of its current snapshot, then follows it. To skip the gap instead, remove it and run with -from-snapshot current", err, p.cursorFile)
		}
		return fmt.Errorf("%w\nStart from -from-snapshot current, or read the table with -as-of and follow from that snapshot", err)
	case errors.Is(err, reader.ErrNotAppendOnly):
		return fmt.Errorf("%w\nRead with -changelog to get the inserted and deleted rows", err)
	}
	return err
}

// start resolves where a range or follow starts; ok is false when no
// start was given.
func (p *readPlan) start(e *env, r *reader.Reader, tbl *icetable.Table) (from int64, ok bool) {
	switch {
	case p.fromCurrent:
		return reader.Current(tbl), true
	case p.fromSet:
		return p.from, true
	case p.since > 0:
		id, complete := reader.SnapshotBefore(tbl, time.Now().Add(-p.since))
		if !complete {
			e.log.Warn("the table's history does not reach back that far: reading from its oldest retained snapshot",
				"table", r.Name(), "since", p.since)
		}
		return id, true
	}
	return 0, false
}

// runBatch reads once: a snapshot, or a range of changes.
func runBatch(ctx context.Context, e *env, r *reader.Reader, p *readPlan) error {
	tbl, err := r.Load(ctx)
	if err != nil {
		return err
	}
	var st *reader.Stream
	if from, ok := p.start(e, r, tbl); ok || p.to != 0 {
		st, err = r.ChangesIn(ctx, tbl, from, p.to)
	} else {
		st, err = r.SnapshotIn(ctx, tbl, p.at)
	}
	if err != nil {
		return err
	}
	w := e.stdout
	var file *os.File
	if p.output != "" {
		if file, err = os.Create(p.output); err != nil {
			return fmt.Errorf("create output: %w", err)
		}
		defer func() { _ = file.Close() }()
		w = file
	}
	enc, err := reader.NewEncoder(w, p.format, st.Schema, reader.EncoderOptions{})
	if err != nil {
		return err
	}
	bar := newProgress(e.stderr, p.progress, st)
	rows, err := writeStream(enc, st, bar)
	bar.done(err == nil)
	if err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	if file != nil {
		if err := file.Close(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	e.log.Info("read", "table", r.Name(), "rows", rows, "files", st.Files, "snapshots", len(st.Snapshots))
	return nil
}

// writeStream encodes every batch of st; it returns the rows written.
func writeStream(enc reader.Encoder, st *reader.Stream, bar *progress) (int64, error) {
	var rows int64
	for rec, err := range st.Records() {
		if err != nil {
			return rows, err
		}
		err := enc.Write(rec)
		rows += rec.NumRows()
		rec.Release()
		if err != nil {
			return rows, err
		}
		bar.add(rows)
	}
	return rows, nil
}

// followOutput is a follower's output: a file it can truncate, or stdout.
type followOutput struct {
	file   *os.File // nil for stdout
	w      *bufio.Writer
	offset int64 // bytes of the file that are complete
	header bool  // a CSV header is already written
}

// openFollowOutput opens -o for a follower: truncated to the cursor's
// offset when resuming, emptied otherwise.
func openFollowOutput(e *env, p *readPlan, cur reader.Cursor, resuming bool) (*followOutput, error) {
	if p.output == "" {
		return &followOutput{w: bufio.NewWriterSize(e.stdout, 256<<10), header: resuming}, nil
	}
	f, err := os.OpenFile(p.output, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open output: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open output: %w", err)
	}
	var off int64
	if resuming {
		off = cur.OutputOffset
		if st.Size() < off {
			_ = f.Close()
			return nil, fmt.Errorf("output %s has %d bytes, fewer than the %d its cursor %s records: it was truncated or replaced; remove the cursor file to start over",
				p.output, st.Size(), off, p.cursorFile)
		}
	}
	// Rows written after the cursor was stored are written again below.
	if err := f.Truncate(off); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("truncate output to %d bytes: %w", off, err)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("seek output: %w", err)
	}
	return &followOutput{file: f, w: bufio.NewWriterSize(f, 256<<10), offset: off, header: off > 0}, nil
}

// commit makes everything written so far durable and returns the output's
// length.
func (o *followOutput) commit() (int64, error) {
	if err := o.w.Flush(); err != nil {
		return 0, fmt.Errorf("write output: %w", err)
	}
	if o.file == nil {
		return 0, nil
	}
	if err := o.file.Sync(); err != nil {
		return 0, fmt.Errorf("sync output: %w", err)
	}
	off, err := o.file.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, fmt.Errorf("seek output: %w", err)
	}
	o.offset = off
	return off, nil
}

func (o *followOutput) close() error {
	if o.file == nil {
		return nil
	}
	return o.file.Close()
}

// write encodes st; a CSV header goes before the first rows only.
func (o *followOutput) write(p *readPlan, st *reader.Stream, bar *progress) (int64, error) {
	enc, err := reader.NewEncoder(o.w, p.format, st.Schema, reader.EncoderOptions{NoHeader: o.header})
	if err != nil {
		return 0, err
	}
	rows, err := writeStream(enc, st, bar)
	if err != nil {
		return rows, err
	}
	if rows > 0 {
		o.header = true
	}
	return rows, enc.Flush()
}

// runFollow writes the table's rows and then every new snapshot's rows,
// storing the cursor after each snapshot's rows are durable.
func runFollow(ctx context.Context, e *env, r *reader.Reader, p *readPlan, crash func(point string)) error {
	var store *reader.FileCursorStore
	var cur reader.Cursor
	resuming := false
	outPath := p.output
	if outPath != "" {
		abs, err := filepath.Abs(outPath)
		if err != nil {
			return err
		}
		outPath = abs
	}
	if p.cursorFile != "" {
		store = reader.NewFileCursorStore(p.cursorFile)
		var err error
		if cur, resuming, err = store.Load(ctx); err != nil {
			return err
		}
		if resuming {
			switch {
			case cur.Table != r.Name():
				return usageError{fmt.Errorf("cursor %s is for table %s, not %s", p.cursorFile, cur.Table, r.Name())}
			case cur.Output != outPath:
				return usageError{fmt.Errorf("cursor %s was written with -o %q, not %q", p.cursorFile, cur.Output, outPath)}
			case cur.Format != string(p.format):
				return usageError{fmt.Errorf("cursor %s was written with -format %s, not %s", p.cursorFile, cur.Format, p.format)}
			case cur.Mode != r.Config().Mode:
				return usageError{fmt.Errorf("cursor %s was written in %s mode, not %s", p.cursorFile, cur.Mode, r.Config().Mode)}
			}
		}
	}
	out, err := openFollowOutput(e, p, cur, resuming)
	if err != nil {
		return err
	}
	defer func() { _ = out.close() }()
	save := func(snapshot int64) error {
		off, err := out.commit()
		if err != nil {
			return err
		}
		// The window the cursor's output offset covers: rows written and
		// synced, cursor not yet stored.
		crash("after-write")
		if store == nil {
			return nil
		}
		return store.Save(ctx, reader.Cursor{
			Table: r.Name(), SnapshotID: snapshot, Output: outPath, OutputOffset: off,
			Format: string(p.format), Mode: r.Config().Mode, Updated: time.Now().UTC(),
		})
	}

	from := cur.SnapshotID
	if resuming {
		e.log.Info("resuming", "table", r.Name(), "after_snapshot", from, "output_offset", cur.OutputOffset)
	} else {
		tbl, err := r.Load(ctx)
		if err != nil {
			return err
		}
		var ok bool
		if from, ok = p.start(e, r, tbl); !ok {
			// Backfill: the table as of a snapshot, then its changes.
			st, err := r.SnapshotIn(ctx, tbl, p.at)
			if err != nil {
				return err
			}
			if len(st.Snapshots) > 0 {
				from = st.Snapshots[0].ID
			}
			bar := newProgress(e.stderr, p.progress, st)
			rows, err := out.write(p, st, bar)
			bar.done(err == nil)
			if err != nil {
				return err
			}
			if err := save(from); err != nil {
				return err
			}
			e.log.Info("backfilled", "table", r.Name(), "snapshot", from, "rows", rows)
		}
	}
	for ch, err := range r.Tail(ctx, from) {
		if err != nil {
			return err
		}
		rows, err := out.write(p, ch.Stream, nil)
		if err != nil {
			return err
		}
		if err := save(ch.Snapshot.ID); err != nil {
			return err
		}
		e.log.Debug("snapshot written", "snapshot", ch.Snapshot.ID, "operation", ch.Snapshot.Operation, "rows", rows)
	}
	return ctx.Err()
}

// readCrashHook parses FLOE_READ_CRASH, "after-write:P": a follower then
// SIGKILLs itself with probability P after a snapshot's rows are synced to
// the output and before its cursor is stored. For crash tests.
func readCrashHook(spec string, e *env) (func(point string), error) {
	if spec == "" {
		return func(string) {}, nil
	}
	point, ps, ok := strings.Cut(spec, ":")
	prob, err := strconv.ParseFloat(ps, 64)
	if !ok || err != nil || prob < 0 || prob > 1 || point != "after-write" {
		return nil, fmt.Errorf("FLOE_READ_CRASH: %q: want after-write:probability", spec)
	}
	return func(at string) {
		if at == point && rand.Float64() < prob {
			e.log.Warn("crash injected", "point", at)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}, nil
}

// progress draws a progress bar of rows read on stderr.
type progress struct {
	w       io.Writer
	on      bool
	total   int64
	files   int
	start   time.Time
	last    time.Time
	rows    int64
	written bool
}

func newProgress(w io.Writer, on bool, st *reader.Stream) *progress {
	now := time.Now()
	return &progress{w: w, on: on && st.Files > 0, total: st.Rows, files: st.Files, start: now}
}

// add records rows read so far, redrawing at most ten times a second.
func (b *progress) add(rows int64) {
	if b == nil || !b.on {
		return
	}
	b.rows = rows
	if now := time.Now(); now.Sub(b.last) >= 100*time.Millisecond {
		b.last = now
		b.draw()
	}
}

func (b *progress) draw() {
	const width = 30
	frac := 1.0
	if b.total > 0 {
		frac = min(float64(b.rows)/float64(b.total), 1)
	}
	n := int(frac * width)
	bar := strings.Repeat("#", n) + strings.Repeat(".", width-n)
	elapsed := time.Since(b.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(b.rows) / elapsed
	}
	_, _ = fmt.Fprintf(b.w, "\r[%s] %3.0f%%  %d/%d rows  %d files  %.0f rows/s  %.1fs ", bar, frac*100, b.rows, b.total, b.files, rate, elapsed)
	b.written = true
}

// done draws the final state and ends the line.
func (b *progress) done(ok bool) {
	if b == nil || !b.on {
		return
	}
	if ok {
		b.total = b.rows // a filter keeps fewer rows than the files hold
	}
	b.draw()
	_, _ = fmt.Fprintln(b.w)
}
