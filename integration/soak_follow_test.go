package integration

import (
	"context"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/faultproxy"
	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/internal/testenv"
	"github.com/floe-lake/floe/table"
)

// TestReadFollowRidesOutStoreOutage runs `floe read -follow -cursor-file`
// against MinIO through a fault proxy while snapshots keep coming, and
// takes the object store away under it — down, then connections reset,
// then stalled — in the middle of its reads: the follower logs and waits,
// never exits, and once the store answers again its output holds every
// row exactly once. (It used to exit with status 1 on the first manifest
// or data file it could not read.)
func TestReadFollowRidesOutStoreOutage(t *testing.T) {
	s3 := testenv.MinIO(t)
	bin := testenv.FloeBinary(t)
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	bucket := s3.Bucket(t)
	cc := catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "catalog.db"), Warehouse: "s3://" + bucket + "/follow",
		S3: catalog.S3Config{Endpoint: s3.Endpoint, Region: "us-east-1", AccessKeyID: s3.AccessKeyID, SecretAccessKey: s3.SecretAccessKey}}
	cat := tabletest.Open(t, cc)
	spec := table.Spec{Name: "ods.events", Schema: []table.Field{{Name: "id", Type: "long", Required: true}, {Name: "name", Type: "string"}}}
	if _, err := table.Ensure(context.Background(), cat, spec); err != nil {
		t.Fatal(err)
	}
	tbl := tabletest.Load(t, cat, "ods.events")
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	next := int64(0)
	appendRows := func(n int64) {
		var rows [][]any
		for i := next; i < next+n; i++ {
			rows = append(rows, []any{i, fmt.Sprintf("n%d", i)})
		}
		next += n
		tbl = tabletest.Append(t, tabletest.Load(t, cat, "ods.events"), tabletest.Record(sc, rows...))
	}
	appendRows(20)

	proxy, err := faultproxy.Listen("minio", "127.0.0.1:0", strings.TrimPrefix(s3.Endpoint, "http://"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	ycat := catalogYAML(cc)
	ycat["s3"].(map[string]any)["endpoint"] = "http://" + proxy.Addr()
	cfg := writeFloeYAML(t, dir, map[string]any{"catalog": ycat})
	out := filepath.Join(dir, "out.jsonl")
	logf, err := os.Create(filepath.Join(dir, "read.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "read", "-config", cfg, "-follow", "-poll-interval", "200ms",
		"-cursor-file", filepath.Join(dir, "cursor.json"), "-output", out, "ods.events")
	cmd.Env = soakEnv() // the config's endpoint (the proxy), not FLOE_S3_ENDPOINT
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); _ = logf.Close() }()
	alive := func(what string) {
		t.Helper()
		select {
		case err := <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "read.log"))
			t.Fatalf("floe read -follow exited %s: %v\n%s", what, err, lastLines(string(b), 20))
		default:
		}
	}
	waitLines := func(want int64, timeout time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			_, n, err := followerKeys(out)
			if err == nil && int64(n) >= want {
				return
			}
			alive("while catching up")
			if time.Now().After(deadline) {
				t.Fatalf("the follower wrote %d lines in %s, want %d (%v)", n, timeout, want, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitLines(next, 2*time.Minute)

	// The store flaps — down for 3 s (longer than the S3 client's own 3
	// attempts), up for a moment, a stall now and then — while snapshots
	// are committed (directly, not through the proxy) every 300 ms: a
	// moment up lets the follower load the table, and the next outage
	// meets it reading the snapshot's manifests or data files.
	// The moments up are slow (latency on every chunk), so that a read
	// the follower starts in one is still running when the next outage
	// comes; the rounds go on (up to 40) until the follower has retried a
	// failed read at least once, which on a busy machine can take more
	// than the first 10.
	retries := func() int {
		b, _ := os.ReadFile(filepath.Join(dir, "read.log"))
		return strings.Count(string(b), "follow: reading the table failed")
	}
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := 0; round < 10 || round < 40 && retries() == 0; round++ {
		f := faultproxy.Faults{Down: true}
		if round%4 == 3 {
			f = faultproxy.Faults{Stall: true}
		}
		proxy.Set(f)
		for range 10 {
			appendRows(3)
			time.Sleep(300 * time.Millisecond)
		}
		n := proxy.ResetAll()
		proxy.Set(faultproxy.Faults{Latency: 150 * time.Millisecond, Jitter: 100 * time.Millisecond})
		alive(fmt.Sprintf("during a store fault (%s, %d connections reset)", f, n))
		time.Sleep(time.Duration(300+rng.IntN(900)) * time.Millisecond)
	}
	proxy.Set(faultproxy.Faults{})
	waitLines(next, 2*time.Minute)
	alive("after the faults")
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("floe read -follow after SIGTERM: %v", err)
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("floe read -follow did not stop within a minute of SIGTERM")
	}
	keys, lines, err := followerIDs(out)
	if err != nil {
		t.Fatal(err)
	}
	for id := range next {
		if keys[id] != 1 {
			t.Fatalf("row %d written %d times; want once (%d lines, %d rows)", id, keys[id], lines, next)
		}
	}
	if int64(lines) != next {
		t.Fatalf("%d lines, want %d", lines, next)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "read.log"))
	retried := retries()
	t.Logf("%d rows exactly once; the follower retried %d times, logged %d tail load failures", next, retried, strings.Count(string(b), "tail: loading the table failed"))
	if retried == 0 {
		t.Errorf("the faults never failed a read of the follower: the test did not test it:\n%s", lastLines(string(b), 20))
	}
}

// followerIDs counts the ids of a follower's JSON lines output.
func followerIDs(path string) (map[int64]int, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	ids, lines := map[int64]int{}, 0
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		var id int64
		if _, err := fmt.Sscanf(l, `{"id":%d`, &id); err != nil {
			return nil, 0, fmt.Errorf("line %d: %w: %q", lines+1, err, l)
		}
		ids[id]++
		lines++
	}
	return ids, lines, nil
}
