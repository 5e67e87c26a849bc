package gen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// arrowSchema derives a table's Arrow schema the way the writer does:
// through iceberg-go's SchemaToArrowSchema. It knows the types the
// generator's specs use.
func arrowSchema(t testing.TB, spec table.Spec, large bool) *arrow.Schema {
	t.Helper()
	var fields []iceberg.NestedField
	for i, f := range spec.Schema {
		var typ iceberg.Type
		switch f.Type {
		case "long":
			typ = iceberg.PrimitiveTypes.Int64
		case "int":
			typ = iceberg.PrimitiveTypes.Int32
		case "string":
			typ = iceberg.PrimitiveTypes.String
		case "binary":
			typ = iceberg.PrimitiveTypes.Binary
		case "timestamptz":
			typ = iceberg.PrimitiveTypes.TimestampTz
		case "timestamptz_ns":
			typ = iceberg.PrimitiveTypes.TimestampTzNs
		case "decimal(18,2)":
			typ = iceberg.DecimalTypeOf(18, 2)
		case "decimal(20,4)":
			typ = iceberg.DecimalTypeOf(20, 4)
		default:
			t.Fatalf("arrowSchema: type %s", f.Type)
		}
		fields = append(fields, iceberg.NestedField{ID: i + 1, Name: f.Name, Type: typ, Required: f.Required, Doc: f.Doc})
	}
	sc, err := icetable.SchemaToArrowSchema(iceberg.NewSchema(0, fields...), nil, true, large)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

type row map[string]any

// batch is what the fake sink saw of one Write.
type batch struct {
	table   string
	source  string
	next    table.Positions
	maxTime time.Time
	nilRec  bool
	rows    []row
}

// fakeSink records batches and returns configured positions and schemas.
type fakeSink struct {
	writer.Sink // the generator only opens and writes

	mu        sync.Mutex
	schemas   map[string]*arrow.Schema
	start     map[string]table.Positions
	opened    []string
	batches   []batch
	failAt    int // Write number (1-based) that fails; 0: never
	failErr   error
	onWrite   func(n int) // called after each successful Write
	schemaErr string      // schema mismatch noticed
}

func newSink(t testing.TB, cfg Config, large bool) *fakeSink {
	s := &fakeSink{schemas: map[string]*arrow.Schema{}, start: map[string]table.Positions{}}
	s.schemas[cfg.EventsTable] = arrowSchema(t, EventsSpec(cfg.EventsTable), large)
	if cfg.OrdersTable != "" {
		s.schemas[cfg.OrdersTable] = arrowSchema(t, OrdersSpec(cfg.OrdersTable), large)
	}
	s.schemas[cfg.DeadLetterTable] = arrowSchema(t, table.DeadLetterSpec(cfg.DeadLetterTable), large)
	return s
}

func (s *fakeSink) Open(tbl, source string) (table.Positions, *arrow.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.schemas[tbl]
	if !ok {
		return nil, nil, fmt.Errorf("no table %s", tbl)
	}
	s.opened = append(s.opened, tbl)
	return s.start[tbl].Clone(), sc, nil
}

func (s *fakeSink) Write(b writer.Batch) error {
	s.mu.Lock()
	n := len(s.batches) + 1
	if s.failAt == n {
		s.mu.Unlock()
		if b.Record != nil {
			b.Record.Release()
		}
		return s.failErr
	}
	rb := batch{table: b.Table, source: b.Source, next: b.Next, maxTime: b.MaxEventTime, nilRec: b.Record == nil}
	if b.Record != nil {
		if !b.Record.Schema().Equal(s.schemas[b.Table]) {
			s.schemaErr = fmt.Sprintf("batch for %s has schema %s", b.Table, b.Record.Schema())
		}
		for i := 0; i < int(b.Record.NumRows()); i++ {
			r := row{}
			for j, f := range b.Record.Schema().Fields() {
				r[f.Name] = tabletest.Cell(b.Record.Column(j), i)
			}
			rb.rows = append(rb.rows, r)
		}
		b.Record.Release()
	}
	s.batches = append(s.batches, rb)
	cb := s.onWrite
	s.mu.Unlock()
	if cb != nil {
		cb(n)
	}
	return nil
}

// rows returns every row written to tbl, in write order.
func (s *fakeSink) rows(tbl string) []row {
	var out []row
	for _, b := range s.batches {
		if b.table == tbl {
			out = append(out, b.rows...)
		}
	}
	return out
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Partitions = 3
	cfg.RowsPerPartition = 3000
	cfg.BatchRows = 700
	cfg.BadFraction = 0.01
	cfg.Now = func() time.Time { return time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC) }
	return cfg
}

