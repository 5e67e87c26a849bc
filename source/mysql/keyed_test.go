package mysql

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

func kvSpec(name string) table.Spec {
	return table.Spec{
		Name: name,
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "v", Type: "string"},
			{Name: "n", Type: "int"},
		},
		IdentifierFields: []string{"id"},
	}
}

type kvRow struct {
	v string
	n int32
}

func kvChanges(t testing.TB, sc *arrow.Schema, ids []int64, ops []writer.Op, vals []kvRow) arrow.RecordBatch {
	t.Helper()
	rows := make([][]any, len(ids))
	for i, id := range ids {
		rows[i] = []any{id, vals[i].v, vals[i].n}
		if ops[i] == writer.OpDelete {
			rows[i] = []any{id, nil, nil}
		}
	}
	return tabletest.Record(sc, rows...)
}

func scanKV(t testing.TB, cat icecat.Catalog, name string) map[int64]kvRow {
	t.Helper()
	out := map[int64]kvRow{}
	tabletest.Each(t, tabletest.Load(t, cat, name), func(rec arrow.RecordBatch) {
		ids := rec.Column(0).(*array.Int64)
		vs := rec.Column(1).(*array.String)
		ns := rec.Column(2).(*array.Int32)
		for i := 0; i < int(rec.NumRows()); i++ {
			id := ids.Value(i)
			if _, dup := out[id]; dup {
				t.Fatalf("%s: key %d appears twice", name, id)
			}
			out[id] = kvRow{v: vs.Value(i), n: ns.Value(i)}
		}
	})
	return out
}

// keyedWriter is a writer on cat that commits every interval, aborted when
// the test ends.
func keyedWriter(t *testing.T, cat icecat.Catalog, interval time.Duration) *writer.Writer {
	t.Helper()
	cfg := writer.DefaultConfig()
	cfg.CommitInterval = interval
	w := writer.New(cat, cfg, writer.Options{})
	t.Cleanup(w.Abort)
	return w
}

// openKeyed opens spec on w for source "src", failing the test on error.
func openKeyed(t *testing.T, w *writer.Writer, spec table.Spec, opts writer.KeyedOptions) *writer.KeyedTable {
	t.Helper()
	kt, err := w.OpenKeyed(context.Background(), spec, "src", opts)
	if err != nil {
		t.Fatal(err)
	}
	return kt
}

func TestKeyedTableRandomWithAborts(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	ctx := context.Background()
	cfg := writer.DefaultConfig()
	cfg.CommitInterval = time.Hour
	cfg.MemoryBudget = 4 << 20
	cfg.FlushBytes = 64 << 10
	w := writer.New(cat, cfg, writer.Options{})
	defer w.Abort()
	spec := kvSpec("cdc.kv")
	open := func() *writer.KeyedTable { return openKeyed(t, w, spec, writer.KeyedOptions{MaxDeleteFiles: 3}) }
	kt := open()
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[int64]kvRow{}
	committed := map[int64]kvRow{}
	round := int64(0)
	for it := 0; it < 60; it++ {
		n := 1 + rng.IntN(300)
		ids := make([]int64, n)
		ops := make([]writer.Op, n)
		vals := make([]kvRow, n)
		for i := range ids {
			ids[i] = int64(rng.IntN(500))
			ops[i] = writer.OpUpsert
			if rng.IntN(4) == 0 {
				ops[i] = writer.OpDelete
				delete(model, ids[i])
				continue
			}
			vals[i] = kvRow{v: fmt.Sprintf("v%d-%d", it, i), n: int32(rng.IntN(1000))}
			model[ids[i]] = vals[i]
		}
		round++
		rec := kvChanges(t, kt.Schema(), ids, ops, vals)
		if err := kt.Apply(writer.Changes{Record: rec, Ops: ops, Next: table.Positions{"p": round}}); err != nil {
			t.Fatal(err)
		}
		switch rng.IntN(4) {
		case 0:
			if err := kt.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			committed = copyKV(model)
			if got := scanKV(t, cat, spec.Name); !equalKV(got, committed) {
				t.Fatalf("iteration %d: table has %d rows, model %d", it, len(got), len(committed))
			}
		case 1:
			// Crash: drop what was not committed, reopen from the table.
			kt.Abort()
			kt = open()
			model = copyKV(committed)
			p := kt.Positions()["p"]
			round = p
		}
	}
	if err := kt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := scanKV(t, cat, spec.Name); !equalKV(got, model) {
		t.Fatalf("final: table has %d rows, model %d", len(got), len(model))
	}
	tbl := tabletest.Load(t, cat, spec.Name)
	ops := map[string]int{}
	for _, s := range tbl.Metadata().Snapshots() {
		ops[s.Summary.Properties[table.PropOperation]+"/"+string(s.Summary.Operation)]++
	}
	if ops["maintain/replace"] == 0 {
		t.Errorf("no maintenance snapshot: %v", ops)
	}
	t.Logf("final table: %d rows; snapshots %v", len(model), ops)
}

