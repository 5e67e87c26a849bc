// Package cdcgen generates, from a seed, the row changes a shop database
// would send through Canal or Debezium: inserts, updates (some changing
// the primary key, some moving an order to another region), deletes and
// re-inserts of deleted keys over a fixed key space of the tables orders,
// users and regions (a dimension: loaded first, then only updated), and an
// append-only table of ad events. It renders them as Canal flat-message
// JSON and Debezium JSON Kafka records (encode.go), and keeps what each
// table must hold once the stream is applied (Replay): the final state of
// the keyed tables, every row of the append-only one.
//
// The stream is deterministic: the same Config gives the same records,
// byte for byte. The package generates and encodes; it talks to no broker
// (the command integration/cdcgen and the tests produce the records).
package cdcgen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// Op is the type of a row change.
type Op string

// The row change types.
const (
	OpInsert Op = "insert"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Kind is the type of a column's values.
type Kind uint8

// The column kinds and the Go values a Row holds for them.
const (
	Long    Kind = iota // int64; MySQL BIGINT
	String              // string; VARCHAR
	Decimal             // string, the decimal's text with 2 digits of scale; DECIMAL(10,2)
	Time                // time.Time, milliseconds; DATETIME(3)
)

// Column is a column of a generated table.
type Column struct {
	Name string
	Kind Kind
}

// Table is a generated table: its columns, its primary key (the first
// column) and whether it is keyed (mirrored by upserts) or append-only.
type Table struct {
	Name    string
	Columns []Column
	// Keyed tables get updates and deletes; the others only inserts.
	Keyed bool
}

// Key is the table's primary-key column: the first column.
func (t *Table) Key() string { return t.Columns[0].Name }

// Row is a table's row: one value per column (int64, string or
// time.Time; nil for NULL).
type Row []any

// key is the row's primary key.
func (r Row) key() int64 { return r[0].(int64) }

// The tables the generator knows, in the order of their names in Tables.
const (
	TableOrders   = "orders"
	TableUsers    = "users"
	TableRegions  = "regions"
	TableAdEvents = "ad_events"
)

// Tables returns the generator's tables by name: orders, users, regions
// (keyed) and ad_events (append-only).
func Tables() map[string]*Table {
	return map[string]*Table{
		TableOrders: {Name: TableOrders, Keyed: true, Columns: []Column{
			{"id", Long}, {"user_id", Long}, {"region_id", Long}, {"status", String},
			{"amount", Decimal}, {"created_at", Time}, {"updated_at", Time}}},
		TableUsers: {Name: TableUsers, Keyed: true, Columns: []Column{
			{"user_id", Long}, {"name", String}, {"level", String}, {"region_id", Long},
			{"registered_at", Time}, {"updated_at", Time}}},
		TableRegions: {Name: TableRegions, Keyed: true, Columns: []Column{
			{"region_id", Long}, {"province", String}, {"city", String}, {"updated_at", Time}}},
		TableAdEvents: {Name: TableAdEvents, Columns: []Column{
			{"event_id", Long}, {"event_time", Time}, {"user_id", Long}, {"device_id", String},
			{"ad_id", Long}, {"ad_action", String}, {"properties", String}}},
	}
}

// cities are the regions: region_id i+1 is cities[i].
var cities = [...]struct{ province, city string }{
	{"Guangdong", "Guangzhou"}, {"Guangdong", "Shenzhen"}, {"Guangdong", "Dongguan"}, {"Guangdong", "Foshan"},
	{"Zhejiang", "Hangzhou"}, {"Zhejiang", "Ningbo"}, {"Zhejiang", "Wenzhou"},
	{"Jiangsu", "Nanjing"}, {"Jiangsu", "Suzhou"}, {"Jiangsu", "Wuxi"},
	{"Sichuan", "Chengdu"}, {"Sichuan", "Mianyang"},
	{"Shandong", "Jinan"}, {"Shandong", "Qingdao"}, {"Shandong", "Yantai"},
	{"Hubei", "Wuhan"}, {"Hubei", "Yichang"},
	{"Beijing", "Beijing"}, {"Shanghai", "Shanghai"}, {"Fujian", "Xiamen"}, {"Fujian", "Fuzhou"},
}

// Regions is the number of regions (the key space of regions).
const Regions = len(cities)

var (
	orderStatus = []string{"created", "paid", "shipped", "done"}
	userLevels  = []string{"bronze", "silver", "gold", "platinum"}
	adActions   = []string{"show", "show", "show", "show", "show", "show", "show", "click", "click", "close"}
)

// Config says what to generate. Every field's comment ends with its
// default (DefaultConfig).
type Config struct {
	// Seed makes the stream: the same Config gives the same stream.
	// Default: 1.
	Seed uint64
	// Changes is the number of row changes to generate over all tables
	// (the initial load of regions included). Default: 100000.
	Changes int
	// Keys is the key space of orders and users: their keys are 1..Keys.
	// Regions have Regions keys. Default: 10000.
	Keys int
	// Partitions is the number of Kafka partitions: a row's partition is
	// its key modulo Partitions, and a key-changing update keeps it.
	// Default: 4.
	Partitions int
	// Tables are the tables to generate changes of, by name. Default: all
	// four (orders, users, regions, ad_events).
	Tables []string
	// Start is the database time of the first change. Default:
	// 2026-12-06T15:30:00Z (23:30 in Asia/Shanghai).
	Start time.Time
	// Step is the database time between two events. Default: 10ms.
	Step time.Duration
	// MultiRow is the share of events that change several rows at once
	// (2 to 5, one Canal message; one Debezium event each). Default: 0.1.
	MultiRow float64
	// KeyChange is the share of orders updates that change the primary
	// key (to a free key of the same partition). Default: 0.01.
	KeyChange float64
	// DeleteShare is the share of changes to a present key of orders or
	// users that delete it (the others update it; regions are only
	// updated). Default: 0.1.
	DeleteShare float64
	// LoadUsers inserts every user (keys 1..Keys) in the initial load,
	// after the regions, so that orders find their buyers; without it
	// users appear as the stream inserts them. Default: false.
	LoadUsers bool
	// DDLEvery puts a DDL statement the mirror can follow (an ALTER TABLE
	// that adds an index) every DDLEvery events; Canal renders it, Debezium
	// has no record for it. 0: none. Default: 5000.
	DDLEvery int
}

// DefaultConfig is the default Config.
func DefaultConfig() Config {
	return Config{
		Seed: 1, Changes: 100000, Keys: 10000, Partitions: 4,
		Tables: []string{TableOrders, TableUsers, TableRegions, TableAdEvents},
		Start:  time.Date(2026, 12, 6, 15, 30, 0, 0, time.UTC), Step: 10 * time.Millisecond,
		MultiRow: 0.1, KeyChange: 0.01, DeleteShare: 0.1, DDLEvery: 5000,
	}
}

// Validate reports a config the generator cannot run.
func (c Config) Validate() error {
	var errs []error
	if c.Changes < 0 {
		errs = append(errs, fmt.Errorf("changes: %d is negative", c.Changes))
	}
	if c.Keys < 1 {
		errs = append(errs, fmt.Errorf("keys: %d, want at least 1", c.Keys))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions: %d, want at least 1", c.Partitions))
	}
	if len(c.Tables) == 0 {
		errs = append(errs, errors.New("tables: none"))
	}
	known := Tables()
	for _, t := range c.Tables {
		if known[t] == nil {
			errs = append(errs, fmt.Errorf("tables: unknown table %q (want orders, users, regions or ad_events)", t))
		}
	}
	if c.Step < 0 || c.DDLEvery < 0 {
		errs = append(errs, errors.New("step and ddl-every must not be negative"))
	}
	for _, f := range []float64{c.MultiRow, c.KeyChange, c.DeleteShare} {
		if f < 0 || f > 1 {
			errs = append(errs, fmt.Errorf("share %v is not between 0 and 1", f))
		}
	}
	return errors.Join(errs...)
}

// Change is one row change: Before is the row an update or delete
// changes, After the row an insert or update leaves.
type Change struct {
	Before, After Row
}

// Event is one event of the source database's log: changes of one table,
// of one type, all in one Kafka partition — or, when DDL is set, a DDL
// statement.
type Event struct {
	Table     *Table
	Op        Op
	Changes   []Change
	Partition int32
	// Time is the database time of the event.
	Time time.Time
	// Seq numbers the events from 0.
	Seq int64
	// DDL is a DDL statement, for an event without changes.
	DDL string
	// Load marks the events of the initial load of the dimensions
	// (regions, and users with Config.LoadUsers), which come first.
	Load bool
}

// tableState is a table's rows, by key.
type tableState struct {
	t       *Table
	keys    int
	rows    map[int64]Row
	weight  int
	changes int // row changes generated
}

// Generator generates a Config's events, in order.
type Generator struct {
	cfg     Config
	rng     *rand.Rand
	tables  []*tableState
	byName  map[string]*tableState
	total   int // sum of the tables' weights
	changes int // generated so far
	seq     int64
	adSeq   int64
	// load is the initial load still to generate.
	load []loadStep
}

// loadStep is an event of the initial load: keys from..to (inclusive) of
// table ts in partition p.
type loadStep struct {
	ts       *tableState
	p        int32
	from, to int64
}

// New returns a generator of cfg's stream. Seed, Keys, Partitions,
// Tables, Start and Step take their defaults when zero; the shares and
// DDLEvery are as given (start from DefaultConfig for the defaults).
func New(cfg Config) (*Generator, error) {
	d := DefaultConfig()
	if cfg.Seed == 0 {
		cfg.Seed = d.Seed
	}
	if cfg.Keys == 0 {
		cfg.Keys = d.Keys
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = d.Partitions
	}
	if cfg.Tables == nil {
		cfg.Tables = d.Tables
	}
	if cfg.Start.IsZero() {
		cfg.Start = d.Start
	}
	if cfg.Step == 0 {
		cfg.Step = d.Step
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cdcgen config: %w", err)
	}
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x63646367656e)), byName: map[string]*tableState{}}
	weights := map[string]int{TableOrders: 45, TableUsers: 15, TableRegions: 1, TableAdEvents: 39}
	known := Tables()
	for _, name := range cfg.Tables {
		if g.byName[name] != nil {
			continue
		}
		ts := &tableState{t: known[name], keys: cfg.Keys, rows: map[int64]Row{}, weight: weights[name]}
		if name == TableRegions {
			ts.keys = Regions
		}
		g.tables = append(g.tables, ts)
		g.byName[name] = ts
		g.total += ts.weight
	}
	for _, name := range []string{TableRegions, TableUsers} {
		ts := g.byName[name]
		if ts == nil || (name == TableUsers && !cfg.LoadUsers) {
			continue
		}
		// Keys of partition p are p, p+P, p+2P, ...: runs of up to 500
		// of them per event.
		for p := range cfg.Partitions {
			for from := int64(1); from <= int64(ts.keys); from += 500 * int64(cfg.Partitions) {
				g.load = append(g.load, loadStep{ts: ts, p: int32(p), from: from, to: min(from+500*int64(cfg.Partitions)-1, int64(ts.keys))})
			}
		}
	}
	return g, nil
}

