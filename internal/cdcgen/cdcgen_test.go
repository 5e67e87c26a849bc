package cdcgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func generate(t *testing.T, cfg Config) (*Generator, []Event) {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for {
		ev, ok := g.Next()
		if !ok {
			return g, evs
		}
		evs = append(evs, ev)
	}
}

// with is DefaultConfig with c's seed, changes, keys and partitions.
func with(c Config) Config {
	d := DefaultConfig()
	d.Seed, d.Changes, d.Keys = c.Seed, c.Changes, c.Keys
	if c.Partitions > 0 {
		d.Partitions = c.Partitions
	}
	return d
}

// TestDeterministic: one seed, one stream, byte for byte; another seed,
// another stream.
func TestDeterministic(t *testing.T) {
	render := func(seed uint64) string {
		_, evs := generate(t, with(Config{Seed: seed, Changes: 3000, Keys: 200}))
		var b bytes.Buffer
		for _, ev := range evs {
			for _, f := range []string{FormatCanal, FormatDebezium} {
				recs, err := Encode(f, ev)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					fmt.Fprintf(&b, "%d %s %s\n", r.Partition, r.Key, r.Value)
				}
			}
		}
		return b.String()
	}
	a, b := render(7), render(7)
	if a != b {
		t.Fatal("the same seed gave two streams")
	}
	if render(8) == a {
		t.Fatal("two seeds gave one stream")
	}
}

// TestStreamCovers: the stream has what a mirror must handle — inserts,
// updates, deletes, re-inserts of deleted keys, key changes, multi-row
// events, DDL — every row in its key's partition, and counts Changes
// row changes.
func TestStreamCovers(t *testing.T) {
	cfg := with(Config{Seed: 3, Changes: 20000, Keys: 500, Partitions: 3})
	g, evs := generate(t, cfg)
	seen := map[string]int{}
	deleted := map[string]bool{}
	n := 0
	for _, ev := range evs {
		if ev.DDL != "" {
			seen["ddl"]++
			continue
		}
		n += len(ev.Changes)
		if len(ev.Changes) > 1 {
			seen["multi-row"]++
		}
		for _, c := range ev.Changes {
			r := c.After
			if r == nil {
				r = c.Before
			}
			if ev.Table.Keyed && r.key()%3 != int64(ev.Partition) {
				t.Fatalf("event %d: key %d in partition %d", ev.Seq, r.key(), ev.Partition)
			}
			k := fmt.Sprint(ev.Table.Name, r.key())
			switch {
			case ev.Op == OpInsert && deleted[k]:
				seen["re-insert"]++
			case ev.Op == OpUpdate && c.Before.key() != c.After.key():
				seen["key change"]++
				deleted[fmt.Sprint(ev.Table.Name, c.Before.key())] = true
			}
			if ev.Op == OpDelete {
				deleted[k] = true
			}
			seen[ev.Table.Name+" "+string(ev.Op)]++
		}
	}
	perTable := 0
	for _, tbl := range g.GeneratedTables() {
		perTable += g.TableChanges(tbl.Name)
	}
	if n != cfg.Changes || g.Changes() != cfg.Changes || perTable != cfg.Changes {
		t.Errorf("%d changes (generator: %d, by table: %d), want %d", n, g.Changes(), perTable, cfg.Changes)
	}
	for _, want := range []string{"ddl", "multi-row", "re-insert", "key change", "orders insert", "orders update", "orders delete",
		"users insert", "users update", "users delete", "regions insert", "ad_events insert"} {
		if seen[want] == 0 {
			t.Errorf("no %s in the stream: %v", want, seen)
		}
	}
	if got := len(g.Replay(TableRegions)); got != Regions {
		t.Errorf("%d regions, want %d", got, Regions)
	}
	t.Logf("%v", seen)
}

// TestEncodedStreamReplays applies the encoded records as a mirror would,
// from nothing but their JSON, and compares with Replay: the encoders
// carry every change.
func TestEncodedStreamReplays(t *testing.T) {
	for _, format := range []string{FormatCanal, FormatDebezium} {
		t.Run(format, func(t *testing.T) {
			g, evs := generate(t, with(Config{Seed: 5, Changes: 20000, Keys: 300, Partitions: 2}))
			tables := Tables()
			mirror := map[string]map[string]string{} // table → key → row JSON
			for _, ev := range evs {
				recs, err := Encode(format, ev)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					if r.Value == nil {
						continue // tombstone
					}
					applyRecord(t, format, tables, mirror, r.Value)
				}
			}
			for _, tbl := range g.GeneratedTables() {
				if !tbl.Keyed {
					continue
				}
				var want []string
				for _, r := range g.Replay(tbl.Name) {
					want = append(want, string(JSON(tbl, r)))
				}
				var got []string
				for _, v := range mirror[tbl.Name] {
					got = append(got, v)
				}
				slices.Sort(want)
				slices.Sort(got)
				if !slices.Equal(want, got) {
					t.Errorf("%s: the mirror has %d rows, the replay %d", tbl.Name, len(got), len(want))
				}
			}
		})
	}
}

