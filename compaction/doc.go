// Package compaction keeps Floe's tables fast while ingest keeps
// committing: one commit a minute leaves 1,440 small files per partition
// per day per writer, and a manifest and a snapshot per commit. The
// Compactor (floe compact) runs passes over every table, each table on its
// own schedule, each pass:
//
//  1. rewrite: PlanGroups bin-packs each partition's small files (and files
//     carrying delete-file-threshold delete files) into groups of up to
//     the target file size; each group is streamed — record batches read
//     with deletes applied, fed as an iterator to iceberg-go's
//     WriteRecords at the target size, never a whole group in memory —
//     and committed as a replace snapshot that removes the inputs and adds
//     the outputs;
//  2. manifests: merges the manifests when commits have left more than
//     rewrite-manifests.max-manifests, or at least 10 averaging under
//     rewrite-manifests.min-average-bytes;
//  3. expire: expires snapshots by the table's
//     history.expire.max-snapshot-age-ms and min-snapshots-to-keep;
//     iceberg-go then deletes the files only the expired snapshots
//     referenced;
//  4. orphans: deletes files under the table location that no metadata
//     references and that are older than orphan-older-than (at least 1h).
//
// Every commit goes through table.Committer, the one commit protocol, with
// no Advances: compaction never advances, fences or rewrites positions; it
// carries the table's position map forward unchanged, so sources resume
// exactly where they were. On a conflict with a concurrent ingest commit
// the committer reloads the table and re-runs the staging, which first
// re-checks each group against the fresh table (rewrite.go, check): a group
// whose inputs someone else removed, or that a delete committed since
// planning might affect, is dropped rather than committed, and its output
// files are left to the orphan cleaner. Ingest commits are never lost and
// never make compaction fail for good: a step that fails is counted, and
// the daemon (Run, daemon.go) retries the table after a backoff. Only a
// table that needs a person — an invalid table property, metadata that
// does not parse, files that break an invariant — halts, alone: its job
// stops, the other tables go on.
//
// A replace commit costs more than an ingest append (iceberg-go reads every
// manifest of the head and rewrites those holding inputs), so under
// frequent ingest it could keep losing: window.go starts its retries right
// after the head moves, and a replace whose parent has more than 8
// manifests merges them in the same commit, which makes the attempt
// shorter and keeps the manifest count — and every later attempt — small.
// Past the point where one attempt outlasts the gap between ingest commits
// no optimistic committer can land; the pass then fails with class
// conflict or timeout after commit-timeout and the next pass retries.
//
// Where iceberg-go v0.7.0 falls short, and what this package does instead:
//
//   - Its rewrite validator (Transaction.RewriteDataFiles, RewriteFiles)
//     only sees snapshots committed between the transaction's base and the
//     catalog head, and its SQL catalog never retries a conflict; Floe's
//     committer stages every attempt on a fresh table, so the validator
//     sees nothing. The checks it would make are made here against the
//     planning snapshot.
//   - Table.RewriteDataFiles commits through the catalog itself and so
//     cannot carry Floe's positions or commit id; groups are executed here
//     and committed with Transaction.NewRewrite (a replace snapshot) inside
//     table.Committer.
//   - RewriteManifests drops the caller's summary properties, so its
//     snapshot carries no positions; table.CurrentPositions walks past it,
//     and expiry always retains the ancestry down to the newest snapshot
//     that carries positions, and checks the staged result.
//   - ExpireSnapshots and DeleteOrphanFiles measure ages against the wall
//     clock; the compactor's clock is translated into their durations.
//
// Delete files. The rewrite folds deletes away by rewriting the data files
// that carry delete-file-threshold of them, and removes the position
// deletes that made dead. Merging a table's position-delete files into one
// without rewriting data (DeleteMerge, deletes.go) is the keyed writer's
// step: writer.KeyedTable plans it from the deletes it made, which it holds
// in memory, and stages it in its own commit between its ingest commits, so
// that it never races them.
//
// Keyed tables. A keyed writer also rewrites its table's data files itself
// (KeyedRewrite, keyed.go: planned by PlanKeyedGroup, written beside its
// commits, committed in its own commit, its key index moved rather than
// rebuilt) and marks the table PropCompactionOwner=OwnerWriter. The
// daemon's rewrite step skips such tables (logged at INFO; a dry run
// plans nothing, Plan.Owner says why); manifests, expiry and orphans still
// run. A rewrite by the daemon would race the writer's position deletes —
// under steady updates every group would be dropped — and make the writer
// rebuild its index.
//
// Dropped groups. A group the check drops is work lost for this pass: it
// is logged at WARN with the reason, counted in
// floe_compaction_groups_total{result="dropped"}, and RunOnce (floe
// compact -once) fails with ErrGroupsDropped and a summary line.
//
// This package imports table and internal packages only (writer imports
// it). It must not touch positions (it never advances, rewinds or
// fences them), never writes rows that were not in the table, and never
// deletes a file that retained metadata references.
package compaction
