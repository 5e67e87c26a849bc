package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/ingest"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/source"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

func ordersSpec(name string) table.Spec {
	return table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true}, {Name: "status", Type: "string"}, {Name: "amount", Type: "decimal(10,2)"},
	}, IdentifierFields: []string{"id"}}
}

// order is a row of ordersSpec; amount is its decimal text.
type order struct {
	id     int
	status string
	amount string
}

// change is one logical change of a test script, encoded per format by
// encodeChanges.
type scriptChange struct {
	// op: insert, update, delete (of rows, with old for updates), or a
	// special record: badkey, badimage (an update whose amount is not a
	// decimal), ddl (canal only), tombstone (debezium only: after a
	// delete of rows[0]), nokey (json only: a tombstone without a key).
	op   string
	rows []order
	old  []order
}

// canalValue, debeziumValue and jsonValue render a row as each format
// writes it: Canal quotes every value.
func canalValue(o order) map[string]any {
	return map[string]any{"id": fmt.Sprint(o.id), "status": o.status, "amount": o.amount}
}

func plainValue(o order) map[string]any {
	return map[string]any{"id": o.id, "status": o.status, "amount": o.amount}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// encodeChanges turns a script into records of format on topic, each on
// the partition of its (first) row's key: id % parts.
func encodeChanges(format, topic string, parts int, script []scriptChange) []*kgo.Record {
	var out []*kgo.Record
	part := func(id int) int32 { return int32(id % parts) }
	add := func(id int, key, value []byte) {
		out = append(out, &kgo.Record{Topic: topic, Partition: part(id), Key: key, Value: value})
	}
	keyOf := func(id int) []byte { return mustJSON(map[string]any{"id": id}) }
	for _, c := range script {
		switch format {
		case FormatCanal:
			typ := strings.ToUpper(c.op)
			m := map[string]any{"type": typ, "isDdl": false, "es": 1767323045000, "ts": 1767323045100, "pkNames": []string{"id"}, "database": "shop", "table": "orders"}
			var data, old []any
			for i, r := range c.rows {
				data = append(data, canalValue(r))
				if c.op == "update" || c.op == "badimage" {
					o := c.old[i]
					if o.id != r.id {
						old = append(old, map[string]any{"id": fmt.Sprint(o.id)})
					} else {
						old = append(old, map[string]any{"status": o.status})
					}
				}
			}
			switch c.op {
			case "badkey":
				data = []any{map[string]any{"id": nil, "status": "x", "amount": "1"}}
				m["type"] = "INSERT"
			case "badimage":
				m["type"] = "UPDATE"
			case "ddl":
				m = map[string]any{"data": nil, "type": "ALTER", "isDdl": true, "sql": "ALTER TABLE orders ADD COLUMN note varchar(10)", "database": "shop", "table": "orders"}
				add(0, nil, mustJSON(m))
				continue
			case "tombstone", "nokey":
				continue
			}
			m["data"] = data
			if old != nil {
				m["old"] = old
			}
			id := 0
			if len(c.rows) > 0 {
				id = c.rows[0].id
			}
			add(id, keyOf(id), mustJSON(m))
		case FormatDebezium:
			src := map[string]any{"ts_ms": 1767323045000, "db": "shop", "table": "orders"}
			switch c.op {
			case "badkey":
				add(0, nil, mustJSON(map[string]any{"op": "c", "after": map[string]any{"status": "x"}, "source": src}))
				continue
			case "tombstone":
				add(c.rows[0].id, keyOf(c.rows[0].id), nil)
				continue
			case "ddl", "nokey":
				continue
			}
			for i, r := range c.rows {
				e := map[string]any{"source": src, "ts_ms": 1767323045100}
				switch c.op {
				case "insert":
					e["op"], e["before"], e["after"] = "c", nil, plainValue(r)
				case "update", "badimage":
					e["op"], e["before"], e["after"] = "u", plainValue(c.old[i]), plainValue(r)
				case "delete":
					e["op"], e["before"], e["after"] = "d", plainValue(r), nil
				}
				// The schema envelope on every other event.
				var v any = e
				if len(out)%2 == 1 {
					v = map[string]any{"schema": map[string]any{"type": "struct"}, "payload": e}
				}
				add(r.id, keyOf(r.id), mustJSON(v))
			}
		case FormatJSON:
			switch c.op {
			case "badkey":
				add(0, nil, []byte(`{"status":"x","amount":"1"}`))
				continue
			case "nokey":
				add(0, nil, nil)
				continue
			case "ddl", "tombstone":
				continue
			}
			for i, r := range c.rows {
				switch c.op {
				case "delete":
					add(r.id, keyOf(r.id), nil)
				default:
					if c.old != nil && c.old[i].id != r.id {
						// A new key: the old one is deleted first.
						add(c.old[i].id, keyOf(c.old[i].id), nil)
					}
					add(r.id, keyOf(r.id), mustJSON(plainValue(r)))
				}
			}
		}
	}
	return out
}

// applyScript is the table a script leaves: every row by key.
func applyScript(script []scriptChange) map[int]order {
	want := map[int]order{}
	for _, c := range script {
		for i, r := range c.rows {
			switch c.op {
			case "insert":
				want[r.id] = r
			case "update":
				delete(want, c.old[i].id)
				want[r.id] = r
			case "delete":
				delete(want, r.id)
			case "badimage":
				// The new image is a dead letter; the key's row is deleted.
				delete(want, c.old[i].id)
				delete(want, r.id)
			}
		}
	}
	return want
}

// scanOrders reads an orders table by key; it fails on a duplicated key.
func scanOrders(t testing.TB, cat icecat.Catalog, name string) map[int]order {
	t.Helper()
	out := map[int]order{}
	for _, r := range scan(t, cat, name, "id", "status", "amount") {
		id := int(r["id"].(int64))
		if _, dup := out[id]; dup {
			t.Fatalf("%s: key %d is in the table twice", name, id)
		}
		o := order{id: id}
		if s, ok := r["status"].(string); ok {
			o.status = s
		}
		if a, ok := r["amount"].(string); ok {
			o.amount = a
		}
		out[id] = o
	}
	return out
}

func fmtOrders(m map[int]order) string {
	ids := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "%d:%s:%s ", id, m[id].status, m[id].amount)
	}
	return b.String()
}

