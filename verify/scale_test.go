package verify

import (
	"context"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/source/mysql"
)

// peakHeap samples the heap in use while fn runs.
func peakHeap(fn func()) uint64 {
	var peak uint64
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapInuse)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	fn()
	close(done)
	mu.Lock()
	defer mu.Unlock()
	return peak
}

func TestVerifyScaleMySQL(t *testing.T) {
	if os.Getenv("FLOE_VERIFY_SCALE") == "" {
		t.Skip("set FLOE_VERIFY_SCALE")
	}
	dsn := testenv.MariaDB(t)
	db, name := testenv.MariaDBDatabase(t, dsn, "floe_verify_", 4)
	if _, err := db.Exec(`CREATE TABLE big (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(10,2), seen DATETIME(6), pad VARCHAR(200))`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO big SELECT seq, CONCAT('item ', seq), seq % 10000 / 100, '2026-03-01 00:00:00' + INTERVAL seq SECOND, REPEAT('x', 150) FROM seq_0_to_499999`); err != nil {
		t.Fatal(err)
	}
	cat := tabletest.OpenSQLite(t)
	cfg := mysql.DefaultConfig()
	cfg.ID, cfg.DSN, cfg.Include, cfg.PositionCommitInterval = "mysql_"+name, dsn, []string{name + `\.big`}, time.Second
	runMySQL(t, cat, &cfg)
	// The first run waits for the snapshot to be ingested; the second is
	// measured.
	if _, err := MySQL(context.Background(), cat, cfg, MySQLOptions{Wait: 5 * time.Minute}, Options{Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("heap in use before: %d MiB", ms.HeapInuse>>20)
	var rep *Report
	var err error
	start := time.Now()
	peak := peakHeap(func() {
		rep, err = MySQL(context.Background(), cat, cfg, MySQLOptions{Wait: 5 * time.Minute}, Options{Logger: quietLogger(), Concurrency: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rows %d, differences %d, peak heap in use %d MiB, %s ", rep.Tables[0].RowsCompared, rep.Differences(), peak>>20, time.Since(start))
}
