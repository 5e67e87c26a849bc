package service

import (
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/floe-lake/floe/internal/units"
)

// Routes adds /status (JSON), /status.html and / (the status page) to
// mux. The page is one HTML document with SVG plots drawn here: it loads
// nothing else, from this server or any other.
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		st := s.Status(r.Context())
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
	})
	page := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" && r.URL.Path != "/status.html" {
			http.NotFound(w, r)
			return
		}
		st := s.Status(r.Context())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
		if err := pageTmpl.Execute(w, st); err != nil {
			s.log.Warn("render status page", "err", err)
		}
	}
	mux.HandleFunc("/status.html", page)
	mux.HandleFunc("/", page)
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"timeline":   timelineSVG,
	"partitions": partitionsSVG,
	"sizes":      sizesSVG,
	"lagplot":    lagSVG,
	"bytes":      func(n int64) string { return units.Bytes(n) },
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return now.Sub(t).Round(time.Second).String() + " ago"
	},
	"secs": func(f float64) string {
		if f < 0 {
			return "unknown"
		}
		return (time.Duration(f * float64(time.Second))).Round(time.Second).String()
	},
	"num": func(f float64) string { return fmt.Sprintf("%.0f", f) },
	"maxpart": func(m map[string]int) int {
		n := 0
		for _, v := range m {
			n = max(n, v)
		}
		return n
	},
}).Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Floe status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left;vertical-align:top}
.ok{color:#137333}.bad{color:#b3261e;font-weight:bold}.plots{display:flex;flex-wrap:wrap;gap:1em}
.plot{border:1px solid #eee;background:#fafafa}figure{margin:0}figcaption{font-size:12px;color:#555}
code{font-size:12px}
</style></head><body>
<h1>Floe</h1>
<p id="readiness" data-ready="{{.Ready}}">{{if .Ready}}<span class="ok">ready</span>{{else}}<span class="bad">not ready</span>{{end}} — {{.Time.Format "2006-01-02 15:04:05Z07:00"}}</p>
{{if .Reasons}}<ul id="reasons">{{range .Reasons}}<li class="bad">{{.}}</li>{{end}}</ul>{{end}}

<h2>Jobs</h2>
<table id="jobs"><tr><th>job</th><th>state</th><th>since</th><th>last progress</th><th>restarts</th><th>last error</th></tr>
{{range .Jobs}}<tr class="job" data-name="{{.Name}}" data-state="{{.State}}" data-failing="{{.Failing}}"><td>{{.Name}}</td><td class="{{if or .Failing (eq .State "halted")}}bad{{else}}ok{{end}}">{{.State}}{{if .Failing}} (failing){{end}}</td><td>{{ago $.Time .Since}}</td><td>{{ago $.Time .LastProgress}}</td><td>{{.Restarts}}</td><td><code>{{.LastError}}</code></td></tr>
{{end}}</table>

<h2>Sources</h2>
<table id="sources"><tr><th>source</th><th>health</th></tr>
{{range .Sources}}<tr class="source" data-id="{{.ID}}"><td>{{.ID}}</td><td class="{{if eq .Health "ok"}}ok{{else}}bad{{end}}">{{.Health}}</td></tr>
{{end}}</table>
{{if .KafkaLag}}<h3>Kafka lag per partition</h3>
<figure>{{lagplot .KafkaLag}}<figcaption>records behind the high watermark</figcaption></figure>
<table id="kafka-lag"><tr><th>source</th><th>topic</th><th>partition</th><th>lag (records)</th></tr>
{{range .KafkaLag}}<tr><td>{{.Source}}</td><td>{{.Topic}}</td><td>{{.Partition}}</td><td class="lag" data-source="{{.Source}}" data-topic="{{.Topic}}" data-partition="{{.Partition}}">{{num .Records}}</td></tr>
{{end}}</table>{{end}}
{{if .BinlogLag}}<h3>Binlog lag</h3>
<table id="binlog-lag"><tr><th>source</th><th>lag</th></tr>
{{range .BinlogLag}}<tr><td>{{.Source}}</td><td class="binlog-lag" data-source="{{.Source}}" data-seconds="{{.Seconds}}">{{secs .Seconds}}</td></tr>
{{end}}</table>{{end}}

<h2>Tables</h2>
{{if .TablesError}}<p class="bad" id="tables-error">{{.TablesError}}</p>{{end}}
{{range .Tables}}<section class="table" data-table="{{.Name}}">
<h3>{{.Name}}</h3>
<p>last commit {{ago $.Time .LastCommit}}; freshness <span class="freshness" data-seconds="{{.FreshnessSeconds}}">{{secs .FreshnessSeconds}}</span>;
<span class="rows" data-value="{{.Rows}}">{{.Rows}}</span> rows in <span class="files" data-value="{{.Files}}">{{.Files}}</span> files;
<span class="committed-rows" data-value="{{num .CommittedRows}}">{{num .CommittedRows}}</span> rows committed by this process;
at most <span class="max-files-per-partition">{{maxpart .FilesPerPartition}}</span> files per partition</p>
{{if .Error}}<p class="bad">{{.Error}}</p>{{end}}
<div class="plots">
<figure>{{timeline .Snapshots}}<figcaption>snapshot timeline: rows (bars) and files (line) added per commit; compactions in orange</figcaption></figure>
<figure>{{partitions .FilesPerPartition}}<figcaption>data files per partition</figcaption></figure>
<figure>{{sizes .FileSizes .FileSizesBefore}}<figcaption>file sizes{{if .FileSizesBefore}}: before the last compaction (grey) and now (blue){{end}}</figcaption></figure>
</div></section>
{{end}}

<h2>Dead letters</h2>
<table id="dead-letters"><tr><th>table</th><th>reason</th><th>rows</th><th>latest</th></tr>
{{range .DeadLetters}}<tr class="dead-letter" data-reason="{{.Reason}}" data-count="{{.Count}}"><td>{{.Table}}</td><td>{{.Reason}}</td><td>{{.Count}}</td><td>{{range .Latest}}<div><code>{{.Source}} {{.Partition}}@{{.Position}} → {{.Target}}: {{.Raw}}</code></div>{{end}}</td></tr>
{{end}}</table>

<h2>Compaction runs</h2>
<table id="compaction-runs"><tr><th>time</th><th>table</th><th>partition</th><th>result</th><th>files</th><th>bytes</th><th>rows</th></tr>
{{range .CompactionRuns}}<tr class="compaction-run"><td>{{.Time.Format "15:04:05"}}</td><td>{{.Table}}</td><td>{{.Partition}}</td><td>{{.Result}} {{.Reason}}</td><td>{{.InputFiles}} → {{.OutputFiles}}</td><td>{{bytes .InputBytes}} → {{bytes .OutputBytes}}</td><td>{{.Records}}</td></tr>
{{end}}</table>
<p><a href="/status">/status</a> · <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a></p>
</body></html>
`

// svg is a plot canvas.
type svg struct {
	b    strings.Builder
	w, h int
}

func newSVG(class string, w, h int) *svg {
	s := &svg{w: w, h: h}
	fmt.Fprintf(&s.b, `<svg class="plot %s" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`, class, w, h, w, h)
	return s
}

func (s *svg) rect(x, y, w, h float64, fill, title string) {
	fmt.Fprintf(&s.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`, x, y, max(w, 0.5), max(h, 0), fill, template.HTMLEscapeString(title))
}

