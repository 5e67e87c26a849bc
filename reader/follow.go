package reader

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/internal/daemon"
)

// FollowOptions configure Reader.Follow.
type FollowOptions struct {
	// Format of the output: FormatJSONL or FormatCSV (Format.Appendable).
	Format Format
	// Output is the path of the output file. Empty: rows go to Writer,
	// and a restarted follower may repeat rows (at least once).
	Output string
	// Writer receives the rows when Output is empty (e.g. os.Stdout).
	Writer io.Writer
	// CursorFile is the file that keeps the follower's cursor
	// (FileCursorStore). Empty: no cursor; every run starts over, and an
	// Output file is emptied first.
	CursorFile string
	// Start is where a follower without a stored cursor begins. StartNone
	// (the zero value): it first writes the whole table as of At, then
	// follows from that snapshot.
	Start Start
	// At selects the snapshot of that first read; zero: the current one.
	At At
	// Progress, when set, returns a Progress for the first read's stream
	// (not for the snapshots that follow); it may return nil.
	Progress func(st *Stream) Progress
	// AfterWrite, when set, is called after each snapshot's rows are
	// synced to the output and before the cursor is stored: the window the
	// truncate-on-resume protocol exists for. For crash tests.
	AfterWrite func()
}

// CursorMismatchError is returned by Follow when the stored cursor was
// written by a follower of another table, output, format or mode: resuming
// from it would mix outputs. Nothing is touched.
type CursorMismatchError struct {
	// CursorFile is the cursor's path.
	CursorFile string
	// Field is what differs: "table", "output", "format" or "mode".
	Field string
	// Stored is the cursor's value, Given the follower's.
	Stored, Given string
}

func (e *CursorMismatchError) Error() string {
	return fmt.Sprintf("cursor %s was written for %s %q, not %q", e.CursorFile, e.Field, e.Stored, e.Given)
}

// Follow writes the table's rows to an output and then every new
// snapshot's rows, in commit order, until ctx is cancelled (then it
// returns ctx's error) or an error that retrying cannot fix
// (ErrCursorExpired, ErrNotAppendOnly, ErrNotAncestor, a failed output,
// …). Any other failure — the catalog or the object store not answering,
// a manifest or data file that cannot be read for now — is logged at WARN
// and retried after a backoff (500 ms, doubling, at most 30 s; it starts
// over once a snapshot is written): the rows written after the last
// snapshot completed are dropped (an output file is truncated to its
// length then) and the follower resumes after that snapshot.
//
// With a cursor file and an output file, the output holds every row exactly
// once however often the process is killed: after each snapshot's rows are
// written and the output is synced, the cursor file records that snapshot
// and the output's length (Cursor.SnapshotID, Cursor.OutputOffset; written
// to a temporary file, synced, renamed). A restarted follower truncates the
// output to the recorded length, dropping rows written after the cursor
// was stored, and resumes after the recorded snapshot. A cursor written for
// another table, output (by absolute path), format or mode fails with a
// CursorMismatchError before the output is touched; an output shorter than
// the cursor records (truncated or replaced) fails too.
func (r *Reader) Follow(ctx context.Context, opts FollowOptions) error {
	if !opts.Format.Appendable() {
		return fmt.Errorf("follow %s: format %q cannot be appended to: want jsonl or csv", r.name, opts.Format)
	}
	outPath := opts.Output
	if outPath != "" {
		abs, err := filepath.Abs(outPath)
		if err != nil {
			return err
		}
		outPath = abs
	}
	var store *FileCursorStore
	var cur Cursor
	resuming := false
	if opts.CursorFile != "" {
		store = NewFileCursorStore(opts.CursorFile)
		var err error
		if cur, resuming, err = store.Load(ctx); err != nil {
			return err
		}
		if resuming {
			for _, f := range []struct{ field, stored, given string }{
				{"table", cur.Table, r.name},
				{"output", cur.Output, outPath},
				{"format", cur.Format, string(opts.Format)},
				{"mode", string(cur.Mode), string(r.cfg.Mode)},
			} {
				if f.stored != f.given {
					return &CursorMismatchError{CursorFile: opts.CursorFile, Field: f.field, Stored: f.stored, Given: f.given}
				}
			}
		}
	}
	out, err := openFollowOutput(opts, outPath, cur, resuming)
	if err != nil {
		return err
	}
	defer func() { _ = out.close() }()
	save := func(snapshot int64) (int64, error) {
		off, err := out.commit()
		if err != nil {
			return 0, daemon.Permanent(err)
		}
		if opts.AfterWrite != nil {
			opts.AfterWrite()
		}
		if store == nil {
			return off, nil
		}
		err = store.Save(ctx, Cursor{
			Table: r.name, SnapshotID: snapshot, Output: outPath, OutputOffset: off,
			Format: string(opts.Format), Mode: r.cfg.Mode, Updated: r.cfg.Clock.Now().UTC(),
		})
		if err != nil && ctx.Err() == nil {
			err = daemon.Permanent(err)
		}
		return off, err
	}

	st := followState{from: cur.SnapshotID, started: resuming, off: cur.OutputOffset, header: out.header}
	if resuming {
		r.cfg.Logger.Info("resuming", "table", r.name, "after_snapshot", st.from, "output_offset", cur.OutputOffset)
	}
	for failures := 0; ; {
		err := r.followOnce(ctx, opts, out, &st, save)
		if err == nil || ctx.Err() != nil {
			return ctx.Err()
		}
		if followPermanent(err) {
			return err
		}
		if st.progressed {
			failures, st.progressed = 0, false
		}
		failures++
		// Rows written after the last snapshot completed are dropped, and
		// the follower resumes after that snapshot.
		if rerr := out.rollback(st.off, st.header); rerr != nil {
			return rerr
		}
		wait := followBackoff(failures)
		r.cfg.Logger.Warn("follow: reading the table failed; resuming after the last snapshot written",
			"table", r.name, "after_snapshot", st.from, "failures", failures, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.cfg.Clock.After(wait):
		}
	}
}

