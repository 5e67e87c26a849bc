// Package integration holds Floe's end-to-end tests: the floe binary run as
// a user runs it, against real servers (MinIO, and later Kafka, MariaDB,
// PostgreSQL, a REST catalog) and read back by external engines. The
// scripts beside this file install and start those servers on 127.0.0.1,
// idempotently, caching what they download or build under ~/.cache/floe.
//
// A test that needs a server it cannot reach fails with a message saying
// how to start it (`make test` starts everything).
package integration
