package mysql

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
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
}

func newMetrics(reg prometheus.Registerer, id string) *metrics {
	f := promauto.With(prometheus.WrapRegistererWith(prometheus.Labels{"source": id}, reg))
	return &metrics{
		rows: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_mysql_changed_rows_total", Help: "Changed rows (upserts and deletes) read from the binlog and handed to a table.",
		}, []string{"table"}),
		snapshotRows: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_mysql_snapshot_rows_total", Help: "Rows copied by snapshots, by table.",
		}, []string{"table"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_mysql_dead_letters_total", Help: "Rows that could not be mapped, by table.",
		}, []string{"table"}),
		halted: f.NewCounter(prometheus.CounterOpts{
			Name: "floe_mysql_tables_halted_total", Help: "Times a table was found or put halted (a DDL Floe cannot follow).",
		}),
		skipped: f.NewCounter(prometheus.CounterOpts{
			Name: "floe_mysql_tables_skipped_total", Help: "Included tables that could not be captured (no primary key, unsupported type, table cannot be opened).",
		}),
		missing: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "floe_mysql_table_missing", Help: "1 for a table the include list names that does not exist in MySQL (it is captured once created).",
		}, []string{"table"}),
		lag: f.NewGauge(prometheus.GaugeOpts{
			Name: "floe_mysql_binlog_lag_seconds", Help: "Age of the newest binlog event read.",
		}),
	}
}
