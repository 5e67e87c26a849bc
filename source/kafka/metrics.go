package kafka

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/internal/promx"
)

// metrics are one source's Prometheus metrics; every series carries a
// source=<id> label, so several Kafka sources can share a registry.
type metrics struct {
	records     *prometheus.CounterVec // topic
	deadLetters *prometheus.CounterVec // topic
	lag         *prometheus.GaugeVec   // topic, partition
	freshness   *prometheus.GaugeVec   // table
	rebalances  *prometheus.CounterVec // event
	restarts    *prometheus.CounterVec // reason
	brokerUp    prometheus.Gauge
	missing     *prometheus.GaugeVec // topic
}

func newMetrics(reg prometheus.Registerer, id string) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"source": id}, reg)
	f := promx.With(nil) // registered below
	m := &metrics{
		records:     f.CounterVec("floe_kafka_records_total", "Kafka records read and handed to the writer (rows or dead letters), by topic.", "topic"),
		deadLetters: f.CounterVec("floe_kafka_dead_letters_total", "Records written to the dead-letter table, by topic.", "topic"),
		lag:         f.GaugeVec("floe_kafka_consumer_lag_records", "High watermark minus the position committed to the tables, by owned partition.", "topic", "partition"),
		freshness:   f.GaugeVec("floe_kafka_freshness_seconds", "Now minus the newest event time this process committed, by table.", "table"),
		rebalances:  f.CounterVec("floe_kafka_rebalance_events_total", "Partitions assigned, revoked or lost in group rebalances, by event.", "event"),
		restarts:    f.CounterVec("floe_kafka_restarts_total", "Runs of the source that ended to re-seek from the tables, by reason (revoked, lost, fenced, error).", "reason"),
		brokerUp:    f.Gauge("floe_kafka_broker_up", "0 once no broker has answered the source for kafka.unavailable-timeout, 1 again when one answers (and before the first fault)."),
		missing:     f.GaugeVec("floe_kafka_topic_missing", "1 once a routed topic has not existed (or not been readable) for kafka.unavailable-timeout, 0 while it exists, by topic.", "topic"),
	}
	m.brokerUp.Set(1)
	for _, c := range []prometheus.Collector{m.records, m.deadLetters, m.lag, m.freshness, m.rebalances, m.restarts, m.brokerUp, m.missing} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register kafka metrics of source %s: another source has the id: %w", id, err)
			}
			return nil, fmt.Errorf("register kafka metrics of source %s: %w", id, err)
		}
	}
	return m, nil
}
