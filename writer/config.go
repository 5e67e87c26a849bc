package writer

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/internal/yamlkeys"
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

// MemoryLimit is the soft Go memory limit (runtime/debug.SetMemoryLimit)
// for a process whose writer has this configuration: the budget's Arrow
// rows, one flush's encoded pages (at most FlushBytes) and 128 MiB for the
// encoders and the runtime. Without it the garbage collector lets the heap
// grow to twice what is live; with it, the generator → writer benchmark
// peaks at about 465 MiB of RSS with the default budget (448 MiB limit),
// for about 5% more CPU than at 640 MiB. Call it on a config with defaults
// applied.
func (c Config) MemoryLimit() int64 {
	return int64(c.MemoryBudget) + int64(c.FlushBytes) + 128<<20
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
	case c.CommitTimeout < time.Second:
		return fmt.Errorf("writer.commit-timeout: %s is below the minimum of 1s", c.CommitTimeout)
	case c.ZstdLevel < 1 || c.ZstdLevel > 22:
		return fmt.Errorf("writer.zstd-level: %d is not a zstd level (1 to 22)", c.ZstdLevel)
	}
	return nil
}

// Bytes is a size in bytes; in YAML a number or a string with a unit:
// 512KiB, 64MiB, 1GiB, 100MB.
type Bytes int64

// UnmarshalYAML parses a size. Its error keeps n, so a config loader can
// name the line and key.
func (b *Bytes) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return yamlkeys.Invalid(n, "want a size: a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)")
	}
	v, err := ParseBytes(n.Value)
	if err != nil {
		return yamlkeys.Invalid(n, err.Error())
	}
	*b = v
	return nil
}

// ParseBytes parses "64MiB", "1GB", "1048576".
func ParseBytes(s string) (Bytes, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("size " + strconv.Quote(s) + ": want a number with an optional unit (KiB, MiB, GiB, KB, MB, GB)")
	}
	return Bytes(v * mult), nil
}
