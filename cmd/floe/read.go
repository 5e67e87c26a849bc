package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/floe-lake/floe/internal/progress"
	"github.com/floe-lake/floe/internal/units"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/service"
	"github.com/floe-lake/floe/table"
)

const readUsage = `usage: floe read [flags] <namespace.table> [flags]

Reads a table's rows, or the rows that arrived between two snapshots, to
stdout or -output FILE.

  floe read ods.events                         the table as of its current snapshot
  floe read -as-of 2026-01-02T00:00:00Z ods.events    ... as of a time (or -as-of SNAPSHOT_ID)
  floe read -from-snapshot 123 ods.events      the rows appended after snapshot 123
  floe read -since 1h ods.events               the rows appended in the last hour
  floe read -changelog -from-snapshot 123 cdc.users   inserted and deleted rows (_change_type)
  floe read -event-time ts -from 2026-01-02 -to 2026-01-03 ods.events   rows by event time
  floe read -follow -cursor-file c.json -output out.jsonl ods.events
                                               the table, then every new snapshot's rows,
                                               exactly once into out.jsonl across restarts

Snapshot ranges are Iceberg's incremental reads: after -from-snapshot
(exclusive) up to -to-snapshot (inclusive, default the current snapshot).
Compactions contribute no rows. Without -changelog, a snapshot that deletes
rows (a CDC row delta, a delete) fails the read.

-follow polls for new snapshots every -poll-interval and writes each one's
rows. Without a cursor it first writes the table as of -as-of (default: the
current snapshot) unless -from-snapshot or -since says where to start. With
-cursor-file F, F records after each snapshot the last snapshot written and
the length of the output file at that point (written to a temporary file,
synced, renamed). A restarted follower truncates -output to that length and
resumes after that snapshot, so the output holds every row exactly once
whenever the process is killed. Output to stdout is at least once. A read
that fails for a while (catalog or object store unreachable) is logged and
retried with a backoff (500ms doubling to 30s) after the last snapshot
written; only errors a retry cannot fix (an expired cursor, a snapshot an
append read cannot return, a failed output) end the follower.

flags:
`

// readFlags are floe read's options.
type readFlags struct {
	cfgPath                                               *string
	fromSnapshot, since, asOf, cursorFile, where, columns string
	format, output, eventTime, eventFrom, eventTo         string
	toSnapshot                                            int64
	follow, changelog, progress                           bool
	poll                                                  time.Duration
	concurrency                                           int
}

// registerRead is 'floe read': incremental, tailing and batch reads.
func registerRead(fs *flag.FlagSet) func(ctx context.Context, env *env, args []string) error {
	f := &readFlags{}
	f.cfgPath = configFlag(fs)
	fs.StringVar(&f.fromSnapshot, "from-snapshot", "", "read the changes after this snapshot (exclusive): an id, earliest (the table's first snapshot on) or current")
	fs.Int64Var(&f.toSnapshot, "to-snapshot", 0, "read changes up to this snapshot id (inclusive); default the current snapshot")
	fs.StringVar(&f.since, "since", "", "read the changes committed in this last period, e.g. 90s, 1h, 2d")
	fs.StringVar(&f.asOf, "as-of", "", "read the table as of a time (RFC 3339, or a date) or a snapshot id")
	fs.BoolVar(&f.follow, "follow", false, "keep reading new snapshots as they are committed")
	fs.StringVar(&f.cursorFile, "cursor-file", "", "with -follow: keep the cursor in this file and resume from it")
	fs.DurationVar(&f.poll, "poll-interval", 10*time.Second, "with -follow: how often to look for new snapshots")
	fs.StringVar(&f.where, "where", "", `filter rows: col op literal [and ...], ops = != < <= > >=, e.g. "amount > 10 and country = 'DE'"`)
	fs.StringVar(&f.columns, "columns", "", "comma-separated columns to output (dotted paths for nested fields); default all")
	fs.StringVar(&f.format, "format", "jsonl", "output format: jsonl, csv, parquet or arrow (-follow: jsonl or csv)")
	fs.StringVar(&f.output, "output", "", "write to this file instead of stdout")
	fs.BoolVar(&f.changelog, "changelog", false, "read inserts and deletes, with _change_type, _change_ordinal and _commit_snapshot_id columns")
	fs.StringVar(&f.eventTime, "event-time", "", "event-time column for -from/-to")
	fs.StringVar(&f.eventFrom, "from", "", "keep rows whose -event-time is at or after this time (RFC 3339 or a date)")
	fs.StringVar(&f.eventTo, "to", "", "keep rows whose -event-time is before this time (RFC 3339 or a date)")
	fs.BoolVar(&f.progress, "progress", false, "show a progress bar on stderr (default: only when stderr is a terminal)")
	fs.IntVar(&f.concurrency, "concurrency", 0, "data files read in parallel (default min(GOMAXPROCS, 8))")
	alias(fs, "o", "output")
	alias(fs, "poll", "poll-interval")
	alias(fs, "event-from", "from")
	alias(fs, "event-to", "to")
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
	name     string
	cfg      reader.Config
	follow   reader.FollowOptions
	to       int64
	progress bool
}

