package reader_test

import (
	"context"
	"errors"
	"iter"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
)

// fakeClock fires its timers only when told to.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []chan time.Time
	waits   []time.Duration
	waiting chan struct{}
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: day0, waiting: make(chan struct{}, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, ch)
	c.waits = append(c.waits, d)
	c.waiting <- struct{}{}
	return ch
}

// fire advances the clock and fires every pending timer.
func (c *fakeClock) fire(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, ch := range c.timers {
		ch <- c.now
	}
	c.timers = nil
}

type pulled struct {
	ch  *reader.Change
	err error
	ok  bool
}

// pullAsync runs next in a goroutine.
func pullAsync(next func() (*reader.Change, error, bool)) <-chan pulled {
	out := make(chan pulled, 1)
	go func() {
		ch, err, ok := next()
		out <- pulled{ch, err, ok}
	}()
	return out
}

func TestTail(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cat := tabletest.OpenSQLite(t)
	f := newFixture(t, cat, eventsSpec("ods.events"))
	s1 := f.appendRows(10)
	s2 := f.appendRows(10)
	s3 := f.compact()
	clock := newFakeClock()
	r := newReader(t, cat, "ods.events", reader.Config{PollInterval: time.Minute, Clock: clock})

	next, stop := iter.Pull2(r.Tail(ctx, 0))
	defer stop()
	var got []int64
	for i, want := range []int64{s1, s2, s3} {
		ch, err, ok := next()
		if err != nil || !ok {
			t.Fatalf("change %d: %v %v", i, err, ok)
		}
		if ch.Snapshot.ID != want {
			t.Fatalf("change %d is snapshot %d, want %d", i, ch.Snapshot.ID, want)
		}
		got = append(got, ids(readRows(t, ch.Stream))...)
	}
	if slices.Sort(got); !slices.Equal(got, tabletest.IDs(0, 20)) {
		t.Fatalf("tailed ids %v", got)
	}

	// Caught up: Tail waits for the clock, then finds the new snapshot.
	res := pullAsync(next)
	<-clock.waiting
	s4 := f.appendRows(5)
	select {
	case p := <-res:
		t.Fatalf("Tail returned %+v before its poll interval passed", p)
	case <-time.After(50 * time.Millisecond):
	}
	clock.fire(time.Minute)
	p := <-res
	if p.err != nil || !p.ok || p.ch.Snapshot.ID != s4 {
		t.Fatalf("after the poll: %+v, want snapshot %d", p, s4)
	}
	if got := ids(readRows(t, p.ch.Stream)); !slices.Equal(sorted(got), tabletest.IDs(20, 25)) {
		t.Fatalf("new snapshot's ids %v", got)
	}
	clock.mu.Lock()
	if clock.waits[0] != time.Minute {
		t.Fatalf("Tail waited %s, want the poll interval", clock.waits[0])
	}
	clock.mu.Unlock()

	// Resuming from a cursor yields only what follows it.
	next2, stop2 := iter.Pull2(r.Tail(ctx, s2))
	defer stop2()
	for _, want := range []int64{s3, s4} {
		ch, err, ok := next2()
		if err != nil || !ok || ch.Snapshot.ID != want {
			t.Fatalf("resumed tail: %v %v %v, want snapshot %d", ch, err, ok, want)
		}
	}

	// Cancelling ends the iteration.
	res = pullAsync(next)
	<-clock.waiting
	cancel()
	if p := <-res; p.ok {
		t.Fatalf("after cancel: %+v", p)
	}
}

func TestTailStopsOnRowDeletes(t *testing.T) {
	f, snaps := cdcTable(t)
	r := newReader(t, f.cat, f.name, reader.Config{Clock: newFakeClock()})
	var seen []int64
	for ch, err := range r.Tail(context.Background(), 0) {
		if err != nil {
			if !errors.Is(err, reader.ErrNotAppendOnly) {
				t.Fatalf("tail: %v, want ErrNotAppendOnly", err)
			}
			break
		}
		seen = append(seen, ch.Snapshot.ID)
		readRows(t, ch.Stream)
	}
	if !slices.Equal(seen, []int64{snaps["append1"]}) {
		t.Fatalf("tail yielded %v before the row delta, want only the first append", seen)
	}
}