func (s *svg) text(x, y float64, anchor, txt string) {
	fmt.Fprintf(&s.b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="%s" fill="#444">%s</text>`, x, y, anchor, template.HTMLEscapeString(txt))
}

func (s *svg) done() template.HTML {
	s.b.WriteString("</svg>")
	return template.HTML(s.b.String()) //nolint:gosec // built from escaped parts above
}

func (s *svg) empty(msg string) template.HTML {
	s.text(float64(s.w)/2, float64(s.h)/2, "middle", msg)
	return s.done()
}

// timelineSVG draws rows added per commit as bars and files added as a
// line, replace (compaction) commits in orange.
func timelineSVG(snaps []SnapshotPoint) template.HTML {
	s := newSVG("timeline", 420, 160)
	if len(snaps) == 0 {
		return s.empty("no commits yet")
	}
	const left, top, bottom = 40.0, 10.0, 20.0
	pw, ph := float64(s.w)-left-10, float64(s.h)-top-bottom
	var maxRows, maxFiles int64 = 1, 1
	for _, p := range snaps {
		maxRows, maxFiles = max(maxRows, p.AddedRows), max(maxFiles, p.AddedFiles)
	}
	bw := pw / float64(len(snaps))
	var line []string
	for i, p := range snaps {
		h := ph * float64(p.AddedRows) / float64(maxRows)
		fill := "#4c78a8"
		if p.Operation == "replace" {
			fill = "#f58518"
		}
		s.rect(left+float64(i)*bw+bw*0.1, top+ph-h, bw*0.8, h, fill,
			fmt.Sprintf("%s %s: %d rows, %d files added; %d rows in %d files", p.Time.Format(time.RFC3339), p.Operation, p.AddedRows, p.AddedFiles, p.TotalRows, p.TotalFiles))
		line = append(line, fmt.Sprintf("%.1f,%.1f", left+float64(i)*bw+bw/2, top+ph-ph*float64(p.AddedFiles)/float64(maxFiles)))
	}
	fmt.Fprintf(&s.b, `<polyline points="%s" fill="none" stroke="#54a24b" stroke-width="1.5"/>`, strings.Join(line, " "))
	s.text(left-4, top+8, "end", fmt.Sprint(maxRows))
	s.text(left-4, top+ph, "end", "0")
	s.text(left, float64(s.h)-5, "start", snaps[0].Time.Format("15:04:05"))
	s.text(float64(s.w)-10, float64(s.h)-5, "end", snaps[len(snaps)-1].Time.Format("15:04:05"))
	return s.done()
}

// partitionsSVG draws files per partition as horizontal bars, the 12
// fullest partitions.
func partitionsSVG(m map[string]int) template.HTML {
	type kv struct {
		k string
		v int
	}
	var parts []kv
	for k, v := range m {
		parts = append(parts, kv{k, v})
	}
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].v != parts[j].v {
			return parts[i].v > parts[j].v
		}
		return parts[i].k < parts[j].k
	})
	if len(parts) > 12 {
		parts = parts[:12]
	}
	s := newSVG("files-per-partition", 420, 20+14*max(len(parts), 1))
	if len(parts) == 0 {
		return s.empty("no data files")
	}
	maxV := parts[0].v
	const left = 200.0
	for i, p := range parts {
		name := p.k
		if name == "" {
			name = "(unpartitioned)"
		}
		y := 10 + float64(i)*14
		w := (float64(s.w) - left - 40) * float64(p.v) / float64(maxV)
		s.text(left-4, y+10, "end", truncate(name, 34))
		s.rect(left, y+1, w, 11, "#4c78a8", fmt.Sprintf("%s: %d files", name, p.v))
		s.text(left+w+3, y+10, "start", fmt.Sprint(p.v))
	}
	return s.done()
}

// sizesSVG draws the file-size histogram, now and (grey) before the last
// compaction.
func sizesSVG(now, before []Bucket) template.HTML {
	s := newSVG("file-sizes", 420, 160)
	if len(now) == 0 {
		return s.empty("no data files")
	}
	const left, top, bottom = 30.0, 10.0, 30.0
	pw, ph := float64(s.w)-left-10, float64(s.h)-top-bottom
	maxN := 1
	for i := range now {
		maxN = max(maxN, now[i].Files)
		if i < len(before) {
			maxN = max(maxN, before[i].Files)
		}
	}
	bw := pw / float64(len(now))
	for i, b := range now {
		x := left + float64(i)*bw
		label := "≤" + units.Bytes(b.Le)
		if b.Le == math.MaxInt64 {
			label = ">1 GiB"
		}
		if i < len(before) {
			h := ph * float64(before[i].Files) / float64(maxN)
			s.rect(x+bw*0.1, top+ph-h, bw*0.4, h, "#bbb", fmt.Sprintf("before: %d files %s", before[i].Files, label))
		}
		h := ph * float64(b.Files) / float64(maxN)
		s.rect(x+bw*0.5, top+ph-h, bw*0.4, h, "#4c78a8", fmt.Sprintf("%d files %s", b.Files, label))
		if i%2 == 0 {
			s.text(x+bw/2, float64(s.h)-15, "middle", label)
		}
	}
	s.text(left-4, top+8, "end", fmt.Sprint(maxN))
	return s.done()
}

// lagSVG draws the Kafka lag per partition.
func lagSVG(lags []KafkaLag) template.HTML {
	s := newSVG("kafka-lag", 420, 140)
	const left, top, bottom = 50.0, 10.0, 25.0
	pw, ph := float64(s.w)-left-10, float64(s.h)-top-bottom
	maxL := 1.0
	for _, l := range lags {
		maxL = math.Max(maxL, l.Records)
	}
	bw := pw / float64(len(lags))
	for i, l := range lags {
		h := ph * l.Records / maxL
		x := left + float64(i)*bw
		s.rect(x+bw*0.1, top+ph-h, bw*0.8, h, "#e45756", fmt.Sprintf("%s/%s: %.0f records", l.Topic, l.Partition, l.Records))
		if len(lags) <= 24 {
			s.text(x+bw/2, float64(s.h)-10, "middle", l.Partition)
		}
	}
	s.text(left-4, top+8, "end", fmt.Sprintf("%.0f", maxL))
	s.text(left-4, top+ph, "end", "0")
	return s.done()
}