// theScript covers inserts, updates (one changing the key), deletes,
// re-inserts, an unknown-key delete, multi-row messages, a bad key, a bad
// image, a DDL message and a tombstone. Keys keep their partition (id % 2)
// through key changes.
func theScript() []scriptChange {
	o := func(id int, status, amount string) order { return order{id, status, amount} }
	return []scriptChange{
		{op: "insert", rows: []order{o(1, "new", "1.00")}},
		{op: "insert", rows: []order{o(2, "new", "2.00")}},
		{op: "insert", rows: []order{o(3, "new", "3.00")}},
		{op: "update", rows: []order{o(1, "paid", "1.00")}, old: []order{o(1, "new", "1.00")}},
		{op: "delete", rows: []order{o(2, "new", "2.00")}},
		{op: "tombstone", rows: []order{o(2, "", "")}},
		{op: "ddl"},
		{op: "update", rows: []order{o(5, "moved", "3.00")}, old: []order{o(3, "new", "3.00")}},
		{op: "insert", rows: []order{o(2, "again", "2.50")}},
		{op: "delete", rows: []order{o(999, "ghost", "0.00")}},
		{op: "insert", rows: []order{o(10, "new", "10.00"), o(12, "new", "12.00"), o(14, "new", "14.00")}},
		{op: "update", rows: []order{o(10, "x", "10.00"), o(12, "y", "12.00")}, old: []order{o(10, "new", "10.00"), o(12, "new", "12.00")}},
		{op: "delete", rows: []order{o(14, "new", "14.00"), o(16, "ghost", "0.00")}},
		{op: "badkey"},
		{op: "nokey"},
		{op: "badimage", rows: []order{o(1, "bad", "abc")}, old: []order{o(1, "paid", "1.00")}},
		{op: "insert", rows: []order{o(7, "new", "7.00")}},
	}
}

