package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/table"
)

// cell is one measured combination of catalog, tables and writers.
type cell struct {
	catalog   string
	tables    int
	writers   int
	commits   int
	seconds   float64
	p50, p99  time.Duration
	conflicts int
	errors    int
	firstErr  string
	createPS  float64 // tables created per second (same for every writers count)
}

// catalogFor is the catalog named name: a fresh SQLite file, or the
// PostgreSQL server or REST fixture the environment names (fresh
// namespaces there).
func catalogFor(name, work string) (catalog.Config, error) {
	dir := filepath.Join(work, name)
	switch name {
	case "sqlite":
		return catalog.Config{Type: catalog.TypeSQLite, Name: "floe", URI: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")}, nil
	case "postgres":
		dsn := os.Getenv("FLOE_PG_DSN")
		if dsn == "" {
			return catalog.Config{}, errors.New("check environment: FLOE_PG_DSN is not set (eval \"$(integration/engines/postgres.sh start)\")")
		}
		return catalog.Config{Type: catalog.TypePostgres, Name: "floe", URI: dsn, Warehouse: filepath.Join(dir, "warehouse")}, nil
	case "rest":
		uri, wh := os.Getenv("FLOE_REST_URI"), os.Getenv("FLOE_REST_WAREHOUSE")
		if uri == "" {
			return catalog.Config{}, errors.New("check environment: FLOE_REST_URI is not set (eval \"$(integration/engines/rest.sh start)\")")
		}
		return catalog.Config{Type: catalog.TypeREST, Name: "floe", URI: uri, Warehouse: wh}, nil
	}
	return catalog.Config{}, fmt.Errorf("check flags: unknown catalog %q (sqlite, postgres, rest)", name)
}

func randHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// matrix creates each count of tables in a fresh namespace and runs every
// count of writers on them.
func matrix(ctx context.Context, log *slog.Logger, self, name string, cc catalog.Config, o options) ([]cell, error) {
	cat, err := catalog.Open(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("open catalog: %w", err)
	}
	var out []cell
	for _, nt := range o.tables {
		ns := fmt.Sprintf("cb_%s_%d", randHex(), nt)
		start := time.Now()
		for i := range nt {
			if _, err := table.Ensure(ctx, cat, tinySpec(tableName(ns, i))); err != nil {
				return nil, fmt.Errorf("create table: %w", err)
			}
		}
		createPS := float64(nt) / time.Since(start).Seconds()
		log.Info("tables created", "catalog", name, "tables", nt, "per_second", int(createPS))
		for _, nw := range o.writers {
			c, err := runCell(ctx, self, workerArgs{Catalog: cc, Namespace: ns, Tables: nt, Writers: nw, Duration: o.duration})
			if err != nil {
				return nil, fmt.Errorf("%d tables, %d writers: %w", nt, nw, err)
			}
			c.catalog, c.createPS = name, createPS
			log.Info("cell", "catalog", name, "tables", nt, "writers", nw, "commits_per_s", fmt.Sprintf("%.1f", float64(c.commits)/c.seconds),
				"p50", c.p50.Round(time.Millisecond), "p99", c.p99.Round(time.Millisecond), "conflicts", c.conflicts, "errors", c.errors)
			out = append(out, c)
		}
	}
	return out, nil
}

// runCell starts a.Writers writer processes, waits until every one has
// opened its tables, starts them together and collects their results.
func runCell(ctx context.Context, self string, a workerArgs) (cell, error) {
	c := cell{tables: a.Tables, writers: a.Writers}
	type proc struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Reader
	}
	var procs []proc
	defer func() {
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	}()
	for i := range a.Writers {
		wa := a
		wa.Index = i
		raw, err := json.Marshal(wa)
		if err != nil {
			return c, fmt.Errorf("encode worker arguments: %w", err)
		}
		cmd := exec.CommandContext(ctx, self, "-worker", string(raw))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return c, fmt.Errorf("pipe to writer: %w", err)
		}
		outp, err := cmd.StdoutPipe()
		if err != nil {
			return c, fmt.Errorf("pipe from writer: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return c, fmt.Errorf("start writer: %w", err)
		}
		procs = append(procs, proc{cmd, in, bufio.NewReader(outp)})
	}
	for i, p := range procs {
		line, err := p.out.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "ready" {
			return c, fmt.Errorf("writer %d did not get ready (%q): %w", i, line, err)
		}
	}
	start := time.Now()
	for _, p := range procs {
		if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
			return c, fmt.Errorf("start writer: %w", err)
		}
	}
	var lat []time.Duration
	for i, p := range procs {
		var r workerResult
		if err := json.NewDecoder(p.out).Decode(&r); err != nil {
			return c, fmt.Errorf("read writer %d's result: %w", i, err)
		}
		lat = append(lat, r.Latencies...)
		c.conflicts += r.Conflicts
		c.errors += r.Errors
		if c.firstErr == "" {
			c.firstErr = r.FirstError
		}
	}
	c.seconds = time.Since(start).Seconds()
	c.commits = len(lat)
	c.p50, c.p99 = percentile(lat, 50), percentile(lat, 99)
	return c, nil
}

// percentile is the p-th percentile of d (sorted in place); 0 when empty.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, len(d)*p/100)]
}

func printMatrix(w io.Writer, o options, cs []cell) {
	fmt.Fprintf(w, "\ncommits of one-row appends, %s per cell; every writer a process\n\n", o.duration)
	fmt.Fprintln(w, "| catalog | tables | writers | commits/s | p50 ms | p99 ms | conflicts (retried) | failed commits | tables created/s |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, c := range cs {
		fmt.Fprintf(w, "| %s | %d | %d | %.1f | %.0f | %.0f | %d | %d | %.0f |\n", c.catalog, c.tables, c.writers,
			float64(c.commits)/c.seconds, ms(c.p50), ms(c.p99), c.conflicts, c.errors, c.createPS)
	}
	for _, c := range cs {
		if c.firstErr != "" {
			fmt.Fprintf(w, "\n%s, %d tables, %d writers: first failure: %s\n", c.catalog, c.tables, c.writers, c.firstErr)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
