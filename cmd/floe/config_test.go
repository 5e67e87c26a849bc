package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/demo"
	"github.com/floe-lake/floe/source/kafka"
)

// configHead is the catalog section every test config starts with (lines
// 1–4); DIR is the test's temporary directory.
const configHead = `catalog:
  type: sqlite
  uri: DIR/cat.db
  warehouse: DIR/wh
`

// writeTestConfig writes DIR/floe.yaml with DIR replaced and returns its
// path, with the environment cleared of variables that override it.
func writeTestConfig(t *testing.T, text string) (dir, path string) {
	t.Helper()
	t.Setenv(catalog.EnvCatalogURI, "")
	t.Setenv(kafka.EnvBrokers, "")
	dir = t.TempDir()
	path = filepath.Join(dir, "floe.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(text, "DIR", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// TestConfigErrors checks that each kind of mistake, in every section, is
// reported as FILE:LINE: key.path: reason with exit code 2, and that
// nothing — no catalog file, no warehouse — was created.
func TestConfigErrors(t *testing.T) {
	const genSource = "  - type: gen\n    gen: {events-table: ods.events}\n"
	hive := strings.Replace(configHead, "sqlite", "hive", 1)
	tests := []struct {
		name string
		head string // default configHead
		yaml string // after head
		cmd  string // default ingest
		want string // every error line, FILE as floe.yaml
	}{
		{name: "unknown top-level key",
			yaml: "metrics-adress: \"off\"\nsources:\n" + genSource,
			want: `floe.yaml:5: metrics-adress: unknown key (field metrics-adress not found)`},
		{name: "unknown catalog key", head: configHead + "  wearhouse: x\n",
			want: `floe.yaml:5: catalog.wearhouse: unknown key (field wearhouse not found)`},
		{name: "wrong catalog type", head: hive,
			yaml: "sources:\n" + genSource,
			want: `floe.yaml:2: catalog.type: "hive" is not one of sqlite, postgres, rest`},
		{name: "unknown writer key",
			yaml: "writer:\n  comit-rows: 5\n",
			want: `floe.yaml:6: writer.comit-rows: unknown key (field comit-rows not found)`},
		{name: "bad duration",
			yaml: "writer:\n  commit-interval: 5 minutes\n",
			want: `floe.yaml:6: writer.commit-interval: "5 minutes" is not a duration (like 500ms, 30s, 5m, 1h)`},
		{name: "duration below minimum",
			yaml: "writer:\n  commit-timeout: 30s\n  commit-interval: 500ms\nsources:\n" + genSource,
			want: `floe.yaml:7: writer.commit-interval: 500ms is below the minimum of 1s`},
		{name: "bad size",
			yaml: "writer:\n  memory-budget: lots\n",
			want: `floe.yaml:6: writer.memory-budget: size "lots": want a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)`},
		{name: "memory limit below the budget",
			yaml: "writer:\n  memory-budget: 512MiB\n  memory-limit: 600MiB\nsources:\n" + genSource,
			want: `floe.yaml:7: writer.memory-limit: 629145600 bytes leaves less than 64MiB above memory-budget + flush-bytes (671088640)`},
		{name: "not a number",
			yaml: "writer:\n  zstd-level: high\n",
			want: `floe.yaml:6: writer.zstd-level: "high" is not an integer`},
		{name: "unknown compaction key",
			yaml: "compaction:\n  min-input-file: 3\n",
			want: `floe.yaml:6: compaction.min-input-file: unknown key (field min-input-file not found)`},
		{name: "dotted compaction key",
			yaml: "compaction:\n  rewrite-manifests.max-manifests: -1\n", cmd: "compact",
			want: `floe.yaml:6: compaction.rewrite-manifests.max-manifests: -1 must be at least 1`},
		{name: "young orphans",
			yaml: "writer:\n  commit-interval: 1h\ncompaction:\n  orphan-older-than: 1h1m\n", cmd: "compact",
			want: `floe.yaml:8: compaction.orphan-older-than: 1h1m0s must exceed writer.commit-interval + writer.commit-timeout (1h2m0s)`},
		{name: "unknown table key",
			yaml: "tables:\n  - name: a.b\n    schema: [{name: id, type: long}]\n    partitions: []\n",
			want: `floe.yaml:8: tables[0].partitions: unknown key (field partitions not found)`},
		{name: "unknown column key",
			yaml: "tables:\n  - name: a.b\n    schema:\n      - {name: id, type: long, nullable: true}\n",
			want: `floe.yaml:8: tables[0].schema[0].nullable: unknown key (field nullable not found)`},
		{name: "bad column type",
			yaml: "tables:\n  - name: a.b\n    schema:\n      - {name: id, type: long}\n      - {name: ts, type: timestamptz}\n      - {name: s, type: strng}\n" + "sources:\n" + genSource,
			want: `floe.yaml:10: tables[0].schema[2].type: "strng" is not an Iceberg type`},
		{name: "bad nested type",
			yaml: "tables:\n  - name: a.b\n    schema:\n      - name: s\n        type: struct\n        fields:\n          - {name: x, type: int}\n          - {name: y, type: nope}\n" + "sources:\n" + genSource,
			want: `floe.yaml:12: tables[0].schema[0].fields[1].type: "nope" is not an Iceberg type`},
		{name: "bad transform",
			yaml: "tables:\n  - name: a.b\n    schema: [{name: ts, type: timestamp}]\n    partition:\n      - {column: ts, transform: weekly}\n" + "sources:\n" + genSource,
			want: `floe.yaml:9: tables[0].partition[0].transform: unknown transform "weekly": want identity, year, month, day, hour, bucket[N], truncate[W] or void`},
		{name: "bad sort direction",
			yaml: "tables:\n  - name: a.b\n    schema: [{name: ts, type: timestamp}]\n    sort: [{column: ts, direction: up}]\n" + "sources:\n" + genSource,
			want: `floe.yaml:8: tables[0].sort[0].direction: direction "up": want asc or desc`},
		{name: "identifier field",
			yaml: "tables:\n  - name: a.b\n    schema: [{name: id, type: long}]\n    identifier-fields: [id]\n" + "sources:\n" + genSource,
			want: `floe.yaml:8: tables[0].identifier-fields[0]: column "id" must be required`},
		{name: "format version",
			yaml: "tables:\n  - name: a.b\n    schema: [{name: id, type: long}]\n    properties: {format-version: \"7\"}\n" + "sources:\n" + genSource,
			want: `floe.yaml:8: tables[0].properties.format-version: "7" is not 1, 2 or 3`},
		{name: "table name",
			yaml: "tables:\n  - name: events\n    schema: [{name: id, type: long}]\n" + "sources:\n" + genSource,
			want: `floe.yaml:6: tables[0].name: table name "events": want namespace.table`},
		{name: "duplicate table",
			yaml: "tables:\n  - name: a.b\n    schema: [{name: id, type: long}]\n  - name: a.b\n    schema: [{name: id, type: long}]\n" + "sources:\n" + genSource,
			want: `floe.yaml:8: tables[1].name: table a.b is also tables[0]`},
		{name: "unknown source key",
			yaml: "sources:\n  - type: gen\n    gen: {events-table: ods.events}\n    kafak: {}\n",
			want: `floe.yaml:8: sources[0].kafak: unknown key (field kafak not found)`},
		{name: "unknown key in a source section",
			yaml: "sources:\n  - type: gen\n    gen:\n      events-table: ods.events\n      sed: 1\n",
			want: `floe.yaml:9: sources[0].gen.sed: unknown key (field sed not found)`},
		{name: "unknown key in a kafka route",
			yaml: "sources:\n" + genSource + "  - type: kafka\n    kafka:\n      brokers: [127.0.0.1:9092]\n      routes:\n        - topc: [clicks]\n          table: ods.clicks\n",
			want: `floe.yaml:12: sources[1].kafka.routes[0].topc: unknown key (field topc not found)`},
		{name: "source type",
			yaml: "sources:\n  - gen: {events-table: ods.events}\n",
			want: `floe.yaml:6: sources[0].type: required (gen, kafka, mysql)`},
		{name: "source setting",
			yaml: "sources:\n  - type: gen\n    gen:\n      events-table: ods.events\n      partitions: 0\n",
			want: `floe.yaml:9: sources[0].gen.partitions: must be between 1 and 65536`},
		{name: "absent key: nearest ancestor",
			yaml: "sources:\n  - type: kafka\n    kafka:\n      routes: [{topics: [a], table: x.a}]\n",
			want: `floe.yaml:7: sources[0].kafka.brokers: none configured (set brokers or FLOE_KAFKA_BROKERS)`},
		{name: "no sources",
			yaml: "writer: {commit-interval: 5s}\n",
			want: `floe.yaml: sources: none configured`},
		{name: "metrics address",
			yaml: "metrics-address: nowhere\nsources:\n" + genSource,
			want: `floe.yaml:5: metrics-address: "nowhere" is not host:port or off`},
		{name: "wrong shape",
			yaml: "writer: [1, 2]\n",
			want: `floe.yaml:5: writer: want a mapping, not a list`},
		{name: "syntax",
			yaml: "writer:\n  commit-interval: 5s\n   memory-budget: 1MiB\n",
			want: `floe.yaml:7: mapping values are not allowed in this context`},
		{name: "every mistake",
			yaml: "writer:\n  comit-rows: 5\ncompaction:\n  intervall: 1m\ntables:\n  - name: a.b\n    schema: [{name: id, tpye: long}]\n",
			want: "floe.yaml:6: writer.comit-rows: unknown key (field comit-rows not found)\n" +
				"floe.yaml:8: compaction.intervall: unknown key (field intervall not found)\n" +
				"floe.yaml:11: tables[0].schema[0].tpye: unknown key (field tpye not found)"},
		{name: "every invalid section", head: hive,
			yaml: "writer:\n  commit-interval: 1ms\ntables:\n  - name: a.b\n    schema: [{name: id, type: x}]\nsources:\n  - type: nope\n",
			want: "floe.yaml:2: catalog.type: \"hive\" is not one of sqlite, postgres, rest\n" +
				"floe.yaml:6: writer.commit-interval: 1ms is below the minimum of 1s\n" +
				"floe.yaml:9: tables[0].schema[0].type: \"x\" is not an Iceberg type\n" +
				"floe.yaml:11: sources[0].type: \"nope\" is not a known source type (gen, kafka, mysql)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := configHead
			if tt.head != "" {
				head = tt.head
			}
			dir, path := writeTestConfig(t, head+tt.yaml)
			cmd, need := tt.cmd, ingestSections
			if cmd == "" {
				cmd = "ingest"
			}
			if cmd == "compact" {
				need = compactSections
			}
			// A config that loads would start the daemon: stop here.
			if _, err := loadConfig(path, need); err == nil {
				t.Fatalf("no error, want:\n%s", tt.want)
			}
			var stdout, stderr bytes.Buffer
			code := run([]string{cmd, "-config", path}, &stdout, &stderr)
			want := "floe " + cmd + ": " + strings.ReplaceAll(tt.want, "floe.yaml", path) + "\n"
			if code != 2 || stderr.String() != want {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2, stderr:\n%s", code, stderr.String(), want)
			}
			for _, f := range []string{"cat.db", "wh"} {
				if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists after a config error (%v)", f, err)
				}
			}
		})
	}
}