// runGen runs a generator to completion on a fresh sink.
func runGen(t *testing.T, cfg Config, prepare func(*fakeSink)) *fakeSink {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	cfg.Allocator = mem
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newSink(t, cfg, false)
	if prepare != nil {
		prepare(s)
	}
	if err := g.Run(context.Background(), s); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if s.schemaErr != "" {
		t.Fatal(s.schemaErr)
	}
	mem.AssertSize(t, 0)
	return s
}

func offsetOf(id int64) (int, int64) { return int(id >> 40), id & (1<<40 - 1) }

func TestDeterminism(t *testing.T) {
	cfg := testConfig()
	a := runGen(t, cfg, nil)
	b := runGen(t, cfg, nil)
	if len(a.batches) == 0 {
		t.Fatal("no batches")
	}
	if !reflect.DeepEqual(a.batches, b.batches) {
		t.Fatal("two runs with the same config differ")
	}
	cfg.Seed = 2
	c := runGen(t, cfg, nil)
	if reflect.DeepEqual(a.rows(cfg.EventsTable), c.rows(cfg.EventsTable)) {
		t.Fatal("a different seed gave the same events")
	}
}

// TestResume: resuming at any position regenerates exactly the rows at and
// after it, per table.
func TestResume(t *testing.T) {
	cfg := testConfig()
	full := runGen(t, cfg, nil)
	starts := map[string]table.Positions{
		cfg.EventsTable:     {"p0": 1500, "p1": 1, "p2": 2999},
		cfg.OrdersTable:     {"p0": 300, "p2": 3000},
		cfg.DeadLetterTable: {"p1": 2222},
	}
	resumed := runGen(t, cfg, func(s *fakeSink) { s.start = starts })
	for _, tbl := range []string{cfg.EventsTable, cfg.OrdersTable, cfg.DeadLetterTable} {
		var want []row
		for _, r := range full.rows(tbl) {
			p, o := rowPosition(tbl, cfg, r)
			if o >= starts[tbl][fmt.Sprintf("p%d", p)] {
				want = append(want, r)
			}
		}
		got := resumed.rows(tbl)
		sortRows(tbl, cfg, want)
		sortRows(tbl, cfg, got)
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: resumed run wrote %d rows, want %d equal to the full run's", tbl, len(got), len(want))
		}
		// No batch moves a position backwards or below the start.
		for _, b := range resumed.batches {
			if b.table != tbl {
				continue
			}
			for p, n := range b.next {
				if n <= starts[tbl][p] {
					t.Fatalf("%s: batch with Next %s=%d at or below start %d", tbl, p, n, starts[tbl][p])
				}
			}
		}
	}
	// p2 of orders was complete: nothing may be written for it.
	for _, b := range resumed.batches {
		if b.table == cfg.OrdersTable && b.next["p2"] != 0 {
			t.Fatalf("orders batch for a complete partition: %v", b.next)
		}
	}
}

func rowPosition(tbl string, cfg Config, r row) (int, int64) {
	switch tbl {
	case cfg.EventsTable:
		return offsetOf(r["event_id"].(int64))
	case cfg.OrdersTable:
		return offsetOf(r["order_id"].(int64))
	default:
		p, err := strconv.Atoi(strings.TrimPrefix(r["partition"].(string), "p"))
		if err != nil {
			p = -1 // not a generator partition: the test comparing positions fails
		}
		return p, r["position"].(int64)
	}
}

func sortRows(tbl string, cfg Config, rows []row) {
	sort.SliceStable(rows, func(i, j int) bool {
		pi, oi := rowPosition(tbl, cfg, rows[i])
		pj, oj := rowPosition(tbl, cfg, rows[j])
		if pi != pj {
			return pi < pj
		}
		return oi < oj
	})
}

