package verify

import (
	"context"
	"database/sql"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/floe-lake/floe/internal/benchutil"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/source/mysql"
)

// cost is what one measured phase used.
type cost struct {
	cpu, wall time.Duration
	heap      uint64 // peak Go heap in use
	rss       int64  // peak resident memory of the process
}

// measure runs fn n times and returns its cost per run: CPU (user+system
// of the whole process), wall time, and the peaks of the Go heap in use
// and of the process's resident memory, from a collected heap and
// memory given back to the OS.
func measure(b *testing.B, n int, fn func()) cost {
	b.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	benchutil.ResetPeakRSS()
	cpu, wall := benchutil.CPUTime(), time.Now()
	heap := peakHeap(func() {
		for range n {
			fn()
		}
	})
	return cost{
		cpu:  (benchutil.CPUTime() - cpu) / time.Duration(n),
		wall: time.Since(wall) / time.Duration(n),
		heap: heap,
		rss:  benchutil.PeakRSS(),
	}
}

// BenchmarkVerifyMySQL measures `floe verify mysql` on a 1,000,000-row
// MariaDB table (id INT primary key, name, DECIMAL price, DATETIME(6),
// a 150-byte pad: about 200 MB) captured by the CDC source into a local
// warehouse, beside the two reads it cannot do without: a plain SELECT *
// of the table through database/sql (every value read as bytes) and a
// plain iceberg-go scan of the mirror to Arrow. It reports each one's CPU
// seconds (user+system of the process: the CDC source idles beside them,
// following the shared binlog), wall seconds, peak Go heap and peak RSS,
// and the check's CPU as a ratio of each read and of both. It asserts
// nothing about time.
func BenchmarkVerifyMySQL(b *testing.B) {
	if testing.Short() {
		b.Skip("needs MariaDB; skipped under -short")
	}
	const rows = 1_000_000
	dsn := testenv.MariaDB(b)
	db, name := testenv.MariaDBDatabase(b, dsn, "floe_verify_bench_", 4)
	if _, err := db.Exec(`CREATE TABLE big (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(10,2), seen DATETIME(6), pad VARCHAR(200))`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO big SELECT seq, CONCAT('item ', seq), seq % 10000 / 100, '2026-03-01 00:00:00' + INTERVAL seq SECOND, REPEAT('x', 150) FROM seq_1_to_1000000`); err != nil {
		b.Fatal(err)
	}
	cat := tabletest.OpenSQLite(b)
	cfg := mysql.DefaultConfig()
	cfg.ID, cfg.DSN, cfg.Include, cfg.PositionCommitInterval = "mysql_"+name, dsn, []string{name + `\.big`}, time.Second
	cfg.ServerID = testServerID()
	start := time.Now()
	runMySQL(b, cat, &cfg)
	ctx := context.Background()
	mo := MySQLOptions{Wait: 15 * time.Minute}
	opts := Options{Logger: quietLogger()}
	// The first check waits for the snapshot to be ingested.
	rep, err := MySQL(ctx, cat, cfg, mo, opts)
	if err != nil {
		b.Fatal(err)
	}
	if !rep.Equal() || rep.Tables[0].RowsCompared != rows {
		b.Fatalf("want %d equal rows, got %d rows, %d differences", rows, rep.Tables[0].RowsCompared, rep.Differences())
	}
	b.Logf("ingested and checked once in %s", time.Since(start).Round(time.Second))
	tbl := tabletest.Load(b, cat, name+".big")

	b.ResetTimer()
	check := measure(b, b.N, func() {
		rep, err := MySQL(ctx, cat, cfg, mo, opts)
		if err != nil {
			b.Fatal(err)
		}
		if !rep.Equal() || rep.Tables[0].RowsCompared != rows {
			b.Fatalf("verify: %d rows compared, %d differences", rep.Tables[0].RowsCompared, rep.Differences())
		}
	})
	b.StopTimer()
	sel := measure(b, b.N, func() {
		n, err := selectAll(ctx, db, "SELECT * FROM big")
		if err != nil || n != rows {
			b.Fatalf("select: %v, %d rows", err, n)
		}
	})
	scan := measure(b, b.N, func() {
		_, recs, err := tbl.Scan().ToArrowRecords(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for rec, err := range recs {
			if err != nil {
				b.Fatal(err)
			}
			n += rec.NumRows()
			rec.Release()
		}
		if n != rows {
			b.Fatalf("scan: %d rows", n)
		}
	})
	for _, m := range []struct {
		name string
		c    cost
	}{{"verify", check}, {"select", sel}, {"scan", scan}} {
		b.ReportMetric(m.c.cpu.Seconds(), m.name+"-cpu-s")
		b.ReportMetric(m.c.wall.Seconds(), m.name+"-wall-s")
		b.ReportMetric(float64(m.c.heap)/(1<<20), m.name+"-heap-MiB")
		b.ReportMetric(float64(m.c.rss)/(1<<20), m.name+"-rss-MiB")
	}
	b.ReportMetric(check.cpu.Seconds()/sel.cpu.Seconds(), "verify/select-cpu")
	b.ReportMetric(check.cpu.Seconds()/scan.cpu.Seconds(), "verify/scan-cpu")
	b.ReportMetric(check.cpu.Seconds()/(sel.cpu+scan.cpu).Seconds(), "verify/(select+scan)-cpu")
	b.ReportMetric(float64(check.heap)/float64(max(sel.heap, scan.heap)), "verify/max-read-heap")
}

// selectAll reads every row of q as bytes and counts them.
func selectAll(ctx context.Context, db *sql.DB, q string) (int, error) {
	rs, err := db.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	defer func() { _ = rs.Close() }()
	cols, err := rs.Columns()
	if err != nil {
		return 0, err
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rs.Next() {
		if err := rs.Scan(ptrs...); err != nil {
			return n, err
		}
		n++
	}
	return n, rs.Err()
}
