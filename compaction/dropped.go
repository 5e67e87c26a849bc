package compaction

import (
	"errors"
	"fmt"
	"strings"
)

// ErrGroupsDropped is RunOnce's error when its pass dropped file groups:
// their inputs changed under them (another commit removed an input, or
// committed delete files that might apply to them), so their rewrite is
// not in the table. Nothing is lost from the table, but the pass did not
// do its work: a one-shot run (floe compact -once) exits non-zero. The
// daemon (Run) logs each dropped group at WARN and counts it in
// floe_compaction_groups_total{result="dropped"}; the next pass plans
// again.
var ErrGroupsDropped = errors.New("compaction dropped file groups")

// droppedError summarises the dropped groups of rep, or returns nil.
func droppedError(rep PassReport) error {
	var n int
	var tables []string
	for _, t := range rep.Tables {
		if t.Dropped > 0 {
			n += t.Dropped
			tables = append(tables, fmt.Sprintf("%s: %d of %d", t.Table, t.Dropped, t.Groups))
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d file groups not rewritten (%s); their inputs changed while they were rewritten (see the warnings), the next pass plans again",
		ErrGroupsDropped, n, strings.Join(tables, ", "))
}
