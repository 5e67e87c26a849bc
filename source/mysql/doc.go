// Package mysql is Floe's change-data-capture source for MySQL and
// MariaDB: it copies the included tables (an initial snapshot consistent
// with a binlog position) and then follows the binlog, applying inserts,
// updates and deletes to one Iceberg table per MySQL table, exactly once,
// so that each Iceberg table equals its MySQL table as of the binlog
// position it holds.
//
// It reads the server (information_schema, SELECT in a snapshot
// transaction, the binlog through go-mysql's BinlogSyncer with the mysql or
// mariadb flavor) and hands rows to a writer.Sink's keyed tables. It never writes to
// MySQL, never commits to a table itself (the writer's KeyedTable commits,
// through table.Committer), and keeps no state outside the tables: a run
// resumes from the positions the tables hold.
//
// # Server requirements
//
// log-bin, binlog-format=ROW, binlog-row-image=FULL and
// binlog-row-metadata=FULL (MySQL 8.0.1+, MariaDB 10.5+): every table map
// then carries column names, signedness and ENUM/SET labels, so a row is
// decoded with the schema it was written under, also when the binlog is
// replayed across later DDL. The user needs REPLICATION SLAVE, REPLICATION
// CLIENT, SELECT and RELOAD (for FLUSH TABLES WITH READ LOCK; without it,
// on MariaDB, the binlog_snapshot_file/position status is used), and
// snapshot-parallelism + 2 connections during a snapshot.
// integration/mariadb.sh starts such a server.
//
// Sessions can still override the format and the row image
// (SET SESSION binlog_format / binlog_row_image). A row change Floe cannot
// apply halts the captured tables it touches (see DDL for what halting
// means), at the start of its transaction — never past a change the table
// did not get — while the other tables, and the rest of the transaction
// for them, go on:
//
//   - DML logged as a statement (binlog_format STATEMENT or MIXED): an
//     INSERT, REPLACE, UPDATE, DELETE or LOAD DATA (an Execute_load_query
//     event) halts the captured tables it names, read with TiDB's SQL
//     parser: the table inserted or loaded into, every table a multi-table
//     UPDATE or DELETE joins (also those it only reads). A statement the
//     parser cannot read, or one that changes tables through a function
//     (SELECT or DO logged as a statement), halts every captured table of
//     its default database and of the databases it names, and the reason
//     says so. Changes made by triggers are not in the statement: only the
//     tables it names are halted. Statements on tables that are not
//     captured are ignored. The parser (github.com/pingcap/tidb/pkg/parser)
//     was already in the module graph through go-mysql, at the same
//     version, and is kept by the TiDB project; the floe binary grew from
//     125 to 136 MB in the session that linked it in, together with that
//     session's other new code (not measured apart). What it buys: the exact tables of REPLACE, INSERT …
//     SELECT, multi-table UPDATE and DELETE, so that a statement halts
//     only what it touches instead of every table of its database.
//   - Row images without the columns applying them needs
//     (binlog_row_image MINIMAL or NOBLOB): an inserted image or an
//     update's new image lacking any column, or an old image lacking a
//     key column. A MINIMAL delete has the key and is applied.
//
// # Positions
//
// One partition, "binlog"; a position is the binlog file's sequence number
// in the high 32 bits and the byte offset in the low 32 (position.go), and
// is always the end of a transaction. Each table commits its own position;
// a run streams from the lowest, and each table skips the transactions that
// start before its own, so a transaction spanning tables that was cut by a
// crash between two tables' commits is applied exactly once to each. Rows
// are handed over at transaction ends only (a whole transaction, however
// large, is held in memory), so a table never shows half a transaction.
// A table whose position the server has purged is snapshotted again. A
// quiet table commits its position alone (an empty snapshot) every
// position-commit-interval, so it does not hold the resume point back.
//
// # Snapshot
//
// Tables without a position are copied as of one binlog position, as
// mydumper does it: snapshot-parallelism connections (default 4) are
// opened, then FLUSH TABLES WITH READ LOCK, START TRANSACTION WITH
// CONSISTENT SNAPSHOT on each connection, SHOW MASTER STATUS (and the
// columns read), UNLOCK TABLES: every transaction started while the lock
// held the binlog still, so all see the tables as of the position read
// under it. Without the RELOAD privilege (MariaDB only) each transaction
// reports its own position (binlog_snapshot_file/position); they are
// started at once and kept when all report the same one, else started
// again (5 tries) and, when writes keep coming between them, the snapshot
// is read on one connection (logged at INFO).
//
// A table whose key columns all compare in SQL as they sort (integers,
// decimals, strings, binary strings, temporal types: not FLOAT, DOUBLE,
// ENUM, SET or BIT) is read in chunks of its primary key, on all
// connections at once, as Flink CDC's and Debezium's chunked snapshots
// do: a connection outside the snapshot finds the boundaries one after
// the other (SELECT key ... WHERE key >= lo ORDER BY key LIMIT 1 OFFSET
// 50000), and chunk i is b[i] <= key < b[i+1] (lexicographic over a
// composite key), so the chunks cover every key exactly once whatever
// the boundaries; the readers take the next chunk when done. Other tables
// are read in one SELECT (logged at INFO). The rows are read with
// go-mysql's streaming client, each value decoded from the row packet
// straight into the table's column builders. The copy is applied without
// positions and committed as one snapshot with the snapshot's position;
// a crash before that commit copies again. The table is truncated before
// the copy and the copy reads every row once, so when the table's key is
// MySQL's primary key (not a FLOAT or DOUBLE column) its rows are handed
// over as new keys (writer.Changes.NewKeys): the writer does not look each
// key up in its index.
//
// # Updates and deletes: the delete strategy
//
// Writes go through writer.KeyedTable: an in-memory primary-key index
// turns every update and delete into a position delete of the row's
// current image; within a commit only the last image of a key is written.
// Position-delete files are merged (and data files whose rows are all
// deleted dropped) in a replace snapshot once a table has max-delete-files
// of them, so readers open a bounded number of delete files. Measured with
// BenchmarkDeleteStrategy (10,000 keys, commits of 1,000 random updates,
// 2-core machine; full iceberg-go scan, median of 3):
//
//	commits                         25       50      100      200
//	equality deletes             467ms    1.9s     3.8s    13.9s
//	position deletes, unmerged   368ms    795ms    1.45s   2.74s
//	position deletes, merged     191ms    285ms    631ms   467ms
//
// A changelog read (package reader) of the last row delta after 200
// commits took 69.6s with equality deletes (every older data file's delete
// set changes with every commit, so every file is diffed), 14.8s unmerged
// and 5.5s merged; a commit took 62, 72 and 149ms (the merges, and
// metadata that grows without snapshot expiry, cost the writer). Equality
// deletes also make iceberg-go's compaction refuse to commit beside the
// writer: its rewrite validation (v0.7.0) rejects any concurrent equality
// delete, where Iceberg's Java implementation accepts it with
// use-starting-sequence-number. The index costs about 20 bytes per live
// row (30 for keys other than one integer column), in a memory-mapped file
// under the cache directory that a restart validates against the table's
// snapshot and catches up with the files committed since, instead of
// rebuilding it (writer/keyindex_restore.go); another writer changing the
// table's files makes the next commit fail and the source restart, which
// catches the index up.
//
// # Partitioned tables
//
// The Iceberg tables a source creates are unpartitioned unless
// Config.Partitions names partition fields for them (a table spec's
// partition:, of top-level columns, per database.table pattern); they
// apply when the table is created. The key index is global, so the
// partition columns need not be in the primary key: an update that
// changes them becomes a position delete in the old partition and a row in
// the new one. Dropping a partition source column is a DDL the table
// cannot follow: it halts the table.
//
// # Type mapping
//
//	tinyint, smallint, mediumint, int, year  int (int unsigned: long)
//	bigint                                   long (unsigned: decimal(20,0))
//	decimal(p,s)                             decimal(p,s) (p > 38: string)
//	float, double                            float, double
//	char, varchar, *text, json               string
//	enum, set                                string: the label; the labels joined by ","
//	binary, varbinary, *blob, geometry       binary (BINARY(n) zero-padded, as SELECT returns it)
//	bit(n)                                   binary: big-endian, ceil(n/8) bytes
//	date, time                               date, time
//	datetime, timestamp                      timestamp (wall clock), timestamptz (UTC)
//
// The primary key's columns are required and the identifier fields; other
// columns are optional. Values Iceberg cannot hold — zero dates, TIME
// values outside 00:00:00–23:59:59.999999 — make their row a dead letter
// (the dead-letter table, with the binlog position, key, values and
// reason; the snapshot's dead letters too); the row's key is deleted from
// the table. A row image whose key itself cannot be mapped is one dead
// letter and deletes nothing (no row with that key was written). Dead
// letters are committed before any table moves past them.
//
// # DDL
//
// ALTER TABLE ADD COLUMN (nullable, without a default), DROP COLUMN,
// RENAME COLUMN / CHANGE (renamed by field id) and type changes Iceberg
// can make (int→long, float→double, wider decimals) become one Iceberg
// schema change committed with the position past the statement. An added
// column existing rows have a value for (a default, NOT NULL) makes the
// table be copied again. TRUNCATE deletes every row; a new included table
// (CREATE, RENAME into the include list) is snapshotted; index, option and
// default changes are ignored. A DDL Floe cannot follow (a type Iceberg
// cannot change to, a primary-key change, DROP or RENAME of the table)
// halts that table: its Iceberg table keeps the rows up to the statement
// and gets the table property floe.halted with the reason, and the other
// tables go on. A table the include list names (a pattern that is one
// database.table) that does not exist is logged at start and shown by
// floe_mysql_table_missing; it is captured once created.
package mysql