// TestPositions: batches cover each partition in order, their rows lie
// between the previous Next and theirs, and the input ends at
// RowsPerPartition.
func TestPositions(t *testing.T) {
	cfg := testConfig()
	s := runGen(t, cfg, nil)
	for _, tbl := range []string{cfg.EventsTable, cfg.OrdersTable, cfg.DeadLetterTable} {
		prev := map[string]int64{}
		for _, b := range s.batches {
			if b.table != tbl {
				continue
			}
			if b.source != cfg.ID {
				t.Fatalf("batch source %q", b.source)
			}
			if len(b.next) != 1 {
				t.Fatalf("batch Next %v covers %d partitions, want 1", b.next, len(b.next))
			}
			for p, n := range b.next {
				if n <= prev[p] || n > cfg.RowsPerPartition {
					t.Fatalf("%s %s: Next %d after %d", tbl, p, n, prev[p])
				}
				if tbl != cfg.DeadLetterTable && n-prev[p] != int64(min(cfg.BatchRows, int(cfg.RowsPerPartition-prev[p]))) {
					t.Fatalf("%s %s: batch of %d offsets, want %d", tbl, p, n-prev[p], cfg.BatchRows)
				}
				for _, r := range b.rows {
					rp, o := rowPosition(tbl, cfg, r)
					if fmt.Sprintf("p%d", rp) != p || o < prev[p] || o >= n {
						t.Fatalf("%s: row p%d/%d in batch %s [%d, %d)", tbl, rp, o, p, prev[p], n)
					}
				}
				if tbl == cfg.DeadLetterTable && len(b.rows) == 0 {
					t.Fatal("empty dead-letter batch")
				}
				if b.nilRec != (len(b.rows) == 0) {
					t.Fatalf("%s: nil record %v with %d rows", tbl, b.nilRec, len(b.rows))
				}
				prev[p] = n
			}
		}
		if tbl == cfg.DeadLetterTable {
			continue
		}
		for i := 0; i < cfg.Partitions; i++ {
			if p := fmt.Sprintf("p%d", i); prev[p] != cfg.RowsPerPartition {
				t.Fatalf("%s %s ends at %d, want %d", tbl, p, prev[p], cfg.RowsPerPartition)
			}
		}
	}
	// Round robin: the first batches go to p0, p1, p2 in turn.
	var order []string
	for _, b := range s.batches {
		if b.table == cfg.EventsTable && len(order) < 6 {
			for p := range b.next {
				order = append(order, p)
			}
		}
	}
	if want := []string{"p0", "p1", "p2", "p0", "p1", "p2"}; !reflect.DeepEqual(order, want) {
		t.Fatalf("partition order %v, want %v", order, want)
	}
	// Max event time is the newest event_time of the batch.
	for _, b := range s.batches {
		if b.table != cfg.EventsTable {
			continue
		}
		var maxT time.Time
		for _, r := range b.rows {
			if tm := r["event_time"].(time.Time); tm.After(maxT) {
				maxT = tm
			}
		}
		if !b.maxTime.Equal(maxT) {
			t.Fatalf("MaxEventTime %v, want %v", b.maxTime, maxT)
		}
	}
	// Every table was opened once, by the configured source id.
	if want := []string{cfg.EventsTable, cfg.OrdersTable, cfg.DeadLetterTable}; !reflect.DeepEqual(s.opened, want) {
		t.Fatalf("opened %v, want %v", s.opened, want)
	}
}

