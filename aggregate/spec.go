package aggregate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/internal/yamlkeys"
	"github.com/floe-lake/floe/reader"
	"github.com/floe-lake/floe/table"
)

// Fn is an aggregate function.
type Fn string

// The aggregate functions a measure can use.
const (
	// FnCount counts rows (no column) or the column's non-null values.
	FnCount Fn = "count"
	// FnSum sums a numeric column: long for int and long, double for
	// float and double, decimal(38,s) for decimal(p,s).
	FnSum Fn = "sum"
	// FnMin and FnMax keep the least and greatest value, in the column's
	// type.
	FnMin Fn = "min"
	FnMax Fn = "max"
	// FnAvg is the mean of a numeric column, as a double.
	FnAvg Fn = "avg"
	// FnCountDistinct counts distinct non-null values exactly.
	FnCountDistinct Fn = "count_distinct"
	// FnApproxCountDistinct estimates the distinct non-null values with a
	// HyperLogLog sketch (precision 14, about 0.8 % standard error).
	FnApproxCountDistinct Fn = "approx_count_distinct"
	// FnNewUsers counts the distinct non-null values (users) of the group
	// whose first appearance in the whole source (the rows the filter
	// keeps, all of history) falls in this window.
	FnNewUsers Fn = "new_users"
	// FnReturningUsers counts the distinct values of the group first seen
	// in an earlier window: count_distinct = new_users + returning_users.
	FnReturningUsers Fn = "returning_users"
)

// Retractable reports whether the function's partial state can take back
// a deleted row: count, sum and avg can (subtract it); min, max and the
// distinct counts cannot (a set or a sketch cannot forget a value that may
// also come from another row, and the next-smallest value is not kept).
func (f Fn) Retractable() bool {
	switch f {
	case FnCount, FnSum, FnAvg:
		return true
	}
	return false
}

func (f Fn) valid() bool {
	switch f {
	case FnCount, FnSum, FnMin, FnMax, FnAvg, FnCountDistinct, FnApproxCountDistinct, FnNewUsers, FnReturningUsers:
		return true
	}
	return false
}

// firstSeen reports whether the function counts against the users'
// first-seen windows.
func (f Fn) firstSeen() bool { return f == FnNewUsers || f == FnReturningUsers }

// Output columns every summary table has besides dimensions and measures.
const (
	ColWindowStart = "window_start"
	ColWindowEnd   = "window_end"
	// ColRank is the group's rank within its window and Top.Within
	// dimensions, when the spec has a Top.
	ColRank = "rank"
	// ColState holds the group's serialised partial aggregates.
	ColState = "_state"
)

// Table properties Floe sets on a summary table.
const (
	// PropFingerprint identifies the spec a summary table's states were
	// computed with; following or merging into a table made with another
	// spec is refused (a full backfill resets it).
	PropFingerprint = "floe.aggregate.fingerprint"
	// PropSpec is the spec as JSON, for people.
	PropSpec = "floe.aggregate.spec"
)

// Spec describes one aggregation, as its YAML file holds it:
//
//	name: orders_by_city
//	source: ods.orders
//	output: dws.orders_by_city_5m
//	filter: "status != 'cancelled'"
//	time: created_at
//	window: {size: 1h, slide: 5m}
//	dimensions: [province, city]
//	measures:
//	  - {name: gmv, fn: sum, column: amount}
//	  - {name: orders, fn: count}
//	top: {n: 3, by: gmv, within: [province]}
type Spec struct {
	// Name identifies the aggregation in logs.
	Name string `yaml:"name" json:"name"`
	// Source is the table read, namespace.table.
	Source string `yaml:"source" json:"source"`
	// Output is the summary table written, namespace.table; created when
	// missing.
	Output string `yaml:"output" json:"output"`
	// Filter keeps only source rows matching it (reader.ParseFilter's
	// language). Default: every row.
	Filter string `yaml:"filter,omitempty" json:"filter,omitempty"`
	// Time is the event-time column (timestamp or timestamptz) windows are
	// computed from.
	Time string `yaml:"time" json:"time"`
	// Window is the event-time window.
	Window Window `yaml:"window" json:"window"`
	// Dimensions are the source columns groups are keyed by, besides the
	// window.
	Dimensions []string `yaml:"dimensions,omitempty" json:"dimensions,omitempty"`
	// Measures are the aggregates computed per group.
	Measures []Measure `yaml:"measures" json:"measures"`
	// Top ranks groups within their window.
	Top *Top `yaml:"top,omitempty" json:"top,omitempty"`
	// SQL is the SELECT a SQL spec was translated from (FromSQL): its
	// WHERE and derived columns are evaluated over each source batch
	// before grouping, and Dimensions and the measures' columns name its
	// columns. Empty for a YAML spec.
	SQL string `yaml:"sql,omitempty" json:"sql,omitempty"`
}

