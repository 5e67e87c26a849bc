package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/floe-lake/floe/internal/testenv"
)

// TestDaemonsWaitForTheCatalog: floe ingest and floe compact started
// while their catalog cannot be opened (a SQLite catalog whose directory
// is blocked by a file) stay up, serve /metrics and answer /readyz 503
// with the reason, and become ready once the catalog can be opened; they
// exit 0 when stopped.
func TestDaemonsWaitForTheCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the floe binary")
	}
	bin := testenv.FloeBinary(t)
	dir := t.TempDir()
	block := filepath.Join(dir, "cat")
	if err := os.WriteFile(block, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "floe.yaml")
	yml := fmt.Sprintf(`catalog:
  type: sqlite
  uri: %[1]s/cat/catalog.db
  warehouse: %[1]s/warehouse
writer:
  commit-interval: 1s
sources:
  - type: gen
    gen:
      id: gen
      partitions: 1
      rate: 200
      events-table: ods.events
      orders-table: ods.orders
      dead-letter-table: floe.dead_letters
`, dir)
	if err := os.WriteFile(cfg, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	type daemonProc struct {
		name, addr string
		cmd        *exec.Cmd
		done       chan error
	}
	var procs []*daemonProc
	for _, name := range []string{"ingest", "compact"} {
		p := &daemonProc{name: name, addr: freeAddr(t), done: make(chan error, 1)}
		p.cmd = exec.Command(bin, name, "-config", cfg, "-metrics-address", p.addr)
		p.cmd.Stdout, p.cmd.Stderr = io.Discard, &testenv.SyncBuffer{}
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.done <- p.cmd.Wait() }()
		t.Cleanup(func() { _ = p.cmd.Process.Kill() })
		procs = append(procs, p)
	}
	logs := func(p *daemonProc) string { return p.cmd.Stderr.(*testenv.SyncBuffer).String() }
	waitHTTP := func(p *daemonProc, path string, code int, want ...string) {
		t.Helper()
		var got int
		var body string
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			select {
			case err := <-p.done:
				t.Fatalf("floe %s exited (%v) while waiting for %s %d:\n%s", p.name, err, path, code, logs(p))
			default:
			}
			got, body = httpGet(p.addr + path)
			ok := got == code
			for _, w := range want {
				ok = ok && strings.Contains(body, w)
			}
			if ok {
				return
			}
		}
		t.Fatalf("floe %s %s = %d %q, want %d with %q:\n%s", p.name, path, got, body, code, want, logs(p))
	}
	for _, p := range procs {
		waitHTTP(p, "/readyz", http.StatusServiceUnavailable, "opening the catalog", "not a directory")
		waitHTTP(p, "/metrics", http.StatusOK, "floe_daemon_restarts_total")
	}
	time.Sleep(2 * time.Second) // still up after a few retries
	for _, p := range procs {
		waitHTTP(p, "/readyz", http.StatusServiceUnavailable, "opening the catalog")
		if l := logs(p); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "not a directory") {
			t.Errorf("floe %s logs no WARN with the reason:\n%s", p.name, l)
		}
	}
	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		waitHTTP(p, "/readyz", http.StatusOK)
	}
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("floe %s stopped with %v:\n%s", p.name, err, logs(p))
			}
		case <-time.After(30 * time.Second):
			t.Errorf("floe %s did not stop", p.name)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

func httpGet(addr string) (int, string) {
	resp, err := http.Get("http://" + addr)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
