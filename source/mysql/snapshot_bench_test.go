package mysql

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/benchutil"
	"github.com/floe-lake/floe/internal/progress"
	"github.com/floe-lake/floe/writer"
)

// BenchmarkSnapshotDecode reads the 500,000 rows of BenchmarkSnapshot's
// table into Arrow batches and drops them (no writer): the source's own
// CPU per row. database/sql is the read before this session's change
// (Scan into sql.RawBytes, then decodeText), go-mysql the snapshot's read
// now (rowSink).
func BenchmarkSnapshotDecode(b *testing.B) {
	dsn := mariaDSN(b)
	const rows = 500000
	db, name := testDB(b, dsn)
	mustExec(b, db, benchSchema)
	fillBench(b, db, 0, rows)
	r, t, def := benchRun(b, dsn, name)
	sels, query := selectColumns(def, t.targets)
	run := func(b *testing.B, read func() int64) {
		for range b.N {
			cpu0, _ := benchutil.ProcessCPU()
			if n := read(); n != rows {
				b.Fatalf("read %d rows, want %d", n, rows)
			}
			cpu1, _ := benchutil.ProcessCPU()
			b.ReportMetric(float64(rows)/(cpu1-cpu0).Seconds(), "rows/cpu-s")
		}
	}
	b.Run("database/sql", func(b *testing.B) {
		run(b, func() int64 {
			rs, err := db.Query(query)
			if err != nil {
				b.Fatal(err)
			}
			defer rs.Close() //nolint:errcheck // bench
			raw := make([]sql.RawBytes, len(sels))
			ptrs := make([]any, len(sels))
			for i := range raw {
				ptrs[i] = &raw[i]
			}
			bld := array.NewRecordBuilder(memory.DefaultAllocator, t.schema)
			defer bld.Release()
			vals := make([]value, len(t.targets))
			var n, batch int64
			for rs.Next() {
				if err := rs.Scan(ptrs...); err != nil {
					b.Fatal(err)
				}
				for i := range vals {
					vals[i] = value{}
				}
				for i, s := range sels {
					if raw[i] != nil {
						if err := decodeText(raw[i], s.kind, &vals[s.target]); err != nil {
							b.Fatal(err)
						}
					}
				}
				for i := range t.targets {
					if err := prepare(&vals[i], &t.targets[i]); err != nil {
						b.Fatal(err)
					}
					appendValue(bld.Field(i), &vals[i])
				}
				n++
				if batch++; batch == snapshotBatchRows {
					bld.NewRecordBatch().Release()
					batch = 0
				}
			}
			bld.NewRecordBatch().Release()
			return n
		})
	})
	b.Run("go-mysql", func(b *testing.B) {
		run(b, func() int64 {
			c, err := r.dialSnapshot(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			defer c.close()
			meter := progress.NewMeter(progress.MeterOptions{Label: "bench", Now: time.Now})
			s := r.newRowSink(t, sels, 0, meter, &sync.Mutex{}, &sync.Mutex{})
			defer s.release()
			s.apply = func(ch writer.Changes) error { ch.Record.Release(); return nil }
			if err := c.stream(query, s.row); err != nil {
				b.Fatal(err)
			}
			if err := s.flush(); err != nil {
				b.Fatal(err)
			}
			return s.n
		})
	})
}

// benchRun is a run connected to the test server with the captured table
// dbName.ev, without a writer.
func benchRun(b *testing.B, dsn, dbName string) (*run, *capTable, *tableDef) {
	b.Helper()
	src, err := New(testConfig(dsn, dbName), Options{})
	if err != nil {
		b.Fatal(err)
	}
	r := &run{s: src, cfg: &src.cfg, log: src.log}
	if err := r.connect(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.db.Close() })
	defs, _, err := describeTables(context.Background(), r.db, [][2]string{{dbName, "ev"}})
	if err != nil || defs[dbName+".ev"] == nil {
		b.Fatalf("describe: %v", err)
	}
	def := defs[dbName+".ev"]
	sc, err := def.spec("b.ev").IcebergSchema()
	if err != nil {
		b.Fatal(err)
	}
	asc, err := icetable.SchemaToArrowSchema(sc, nil, true, false)
	if err != nil {
		b.Fatal(err)
	}
	t := &capTable{db: dbName, tbl: "ev", full: dbName + ".ev", name: "b.ev", schema: asc, targets: targetsOf(asc), keyNames: def.PK}
	return r, t, def
}