// TestUpsertFormats applies the same script of changes, in each format, to
// an upsert table: the table ends as the script leaves it, with every key
// once; bad keys and images are dead letters with their reason; deletes of
// unknown keys are counted; the DDL message and the tombstone are skipped.
func TestUpsertFormats(t *testing.T) {
	script := theScript()
	want := applyScript(script)
	cases := []struct {
		format     string
		route      Route
		deadLetter map[string]int // part of a reason → how many
	}{
		{FormatCanal, Route{Format: FormatCanal}, map[string]int{`key column "id" is null`: 1, "amount": 1}},
		{FormatDebezium, Route{Format: FormatDebezium}, map[string]int{`key column "id" is missing`: 1, "amount": 1}},
		{FormatJSON, Route{Format: FormatJSON, Key: []string{"id"}}, map[string]int{`"id"`: 1, "has no key": 1, "amount": 1}},
	}
	for _, tc := range cases {
		t.Run(tc.format, func(t *testing.T) {
			c := newCluster(t, 2, "orders")
			brokers := c.ListenAddrs()
			cat := openCatalog(t)
			rt := tc.route
			rt.Topics, rt.Table, rt.Mode = []string{"orders"}, "ods.orders", ModeUpsert
			cfg := testConfig(brokers, rt)
			cfg.MetadataColumns = true
			prepare(t, cat, cfg, ordersSpec("ods.orders"))
			recs := encodeChanges(tc.format, "orders", 2, script)
			produce(t, brokers, recs)

			p := startProc(t, "a", cat, cfg, fastWriter(), 0)
			wantDead := 0
			for _, n := range tc.deadLetter {
				wantDead += n
			}
			waitFor(t, 30*time.Second, "the script's final state", func() bool {
				return fmtOrders(scanOrders(t, cat, "ods.orders")) == fmtOrders(want) &&
					len(scan(t, cat, "floe.dead_letters", "position")) == wantDead
			})
			unknown := counterValue(p.src.um.unknownDeletes.WithLabelValues("ods.orders"))
			applied := appliedChanges(p.src, "ods.orders")
			p.stop()
			if got := fmtOrders(scanOrders(t, cat, "ods.orders")); got != fmtOrders(want) {
				t.Fatalf("table: got %s, want %s", got, fmtOrders(want))
			}
			if unknown != 2 {
				t.Errorf("unknown-key deletes: got %v, want 2 (keys 999 and 16)", unknown)
			}
			dl := scan(t, cat, "floe.dead_letters", "partition", "position", "reason", "target_table")
			for part, n := range tc.deadLetter {
				got := 0
				for _, r := range dl {
					if strings.Contains(r["reason"].(string), part) {
						got++
					}
				}
				if got != n {
					t.Errorf("dead letters with %q: got %d, want %d (all: %v)", part, got, n, dl)
				}
			}
			for _, r := range scan(t, cat, "ods.orders", "id", ColOffset, ColPartition) {
				if r[ColOffset] == nil || r[ColPartition] != int64(r["id"].(int64)%2) {
					t.Errorf("metadata columns of row %v", r)
				}
			}
			if tc.format == FormatCanal {
				skipped := counterValue(p.src.um.statements.WithLabelValues("ods.orders", "skipped"))
				if skipped != 1 {
					t.Errorf("skipped DDL messages: %v, want 1", skipped)
				}
			}

			// Idempotent re-apply: a second source id reads the topic from
			// the start into the same table.
			cfg2 := cfg
			cfg2.ID, cfg2.Group = "kafka2", "floe-test-2"
			p2 := startProc(t, "b", cat, cfg2, fastWriter(), 0)
			waitFor(t, 30*time.Second, "the second source to apply every change", func() bool {
				return appliedChanges(p2.src, "ods.orders") == applied
			})
			p2.stop()
			if got := fmtOrders(scanOrders(t, cat, "ods.orders")); got != fmtOrders(want) {
				t.Fatalf("after a re-apply: got %s, want %s", got, fmtOrders(want))
			}
		})
	}
}

// counterValue reads a counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// appliedChanges is what src applied to tbl: upserts and deletes.
func appliedChanges(src *Source, tbl string) string {
	return fmt.Sprint(counterValue(src.um.changes.WithLabelValues(tbl, "upsert")), " ",
		counterValue(src.um.changes.WithLabelValues(tbl, "delete")))
}

