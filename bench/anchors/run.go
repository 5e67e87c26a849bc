package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/table"
)

const (
	sysFloe    = "floe"
	sysConnect = "connect"
	bucket     = "anchors"
	tableName  = "ods.clicks"
	// connectJVMDefaults are the heap and JVM options connect-standalone.sh
	// (kafka-run-class.sh) starts a worker with.
	connectJVMDefaults = "-Xms256M -Xmx2G -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true"
)

// tableSpec is the table both systems write: the clickstream's columns,
// partitioned by day of event_time, Parquet with zstd.
func tableSpec() table.Spec {
	str := func(n string) table.Field { return table.Field{Name: n, Type: "string"} }
	return table.Spec{
		Name: tableName,
		Schema: []table.Field{
			{Name: "event_id", Type: "long", Required: true},
			{Name: "event_time", Type: "timestamptz", Required: true},
			{Name: "user_id", Type: "long"},
			str("session_id"), str("event_type"), str("page_url"),
			{Name: "device", Type: "struct", Fields: []table.Field{str("os"), str("app_version")}},
			{Name: "tags", Type: "list", Element: &table.Field{Type: "string"}},
		},
		Partition:  []table.PartitionField{{Column: "event_time", Transform: "day"}},
		Properties: map[string]string{"write.format.default": "parquet", "write.parquet.compression-codec": "zstd"},
	}
}

// runSpec is one run of one system.
type runSpec struct {
	n       int
	system  string
	bin     string // the floe binary
	commits time.Duration
	topic   string
	records int
	dir     string
	prefix  string // the warehouse's prefix in the bucket
	env     benchEnv
	opts    options
}

// result is what one run measured.
type result struct {
	group     string
	system    string
	label     string // system, or floe-K with several floe binaries
	pair      int    // the round within its group
	commits   time.Duration
	records   int
	cpu       time.Duration // utime+stime when the table held every record
	drain     time.Duration
	peakRSS   int64
	files     int64
	snapshots int
}

func (r result) perCPU() float64 { return float64(r.records) / r.cpu.Seconds() }

func (s runSpec) catalogConfig() catalog.Config {
	return catalog.Config{
		Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(s.dir, "catalog.db"),
		Warehouse: "s3://" + bucket + "/" + s.prefix,
		S3: catalog.S3Config{Endpoint: s.env.s3Endpoint, Region: "us-east-1",
			AccessKeyID: s.env.s3AccessKeyID, SecretAccessKey: s.env.s3SecretAccess},
	}
}

func (s runSpec) run(ctx context.Context, log *slog.Logger) (result, error) {
	res := result{system: s.system, commits: s.commits, records: s.records}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return res, fmt.Errorf("make run directory: %w", err)
	}
	cc := s.catalogConfig()
	cat, err := catalog.Open(ctx, cc)
	if err != nil {
		return res, fmt.Errorf("open catalog: %w", err)
	}
	// Both tables are created the same way, before the process starts.
	if _, err := table.Ensure(ctx, cat, tableSpec()); err != nil {
		return res, fmt.Errorf("create table: %w", err)
	}
	var cmd *exec.Cmd
	switch s.system {
	case sysFloe:
		cmd, err = s.floeCmd(cc)
	default:
		cmd, err = s.connectCmd(ctx, cc)
	}
	if err != nil {
		return res, err
	}
	logf, err := os.Create(filepath.Join(s.dir, s.system+".log"))
	if err != nil {
		return res, fmt.Errorf("create log: %w", err)
	}
	defer func() { _ = logf.Close() }()
	cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, s.dir
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s: %w", s.system, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pid := cmd.Process.Pid
	deadline := time.After(s.opts.timeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case err := <-exited:
			return res, fmt.Errorf("%s exited before draining: %w; see %s", s.system, err, logf.Name())
		case <-deadline:
			stop(cmd, exited)
			return res, fmt.Errorf("%s did not drain within %s; see %s", s.system, s.opts.timeout, logf.Name())
		case <-tick.C:
		}
		// Sample first: the figures are those of the moment the table was
		// seen complete (at most one poll late).
		st, serr := readProc(pid)
		n, _ := tableCounts(ctx, cat)
		if time.Since(last) > 15*time.Second {
			log.Info("waiting", "system", s.system, "records", n, "of", s.records)
			last = time.Now()
		}
		if n < int64(s.records) {
			continue
		}
		if serr != nil {
			return res, serr
		}
		res.drain = time.Since(start)
		res.cpu, res.peakRSS = st.cpu, st.peakRSS
		break
	}
	stop(cmd, exited)
	tbl, err := cat.LoadTable(ctx, mustIdent())
	if err != nil {
		return res, fmt.Errorf("load table: %w", err)
	}
	res.snapshots = len(tbl.Metadata().Snapshots())
	res.files, _ = table.SummaryInt(tbl.CurrentSnapshot(), "total-data-files")
	if n, _ := table.SummaryInt(tbl.CurrentSnapshot(), "total-records"); n != int64(s.records) {
		return res, fmt.Errorf("table holds %d records, want %d (duplicates?)", n, s.records)
	}
	return res, nil
}

func mustIdent() icetable.Identifier {
	id, _ := table.ParseIdent(tableName)
	return id
}

// tableCounts is the table's total-records from its snapshot summary.
func tableCounts(ctx context.Context, cat icecat.Catalog) (int64, error) {
	tbl, err := cat.LoadTable(ctx, mustIdent())
	if err != nil {
		return 0, err
	}
	n, _ := table.SummaryInt(tbl.CurrentSnapshot(), "total-records")
	return n, nil
}