func TestDeadLetters(t *testing.T) {
	cfg := testConfig()
	cfg.BadFraction = 0.05
	s := runGen(t, cfg, nil)
	events := map[int64]bool{}
	for _, r := range s.rows(cfg.EventsTable) {
		id := r["event_id"].(int64)
		if events[id] {
			t.Fatalf("event_id %d twice", id)
		}
		events[id] = true
	}
	dls := s.rows(cfg.DeadLetterTable)
	total := cfg.Partitions * int(cfg.RowsPerPartition)
	if n := len(dls); n < total/40 || n > total/10 {
		t.Fatalf("%d dead letters of %d records at bad-fraction 0.05", n, total)
	}
	reasons := map[string]int{}
	for _, r := range dls {
		p, o := rowPosition(cfg.DeadLetterTable, cfg, r)
		id := eventID(p, o)
		if events[id] {
			t.Fatalf("dead letter p%d/%d is also an event", p, o)
		}
		events[id] = true
		if r["source"] != cfg.ID || r["target_table"] != cfg.EventsTable || r["key"] != nil {
			t.Fatalf("dead letter %v", r)
		}
		if r["received_at"] != cfg.Now() {
			t.Fatalf("received_at %v, want %v", r["received_at"], cfg.Now())
		}
		raw := r["raw"].(string)
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatalf("raw %q is not JSON: %v", raw, err)
		}
		if m["event_id"] != float64(id) {
			t.Fatalf("raw %q: event_id, want %d", raw, id)
		}
		reason := r["reason"].(string)
		switch reason {
		case `field "user_id": expected long, got string`:
			if m["user_id"] != "abc" {
				t.Fatalf("raw %q with reason %q", raw, reason)
			}
		case `missing required field "event_time"`:
			if _, ok := m["event_time"]; ok {
				t.Fatalf("raw %q with reason %q", raw, reason)
			}
		case `field "event_time": invalid timestamptz "2026-13-45T99:00": not an RFC 3339 timestamp`:
		default:
			t.Fatalf("unexpected reason %q", reason)
		}
		reasons[reason]++
	}
	if len(reasons) != 3 {
		t.Fatalf("reasons %v, want all three defects", reasons)
	}
	if len(events) != total {
		t.Fatalf("events + dead letters cover %d offsets, want %d", len(events), total)
	}
	// Orders never come from bad records.
	for _, r := range s.rows(cfg.OrdersTable) {
		if !events[r["order_id"].(int64)] {
			t.Fatalf("order %v without an event", r)
		}
	}
}

func TestNoDeadLetterTable(t *testing.T) {
	cfg := testConfig()
	cfg.BadFraction = 0
	cfg.OrdersTable = ""
	cfg.DeadLetterTable = ""
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if specs, err := g.Specs(nil); err != nil || len(specs) != 1 || specs[0].Name != cfg.EventsTable {
		t.Fatalf("Specs = %v", specs)
	}
	s := runGen(t, cfg, func(s *fakeSink) { s.start[cfg.EventsTable] = table.Positions{"p0": 100} })
	if !reflect.DeepEqual(s.opened, []string{cfg.EventsTable}) {
		t.Fatalf("opened %v", s.opened)
	}
	if n := len(s.rows(cfg.EventsTable)); n != 3*3000-100 {
		t.Fatalf("%d events, want %d", n, 3*3000-100)
	}
}

// TestEvents checks the shape of the generated events.
func TestEvents(t *testing.T) {
	cfg := testConfig()
	cfg.Partitions = 2
	cfg.RowsPerPartition = 20000
	cfg.BatchRows = 8192
	s := runGen(t, cfg, nil)
	cities := map[string]map[string]bool{}
	for _, p := range provinces() {
		cities[p.name] = map[string]bool{p.cities[0]: true, p.cities[1]: true, p.cities[2]: true}
	}
	types := map[string]int{}
	late, n := 0, 0
	users := map[int64]bool{}
	sessions := map[string]bool{}
	idRe := regexp.MustCompile(`^d[0-9a-f]{12}$`)
	sesRe := regexp.MustCompile(`^s[0-9a-f]{16}$`)
	for _, r := range s.rows(cfg.EventsTable) {
		n++
		_, o := offsetOf(r["event_id"].(int64))
		clock := cfg.StartTime.Add(time.Duration(o) * TimeStep)
		et := r["event_time"].(time.Time)
		if lag := clock.Sub(et); lag < 0 || lag >= 2*time.Hour {
			t.Fatalf("event_time %v, clock %v", et, clock)
		} else if lag > 0 {
			late++
		}
		typ := r["event_type"].(string)
		types[typ]++
		ad := typ == "ad_show" || typ == "ad_click"
		if (r["ad_id"] != nil) != ad {
			t.Fatalf("%s with ad_id %v", typ, r["ad_id"])
		}
		pay := typ == "order" || typ == "pay"
		if (r["amount"] != nil) != pay {
			t.Fatalf("%s with amount %v", typ, r["amount"])
		}
		if pay && !regexp.MustCompile(`^[0-9]+\.[0-9]{2}$`).MatchString(r["amount"].(string)) {
			t.Fatalf("amount %v", r["amount"])
		}
		if !cities[r["province"].(string)][r["city"].(string)] {
			t.Fatalf("city %v not in province %v", r["city"], r["province"])
		}
		if !idRe.MatchString(r["device_id"].(string)) || !sesRe.MatchString(r["session_id"].(string)) {
			t.Fatalf("device %v session %v", r["device_id"], r["session_id"])
		}
		if !strings.HasPrefix(r["page_url"].(string), "https://m.shop.example.cn/") {
			t.Fatalf("page_url %v", r["page_url"])
		}
		var props map[string]string
		if err := json.Unmarshal([]byte(r["properties"].(string)), &props); err != nil || props["os"] == "" {
			t.Fatalf("properties %v: %v", r["properties"], err)
		}
		users[r["user_id"].(int64)] = true
		sessions[r["session_id"].(string)] = true
	}
	if frac := float64(late) / float64(n); frac < 0.08 || frac > 0.12 {
		t.Fatalf("late fraction %.3f, want about 0.1", frac)
	}
	for _, typ := range eventTypeNames() {
		if types[typ] == 0 {
			t.Fatalf("no %s events: %v", typ, types)
		}
	}
	if types["page_view"] < n/2 || types["pay"] > types["order"] {
		t.Fatalf("event type skew %v", types)
	}
	if len(users) < n/4 || len(users) == n {
		t.Fatalf("%d users for %d events", len(users), n)
	}
	if len(sessions) >= n {
		t.Fatalf("%d sessions for %d events: sessions never repeat", len(sessions), n)
	}
}