// Config is the generator's config, with its defaults applied.
func (g *Generator) Config() Config { return g.cfg }

// Changes is the number of row changes generated so far.
func (g *Generator) Changes() int { return g.changes }

// TableChanges is the number of row changes of table name generated so
// far: the rows its change log holds.
func (g *Generator) TableChanges(name string) int {
	if ts := g.byName[name]; ts != nil {
		return ts.changes
	}
	return 0
}

// Next returns the next event; false once Config.Changes row changes
// have been generated.
func (g *Generator) Next() (Event, bool) {
	if g.changes >= g.cfg.Changes {
		return Event{}, false
	}
	ev := Event{Seq: g.seq, Time: g.cfg.Start.Add(time.Duration(g.seq) * g.cfg.Step)}
	g.seq++
	for len(g.load) > 0 {
		// The dimensions first: every region (and user).
		st := g.load[0]
		g.load = g.load[1:]
		if ev := g.loadStep(ev, st); len(ev.Changes) > 0 {
			return ev, true
		}
	}
	ts := g.pick()
	ev.Table = ts.t
	if g.cfg.DDLEvery > 0 && ev.Seq%int64(g.cfg.DDLEvery) == int64(g.cfg.DDLEvery-1) {
		ev.DDL = fmt.Sprintf("ALTER TABLE %s ADD INDEX idx_%d (%s)", ts.t.Name, ev.Seq, ts.t.Columns[1].Name)
		return ev, true
	}
	if !ts.t.Keyed {
		return g.appendEvent(ts, ev), true
	}
	n := 1
	if g.rng.Float64() < g.cfg.MultiRow {
		n = 2 + g.rng.IntN(4)
	}
	n = min(n, g.cfg.Changes-g.changes)
	first := g.key(ts)
	ev.Partition = int32(first % int64(g.cfg.Partitions))
	_, present := ts.rows[first]
	switch {
	case !present:
		ev.Op = OpInsert
	case ts.t.Name != TableRegions && g.rng.Float64() < g.cfg.DeleteShare:
		ev.Op = OpDelete // regions are never deleted, only renamed
	default:
		ev.Op = OpUpdate
	}
	keys := []int64{first}
	for tries := 0; len(keys) < n && tries < 4*n; tries++ {
		k := g.keyIn(ts, ev.Partition)
		if _, p := ts.rows[k]; p == present && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		ev.Changes = append(ev.Changes, g.change(ts, ev.Op, k, ev.Time))
	}
	g.changes += len(ev.Changes)
	ts.changes += len(ev.Changes)
	return ev, true
}