func tablePositions(t testing.TB, cat icecat.Catalog, name string) table.PositionMap {
	t.Helper()
	tbl := tabletest.Load(t, cat, name)
	pm, err := table.CurrentPositions(tbl)
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

func tableProps(t testing.TB, cat icecat.Catalog, name string) map[string]string {
	t.Helper()
	tbl := tabletest.Load(t, cat, name)
	return tbl.Properties()
}

// TestUpsertCanalDDLHalts: a Canal DDL that changes the key halts its
// table (committed up to the statement, the reason in floe.halted), while
// another table of the route goes on — also after a restart.
func TestUpsertCanalDDLHalts(t *testing.T) {
	c := newCluster(t, 1, "binlog")
	brokers := c.ListenAddrs()
	cat := openCatalog(t)
	users := table.Spec{Name: "ods.users", Schema: []table.Field{{Name: "uid", Type: "long", Required: true}, {Name: "name", Type: "string"}},
		IdentifierFields: []string{"uid"}}
	cfg := testConfig(brokers, Route{Topics: []string{"binlog"}, Format: FormatCanal, Mode: ModeUpsert, Field: "table",
		Tables: map[string]string{"orders": "ods.orders", "users": "ods.users"}})
	prepare(t, cat, cfg, ordersSpec("ods.orders"), users)
	msg := func(tbl, typ string, rows ...string) *kgo.Record {
		v := fmt.Sprintf(`{"data":[%s],"type":%q,"isDdl":false,"table":%q,"database":"shop"}`, strings.Join(rows, ","), typ, tbl)
		return &kgo.Record{Topic: "binlog", Value: []byte(v)}
	}
	ddl := func(tbl, typ, sql string) *kgo.Record {
		return &kgo.Record{Topic: "binlog", Value: []byte(fmt.Sprintf(`{"data":null,"type":%q,"isDdl":true,"sql":%q,"table":%q}`, typ, sql, tbl))}
	}
	produce(t, brokers, []*kgo.Record{
		msg("orders", "INSERT", `{"id":"1","status":"a","amount":"1"}`, `{"id":"2","status":"b","amount":"2"}`),
		msg("users", "INSERT", `{"uid":"1","name":"ann"}`),
		ddl("orders", "CINDEX", "CREATE INDEX s ON orders (status)"),
		ddl("users", "ALTER", "ALTER TABLE users ADD COLUMN age int"),
		ddl("orders", "ALTER", "ALTER TABLE orders DROP PRIMARY KEY, ADD PRIMARY KEY (id, status)"),
		msg("orders", "INSERT", `{"id":"3","status":"c","amount":"3"}`),
		msg("users", "INSERT", `{"uid":"2","name":"bob"}`),
	})
	p := startProc(t, "a", cat, cfg, fastWriter(), 0)
	waitFor(t, 30*time.Second, "users 1 and 2 and the halt", func() bool {
		return len(scan(t, cat, "ods.users", "uid")) == 2 && tableProps(t, cat, "ods.orders")[writer.PropHalted] != ""
	})
	if n := counterValue(p.src.um.statements.WithLabelValues("ods.orders", "halted")); n != 1 {
		t.Errorf("halted statements: %v", n)
	}
	if n := counterValue(p.src.um.statements.WithLabelValues("ods.orders", "skipped")); n != 1 {
		t.Errorf("skipped statements of orders: %v", n)
	}
	p.stop()
	reason := tableProps(t, cat, "ods.orders")[writer.PropHalted]
	if !strings.Contains(reason, "primary key") || !strings.Contains(reason, "binlog/0 offset 4") {
		t.Fatalf("halt reason: %q", reason)
	}
	if got := fmtOrders(scanOrders(t, cat, "ods.orders")); got != "1:a:1.00 2:b:2.00 " {
		t.Fatalf("orders after the halt: %s", got)
	}

	// A restart leaves the halted table alone; the other goes on.
	produce(t, brokers, []*kgo.Record{
		msg("orders", "INSERT", `{"id":"4","status":"d","amount":"4"}`),
		msg("users", "INSERT", `{"uid":"3","name":"cy"}`),
	})
	p = startProc(t, "b", cat, cfg, fastWriter(), 0)
	waitFor(t, 30*time.Second, "user 3", func() bool { return len(scan(t, cat, "ods.users", "uid")) == 3 })
	p.stop()
	if got := fmtOrders(scanOrders(t, cat, "ods.orders")); got != "1:a:1.00 2:b:2.00 " {
		t.Fatalf("orders after the restart: %s", got)
	}
	if n := len(scan(t, cat, "floe.dead_letters", "position")); n != 0 {
		t.Fatalf("dead letters: %d", n)
	}
}

func TestHaltReason(t *testing.T) {
	keys := []string{"id", "region"}
	cases := []struct {
		typ, sql string
		want     string // part of the reason; "" to skip
	}{
		{"ALTER", "ALTER TABLE t ADD COLUMN note varchar(10)", ""},
		{"ALTER", "ALTER TABLE t DROP COLUMN note", ""},
		{"ALTER", "ALTER TABLE t DROP COLUMN idx", ""},
		{"CINDEX", "CREATE INDEX i ON t (id)", ""},
		{"CREATE", "CREATE TABLE t2 (id int primary key)", ""},
		{"ALTER", "alter table t drop primary key", "primary key"},
		{"ALTER", "ALTER TABLE t ADD PRIMARY KEY (id, x)", "primary key"},
		{"ALTER", "ALTER TABLE t DROP COLUMN `region`", "key column region"},
		{"ALTER", "ALTER TABLE t CHANGE id id2 bigint", "key column id"},
		{"ALTER", "ALTER TABLE t MODIFY COLUMN Region varchar(20)", "key column region"},
		{"RENAME", "ALTER TABLE t RENAME COLUMN id TO uid", "key column id"},
		{"TRUNCATE", "truncate table t", "TRUNCATE"},
		{"QUERY", "TRUNCATE t", "TRUNCATE"},
		{"ERASE", "DROP TABLE t", "dropped"},
		{"RENAME", "RENAME TABLE t TO t_old", ""},
	}
	for _, c := range cases {
		got := haltReason(&statement{typ: c.typ, sql: c.sql}, keys)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s %q: got %q, want %q", c.typ, c.sql, got, c.want)
		}
	}
}

