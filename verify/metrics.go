package verify

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/floe-lake/floe/internal/promx"
)

// Metrics are the floe_verify_* metrics of the checks run with them.
type Metrics struct {
	rows        *prometheus.CounterVec
	differences *prometheus.GaugeVec
	tolerated   *prometheus.GaugeVec
	skipped     *prometheus.GaugeVec
	lastRun     *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	duration    *prometheus.GaugeVec
}

// NewMetrics registers the metrics with reg:
//
//	floe_verify_rows_compared_total{check,table}    rows (offsets) compared, as the check goes
//	floe_verify_differences{check,table,kind}       differences of the last run, by kind
//	floe_verify_tolerated_differences{check,table}  measure values within the maximum error
//	floe_verify_table_skipped{check,table}          1 when the last run could not check the table
//	floe_verify_last_run_timestamp_seconds{check}   when the last run ended
//	floe_verify_last_run_equal{check}               1 when the last run found no difference
//	floe_verify_last_run_duration_seconds{check}    how long the last run took
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promx.With(nil) // registered below
	m := &Metrics{
		rows:        f.CounterVec("floe_verify_rows_compared_total", "Rows (or offsets) of the reference compared with the table.", "check", "table"),
		differences: f.GaugeVec("floe_verify_differences", "Differences found by the last run, by kind (missing, extra, different, duplicate).", "check", "table", "kind"),
		tolerated:   f.GaugeVec("floe_verify_tolerated_differences", "Measure values of the last run that differ within the maximum error.", "check", "table"),
		skipped:     f.GaugeVec("floe_verify_table_skipped", "1 when the last run could not check the table.", "check", "table"),
		lastRun:     f.GaugeVec("floe_verify_last_run_timestamp_seconds", "When the last run of the check ended (Unix time).", "check"),
		lastSuccess: f.GaugeVec("floe_verify_last_run_equal", "1 when the last run of the check found no difference, else 0.", "check"),
		duration:    f.GaugeVec("floe_verify_last_run_duration_seconds", "How long the last run of the check took.", "check"),
	}
	reg.MustRegister(m.rows, m.differences, m.tolerated, m.skipped, m.lastRun, m.lastSuccess, m.duration)
	return m
}

// addRows counts rows compared; nil-safe.
func (m *Metrics) addRows(check, table string, n int64) {
	if m != nil && n > 0 {
		m.rows.WithLabelValues(check, table).Add(float64(n))
	}
}

// Observe sets the gauges from a finished run's report.
func (m *Metrics) Observe(r *Report) {
	if m == nil {
		return
	}
	for _, t := range r.Tables {
		for _, k := range kindOrder {
			m.differences.WithLabelValues(r.Check, t.Table, k).Set(float64(t.Counts[k]))
		}
		m.tolerated.WithLabelValues(r.Check, t.Table).Set(float64(t.Tolerated))
		skipped := 0.0
		if t.Skipped != "" {
			skipped = 1
		}
		m.skipped.WithLabelValues(r.Check, t.Table).Set(skipped)
	}
	end := r.Started.Add(r.Duration)
	m.lastRun.WithLabelValues(r.Check).Set(float64(end.UnixNano()) / 1e9)
	eq := 0.0
	if r.Equal() {
		eq = 1
	}
	m.lastSuccess.WithLabelValues(r.Check).Set(eq)
	m.duration.WithLabelValues(r.Check).Set(r.Duration.Seconds())
}

// Push replaces the metrics of job "floe_verify_<check>" in the
// Prometheus Pushgateway at url with those g gathers (an HTTP PUT: the
// group holds exactly this run's metrics, and each check its own group;
// the metrics' own check label cannot also be a grouping label). client
// may be nil.
func Push(ctx context.Context, url, check string, g prometheus.Gatherer, client *http.Client) error {
	p := push.New(url, "floe_verify_"+check).Gatherer(g)
	if client != nil {
		p = p.Client(client)
	}
	if err := p.PushContext(ctx); err != nil {
		return fmt.Errorf("push metrics to %s: %w", url, err)
	}
	return nil
}
