package compaction

import (
	"fmt"
	"time"
)

// ValidateWith checks the rules between the compaction: section and the
// other sections of the same floe.yaml; Validate checks the section
// alone. Orphans younger than a writer's commit interval plus its commit
// timeout may be the files of a commit still in flight, so
// orphan-older-than must exceed writer.commit-interval +
// writer.commit-timeout, given here (this package cannot import writer:
// the keyed writer calls its maintenance steps). c must have its defaults
// applied.
func (c *Config) ValidateWith(commitInterval, commitTimeout time.Duration) error {
	if floor := commitInterval + commitTimeout; c.OrphanOlderThan <= floor {
		return fmt.Errorf("compaction.orphan-older-than: %s must exceed writer.commit-interval + writer.commit-timeout (%s)", c.OrphanOlderThan, floor)
	}
	return nil
}