// TestUpsertConfig: mode and key settings are checked at start, naming the
// route's setting.
func TestUpsertConfig(t *testing.T) {
	t.Setenv(EnvSASLUsername, "")
	t.Setenv(EnvSASLPassword, "")
	route := func(mod func(*Route)) Config {
		c := testConfig([]string{"127.0.0.1:9092"}, Route{Topics: []string{"a"}, Table: "ods.orders", Format: FormatCanal, Mode: ModeUpsert})
		mod(&c.Routes[0])
		return c
	}
	bad := []struct {
		cfg  Config
		want string
	}{
		{route(func(r *Route) { r.Mode = "merge" }), `kafka.routes[0].mode: "merge" is not append or upsert`},
		{route(func(r *Route) { r.Mode, r.Key = ModeAppend, []string{"id"} }), "kafka.routes[0].key: only with mode: upsert"},
		{route(func(r *Route) { r.Format = FormatJSON }), "kafka.routes[0].key: required for mode upsert with format json"},
		{route(func(r *Route) { r.Key = []string{"id", "id"} }), `kafka.routes[0].key[1]: column "id" is named twice`},
		{testConfig([]string{"127.0.0.1:9092"},
			Route{Topics: []string{"a"}, Table: "ods.orders", Mode: ModeAppend},
			Route{Topics: []string{"b"}, Table: "ods.orders", Format: FormatDebezium, Mode: ModeUpsert}),
			"kafka.routes[1].mode: upsert: table ods.orders is also written by routes[0] in mode append"},
	}
	for _, b := range bad {
		c := b.cfg
		c.ApplyDefaults()
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("got %v, want %q", err, b.want)
		}
	}
	// Checked against the declared tables.
	plain := ordersSpec("ods.orders")
	plain.IdentifierFields = nil
	parted := ordersSpec("ods.orders")
	parted.Partition = []table.PartitionField{{Column: "id", Transform: "bucket[4]"}}
	nested := ordersSpec("ods.orders")
	nested.Schema = append(nested.Schema, table.Field{Name: "addr", Type: "struct", Fields: []table.Field{{Name: "city", Type: "string"}}})
	nested.Partition = []table.PartitionField{{Column: "addr.city"}}
	specErrs := []struct {
		cfg  Config
		spec table.Spec
		want string
	}{
		{route(func(*Route) {}), plain, "kafka.routes[0].mode: upsert needs table ods.orders to have identifier-fields"},
		{route(func(*Route) {}), nested, "kafka.routes[0].mode: upsert tables are partitioned by top-level columns"},
		{route(func(r *Route) { r.Key = []string{"status"} }), ordersSpec("ods.orders"), "kafka.routes[0].key: [status] are not the identifier fields [id]"},
	}
	for _, b := range specErrs {
		src, err := New(b.cfg, Options{Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Specs([]table.Spec{b.spec}); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("got %v, want %q", err, b.want)
		}
	}

	// A partitioned upsert table is accepted (the keyed writer partitions).
	src, err := New(route(func(*Route) {}), Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Specs([]table.Spec{parted}); err != nil {
		t.Errorf("partitioned upsert table: %v", err)
	}

	// At start, through ingest: the error names the source entry.
	var sc source.Config
	doc := "type: kafka\nkafka:\n  brokers: [127.0.0.1:9092]\n  routes: [{topics: [a], table: ods.orders, format: debezium-json, mode: upsert}]\n"
	if err := yaml.Unmarshal([]byte(doc), &sc); err != nil {
		t.Fatal(err)
	}
	if err := sc.Resolve(source.NewRegistry(Kind()), "sources[0]"); err != nil {
		t.Fatal(err)
	}
	_, err = ingest.New(ingest.Config{Tables: []table.Spec{plain}, Sources: []source.Config{sc}}, ingest.Options{Logger: testLogger()})
	if err == nil || !strings.HasPrefix(err.Error(), "sources[0].kafka.routes[0].mode: upsert needs table ods.orders to have identifier-fields") {
		t.Fatalf("ingest: %v", err)
	}
}

// randomScript makes n changes over keys 0..keys-1 (a key keeps its
// partition, id % parts, through key changes) and returns it with the
// final table it leaves.
func randomScript(rng *rand.Rand, n, keys, parts int) []scriptChange {
	live := map[int]order{}
	var out []scriptChange
	for i := 0; i < n; i++ {
		id := rng.IntN(keys)
		cur, ok := live[id]
		st := fmt.Sprintf("s%d", i)
		amt := fmt.Sprintf("%d.%02d", rng.IntN(1000), rng.IntN(100))
		switch r := rng.IntN(10); {
		case !ok && r < 9:
			o := order{id, st, amt}
			out = append(out, scriptChange{op: "insert", rows: []order{o}})
			live[id] = o
		case !ok:
			out = append(out, scriptChange{op: "delete", rows: []order{{id, "ghost", "0.00"}}})
		case r < 5:
			o := order{id, st, amt}
			out = append(out, scriptChange{op: "update", rows: []order{o}, old: []order{cur}})
			live[id] = o
		case r < 6:
			// A key change to a free key of the same partition.
			to := (id + parts*(1+rng.IntN(5))) % keys
			if _, taken := live[to]; taken || to%parts != id%parts || to == id {
				continue
			}
			o := order{to, st, amt}
			out = append(out, scriptChange{op: "update", rows: []order{o}, old: []order{cur}})
			delete(live, id)
			live[to] = o
		default:
			out = append(out, scriptChange{op: "delete", rows: []order{cur}})
			if rng.IntN(2) == 0 {
				out = append(out, scriptChange{op: "tombstone", rows: []order{cur}})
			}
			delete(live, id)
		}
	}
	return out
}

// TestUpsertRestarts: writes fail at random (each failure aborts the
// run's writer with changes buffered) and the process is stopped and
// started between chunks of a stream of changes; the table ends equal to
// the final state, with every key once.
func TestUpsertRestarts(t *testing.T) {
	for _, format := range []string{FormatDebezium, FormatCanal, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			const parts = 3
			c := newCluster(t, parts, "orders")
			brokers := c.ListenAddrs()
			cat := openCatalog(t)
			rt := Route{Topics: []string{"orders"}, Table: "ods.orders", Format: format, Mode: ModeUpsert}
			if format == FormatJSON {
				rt.Key = []string{"id"}
			}
			cfg := testConfig(brokers, rt)
			cfg.BatchRecords = 40
			prepare(t, cat, cfg, ordersSpec("ods.orders"))
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
			script := randomScript(rng, 3000, 100, parts)
			want := applyScript(script)
			recs := encodeChanges(format, "orders", parts, script)
			rounds := 4
			chunk := len(recs)/rounds + 1
			failed := 0
			for i := range rounds {
				produce(t, brokers, recs[min(i*chunk, len(recs)):min((i+1)*chunk, len(recs))])
				p := startProc(t, fmt.Sprint("r", i), cat, cfg, fastWriter(), 0.05)
				time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond)
				p.stop()
				_, failures := p.stats()
				failed += failures["injected"]
			}
			if failed == 0 {
				t.Fatal("no run failed: the test did not abort a writer")
			}
			p := startProc(t, "final", cat, cfg, fastWriter(), 0)
			waitFor(t, 60*time.Second, "the final state", func() bool {
				return fmtOrders(scanOrders(t, cat, "ods.orders")) == fmtOrders(want)
			})
			p.stop()
			if got := fmtOrders(scanOrders(t, cat, "ods.orders")); got != fmtOrders(want) {
				t.Fatalf("table: got %s\nwant %s", got, fmtOrders(want))
			}
			if n := len(scan(t, cat, "floe.dead_letters", "position")); n != 0 {
				t.Fatalf("dead letters: %d", n)
			}
			checkPositions(t, cat, "ods.orders", format, recs)
			t.Logf("%d records, %d keys at the end, %d injected failures", len(recs), len(want), failed)
		})
	}
}