func copyKV(m map[int64]kvRow) map[int64]kvRow {
	out := make(map[int64]kvRow, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func equalKV(a, b map[int64]kvRow) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

var _ = icetable.MainBranch

// TestKeyedChangelog: package reader's changelog of a keyed table's row
// deltas is the change stream — updates as DELETE of the old image plus
// INSERT of the new, deletes as DELETE — and delete-file maintenance
// (a replace snapshot) contributes nothing, so aggregates can retract.
func TestKeyedChangelog(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	ctx := context.Background()
	w := keyedWriter(t, cat, time.Hour)
	spec := kvSpec("cdc.cl")
	kt := openKeyed(t, w, spec, writer.KeyedOptions{MaxDeleteFiles: 1})
	defer kt.Abort()
	apply := func(p int64, ids []int64, ops []writer.Op, vals []kvRow) int64 {
		t.Helper()
		if err := kt.Apply(writer.Changes{Record: kvChanges(t, kt.Schema(), ids, ops, vals), Ops: ops, Next: table.Positions{"p": p}}); err != nil {
			t.Fatal(err)
		}
		if err := kt.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		r, err := reader.New(cat, spec.Name, reader.Config{Mode: reader.ModeChangelog})
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := r.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return reader.Current(tbl)
	}
	up, del := writer.OpUpsert, writer.OpDelete
	s1 := apply(1, []int64{1, 2, 3, 4}, []writer.Op{up, up, up, up}, []kvRow{{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}})
	// Insert 5, update 2 twice (only the last image counts), delete 3.
	apply(2, []int64{5, 2, 2, 3}, []writer.Op{up, up, up, del}, []kvRow{{"e", 5}, {"x", 20}, {"b2", 200}, {}})
	// Update 4, delete 5 (inserted one commit before), and maintenance
	// merges the delete files after each commit (MaxDeleteFiles 1).
	s3 := apply(3, []int64{4, 5}, []writer.Op{up, del}, []kvRow{{"d2", 40}, {}})

	r, err := reader.New(cat, spec.Name, reader.Config{Mode: reader.ModeChangelog})
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.Changes(ctx, s1, s3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	sum := int64(0)
	for rec, err := range st.Records() {
		if err != nil {
			t.Fatal(err)
		}
		ids := rec.Column(0).(*array.Int64)
		ns := rec.Column(2).(*array.Int32)
		ct := rec.Column(3).(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			got = append(got, fmt.Sprintf("%s %d/%d", ct.Value(i), ids.Value(i), ns.Value(i)))
			if ct.Value(i) == reader.ChangeInsert {
				sum += int64(ns.Value(i))
			} else {
				sum -= int64(ns.Value(i))
			}
		}
		rec.Release()
	}
	sort.Strings(got)
	want := []string{"DELETE 2/2", "DELETE 3/3", "DELETE 4/4", "DELETE 5/5", "INSERT 2/200", "INSERT 4/40", "INSERT 5/5"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("changelog:\n got %v\nwant %v", got, want)
	}
	// sum(n) retracts: 1+2+3+4 → 1+200+40 is a change of 231.
	if sum != 231 {
		t.Fatalf("sum of changes = %d, want 231", sum)
	}
}

// TestKeyedPositionOnlyCommit: a table whose positions move without row
// changes commits them alone after PositionCommitInterval.
func TestKeyedPositionOnlyCommit(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	w := keyedWriter(t, cat, time.Second)
	kt := openKeyed(t, w, kvSpec("cdc.quiet"), writer.KeyedOptions{PositionCommitInterval: time.Millisecond})
	defer kt.Abort()
	if err := kt.Apply(writer.Changes{Next: table.Positions{"p": 42}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		tbl := tabletest.Load(t, cat, "cdc.quiet")
		pm, err := table.CurrentPositions(tbl)
		if err != nil {
			t.Fatal(err)
		}
		if pm["src"]["p"] == 42 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("positions not committed: %v", pm)
		}
	}
}

// TestKeyedForeignWriter: when another writer adds files, the next commit
// fails with ErrKeyIndexStale and commits nothing; reopening rebuilds the
// index from the table, foreign rows included, and upserts replace them.
func TestKeyedForeignWriter(t *testing.T) {
	cat := tabletest.OpenSQLite(t)
	ctx := context.Background()
	w := keyedWriter(t, cat, time.Hour)
	spec := kvSpec("cdc.foreign")
	kt := openKeyed(t, w, spec, writer.KeyedOptions{})
	up := []writer.Op{writer.OpUpsert}
	apply := func(kt *writer.KeyedTable, p, id int64, v string) error {
		if err := kt.Apply(writer.Changes{Record: kvChanges(t, kt.Schema(), []int64{id}, up, []kvRow{{v, 1}}), Ops: up, Next: table.Positions{"p": p}}); err != nil {
			return err
		}
		return kt.Commit(ctx)
	}
	if err := apply(kt, 1, 1, "ours"); err != nil {
		t.Fatal(err)
	}
	// Another engine appends key 2 (and a duplicate of key 1).
	tbl := tabletest.Load(t, cat, spec.Name)
	rec := kvChanges(t, kt.Schema(), []int64{2, 1}, []writer.Op{writer.OpUpsert, writer.OpUpsert}, []kvRow{{"theirs", 2}, {"dup", 3}})
	tabletest.Append(t, tbl, rec)
	if err := apply(kt, 2, 3, "x"); !errors.Is(err, writer.ErrKeyIndexStale) {
		t.Fatalf("commit after a foreign append: %v, want ErrKeyIndexStale", err)
	}
	kt.Abort()
	kt = openKeyed(t, w, spec, writer.KeyedOptions{})
	defer kt.Abort()
	if err := apply(kt, 2, 2, "replaced"); err != nil {
		t.Fatal(err)
	}
	got := scanKV(t, cat, spec.Name) // fails on a duplicate key
	if len(got) != 2 || got[2].v != "replaced" {
		t.Fatalf("table after reopening: %v", got)
	}
}
