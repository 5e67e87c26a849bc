package writer

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestBufferedBytesPerWriter: writers sharing one Metrics (floe run's
// sources) each have their own floe_writer_buffered_bytes series, so the
// last one to set it does not hide the others.
func TestBufferedBytesPerWriter(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	a := New(nil, Config{WriterID: "run/0"}, Options{Metrics: m})
	b := New(nil, Config{WriterID: "run/1"}, Options{Metrics: m})
	a.bufGauge.Set(100)
	b.bufGauge.Set(7)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "floe_writer_buffered_bytes" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "writer" {
					got[l.GetValue()] = s.GetGauge().GetValue()
				}
			}
		}
	}
	if len(got) != 2 || got["run/0"] != 100 || got["run/1"] != 7 {
		t.Fatalf("floe_writer_buffered_bytes by writer: %v, want run/0=100 and run/1=7", got)
	}
}
