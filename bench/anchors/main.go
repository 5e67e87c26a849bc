// Command anchors is the side-by-side benchmark of `floe ingest` against
// Apache Iceberg's Kafka Connect sink (issue 15, item 1; `make
// bench-anchors`): the same pre-produced JSON records on the local Kafka
// broker (integration/kafka.sh) into tables of the same schema,
// partitioning and compression on the same MinIO (integration/minio.sh),
// each system with its own SQLite catalog (Floe's; the JDBC catalog on
// SQLite for Connect) and run alternately. Per run it reports the records
// per CPU-second of the process (utime+stime from /proc, up to the moment
// the table holds every record), the drain time (process start until
// then), peak RSS (VmHWM), and the table's data files and snapshots; then
// the ratios, Floe over Connect, as a table.
//
// Connect runs as a standalone worker (ConnectStandalone) with the jars
// integration/kafka-connect.sh resolves from Maven Central; its directory
// is FLOE_CONNECT_LIBS. The broker and MinIO come from FLOE_KAFKA_BROKERS
// and FLOE_S3_*. Run through the Makefile:
//
//	make bench-anchors        # 1,000,000 records, two runs each
//	make bench-anchors-short  # 50,000 records, one run each (about 2 minutes)
//
// Floe alone, two builds alternating (old and new), with CPU profiles kept
// in the work directory; the records are produced once into -topic and
// reused by later invocations:
//
//	go run ./bench/anchors -systems floe -floe /tmp/old-floe, -runs 3 \
//	    -topic anchors-1m -cpuprofile -keep
//
// An empty entry of -floe is the binary built from ./cmd/floe. With more
// than one binary the report adds each one's per-pair ratio to the first.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// plan is one run to make.
type plan struct {
	group   string // "main" or "fast"
	system  string
	label   string // system, or floe-K with several floe binaries
	bin     string
	pair    int // the round within its group
	commits time.Duration
}

// runPlans alternates the systems (and the floe binaries) run by run:
// the main comparison's rounds, then the short-commit one's.
func runPlans(o options) []plan {
	var plans []plan
	round := func(group string, pair int, floe, connect time.Duration) {
		if o.systems[sysFloe] {
			for k, bin := range o.floeBins {
				label := sysFloe
				if len(o.floeBins) > 1 {
					label = fmt.Sprintf("floe-%d", k+1)
				}
				plans = append(plans, plan{group, sysFloe, label, bin, pair, floe})
			}
		}
		if o.systems[sysConnect] {
			plans = append(plans, plan{group, sysConnect, sysConnect, "", pair, connect})
		}
	}
	for r := range o.runs {
		round("main", r, o.interval, o.interval)
	}
	if o.fastFloe > 0 {
		for r := range o.runs {
			round("fast", r, o.fastFloe, o.fastConnect)
		}
	}
	return plans
}

// options are the command's flags.
type options struct {
	records     int
	partitions  int
	runs        int
	interval    time.Duration // the commit interval of the main comparison
	fastFloe    time.Duration // Floe's short commit interval
	fastConnect time.Duration // Connect's minimum practical commit interval
	floeBins    []string      // floe binaries, run alternately ("" = built from ./cmd/floe)
	systems     map[string]bool
	topic       string // a topic to reuse ("" = a new one per invocation)
	cpuProfile  bool   // floe ingest -cpuprofile into each run's directory
	connectLibs string
	connectJVM  string
	tasks       int
	timeout     time.Duration
	keep        bool
	work        string
}

