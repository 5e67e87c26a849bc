package writer

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the writer's Prometheus metrics. Create them once per
// registry with NewMetrics and share them across Writers.
type Metrics struct {
	rows          *prometheus.CounterVec
	files         *prometheus.CounterVec
	fileBytes     *prometheus.CounterVec
	commits       *prometheus.CounterVec
	conflicts     *prometheus.CounterVec
	commitSeconds *prometheus.HistogramVec
	flushSeconds  *prometheus.HistogramVec
	buffered      prometheus.Gauge
	eventTime     *prometheus.GaugeVec
	blocked       prometheus.Counter

	// Keyed tables.
	indexKeys      *prometheus.GaugeVec
	indexBytes     *prometheus.GaugeVec
	indexRebuilds  *prometheus.CounterVec
	indexSeconds   prometheus.Histogram
	compactions    *prometheus.CounterVec
	compactedFiles *prometheus.CounterVec
}

// Results of a keyed table's compaction step, the result label of
// floe_writer_keyed_compactions_total.
const (
	CompactionCommitted = "committed" // the step's replace snapshot landed
	CompactionFailed    = "failed"    // writing or committing it failed; its file is left to the orphan cleaner
	CompactionAbandoned = "abandoned" // the table closed or failed while it ran
)

// NewMetrics registers the writer's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		rows: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_writer_rows_total", Help: "Rows committed, by table.",
		}, []string{"table"}),
		files: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_writer_files_total", Help: "Data files committed, by table.",
		}, []string{"table"}),
		fileBytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_writer_file_bytes_total", Help: "Bytes of data files committed, by table.",
		}, []string{"table"}),
		commits: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_writer_commits_total", Help: "Commits by table and result (ok, recovered, fenced, error).",
		}, []string{"table", "result"}),
		conflicts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_writer_commit_conflicts_total", Help: "Commit conflicts retried, by table.",
		}, []string{"table"}),
		commitSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "floe_writer_commit_duration_seconds", Help: "Latency of a table commit, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"table"}),
		flushSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "floe_writer_flush_duration_seconds", Help: "Time to encode buffered rows into data files.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"table"}),
		buffered: f.NewGauge(prometheus.GaugeOpts{
			Name: "floe_writer_buffered_bytes", Help: "Bytes of rows buffered in memory, all tables.",
		}),
		eventTime: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "floe_writer_last_committed_event_time_seconds", Help: "Newest event time committed, by table (Unix seconds).",
		}, []string{"table"}),
		blocked: f.NewCounter(prometheus.CounterOpts{
			Name: "floe_writer_backpressure_waits_total", Help: "Times a source waited for memory.",
		}),
		indexKeys: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "floe_writer_keyed_index_keys", Help: "Live keys in a keyed table's primary-key index, by table.",
		}, []string{"table"}),
		indexBytes: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "floe_writer_keyed_index_bytes", Help: "Estimated heap bytes of a keyed table's primary-key index, by table.",
		}, []string{"table"}),
		indexRebuilds: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_writer_keyed_index_rebuilds_total", Help: "Key indexes built from a table's files (every open of a keyed table), by table.",
		}, []string{"table"}),
		indexSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name: "floe_writer_keyed_index_rebuild_seconds", Help: "Time to build a keyed table's key index from its files.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}),
		compactions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_writer_keyed_compactions_total", Help: "Compaction steps of keyed tables, by table and result (committed, failed, abandoned).",
		}, []string{"table", "result"}),
		compactedFiles: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_writer_keyed_compacted_files_total", Help: "Data files a keyed table's own compaction replaced, by table.",
		}, []string{"table"}),
	}
}
