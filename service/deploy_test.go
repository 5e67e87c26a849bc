package service

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// eventOnly are metrics of the dashboard and rules whose series appear at
// their first event (a labelled counter with no child before): a
// scrape of a healthy run lacks them, so the test only checks that Floe
// declares them.
var eventOnly = []string{
	"floe_writer_commit_conflicts_total",
	"floe_compaction_errors_total",
	"floe_mysql_dead_letters_total",
	"floe_daemon_restarts_total",
	"floe_compaction_groups_total",
}

var metricNameRe = regexp.MustCompile(`\b((?:floe|process|go)_[a-z0-9_]+)`)

// deployMetrics are the metric names deploy/'s dashboard and alert rules
// use.
func deployMetrics(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, f := range []string{"../deploy/grafana-dashboard.json", "../deploy/prometheus-rules.yml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricNameRe.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(names, m[1]) {
				names = append(names, m[1])
			}
		}
	}
	if len(names) < 15 {
		t.Fatalf("deploy/ names only %d metrics: %v", len(names), names)
	}
	return names
}

// missingDeployMetrics returns every metric deploy/ names that the scrape
// of a running floe run lacks (an event-only one must at least be
// declared in Floe's code).
func missingDeployMetrics(t *testing.T, scrape string) []string {
	t.Helper()
	var missing []string
	exported := map[string]bool{}
	for _, line := range strings.Split(scrape, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		exported[name] = true
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			exported[strings.TrimSuffix(name, suf)] = true
		}
	}
	for _, name := range deployMetrics(t) {
		if exported[name] {
			continue
		}
		if slices.Contains(eventOnly, name) && declared(t, name) {
			continue
		}
		missing = append(missing, name)
	}
	return missing
}

// declared reports whether a Go file of the module names metric name.
func declared(t *testing.T, name string) bool {
	t.Helper()
	for _, dir := range []string{"../writer", "../compaction", "../source/mysql", "../source/kafka", "../internal/daemon"} {
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			if !strings.HasSuffix(f.Name(), ".go") || strings.HasSuffix(f.Name(), "_test.go") {
				continue
			}
			b, err := os.ReadFile(dir + "/" + f.Name())
			if err == nil && strings.Contains(string(b), `"`+name+`"`) {
				return true
			}
		}
	}
	return false
}

// TestDeployMetricNames: the names are read from both files (the check
// against a running floe run is in TestRunEqualsSubcommands).
func TestDeployMetricNames(t *testing.T) {
	names := deployMetrics(t)
	if !slices.Contains(names, "floe_ready") || !slices.Contains(names, "floe_kafka_consumer_lag_records") {
		t.Fatalf("deployMetrics missed names: %v", names)
	}
}
