package integration

import (
	"context"
	"database/sql"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/table"
)

// BenchmarkKeyedScale is issue 17's must-show for keyed tables at scale,
// run by `make bench-keyed` (never by CI: it needs FLOE_BENCH_KEYED=1). For
// a 1M-row MariaDB table and then one of FLOE_BENCH_KEYED_ROWS rows
// (default 10M; 1M alone when it is 1M) it runs `floe ingest` (default
// config, 2 s commits; the keyed writer compacts its table) and `floe
// compact` (the daemon: manifests, expiry, orphans) as a user would, and
// reports:
//
//   - the snapshot load's wall and CPU seconds;
//   - per phase (load, updates, restart), ingest's peak RSS sampled every
//     200 ms and split into anonymous and file-backed pages (the mapped
//     key index, the executable), with the Go heap and the index gauges
//     at that moment (memSampler): where the peak comes from;
//   - FLOE_BENCH_KEYED_RATE (500) single-row updates/s for
//     FLOE_BENCH_KEYED_MINUTES (10): ingest's steady and peak RSS, its
//     CPU-seconds per 10k updates (and the ratio to the 1M-row run of the
//     same invocation), the compaction snapshots committed, and the data
//     and delete files of the table (its one partition) at the end and at
//     most during the run;
//   - restart until visible: SIGKILL, start again (the persistent key
//     index validated and caught up), update one row, and time until a
//     snapshot holding it is committed; then the same after a SIGTERM
//     with the index removed (rebuilt from the table), the baseline;
//   - the mirror check: `floe verify mysql` row for row at the end (a
//     difference fails the benchmark).
//
// Figures are reported, never asserted: the machine is shared. CPU-seconds
// are the comparable figure; wall times move with contention.
// FLOE_BENCH_KEYED_BASELINE=0 skips the 1M-row baseline;
// FLOE_BENCH_KEYED_DIR keeps each run's lake and logs there;
// FLOE_BENCH_KEYED_LOG=1 prints ingest's log after the restart.
func BenchmarkKeyedScale(b *testing.B) {
	if os.Getenv("FLOE_BENCH_KEYED") != "1" {
		b.Skip("set FLOE_BENCH_KEYED=1 (make bench-keyed) to run the keyed-table scale benchmark")
	}
	rows := envInt(b, "FLOE_BENCH_KEYED_ROWS", 10_000_000)
	minutes := envFloat(b, "FLOE_BENCH_KEYED_MINUTES", 10)
	rate := envInt(b, "FLOE_BENCH_KEYED_RATE", 500)
	dsn := testenv.MariaDB(b)
	bin := testenv.FloeBinary(b)
	// The 1M-row run is the baseline of the larger one.
	sizes := []int{rows}
	if rows > 1_000_000 && os.Getenv("FLOE_BENCH_KEYED_BASELINE") != "0" {
		sizes = []int{1_000_000, rows}
	}
	var base, baseLate float64
	for _, n := range sizes {
		r := runKeyedScale(b, bin, dsn, n, time.Duration(minutes*float64(time.Minute)), rate)
		if n == 1_000_000 {
			base, baseLate = r.cpuPer10k, r.cpuPer10kLate
		}
		tag := fmt.Sprintf("%gM", float64(n)/1e6)
		b.ReportMetric(r.cpuPer10k, tag+"-cpu-s/10k-updates")
		b.ReportMetric(r.steadyRSS, tag+"-steady-rss-MiB")
		b.ReportMetric(r.peakRSS, tag+"-peak-rss-MiB")
		b.ReportMetric(r.loadPeakRSS, tag+"-load-peak-rss-MiB")
		b.ReportMetric(r.restart.Seconds(), tag+"-restart-visible-s")
		b.ReportMetric(r.restartRebuild.Seconds(), tag+"-restart-rebuild-visible-s")
		b.ReportMetric(float64(r.maxDataFiles), tag+"-max-data-files")
		b.ReportMetric(r.cpuPer10kLate, tag+"-cpu-s/10k-updates-late")
		b.ReportMetric(float64(r.rewritten), tag+"-rows-compacted")
		if base > 0 {
			b.ReportMetric(r.cpuPer10k/base, tag+"-cpu-vs-1M")
			b.ReportMetric(r.cpuPer10kLate/baseLate, tag+"-cpu-late-vs-1M")
		}
	}
}

type keyedScaleResult struct {
	cpuPer10k float64
	// cpuPer10kLate is of the second half of the updates: past the
	// rewrite of the load's files, which the first half's compaction
	// does (rewritten: the rows the replace snapshots wrote).
	cpuPer10kLate      float64
	rewritten          int64
	steadyRSS, peakRSS float64 // peakRSS: of the load and the updates
	loadPeakRSS        float64
	restart            time.Duration // after SIGKILL, persistent index
	restartRebuild     time.Duration // index removed
	indexDisk          int64
	maxDataFiles       int
}