func parseReadFlags(e *env, name string, f *readFlags) (*readPlan, error) {
	if _, err := table.ParseIdent(name); err != nil {
		return nil, err
	}
	p := &readPlan{name: name, to: f.toSnapshot, progress: f.progress || progress.IsTerminal(e.stderr)}
	o := &p.follow
	o.Output, o.CursorFile = f.output, f.cursorFile
	var err error
	if o.Format, err = reader.ParseFormat(f.format); err != nil {
		return nil, fmt.Errorf("-format: %w", err)
	}
	p.cfg = reader.Config{Logger: e.log, PollInterval: f.poll, Concurrency: f.concurrency}
	if f.changelog {
		p.cfg.Mode = reader.ModeChangelog
	}
	if s := strings.TrimSpace(f.columns); s != "" {
		for _, c := range strings.Split(s, ",") {
			p.cfg.Columns = append(p.cfg.Columns, strings.TrimSpace(c))
		}
	}
	if f.where != "" {
		if p.cfg.Filter, err = reader.ParseFilter(f.where); err != nil {
			return nil, fmt.Errorf("-where: %w", err)
		}
	}
	if f.eventTime != "" || f.eventFrom != "" || f.eventTo != "" {
		if f.eventTime == "" {
			return nil, errors.New("-from and -to (-event-from, -event-to) need -event-time COLUMN")
		}
		if f.eventFrom == "" && f.eventTo == "" {
			return nil, errors.New("-event-time needs -from or -to")
		}
		tr := &reader.TimeRange{Column: f.eventTime}
		if tr.Start, err = units.ParseTimeFlag("-from", f.eventFrom); err != nil {
			return nil, err
		}
		if tr.End, err = units.ParseTimeFlag("-to", f.eventTo); err != nil {
			return nil, err
		}
		p.cfg.EventTime = tr
	}
	if o.Start, err = reader.ParseStartSnapshot(f.fromSnapshot); err != nil {
		return nil, fmt.Errorf("-from-snapshot: %w", err)
	}
	if f.since != "" {
		if o.Start.Kind != reader.StartNone {
			return nil, errors.New("-since and -from-snapshot both say where to start; give one")
		}
		o.Start.Kind = reader.StartSince
		if o.Start.Since, err = units.ParsePeriod(f.since); err != nil {
			return nil, fmt.Errorf("-since: %w", err)
		}
	}
	if f.asOf != "" {
		if id, err := strconv.ParseInt(f.asOf, 10, 64); err == nil {
			o.At.SnapshotID = id
		} else if o.At.Time, err = units.ParseTime(f.asOf); err != nil {
			return nil, fmt.Errorf("-as-of: %w; or give a snapshot id", err)
		}
		if o.Start.Kind != reader.StartNone || p.to != 0 {
			return nil, errors.New("-as-of reads one snapshot; it does not combine with -from-snapshot, -since or -to-snapshot")
		}
	}
	if p.to < 0 {
		return nil, errors.New("-to-snapshot: a snapshot id is positive")
	}
	if f.follow {
		if p.to != 0 {
			return nil, errors.New("-follow has no end: drop -to-snapshot")
		}
		if !o.Format.Appendable() {
			return nil, fmt.Errorf("-follow writes jsonl or csv, not %s", o.Format)
		}
	} else if o.CursorFile != "" {
		return nil, errors.New("-cursor-file keeps the cursor of -follow; add -follow")
	}
	cfg := p.cfg
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

func runRead(ctx context.Context, e *env, name string, f *readFlags) error {
	p, err := parseReadFlags(e, name, f)
	if err != nil {
		return usageError{err}
	}
	cfg, err := loadConfig(*f.cfgPath, catalogSection)
	if err != nil {
		return err
	}
	// -follow waits for its catalog, as the daemons do; a one-shot read
	// does not.
	cat, err := service.NewCatalogStart(service.CatalogOptions{Config: cfg.Catalog, Logger: e.log, Once: !f.follow}).Open(ctx)
	if cat == nil {
		if err == nil { // stopped while waiting
			return nil
		}
		return err
	}
	defer closeCatalog(cat, e.log)
	r, err := reader.New(cat, p.name, p.cfg)
	if err != nil {
		return usageError{err}
	}
	bar := func(st *reader.Stream) *progress.Bar {
		return progress.New(e.stderr, p.progress, st.Rows, st.Files, nil)
	}
	if f.follow {
		// FLOE_READ_CRASH=after-write:P: SIGKILL after a snapshot's rows are
		// synced, before the cursor is stored, with probability P.
		kills, cerr := crashPoints(os.Getenv("FLOE_READ_CRASH"), []string{"after-write"}, e.log)
		if cerr != nil {
			return usageError{cerr}
		}
		if kill := kills["after-write"]; kill != nil {
			p.follow.AfterWrite = func() { kill(p.name) }
		}
		p.follow.Writer = e.stdout
		p.follow.Progress = func(st *reader.Stream) reader.Progress { return bar(st) }
		err = r.Follow(ctx, p.follow)
	} else {
		err = runBatch(ctx, e, r, p, bar)
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil // interrupted: everything written was complete
	}
	return withHint(err, p.follow.CursorFile)
}

// withHint adds what to do next to the errors that need a decision, and
// names the flags a mismatched cursor differs in.
func withHint(err error, cursorFile string) error {
	var cm *reader.CursorMismatchError
	switch {
	case errors.As(err, &cm):
		switch cm.Field {
		case "table":
			return usageError{fmt.Errorf("cursor %s is for table %s, not %s", cm.CursorFile, cm.Stored, cm.Given)}
		case "output":
			return usageError{fmt.Errorf("cursor %s was written with -o %q, not %q", cm.CursorFile, cm.Stored, cm.Given)}
		case "format":
			return usageError{fmt.Errorf("cursor %s was written with -format %s, not %s", cm.CursorFile, cm.Stored, cm.Given)}
		}
		return usageError{fmt.Errorf("cursor %s was written in %s mode, not %s", cm.CursorFile, cm.Stored, cm.Given)}
	case errors.Is(err, reader.ErrCursorExpired):
		if cursorFile != "" {
			return fmt.Errorf("%w\nTo start over, remove %s: the next run writes the table as of its current snapshot, then follows it. To skip the gap instead, remove it and run with -from-snapshot current", err, cursorFile)
		}
		return fmt.Errorf("%w\nStart from -from-snapshot current, or read the table with -as-of and follow from that snapshot", err)
	case errors.Is(err, reader.ErrNotAppendOnly):
		return fmt.Errorf("%w\nRead with -changelog to get the inserted and deleted rows", err)
	}
	return err
}

// runBatch reads once: a snapshot, or a range of changes.
func runBatch(ctx context.Context, e *env, r *reader.Reader, p *readPlan, bar func(*reader.Stream) *progress.Bar) error {
	st, err := r.Read(ctx, p.follow.Start, p.to, p.follow.At)
	if err != nil {
		return err
	}
	w := e.stdout
	var file *os.File
	if p.follow.Output != "" {
		if file, err = os.Create(p.follow.Output); err != nil {
			return fmt.Errorf("create output: %w", err)
		}
		defer func() { _ = file.Close() }()
		w = file
	}
	enc, err := reader.NewEncoder(w, p.follow.Format, st.Schema, reader.EncoderOptions{})
	if err != nil {
		return err
	}
	b := bar(st)
	rows, err := st.Encode(enc, b)
	b.Done(err == nil)
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
