package writer

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/floe-lake/floe/internal/bytesize"
)

// Config tunes the writer. Zero values take DefaultConfig's.
type Config struct {
	// CommitInterval is how often buffered rows are committed, one snapshot
	// per table. At least 1s. Default: 60s.
	CommitInterval time.Duration `yaml:"commit-interval"`
	// CommitRows commits early once a table holds this many uncommitted
	// rows. 0 disables. Default: 0.
	CommitRows int64 `yaml:"commit-rows"`
	// CommitBytes commits early once a table holds this many bytes of
	// uncommitted data files. 0 disables. Default: 0.
	CommitBytes Bytes `yaml:"commit-bytes"`
	// MemoryBudget bounds the rows buffered in memory across all tables;
	// when it is full, Write blocks (back-pressure on the sources).
	// Default: 256MiB.
	MemoryBudget Bytes `yaml:"memory-budget"`
	// FlushBytes is how many buffered bytes of one table are encoded into
	// Parquet files at a time, before the commit. Default: MemoryBudget/4.
	FlushBytes Bytes `yaml:"flush-bytes"`
	// MemoryLimit is the resident memory (RSS) the writing process (floe
	// ingest, floe run) aims to stay under: the Go soft memory limit is
	// kept at this minus the file-backed pages it has resident — its
	// binary, the mapped key indexes — which the Go runtime does not
	// count, and never below MemoryBudget + FlushBytes (HeapFloor).
	// GOMEMLIMIT, when set, replaces it. Default: MemoryBudget +
	// FlushBytes + 192MiB (512MiB with the defaults).
	MemoryLimit Bytes `yaml:"memory-limit"`
	// WriterID identifies this process in snapshot summaries
	// (floe.writer-id). Default: hostname-pid.
	WriterID string `yaml:"writer-id"`
	// CommitTimeout bounds one commit, conflict retries included.
	// Default: 2m.
	CommitTimeout time.Duration `yaml:"commit-timeout"`
	// ZstdLevel is the zstd level (1–22) of the data files ingest writes
	// to a zstd table that does not set write.parquet.compression-level.
	// Default: 1. Ingest's files are short-lived — compaction rewrites them
	// at the table's own level (zstd's default, 3) — and on the generator's
	// clickstream level 1 took about a quarter less CPU than level 3 for
	// files no larger (BenchmarkZstdLevel).
	ZstdLevel int `yaml:"zstd-level"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	if host == "" {
		host = "floe"
	}
	return Config{
		CommitInterval: 60 * time.Second,
		MemoryBudget:   256 << 20,
		WriterID:       host + "-" + strconv.Itoa(os.Getpid()),
		CommitTimeout:  2 * time.Minute,
		ZstdLevel:      1,
	}
}

// ApplyDefaults fills unset fields.
func (c *Config) ApplyDefaults() {
	d := DefaultConfig()
	if c.CommitInterval == 0 {
		c.CommitInterval = d.CommitInterval
	}
	if c.MemoryBudget == 0 {
		c.MemoryBudget = d.MemoryBudget
	}
	if c.FlushBytes == 0 {
		c.FlushBytes = c.MemoryBudget / 4
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = c.MemoryBudget + c.FlushBytes + memoryLimitHeadroom
	}
	if c.WriterID == "" {
		c.WriterID = d.WriterID
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = d.CommitTimeout
	}
	if c.ZstdLevel == 0 {
		c.ZstdLevel = d.ZstdLevel
	}
}

// memoryLimitHeadroom is MemoryLimit's default above the budget and one
// flush: 128 MiB for the encoders and the runtime and 64 MiB for the
// binary's pages. With a fixed soft limit of budget + flush + 128 MiB the
// generator → writer benchmark peaked at about 465 MiB of RSS with the
// default budget, for about 5% more CPU than at 640 MiB.
const memoryLimitHeadroom = 192 << 20

// memoryLimitSlack is the least MemoryLimit leaves above HeapFloor.
const memoryLimitSlack = 64 << 20

// HeapFloor is the least the Go soft memory limit is set to: the rows
// and key indexes the budget allows and one flush's encoded pages are
// live, and a limit below them would have the collector run back to back
// for nothing. Call it on a config with defaults applied.
func (c Config) HeapFloor() int64 {
	return int64(c.MemoryBudget) + int64(c.FlushBytes)
}

// Validate reports the first invalid setting, naming its key.
func (c *Config) Validate() error {
	switch {
	case c.CommitInterval < time.Second:
		return fmt.Errorf("writer.commit-interval: %s is below the minimum of 1s", c.CommitInterval)
	case c.CommitRows < 0:
		return fmt.Errorf("writer.commit-rows: %d is negative", c.CommitRows)
	case c.CommitBytes < 0:
		return fmt.Errorf("writer.commit-bytes: %d is negative", c.CommitBytes)
	case c.MemoryBudget < 1<<20:
		return fmt.Errorf("writer.memory-budget: %d bytes is below the minimum of 1MiB", c.MemoryBudget)
	case c.FlushBytes <= 0 || c.FlushBytes > c.MemoryBudget:
		return fmt.Errorf("writer.flush-bytes: %d must be in (0, memory-budget=%d]", c.FlushBytes, c.MemoryBudget)
	case c.MemoryLimit < c.MemoryBudget+c.FlushBytes+memoryLimitSlack:
		return fmt.Errorf("writer.memory-limit: %d bytes leaves less than 64MiB above memory-budget + flush-bytes (%d)", c.MemoryLimit, c.MemoryBudget+c.FlushBytes)
	case c.CommitTimeout < time.Second:
		return fmt.Errorf("writer.commit-timeout: %s is below the minimum of 1s", c.CommitTimeout)
	case c.ZstdLevel < 1 || c.ZstdLevel > 22:
		return fmt.Errorf("writer.zstd-level: %d is not a zstd level (1 to 22)", c.ZstdLevel)
	}
	return nil
}

// Bytes is a size in bytes; in YAML a number or a string with a unit:
// 512KiB, 64MiB, 1GiB, 100MB. (Defined in internal/bytesize, so that
// compaction's Config can use it without importing writer.)
type Bytes = bytesize.Bytes

// ParseBytes parses "64MiB", "1GB", "1048576".
func ParseBytes(s string) (Bytes, error) { return bytesize.Parse(s) }