// Window is a tumbling window (Slide unset or equal to Size), a sliding
// one (Slide < Size: every Slide, over the last Size; each row falls into
// Size/Slide windows) or a cumulative one (Step < Size: for each window of
// Size, its value from its start to every Step end). Without a TimeZone
// windows are aligned to the Unix epoch, in UTC: a 1d window runs from
// 00:00 to 24:00 UTC. In a TimeZone they follow DuckDB's
// time_bucket(interval, ts, zone): a Size of whole days is that many local
// calendar days (local midnight to local midnight, 23 or 25 hours across a
// daylight-saving change), aligned to local 2000-01-03; any other Size is
// a fixed length aligned to the instant of local 2000-01-03 00:00.
type Window struct {
	Size  Duration `yaml:"size" json:"size"`
	Slide Duration `yaml:"slide,omitempty" json:"slide,omitempty"`
	// Step makes the window cumulative (Flink's CUMULATE): each window of
	// Size has an output row per Step, window_end = start + k·Step (the
	// last one the window's end), whose measures cover [start, window_end).
	Step Duration `yaml:"step,omitempty" json:"step,omitempty"`
	// TimeZone is the IANA zone windows are aligned in (and LocalColumns
	// computed in); default UTC.
	TimeZone string `yaml:"time-zone,omitempty" json:"time-zone,omitempty"`
	// LocalColumns adds output columns computed from window_start in
	// TimeZone: "dt" (date: the local date) and "hour" (int: the local
	// hour, 0–23). Default none.
	LocalColumns []string `yaml:"local-columns,omitempty" json:"local-columns,omitempty"`
}

// Local output columns a Window can add.
const (
	ColDate = "dt"
	ColHour = "hour"
)

// MaxWindowsPerRow bounds Size/Slide.
const MaxWindowsPerRow = 1440

// Measure is one aggregate column of the output.
type Measure struct {
	// Name of the output column.
	Name string `yaml:"name" json:"name"`
	// Fn is the aggregate function.
	Fn Fn `yaml:"fn" json:"fn"`
	// Column is the source column aggregated; optional for count (rows).
	Column string `yaml:"column,omitempty" json:"column,omitempty"`
}

// Top ranks the groups of each window (and each value of the Within
// dimensions) by a measure, descending, ties broken by the dimension
// values ascending (nulls first), into the output's rank column (1 is the
// largest). Every group is kept, ranked, so that late rows can change the
// ranking; readers select the top N with "rank <= N". N only documents the
// intent (and is kept in the table's spec property).
type Top struct {
	N      int      `yaml:"n" json:"n"`
	By     string   `yaml:"by" json:"by"`
	Within []string `yaml:"within,omitempty" json:"within,omitempty"`
}

// Duration is a time.Duration that YAML writes as "90s", "5m", "1h" or
// "1d" (24h).
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// ParseDuration parses Go's duration syntax plus a day unit: "1d", "2d12h".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, 'd'); i > 0 {
		days, err := strconv.ParseInt(s[:i], 10, 32)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("duration %q: want a whole number of days before d", s)
		}
		d := time.Duration(days) * 24 * time.Hour
		if rest := s[i+1:]; rest != "" {
			r, err := time.ParseDuration(rest)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			d += r
		}
		return d, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	return d, nil
}