func main() {
	var o options
	flag.IntVar(&o.records, "records", 1000000, "records to produce (280-byte JSON)")
	flag.IntVar(&o.partitions, "partitions", 4, "partitions of the topic")
	flag.IntVar(&o.runs, "runs", 2, "runs of each system, alternating")
	flag.DurationVar(&o.interval, "commit-interval", 10*time.Second, "commit interval of the main comparison (both systems)")
	flag.DurationVar(&o.fastFloe, "floe-fast-interval", time.Second, "Floe's short commit interval (0: skip the short-commit comparison)")
	flag.DurationVar(&o.fastConnect, "connect-fast-interval", time.Second, "Connect's commit interval beside Floe's short one (its minimum practical one)")
	floeBins := flag.String("floe", "", "floe binary, or comma-separated binaries run alternately (an empty entry: built from ./cmd/floe)")
	systems := flag.String("systems", sysFloe+","+sysConnect, "systems to run, comma-separated: floe, connect")
	flag.StringVar(&o.topic, "topic", "", "topic of the records: produced if it does not exist, else reused as it is (default: a new topic)")
	flag.BoolVar(&o.cpuProfile, "cpuprofile", false, "write a CPU profile of every floe run (floe ingest -cpuprofile) into its run directory (with -keep or -work)")
	flag.StringVar(&o.connectLibs, "connect-libs", os.Getenv("FLOE_CONNECT_LIBS"), "directory of Kafka Connect's and the Iceberg sink's jars (integration/kafka-connect.sh env)")
	flag.StringVar(&o.connectJVM, "connect-jvm-opts", "", "extra JVM options of the Connect worker, space-separated (default: the JVM's own defaults)")
	flag.IntVar(&o.tasks, "connect-tasks", 1, "the Iceberg sink's tasks.max (Floe is one process)")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "longest a run may take to drain")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, catalogs, logs)")
	flag.StringVar(&o.work, "work", "", "work directory (default: a new temporary one)")
	flag.Parse()
	o.floeBins = strings.Split(*floeBins, ",")
	o.systems = map[string]bool{}
	for _, s := range strings.Split(*systems, ",") {
		if s != sysFloe && s != sysConnect {
			fmt.Fprintf(os.Stderr, "anchors: -systems: unknown system %q (floe, connect)\n", s)
			os.Exit(2)
		}
		o.systems[s] = true
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := run(context.Background(), log, o); err != nil {
		log.Error("bench-anchors failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, o options) error {
	env, err := loadEnv()
	if err != nil {
		return err
	}
	if o.systems[sysConnect] && o.connectLibs == "" {
		return errors.New("check environment: FLOE_CONNECT_LIBS is not set (eval \"$(integration/kafka-connect.sh env)\")")
	}
	if o.work == "" {
		if o.work, err = os.MkdirTemp("", "floe-anchors-"); err != nil {
			return fmt.Errorf("make work directory: %w", err)
		}
		if !o.keep {
			defer func() { _ = os.RemoveAll(o.work) }()
		}
	}
	for i, bin := range o.floeBins {
		if bin != "" {
			continue
		}
		o.floeBins[i] = filepath.Join(o.work, "floe")
		log.Info("building floe", "out", o.floeBins[i])
		cmd := exec.Command("go", "build", "-o", o.floeBins[i], "./cmd/floe")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build floe: %w", err)
		}
	}
	id := randHex()
	topic := o.topic
	if topic == "" {
		topic = fmt.Sprintf("anchors-%d-%s", o.records, id)
	}
	bytesPerRecord := float64(recordBytes)
	log.Info("producing", "records", o.records, "topic", topic, "partitions", o.partitions)
	switch err := createTopic(ctx, env.brokers, topic, o.partitions); {
	case o.topic != "" && errors.Is(err, kerr.TopicAlreadyExists):
		n, err := topicRecords(ctx, env.brokers, topic, o.partitions)
		if err != nil {
			return err
		}
		if n != int64(o.records) {
			return fmt.Errorf("reuse topic %s: it holds %d records, want %d", topic, n, o.records)
		}
		log.Info("topic exists: reusing its records", "topic", topic)
	case err != nil:
		return err
	default:
		if bytesPerRecord, err = produce(ctx, env.brokers, topic, o.partitions, o.records); err != nil {
			return err
		}
		log.Info("produced", "value_bytes_per_record", fmt.Sprintf("%.1f", bytesPerRecord))
	}

	var results []result
	n := 0
	for _, p := range runPlans(o) {
		n++
		rs := runSpec{
			n: n, system: p.system, bin: p.bin, commits: p.commits, topic: topic, records: o.records,
			dir: filepath.Join(o.work, fmt.Sprintf("run%d-%s", n, p.label)), env: env, opts: o,
			prefix: fmt.Sprintf("anchors-%s/run%d-%s", id, n, p.label),
		}
		log.Info("run", "n", rs.n, "system", p.label, "commit_interval", rs.commits)
		r, err := rs.run(ctx, log)
		if err != nil {
			return fmt.Errorf("run %d (%s): %w", rs.n, p.label, err)
		}
		r.group, r.label, r.pair = p.group, p.label, p.pair
		log.Info("run done", "n", rs.n, "system", p.label, "records_per_cpu_s", int(r.perCPU()),
			"drain", r.drain.Round(10*time.Millisecond), "peak_rss_mib", r.peakRSS>>20, "files", r.files, "snapshots", r.snapshots)
		results = append(results, r)
	}
	printReport(os.Stdout, o, bytesPerRecord, results)
	if o.keep {
		fmt.Printf("\nwork directory kept: %s\n", o.work)
	}
	return nil
}

// benchEnv are the servers, from the environment integration/*.sh export.
type benchEnv struct {
	brokers                                   []string
	s3Endpoint, s3AccessKeyID, s3SecretAccess string
}

func loadEnv() (benchEnv, error) {
	e := benchEnv{
		brokers:        strings.Split(os.Getenv("FLOE_KAFKA_BROKERS"), ","),
		s3Endpoint:     os.Getenv("FLOE_S3_ENDPOINT"),
		s3AccessKeyID:  os.Getenv("FLOE_S3_ACCESS_KEY_ID"),
		s3SecretAccess: os.Getenv("FLOE_S3_SECRET_ACCESS_KEY"),
	}
	switch {
	case e.brokers[0] == "":
		return e, errors.New("check environment: FLOE_KAFKA_BROKERS is not set (eval \"$(integration/kafka.sh start)\")")
	case e.s3Endpoint == "" || e.s3AccessKeyID == "":
		return e, errors.New("check environment: FLOE_S3_* are not set (eval \"$(integration/minio.sh start)\")")
	}
	return e, nil
}
