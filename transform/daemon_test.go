package transform

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/floe-lake/floe/internal/daemon"
)

// TestFollowJob: an error of the spec halts the job; Follow, cancelled,
// commits what it read completely and returns nil, and a restart resumes
// after it: every row once.
func TestFollowJob(t *testing.T) {
	cat := warehouse(t)
	ctx := context.Background()
	bad := Spec{Name: "bad", SQL: "SELECT o.order_id FROM ods.orders o LEFT JOIN ods.orders p ON o.user_id = p.order_id", Output: "dwd.bad"}
	if err := FollowJob(cat, bad, Options{Logger: quietLogger()}).Run(ctx); !daemon.IsHalt(err) {
		t.Fatalf("a dimension without a key: got %v, want a halt", err)
	}

	spec := Spec{SQL: "SELECT order_id, amount FROM ods.orders", Output: "dwd.follow"}
	appendRows(t, cat, "ods.orders", order(1, 10, 100, 0))
	fctx, cancel := context.WithCancel(ctx)
	commits := make(chan CommitInfo, 16)
	done := make(chan error, 1)
	go func() {
		done <- FollowJob(cat, spec, Options{Logger: quietLogger(), PollInterval: 10 * time.Millisecond,
			MaxBatchDelay: time.Hour, OnCommit: func(ci CommitInfo) { commits <- ci }}).Run(fctx)
	}()
	appendRows(t, cat, "ods.orders", order(2, 10, 200, 0))
	// Long enough to start and read both snapshots; nothing commits
	// before the cancel (MaxBatchDelay is an hour).
	time.Sleep(time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("cancelled Follow: %v", err)
	}
	appendRows(t, cat, "ods.orders", order(3, 10, 300, 0))
	catchUp(t, newT(t, cat, spec))
	want := []string{"1|100", "2|200", "3|300"}
	if got := rowsOf(t, cat, spec.Output); !slices.Equal(got, want) {
		t.Fatalf("rows:%s", diff(want, got))
	}
	if len(commits) == 0 {
		t.Fatal("the cancelled follower committed nothing")
	}
}
