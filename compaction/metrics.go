package compaction

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/internal/promx"
)

// Group results, the result label of floe_compaction_groups_total.
const (
	ResultCommitted = "committed" // the group's replace snapshot landed
	ResultDropped   = "dropped"   // its inputs changed under it; outputs left to the orphan cleaner
	ResultFailed    = "failed"    // reading, writing or committing it failed; retried next pass
)

// metrics are the compactor's Prometheus metrics.
type metrics struct {
	filesRewritten *prometheus.CounterVec
	bytesRewritten *prometheus.CounterVec
	filesWritten   *prometheus.CounterVec
	groups         *prometheus.CounterVec
	conflicts      *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	filesPerPart   *prometheus.GaugeVec
	errors         *prometheus.CounterVec
	expired        *prometheus.CounterVec
	orphans        *prometheus.CounterVec
	manifests      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promx.With(reg)
	return &metrics{
		filesRewritten: f.CounterVec("floe_compaction_files_rewritten_total", "Data files replaced by compaction, by table.", "table"),
		bytesRewritten: f.CounterVec("floe_compaction_bytes_rewritten_total", "Bytes of data files replaced by compaction, by table.", "table"),
		filesWritten:   f.CounterVec("floe_compaction_files_written_total", "Data files written by committed compaction groups, by table.", "table"),
		groups:         f.CounterVec("floe_compaction_groups_total", "File groups by table and result (committed, dropped, failed).", "table", "result"),
		conflicts:      f.CounterVec("floe_compaction_conflicts_total", "Compaction and maintenance commits retried after a conflict with another writer, by table.", "table"),
		duration:       f.HistogramVec("floe_compaction_duration_seconds", "Time of one step of a pass over a table (rewrite, manifests, expire, orphans).", prometheus.ExponentialBuckets(0.01, 2, 16), "table", "step"),
		filesPerPart:   f.GaugeVec("floe_compaction_files_per_partition", "Most live data files in one partition of the table, after the last pass.", "table"),
		errors:         f.CounterVec("floe_compaction_errors_total", "Failed steps by table and class (canceled, conflict, timeout, not-found, config, storage, other); retried next pass.", "table", "class"),
		expired:        f.CounterVec("floe_compaction_snapshots_expired_total", "Snapshots expired, by table.", "table"),
		orphans:        f.CounterVec("floe_compaction_orphan_files_removed_total", "Orphan files deleted, by table.", "table"),
		manifests:      f.CounterVec("floe_compaction_manifests_rewritten_total", "Manifests merged away by manifest rewrites, by table.", "table"),
	}
}
