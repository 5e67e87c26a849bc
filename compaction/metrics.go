package compaction

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
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
	f := promauto.With(reg)
	return &metrics{
		filesRewritten: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_compaction_files_rewritten_total", Help: "Data files replaced by compaction, by table.",
		}, []string{"table"}),
		bytesRewritten: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_compaction_bytes_rewritten_total", Help: "Bytes of data files replaced by compaction, by table.",
		}, []string{"table"}),
		filesWritten: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_compaction_files_written_total", Help: "Data files written by committed compaction groups, by table.",
		}, []string{"table"}),
		groups: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_compaction_groups_total", Help: "File groups by table and result (committed, dropped, failed).",
		}, []string{"table", "result"}),
		conflicts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_compaction_conflicts_total", Help: "Compaction and maintenance commits retried after a conflict with another writer, by table.",
		}, []string{"table"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "floe_compaction_duration_seconds", Help: "Time of one step of a pass over a table (rewrite, manifests, expire, orphans).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}, []string{"table", "step"}),
		filesPerPart: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "floe_compaction_files_per_partition", Help: "Most live data files in one partition of the table, after the last pass.",
		}, []string{"table"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_compaction_errors_total", Help: "Failed steps by table and class (canceled, conflict, timeout, not-found, config, storage, other); retried next pass.",
		}, []string{"table", "class"}),
		expired: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_compaction_snapshots_expired_total", Help: "Snapshots expired, by table.",
		}, []string{"table"}),
		orphans: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_compaction_orphan_files_removed_total", Help: "Orphan files deleted, by table.",
		}, []string{"table"}),
		manifests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_compaction_manifests_rewritten_total", Help: "Manifests merged away by manifest rewrites, by table.",
		}, []string{"table"}),
	}
}