// TestConfigSections checks that a command validates only the sections it
// uses: floe table and floe compact run with a Kafka source that has no
// brokers (no FLOE_KAFKA_BROKERS), which floe ingest rejects — while a
// typo anywhere still stops every command.
func TestConfigSections(t *testing.T) {
	kafkaSource := "sources:\n  - type: kafka\n    kafka:\n      routes: [{topics: [clicks], table: ods.clicks}]\n"
	_, path := writeTestConfig(t, configHead+kafkaSource)
	for _, args := range [][]string{
		{"table", "-config", path, "list"},
		{"compact", "-config", path, "-dry-run"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 0 {
			t.Errorf("floe %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"ingest", "-config", path}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), path+":7: sources[0].kafka.brokers: none configured") {
		t.Errorf("floe ingest: exit %d, want 2 naming sources[0].kafka.brokers\n%s", code, stderr.String())
	}

	_, path = writeTestConfig(t, configHead+strings.Replace(kafkaSource, "routes", "ruotes", 1))
	for _, cmd := range [][]string{{"table", "list"}, {"compact", "-dry-run"}, {"read", "ods.clicks"}} {
		stderr.Reset()
		args := append([]string{cmd[0], "-config", path}, cmd[1:]...)
		if code := run(args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), path+":8: sources[0].kafka.ruotes: unknown key") {
			t.Errorf("floe %s: exit %d, want 2 naming sources[0].kafka.ruotes\n%s", cmd[0], code, stderr.String())
		}
	}
}

// TestConfigDefaults: without a file the defaults are validated, and
// errors have no FILE.
func TestConfigDefaults(t *testing.T) {
	t.Setenv(catalog.EnvCatalogURI, "")
	if _, err := loadConfig("", allSections); err == nil || err.Error() != "sources: none configured" {
		t.Errorf("embedded defaults for ingest: got %v", err)
	}
	if _, err := loadConfig("", catalogSection); err != nil {
		t.Errorf("embedded defaults for floe table: %v", err)
	}
}

// TestShippedConfigsLoad checks the example configs and the demo's against
// the loader, for every command.
func TestShippedConfigsLoad(t *testing.T) {
	t.Setenv(catalog.EnvCatalogURI, "")
	t.Setenv("FLOE_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/")
	demoPath, err := demo.WriteConfig(filepath.Join(t.TempDir(), "demo-lake"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"../../examples/floe.yaml", "../../examples/cdc/floe.yaml", demoPath} {
		for _, need := range []section{allSections, ingestSections, compactSections, catalogSection} {
			if _, err := loadConfig(path, need); err != nil {
				t.Errorf("%s (sections %b): %v", path, need, err)
			}
		}
	}
}
