package writer_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

const partTable = "cdc.pkv"

// partRow is a row of the partitioned keyed table; region "" is null.
type partRow struct {
	region string
	ts     int64 // microseconds
	v      string
}

func partSpec(partition []table.PartitionField) table.Spec {
	return table.Spec{
		Name: partTable,
		Schema: []table.Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "region", Type: "string"},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "v", Type: "string"},
		},
		Partition:        partition,
		IdentifierFields: []string{"id"},
		Properties:       map[string]string{"write.target-file-size-bytes": "262144"},
	}
}

func partRecord(sc *arrow.Schema, ids []int64, ops []writer.Op, rows []partRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i, id := range ids {
		b.Field(0).(*array.Int64Builder).Append(id)
		r := rows[i]
		if r.region == "" {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(r.region)
		}
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(r.ts))
		if ops[i] == writer.OpDelete {
			b.Field(3).AppendNull()
			continue
		}
		b.Field(3).(*array.StringBuilder).Append(r.v)
	}
	return b.NewRecordBatch()
}

// scanPart reads the table (or the rows filter selects); a key twice fails
// the test.
func scanPart(t *testing.T, tbl *icetable.Table, opts ...icetable.ScanOption) map[int64]partRow {
	t.Helper()
	out := map[int64]partRow{}
	tabletest.Each(t, tbl, func(rec arrow.RecordBatch) {
		ids, regions, ts, vs := rec.Column(0).(*array.Int64), rec.Column(1).(*array.String), rec.Column(2).(*array.Timestamp), rec.Column(3).(*array.String)
		for i := range int(rec.NumRows()) {
			id := ids.Value(i)
			if _, dup := out[id]; dup {
				t.Fatalf("key %d is in the table twice", id)
			}
			r := partRow{ts: int64(ts.Value(i)), v: vs.Value(i)}
			if regions.IsValid(i) {
				r.region = regions.Value(i)
			}
			out[id] = r
		}
	}, opts...)
	return out
}

// checkPartitions checks every live data file's partition values against
// the rows it holds (each row's partition computed with iceberg-go's
// Transform.Apply, a path the writer does not take), and that every
// position-delete file a data file's scan task carries is in the data
// file's partition, and that the scan applies all of them (no deleted row
// resurfaces: scanPart's duplicate check).
func checkPartitions(t *testing.T, ctx context.Context, tbl *icetable.Table) (dataFiles, deleteFiles int) {
	t.Helper()
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spec := tbl.Spec()
	sc := tbl.Schema()
	dels := map[string]bool{}
	for _, task := range tasks {
		df := task.File
		dataFiles++
		if int(df.SpecID()) != spec.ID() {
			t.Errorf("data file %s: spec %d, want %d", df.FilePath(), df.SpecID(), spec.ID())
		}
		for _, d := range task.DeleteFiles {
			dels[d.FilePath()] = true
			if d.SpecID() != df.SpecID() || compaction.PartitionKey(d) != compaction.PartitionKey(df) {
				t.Errorf("delete file %s (partition %v) applies to data file %s of partition %v",
					d.FilePath(), d.Partition(), df.FilePath(), df.Partition())
			}
		}
		// Every physical row of the file must be in its partition.
		raw := icetable.FileScanTask{File: df, Start: 0, Length: df.FileSizeBytes()}
		_, recs, err := tbl.Scan().ReadTasks(ctx, []icetable.FileScanTask{raw})
		if err != nil {
			t.Fatal(err)
		}
		for rec, err := range recs {
			if err != nil {
				t.Fatal(err)
			}
			for i := range int(rec.NumRows()) {
				for _, pf := range spec.Fields() {
					name, _ := sc.FindColumnName(pf.SourceID())
					col := rec.Column(slices.IndexFunc(rec.Schema().Fields(), func(f arrow.Field) bool { return f.Name == name }))
					var lit iceberg.Optional[iceberg.Literal]
					if col.IsValid(i) {
						lit.Valid = true
						switch c := col.(type) {
						case *array.Int64:
							lit.Val = iceberg.NewLiteral(c.Value(i))
						case *array.String:
							lit.Val = iceberg.NewLiteral(c.Value(i))
						case *array.Timestamp:
							lit.Val = iceberg.NewLiteral(iceberg.Timestamp(c.Value(i)))
						default:
							t.Fatalf("column %s: %s", name, col.DataType())
						}
					}
					res := pf.Transform.Apply(lit)
					want := "<nil>"
					if res.Valid {
						want = fmt.Sprint(res.Val.Any())
					}
					if got := fmt.Sprint(df.Partition()[pf.FieldID]); got != want {
						t.Fatalf("data file %s, partition field %s: row %d has %s, the manifest says %s", df.FilePath(), pf.Name, i, want, got)
					}
				}
			}
			rec.Release()
		}
	}
	return dataFiles, len(dels)
}