func runKeyedScale(b *testing.B, bin, dsn string, n int, dur time.Duration, rate int) keyedScaleResult {
	b.Helper()
	db, dbName := testenv.MariaDBDatabase(b, dsn, "floe_bk_", 8)
	mustExecB(b, db, `CREATE TABLE t (id BIGINT PRIMARY KEY, user_id INT NOT NULL, amount DECIMAL(12,2) NOT NULL,
		label VARCHAR(40) NOT NULL, at DATETIME(6) NOT NULL, score DOUBLE NOT NULL)`)
	fillStart := time.Now()
	const chunk = 500_000
	for lo := 1; lo <= n; lo += chunk {
		hi := min(lo+chunk-1, n)
		mustExecB(b, db, fmt.Sprintf(`INSERT INTO t SELECT seq, seq %% 100000, (seq %% 10000) / 100, CONCAT('label-', seq %% 1000),
			'2026-01-01 00:00:00', seq / 7 FROM seq_%d_to_%d`, lo, hi))
	}
	b.Logf("%d rows: MariaDB table %s.t filled in %s", n, dbName, time.Since(fillStart).Round(time.Second))

	dir := b.TempDir()
	if keep := os.Getenv("FLOE_BENCH_KEYED_DIR"); keep != "" {
		// Keep the logs and the lake for a look afterwards.
		dir = filepath.Join(keep, dbName)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	// ingest serves its metrics (Go runtime and writer) for the memory
	// sampler (memSampler): where the peak RSS comes from.
	metricsAddr := freeAddr(b)
	wh := catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")}
	cfgPath := writeFloeYAML(b, dir, map[string]any{
		"catalog":         map[string]any{"type": wh.Type, "name": wh.Name, "uri": wh.URI, "warehouse": wh.Warehouse},
		"writer":          map[string]any{"commit-interval": "2s"},
		"metrics-address": metricsAddr,
		"compaction":      map[string]any{"interval": "1m", "metrics-address": "off"},
		"sources": []any{map[string]any{"type": "mysql", "mysql": map[string]any{
			"id": "bk", "dsn": dsn, "include": []string{dbName + `\.t`}, "table-name": "{db}.{table}",
			"server-id": 1_000_000 + mrand.IntN(1_000_000),
			// Other databases of a shared server move the binlog on:
			// the table's position follows within seconds, so that
			// `floe verify mysql` at the end can reach the server's.
			"position-commit-interval": "5s",
		}}},
	})
	name := dbName + ".t"
	ident, err := table.ParseIdent(name)
	if err != nil {
		b.Fatal(err)
	}
	cat, err := catalog.Open(context.Background(), wh)
	if err != nil {
		b.Fatal(err)
	}
	load := func() *icetable.Table {
		tbl, err := cat.LoadTable(context.Background(), ident)
		if err != nil {
			return nil
		}
		return tbl
	}

	// The snapshot load.
	// At debug level the log shows every commit and compaction step.
	ing := startBenchProc(b, bin, dir, "ingest", "-config", cfgPath, "-log-level", "debug")
	mem := newMemSampler(metricsAddr)
	mem.traceTo(b, dir)
	mem.follow(ing, "load")
	defer mem.stop()
	start := time.Now()
	for {
		if tbl := load(); tbl != nil && summaryInt(tbl, "total-records") >= int64(n) {
			break
		}
		ing.checkAlive(b)
		if time.Since(start) > 2*time.Hour {
			b.Fatal("the snapshot load did not finish in 2h")
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.Logf("%d rows: snapshot load %s wall, %.1f CPU-s, RSS %.0f MiB", n, time.Since(start).Round(100*time.Millisecond),
		ing.cpu().Seconds(), float64(ing.rss())/(1<<20))
	b.Logf("%d rows: %s", n, mem.report("load"))
	mem.follow(ing, "updates")
	cmp := startBenchProc(b, bin, dir, "compact", "-config", cfgPath)

	// Updates at rate/s for dur.
	var res keyedScaleResult
	rng := mrand.New(mrand.NewPCG(uint64(n), 17))
	cpu0 := ing.cpu()
	upStart := time.Now()
	var rssSum, rssN float64
	updates := 0
	// Four connections issue the updates, each its own autocommit
	// transaction, so that the server's commit latency does not cap the
	// rate.
	ids := make(chan int, rate)
	upErr := make(chan error, 4)
	var upWG sync.WaitGroup
	for range 4 {
		upWG.Add(1)
		go func() {
			defer upWG.Done()
			for id := range ids {
				if _, err := db.Exec("UPDATE t SET amount = amount + 1, at = NOW(6), label = ? WHERE id = ?", "u-"+strconv.Itoa(id), id); err != nil {
					upErr <- err
					return
				}
			}
		}()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	lastSample := time.Now()
	var cpuHalf time.Duration
	updHalf := -1
	for time.Since(upStart) < dur {
		if updHalf < 0 && time.Since(upStart) > dur/2 {
			cpuHalf, updHalf = ing.cpu(), updates
		}
		<-tick.C
		want := int(time.Since(upStart).Seconds()*float64(rate)) - updates
		for range want {
			select {
			case ids <- 1 + rng.IntN(n):
				updates++
			default: // the server is behind: the rate is reported as reached
			}
		}
		select {
		case err := <-upErr:
			b.Fatalf("update: %v", err)
		default:
		}
		if time.Since(lastSample) >= time.Second {
			lastSample = time.Now()
			ing.checkAlive(b)
			r := float64(ing.rss()) / (1 << 20)
			res.peakRSS = max(res.peakRSS, r)
			if time.Since(upStart) > dur/2 {
				rssSum += r
				rssN++
			}
			if tbl := load(); tbl != nil {
				res.maxDataFiles = max(res.maxDataFiles, int(summaryInt(tbl, "total-data-files")))
			}
		}
	}
	tick.Stop()
	close(ids)
	upWG.Wait()
	upWall := time.Since(upStart)
	// Let the last commit land before reading the CPU.
	waitCommitAfter(b, load, time.Now(), 30*time.Second)
	cpuEnd := ing.cpu()
	cpuUp := cpuEnd - cpu0
	res.cpuPer10k = cpuUp.Seconds() / float64(updates) * 10000
	if updHalf >= 0 && updates > updHalf {
		res.cpuPer10kLate = (cpuEnd - cpuHalf).Seconds() / float64(updates-updHalf) * 10000
	}
	if rssN > 0 {
		res.steadyRSS = rssSum / rssN
	}
	res.loadPeakRSS = mem.peak("load")
	res.peakRSS = max(res.peakRSS, res.loadPeakRSS, mem.peak("updates"))
	tbl := load()
	compactions := 0
	for _, s := range tbl.Metadata().Snapshots() {
		if s.Summary != nil && s.Summary.Operation == icetable.OpReplace && s.TimestampMs >= upStart.UnixMilli() {
			compactions++
			added, _ := strconv.ParseInt(s.Summary.Properties["added-records"], 10, 64)
			res.rewritten += added
		}
	}
	b.Logf("%d rows: %s", n, mem.report("updates"))
	b.Logf("%d rows: %d updates in %s (%.0f/s): %.2f CPU-s per 10k updates (second half %.2f), RSS steady %.0f MiB peak %.0f MiB; "+
		"%d replace (compaction/maintenance) snapshots writing %d rows; data files now %d (max %d), delete files %d",
		n, updates, upWall.Round(time.Second), float64(updates)/upWall.Seconds(), res.cpuPer10k, res.cpuPer10kLate, res.steadyRSS, res.peakRSS,
		compactions, res.rewritten, summaryInt(tbl, "total-data-files"), res.maxDataFiles, summaryInt(tbl, "total-delete-files"))

	// Restart until a new update is visible: after a SIGKILL, with the
	// persistent key index (validated and caught up), then after a
	// SIGTERM with the index removed (rebuilt from the table), as the
	// baseline of the same run.
	restart := func(how string, prep func()) (time.Duration, string) {
		prep()
		logAt := fileSize(ing.log)
		t0 := time.Now()
		ing = startBenchProc(b, bin, dir, "ingest", "-config", cfgPath, "-log-level", "debug")
		mem.follow(ing, "restart")
		mustExecB(b, db, "UPDATE t SET label = ? WHERE id = 1", "restart-"+how)
		waitCommitAfter(b, load, t0, 5*time.Minute)
		took := time.Since(t0)
		line := ""
		if raw, err := os.ReadFile(ing.log); err == nil && int64(len(raw)) >= logAt {
			for _, l := range strings.Split(string(raw[logAt:]), "\n") {
				if strings.Contains(l, "key index validated") || strings.Contains(l, "key index built") {
					line = l
				}
			}
			if os.Getenv("FLOE_BENCH_KEYED_LOG") == "1" {
				b.Logf("ingest log after the restart (%s):\n%s", how, testenv.LastLines(raw[logAt:], 60))
			}
		}
		b.Logf("%d rows: restart (%s) until a new update is visible: %s wall, %.1f CPU-s (RSS after %.0f MiB)\n  %s", n, how,
			took.Round(100*time.Millisecond), ing.cpu().Seconds(), float64(ing.rss())/(1<<20), line)
		return took, line
	}
	indexDir := filepath.Join(dir, "cache", "floe", "index")
	res.restart, _ = restart("SIGKILL, persistent index", func() { ing.kill(b) })
	b.Logf("%d rows: %s", n, mem.report("restart"))
	res.indexDisk = dirSize(indexDir)
	res.restartRebuild, _ = restart("SIGTERM, index removed: rebuild", func() {
		ing.stop(b)
		if err := os.RemoveAll(indexDir); err != nil {
			b.Fatal(err)
		}
	})
	b.Logf("%d rows: restart until visible %.1f s with the persistent index (%.0f MiB on disk), %.1f s rebuilding: %.2fx", n,
		res.restart.Seconds(), float64(res.indexDisk)/(1<<20), res.restartRebuild.Seconds(), res.restart.Seconds()/res.restartRebuild.Seconds())

	// The mirror, row for row.
	out, err := exec.Command(bin, "verify", "mysql", "-config", cfgPath, "-wait", "5m").CombinedOutput()
	if err != nil {
		b.Fatalf("%d rows: floe verify mysql: %v\n%s", n, err, testenv.LastLines(out, 30))
	}
	b.Logf("%d rows: floe verify mysql: equal\n%s", n, testenv.LastLines(out, 5))
	cmp.stop(b)
	ing.stop(b)
	return res
}

// waitCommitAfter waits for a snapshot, committed after t, that added rows.
func waitCommitAfter(b *testing.B, load func() *icetable.Table, t time.Time, timeout time.Duration) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if tbl := load(); tbl != nil {
			if s := tbl.CurrentSnapshot(); s != nil && s.TimestampMs >= t.UnixMilli() && s.Summary != nil {
				if v, _ := strconv.Atoi(s.Summary.Properties["added-records"]); v > 0 {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("no snapshot with rows committed after %s within %s", t.Format(time.RFC3339), timeout)
}

func summaryInt(tbl *icetable.Table, key string) int64 {
	s := tbl.CurrentSnapshot()
	if s == nil || s.Summary == nil {
		return 0
	}
	v, _ := strconv.ParseInt(s.Summary.Properties[key], 10, 64)
	return v
}

// benchProc is a floe subprocess with its log in the benchmark's directory.
type benchProc struct {
	cmd  *exec.Cmd
	done chan error
	log  string
}

func startBenchProc(b *testing.B, bin, dir string, args ...string) *benchProc {
	b.Helper()
	logPath := filepath.Join(dir, args[0]+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// The persistent key indexes go to the run's directory.
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &benchProc{cmd: cmd, done: make(chan error, 1), log: logPath}
	exited := make(chan struct{})
	go func() { p.done <- cmd.Wait(); _ = f.Close(); close(exited) }()
	// A benchmark that fails leaves no process behind.
	b.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	return p
}

func (p *benchProc) checkAlive(b *testing.B) {
	b.Helper()
	select {
	case err := <-p.done:
		tail, _ := os.ReadFile(p.log)
		b.Fatalf("floe %s exited: %v\n%s", p.cmd.Args[1], err, testenv.LastLines(tail, 30))
	default:
	}
}

func (p *benchProc) stop(b *testing.B) {
	b.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			b.Logf("floe %s after SIGTERM: %v", p.cmd.Args[1], err)
		}
	case <-time.After(2 * time.Minute):
		_ = p.cmd.Process.Kill()
		b.Fatalf("floe %s did not stop after SIGTERM", p.cmd.Args[1])
	}
}

// kill ends the process with SIGKILL, as a crash would.
func (p *benchProc) kill(b *testing.B) {
	b.Helper()
	_ = p.cmd.Process.Kill()
	if err := <-p.done; err == nil {
		b.Logf("floe %s exited cleanly before the SIGKILL", p.cmd.Args[1])
	}
}

// dirSize is the disk space of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					n += st.Blocks * 512
				}
			}
		}
		return nil
	})
	return n
}

// cpu is the process's user+system CPU time so far (Linux /proc).
func (p *benchProc) cpu() time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

// rss is the process's resident set in bytes (Linux /proc).
func (p *benchProc) rss() int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func mustExecB(b *testing.B, db *sql.DB, q string, args ...any) {
	b.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		b.Fatalf("%.200s: %v", q, err)
	}
}

func envInt(b *testing.B, key string, def int) int {
	b.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		b.Fatalf("%s=%q: %v", key, v, err)
	}
	return n
}

func envFloat(b *testing.B, key string, def float64) float64 {
	b.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		b.Fatalf("%s=%q: %v", key, v, err)
	}
	return f
}
