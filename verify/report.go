package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// The checks.
const (
	CheckAggregate = "aggregate"
	CheckMySQL     = "mysql"
	CheckKafka     = "kafka"
)

// Kinds of difference.
const (
	// KindMissing: the reference (the recomputation, the database, the
	// broker) has a row or offset the table does not.
	KindMissing = "missing"
	// KindExtra: the table has a row the reference does not.
	KindExtra = "extra"
	// KindDifferent: both have the row, with different values.
	KindDifferent = "different"
	// KindDuplicate: an offset is held by more than one row.
	KindDuplicate = "duplicate"
)

// Difference is one difference found.
type Difference struct {
	Kind string `json:"kind"`
	// Key names the row: window and dimensions, primary key, or
	// topic/partition@offset.
	Key string `json:"key"`
	// Column, Want (the reference's value) and Got (the table's) for
	// KindDifferent: one Difference per differing column.
	Column string `json:"column,omitempty"`
	Want   string `json:"want,omitempty"`
	Got    string `json:"got,omitempty"`
	// AbsError and RelError of a numeric measure.
	AbsError *float64 `json:"abs_error,omitempty"`
	RelError *float64 `json:"rel_error,omitempty"`
}

// TableReport is the result of one table's check.
type TableReport struct {
	Table string `json:"table"`
	// Against says what the table was compared with: "ods.events
	// snapshot 123", "db.t at binlog 000002:1234".
	Against string `json:"against,omitempty"`
	// Snapshot is the table's snapshot compared.
	Snapshot int64 `json:"snapshot,omitempty"`
	// RowsCompared counts the reference's rows (or offsets) compared.
	RowsCompared int64 `json:"rows_compared"`
	// Counts holds the number of differences per kind, all of them;
	// Differences lists at most Options.MaxListed.
	Counts      map[string]int64 `json:"counts"`
	Differences []Difference     `json:"differences,omitempty"`
	// Tolerated counts measure differences within the maximum error.
	Tolerated int64 `json:"tolerated,omitempty"`
	// Skipped says why the table was not checked.
	Skipped string `json:"skipped,omitempty"`
	// Notes are caveats of the comparison.
	Notes []string `json:"notes,omitempty"`

	maxListed int
	// mysql: the MySQL table, and whether the snapshot compared was past
	// the database's position.
	mysqlName string
	inexact   bool
}

func newTableReport(name string, maxListed int) *TableReport {
	return &TableReport{Table: name, Counts: map[string]int64{}, maxListed: maxListed}
}

// add records a difference.
func (t *TableReport) add(d Difference) {
	t.Counts[d.Kind]++
	if len(t.Differences) < t.maxListed {
		t.Differences = append(t.Differences, d)
	}
}

// Total is the number of differences of every kind.
func (t *TableReport) Total() int64 {
	var n int64
	for _, c := range t.Counts {
		n += c
	}
	return n
}

// Report is the result of one check over its tables.
type Report struct {
	Check    string         `json:"check"`
	Started  time.Time      `json:"started"`
	Duration time.Duration  `json:"duration_ns"`
	Tables   []*TableReport `json:"tables"`
}

// Differences is the number of differences over all tables.
func (r *Report) Differences() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Total()
	}
	return n
}

// Skipped is the number of tables that could not be checked.
func (r *Report) Skipped() int {
	n := 0
	for _, t := range r.Tables {
		if t.Skipped != "" {
			n++
		}
	}
	return n
}

// Equal reports whether no table has a difference.
func (r *Report) Equal() bool { return r.Differences() == 0 }

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

var kindOrder = []string{KindMissing, KindExtra, KindDifferent, KindDuplicate}

// WriteText writes the report as aligned tables for people: a line per
// table, then the differences listed.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TABLE\tAGAINST\tROWS\tMISSING\tEXTRA\tDIFFERENT\tDUPLICATE\tRESULT\n")
	for _, t := range r.Tables {
		result := "equal"
		switch {
		case t.Skipped != "":
			result = "skipped: " + t.Skipped
		case t.Total() > 0:
			result = "DIFFERENT"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d", t.Table, t.Against, t.RowsCompared)
		for _, k := range kindOrder {
			fmt.Fprintf(tw, "\t%d", t.Counts[k])
		}
		fmt.Fprintf(tw, "\t%s\n", result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range r.Tables {
		for _, n := range t.Notes {
			fmt.Fprintf(w, "note: %s: %s\n", t.Table, n)
		}
		if t.Tolerated > 0 {
			fmt.Fprintf(w, "note: %s: %d measure values differ within the maximum error\n", t.Table, t.Tolerated)
		}
		if len(t.Differences) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s: %d differences", t.Table, t.Total())
		if int64(len(t.Differences)) < t.Total() {
			fmt.Fprintf(w, " (first %d listed)", len(t.Differences))
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  KIND\tKEY\tCOLUMN\tWANT\tGOT\tABS ERR\tREL ERR\n")
		for _, d := range t.Differences {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Kind, d.Key, d.Column, abbreviate(d.Want), abbreviate(d.Got), fmtErr(d.AbsError), fmtErr(d.RelError))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	verdict := "equal"
	if !r.Equal() {
		verdict = fmt.Sprintf("%d differences", r.Differences())
	}
	_, err := fmt.Fprintf(w, "\nverify %s: %d tables, %s (%s)\n", r.Check, len(r.Tables), verdict, r.Duration.Round(time.Millisecond))
	return err
}

func fmtErr(p *float64) string {
	if p == nil {
		return ""
	}
	if math.IsInf(*p, 1) {
		return "inf"
	}
	return strconv.FormatFloat(*p, 'g', 4, 64)
}

func abbreviate(s string) string {
	const n = 40
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// sortedKeys returns m's keys sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// joinKey renders key values as "a=1, b=\"x\"".
func joinKey(names, vals []string) string {
	var b strings.Builder
	for i := range names {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(names[i])
		b.WriteByte('=')
		b.WriteString(vals[i])
	}
	return b.String()
}
