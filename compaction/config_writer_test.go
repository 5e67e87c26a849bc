package compaction_test

import (
	"strings"
	"testing"
	"time"

	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/writer"
)

func TestValidateWith(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		orphans, interval, limit time.Duration
		want                     string
	}{
		{"defaults", 0, 0, 0, ""},
		{"above the writer's window", 3 * time.Hour, time.Hour, time.Hour + time.Minute, ""},
		{"equal to it", 2 * time.Hour, time.Hour, time.Hour, "compaction.orphan-older-than: 2h0m0s must exceed writer.commit-interval + writer.commit-timeout (2h0m0s)"},
		{"below it", 90 * time.Minute, time.Hour, time.Hour, "must exceed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := compaction.Config{OrphanOlderThan: tc.orphans}
			c.ApplyDefaults()
			w := writer.Config{CommitInterval: tc.interval, CommitTimeout: tc.limit}
			w.ApplyDefaults()
			err := c.ValidateWith(w.CommitInterval, w.CommitTimeout)
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("ValidateWith: %v, want %q", err, tc.want)
			}
		})
	}
}
