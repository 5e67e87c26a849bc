package reader

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/floe-lake/floe/table"
)

// Stopped is the error of a follower that ran until ctx ended: nil when
// ctx is done and err is nil or ctx's own error (stopping is not a
// failure), err otherwise.
func Stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil && (err == nil || errors.Is(err, ctx.Err())) {
		return nil
	}
	return err
}

// RetryFenced calls run until it returns an error other than
// table.ErrFenced, or ctx ends. A fenced run means another writer (a
// backfill, or a second follower) moved the output's cursor: RetryFenced
// logs msg at WARN, waits (fenced+1) poll intervals, at most 30s, on
// clock, and calls run again, which resumes from the table.
func RetryFenced(ctx context.Context, clock Clock, poll time.Duration, log *slog.Logger, msg string, run func() error) error {
	for fenced := 0; ; fenced++ {
		err := run()
		if errors.Is(err, table.ErrFenced) && ctx.Err() == nil {
			log.Warn(msg, "err", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-clock.After(min(time.Duration(fenced+1)*poll, 30*time.Second)):
			}
			continue
		}
		return err
	}
}
