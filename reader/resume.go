package reader

import (
	"context"
	"errors"
	"log/slog"
	"sync"
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

// TailItem is a change of TailAcked, or (Err set) the error that ended the
// tail.
type TailItem struct {
	Change *Change
	Err    error
}

// TailAcked tails r after snapshot from in a goroutine and hands its
// changes over on items one at a time: it reads the next change only once
// the caller has sent on ack, so the caller decides when the tail may go
// on. items is closed when the tail ends (after an item with Err set) or
// ctx ends. stop ends the tail and waits for the goroutine; call it once.
func TailAcked(ctx context.Context, r *Reader, from int64) (items <-chan TailItem, ack chan<- struct{}, stop func()) {
	tctx, cancel := context.WithCancel(ctx)
	out := make(chan TailItem)
	acks := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(out)
		for ch, err := range r.Tail(tctx, from) {
			select {
			case out <- TailItem{ch, err}:
			case <-tctx.Done():
				return
			}
			if err != nil {
				return
			}
			select {
			case <-acks:
			case <-tctx.Done():
				return
			}
		}
	})
	return out, acks, func() {
		cancel()
		wg.Wait()
	}
}