// stop sends SIGTERM, waits up to a minute, then SIGKILL.
func stop(cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		_ = err // stopped by our signal: its exit status says nothing
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		_ = exitStatus(exited)
	}
}

// exitStatus waits for the process's exit status.
func exitStatus(exited <-chan error) error { return <-exited }

func (s runSpec) floeCmd(cc catalog.Config) (*exec.Cmd, error) {
	cfg := map[string]any{
		"catalog": map[string]any{"type": cc.Type, "name": cc.Name, "uri": cc.URI, "warehouse": cc.Warehouse,
			"s3": map[string]any{"endpoint": cc.S3.Endpoint, "access-key-id": cc.S3.AccessKeyID, "secret-access-key": cc.S3.SecretAccessKey}},
		"writer":          map[string]any{"commit-interval": s.commits.String()},
		"metrics-address": "off",
		"tables":          []any{tableSpec()},
		"sources": []any{map[string]any{"type": "kafka", "kafka": map[string]any{
			"id": "clicks", "brokers": s.env.brokers, "group": "floe-" + filepath.Base(s.dir) + "-" + randHex(),
			"routes": []any{map[string]any{"topics": []string{s.topic}, "table": tableName}},
		}}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode floe.yaml: %w", err)
	}
	p := filepath.Join(s.dir, "floe.yaml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return nil, fmt.Errorf("write floe.yaml: %w", err)
	}
	args := []string{"ingest", "-config", p}
	if s.opts.cpuProfile {
		args = append(args, "-cpuprofile", filepath.Join(s.dir, "cpu.pprof"))
	}
	return exec.Command(s.bin, args...), nil
}

func (s runSpec) connectCmd(ctx context.Context, cc catalog.Config) (*exec.Cmd, error) {
	id := randHex()
	control := "iceberg-control-" + id
	if err := createTopic(ctx, s.env.brokers, control, 1); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	worker := map[string]string{
		"bootstrap.servers":              strings.Join(s.env.brokers, ","),
		"key.converter":                  "org.apache.kafka.connect.storage.StringConverter",
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"value.converter.schemas.enable": "false",
		"offset.storage.file.filename":   filepath.Join(s.dir, "connect.offsets"),
		"offset.flush.interval.ms":       "10000",
		"plugin.discovery":               "service_load",
		"listeners":                      "http://127.0.0.1:" + strconv.Itoa(port),
	}
	connector := map[string]string{
		"name":                                 "iceberg-anchors-" + id,
		"connector.class":                      "org.apache.iceberg.connect.IcebergSinkConnector",
		"tasks.max":                            strconv.Itoa(s.opts.tasks),
		"topics":                               s.topic,
		"iceberg.tables":                       tableName,
		"iceberg.catalog":                      cc.Name,
		"iceberg.catalog.catalog-impl":         "org.apache.iceberg.jdbc.JdbcCatalog",
		"iceberg.catalog.uri":                  "jdbc:sqlite:" + cc.URI,
		"iceberg.catalog.warehouse":            cc.Warehouse,
		"iceberg.catalog.io-impl":              "org.apache.iceberg.aws.s3.S3FileIO",
		"iceberg.catalog.s3.endpoint":          cc.S3.Endpoint,
		"iceberg.catalog.s3.path-style-access": "true",
		"iceberg.catalog.s3.access-key-id":     cc.S3.AccessKeyID,
		"iceberg.catalog.s3.secret-access-key": cc.S3.SecretAccessKey,
		"iceberg.catalog.client.region":        cc.S3.Region,
		"iceberg.control.topic":                control,
		"iceberg.control.group-id-prefix":      "cg-control-" + id,
		"iceberg.control.commit.interval-ms":   strconv.FormatInt(s.commits.Milliseconds(), 10),
	}
	log4j := "log4j.rootLogger=INFO, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\n" +
		"log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
	files := map[string]string{"worker.properties": props(worker), "connector.properties": props(connector), "log4j.properties": log4j}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(text), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	jvm := s.opts.connectJVM
	if jvm == "" {
		jvm = connectJVMDefaults
	}
	args := strings.Fields(jvm)
	args = append(args, "-Dlog4j.configuration=file:"+filepath.Join(s.dir, "log4j.properties"),
		"-cp", filepath.Join(s.opts.connectLibs, "*"), "org.apache.kafka.connect.cli.ConnectStandalone",
		filepath.Join(s.dir, "worker.properties"), filepath.Join(s.dir, "connector.properties"))
	cmd := exec.Command("java", args...)
	cmd.Env = append(os.Environ(), "AWS_REGION="+cc.S3.Region)
	return cmd, nil
}

func props(m map[string]string) string {
	var b strings.Builder
	for k, v := range m {
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	return b.String()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// procStat is a process's CPU time and peak RSS, from /proc.
type procStat struct {
	cpu     time.Duration
	peakRSS int64
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times (100 on
// every Linux architecture Go supports).
const clockTicks = 100

func readProc(pid int) (procStat, error) {
	var st procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return st, errors.New("read /proc stat: too few fields")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stm, _ := strconv.ParseInt(f[12], 10, 64)
	st.cpu = time.Duration(ut+stm) * time.Second / clockTicks
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, fmt.Errorf("read /proc/%d/status: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			st.peakRSS = kb << 10
		}
	}
	return st, nil
}
