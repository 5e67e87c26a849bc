package service

import (
	"context"
	"errors"
	"log/slog"

	"github.com/floe-lake/floe/internal/daemon"
)

// failHook marks job failing on board (daemon.Board.Fail) for every WARN
// or ERROR record with an "err" attribute logged by the job's components:
// the errors they retry in silence — a commit whose catalog reload fails,
// a store that does not answer — until the job's next progress. A
// transient warning is cleared by the next commit; readiness only reports
// a job failing for run.unavailable-timeout.
type failHook struct {
	board *daemon.Board
	job   string // set before the job runs
}

// logger returns log whose records also feed h.
func (h *failHook) logger(log *slog.Logger) *slog.Logger {
	return slog.New(&failHandler{next: log.Handler(), hook: h})
}

type failHandler struct {
	next slog.Handler
	hook *failHook
	err  string // an "err" attribute added by With
}

func (f *failHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || f.next.Enabled(ctx, l)
}

func (f *failHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && f.hook.job != "" {
		msg := f.err
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "err" {
				msg = a.Value.String()
				return false
			}
			return true
		})
		if msg != "" {
			f.hook.board.Fail(f.hook.job, errors.New(r.Message+": "+msg))
		}
	}
	if !f.next.Enabled(ctx, r.Level) {
		return nil
	}
	return f.next.Handle(ctx, r)
}

func (f *failHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &failHandler{next: f.next.WithAttrs(as), hook: f.hook, err: f.err}
	for _, a := range as {
		if a.Key == "err" {
			n.err = a.Value.String()
		}
	}
	return n
}

func (f *failHandler) WithGroup(name string) slog.Handler {
	return &failHandler{next: f.next.WithGroup(name), hook: f.hook, err: f.err}
}