// String writes d with d, h, m and s units: "1d", "5m", "1h30m".
func (d Duration) String() string {
	v := time.Duration(d)
	if v <= 0 || v%time.Second != 0 {
		return v.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		n    time.Duration
		unit string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if v >= u.n {
			fmt.Fprintf(&b, "%d%s", v/u.n, u.unit)
			v %= u.n
		}
	}
	return b.String()
}

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 5m, 1h or 1d", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseSpec reads one spec from YAML; unknown keys are errors. The spec is
// validated.
func ParseSpec(b []byte) (Spec, error) {
	var s Spec
	if err := yamlkeys.DecodeStrict(b, &s, "aggregate spec"); err != nil {
		return Spec{}, err
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// LoadSpec reads and validates the spec file at path.
func LoadSpec(path string) (Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("read aggregate spec: %w", err)
	}
	s, err := ParseSpec(b)
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func reserved(name string) bool {
	switch name {
	case ColWindowStart, ColWindowEnd, ColRank, ColState:
		return true
	}
	return false
}

// Validate checks the spec without a catalog; errors name the key, e.g.
// "aggregate orders: measures[1].column: required for sum".
func (s Spec) Validate() error {
	if err := s.validate(); err != nil {
		name := s.Name
		if name == "" {
			name = "(unnamed)"
		}
		return fmt.Errorf("aggregate %s: %w", name, err)
	}
	return nil
}

func (s Spec) validate() error {
	if strings.TrimSpace(s.Name) == "" {
		return errors.New("name: required")
	}
	if s.Source == "" {
		return errors.New("source: required (namespace.table)")
	}
	if _, err := table.ParseIdent(s.Source); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if s.Output == "" {
		return errors.New("output: required (namespace.table)")
	}
	if _, err := table.ParseIdent(s.Output); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if s.Output == s.Source {
		return errors.New("output: must differ from source")
	}
	if _, err := reader.ParseFilter(s.Filter); err != nil {
		return fmt.Errorf("filter: %w", err)
	}
	if strings.TrimSpace(s.Time) == "" {
		return errors.New("time: required (the event-time column)")
	}
	size, slide := s.Window.Size.D(), s.Window.Slide.D()
	switch {
	case size <= 0:
		return errors.New("window.size: required, a positive duration such as 1m, 5m, 1h or 1d")
	case size%time.Second != 0:
		return fmt.Errorf("window.size: %s is not a whole number of seconds", s.Window.Size)
	case slide < 0:
		return fmt.Errorf("window.slide: %s is negative", s.Window.Slide)
	case slide > 0 && slide%time.Second != 0:
		return fmt.Errorf("window.slide: %s is not a whole number of seconds", s.Window.Slide)
	case slide > size:
		return fmt.Errorf("window.slide: %s is longer than window.size %s", s.Window.Slide, s.Window.Size)
	case slide > 0 && size%slide != 0:
		return fmt.Errorf("window.slide: %s does not divide window.size %s", s.Window.Slide, s.Window.Size)
	case slide > 0 && size/slide > MaxWindowsPerRow:
		return fmt.Errorf("window.slide: %s puts each row into %d windows, more than %d", s.Window.Slide, size/slide, MaxWindowsPerRow)
	}
	if err := s.Window.validateZoned(); err != nil {
		return err
	}
	cols := map[string]string{}
	claim := func(name, key string) error {
		if !identRe.MatchString(name) {
			return fmt.Errorf("%s: %q is not a column name (letters, digits, _)", key, name)
		}
		if reserved(name) {
			return fmt.Errorf("%s: %q is reserved for the output's own column", key, name)
		}
		if prev, ok := cols[name]; ok {
			return fmt.Errorf("%s: column %q is also %s", key, name, prev)
		}
		cols[name] = key
		return nil
	}
	for i, d := range s.Dimensions {
		if err := claim(d, fmt.Sprintf("dimensions[%d]", i)); err != nil {
			return err
		}
	}
	for i, c := range s.Window.LocalColumns {
		if c != ColDate && c != ColHour {
			return fmt.Errorf("window.local-columns[%d]: %q is not %s or %s", i, c, ColDate, ColHour)
		}
		if err := claim(c, fmt.Sprintf("window.local-columns[%d]", i)); err != nil {
			return err
		}
	}
	if len(s.Measures) == 0 {
		return errors.New("measures: at least one is required")
	}
	for i, m := range s.Measures {
		key := fmt.Sprintf("measures[%d]", i)
		if m.Name == "" {
			return fmt.Errorf("%s.name: required", key)
		}
		if err := claim(m.Name, key+".name"); err != nil {
			return err
		}
		if !m.Fn.valid() {
			return fmt.Errorf("%s.fn: %q is not count, sum, min, max, avg, count_distinct, approx_count_distinct, new_users or returning_users", key, m.Fn)
		}
		if m.Column == "" && m.Fn != FnCount {
			return fmt.Errorf("%s.column: required for %s", key, m.Fn)
		}
		if m.Fn.firstSeen() && slide > 0 && slide < size {
			return fmt.Errorf("%s.fn: %s needs a tumbling or cumulative window, not a sliding one", key, m.Fn)
		}
	}
	if t := s.Top; t != nil {
		if t.N < 1 {
			return fmt.Errorf("top.n: %d is below 1", t.N)
		}
		if t.By == "" {
			return errors.New("top.by: required (a measure name)")
		}
		if !strings.HasPrefix(cols[t.By], "measures[") {
			return fmt.Errorf("top.by: %q is not a measure", t.By)
		}
		if s.Window.Step > 0 {
			return errors.New("top: not supported with a cumulative window (window.step)")
		}
		for _, m := range s.Measures {
			if m.Name == t.By && m.Fn.firstSeen() {
				return fmt.Errorf("top.by: ranking by %s (%s) is not supported", t.By, m.Fn)
			}
		}
		seen := map[string]bool{}
		for i, w := range t.Within {
			if !strings.HasPrefix(cols[w], "dimensions[") {
				return fmt.Errorf("top.within[%d]: %q is not a dimension", i, w)
			}
			if seen[w] {
				return fmt.Errorf("top.within[%d]: %q listed twice", i, w)
			}
			seen[w] = true
		}
	}
	return nil
}

// slideOrSize is the distance between window starts (a cumulative
// window's starts are Size apart).
func (s Spec) slideOrSize() time.Duration {
	if s.Window.Slide > 0 && s.Window.Step == 0 {
		return s.Window.Slide.D()
	}
	return s.Window.Size.D()
}

// PartitionUnit is the output's partition granularity: an hour for
// windows up to an hour, a day otherwise.
func (s Spec) PartitionUnit() time.Duration {
	if s.Window.Size.D() <= time.Hour {
		return time.Hour
	}
	return 24 * time.Hour
}

// Retractable reports whether every measure can retract deleted rows.
func (s Spec) Retractable() bool {
	for _, m := range s.Measures {
		if !m.Fn.Retractable() {
			return false
		}
	}
	return true
}

// stateFormat versions the _state encoding; part of the fingerprint.
const stateFormat = 1

// Fingerprint identifies everything the stored partial states depend on:
// source, filter, time column, window, dimensions, measures, ranking and
// the state format. Two specs with the same fingerprint can share a
// summary table.
func (s Spec) Fingerprint() string {
	type fp struct {
		Format     int       `json:"format"`
		Source     string    `json:"source"`
		Filter     string    `json:"filter"`
		Time       string    `json:"time"`
		Size       int64     `json:"size"`
		Slide      int64     `json:"slide"`
		Dimensions []string  `json:"dimensions"`
		Measures   []Measure `json:"measures"`
		Top        *Top      `json:"top"`
		// Zoned and cumulative windows (absent for UTC tumbling and
		// sliding windows, whose fingerprints stay as they were).
		TimeZone string `json:"time_zone,omitempty"`
		Step     int64  `json:"step,omitempty"`
		// A SQL spec's text (absent for YAML specs).
		SQL string `json:"sql,omitempty"`
	}
	b, _ := json.Marshal(fp{stateFormat, s.Source, s.Filter, s.Time, int64(s.Window.Size), int64(s.slideOrSize()), s.Dimensions, s.Measures, s.Top,
		s.Window.zoneName(), int64(s.Window.Step), s.SQL})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}
