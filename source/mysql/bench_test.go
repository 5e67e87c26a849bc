package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/internal/benchutil"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// Benchmarks of the source with the writer, against the MariaDB of
// integration/mariadb.sh and a local warehouse. They report changed rows
// per CPU-second of this process (MariaDB's own CPU is not counted) and
// per wall second; they assert nothing about time.
//
//	eval $(integration/mariadb.sh start)
//	go test ./source/mysql -run '^$' -bench 'Snapshot|Stream' -benchtime 1x

const benchSchema = `CREATE TABLE ev (
	id BIGINT PRIMARY KEY, user_id INT NOT NULL, kind ENUM('view','click','buy') NOT NULL,
	amount DECIMAL(12,2), label VARCHAR(40), at DATETIME(6) NOT NULL, flags SET('a','b','c'), score DOUBLE)`

// fillBench inserts rows [from, to) in multi-row statements.
func fillBench(b *testing.B, db *sql.DB, from, to int) {
	b.Helper()
	rng := rand.New(rand.NewPCG(uint64(from), 1))
	const per = 2000
	for lo := from; lo < to; lo += per {
		var sb strings.Builder
		sb.WriteString("INSERT INTO ev VALUES ")
		for i := lo; i < min(lo+per, to); i++ {
			if i > lo {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d,%d,'%s',%d.%02d,'label-%d','2026-01-01 00:00:00.%06d','%s',%g)",
				i, rng.IntN(100000), []string{"view", "click", "buy"}[rng.IntN(3)], rng.IntN(10000), rng.IntN(100),
				rng.IntN(1000), rng.IntN(1000000), []string{"", "a", "a,c"}[rng.IntN(3)], rng.Float64())
		}
		mustExec(b, db, sb.String())
	}
}

// masterPos is the server's binlog position, encoded.
func masterPos(b *testing.B, db *sql.DB) int64 {
	b.Helper()
	rows, err := db.Query("SHOW MASTER STATUS")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close() //nolint:errcheck // bench helper
	cols, _ := rows.Columns()
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if !rows.Next() {
		b.Fatal("no master status")
	}
	if err := rows.Scan(ptrs...); err != nil {
		b.Fatal(err)
	}
	seq, err := fileSeq(string(vals[0]))
	if err != nil {
		b.Fatal(err)
	}
	off, _ := strconv.Atoi(string(vals[1]))
	return binlogPos{seq: seq, offset: uint32(off)}.encode()
}

// waitPosition waits until the Iceberg table has committed position want.
func waitPosition(b *testing.B, cat icecat.Catalog, name string, want int64) {
	b.Helper()
	ident, _ := table.ParseIdent(name)
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		tbl, err := cat.LoadTable(context.Background(), ident)
		if err != nil {
			continue
		}
		pm, err := table.CurrentPositions(tbl)
		if err == nil && pm["mysql"][PartitionBinlog] >= want {
			return
		}
	}
	b.Fatalf("%s did not reach position %s", name, decodePos(want))
}

// measure runs the source until the table reaches the server's current
// position and reports rows per CPU-second and per second.
func measure(b *testing.B, cat icecat.Catalog, db *sql.DB, cfg Config, name string, rows int) {
	b.Helper()
	want := masterPos(b, db)
	src, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	cpu0, ok := benchutil.ProcessCPU()
	start := time.Now()
	stop := runSupervised(b, cat, src, benchWriterConfig(), writer.Hooks{})
	waitPosition(b, cat, name, want)
	wall := time.Since(start)
	cpu1, _ := benchutil.ProcessCPU()
	if err := stop(); err != nil {
		b.Fatal(err)
	}
	if ok {
		b.ReportMetric(float64(rows)/(cpu1-cpu0).Seconds(), "rows/cpu-s")
	}
	b.ReportMetric(float64(rows)/wall.Seconds(), "rows/s")
}

func benchWriterConfig() writer.Config {
	w := writer.DefaultConfig()
	w.CommitInterval = time.Second
	return w
}

// BenchmarkSnapshot copies a 500,000-row table, on the default
// snapshot-parallelism connections or on FLOE_MYSQL_BENCH_PARALLELISM.
func BenchmarkSnapshot(b *testing.B) {
	dsn := mariaDSN(b)
	const rows = 500000
	for range b.N {
		db, name := testDB(b, dsn)
		mustExec(b, db, benchSchema)
		fillBench(b, db, 0, rows)
		cat := tabletest.OpenSQLite(b)
		cfg := testConfig(dsn, name)
		if p, err := strconv.Atoi(os.Getenv("FLOE_MYSQL_BENCH_PARALLELISM")); err == nil {
			cfg.SnapshotParallelism = p
		}
		measure(b, cat, db, cfg, name+".ev", rows)
	}
}

// streamSetup creates the table with seed rows and captures it, so that
// what follows is streamed from the binlog.
func streamSetup(b *testing.B, dsn string, seed int) (*sql.DB, string, icecat.Catalog) {
	db, name := testDB(b, dsn)
	mustExec(b, db, benchSchema)
	fillBench(b, db, 0, seed)
	cat := tabletest.OpenSQLite(b)
	src, err := New(testConfig(dsn, name), Options{})
	if err != nil {
		b.Fatal(err)
	}
	want := masterPos(b, db)
	stop := runSupervised(b, cat, src, benchWriterConfig(), writer.Hooks{})
	waitPosition(b, cat, name+".ev", want)
	if err := stop(); err != nil {
		b.Fatal(err)
	}
	return db, name, cat
}

// BenchmarkStreamInsert streams 300,000 inserted rows.
func BenchmarkStreamInsert(b *testing.B) {
	dsn := mariaDSN(b)
	const rows = 300000
	for range b.N {
		db, name, cat := streamSetup(b, dsn, 1)
		fillBench(b, db, 1, rows+1)
		measure(b, cat, db, testConfig(dsn, name), name+".ev", rows)
	}
}

// BenchmarkStreamUpdate streams 500,000 row updates of 10,000 keys (500
// statements updating 1,000 rows each).
func BenchmarkStreamUpdate(b *testing.B) {
	dsn := mariaDSN(b)
	const keys, stmts = 10000, 500
	for range b.N {
		db, name, cat := streamSetup(b, dsn, keys)
		rng := rand.New(rand.NewPCG(7, 7))
		for s := 0; s < stmts; s++ {
			lo := rng.IntN(keys - 1000)
			mustExec(b, db, `UPDATE ev SET amount = amount + 1, label = ?, score = score * 1.5 WHERE id >= ? AND id < ?`, fmt.Sprintf("s%d", s), lo, lo+1000)
		}
		measure(b, cat, db, testConfig(dsn, name), name+".ev", stmts*1000)
	}
}