// pick picks a table by weight.
func (g *Generator) pick() *tableState {
	w := g.rng.IntN(g.total)
	for _, ts := range g.tables {
		if w < ts.weight {
			return ts
		}
		w -= ts.weight
	}
	return g.tables[len(g.tables)-1]
}

// key picks a key of ts: 1..keys.
func (g *Generator) key(ts *tableState) int64 { return 1 + g.rng.Int64N(int64(ts.keys)) }

// keyIn picks a key of ts in partition p (the first key p is ever in when
// the key space is smaller than the partitions).
func (g *Generator) keyIn(ts *tableState, p int32) int64 {
	parts := int64(g.cfg.Partitions)
	first := int64(p)
	if first == 0 {
		first = parts
	}
	if first > int64(ts.keys) {
		return g.key(ts)
	}
	return first + parts*g.rng.Int64N((int64(ts.keys)-first)/parts+1)
}

// loadStep is the event that inserts the keys of st.
func (g *Generator) loadStep(ev Event, st loadStep) Event {
	ev.Table, ev.Op, ev.Partition, ev.Load = st.ts.t, OpInsert, st.p, true
	for k := st.from; k <= st.to && g.changes < g.cfg.Changes; k++ {
		if k%int64(g.cfg.Partitions) == int64(st.p) {
			ev.Changes = append(ev.Changes, g.change(st.ts, OpInsert, k, ev.Time))
			g.changes++
			st.ts.changes++
		}
	}
	return ev
}

