// Package service runs every job a floe.yaml declares in one process —
// what `floe run` runs: each source as an ingest pipeline of its own (so
// that a source that fails is retried alone while the others go on), the
// compaction of the tables, and every aggregation spec the config lists
// (aggregations:) and transform spec (transforms:), each as jobs of the daemon runner (internal/daemon)
// with its error policy: retried with a backoff, or halted alone.
//
// It also tells how the process is doing: Ready (for /readyz) is nil while
// every job runs and has made progress or is idle for a known reason, and
// names the jobs that have failed for longer than run.unavailable-timeout,
// halted, or whose source reports a fault (Kafka brokers unreachable, a
// topic missing, a MySQL login refused); Status (for /status) is each
// job's state, last error and last progress, and each table's commits and
// files; Routes serves /status and the status page, whose plots are SVG
// drawn by the server (no request leaves the machine).
//
// The catalog is opened by a job too: a catalog that cannot be reached at
// start-up is retried and shown, not fatal. Config mistakes are found by
// internal/config before New is called; New checks the sources' settings
// against the tables before anything is created.
//
// Transforms (transforms:, each a spec file as floe transform -spec takes
// it, with an optional output:) run as transform.FollowJob jobs beside the
// aggregations, with the same retries, status and readiness.
package service