// applyRecord applies one Canal or Debezium message to mirror, rendering
// rows as JSON renders them.
func applyRecord(t *testing.T, format string, tables map[string]*Table, mirror map[string]map[string]string, value []byte) {
	t.Helper()
	put := func(tbl *Table, img map[string]any) {
		if mirror[tbl.Name] == nil {
			mirror[tbl.Name] = map[string]string{}
		}
		mirror[tbl.Name][fmt.Sprint(img[tbl.Key()])] = string(JSON(tbl, imageRow(t, format, tbl, img)))
	}
	del := func(tbl *Table, key any) { delete(mirror[tbl.Name], fmt.Sprint(key)) }
	switch format {
	case FormatCanal:
		var m struct {
			Data  []map[string]any
			Old   []map[string]any
			Type  string
			IsDdl bool
			Table string
		}
		if err := json.Unmarshal(value, &m); err != nil {
			t.Fatal(err)
		}
		tbl := tables[m.Table]
		if m.IsDdl || !tbl.Keyed {
			return
		}
		for i, d := range m.Data {
			switch m.Type {
			case "INSERT":
				put(tbl, d)
			case "UPDATE":
				if old, ok := m.Old[i][tbl.Key()]; ok {
					del(tbl, old)
				}
				put(tbl, d)
			case "DELETE":
				del(tbl, d[tbl.Key()])
			}
		}
	case FormatDebezium:
		var e struct {
			Before, After map[string]any
			Op            string
			Source        struct{ Table string }
		}
		if err := json.Unmarshal(value, &e); err != nil {
			t.Fatal(err)
		}
		tbl := tables[e.Source.Table]
		if !tbl.Keyed {
			return
		}
		switch e.Op {
		case "c", "u", "r":
			put(tbl, e.After)
		case "d":
			del(tbl, e.Before[tbl.Key()])
		}
	}
}

// imageRow converts a decoded row image back into a Row.
func imageRow(t *testing.T, format string, tbl *Table, img map[string]any) Row {
	t.Helper()
	r := make(Row, len(tbl.Columns))
	for i, c := range tbl.Columns {
		v := img[c.Name]
		switch c.Kind {
		case Long:
			var n int64
			_, err := fmt.Sscan(fmt.Sprint(v), &n)
			if err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			r[i] = n
		case Time:
			if format == FormatCanal {
				tm, err := time.Parse("2006-01-02 15:04:05.000-07:00", v.(string))
				if err != nil {
					t.Fatal(err)
				}
				r[i] = tm
			} else {
				r[i] = time.UnixMilli(int64(v.(float64)))
			}
		default:
			r[i] = v.(string)
		}
	}
	return r
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Tables: []string{"nope"}}, `unknown table "nope"`},
		{Config{Keys: -1}, "keys"},
		{Config{MultiRow: 2}, "between 0 and 1"},
	} {
		_, err := New(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", c.cfg, err, c.want)
		}
	}
	if _, err := Encode("avro", Event{}); err == nil {
		t.Error("Encode(avro): no error")
	}
}

// TestInitialLoad: with LoadUsers the stream starts with every region and
// every user inserted, marked Load, in their keys' partitions.
func TestInitialLoad(t *testing.T) {
	cfg := with(Config{Seed: 9, Changes: 5000, Keys: 1200, Partitions: 3})
	cfg.LoadUsers = true
	_, evs := generate(t, cfg)
	loaded := map[string]int{}
	i := 0
	for ; i < len(evs) && evs[i].Load; i++ {
		ev := evs[i]
		for _, c := range ev.Changes {
			if ev.Op != OpInsert || c.After.key()%3 != int64(ev.Partition) {
				t.Fatalf("load event %d: %s of key %d in partition %d", i, ev.Op, c.After.key(), ev.Partition)
			}
			loaded[ev.Table.Name]++
		}
	}
	if loaded[TableRegions] != Regions || loaded[TableUsers] != 1200 {
		t.Fatalf("the load inserted %v, want %d regions and 1200 users", loaded, Regions)
	}
	for _, ev := range evs[i:] {
		if ev.Load {
			t.Fatalf("event %d is a load event after the load", ev.Seq)
		}
	}
}
