package kafka

import (
	"fmt"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// TestRestartReadsFromTablePositions restarts a source whose dead-letter
// table never received a record: the restart reads only the records its
// tables do not hold yet, not the topic from its start (the dead-letter
// table has no position, and it must not hold the route back).
func TestRestartReadsFromTablePositions(t *testing.T) {
	const parts = 2
	cases := []struct {
		name  string
		route Route
		// records returns the first records and one more record per
		// partition, in the route's format.
		records func() (first, more []*kgo.Record)
		// done reports whether the first n records are in the table.
		done func(t *testing.T, cat icecat.Catalog, n int) bool
	}{
		{
			name:  "append",
			route: Route{Table: "ods.events"},
			records: func() (first, more []*kgo.Record) {
				for i := range parts * 301 {
					r := &kgo.Record{Topic: "events", Partition: int32(i % parts), Value: fmt.Appendf(nil, `{"id":%d,"v":"x"}`, i)}
					if i < parts*300 {
						first = append(first, r)
					} else {
						more = append(more, r)
					}
				}
				return first, more
			},
			done: func(t *testing.T, cat icecat.Catalog, n int) bool {
				got := 0
				for _, c := range offsetsIn(t, cat, "ods.events") {
					got += c
				}
				return got == n
			},
		},
		{
			name:  "upsert",
			route: Route{Table: "ods.orders", Format: FormatDebezium, Mode: ModeUpsert},
			records: func() (first, more []*kgo.Record) {
				var script, last []scriptChange
				for i := range 300 {
					script = append(script, scriptChange{op: "insert", rows: []order{{i, "new", "1.00"}}})
				}
				for i := range parts {
					last = append(last, scriptChange{op: "update", rows: []order{{i, "changed", "2.00"}}, old: []order{{i, "new", "1.00"}}})
				}
				return encodeChanges(FormatDebezium, "events", parts, script), encodeChanges(FormatDebezium, "events", parts, last)
			},
			done: func(t *testing.T, cat icecat.Catalog, n int) bool {
				sum := 0
				for _, v := range tablePositions(t, cat, "ods.orders")["kafka"] {
					sum += int(v)
				}
				return sum == n
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, parts, "events")
			brokers := c.ListenAddrs()
			cat := openCatalog(t)
			rt := tc.route
			rt.Topics = []string{"events"}
			cfg := testConfig(brokers, rt)
			cfg.BatchRecords = 100
			cfg.MetadataColumns = true
			prepare(t, cat, cfg, ordersSpec("ods.orders"),
				table.Spec{Name: "ods.events", Schema: []table.Field{{Name: "id", Type: "long", Required: true}, {Name: "v", Type: "string"}}})
			first, more := tc.records()

			produce(t, brokers, first)
			p := startProc(t, "first", cat, cfg, fastWriter(), 0)
			waitFor(t, 30*time.Second, "the first records committed", func() bool { return tc.done(t, cat, len(first)) })
			p.stop()
			if n := len(scan(t, cat, "floe.dead_letters", "position")); n != 0 {
				t.Fatalf("dead letters: %d, want none", n)
			}

			produce(t, brokers, more)
			p = startProc(t, "second", cat, cfg, fastWriter(), 0)
			waitFor(t, 30*time.Second, "the new records committed", func() bool { return tc.done(t, cat, len(first)+len(more)) })
			read := counterValue(p.src.m.records.WithLabelValues("events"))
			p.stop()
			if int(read) != len(more) {
				t.Fatalf("the restart read %v records, want the %d new ones (of %d in the topic)", read, len(more), len(first)+len(more))
			}
		})
	}
}

// TestDeadLetterBeforeKill: the upsert table commits (on its row count)
// past a dead letter while the dead-letter table would only commit on the
// writer's interval, and the process is killed then. The dead letter is
// committed before the table moved past it, so it is neither lost (the
// restart reads from the table's position) nor written twice.
func TestDeadLetterBeforeKill(t *testing.T) {
	c := newCluster(t, 1, "orders")
	brokers := c.ListenAddrs()
	cat := openCatalog(t)
	cfg := testConfig(brokers, Route{Topics: []string{"orders"}, Table: "ods.orders", Format: FormatDebezium, Mode: ModeUpsert})
	prepare(t, cat, cfg, ordersSpec("ods.orders"))
	script := []scriptChange{{op: "badkey"}}
	for i := range 40 {
		script = append(script, scriptChange{op: "insert", rows: []order{{i, fmt.Sprint("s", i), "1.00"}}})
	}
	recs := encodeChanges(FormatDebezium, "orders", 1, script)
	produce(t, brokers, recs)

	slow := writer.Config{CommitInterval: time.Hour, CommitRows: 10, MemoryBudget: 16 << 20}
	p := startProc(t, "killed", cat, cfg, slow, 0)
	waitFor(t, 30*time.Second, "the table past the dead letter", func() bool {
		return tablePositions(t, cat, "ods.orders")["kafka"]["orders/0"] > 1
	})
	p.kill()

	more := encodeChanges(FormatDebezium, "orders", 1, []scriptChange{{op: "insert", rows: []order{{99, "last", "2.00"}}}})
	produce(t, brokers, more)
	p = startProc(t, "after", cat, cfg, fastWriter(), 0)
	waitFor(t, 30*time.Second, "the last change", func() bool {
		_, ok := scanOrders(t, cat, "ods.orders")[99]
		return ok
	})
	p.stop()
	dl := scan(t, cat, "floe.dead_letters", "partition", "position")
	if len(dl) != 1 || dl[0]["position"] != int64(0) {
		t.Fatalf("dead letters: %v, want one, at orders/0 offset 0", dl)
	}
	if got := len(scanOrders(t, cat, "ods.orders")); got != 41 {
		t.Fatalf("rows: %d, want 41", got)
	}
}
