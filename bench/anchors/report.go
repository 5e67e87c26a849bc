package main

import (
	"fmt"
	"io"
	"strings"
)

// printReport writes every run and then, per comparison, the ratios of
// Floe's figures to Connect's (their means over the runs) as Markdown
// tables.
func printReport(w io.Writer, o options, bytesPerRecord float64, rs []result) {
	fmt.Fprintf(w, "\n%d records (%.0f-byte JSON values), %d partitions, %d run(s) of each system, alternating\n\n",
		o.records, bytesPerRecord, o.partitions, o.runs)
	fmt.Fprintln(w, "| run | system | commit interval | records/CPU-s | CPU-s | drain s | peak RSS MiB | data files | snapshots |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for i, r := range rs {
		fmt.Fprintf(w, "| %d | %s | %s | %.0f | %.2f | %.1f | %d | %d | %d |\n", i+1, r.system, r.commits,
			r.perCPU(), r.cpu.Seconds(), r.drain.Seconds(), r.peakRSS>>20, r.files, r.snapshots)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| comparison | Floe records/CPU-s | Connect records/CPU-s | Floe / Connect (CPU efficiency) | drain Connect / Floe | peak RSS Floe / Connect |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, g := range []string{"main", "fast"} {
		var f, c []result
		for _, r := range rs {
			switch {
			case r.group != g:
			case r.system == sysFloe:
				f = append(f, r)
			default:
				c = append(c, r)
			}
		}
		if len(f) == 0 || len(c) == 0 {
			continue
		}
		fm, cm := mean(f), mean(c)
		fmt.Fprintf(w, "| Floe %s vs Connect %s commits | %s | %s | %.1f× | %.1f× | %.2f× |\n",
			f[0].commits, c[0].commits, spread(f), spread(c), fm.perCPU/cm.perCPU, cm.drain/fm.drain, fm.rss/cm.rss)
	}
}

type means struct{ perCPU, drain, rss float64 }

func mean(rs []result) means {
	var m means
	for _, r := range rs {
		m.perCPU += r.perCPU() / float64(len(rs))
		m.drain += r.drain.Seconds() / float64(len(rs))
		m.rss += float64(r.peakRSS) / float64(len(rs))
	}
	return m
}

// spread lists the runs' records per CPU-second, e.g. "341k, 366k".
func spread(rs []result) string {
	var s []string
	for _, r := range rs {
		s = append(s, fmt.Sprintf("%.0fk", r.perCPU()/1000))
	}
	return strings.Join(s, ", ")
}