// change applies one change of op to key k of ts and returns it.
func (g *Generator) change(ts *tableState, op Op, k int64, at time.Time) Change {
	at = at.Truncate(time.Millisecond)
	old := ts.rows[k]
	var c Change
	switch op {
	case OpInsert:
		c.After = g.newRow(ts, k, at)
		ts.rows[k] = c.After
	case OpDelete:
		c.Before = old
		delete(ts.rows, k)
	case OpUpdate:
		c.Before = old
		c.After = g.updated(ts, old, at)
		if ts.t.Name == TableOrders && g.rng.Float64() < g.cfg.KeyChange {
			// A new primary key in the same partition, free in the table.
			p := int32(k % int64(g.cfg.Partitions))
			for range 8 {
				nk := g.keyIn(ts, p)
				if _, taken := ts.rows[nk]; !taken && nk%int64(g.cfg.Partitions) == int64(p) {
					c.After[0] = nk
					break
				}
			}
		}
		delete(ts.rows, k)
		ts.rows[c.After.key()] = c.After
	}
	return c
}

// newRow is a new row of ts with key k, inserted at at.
func (g *Generator) newRow(ts *tableState, k int64, at time.Time) Row {
	switch ts.t.Name {
	case TableOrders:
		return Row{k, g.userID(), 1 + g.rng.Int64N(int64(Regions)), orderStatus[0], g.amount(), at, at}
	case TableUsers:
		return Row{k, "user-" + strconv.FormatInt(k, 10), userLevels[0], 1 + g.rng.Int64N(int64(Regions)), at, at}
	case TableRegions:
		c := cities[(k-1)%int64(Regions)]
		return Row{k, c.province, c.city, at}
	}
	panic("cdcgen: no keyed table " + ts.t.Name)
}

