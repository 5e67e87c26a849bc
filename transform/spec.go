package transform

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/internal/yamlkeys"
	"github.com/floe-lake/floe/table"
)

// Spec is one transform: a SELECT over a source table and its dimension
// joins, written to an output table. As YAML:
//
//	name: order_detail
//	output: dwd.order_detail
//	sql: |
//	  SELECT o.order_id, o.event_time, o.amount, u.city
//	  FROM ods.orders o LEFT JOIN ods.users u ON o.user_id = u.user_id
//	  WHERE o.amount > 0
//	partition: [{column: event_time, transform: day}]
//	dedup: {key: [order_id], time: event_time, window: 1h}
//
// A .sql file holds the SELECT alone (LoadSpec); the output table then
// comes from the command line.
type Spec struct {
	// Name names the transform in logs and metrics. Default: the output
	// table's name.
	Name string `yaml:"name,omitempty"`
	// SQL is one SELECT: FROM the source table, LEFT JOINs of keyed
	// dimension tables on equalities, WHERE, and the select list. No GROUP
	// BY (that is floe aggregate).
	SQL string `yaml:"sql"`
	// Output is the output table, namespace.table; created by table.Ensure
	// from the select list's names and types when missing.
	Output string `yaml:"output"`
	// Partition partitions a new output table by columns of the select
	// list (table.PartitionField). Default: unpartitioned.
	Partition []table.PartitionField `yaml:"partition,omitempty"`
	// Properties are Iceberg table properties of a new output table.
	Properties map[string]string `yaml:"properties,omitempty"`
	// Dedup, when set, keeps the first row per key within a window.
	Dedup *Dedup `yaml:"dedup,omitempty"`
}

// Dedup keeps the first output row per key: a row is dropped when an
// earlier kept row with the same key lies less than Window from it in
// event time (see the package comment for the exact rule and its state).
type Dedup struct {
	// Key names output columns that identify a duplicate.
	Key []string `yaml:"key"`
	// Time names the output's event-time column (timestamp or
	// timestamptz).
	Time string `yaml:"time"`
	// Window is how far apart in event time two rows of one key may be to
	// count as duplicates ("1h", "30m", "1d").
	Window Duration `yaml:"window"`
}

// Duration is a time.Duration written as Go writes one ("90s", "1h30m")
// or as a number of days ("1d").
type Duration time.Duration

// UnmarshalYAML parses a duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("duration %q: want a positive number of days or a Go duration", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	return v, nil
}

// ParseSpec reads a spec from YAML (unknown keys are errors) and checks
// it.
func ParseSpec(b []byte) (Spec, error) {
	var s Spec
	if err := yamlkeys.DecodeStrict(b, &s, "transform spec"); err != nil {
		return Spec{}, err
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// LoadSpec reads the spec file at path: YAML, or, for a file ending in
// .sql, the SELECT alone (Output is then empty: the caller sets it).
func LoadSpec(path string) (Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, fmt.Errorf("read transform spec: %w", err)
	}
	if strings.EqualFold(filepath.Ext(path), ".sql") {
		return Spec{SQL: string(b)}, nil
	}
	s, err := ParseSpec(b)
	if err != nil {
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Validate checks the spec without a catalog.
func (s Spec) Validate() error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("transform %s: %w", s.displayName(), err)
	}
	return nil
}

func (s Spec) displayName() string {
	switch {
	case s.Name != "":
		return s.Name
	case s.Output != "":
		return s.Output
	}
	return "(unnamed)"
}

func (s Spec) validate() error {
	if strings.TrimSpace(s.SQL) == "" {
		return errors.New("sql: required")
	}
	if s.Output == "" {
		return errors.New("output: required (in the spec or with -output)")
	}
	if _, err := table.ParseIdent(s.Output); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if d := s.Dedup; d != nil {
		if len(d.Key) == 0 {
			return errors.New("dedup.key: required")
		}
		if d.Time == "" {
			return errors.New("dedup.time: required")
		}
		if d.Window <= 0 {
			return errors.New("dedup.window: must be positive")
		}
	}
	return nil
}

// name is the transform's name.
func (s Spec) name() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Output
}