func TestOrders(t *testing.T) {
	cfg := testConfig()
	s := runGen(t, cfg, nil)
	orders := map[int64]row{}
	for _, r := range s.rows(cfg.OrdersTable) {
		orders[r["order_id"].(int64)] = r
	}
	statuses := map[string]bool{}
	for _, s := range statusNames() {
		statuses[s] = true
	}
	nOrders := 0
	for _, e := range s.rows(cfg.EventsTable) {
		if e["event_type"] != "order" {
			continue
		}
		nOrders++
		o, ok := orders[e["event_id"].(int64)]
		if !ok {
			t.Fatalf("order event %v has no order row", e["event_id"])
		}
		if o["user_id"] != e["user_id"] || o["province"] != e["province"] || o["city"] != e["city"] ||
			o["amount"] != e["amount"] || o["created_at"] != e["event_time"] {
			t.Fatalf("order %v does not match event %v", o, e)
		}
		if !statuses[o["status"].(string)] {
			t.Fatalf("status %v", o["status"])
		}
		if o["updated_at"].(time.Time).Before(o["created_at"].(time.Time)) {
			t.Fatalf("updated_at before created_at: %v", o)
		}
	}
	if nOrders == 0 || nOrders != len(orders) {
		t.Fatalf("%d order events, %d orders", nOrders, len(orders))
	}
	// Every orders batch advances positions even without rows.
	for _, b := range s.batches {
		if b.table == cfg.OrdersTable && len(b.next) != 1 {
			t.Fatalf("orders batch Next %v", b.next)
		}
	}
}

