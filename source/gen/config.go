package gen

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/internal/yamlkeys"
)

// Limits of the position space: event_id is partition<<40 | offset.
const (
	// MaxPartitions is the largest Partitions.
	MaxPartitions = 1 << 16
	// MaxOffset bounds offsets and RowsPerPartition (2^40): an unbounded
	// partition ends there.
	MaxOffset = 1 << 40
	// MaxBatchRows is the largest BatchRows.
	MaxBatchRows = 1 << 20
)

// Config configures a generator: the gen: section of a source in floe.yaml.
// Decoding YAML into a Config starts from DefaultConfig, so absent keys keep
// their defaults and explicit zero values ("seed: 0", "orders-table: ”")
// are honoured; unknown keys are an error.
type Config struct {
	// ID is the source id positions are stored under. Default: gen.
	ID string `yaml:"id"`
	// Seed makes a different, equally deterministic data set. Default: 1.
	Seed int64 `yaml:"seed"`
	// Partitions is the number of independent streams (p0, p1, …), each
	// with its own offsets. Default: 4.
	Partitions int `yaml:"partitions"`
	// Rate is rows per second across all partitions; 0 generates as fast
	// as the sink takes rows. Default: 0.
	Rate float64 `yaml:"rate"`
	// RowsPerPartition ends the input after that many offsets per
	// partition; 0 is unbounded. Default: 0.
	RowsPerPartition int64 `yaml:"rows-per-partition"`
	// BatchRows is the number of offsets per batch per partition.
	// Default: 8192.
	BatchRows int `yaml:"batch-rows"`
	// LateFraction is the fraction of events whose event_time is 0–2 h
	// behind the generator's clock instead of on it. Default: 0.1.
	LateFraction float64 `yaml:"late-fraction"`
	// BadFraction is the fraction of records that are malformed and become
	// dead letters instead of events. Default: 0.001.
	BadFraction float64 `yaml:"bad-fraction"`
	// EventsTable receives the tracking events. Default: ods.events.
	EventsTable string `yaml:"events-table"`
	// OrdersTable receives one row per order event; "" disables it.
	// Default: ods.orders.
	OrdersTable string `yaml:"orders-table"`
	// DeadLetterTable receives the bad records; it is not opened when
	// BadFraction is 0. Default: floe.dead_letters.
	DeadLetterTable string `yaml:"dead-letter-table"`
	// StartTime is the generator clock at offset 0; the clock advances
	// TimeStep per offset, so a million rows per partition span 2.8 hours.
	// Default: 2026-01-01T00:00:00Z.
	StartTime time.Time `yaml:"start-time"`

	// Now stamps dead letters' received_at. Default: time.Now.
	Now func() time.Time `yaml:"-"`
	// Allocator allocates the Arrow batches. Default: memory.DefaultAllocator.
	Allocator memory.Allocator `yaml:"-"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		ID:               "gen",
		Seed:             1,
		Partitions:       4,
		Rate:             0,
		RowsPerPartition: 0,
		BatchRows:        8192,
		LateFraction:     0.1,
		BadFraction:      0.001,
		EventsTable:      "ods.events",
		OrdersTable:      "ods.orders",
		DeadLetterTable:  "floe.dead_letters",
		StartTime:        time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Now:              time.Now,
		Allocator:        memory.DefaultAllocator,
	}
}

// ApplyDefaults fills the fields YAML does not set: Now and Allocator.
// Every other default comes from DefaultConfig (which decoding YAML starts
// from), because their zero values are meaningful settings or errors
// Validate should report.
func (c *Config) ApplyDefaults() {
	d := DefaultConfig()
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Allocator == nil {
		c.Allocator = d.Allocator
	}
}

// Validate checks every setting and names the first bad key, e.g.
// "gen.partitions: must be between 1 and 65536".
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("gen.%s: %s", key, fmt.Sprintf(format, args...))
	}
	fraction := func(v float64) bool { return v >= 0 && v <= 1 }
	switch {
	case c.ID == "":
		return bad("id", "must not be empty")
	case c.Partitions < 1 || c.Partitions > MaxPartitions:
		return bad("partitions", "must be between 1 and %d", MaxPartitions)
	case math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate < 0:
		return bad("rate", "must be >= 0")
	case c.RowsPerPartition < 0 || c.RowsPerPartition > MaxOffset:
		return bad("rows-per-partition", "must be between 0 and %d", int64(MaxOffset))
	case c.BatchRows < 1 || c.BatchRows > MaxBatchRows:
		return bad("batch-rows", "must be between 1 and %d", MaxBatchRows)
	case !fraction(c.LateFraction):
		return bad("late-fraction", "must be between 0 and 1")
	case !fraction(c.BadFraction):
		return bad("bad-fraction", "must be between 0 and 1")
	case c.StartTime.IsZero():
		return bad("start-time", "must be set")
	}
	tables := []struct {
		key, name string
		used      bool
	}{
		{"events-table", c.EventsTable, true},
		{"orders-table", c.OrdersTable, c.OrdersTable != ""},
		{"dead-letter-table", c.DeadLetterTable, c.BadFraction > 0},
	}
	seen := map[string]string{}
	for _, t := range tables {
		if !t.used {
			continue
		}
		if i := strings.LastIndexByte(t.name, '.'); i <= 0 || i == len(t.name)-1 {
			return bad(t.key, "%q is not namespace.table", t.name)
		}
		if other, dup := seen[t.name]; dup {
			return bad(t.key, "%q is also gen.%s", t.name, other)
		}
		seen[t.name] = t.key
	}
	return nil
}

// UnmarshalYAML decodes over DefaultConfig and rejects unknown keys.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config // without the UnmarshalYAML method
	return yamlkeys.DecodeOver(n, "gen", plain(DefaultConfig()), (*plain)(c))
}
