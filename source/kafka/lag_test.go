package kafka

import (
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestLagFromAssignment: floe_kafka_consumer_lag_records exists, with the
// lag against the tables' positions, as soon as partitions are assigned —
// before the process reads or commits anything (its writes are blocked).
func TestLagFromAssignment(t *testing.T) {
	cases := []struct {
		name        string
		startOffset string
		// before are records ingested and committed by an earlier process;
		// after are produced once it stopped, per partition.
		before, after int
		want          float64
	}{
		{"fresh tables, earliest", "earliest", 0, 15, 15},
		{"tables with positions", "earliest", 10, 7, 7},
		{"fresh tables, latest: at the end", "latest", 0, 15, 0},
		{"tables with positions, latest", "latest", 10, 7, 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 2, "clicks")
			brokers := c.ListenAddrs()
			cat := openCatalog(t)
			cfg := testConfig(brokers, Route{Topics: []string{"clicks"}, Table: "ods.clicks"})
			cfg.MetadataColumns = true
			cfg.StartOffset = tc.startOffset
			prepare(t, cat, cfg, clicksSpec("ods.clicks"))
			if tc.before > 0 {
				if tc.startOffset == "latest" {
					// latest starts at the end: the earlier process must
					// be in the group before the records arrive.
					p := startProc(t, "early", cat, cfg, fastWriter(), 0)
					waitFor(t, 30*time.Second, "the early process's assignment", func() bool { return ownedCount(p.src) == 2 })
					produce(t, brokers, clickRecords("clicks", 2, 0, 2*tc.before))
					waitFor(t, 30*time.Second, "the earlier rows", func() bool { return len(offsetsIn(t, cat, "ods.clicks")) == 2*tc.before })
					p.stop()
				} else {
					produce(t, brokers, clickRecords("clicks", 2, 0, 2*tc.before))
					p := startProc(t, "early", cat, cfg, fastWriter(), 0)
					waitFor(t, 30*time.Second, "the earlier rows", func() bool { return len(offsetsIn(t, cat, "ods.clicks")) == 2*tc.before })
					p.stop()
				}
			}
			produce(t, brokers, clickRecords("clicks", 2, 2*tc.before, 2*tc.after))

			reg := prometheus.NewRegistry()
			gate := make(chan struct{}) // no Write returns: nothing is committed
			defer close(gate)
			p := startWith(t, "p", cat, cfg, fastWriter(), Options{Logger: testLogger(), Registerer: reg}, gate)
			waitFor(t, 30*time.Second, "the assignment", func() bool { return ownedCount(p.src) == 2 })
			for part := range 2 {
				waitFor(t, 10*time.Second, "the lag of partition "+strconv.Itoa(part), func() bool {
					_, ok := gauge(t, reg, "floe_kafka_consumer_lag_records", "topic", "clicks", "partition", strconv.Itoa(part))
					return ok
				})
				// The lag may first be reported from a fetch; it must
				// settle on the lag against the tables' positions.
				waitFor(t, 10*time.Second, "the lag value", func() bool {
					v, _ := gauge(t, reg, "floe_kafka_consumer_lag_records", "topic", "clicks", "partition", strconv.Itoa(part))
					return v == tc.want
				})
			}
			if n := len(offsetsIn(t, cat, "ods.clicks")); n != 2*tc.before {
				t.Fatalf("%d rows in the table; the blocked process committed something", n)
			}
		})
	}
}

func ownedCount(s *Source) int {
	s.offMu.Lock()
	defer s.offMu.Unlock()
	return len(s.owned)
}
