package compaction

import (
	"fmt"

	"github.com/floe-lake/floe/writer"
)

// ValidateWith checks the rules between the compaction: section and the
// other sections of the same floe.yaml; Validate checks the section
// alone. Orphans younger than a writer's commit interval plus its commit
// timeout may be the files of a commit still in flight, so
// orphan-older-than must exceed writer.commit-interval +
// writer.commit-timeout. Both configs must have their defaults applied.
func (c *Config) ValidateWith(w writer.Config) error {
	if floor := w.CommitInterval + w.CommitTimeout; c.OrphanOlderThan <= floor {
		return fmt.Errorf("compaction.orphan-older-than: %s must exceed writer.commit-interval + writer.commit-timeout (%s)", c.OrphanOlderThan, floor)
	}
	return nil
}