// updated is row changed at at: a copy, so that events keep their images.
func (g *Generator) updated(ts *tableState, row Row, at time.Time) Row {
	r := slices.Clone(row)
	switch ts.t.Name {
	case TableOrders:
		i := slices.Index(orderStatus, r[3].(string))
		switch {
		case g.rng.IntN(20) == 0:
			r[3] = "cancelled"
		case i >= 0 && i < len(orderStatus)-1:
			r[3] = orderStatus[i+1]
		}
		if g.rng.IntN(5) == 0 {
			r[4] = g.amount()
		}
		if g.rng.IntN(10) == 0 {
			r[2] = 1 + g.rng.Int64N(int64(Regions)) // the order moves to another region
		}
		r[6] = at
	case TableUsers:
		r[2] = userLevels[g.rng.IntN(len(userLevels))]
		if g.rng.IntN(4) == 0 {
			r[3] = 1 + g.rng.Int64N(int64(Regions))
		}
		r[5] = at
	case TableRegions:
		// Mostly a touch; now and then the city's name switches between
		// its short and its long form.
		if g.rng.IntN(10) == 0 {
			c := cities[(r.key()-1)%int64(Regions)].city
			if r[2] == c {
				c += " City"
			}
			r[2] = c
		}
		r[3] = at
	}
	return r
}

// appendEvent is an insert of ad events.
func (g *Generator) appendEvent(ts *tableState, ev Event) Event {
	ev.Op = OpInsert
	g.adSeq++
	id := g.adSeq
	ev.Partition = int32(id % int64(g.cfg.Partitions))
	uid := g.userID()
	// A user has two devices.
	row := Row{id, ev.Time.Truncate(time.Millisecond), uid,
		"d-" + strconv.FormatInt(uid*2+int64(g.rng.IntN(2)), 16), 100 + g.rng.Int64N(50), adActions[g.rng.IntN(len(adActions))],
		`{"slot":"` + []string{"banner", "feed", "splash"}[g.rng.IntN(3)] + `","price":"0.` + strconv.Itoa(10+g.rng.IntN(90)) + `"}`}
	ev.Changes = []Change{{After: row}}
	ts.rows[id] = row
	g.changes++
	ts.changes++
	return ev
}

func (g *Generator) userID() int64 { return 1 + g.rng.Int64N(int64(g.cfg.Keys)) }

// amount is a decimal(10,2) text.
func (g *Generator) amount() string {
	c := 100 + g.rng.IntN(99900)
	return strconv.Itoa(c/100) + "." + fmt.Sprintf("%02d", c%100)
}

// Replay is what table name holds so far: for a keyed table its final
// state, for an append-only one every row; sorted by key (nil for a table
// that is not generated). Rows are shared with the generator: do not
// modify them.
func (g *Generator) Replay(name string) []Row {
	ts := g.byName[name]
	if ts == nil {
		return nil
	}
	keys := make([]int64, 0, len(ts.rows))
	for k := range ts.rows {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Row, len(keys))
	for i, k := range keys {
		out[i] = ts.rows[k]
	}
	return out
}

// GeneratedTables are the tables the generator writes, in Config order.
func (g *Generator) GeneratedTables() []*Table {
	out := make([]*Table, len(g.tables))
	for i, ts := range g.tables {
		out[i] = ts.t
	}
	return out
}
