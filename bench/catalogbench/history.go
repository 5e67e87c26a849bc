package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// checkpoint is the state of the history test after some commits.
type checkpoint struct {
	commits      int
	metadataSize int64
	snapshots    int
	p50, p99     time.Duration // over the commits since the last checkpoint
	cpu          time.Duration // this process's CPU per commit since the last checkpoint
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type historyRun struct {
	expire bool
	points []checkpoint
}

// history commits o.historyCommits one-row appends to one fresh table on
// cc from one writer, with snapshot expiry every o.expireEvery commits
// (keeping o.keepSnapshots; what `floe compact` does by the table's
// history.expire.* properties) or none, and records ten checkpoints.
func history(ctx context.Context, log *slog.Logger, cc catalog.Config, o options, expire bool) (historyRun, error) {
	h := historyRun{expire: expire}
	cat, err := catalog.Open(ctx, cc)
	if err != nil {
		return h, fmt.Errorf("open catalog: %w", err)
	}
	name := fmt.Sprintf("hist_%s.t%v", randHex(), expire)
	if _, err := table.Ensure(ctx, cat, tinySpec(name)); err != nil {
		return h, fmt.Errorf("create table: %w", err)
	}
	ident, _ := table.ParseIdent(name)
	quiet := slog.New(slog.DiscardHandler)
	w := writer.New(cat, writer.Config{CommitInterval: time.Hour}, writer.Options{Logger: quiet})
	defer w.Abort()
	_, sc, err := w.Open(name, "hist")
	if err != nil {
		return h, fmt.Errorf("open table: %w", err)
	}
	rec := oneRow(sc)
	committer := table.NewCommitter(cat, ident, table.CommitterConfig{Logger: quiet})
	n := o.historyCommits
	if !expire && o.offCommits > 0 {
		n = min(n, o.offCommits)
	}
	step := max(1, o.historyCommits/10)
	var lat []time.Duration
	cpu0 := selfCPU()
	for i := 1; i <= n; i++ {
		rec.Retain()
		start := time.Now()
		if err := w.Write(writer.Batch{Table: name, Source: "hist", Record: rec, Next: table.Positions{"p": int64(i)}}); err != nil {
			return h, fmt.Errorf("write: %w", err)
		}
		if err := w.Commit(ctx); err != nil {
			return h, fmt.Errorf("commit %d: %w", i, err)
		}
		lat = append(lat, time.Since(start))
		if expire && i%o.expireEvery == 0 {
			if _, err := committer.Commit(ctx, table.Commit{Operation: "compact",
				Apply: func(_ context.Context, txn *icetable.Transaction, _ iceberg.Properties) error {
					return txn.ExpireSnapshots(icetable.WithOlderThan(0), icetable.WithRetainLast(o.keepSnapshots))
				}}); err != nil {
				return h, fmt.Errorf("expire snapshots: %w", err)
			}
		}
		if i%step == 0 || i == n {
			tbl, err := cat.LoadTable(ctx, ident)
			if err != nil {
				return h, fmt.Errorf("load table: %w", err)
			}
			fi, err := os.Stat(strings.TrimPrefix(tbl.MetadataLocation(), "file://"))
			if err != nil {
				return h, fmt.Errorf("stat metadata.json: %w", err)
			}
			cp := checkpoint{commits: i, metadataSize: fi.Size(), snapshots: len(tbl.Metadata().Snapshots()),
				p50: percentile(lat, 50), p99: percentile(lat, 99), cpu: (selfCPU() - cpu0) / time.Duration(len(lat))}
			cpu0 = selfCPU()
			log.Info("history", "expire", expire, "commits", i, "metadata_kib", cp.metadataSize>>10, "snapshots", cp.snapshots,
				"p50", cp.p50.Round(time.Millisecond), "p99", cp.p99.Round(time.Millisecond), "cpu_per_commit", cp.cpu.Round(100*time.Microsecond))
			h.points = append(h.points, cp)
			lat = lat[:0]
		}
	}
	return h, nil
}

func printHistory(w io.Writer, o options, hs []historyRun) {
	fmt.Fprintf(w, "\none-row commits to one table (SQLite catalog, local warehouse); expiry: every %d commits, keeping %d snapshots; latency over the commits since the row above\n\n",
		o.expireEvery, o.keepSnapshots)
	fmt.Fprintln(w, "| expiry | commits | metadata.json KiB | snapshots | p50 ms | p99 ms | CPU ms per commit |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, h := range hs {
		mode := "off"
		if h.expire {
			mode = "on"
		}
		for _, p := range h.points {
			fmt.Fprintf(w, "| %s | %d | %d | %d | %.0f | %.0f | %.1f |\n", mode, p.commits, p.metadataSize>>10, p.snapshots, ms(p.p50), ms(p.p99), ms(p.cpu))
		}
	}
}
