package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// printReport writes every run and then, per comparison, the ratios of
// Floe's figures to Connect's (their means over the runs) as Markdown
// tables.
func printReport(w io.Writer, o options, bytesPerRecord float64, rs []result) {
	fmt.Fprintf(w, "\n%d records (%.0f-byte JSON values), %d partitions, %d run(s) of each system, alternating\n\n",
		o.records, bytesPerRecord, o.partitions, o.runs)
	if len(o.floeBins) > 1 {
		for k, bin := range o.floeBins {
			fmt.Fprintf(w, "floe-%d: %s\n", k+1, bin)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "| run | system | commit interval | records/CPU-s | CPU-s | drain s | peak RSS MiB | data files | snapshots |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for i, r := range rs {
		fmt.Fprintf(w, "| %d | %s | %s | %.0f | %.2f | %.1f | %d | %d | %d |\n", i+1, r.label, r.commits,
			r.perCPU(), r.cpu.Seconds(), r.drain.Seconds(), r.peakRSS>>20, r.files, r.snapshots)
	}
	if o.systems[sysFloe] && o.systems[sysConnect] {
		printVersus(w, rs)
	}
	printPairs(w, o, rs)
}

// printVersus writes, per comparison, the ratios of Floe's figures (the
// first floe binary's) to Connect's, their means over the runs.
func printVersus(w io.Writer, rs []result) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| comparison | Floe records/CPU-s | Connect records/CPU-s | Floe / Connect (CPU efficiency) | drain Connect / Floe | peak RSS Floe / Connect |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, g := range []string{"main", "fast"} {
		var f, c []result
		for _, r := range rs {
			switch {
			case r.group != g:
			case r.system == sysFloe:
				if r.label == sysFloe || r.label == "floe-1" {
					f = append(f, r)
				}
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

// printPairs writes, with several floe binaries, each one's records per
// CPU-second over the first's in the same round, and the median ratio.
func printPairs(w io.Writer, o options, rs []result) {
	if len(o.floeBins) < 2 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| commit interval | binary | records/CPU-s per round | ratio to floe-1 per round | median ratio |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, g := range []string{"main", "fast"} {
		base := map[int]float64{}
		for _, r := range rs {
			if r.group == g && r.label == "floe-1" {
				base[r.pair] = r.perCPU()
			}
		}
		for k := 2; k <= len(o.floeBins); k++ {
			label := fmt.Sprintf("floe-%d", k)
			var got, ratios []string
			var rv []float64
			var commits time.Duration
			for _, r := range rs {
				if r.group != g || r.label != label {
					continue
				}
				commits = r.commits
				got = append(got, fmt.Sprintf("%.0fk", r.perCPU()/1000))
				if b, ok := base[r.pair]; ok && b > 0 {
					rv = append(rv, r.perCPU()/b)
					ratios = append(ratios, fmt.Sprintf("%.2f", r.perCPU()/b))
				}
			}
			if len(got) == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %.2f× |\n", commits, label, strings.Join(got, ", "),
				strings.Join(ratios, ", "), median(rv))
		}
	}
}

// median is the middle value (the mean of the two middle ones).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
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