// checkPositions checks the positions an upsert table committed after a
// clean stop: past the last upsert of each partition (its row and its
// position were committed together) and not past the partition's end.
func checkPositions(t testing.TB, cat icecat.Catalog, tbl, format string, recs []*kgo.Record) {
	t.Helper()
	pos := tablePositions(t, cat, tbl)["kafka"]
	last, end := map[string]int64{}, map[string]int64{}
	for _, r := range recs {
		p := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
		end[p] = max(end[p], r.Offset+1)
		v := string(r.Value)
		upsert := false
		switch format {
		case FormatDebezium:
			upsert = strings.Contains(v, `"op":"c"`) || strings.Contains(v, `"op":"u"`)
		case FormatCanal:
			upsert = strings.Contains(v, `"type":"INSERT"`) || strings.Contains(v, `"type":"UPDATE"`)
		case FormatJSON:
			upsert = len(r.Value) > 0
		}
		if upsert {
			last[p] = r.Offset + 1
		}
	}
	for p, e := range end {
		if got, ok := pos[p]; !ok || got < last[p] || got > e {
			t.Errorf("%s: position of %s is %d (present %v); want from %d to %d", tbl, p, got, ok, last[p], e)
		}
	}
}

// TestUpsertRealBroker runs ~50k Debezium changes over 1,000 keys from the
// broker FLOE_KAFKA_BROKERS names through three processes in turn — the
// first crashes (a write fails; its buffered changes are dropped), the
// second stops cleanly — and compares the mirror with the final state.
func TestUpsertRealBroker(t *testing.T) {
	v := os.Getenv(EnvBrokers)
	if v == "" || testing.Short() {
		t.Skip("needs Kafka: set " + EnvBrokers + " (integration/kafka.sh start)")
	}
	testenv.KafkaLock(t, false)
	brokers := strings.Split(v, ",")
	const parts = 4
	topic := fmt.Sprintf("floe-upsert-%d", time.Now().UnixNano())
	createTopicOn(t, brokers, topic, parts)
	cat := openCatalog(t)
	cfg := testConfig(brokers, Route{Topics: []string{topic}, Table: "ods.orders", Format: FormatDebezium, Mode: ModeUpsert})
	cfg.Group = "floe-" + topic
	cfg.BatchRecords = 2000
	cfg.SessionTimeout = 6 * time.Second
	cfg.HeartbeatInterval = 500 * time.Millisecond
	prepare(t, cat, cfg, ordersSpec("ods.orders"))
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	script := randomScript(rng, 45000, 1000, parts)
	want := applyScript(script)
	recs := encodeChanges(FormatDebezium, topic, parts, script)
	t.Logf("%d records, %d keys at the end", len(recs), len(want))
	third := len(recs)/3 + 1
	chunk := func(i int) []*kgo.Record { return recs[min(i*third, len(recs)):min((i+1)*third, len(recs))] }
	progress := func(phase string) {
		var n int64
		for _, v := range tablePositions(t, cat, "ods.orders")["kafka"] {
			n += v
		}
		t.Logf("after %s: the table's positions cover %d of %d records", phase, n, len(recs))
	}

	wcfg := writer.Config{CommitInterval: time.Second, MemoryBudget: 64 << 20}
	// 1: crashes: its 20th write fails (after two seconds of polls of 500
	// records, so that it committed some), and what its writer buffered
	// is dropped.
	produce(t, brokers, chunk(0))
	small := cfg
	small.BatchRecords = 500
	crashRun(t, cat, small, wcfg, 20, 100*time.Millisecond)
	progress("process 1 (crashed)")
	// 2: stops cleanly, with more to read.
	produce(t, brokers, chunk(1))
	p := startProc(t, "stop", cat, cfg, wcfg, 0)
	time.Sleep(2 * time.Second)
	p.stop()
	progress("process 2")
	// 3: to the end.
	produce(t, brokers, chunk(2))
	p = startProc(t, "final", cat, cfg, wcfg, 0)
	waitFor(t, 3*time.Minute, "the final state", func() bool {
		pos := tablePositions(t, cat, "ods.orders")["kafka"]
		return len(pos) == parts && fmtOrders(scanOrders(t, cat, "ods.orders")) == fmtOrders(want)
	})
	p.stop()
	if got := fmtOrders(scanOrders(t, cat, "ods.orders")); got != fmtOrders(want) {
		t.Fatalf("mirror differs from the final state")
	}
	checkPositions(t, cat, "ods.orders", FormatDebezium, recs)
}

