// Package reader reads Floe's Iceberg tables back out: exactly the rows that
// arrived between two snapshots (Apache Iceberg's incremental-scan
// semantics), a tailing cursor that yields each new snapshot's changes in
// order, and batch backfill of a snapshot (time travel by id or timestamp)
// or an event-time range, all as streamed Arrow record batches.
//
// # Semantics
//
// A read covers the snapshots after a starting snapshot (exclusive) up to
// an ending snapshot (inclusive), following the ending snapshot's ancestry:
//
//   - append snapshots contribute the data files they added, found through
//     each snapshot's own manifests (the manifests whose added-snapshot id is
//     that snapshot), never by walking the table's whole history;
//   - replace snapshots (compaction) contribute nothing, so compaction never
//     causes re-reads;
//   - overwrite and delete snapshots (row deltas of CDC tables, deletes) can
//     remove rows. In ModeAppend they fail the read with ErrNotAppendOnly,
//     as Iceberg's streaming readers do; in ModeChangelog they yield a
//     changelog: inserted and deleted rows tagged with a _change_type
//     column (INSERT, DELETE), deletes before inserts within a snapshot.
//
// iceberg-go v0.7.0 has both incremental scans, with two gaps this package
// closes. Its IncrementalAppendScan silently skips overwrite snapshots, so
// the rows of a row delta (committed as overwrite) would be missed: the
// reader checks every snapshot's operation itself and uses iceberg-go's
// append planning one append snapshot at a time. Its
// IncrementalChangelogScan fails whenever a delete manifest is in range
// (iceberg-go#1884): the reader plans an overwrite or delete snapshot S as
// the difference of two ordinary scans, of S's parent and of S, per data
// file: files only in the parent are DELETE rows (read with the deletes
// that applied to them), files only in S are INSERT rows (read with S's
// deletes), and files in both whose delete files changed yield as DELETE
// rows exactly the rows that the new deletes removed (the rows of the file
// read with the parent's deletes that are missing from the file read with
// S's deletes, matched in file order). Append snapshots take the cheap path
// in both modes.
//
// Predicates (Config.Filter, Config.EventTime, ParseFilter) are pushed down
// to iceberg-go's planning, which prunes manifests by partition summaries
// and data files by partition values and column statistics, and are applied
// to rows while reading. iceberg-go v0.7.0 skips Parquet row groups whose
// filtered column is exactly half null (it takes arrow-go's non-null count
// for the value count), so the reader does not let it prune row groups by a
// nullable column that has nulls in them and applies such conditions to
// the rows itself (rowfilter.go). Config.Columns projects columns. Files are read
// Config.Concurrency at a time; a read holds at most that many files'
// decoded batches in memory.
//
// # Manifest cache
//
// Manifest lists and manifests never change once written, so a Reader keeps
// the ones it decoded (ManifestCache: least recently used out, within a
// budget of estimated bytes, DefaultManifestCacheBytes unless
// Config.ManifestCache is given; readers may share one). An unfiltered
// incremental read plans an append snapshot from it: the snapshot's
// manifest list, the data manifests the snapshot added, and in them the
// entries it added, as iceberg-go's incremental append scan would, so a
// repeated read, and a follower's poll, decodes only manifest lists and
// manifests it has not seen (a follower still decodes each new snapshot's
// manifest list once). Filtered reads plan with iceberg-go, which prunes by
// the filter. The cache's memory (ManifestCache.Stats) is the process's,
// beside the writer's budget.
//
// # Cursors
//
// Tail polls the table (Config.PollInterval, on Config.Clock) and yields
// each new snapshot's changes in order, replace snapshots included (with no
// rows) so a consumer's cursor can move past them. The cursor is the id of
// the last snapshot a consumer has fully consumed; it is durable only if the
// consumer stores it with its output: in the same commit as its output when
// it writes a table (CursorAdvance, CursorFromPositions: the cursor is a
// table.Positions entry committed with table.Committer), or otherwise in a
// small state object (FileCursorStore, written atomically by temp file and
// rename; ObjectCursorStore, an object in the warehouse). A cursor whose
// snapshot has expired fails with ErrCursorExpired and an error that says
// how to restart.
//
// Follow is such a consumer for files (floe read -follow -cursor-file): it
// writes a table's rows, then every new snapshot's, to an output file, and
// after each snapshot stores a FileCursorStore cursor recording the snapshot
// and the output's length; a restarted follower truncates the output to that
// length and resumes, so the output holds every row exactly once. A read
// that fails for a while (the catalog or the object store not answering)
// does not end it: it drops what it wrote of the unfinished snapshot and
// resumes after the last one it completed, with a backoff (500 ms,
// doubling, at most 30 s); only errors retrying cannot fix end it. Read and
// Start are the one-shot reads the same command line describes.
//
// This package only reads tables: it never commits to a table, never writes
// or deletes table data or metadata files, and never changes table
// properties. Cursor stores write only the cursor object they are given;
// Follow writes only its output file and its cursor file.
package reader
