package mysql

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/internal/promx"
)

// metrics are a source's Prometheus metrics, created once per Source.
type metrics struct {
	rows         *prometheus.CounterVec
	snapshotRows *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	halted       prometheus.Counter
	skipped      prometheus.Counter
	missing      *prometheus.GaugeVec
	lag          prometheus.Gauge
	up           prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, id string) *metrics {
	f := promx.With(prometheus.WrapRegistererWith(prometheus.Labels{"source": id}, reg))
	return &metrics{
		rows:         f.CounterVec("floe_mysql_changed_rows_total", "Changed rows (upserts and deletes) read from the binlog and handed to a table.", "table"),
		snapshotRows: f.CounterVec("floe_mysql_snapshot_rows_total", "Rows copied by snapshots, by table.", "table"),
		deadLetters:  f.CounterVec("floe_mysql_dead_letters_total", "Rows that could not be mapped, by table.", "table"),
		halted:       f.Counter("floe_mysql_tables_halted_total", "Times a table was found or put halted (a DDL Floe cannot follow)."),
		skipped:      f.Counter("floe_mysql_tables_skipped_total", "Included tables that could not be captured (no primary key, unsupported type, table cannot be opened)."),
		missing:      f.GaugeVec("floe_mysql_table_missing", "1 for a table the include list names that does not exist in MySQL (it is captured once created).", "table"),
		lag:          f.Gauge("floe_mysql_binlog_lag_seconds", "Age of the newest binlog event read."),
		up:           f.Gauge("floe_mysql_up", "1 while the server answers and accepts the login, 0 while the attempts fail (a server down, a wrong password)."),
	}
}
