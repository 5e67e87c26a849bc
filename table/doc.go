// Package table owns Floe's Iceberg tables: their specs (schema, partitioning,
// sort order, properties) as YAML, creating and evolving them, and the one
// commit protocol every Floe component commits through.
//
// The protocol (commit.go) is what exactly-once rests on: every snapshot Floe
// commits carries, in its summary, the cumulative position map of every
// source that writes the table (floe.positions.<source>) and a unique
// floe.commit-id. A source resumes from the positions of the newest Floe
// snapshot in the current ancestry; a batch whose starting positions no
// longer match the table is fenced; clean conflicts are retried on a freshly
// loaded table; unknown outcomes are resolved by looking for the commit id
// in the history. iceberg-go v0.7.0's SQL catalog reports conflicts as plain
// errors and never retries them, so this package recognises them itself.
//
// This package never reads source data and never writes data files; it
// commits files others wrote.
package table