func TestSchemaBinding(t *testing.T) {
	cfg := testConfig()
	cfg.RowsPerPartition = 1000
	base := runGen(t, cfg, nil)

	// Large types and nanosecond timestamps: same values.
	large := runGen(t, cfg, func(s *fakeSink) {
		spec := EventsSpec(cfg.EventsTable)
		spec.Schema[1].Type = "timestamptz_ns"
		s.schemas[cfg.EventsTable] = arrowSchema(t, spec, true)
		s.schemas[cfg.OrdersTable] = arrowSchema(t, OrdersSpec(cfg.OrdersTable), true)
		s.schemas[cfg.DeadLetterTable] = arrowSchema(t, table.DeadLetterSpec(cfg.DeadLetterTable), true)
	})
	for _, r := range large.rows(cfg.DeadLetterTable) {
		// The reason names the column's type.
		r["reason"] = strings.Replace(r["reason"].(string), "timestamptz_ns", "timestamptz", 1)
	}
	for _, tbl := range []string{cfg.EventsTable, cfg.OrdersTable, cfg.DeadLetterTable} {
		if !reflect.DeepEqual(base.rows(tbl), large.rows(tbl)) {
			t.Fatalf("%s differs with large types", tbl)
		}
	}

	// Reordered columns, a dropped one, an extra optional one and a wider
	// decimal.
	evolved := runGen(t, cfg, func(s *fakeSink) {
		spec := EventsSpec(cfg.EventsTable)
		f := spec.Schema
		f[0], f[5] = f[5], f[0]
		f = f[:len(f)-1] // no properties
		f = append(f, table.Field{Name: "extra", Type: "long"})
		for i := range f {
			if f[i].Name == "amount" {
				f[i].Type = "decimal(20,4)"
			}
		}
		spec.Schema = f
		s.schemas[cfg.EventsTable] = arrowSchema(t, spec, false)
	})
	want := base.rows(cfg.EventsTable)
	got := evolved.rows(cfg.EventsTable)
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		w := row{}
		for k, v := range want[i] {
			w[k] = v
		}
		delete(w, "properties")
		w["extra"] = nil
		if w["amount"] != nil {
			w["amount"] = w["amount"].(string) + "00"
		}
		if !reflect.DeepEqual(got[i], w) {
			t.Fatalf("row %d: %v, want %v", i, got[i], w)
		}
	}

	for _, c := range []struct {
		name  string
		field table.Field
		err   string
	}{
		{"required extra", table.Field{Name: "extra", Type: "long", Required: true}, "column extra is required but the generator does not produce it"},
		{"wrong type", table.Field{Name: "user_id", Type: "string"}, "column user_id: want long, got utf8"},
		{"required nullable", table.Field{Name: "ad_id", Type: "long", Required: true}, "column ad_id is required but the generator leaves it null"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := EventsSpec(cfg.EventsTable)
			replaced := false
			for i := range spec.Schema {
				if spec.Schema[i].Name == c.field.Name {
					spec.Schema[i], replaced = c.field, true
				}
			}
			if !replaced {
				spec.Schema = append(spec.Schema, c.field)
			}
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			cfg := cfg
			cfg.Allocator = mem
			g, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := newSink(t, cfg, false)
			s.schemas[cfg.EventsTable] = arrowSchema(t, spec, false)
			err = g.Run(context.Background(), s)
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("Run = %v, want %q", err, c.err)
			}
			mem.AssertSize(t, 0)
		})
	}

	// A schema that accepts the bad records is an error, not silent loss.
	t.Run("accepting schema", func(t *testing.T) {
		spec := EventsSpec(cfg.EventsTable)
		spec.Schema = spec.Schema[:1] // event_id only: nothing to reject
		s := newSink(t, cfg, false)
		s.schemas[cfg.EventsTable] = arrowSchema(t, spec, false)
		g, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Run(context.Background(), s); err == nil || !strings.Contains(err.Error(), "was accepted") {
			t.Fatalf("Run = %v", err)
		}
	})
}

func TestWriteError(t *testing.T) {
	cfg := testConfig()
	boom := errors.New("boom")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	cfg.Allocator = mem
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := newSink(t, cfg, false)
	s.failAt, s.failErr = 5, boom
	if err := g.Run(context.Background(), s); !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want boom", err)
	}
	if len(s.batches) != 4 {
		t.Fatalf("%d batches written before the failure, want 4", len(s.batches))
	}
	mem.AssertSize(t, 0)

	// An Open error stops Run too.
	s = newSink(t, cfg, false)
	delete(s.schemas, cfg.OrdersTable)
	if err := g.Run(context.Background(), s); err == nil || !strings.Contains(err.Error(), "open "+cfg.OrdersTable) {
		t.Fatalf("Run = %v", err)
	}
	mem.AssertSize(t, 0)
}

func TestCancel(t *testing.T) {
	cfg := testConfig()
	cfg.RowsPerPartition = 0 // unbounded
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newSink(t, cfg, false)
	s.onWrite = func(n int) {
		if n == 20 {
			cancel()
		}
	}
	if err := g.Run(ctx, s); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if n := len(s.batches); n < 20 || n > 23 {
		t.Fatalf("%d batches after cancelling at 20", n)
	}
}