// TestKeyedPartitioned: keyed tables partitioned by each transform take
// inserts, updates in place and across partitions, and deletes; data
// files and position-delete files carry their partitions; a filtered scan
// (pruned by partition) sees the same rows; reopening rebuilds the index
// from the partitioned files; and the writer's compaction and delete merge
// keep every file in one partition.
func TestKeyedPartitioned(t *testing.T) {
	cases := []struct {
		name      string
		partition []table.PartitionField
		// full: also many small commits compacted, and on MinIO (not
		// under -short).
		full bool
	}{
		{name: "identity", partition: []table.PartitionField{{Column: "region"}}},
		{name: "bucket", partition: []table.PartitionField{{Column: "id", Transform: "bucket[4]"}}},
		{name: "truncate", partition: []table.PartitionField{{Column: "region", Transform: "truncate[1]"}}},
		{name: "year", partition: []table.PartitionField{{Column: "ts", Transform: "year"}}},
		{name: "month", partition: []table.PartitionField{{Column: "ts", Transform: "month"}}},
		{name: "hour", partition: []table.PartitionField{{Column: "ts", Transform: "hour"}}},
		{name: "day+identity+bucket", partition: []table.PartitionField{
			{Column: "ts", Transform: "day"}, {Column: "region"}, {Column: "id", Transform: "bucket[2]"},
		}, full: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, wh := range testenv.Warehouses(t) {
				if wh.Name != "local" && !tc.full {
					continue
				}
				t.Run(wh.Name, func(t *testing.T) {
					testKeyedPartitioned(t, wh.Config, partSpec(tc.partition), tc.full)
				})
			}
		})
	}
}

var partRegions = []string{"eu", "us", "ap", ""}

// partBase is 2025-12-31T00:00Z: rows span two years and months.
var partBase = time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC).UnixMicro()

// randPartRow is a row in one of a few partitions of every spec.
func randPartRow(rng *rand.Rand, v string) partRow {
	days := []int64{0, 1, 15, 40}
	return partRow{
		region: partRegions[rng.IntN(len(partRegions))],
		ts:     partBase + days[rng.IntN(len(days))]*86_400_000_000 + int64(rng.IntN(2))*5*3_600_000_000 + int64(rng.IntN(1000)),
		v:      v,
	}
}

