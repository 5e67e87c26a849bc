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
}

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
	}
}
