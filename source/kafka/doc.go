// Package kafka is Floe's Kafka source: consumer-group daemons that read
// JSON records from topics and hand them, with their offsets, to the writer,
// which commits rows and offsets together into Iceberg tables — exactly
// once, across restarts, rebalances and zombies.
//
// # Positions
//
// A partition's position is "topic/partition" → next offset, kept per table
// in the tables' snapshot summaries (floe.positions.<id>), never in the
// consumer group. Every table a partition feeds (its route's tables and the
// dead-letter table) has its own position; the partition is read from the
// lowest of its route's tables' positions and each record goes only to the
// tables whose position it has not passed, so a crash between two tables'
// commits neither loses nor repeats a row. Dead letters are committed
// before any table is handed positions past them (polls with dead letters
// are held, up to a second or eight polls, then the dead-letter table is
// committed and the polls handed on), so the dead-letter table — whose
// position only moves when it receives a record — never holds a partition
// back: a restart reads from where the route's tables stand, not from the
// start of the topic. Group offsets are committed only after the Iceberg commit
// (the lowest position of the partition's routed tables), for lag
// monitoring and tools; Floe never reads them.
//
// # Rebalances and fencing
//
// The source keeps one franz-go group client across the runs Supervise
// starts, so restarting the pipeline does not leave the group and make the
// other processes rebalance. Rebalance callbacks run only between polls
// (BlockRebalanceOnPoll), when everything polled has been handed to the
// writer:
//
//   - Assigned (AdjustFetchOffsetsFn): the writer resyncs the partitions'
//     positions from the tables (writer.Sink.Resync) and fetching starts
//     there, not at the group's committed offset.
//   - Revoked: the writer commits everything buffered while the partitions
//     are still ours; then the run ends with ErrRebalanced, because the
//     writer still holds the revoked partitions' positions, and its next
//     commit would be fenced as soon as the new owner commits. Supervise
//     starts a fresh writer and the source re-seeks the partitions it still
//     owns from the tables, without leaving the group. ErrRebalanced is a
//     routine restart (source.ErrRestart), logged as such.
//   - Lost (the group expired our session: a zombie): nothing is committed;
//     the run ends with ErrRebalanced. A zombie that commits before it
//     learns of the loss is fenced by the commit protocol (table.ErrFenced:
//     the table's positions moved since its batch started); Write returns
//     that, the run ends, and the next run re-seeks from the tables.
//
// Either way the restart is clean: the writer's buffered rows are dropped,
// nothing is committed twice, and no rebalance cascades from it.
//
// # Health
//
// franz-go retries brokers that do not answer and topics that do not exist
// forever and quietly (a WARN per failed dial, DEBUG metadata refreshes; a
// missing topic never even joins the group). The source asks a broker for
// its topics' metadata every few seconds; a fault that lasts
// unavailable-timeout is logged once at ERROR with the brokers or the topic
// and the cause, shown by floe_kafka_broker_up (0) or
// floe_kafka_topic_missing{topic} (1), and returned by Health; its end is
// logged at INFO and the gauge returns. The source keeps running and
// retrying throughout, and a topic created later is consumed.
//
// franz-go logs its own warnings and errors at every attempt — a refused
// SASL login at ERROR at every connection, some 0.6 s apart. Each is
// logged once, with its reason, and its repeats at DEBUG until a broker
// answers the health probe again ("kafka brokers accept the client
// again"). A broker that refuses the client's credentials (or a client
// that refuses the broker's certificate) is dialled again only after a
// backoff: 1 s, doubling with every refusal in a row, at most 30 s, as
// Kafka's own clients space out reconnections (reconnect.backoff.ms up to
// reconnect.backoff.max.ms).
//
// # Group membership
//
// A crashed process's partitions stay idle until the group's session
// timeout expires — whether or not the process restarts, since its new
// incarnation joins as a new member. A static member (instance-id) that
// restarts within the session gets its partitions back at once, without
// a rebalance; one that stops for good, even gracefully, leaves them idle
// for the session timeout. TestKafkaRestartTime (integration) measures
// each; the defaults (10s sessions, cooperative-sticky, dynamic
// membership) follow from it.
//
// # Decoding
//
// Values are JSON objects mapped to the table's columns by name through
// source/jsonrow (RFC 3339 or epoch ms/µs timestamps, objects into structs,
// arrays into lists, unknown fields ignored). Canal and Debezium JSON
// envelopes are unwrapped into their row images, with the change type in
// _cdc_op: a route in mode append (the default) appends the change log;
// mode upsert applies the changes (Upserts). Records that cannot be decoded or mapped become rows of the
// dead-letter table with topic/partition, offset, key, raw value and the
// reason, under the same per-table positions.
//
// # Upserts
//
// A route with mode: upsert applies changes by key to tables with
// identifier fields (their key), through writer.KeyedTable — the keyed
// path of the MySQL source: an upsert replaces the key's row, a delete
// removes it, as row deltas (new data files and position deletes). Rows
// are applied in offset order per partition; a poll's upserts and deletes
// are handed over together, in order, in one KeyedTable.Apply with the
// positions they reach (the deletes that clear a dead letter's key, a
// statement that halts the table and the poll's end are the only
// boundaries): a commit holds exactly the changes of the records before
// its positions, so a restart resumes from the table's positions without
// losing or repeating one. Upserts and deletes of whole rows are
// idempotent anyway: re-applying a change the table holds leaves one row
// per key. What each record does:
//
//   - canal-json: every row of data, in order. INSERT upserts; UPDATE
//     upserts, and when old (the previous values of the changed columns)
//     holds a key column, deletes the old key first; DELETE deletes the
//     row's key. A DDL message (isDdl, or a type that is not INSERT,
//     UPDATE or DELETE) is logged at INFO and skipped — columns are mapped
//     by name, so added columns are ignored and dropped ones become nulls
//     — except one the table cannot follow, which halts the table: one
//     that changes the key (names PRIMARY KEY, or drops, renames, CHANGEs
//     or MODIFYs a key column) or removes rows without row events
//     (TRUNCATE, DROP TABLE). A halted table is committed up to the
//     statement, gets the table property floe.halted with the reason, and
//     is skipped, also by later runs, until the property is removed; the
//     route's other tables go on.
//   - debezium-json: c and r upsert the after image; u upserts it, deleting
//     the before image's key first when it differs; d deletes the before
//     image's key; t (truncate) halts the table as above; a tombstone (a
//     null value after a delete) is ignored.
//   - json (key: required): an object upserts; a null or empty value (a
//     tombstone) deletes the key of the record's Kafka key — a JSON object
//     with the key columns or, for a one-column key, a JSON scalar or text.
//
// A delete of a key the table does not hold is a no-op, counted in
// floe_kafka_upsert_unknown_key_deletes_total. A row whose key columns
// are missing or null (or do not decode) is a dead letter with the reason;
// a row whose key is good but whose image does not decode is a dead letter
// and deletes its key, so the table keeps no stale image of it. Tombstones
// and statements skipped carry no row.
//
// Throughput (BenchmarkUpsertIngest: 200k generated orders changes, 10 %
// deletes, on two cores shared with other work at load 15): 215–225k
// changes per CPU-second for Canal, 180–215k for Debezium, against
// 35–38k and 33k before the keyed writer took a poll's mixed upserts and
// deletes in one Apply, the key columns of images were scanned rather
// than decoded into maps, and plain envelopes were decoded in one
// checking pass (envelope.go; encoding/json still decodes anything
// else, and its errors are the dead letters' reasons).
//
// Upsert tables may be partitioned by top-level columns (the declared
// spec's partition:), by any transform; the partition columns need not be
// in the key: the keyed writer's index is global, and an update that
// changes them deletes the row in its old partition.
//
// Limits: upsert tables are written by one process: the key index lives in
// the process, and another process committing to the table (a second
// member of the group owning some of its partitions) makes the next commit
// fail with writer.ErrKeyIndexStale and the run restart to rebuild it —
// correct, but the processes keep restarting each other. The changes of a
// key must all be in one partition (Canal and Debezium partition by
// primary key); a key-changing update is ordered with the partition it is
// in.
//
// The package reads Kafka and writes to a writer.Sink; it does not touch
// the catalog or storage, and commits nothing itself except group offsets.
package kafka