func TestRate(t *testing.T) {
	if testing.Short() {
		t.Skip("paced run takes a second")
	}
	cfg := testConfig()
	cfg.Partitions = 2
	cfg.RowsPerPartition = 1000
	cfg.Rate = 1000 // 2000 rows: the first second's worth at once, the rest a second later
	start := time.Now()
	s := runGen(t, cfg, nil)
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Fatalf("2000 rows at 1000 rows/s took %v", d)
	}
	if n := len(s.rows(cfg.EventsTable)) + len(s.rows(cfg.DeadLetterTable)); n != 2000 {
		t.Fatalf("%d records, want 2000", n)
	}

	// Cancelling while waiting for tokens returns promptly.
	cfg.RowsPerPartition = 0
	cfg.Rate = 10
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := g.Run(ctx, newSink(t, cfg, false)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancel took %v", d)
	}
}

func TestConfig(t *testing.T) {
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct {
		key string
		mod func(*Config)
	}{
		{"id", func(c *Config) { c.ID = "" }},
		{"partitions", func(c *Config) { c.Partitions = 0 }},
		{"partitions", func(c *Config) { c.Partitions = MaxPartitions + 1 }},
		{"rate", func(c *Config) { c.Rate = -1 }},
		{"rate", func(c *Config) { c.Rate = math.NaN() }},
		{"rows-per-partition", func(c *Config) { c.RowsPerPartition = -1 }},
		{"batch-rows", func(c *Config) { c.BatchRows = 0 }},
		{"late-fraction", func(c *Config) { c.LateFraction = 1.5 }},
		{"bad-fraction", func(c *Config) { c.BadFraction = -0.1 }},
		{"start-time", func(c *Config) { c.StartTime = time.Time{} }},
		{"events-table", func(c *Config) { c.EventsTable = "events" }},
		{"orders-table", func(c *Config) { c.OrdersTable = "ods.events" }},
		{"dead-letter-table", func(c *Config) { c.DeadLetterTable = "" }},
	} {
		cfg := DefaultConfig()
		c.mod(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "gen."+c.key+": ") {
			t.Errorf("%s: Validate = %v", c.key, err)
		}
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted an invalid config", c.key)
		}
	}
	// Orders disabled and no dead letters are valid.
	cfg := DefaultConfig()
	cfg.OrdersTable, cfg.BadFraction, cfg.DeadLetterTable = "", 0, ""
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	// YAML: absent keys keep defaults, explicit zeros are honoured.
	var got struct {
		Gen *Config `yaml:"gen"`
	}
	in := "gen:\n  seed: 0\n  orders-table: \"\"\n  partitions: 2\n  start-time: 2025-06-01T00:00:00Z\n"
	if err := yaml.Unmarshal([]byte(in), &got); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Seed, want.OrdersTable, want.Partitions = 0, "", 2
	want.StartTime = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	got.Gen.Now, want.Now = nil, nil
	if !reflect.DeepEqual(*got.Gen, want) {
		t.Fatalf("decoded %+v\nwant %+v", *got.Gen, want)
	}
	if err := yaml.Unmarshal([]byte("gen:\n  sed: 1\n"), &got); err == nil || !strings.Contains(err.Error(), `unknown key "sed"`) {
		t.Fatalf("unknown key: %v", err)
	}
	if err := yaml.Unmarshal([]byte("gen:\n  partitions: many\n"), &got); err == nil {
		t.Fatal("bad value accepted")
	}

	var zero Config
	zero.ApplyDefaults()
	if zero.Now == nil || zero.Allocator == nil {
		t.Fatal("ApplyDefaults left Now or Allocator unset")
	}
}

