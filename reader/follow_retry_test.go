package reader_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
)

// faultyIO fails the opens of files that its fail function picks, as an
// object store does during an outage.
type faultyIO struct {
	iceio.IO
	fail func(name string) error
}

func (f faultyIO) Open(name string) (iceio.File, error) {
	if err := f.fail(name); err != nil {
		return nil, err
	}
	return f.IO.Open(name)
}

// faultyLoader loads tables whose IO fails the opens fail picks; loads
// fail while failLoad returns an error.
func faultyLoader(cat icecat.Catalog, failLoad func() error, fail func(name string) error) reader.TableLoader {
	return reader.LoaderFunc(func(ctx context.Context, ident icetable.Identifier) (*icetable.Table, error) {
		if err := failLoad(); err != nil {
			return nil, err
		}
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			return nil, err
		}
		fs, err := tbl.FS(ctx)
		if err != nil {
			return nil, err
		}
		fsF := func(context.Context) (iceio.IO, error) { return faultyIO{IO: fs, fail: fail}, nil }
		return icetable.New(ident, tbl.Metadata(), tbl.MetadataLocation(), fsF, cat), nil
	})
}

// fastClock is the system clock with every wait cut to at most 5 ms, so
// that the follower's backoffs do not slow the tests.
type fastClock struct{}

func (fastClock) Now() time.Time { return time.Now() }
func (fastClock) After(d time.Duration) <-chan time.Time {
	return time.After(min(d, 5*time.Millisecond))
}

// TestFollowRetriesTransientErrors: a follower whose reads fail for a
// while — the catalog or the object store not answering, a manifest or a
// data file failing mid-snapshot after other files' rows were written —
// does not exit: it drops what it wrote of the unfinished snapshot, waits,
// and resumes after the last snapshot it completed, so the output holds
// every row exactly once. A failure retrying cannot fix still ends it.
func TestFollowRetriesTransientErrors(t *testing.T) {
	errDown := errors.New("connection refused (injected)")
	kind := func(name string) string {
		base := name[strings.LastIndexByte(name, '/')+1:]
		switch {
		case strings.HasSuffix(base, ".parquet"):
			return "data"
		case strings.HasPrefix(base, "snap-"):
			return "manifest-list"
		case strings.HasSuffix(base, ".avro"):
			return "manifest"
		}
		return "other"
	}
	tests := []struct {
		name string
		// fault fails some of the opens (of files of kind; the n-th open
		// of that kind counted from 1, while armed) or loads.
		kind    string
		nth     int
		times   int // how many opens in a row fail
		load    bool
		backlog bool // fail during the backfill rather than the tail
	}{
		{name: "second data file of the backfill", kind: "data", nth: 2, times: 1, backlog: true},
		{name: "data files of a new snapshot", kind: "data", nth: 2, times: 4},
		{name: "manifests of a new snapshot", kind: "manifest", nth: 1, times: 3},
		{name: "manifest list of a new snapshot", kind: "manifest-list", nth: 1, times: 2},
		{name: "catalog at start", load: true, times: 3, backlog: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat, f, _, out, cursorFile := followSetup(t, 10)
			f.appendRows(10)
			var mu sync.Mutex
			armed, seen, failed := tt.backlog, 0, 0
			pick := func(k string) error {
				mu.Lock()
				defer mu.Unlock()
				if !armed || k != tt.kind {
					return nil
				}
				if seen++; seen >= tt.nth && failed < tt.times {
					failed++
					return errDown
				}
				return nil
			}
			loadFails := func() error {
				if tt.load {
					return pick("")
				}
				return nil
			}
			if tt.load {
				tt.kind = ""
			}
			r := newReader(t, faultyLoader(cat, loadFails, func(name string) error { return pick(kind(name)) }), "ods.events",
				// One file at a time: a failed file comes after others'
				// rows were written.
				reader.Config{PollInterval: 10 * time.Millisecond, Clock: fastClock{}, Concurrency: 1})
			writes := 0
			err := follow(t, r, reader.FollowOptions{Format: reader.FormatJSONL, Output: out, CursorFile: cursorFile}, func() bool {
				writes++
				switch writes {
				case 1: // the backfill is written: fail the next snapshot's reads
					mu.Lock()
					armed, seen = !tt.backlog, 0
					mu.Unlock()
					f.appendRows(10)
				case 2:
					f.appendRows(5)
				}
				return writes == 3
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Follow: %v", err)
			}
			if failed != tt.times {
				t.Fatalf("%d reads failed, want %d: the fault did not meet the follower", failed, tt.times)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			got := jsonlIDs(t, b)
			slices.Sort(got)
			if want := tabletest.IDs(0, 35); !slices.Equal(got, want) {
				t.Fatalf("output ids %v, want 0..34 exactly once", got)
			}
		})
	}

	// A cursor that expired is not retried.
	t.Run("expired cursor ends it", func(t *testing.T) {
		cat, f, _, out, _ := followSetup(t, 3)
		r := newReader(t, cat, "ods.events", reader.Config{PollInterval: 10 * time.Millisecond, Clock: fastClock{}})
		f.appendRows(3)
		err := follow(t, r, reader.FollowOptions{Format: reader.FormatJSONL, Output: out,
			Start: reader.Start{Kind: reader.StartAfter, SnapshotID: 12345}}, func() bool { return false })
		if err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("Follow after a snapshot not in the table: %v; want an error", err)
		}
	})
}
