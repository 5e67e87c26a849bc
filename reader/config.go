package reader

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
)

// Mode says what a read returns for snapshots that can remove rows.
type Mode string

const (
	// ModeAppend returns the rows appended; an overwrite or delete snapshot
	// in range fails the read with ErrNotAppendOnly. Output rows have the
	// table's (projected) columns.
	ModeAppend Mode = "append"
	// ModeChangelog returns inserted and deleted rows, with the changelog
	// columns ColChangeType, ColChangeOrdinal and ColCommitSnapshotID
	// appended to the table's (projected) columns.
	ModeChangelog Mode = "changelog"
)

// Changelog columns, appended to every row in ModeChangelog, as Iceberg's
// changelog views name them.
const (
	// ColChangeType is ChangeInsert or ChangeDelete.
	ColChangeType = "_change_type"
	// ColChangeOrdinal is the position of the row's snapshot among the
	// snapshots of the read (0 for the oldest), as an int32.
	ColChangeOrdinal = "_change_ordinal"
	// ColCommitSnapshotID is the id of the snapshot that made the change.
	ColCommitSnapshotID = "_commit_snapshot_id"

	ChangeInsert = "INSERT"
	ChangeDelete = "DELETE"
)

// Clock is the time source of polling and timestamps; tests set their own.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// SystemClock is the real clock.
func SystemClock() Clock { return systemClock{} }

// TimeRange selects rows whose event-time column lies in [Start, End). A
// zero Start or End leaves that side open. The column must be a timestamp
// or timestamptz column; partitions by a time transform of it are pruned.
type TimeRange struct {
	Column     string
	Start, End time.Time
}

// Config tunes a Reader. Zero values take DefaultConfig's.
type Config struct {
	// Mode: ModeAppend (default) or ModeChangelog.
	Mode Mode
	// Columns projects the output to these columns (dotted paths select
	// nested fields). Default: all columns.
	Columns []string
	// Filter keeps only rows matching this Iceberg expression (see
	// ParseFilter). It is pushed down to planning: manifests and data files
	// whose partition values or column statistics cannot match are never
	// opened. Default: all rows.
	Filter iceberg.BooleanExpression
	// EventTime, when set, is ANDed with Filter.
	EventTime *TimeRange
	// CaseInsensitive matches column names in Columns and Filter without
	// regard to case. Default: case-sensitive.
	CaseInsensitive bool
	// Concurrency is how many data files are read in parallel. A read holds
	// the decoded batches of at most this many files. Default:
	// min(GOMAXPROCS, 8).
	Concurrency int
	// BatchSize caps the rows per Arrow record batch. Default: the table's
	// read.parquet.batch-size (iceberg-go's default otherwise).
	BatchSize int
	// PollInterval is how often Tail looks for new snapshots when it has
	// caught up. At least 10ms. Default: 10s.
	PollInterval time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Clock; default SystemClock().
	Clock Clock
	// ManifestCache keeps decoded manifest lists and manifests between
	// reads and between a follower's polls (unfiltered incremental reads
	// plan from it). Readers may share one, so that one budget bounds
	// them. Default: nil, a cache of DefaultManifestCacheBytes of the
	// reader's own.
	ManifestCache *ManifestCache
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Mode:         ModeAppend,
		Concurrency:  min(runtime.GOMAXPROCS(0), 8),
		PollInterval: 10 * time.Second,
		Logger:       slog.Default(),
		Clock:        SystemClock(),
	}
}

// ApplyDefaults fills unset fields.
func (c *Config) ApplyDefaults() {
	d := DefaultConfig()
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	if c.Concurrency == 0 {
		c.Concurrency = d.Concurrency
	}
	if c.PollInterval == 0 {
		c.PollInterval = d.PollInterval
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	switch c.Mode {
	case ModeAppend, ModeChangelog:
	default:
		return fmt.Errorf("reader mode: %q is not append or changelog", c.Mode)
	}
	for i, col := range c.Columns {
		if strings.TrimSpace(col) == "" {
			return fmt.Errorf("reader columns[%d]: empty column name", i)
		}
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("reader concurrency: %d is below 1", c.Concurrency)
	}
	if c.BatchSize < 0 {
		return fmt.Errorf("reader batch size: %d is negative", c.BatchSize)
	}
	if c.PollInterval < 10*time.Millisecond {
		return fmt.Errorf("reader poll interval: %s is below the minimum of 10ms", c.PollInterval)
	}
	if c.Logger == nil || c.Clock == nil {
		return errors.New("reader config: logger and clock are required (call ApplyDefaults)")
	}
	if r := c.EventTime; r != nil {
		if strings.TrimSpace(r.Column) == "" {
			return errors.New("reader event time: no column")
		}
		if !r.Start.IsZero() && !r.End.IsZero() && !r.Start.Before(r.End) {
			return fmt.Errorf("reader event time: start %s is not before end %s", r.Start.Format(time.RFC3339Nano), r.End.Format(time.RFC3339Nano))
		}
	}
	return nil
}

// rowFilter is Filter ANDed with the event-time range.
func (c *Config) rowFilter() iceberg.BooleanExpression {
	var parts []iceberg.BooleanExpression
	if c.Filter != nil {
		parts = append(parts, c.Filter)
	}
	if r := c.EventTime; r != nil {
		ref := iceberg.Reference(r.Column)
		if !r.Start.IsZero() {
			parts = append(parts, iceberg.GreaterThanEqual(ref, iceberg.Timestamp(r.Start.UnixMicro())))
		}
		if !r.End.IsZero() {
			parts = append(parts, iceberg.LessThan(ref, iceberg.Timestamp(r.End.UnixMicro())))
		}
	}
	switch len(parts) {
	case 0:
		return iceberg.AlwaysTrue{}
	case 1:
		return parts[0]
	}
	return iceberg.NewAnd(parts[0], parts[1], parts[2:]...)
}