func TestSpecs(t *testing.T) {
	ev := EventsSpec("a.events")
	var names []string
	for _, f := range ev.Schema {
		names = append(names, f.Name+":"+f.Type)
	}
	want := "event_id:long event_time:timestamptz user_id:long device_id:string session_id:string event_type:string " +
		"page_url:string ad_id:long province:string city:string amount:decimal(18,2) properties:string"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("events columns %s", got)
	}
	if !ev.Schema[0].Required || !ev.Schema[1].Required || ev.Schema[2].Required {
		t.Fatal("events required flags")
	}
	if !reflect.DeepEqual(ev.Partition, []table.PartitionField{{Column: "event_time", Transform: "day"}}) || ev.Properties != nil {
		t.Fatalf("events partition %v properties %v", ev.Partition, ev.Properties)
	}
	or := OrdersSpec("a.orders")
	if !reflect.DeepEqual(or.IdentifierFields, []string{"order_id"}) || !or.Schema[0].Required ||
		!reflect.DeepEqual(or.Partition, []table.PartitionField{{Column: "created_at", Transform: "day"}}) {
		t.Fatalf("orders spec %+v", or)
	}
	g, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var specNames []string
	specs, err := g.Specs(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		specNames = append(specNames, s.Name)
	}
	if !reflect.DeepEqual(specNames, []string{"ods.events", "ods.orders", "floe.dead_letters"}) {
		t.Fatalf("Specs %v", specNames)
	}
	if g.ID() != "gen" {
		t.Fatalf("ID %q", g.ID())
	}
}

// TestModelPure: a record depends only on (seed, partition, offset).
func TestModelPure(t *testing.T) {
	cfg := testConfig()
	m := newModel(&cfg)
	var a, b event
	for _, po := range [][2]int64{{0, 0}, {1, 0}, {0, 1}, {2, 123456}, {65535, 1<<40 - 1}} {
		m.gen(int(po[0]), po[1], &a)
		m.gen(0, 7, &b) // disturb any state
		m.gen(int(po[0]), po[1], &b)
		if a != b {
			t.Fatalf("gen(%v) not pure", po)
		}
		if m.isBad(int(po[0]), po[1]) != a.bad {
			t.Fatalf("isBad(%v) disagrees with gen", po)
		}
	}
	m.gen(1, 0, &a)
	m.gen(0, 1, &b)
	if a.userID == b.userID && a.device == b.device && a.etype == b.etype && a.props == b.props {
		t.Fatal("(1,0) and (0,1) look alike")
	}
}

// TestEndOfOffsets: an unbounded partition ends at MaxOffset, where event
// ids would collide with the next partition's.
func TestEndOfOffsets(t *testing.T) {
	cfg := testConfig()
	cfg.RowsPerPartition = 0
	cfg.Partitions = 2
	cfg.BadFraction = 0
	start := table.Positions{"p0": MaxOffset - 5, "p1": MaxOffset}
	s := runGen(t, cfg, func(s *fakeSink) {
		s.start[cfg.EventsTable] = start
		s.start[cfg.OrdersTable] = start
	})
	var ids []int64
	for _, r := range s.rows(cfg.EventsTable) {
		ids = append(ids, r["event_id"].(int64))
	}
	if len(ids) != 5 || ids[4] != eventID(0, MaxOffset-1) || ids[4] >= eventID(1, 0) {
		t.Fatalf("event ids %v", ids)
	}
}

// TestSpecSchemas runs on the Arrow schemas the writer derives from the
// specs themselves (table.Spec.IcebergSchema), and checks the specs'
// partitioning is valid.
func TestSpecSchemas(t *testing.T) {
	cfg := testConfig()
	cfg.RowsPerPartition = 1000
	base := runGen(t, cfg, nil)
	fromSpecs := runGen(t, cfg, func(s *fakeSink) {
		for _, spec := range []table.Spec{EventsSpec(cfg.EventsTable), OrdersSpec(cfg.OrdersTable), table.DeadLetterSpec(cfg.DeadLetterTable)} {
			isc, err := spec.IcebergSchema()
			if err != nil {
				t.Fatalf("%s: %v", spec.Name, err)
			}
			if _, err := spec.IcebergPartitionSpec(isc); err != nil {
				t.Fatalf("%s: partition spec: %v", spec.Name, err)
			}
			sc, err := icetable.SchemaToArrowSchema(isc, nil, true, false)
			if err != nil {
				t.Fatal(err)
			}
			s.schemas[spec.Name] = sc
		}
	})
	for _, tbl := range []string{cfg.EventsTable, cfg.OrdersTable, cfg.DeadLetterTable} {
		if got, want := fromSpecs.rows(tbl), base.rows(tbl); len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %d rows on the specs' schema, want the same %d", tbl, len(got), len(want))
		}
	}
}