// crashRun runs a source once on a writer whose failAt-th Write fails:
// the run ends with the error, the writer (and the source's KeyedTables)
// are aborted with what they buffered, and the source leaves its group.
func crashRun(t testing.TB, cat icecat.Catalog, cfg Config, wcfg writer.Config, failAt int, delay time.Duration) {
	t.Helper()
	src, err := New(cfg, Options{Logger: testLogger().With("proc", "crash")})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close() //nolint:errcheck // test cleanup
	wcfg.ApplyDefaults()
	w := writer.New(cat, wcfg, writer.Options{Logger: testLogger(), OnCommit: src.OnCommit})
	defer w.Abort()
	sink := &failingSink{Writer: w, failAt: failAt, delay: delay}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := src.Run(ctx, sink); !errors.Is(err, errInjected) {
		t.Fatalf("crash run ended with %v, want the injected failure", err)
	}
}

// failingSink fails its failAt-th Write; each Write first waits delay.
type failingSink struct {
	*writer.Writer
	failAt, n int
	delay     time.Duration
}

func (f *failingSink) Write(b writer.Batch) error {
	time.Sleep(f.delay)
	f.n++
	if f.n == f.failAt {
		if b.Record != nil {
			b.Record.Release()
		}
		return errInjected
	}
	return f.Writer.Write(b)
}