func testKeyedPartitioned(t *testing.T, cfg catalog.Config, spec table.Spec, full bool) {
	ctx := context.Background()
	began := time.Now()
	cat := tabletest.Open(t, cfg)
	reg := prometheus.NewRegistry()
	wcfg := writer.DefaultConfig()
	wcfg.CommitInterval = time.Hour
	w := writer.New(cat, wcfg, writer.Options{Metrics: writer.NewMetrics(reg), Logger: quietLog(t)})
	defer w.Abort()
	opts := writer.KeyedOptions{MaxDeleteFiles: 3, Compaction: compaction.KeyedConfig{MinInputFiles: 3}}
	kt, err := w.OpenKeyed(ctx, spec, "src", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { kt.Abort() }()

	rng := rand.New(rand.NewPCG(1, uint64(len(spec.Partition))))
	want := map[int64]partRow{}
	pos := int64(0)
	type change struct {
		id  int64
		del bool
		row partRow
	}
	apply := func(chs ...change) {
		t.Helper()
		var ids []int64
		var ops []writer.Op
		var rows []partRow
		for _, c := range chs {
			ids = append(ids, c.id)
			if c.del {
				ops = append(ops, writer.OpDelete)
				rows = append(rows, partRow{ts: partBase})
				delete(want, c.id)
				continue
			}
			ops = append(ops, writer.OpUpsert)
			rows = append(rows, c.row)
			want[c.id] = c.row
		}
		pos++
		if err := kt.Apply(writer.Changes{Record: partRecord(kt.Schema(), ids, ops, rows), Ops: ops, Next: table.Positions{"p": pos}}); err != nil {
			t.Fatal(err)
		}
		if err := kt.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check := func(phase string) {
		t.Helper()
		tbl := tabletest.Load(t, cat, partTable)
		got := scanPart(t, tbl)
		if !maps.Equal(got, want) {
			for id, r := range want {
				if got[id] != r {
					t.Errorf("%s: key %d: %+v, want %+v", phase, id, got[id], r)
					break
				}
			}
			for id, r := range got {
				if _, ok := want[id]; !ok {
					t.Errorf("%s: key %d (%+v) should be gone", phase, id, r)
					break
				}
			}
			t.Fatalf("%s: the table holds %d rows, want %d", phase, len(got), len(want))
		}
		data, dels := checkPartitions(t, ctx, tbl)
		// Scans that prune by partition see the same rows. (Not by the
		// nullable region: iceberg-go v0.7.0's row-group filter takes
		// arrow-go's non-null value count for the value count, and so
		// skips a row group whose column is exactly half null.)
		day := partBase + 86_400_000_000
		for _, f := range []struct {
			expr iceberg.BooleanExpression
			keep func(int64, partRow) bool
		}{
			{iceberg.LessThan(iceberg.Reference("id"), int64(50)), func(id int64, _ partRow) bool { return id < 50 }},
			{iceberg.NewAnd(iceberg.GreaterThanEqual(iceberg.Reference("ts"), iceberg.Timestamp(day)),
				iceberg.LessThan(iceberg.Reference("ts"), iceberg.Timestamp(day+86_400_000_000))),
				func(_ int64, r partRow) bool { return r.ts >= day && r.ts < day+86_400_000_000 }},
		} {
			sub := maps.Clone(want)
			maps.DeleteFunc(sub, func(id int64, r partRow) bool { return !f.keep(id, r) })
			if got := scanPart(t, tbl, icetable.WithRowFilter(f.expr)); !maps.Equal(got, sub) {
				t.Fatalf("%s: filter %s: %d rows, want %d", phase, f.expr, len(got), len(sub))
			}
		}
		t.Logf("%s: %d rows in %d data files with %d delete files (%s)", phase, len(want), data, dels, time.Since(began).Round(time.Millisecond))
	}

	// Inserts over every partition, in three commits.
	for c := range int64(3) {
		var chs []change
		for id := c * 100; id < (c+1)*100; id++ {
			chs = append(chs, change{id: id, row: randPartRow(rng, fmt.Sprintf("ins-%d", id))})
		}
		apply(chs...)
	}
	check("insert")
	// Updates in place: the same partition columns, a new value.
	var chs []change
	for id := int64(0); id < 60; id++ {
		r := want[id]
		r.v = fmt.Sprintf("upd-%d", id)
		chs = append(chs, change{id: id, row: r})
	}
	apply(chs...)
	check("update in place")
	// Updates that move rows to other partitions.
	chs = nil
	for id := int64(60); id < 160; id++ {
		r := want[id]
		for r.region == want[id].region || r.ts/86_400_000_000 == want[id].ts/86_400_000_000 {
			r = randPartRow(rng, fmt.Sprintf("move-%d", id))
		}
		chs = append(chs, change{id: id, row: r})
	}
	apply(chs...)
	check("update across partitions")
	// Deletes, one of a key the table does not hold.
	chs = nil
	for id := int64(200); id < 240; id++ {
		chs = append(chs, change{id: id, del: true})
	}
	chs = append(chs, change{id: 10_000, del: true})
	apply(chs...)
	check("delete")
	// Several changes of a key in one batch: moved, updated, deleted;
	// deleted and inserted elsewhere.
	apply(change{id: 5, row: randPartRow(rng, "a")}, change{id: 5, row: randPartRow(rng, "b")}, change{id: 5, del: true},
		change{id: 6, del: true}, change{id: 6, row: randPartRow(rng, "back")}, change{id: 7, row: randPartRow(rng, "x")})
	check("one batch")

	// Reopened: the index is rebuilt from the partitioned files and
	// their position deletes.
	if err := kt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	kt, err = w.OpenKeyed(ctx, spec, "src", opts)
	if err != nil {
		t.Fatal(err)
	}
	if kt.Len() != len(want) {
		t.Fatalf("reopened: %d keys, want %d", kt.Len(), len(want))
	}
	chs = nil
	for id := int64(0); id < 100; id++ {
		chs = append(chs, change{id: id, row: randPartRow(rng, fmt.Sprintf("reopen-%d", id))})
	}
	for id := int64(100); id < 120; id++ {
		chs = append(chs, change{id: id, del: true})
	}
	apply(chs...)
	check("after reopening")

	if !full {
		return
	}
	// Many small commits: the writer compacts each partition's small files
	// and merges the delete files, per partition.
	for round := range 15 {
		chs = nil
		for i := range 10 {
			id := rng.Int64N(320)
			if rng.IntN(4) == 0 {
				chs = append(chs, change{id: id, del: true})
				continue
			}
			chs = append(chs, change{id: id, row: randPartRow(rng, fmt.Sprintf("r%d-%d", round, i))})
		}
		apply(chs...)
	}
	committed := func() float64 {
		return metricValue(t, reg, "floe_writer_keyed_compactions_total", map[string]string{"table": partTable, "result": writer.CompactionCommitted})
	}
	for deadline := time.Now().Add(20 * time.Second); committed() == 0 && time.Now().Before(deadline); {
		apply(change{id: 1, row: randPartRow(rng, "poke")})
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("compaction: %v steps committed after the rounds (%s)", committed(), time.Since(began).Round(time.Millisecond))
	if err := kt.Close(ctx); err != nil {
		t.Fatal(err)
	}
	check("after compaction")
	if failed := metricValue(t, reg, "floe_writer_keyed_compactions_total", map[string]string{"table": partTable, "result": writer.CompactionFailed}); committed() == 0 || failed > 0 {
		t.Errorf("compaction steps: %v committed, %v failed", committed(), failed)
	}
	tbl := tabletest.Load(t, cat, partTable)
	merges := 0
	for _, s := range tbl.Metadata().Snapshots() {
		if n, _ := table.SummaryInt(&s, "removed-position-delete-files"); n > 0 {
			merges++
		}
	}
	if merges == 0 {
		t.Error("no snapshot merged position-delete files")
	}
	kt, err = w.OpenKeyed(ctx, spec, "src", opts)
	if err != nil {
		t.Fatal(err)
	}
	if kt.Len() != len(want) {
		t.Fatalf("reopened after compaction: %d keys, want %d", kt.Len(), len(want))
	}
}
