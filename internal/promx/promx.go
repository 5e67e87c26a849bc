// Package promx builds Prometheus metrics from a name, a help text and
// label names, the way every Floe component declares its metrics.
package promx

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Factory builds metrics and registers each on its registerer, panicking
// if that fails, as promauto does; with a nil registerer it only builds
// them.
type Factory struct{ f promauto.Factory }

// With returns a Factory registering on reg (nil: nowhere).
func With(reg prometheus.Registerer) Factory { return Factory{promauto.With(reg)} }

// CounterVec builds a counter vector with labels.
func (f Factory) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return f.f.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// Counter builds a counter.
func (f Factory) Counter(name, help string) prometheus.Counter {
	return f.f.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

// GaugeVec builds a gauge vector with labels.
func (f Factory) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return f.f.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

// Gauge builds a gauge.
func (f Factory) Gauge(name, help string) prometheus.Gauge {
	return f.f.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

// HistogramVec builds a histogram vector with buckets and labels.
func (f Factory) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return f.f.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
}

// Histogram builds a histogram with buckets.
func (f Factory) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return f.f.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
}
