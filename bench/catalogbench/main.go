// Command catalogbench measures how the cost of committing grows (issue 15,
// item 6; `make bench-catalog`): commits per second and commit latency
// p50/p99 with 1, 4 and 16 concurrent writer processes and 1, 100 and 1,000
// tables, on each catalog Floe supports — SQLite, PostgreSQL
// (integration/engines/postgres.sh, FLOE_PG_DSN) and Iceberg's REST fixture
// (integration/engines/rest.sh, FLOE_REST_URI and FLOE_REST_WAREHOUSE) —
// and the size of metadata.json and the commit latency along 10,000
// commits to one table, with snapshot expiry on and off.
//
// Every writer is a real process (this command re-executed with -worker)
// that commits one-row appends through Floe's writer and so through
// table.Committer, round-robin over its share of the tables: with more
// writers than tables, writers share a table and their commits conflict
// and retry as concurrent `floe ingest` processes would. Data files go to
// a local directory (the REST fixture's own warehouse for REST): what is
// measured is the commit path and the catalog, not object storage.
//
//	make bench-catalog        # the full matrix, 20 s per cell; 10,000 commits with expiry on, 3,000 off
//	make bench-catalog-short  # writers 1,4; tables 1,100; 5 s per cell; 300 commits
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// options are the command's flags.
type options struct {
	catalogs       []string
	writers        []int
	tables         []int
	duration       time.Duration
	historyCommits int
	offCommits     int // commits of the expiry-off run, if fewer
	modes          []string
	matrix         bool
	expireEvery    int
	keepSnapshots  int
	work           string
}

func main() {
	var (
		o                         options
		cats, writers, tables, wk string
	)
	flag.StringVar(&cats, "catalogs", "sqlite,postgres,rest", "catalogs to measure (postgres and rest need FLOE_PG_DSN and FLOE_REST_URI)")
	flag.StringVar(&writers, "writers", "1,4,16", "numbers of concurrent writer processes")
	flag.StringVar(&tables, "tables", "1,100,1000", "numbers of tables")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "how long each cell of the matrix commits")
	flag.IntVar(&o.historyCommits, "history-commits", 10000, "commits to one table for the history test (0: skip it)")
	flag.IntVar(&o.offCommits, "history-off-commits", 0, "commits of the expiry-off history run, if fewer than -history-commits (its commits slow down with the history: about 1 s each near 10,000 on a loaded 2-core machine)")
	modes := flag.String("history-expiry", "off,on", "history runs: off, on or both")
	flag.BoolVar(&o.matrix, "matrix", true, "run the writers x tables matrix")
	flag.IntVar(&o.expireEvery, "expire-every", 100, "with expiry on: expire snapshots every this many commits")
	flag.IntVar(&o.keepSnapshots, "keep-snapshots", 100, "with expiry on: snapshots kept")
	flag.StringVar(&o.work, "work", "", "work directory (default: a new temporary one, removed at the end)")
	cpuprofile := flag.String("cpuprofile", "", "write this process's CPU profile to the file (the history runs in this process)")
	flag.StringVar(&wk, "worker", "", "internal: run as a writer process with these JSON arguments")
	flag.Parse()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if wk != "" {
		if err := runWorker(ctx, log, wk); err != nil {
			fmt.Fprintln(os.Stderr, "catalogbench worker:", err)
			os.Exit(1)
		}
		return
	}
	log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var err error
	if *cpuprofile != "" {
		f, perr := os.Create(*cpuprofile)
		if perr == nil {
			perr = pprof.StartCPUProfile(f)
		}
		if perr != nil {
			log.Error("bench-catalog failed", "err", fmt.Errorf("start CPU profile: %w", perr))
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	o.catalogs = strings.Split(cats, ",")
	o.modes = strings.Split(*modes, ",")
	if o.writers, err = ints(writers); err == nil {
		o.tables, err = ints(tables)
	}
	if err == nil {
		err = run(ctx, log, o)
	}
	if err != nil {
		pprof.StopCPUProfile()
		log.Error("bench-catalog failed", "err", err)
		os.Exit(1)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("parse list %q: %q is not a positive number", s, f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context, log *slog.Logger, o options) error {
	if o.work == "" {
		dir, err := os.MkdirTemp("", "floe-catalogbench-")
		if err != nil {
			return fmt.Errorf("make work directory: %w", err)
		}
		defer func() { _ = os.RemoveAll(dir) }()
		o.work = dir
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	var cells []cell
	for _, name := range o.catalogs {
		if !o.matrix {
			break
		}
		cc, err := catalogFor(name, o.work)
		if err != nil {
			return err
		}
		cs, err := matrix(ctx, log, self, name, cc, o)
		if err != nil {
			return fmt.Errorf("catalog %s: %w", name, err)
		}
		cells = append(cells, cs...)
	}
	if o.matrix {
		printMatrix(os.Stdout, o, cells)
	}
	if o.historyCommits > 0 {
		cc, err := catalogFor("sqlite", o.work)
		if err != nil {
			return err
		}
		var hs []historyRun
		for _, mode := range o.modes {
			if mode != "on" && mode != "off" {
				return fmt.Errorf("check flags: -history-expiry %q: want off, on or off,on", mode)
			}
			h, err := history(ctx, log, cc, o, mode == "on")
			if err != nil {
				return err
			}
			hs = append(hs, h)
		}
		printHistory(os.Stdout, o, hs)
	}
	return nil
}
