package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSampler samples a floe process's memory every 200 ms — its RSS split
// into anonymous (the Go heap, stacks, runtime) and file-backed pages
// (the mapped key index, binaries), and the Go runtime's and the keyed
// writer's own figures from its metrics — and keeps, per phase of the
// benchmark, the sample at the peak RSS and the peaks of each part: where
// the peak comes from.
type memSampler struct {
	addr string
	mu   sync.Mutex
	proc *benchProc
	ph   string
	at   map[string]memSample // the sample at the phase's peak RSS
	max  map[string]memSample // each field's peak in the phase
	quit chan struct{}
	done chan struct{}
	// trace, when set, gets every sample (FLOE_BENCH_KEYED_TRACE).
	trace *os.File
}

type memSample struct {
	rss, anon, file, heapInuse, heapSys, goSys, indexHeap, indexMapped float64 // MiB
	at                                                                 time.Duration
}

func newMemSampler(metricsAddr string) *memSampler {
	m := &memSampler{addr: metricsAddr, at: map[string]memSample{}, max: map[string]memSample{},
		quit: make(chan struct{}), done: make(chan struct{})}
	go m.loop()
	return m
}

// follow samples p from now on, under phase.
func (m *memSampler) follow(p *benchProc, phase string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.proc, m.ph = p, phase
}

func (m *memSampler) stop() {
	close(m.quit)
	<-m.done
	if m.trace != nil {
		_ = m.trace.Close()
	}
}

// traceTo writes every sample to dir/mem.trace when
// FLOE_BENCH_KEYED_TRACE=1, with the mappings of more than 8 MiB
// resident once file-backed pages pass 100 MiB: where a peak comes from.
func (m *memSampler) traceTo(b *testing.B, dir string) {
	if os.Getenv("FLOE_BENCH_KEYED_TRACE") != "1" {
		return
	}
	f, err := os.Create(filepath.Join(dir, "mem.trace"))
	if err != nil {
		b.Fatal(err)
	}
	m.mu.Lock()
	m.trace = f
	m.mu.Unlock()
	b.Logf("memory samples in %s", f.Name())
}

func (m *memSampler) loop() {
	defer close(m.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	scraped := time.Time{}
	var last memSample
	for {
		select {
		case <-m.quit:
			return
		case <-t.C:
		}
		m.mu.Lock()
		p, ph := m.proc, m.ph
		m.mu.Unlock()
		if p == nil {
			continue
		}
		s, ok := procMem(p.cmd.Process.Pid)
		if !ok {
			continue
		}
		s.at = time.Since(start)
		// The metrics once a second, or at a new peak.
		m.mu.Lock()
		peak := s.rss > m.at[ph].rss
		m.mu.Unlock()
		if peak || time.Since(scraped) >= time.Second {
			scraped = time.Now()
			if ok := scrapeMem(m.addr, &s); !ok {
				s.heapInuse, s.heapSys, s.goSys, s.indexHeap, s.indexMapped = last.heapInuse, last.heapSys, last.goSys, last.indexHeap, last.indexMapped
			}
		} else {
			s.heapInuse, s.heapSys, s.goSys, s.indexHeap, s.indexMapped = last.heapInuse, last.heapSys, last.goSys, last.indexHeap, last.indexMapped
		}
		last = s
		m.mu.Lock()
		if s.rss > m.at[ph].rss {
			m.at[ph] = s
		}
		if m.trace != nil {
			fmt.Fprintf(m.trace, "%s %s rss %.0f anon %.0f file %.0f heap %.0f goSys %.0f idxMapped %.0f%s\n", time.Now().UTC().Format("15:04:05.000"), ph,
				s.rss, s.anon, s.file, s.heapInuse, s.goSys, s.indexMapped, fileMaps(p.cmd.Process.Pid, s.file))
		}
		x := m.max[ph]
		x.rss, x.anon, x.file = max(x.rss, s.rss), max(x.anon, s.anon), max(x.file, s.file)
		x.heapInuse, x.heapSys, x.goSys = max(x.heapInuse, s.heapInuse), max(x.heapSys, s.heapSys), max(x.goSys, s.goSys)
		x.indexHeap, x.indexMapped = max(x.indexHeap, s.indexHeap), max(x.indexMapped, s.indexMapped)
		m.max[ph] = x
		m.mu.Unlock()
	}
}

func (m *memSampler) peak(phase string) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.at[phase].rss
}

// report describes phase's peak.
func (m *memSampler) report(phase string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, x := m.at[phase], m.max[phase]
	return fmt.Sprintf("memory (%s): peak RSS %.0f MiB at %s = anon %.0f + file %.0f (Go heap in use %.0f, heap sys %.0f, Go sys %.0f; index heap %.0f, mapped %.0f); "+
		"phase maxima: anon %.0f, file %.0f, heap in use %.0f, Go sys %.0f, index mapped %.0f MiB",
		phase, a.rss, a.at.Round(time.Second), a.anon, a.file, a.heapInuse, a.heapSys, a.goSys, a.indexHeap, a.indexMapped,
		x.anon, x.file, x.heapInuse, x.goSys, x.indexMapped)
}

// procMem reads a process's RSS and its anonymous and file-backed parts
// (Linux /proc/<pid>/status), in MiB.
func procMem(pid int) (memSample, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memSample{}, false
	}
	defer func() { _ = f.Close() }()
	var s memSample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmRSS":
			s.rss = kb / 1024
		case "RssAnon":
			s.anon = kb / 1024
		case "RssFile":
			s.file = kb / 1024
		}
	}
	return s, s.rss > 0
}

// scrapeMem reads the Go runtime's and the keyed writer's memory from a
// floe process's metrics.
func scrapeMem(addr string, s *memSample) bool {
	c := http.Client{Timeout: 500 * time.Millisecond}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return false
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	s.indexHeap, s.indexMapped = 0, 0
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			continue
		}
		v /= 1 << 20
		switch name := l[:i]; {
		case name == "go_memstats_heap_inuse_bytes":
			s.heapInuse = v
		case name == "go_memstats_heap_sys_bytes":
			s.heapSys = v
		case name == "go_memstats_sys_bytes":
			s.goSys = v
		case strings.HasPrefix(name, "floe_writer_keyed_index_memory_bytes") && strings.Contains(name, `kind="heap"`):
			s.indexHeap += v
		case strings.HasPrefix(name, "floe_writer_keyed_index_memory_bytes") && strings.Contains(name, `kind="mapped"`):
			s.indexMapped += v
		}
	}
	return true
}

// freeAddr is a loopback address with a port free now.
func freeAddr(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// fileMaps lists the mappings of a process holding over 8 MiB of
// file-backed resident pages when file (MiB) is over 100, for a trace.
func fileMaps(pid int, file float64) string {
	if file < 100 {
		return ""
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	var out strings.Builder
	name := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if fs := strings.Fields(l); len(fs) >= 5 && strings.Contains(fs[0], "-") && !strings.HasSuffix(fs[0], ":") {
			name = ""
			if len(fs) >= 6 {
				name = fs[5]
			}
			continue
		}
		if v, ok := strings.CutPrefix(l, "Rss:"); ok && name != "" {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if kb > 8<<10 {
				fmt.Fprintf(&out, " | %s %.0f", name, kb/1024)
			}
		}
	}
	return out.String()
}