// followState is where a follower stands: after snapshot from (once
// started: a backfill was written, or the start was resolved), with the
// output committed up to off (header: a CSV header is in it).
type followState struct {
	from       int64
	started    bool
	off        int64
	header     bool
	progressed bool // a snapshot was completed since the last failure
}

// followOnce runs the follower from st until ctx ends or an error; st
// moves with every snapshot completed (save returns the output's length).
func (r *Reader) followOnce(ctx context.Context, opts FollowOptions, out *followOutput, st *followState, save func(int64) (int64, error)) error {
	done := func(snapshot int64) error {
		off, err := save(snapshot)
		if err != nil {
			return err
		}
		st.from, st.off, st.header, st.progressed = snapshot, off, out.header, true
		return nil
	}
	if !st.started {
		tbl, err := r.Load(ctx)
		if err != nil {
			return err
		}
		from, ok := r.StartIn(tbl, opts.Start)
		if !ok {
			// Backfill: the table as of a snapshot, then its changes.
			bf, err := r.SnapshotIn(ctx, tbl, opts.At)
			if err != nil {
				return err
			}
			if len(bf.Snapshots) > 0 {
				from = bf.Snapshots[0].ID
			}
			var p Progress
			if opts.Progress != nil {
				p = opts.Progress(bf)
			}
			rows, err := out.write(opts.Format, bf, p)
			if p != nil {
				p.Done(err == nil)
			}
			if err != nil {
				return err
			}
			if err := done(from); err != nil {
				return err
			}
			r.cfg.Logger.Info("backfilled", "table", r.name, "snapshot", from, "rows", rows)
		}
		st.from, st.started = from, true
	}
	for ch, err := range r.Tail(ctx, st.from) {
		if err != nil {
			return err
		}
		rows, err := out.write(opts.Format, ch.Stream, nil)
		if err != nil {
			return err
		}
		if err := done(ch.Snapshot.ID); err != nil {
			return err
		}
		r.cfg.Logger.Debug("snapshot written", "snapshot", ch.Snapshot.ID, "operation", ch.Snapshot.Operation, "rows", rows)
	}
	return ctx.Err()
}

