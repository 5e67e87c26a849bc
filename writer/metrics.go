package writer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/internal/promx"
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
	buffered      *prometheus.GaugeVec
	eventTime     *prometheus.GaugeVec
	blocked       prometheus.Counter

	// Keyed tables.
	indexKeys      *prometheus.GaugeVec
	indexBytes     *prometheus.GaugeVec
	indexRebuilds  *prometheus.CounterVec
	indexSeconds   prometheus.Histogram
	indexMemBytes  *prometheus.GaugeVec
	indexOpens     *prometheus.CounterVec
	indexOpenSecs  prometheus.Histogram
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
	f := promx.With(reg)
	return &Metrics{
		rows:           f.CounterVec("floe_writer_rows_total", "Rows committed, by table.", "table"),
		files:          f.CounterVec("floe_writer_files_total", "Data files committed, by table.", "table"),
		fileBytes:      f.CounterVec("floe_writer_file_bytes_total", "Bytes of data files committed, by table.", "table"),
		commits:        f.CounterVec("floe_writer_commits_total", "Commits by table and result (ok, recovered, fenced, error).", "table", "result"),
		conflicts:      f.CounterVec("floe_writer_commit_conflicts_total", "Commit conflicts retried, by table.", "table"),
		commitSeconds:  f.HistogramVec("floe_writer_commit_duration_seconds", "Latency of a table commit, retries included.", prometheus.ExponentialBuckets(0.005, 2, 14), "table"),
		flushSeconds:   f.HistogramVec("floe_writer_flush_duration_seconds", "Time to encode buffered rows into data files.", prometheus.ExponentialBuckets(0.005, 2, 14), "table"),
		buffered:       f.GaugeVec("floe_writer_buffered_bytes", "Bytes of rows buffered in memory, all tables, by writer (writer.writer-id: one per source in floe run).", "writer"),
		eventTime:      f.GaugeVec("floe_writer_last_committed_event_time_seconds", "Newest event time committed, by table (Unix seconds).", "table"),
		blocked:        f.Counter("floe_writer_backpressure_waits_total", "Times a source waited for memory."),
		indexKeys:      f.GaugeVec("floe_writer_keyed_index_keys", "Live keys in a keyed table's primary-key index, by table.", "table"),
		indexBytes:     f.GaugeVec("floe_writer_keyed_index_bytes", "Bytes of a keyed table's primary-key index (counted in the writer's memory budget), by table.", "table"),
		indexRebuilds:  f.CounterVec("floe_writer_keyed_index_rebuilds_total", "Key indexes built from a table's files (an open without a valid persisted index), by table.", "table"),
		indexMemBytes:  f.GaugeVec("floe_writer_keyed_index_memory_bytes", "Bytes of a keyed table's key index by table and kind: heap (uncommitted changes; the whole index when not persistent) or mapped (the persistent index's slot files).", "table", "kind"),
		indexOpens:     f.CounterVec("floe_writer_keyed_index_opens_total", "Key indexes opened, by table and how: validated (the persisted index, caught up), rebuilt (from the table's files) or empty.", "table", "how"),
		indexOpenSecs:  f.Histogram("floe_writer_keyed_index_open_seconds", "Time to open a keyed table's key index (validate and catch up, or rebuild).", prometheus.ExponentialBuckets(0.01, 2, 16)),
		indexSeconds:   f.Histogram("floe_writer_keyed_index_rebuild_seconds", "Time to build a keyed table's key index from its files.", prometheus.ExponentialBuckets(0.01, 2, 16)),
		compactions:    f.CounterVec("floe_writer_keyed_compactions_total", "Compaction steps of keyed tables, by table and result (committed, failed, abandoned).", "table", "result"),
		compactedFiles: f.CounterVec("floe_writer_keyed_compacted_files_total", "Data files a keyed table's own compaction replaced, by table.", "table"),
	}
}