// createTopicOn creates a topic on a broker (a real one or kfake).
func createTopicOn(t testing.TB, brokers []string, topic string, partitions int32) {
	t.Helper()
	if c := testenv.CreateTopic(t, brokers, topic, partitions); c != 0 {
		t.Fatalf("create topic %s: error code %d", topic, c)
	}
}

func TestKeyObjects(t *testing.T) {
	for _, c := range []struct {
		key  string
		cols []string
		want string // or the error's text
	}{
		{`{"id":7,"x":1}`, []string{"id"}, `{"id":7}`},
		{`7`, []string{"id"}, `{"id":7}`},
		{`abc`, []string{"id"}, `{"id":"abc"}`},
		{`{"a":1,"b":"x"}`, []string{"b", "a"}, `{"b":"x","a":1}`},
		{`{"a":1}`, []string{"a", "b"}, `key column "b" is missing`},
		{`{"a":null}`, []string{"a"}, `key column "a" is null`},
		{`7`, []string{"a", "b"}, "not a JSON object"},
		{``, []string{"a"}, "has no key"},
	} {
		got, err := recordKey([]byte(c.key), c.cols)
		if s := string(got); (err == nil && s != c.want) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("recordKey(%s, %v) = %s, %v; want %s", c.key, c.cols, got, err, c.want)
		}
	}
	for _, c := range []struct {
		row  keyedRow
		want string // the old key, "" when the key did not change
	}{
		{keyedRow{image: []byte(`{"id":"5","s":"x"}`), prev: []byte(`{"s":"y"}`), partial: true}, ""},
		{keyedRow{image: []byte(`{"id":"5","r":"eu"}`), prev: []byte(`{"id":"3"}`), partial: true}, `{"id":"3","r":"eu"}`},
		{keyedRow{image: []byte(`{"id":5,"r":"eu"}`), prev: []byte(`{"id":5,"r":"eu","s":1}`)}, ""},
		{keyedRow{image: []byte(`{"id":5,"r":"eu"}`), prev: []byte(`{"id":5,"r":"us"}`)}, `{"id":5,"r":"us"}`},
		{keyedRow{image: []byte(`{"id":5,"r":"eu"}`)}, ""},
	} {
		old, moved, err := previousKey(&c.row, []string{"id", "r"})
		if err != nil || moved != (c.want != "") || (moved && string(old) != c.want) {
			t.Errorf("previousKey(%s, %s) = %s, %v, %v; want %q", c.row.image, c.row.prev, old, moved, err, c.want)
		}
	}
}
