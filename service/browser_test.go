package service

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// chromium returns Debian's chromium (integration/chromium.sh install puts
// it there); without it the test is skipped, except in CI, where
// .ci/run installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, c := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed: integration/chromium.sh install")
	}
	t.Skip("chromium is not installed: integration/chromium.sh install")
	return ""
}

// headless runs chromium headless on url with args; requests to any host
// but 127.0.0.1 fail to resolve, so a page that loads anything from
// elsewhere shows it.
func headless(t *testing.T, bin, url string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--virtual-time-budget=3000",
	}, args...)
	cmd := exec.CommandContext(ctx, bin, append(all, url)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// TestStatusPageInChromium loads the status page of a running service in
// headless Chromium: the page renders its SVG plots, the numbers it shows
// match /metrics, and a screenshot of it is a real picture.
func TestStatusPageInChromium(t *testing.T) {
	bin := chromium(t)
	cfg := genConfig(t, t.TempDir(), "")
	s, srv := startService(t, cfg, nil)
	waitFor(t, 90*time.Second, "the generator to finish and the tables to show", func() bool {
		if j(s, IngestJob("gen")).State != "finished" {
			return false
		}
		for _, ts := range s.Status(context.Background()).Tables {
			if ts.Name == "ods.events" && ts.Rows > 0 && ts.CommittedRows == float64(ts.Rows) {
				return true
			}
		}
		return false
	})

	dom := string(headless(t, bin, srv.URL+"/", "--dump-dom"))
	for _, want := range []string{`<svg class="plot timeline"`, `<svg class="plot files-per-partition"`, `<svg class="plot file-sizes"`, `id="jobs"`, `data-name="ingest/gen"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page Chromium rendered lacks %s", want)
		}
	}
	if n := strings.Count(dom, "<rect"); n < 5 {
		t.Errorf("the plots have %d bars, want some", n)
	}

	// The rows committed per table on the page are /metrics'
	// floe_writer_rows_total.
	_, metrics := get(t, srv.URL+"/metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(metrics))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, m := range fams["floe_writer_rows_total"].GetMetric() {
		want[label(m, "table")] += m.GetCounter().GetValue()
	}
	if len(want) == 0 {
		t.Fatal("/metrics has no floe_writer_rows_total")
	}
	re := regexp.MustCompile(`<section class="table" data-table="([^"]+)">(?s:.*?)<span class="committed-rows" data-value="(\d+)">`)
	seen := 0
	for _, m := range re.FindAllStringSubmatch(dom, -1) {
		got, _ := strconv.ParseFloat(m[2], 64)
		if w, ok := want[m[1]]; ok {
			seen++
			if got != w {
				t.Errorf("page: %s committed %v rows; /metrics floe_writer_rows_total says %v", m[1], got, w)
			}
		}
	}
	if seen < 3 {
		t.Errorf("the page shows committed rows for %d tables of /metrics' %v", seen, want)
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	headless(t, bin, srv.URL+"/", "--screenshot="+shot, "--window-size=1280,2400", "--hide-scrollbars")
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 20_000 {
		t.Fatalf("screenshot is %d bytes (PNG header %v), want a real page", len(b), bytes.HasPrefix(b, []byte("\x89PNG")))
	}
	if dir := os.Getenv("FLOE_SCREENSHOT_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "floe-status.png"), b, 0o644)
	}
}
