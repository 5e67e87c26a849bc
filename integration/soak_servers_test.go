package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
)

// soakServer is a server of the soak's own (its Kafka broker, its MinIO)
// that the soak can stop and start again on the same data, mid-run.
type soakServer struct {
	name  string
	dir   string
	mk    func() *exec.Cmd      // a new command that starts the server
	ready func(log string) bool // whether the server started with this log is up

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	starts   int
	restarts int
}

// startSoakServer starts the server; the test's cleanup kills it.
func startSoakServer(t testing.TB, name, dir string, mk func() *exec.Cmd, ready func(log string) bool) *soakServer {
	t.Helper()
	s := &soakServer{name: name, dir: dir, mk: mk, ready: ready}
	if err := s.start(3 * time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.kill)
	return s
}

// start starts the server in its own process group and waits until it is
// ready; each start logs to its own file (name.N.log).
func (s *soakServer) start(timeout time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starts++
	logPath := filepath.Join(s.dir, fmt.Sprintf("%s.%d.log", s.name, s.starts))
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	cmd := s.mk()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(timeout)
	for !s.ready(logPath) {
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("%s exited while starting:\n%s", s.name, lastLines(string(b), 30))
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("%s not ready after %s:\n%s", s.name, timeout, lastLines(string(b), 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// stop stops the server as an operator would: SIGTERM, then SIGKILL after
// a minute.
func (s *soakServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(time.Minute):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
}

// restart stops the server, leaves it down for down, and starts it again
// on the same data.
func (s *soakServer) restart(down time.Duration) error {
	s.stop()
	time.Sleep(down)
	s.restarts++
	return s.start(3 * time.Minute)
}

func (s *soakServer) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL) // the process group this test started
		<-s.exited
		s.cmd = nil
	}
}

// Root user and password of the soak's own MinIO.
const (
	soakMinIOUser = "floesoak"
	soakMinIOPass = "floesoak-Secret-5eed"
)

// startSoakMinIO starts a MinIO of the soak's own (the binary
// integration/minio.sh built) on a free port with its data in dir, so that
// the soak can restart it without touching the shared one.
func startSoakMinIO(t testing.TB, dir string) (*soakServer, string) {
	t.Helper()
	bins, _ := filepath.Glob(filepath.Join(floeCache(), "bin", "minio-*"))
	if len(bins) == 0 {
		t.Fatalf("no MinIO binary in %s: run `integration/minio.sh install` (or `make test`)", filepath.Join(floeCache(), "bin"))
	}
	addr, console := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	data := mkdir(t, filepath.Join(dir, "data"))
	endpoint := "http://" + addr
	client := &http.Client{Timeout: 2 * time.Second}
	s := startSoakServer(t, "minio", dir, func() *exec.Cmd {
		cmd := exec.Command(bins[len(bins)-1], "server", "--quiet", "--address", addr, "--console-address", console, data)
		cmd.Env = append(soakEnv(), "MINIO_ROOT_USER="+soakMinIOUser, "MINIO_ROOT_PASSWORD="+soakMinIOPass, "MINIO_BROWSER=off", "MINIO_UPDATE=off")
		return cmd
	}, func(string) bool {
		resp, err := client.Get(endpoint + "/minio/health/live")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s, endpoint
}

// Expiry the soak sets on every table (ods.clicks through floe.yaml, the
// tables Floe creates by itself once they exist), so that metadata stays
// bounded: snapshots older than 5 minutes expire, the last 10 stay.
const (
	soakMaxSnapshotAge = 5 * time.Minute
	soakMinSnapshots   = 10
)

func soakExpiryProps() map[string]string {
	return map[string]string{
		"history.expire.max-snapshot-age-ms":   fmt.Sprint(soakMaxSnapshotAge.Milliseconds()),
		"history.expire.min-snapshots-to-keep": fmt.Sprint(soakMinSnapshots),
	}
}

// tableBounds is what the soak samples of a table: the most data files in
// one partition, the current snapshot's manifests, the snapshots kept and
// the size of metadata.json.
type tableBounds struct {
	files, manifests, snapshots int
	metaBytes                   int64
	// untiered is, of the partition where it is largest, the number of
	// data files beyond the size tiers of a keyed table (keyedTiers); a
	// bound on it replaces the bound on files for keyed tables at the end.
	untiered int
}

func (b tableBounds) String() string {
	return fmt.Sprintf("%d files/partition, %d manifests, %d snapshots, metadata.json %d KiB", b.files, b.manifests, b.snapshots, b.metaBytes>>10)
}

// within reports the first bound b exceeds.
func (b tableBounds) within(limit tableBounds) error {
	switch {
	case b.files > limit.files:
		return fmt.Errorf("%d data files in one partition, bound %d", b.files, limit.files)
	case b.manifests > limit.manifests:
		return fmt.Errorf("%d manifests, bound %d", b.manifests, limit.manifests)
	case b.snapshots > limit.snapshots:
		return fmt.Errorf("%d snapshots, bound %d", b.snapshots, limit.snapshots)
	case b.metaBytes > limit.metaBytes:
		return fmt.Errorf("metadata.json of %d KiB, bound %d KiB", b.metaBytes>>10, limit.metaBytes>>10)
	}
	return nil
}

// measureTable samples one table; with setExpiry it first gives a table
// without the soak's expiry properties those properties.
func measureTable(ctx context.Context, cat icecat.Catalog, name string, setExpiry bool) (tableBounds, error) {
	var b tableBounds
	tbl, err := cat.LoadTable(ctx, strings.Split(name, "."))
	if err != nil {
		return b, err
	}
	if want := soakExpiryProps(); setExpiry && tbl.Properties()["history.expire.max-snapshot-age-ms"] != want["history.expire.max-snapshot-age-ms"] {
		tx := tbl.NewTransaction()
		if err := tx.SetProperties(iceberg.Properties(want)); err != nil {
			return b, err
		}
		if tbl, err = tx.Commit(ctx); err != nil {
			return b, fmt.Errorf("set expiry properties: %w", err)
		}
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return b, err
	}
	f, err := fs.Open(tbl.MetadataLocation())
	if err != nil {
		return b, err
	}
	st, err := f.Stat()
	_ = f.Close()
	if err != nil {
		return b, err
	}
	b.metaBytes = st.Size()
	b.snapshots = len(tbl.Metadata().Snapshots())
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		return b, nil
	}
	ms, err := snap.Manifests(fs)
	if err != nil {
		return b, err
	}
	b.manifests = len(ms)
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return b, err
	}
	type part struct {
		files           int
		bytes, smallest int64
	}
	per := map[string]*part{}
	for _, task := range tasks {
		k := fmt.Sprint(task.File.Partition()) // fmt prints maps sorted by key
		p := per[k]
		if p == nil {
			p = &part{smallest: task.File.FileSizeBytes()}
			per[k] = p
		}
		p.files++
		p.bytes += task.File.FileSizeBytes()
		p.smallest = min(p.smallest, task.File.FileSizeBytes())
		b.files = max(b.files, p.files)
	}
	for _, p := range per {
		b.untiered = max(b.untiered, p.files-keyedTiers(p.bytes, p.smallest))
	}
	return b, nil
}

// keyedTiers bounds the files a keyed table's writer keeps apart by size
// in a partition of bytes whose smallest file has smallest bytes. Its
// compaction (compaction.PlanKeyedGroup) groups a partition's small files
// smallest first and lets a file join only while it is at most twice the
// group so far (keyedSizeRatio: rewriting a large file for a few small
// ones would rewrite the partition at every step). Once the writers stop,
// a partition holds the group that is not due (under min-input-files
// files) plus files each more than twice everything smaller: size tiers,
// each tripling the bytes below it, so at most ⌈log₃(bytes/smallest)⌉ + 1
// of them. (A 30-minute run ended with 6 files in a partition of a keyed
// table, min-input-files 5, which the bound on files alone refused.)
func keyedTiers(bytes, smallest int64) int {
	if smallest <= 0 || bytes <= smallest {
		return 1
	}
	return int(math.Ceil(math.Log(float64(bytes)/float64(smallest))/math.Log(3))) + 1
}

// boundsSampler keeps, per table, the maxima of what measureTable saw.
type boundsSampler struct {
	cat    icecat.Catalog
	tables []string

	mu  sync.Mutex
	max map[string]tableBounds
}

// sample measures every table once (tables that do not exist yet, or that
// a fault makes unreadable, are skipped) and returns what it measured.
func (s *boundsSampler) sample(ctx context.Context) map[string]tableBounds {
	now := map[string]tableBounds{}
	for _, name := range s.tables {
		b, err := measureTable(ctx, s.cat, name, name != "ods.clicks")
		if err != nil {
			continue
		}
		now[name] = b
		s.mu.Lock()
		m := s.max[name]
		s.max[name] = tableBounds{files: max(m.files, b.files), manifests: max(m.manifests, b.manifests),
			snapshots: max(m.snapshots, b.snapshots), metaBytes: max(m.metaBytes, b.metaBytes), untiered: max(m.untiered, b.untiered)}
		s.mu.Unlock()
	}
	return now
}

// run samples every interval until ctx ends.
func (s *boundsSampler) run(ctx context.Context, interval time.Duration) {
	for {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		s.sample(sctx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// soakBounds derives the bounds from the compaction configuration of the
// soak: writers tables' committers, each committing every commitInterval;
// a pass every interval that leaves under minInput small files per
// partition and merges manifests above maxManifests; expiry by
// soakMaxSnapshotAge. During the run a pass may be held off by faults and
// kills for up to holdOff, while the writers go on committing; at the end,
// with the writers stopped, a pass must have brought every table down to
// the steady state.
func soakBounds(writers int, commitInterval, interval, holdOff time.Duration, minInput, maxManifests int) (run, end tableBounds) {
	commits := func(d time.Duration) int { return writers * int(d/commitInterval) }
	perSnapshot := int64(2 << 10) // a snapshot's entry and its logs in metadata.json, generously
	run.files = minInput + commits(interval+holdOff)
	run.manifests = maxManifests + commits(interval+holdOff)
	run.snapshots = soakMinSnapshots + commits(soakMaxSnapshotAge+interval+holdOff) + int((soakMaxSnapshotAge+interval+holdOff)/interval) // + compaction's own
	run.metaBytes = 64<<10 + int64(run.snapshots)*perSnapshot
	end = tableBounds{files: minInput, manifests: maxManifests, snapshots: run.snapshots, metaBytes: run.metaBytes}
	return run, end
}

// keyedEnd checks a keyed (CDC) table against the end bounds: its own
// writer compacts it in its commits (compaction.Keyed), in size tiers
// (keyedTiers), so a partition may hold more than min-input-files files
// at rest, but never min-input-files files beyond its tiers: those would
// be a group due that no commit compacted.
func keyedEnd(b, end tableBounds) error {
	if b.untiered > end.files-1 {
		return fmt.Errorf("%d data files in one partition beyond its size tiers, bound %d (min-input-files − 1)", b.untiered, end.files-1)
	}
	b.files = 0
	return b.within(end)
}

// waitBounds waits until every table is within the end bounds (keyed
// tables as keyedEnd checks them).
func waitBounds(t *testing.T, s *boundsSampler, end tableBounds, keyed map[string]bool, timeout time.Duration) map[string]tableBounds {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		now := s.sample(context.Background())
		var over []string
		for _, name := range s.tables {
			b, ok := now[name]
			if !ok {
				over = append(over, name+": not measured")
				continue
			}
			check := b.within
			if keyed[name] {
				check = func(end tableBounds) error { return keyedEnd(b, end) }
			}
			if err := check(end); err != nil {
				over = append(over, name+": "+err.Error())
			}
		}
		if len(over) == 0 {
			return now
		}
		if time.Now().After(deadline) {
			t.Errorf("tables not within their end bounds %s after %s:\n%s", end, timeout, strings.Join(over, "\n"))
			return now
		}
		time.Sleep(5 * time.Second)
	}
}

// followerKeys reads the follower's JSON lines output (complete lines
// only) and counts each Kafka record's key.
func followerKeys(path string) (map[string]int, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = f.Close() }()
	keys, lines := map[string]int{}, 0
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadString('\n')
		if err != nil { // the end, or a line the follower is still writing
			return keys, lines, nil
		}
		var rec struct {
			Topic     string `json:"_kafka_topic"`
			Partition int64  `json:"_kafka_partition"`
			Offset    int64  `json:"_kafka_offset"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return nil, 0, fmt.Errorf("line %d of %s: %w: %q", lines+1, path, err, line)
		}
		lines++
		keys[fmt.Sprintf("%s/%d@%d", rec.Topic, rec.Partition, rec.Offset)]++
	}
}

// waitFollower waits until the follower has written as many lines as the
// table has rows.
func waitFollower(t *testing.T, path string, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, n, err := followerKeys(path)
		if err == nil && n >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the follower's output has %d lines after %s, want %d (%v)", n, timeout, want, err)
		}
		time.Sleep(2 * time.Second)
	}
}

// verifyFollower checks that the follower's output holds every row of the
// table exactly once, and nothing else.
func verifyFollower(t *testing.T, path string, rows map[string]int) {
	t.Helper()
	got, lines, err := followerKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range got {
		if c != 1 || rows[k] != 1 {
			t.Fatalf("follower: record %s written %d times, %d times in the table; want 1 and 1", k, c, rows[k])
		}
	}
	if len(got) != len(rows) {
		t.Fatalf("follower: %d distinct records in %d lines, the table has %d", len(got), lines, len(rows))
	}
	t.Logf("follower: %d lines, every row of the table exactly once", lines)
}