// followBackoff is the wait before the n-th retry in a row (n ≥ 1) of a
// follower whose read failed: 500 ms, doubling, at most 30 s.
func followBackoff(n int) time.Duration {
	return min(500*time.Millisecond<<min(n-1, 16), 30*time.Second)
}

// followPermanent reports whether a follower's error needs a person rather
// than a retry: the cursor no longer in the table's history, a snapshot an
// append read cannot return, an invalid filter or projection, a table that
// does not exist, or a failure of the output or the cursor file (marked
// with daemon.Permanent). Everything else — a catalog or object store that
// does not answer, a file that cannot be read for now — may pass.
func followPermanent(err error) bool {
	var cm *CursorMismatchError
	return daemon.IsPermanent(err) || errors.As(err, &cm) ||
		errors.Is(err, ErrCursorExpired) || errors.Is(err, ErrNotAppendOnly) ||
		errors.Is(err, ErrNotAncestor) || errors.Is(err, ErrSnapshotNotFound) ||
		errors.Is(err, ErrInvalidFilter) || errors.Is(err, icecat.ErrNoSuchTable)
}

// followOutput is a follower's output: a file it can truncate, or a
// writer.
type followOutput struct {
	file   *os.File  // nil for a writer
	dst    io.Writer // the file or the writer
	w      *bufio.Writer
	header bool // a CSV header is already written
}

// outputWriter marks its destination's errors as permanent for the
// follower: a full disk or a closed pipe is not the table's fault, and
// retrying the read does not help.
type outputWriter struct{ w io.Writer }

func (o outputWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil {
		err = daemon.Permanent(err)
	}
	return n, err
}

// rollback drops what was written after the output's length was off (the
// last snapshot completed; header: a CSV header was in it then): a file is
// truncated to off; a writer loses only what is still buffered, so its
// reader may see rows again (at least once).
func (o *followOutput) rollback(off int64, header bool) error {
	o.w.Reset(outputWriter{o.dst})
	o.header = header
	if o.file == nil {
		return nil
	}
	if err := o.file.Truncate(off); err != nil {
		return fmt.Errorf("truncate output to %d bytes: %w", off, err)
	}
	if _, err := o.file.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("seek output: %w", err)
	}
	return nil
}

// openFollowOutput opens the output file: truncated to the cursor's offset
// when resuming, emptied otherwise.
func openFollowOutput(opts FollowOptions, path string, cur Cursor, resuming bool) (*followOutput, error) {
	if path == "" {
		w := opts.Writer
		if w == nil {
			return nil, errors.New("follow: no output file and no writer")
		}
		return &followOutput{dst: w, w: bufio.NewWriterSize(outputWriter{w}, 256<<10), header: resuming}, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
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
				opts.Output, st.Size(), off, opts.CursorFile)
		}
	}
	// Rows written after the cursor was stored are written again.
	if err := f.Truncate(off); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("truncate output to %d bytes: %w", off, err)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("seek output: %w", err)
	}
	return &followOutput{file: f, dst: f, w: bufio.NewWriterSize(outputWriter{f}, 256<<10), header: off > 0}, nil
}

// commit makes everything written so far durable and returns the output's
// length (0 for a writer).
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
	return off, nil
}

func (o *followOutput) close() error {
	if o.file == nil {
		return nil
	}
	return o.file.Close()
}

// write encodes st; a CSV header goes before the first rows only.
func (o *followOutput) write(f Format, st *Stream, p Progress) (int64, error) {
	enc, err := NewEncoder(o.w, f, st.Schema, EncoderOptions{NoHeader: o.header})
	if err != nil {
		return 0, err
	}
	rows, err := st.Encode(enc, p)
	if err != nil {
		return rows, err
	}
	if rows > 0 {
		o.header = true
	}
	return rows, enc.Flush()
}
