package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-lake/floe/aggregate"
	"github.com/floe-lake/floe/internal/units"
	"github.com/floe-lake/floe/source/kafka"
	"github.com/floe-lake/floe/source/mysql"
	"github.com/floe-lake/floe/verify"
)

// registerVerify: floe verify aggregate|mysql|kafka [flags]. Exit code 0:
// equal; 1: differences; 2: the check could not run.
func registerVerify(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	cfgPath := configFlag(fs)
	specPath := fs.String("spec", "", "aggregate: the aggregation spec file (YAML); required")
	from := fs.String("from", "", "aggregate: check windows starting at or after this time (RFC 3339 or YYYY-MM-DD), widened to the output's partition")
	to := fs.String("to", "", "aggregate: check windows starting before this time (RFC 3339 or YYYY-MM-DD), widened to the output's partition")
	step := fs.Duration("step", 0, "aggregate: check the windows this much at a time (e.g. 24h), holding one step's groups in memory (default: all at once)")
	tables := fs.String("tables", "", "mysql: check only these captured tables, db.table,... (default: all)")
	wait := fs.Duration("wait", 0, "mysql: how long a table's committed binlog position may take to reach the database's (default 1m)")
	chunkRows := fs.Int("chunk-rows", 0, "mysql: rows per checksum chunk (default 1000)")
	idle := fs.Duration("idle-timeout", 0, "kafka: stop reading a partition that delivers nothing for this long (default 5s)")
	format := fs.String("format", "text", "report format: text or json")
	jsonAlias := fs.Bool("json", false, "same as -format json (deprecated)")
	maxError := fs.Float64("max-error", 0, "relative error a measure may have before it counts as a difference")
	maxListed := fs.Int("max-listed", 100, "differences listed per table (all are counted)")
	concurrency := fs.Int("concurrency", 0, "files read in parallel (default: min(GOMAXPROCS, 8))")
	metricsAddr := fs.String("metrics-address", "", "serve /metrics and /healthz here while the check runs")
	pushURL := fs.String("pushgateway", "", "push the floe_verify_* metrics to this Prometheus Pushgateway URL when done")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: floe verify aggregate|mysql|kafka [flags]   (exit 0: equal, 1: differences, 2: could not run)")
		fs.PrintDefaults()
	}
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) == 0 {
			return usageError{errors.New("want a check: floe verify aggregate|mysql|kafka [flags]")}
		}
		check := args[0]
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{err}
		}
		if fs.NArg() > 0 {
			return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
		}
		if *jsonAlias {
			*format = "json"
		}
		if *format != "text" && *format != "json" {
			return usageError{fmt.Errorf("-format: %q is not text or json", *format)}
		}
		switch check {
		case verify.CheckAggregate, verify.CheckMySQL, verify.CheckKafka:
		default:
			return usageError{fmt.Errorf("unknown check %q: want aggregate, mysql or kafka", check)}
		}
		need := catalogSection
		if check != verify.CheckAggregate {
			need |= tablesSection | sourcesSection
		}
		cfg, err := loadConfig(*cfgPath, need)
		if err != nil {
			return err
		}
		cat, err := openCatalog(ctx, cfg)
		if err != nil {
			return usageError{err}
		}
		reg := prometheus.NewRegistry()
		opts := verify.Options{Logger: e.log, Metrics: verify.NewMetrics(reg), MaxError: *maxError, MaxListed: *maxListed, Concurrency: *concurrency}
		if *metricsAddr != "" && *metricsAddr != "off" {
			stop, err := serveMetrics(*metricsAddr, reg, e.log, nil)
			if err != nil {
				return err
			}
			defer stop()
		}
		var reports []*verify.Report
		switch check {
		case verify.CheckAggregate:
			if *specPath == "" {
				return usageError{errors.New("-spec: required")}
			}
			spec, err := aggregate.LoadSpec(*specPath)
			if err != nil {
				return usageError{err}
			}
			f, err := units.ParseTimeFlag("-from", *from)
			if err != nil {
				return usageError{err}
			}
			t, err := units.ParseTimeFlag("-to", *to)
			if err != nil {
				return usageError{err}
			}
			rep, err := verify.Aggregate(ctx, cat, spec, verify.AggregateRange{From: f, To: t, Step: *step}, opts)
			if err != nil {
				return usageError{err}
			}
			reports = append(reports, rep)
		case verify.CheckMySQL, verify.CheckKafka:
			mo := verify.MySQLOptions{Wait: *wait, ChunkRows: *chunkRows}
			if *tables != "" {
				mo.Tables = strings.Split(*tables, ",")
			}
			for _, s := range cfg.Sources {
				// The settings of a resolved entry are its kind's Config.
				var rep *verify.Report
				switch c := s.Settings().(type) {
				case *mysql.Config:
					if check != verify.CheckMySQL {
						continue
					}
					rep, err = verify.MySQL(ctx, cat, *c, mo, opts)
				case *kafka.Config:
					if check != verify.CheckKafka {
						continue
					}
					rep, err = verify.Kafka(ctx, cat, *c, verify.KafkaOptions{IdleTimeout: *idle}, opts)
				default:
					continue
				}
				if err != nil {
					return usageError{err}
				}
				reports = append(reports, rep)
			}
			if len(reports) == 0 {
				return usageError{fmt.Errorf("config has no %s source", check)}
			}
		default:
			return usageError{fmt.Errorf("unknown check %q: want aggregate, mysql or kafka", check)}
		}
		var diffs int64
		skipped := 0
		for _, rep := range reports {
			opts.Metrics.Observe(rep)
			diffs += rep.Differences()
			skipped += rep.Skipped()
			if *format == "json" {
				err = rep.WriteJSON(e.stdout)
			} else {
				err = rep.WriteText(e.stdout)
			}
			if err != nil {
				return usageError{err}
			}
		}
		if *pushURL != "" {
			if err := verify.Push(ctx, *pushURL, check, reg, nil); err != nil {
				return usageError{err}
			}
		}
		if diffs > 0 {
			return fmt.Errorf("%d differences", diffs)
		}
		if skipped > 0 {
			return usageError{fmt.Errorf("%d tables could not be checked", skipped)}
		}
		return nil
	}
}
