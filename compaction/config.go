package compaction

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/bytesize"
	"github.com/floe-lake/floe/table"
)

// Strategies a rewrite can use (Iceberg's RewriteDataFiles names).
const (
	// StrategyBinPack combines small files as they are.
	StrategyBinPack = "binpack"
	// StrategySort also sorts each output run by the table's sort order.
	StrategySort = "sort"
)

// MinOrphanOlderThan is the youngest orphan-older-than a config may set.
// Writers publish files only at commit, at most a commit interval plus a
// commit timeout (minutes) after writing them; a younger threshold would
// delete the files of commits still in flight.
const MinOrphanOlderThan = time.Hour

// Config is the compaction: section of floe.yaml. Options that Iceberg's
// RewriteDataFiles action has keep its names. Zero values take
// DefaultConfig's.
type Config struct {
	// Interval is the time between the daemon's passes. Default: 5m.
	Interval time.Duration `yaml:"interval"`
	// Tables are the tables to maintain, as namespace.table. Default: every
	// table in the catalog.
	Tables []string `yaml:"tables"`
	// Concurrency is how many tables are maintained at the same time.
	// Default: 1.
	Concurrency int `yaml:"concurrency"`
	// MetricsAddress is where the daemon serves /metrics and /healthz;
	// "off" disables. Not the top-level metrics-address, which ingest
	// listens on, so both daemons can run on one host. Default:
	// 127.0.0.1:9465.
	MetricsAddress string `yaml:"metrics-address"`

	// TargetFileSizeBytes is the size of the files a rewrite writes, and of
	// its file groups. Default: the table's write.target-file-size-bytes
	// (iceberg-go's 512MiB when the table has none).
	TargetFileSizeBytes bytesize.Bytes `yaml:"target-file-size-bytes"`
	// MinFileSizeBytes: data files smaller than this are rewritten.
	// Default: 0.75 × target-file-size-bytes.
	MinFileSizeBytes bytesize.Bytes `yaml:"min-file-size-bytes"`
	// MaxFileSizeBytes: data files larger than this are never rewritten
	// unless delete files make them candidates. Default: 1.8 ×
	// target-file-size-bytes.
	MaxFileSizeBytes bytesize.Bytes `yaml:"max-file-size-bytes"`
	// MinInputFiles is how many candidate files a partition, and a file
	// group, needs before it is rewritten; a group with a file over
	// delete-file-threshold is rewritten whatever its size. Default: 5.
	MinInputFiles int `yaml:"min-input-files"`
	// DeleteFileThreshold makes a data file a candidate of any size once
	// this many delete files apply to it, so the rewrite folds them away.
	// Default: 5.
	DeleteFileThreshold int `yaml:"delete-file-threshold"`
	// PartialProgress commits each file group as soon as it is rewritten
	// (one snapshot per group; a crash loses at most the group in flight)
	// instead of one snapshot for all the groups of a table. Default: false.
	PartialProgress bool `yaml:"partial-progress.enabled"`
	// MaxConcurrentFileGroupRewrites is how many groups of one table are
	// rewritten at the same time. Default: 1.
	MaxConcurrentFileGroupRewrites int `yaml:"max-concurrent-file-group-rewrites"`
	// Strategy is binpack, or sort: rows are sorted by the table's sort
	// order in runs of up to sort-buffer-bytes (a table without a sort
	// order is bin-packed). Default: binpack.
	Strategy string `yaml:"strategy"`
	// SortBufferBytes bounds the Arrow memory of one sorted run, its
	// copies included (strategy sort); an output file may pass the target
	// size by up to one run. Default: 256MiB.
	SortBufferBytes bytesize.Bytes `yaml:"sort-buffer-bytes"`
	// CommitTimeout bounds one compaction commit, conflict retries with
	// concurrent ingest included. Default: 2m.
	CommitTimeout time.Duration `yaml:"commit-timeout"`

	// ExpireSnapshots expires snapshots by the table's
	// history.expire.max-snapshot-age-ms and
	// history.expire.min-snapshots-to-keep, and deletes the files only
	// they referenced. Default: true.
	ExpireSnapshots *bool `yaml:"expire-snapshots.enabled"`
	// RemoveOrphanFiles deletes files under the table location that no
	// metadata references and that are older than orphan-older-than.
	// Default: true.
	RemoveOrphanFiles *bool `yaml:"remove-orphan-files.enabled"`
	// OrphanOlderThan is the age a file needs before the orphan cleaner may
	// delete it. At least 1h. Default: 72h.
	OrphanOlderThan time.Duration `yaml:"orphan-older-than"`
	// OrphanInterval is how often the daemon lists a table's location for
	// orphans (a full listing; a one-shot run always does it).
	// Default: 1h.
	OrphanInterval time.Duration `yaml:"orphan-interval"`
	// RewriteManifests merges manifests when commits have left many:
	// more than rewrite-manifests.max-manifests, or at least 10 averaging
	// under rewrite-manifests.min-average-bytes. Default: true.
	RewriteManifests *bool `yaml:"rewrite-manifests.enabled"`
	// RewriteManifestsMaxManifests triggers a manifest rewrite when the
	// current snapshot has more manifests. Default: 100.
	RewriteManifestsMaxManifests int `yaml:"rewrite-manifests.max-manifests"`
	// RewriteManifestsMinAverageBytes triggers a manifest rewrite when at
	// least 10 manifests average fewer bytes. Default: 1MiB.
	RewriteManifestsMinAverageBytes bytesize.Bytes `yaml:"rewrite-manifests.min-average-bytes"`
}

// minManifestsForAverage is how many manifests the average-size trigger
// needs: a handful of small manifests costs a scan little, and merging
// them on every pass would add a snapshot per pass.
const minManifestsForAverage = 10

// DefaultConfig returns the defaults. Sizes derived from the table
// (target, min and max file size) stay zero: they are resolved per table.
func DefaultConfig() Config {
	yes := func() *bool { b := true; return &b }
	return Config{
		Interval:                        5 * time.Minute,
		Concurrency:                     1,
		MetricsAddress:                  "127.0.0.1:9465",
		MinInputFiles:                   5,
		DeleteFileThreshold:             5,
		MaxConcurrentFileGroupRewrites:  1,
		Strategy:                        StrategyBinPack,
		SortBufferBytes:                 256 << 20,
		CommitTimeout:                   2 * time.Minute,
		ExpireSnapshots:                 yes(),
		RemoveOrphanFiles:               yes(),
		OrphanOlderThan:                 72 * time.Hour,
		OrphanInterval:                  time.Hour,
		RewriteManifests:                yes(),
		RewriteManifestsMaxManifests:    100,
		RewriteManifestsMinAverageBytes: 1 << 20,
	}
}

// ApplyDefaults fills unset fields from DefaultConfig.
func (c *Config) ApplyDefaults() {
	d := DefaultConfig()
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.Concurrency == 0 {
		c.Concurrency = d.Concurrency
	}
	if c.MetricsAddress == "" {
		c.MetricsAddress = d.MetricsAddress
	}
	if c.MinInputFiles == 0 {
		c.MinInputFiles = d.MinInputFiles
	}
	if c.DeleteFileThreshold == 0 {
		c.DeleteFileThreshold = d.DeleteFileThreshold
	}
	if c.MaxConcurrentFileGroupRewrites == 0 {
		c.MaxConcurrentFileGroupRewrites = d.MaxConcurrentFileGroupRewrites
	}
	if c.Strategy == "" {
		c.Strategy = d.Strategy
	}
	if c.SortBufferBytes == 0 {
		c.SortBufferBytes = d.SortBufferBytes
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = d.CommitTimeout
	}
	if c.ExpireSnapshots == nil {
		c.ExpireSnapshots = d.ExpireSnapshots
	}
	if c.RemoveOrphanFiles == nil {
		c.RemoveOrphanFiles = d.RemoveOrphanFiles
	}
	if c.OrphanOlderThan == 0 {
		c.OrphanOlderThan = d.OrphanOlderThan
	}
	if c.OrphanInterval == 0 {
		c.OrphanInterval = d.OrphanInterval
	}
	if c.RewriteManifests == nil {
		c.RewriteManifests = d.RewriteManifests
	}
	if c.RewriteManifestsMaxManifests == 0 {
		c.RewriteManifestsMaxManifests = d.RewriteManifestsMaxManifests
	}
	if c.RewriteManifestsMinAverageBytes == 0 {
		c.RewriteManifestsMinAverageBytes = d.RewriteManifestsMinAverageBytes
	}
}

// Validate reports the first invalid setting, naming its key. Sizes left
// to the table are checked again, per table, when a pass resolves them.
func (c *Config) Validate() error {
	switch {
	case c.Interval < time.Second:
		return fmt.Errorf("compaction.interval: %s is below the minimum of 1s", c.Interval)
	case c.Concurrency < 1:
		return fmt.Errorf("compaction.concurrency: %d must be at least 1", c.Concurrency)
	case c.TargetFileSizeBytes < 0:
		return fmt.Errorf("compaction.target-file-size-bytes: %d is negative", c.TargetFileSizeBytes)
	case c.MinFileSizeBytes < 0:
		return fmt.Errorf("compaction.min-file-size-bytes: %d is negative", c.MinFileSizeBytes)
	case c.MaxFileSizeBytes < 0:
		return fmt.Errorf("compaction.max-file-size-bytes: %d is negative", c.MaxFileSizeBytes)
	case c.MinInputFiles < 1:
		return fmt.Errorf("compaction.min-input-files: %d must be at least 1", c.MinInputFiles)
	case c.DeleteFileThreshold < 1:
		return fmt.Errorf("compaction.delete-file-threshold: %d must be at least 1", c.DeleteFileThreshold)
	case c.MaxConcurrentFileGroupRewrites < 1:
		return fmt.Errorf("compaction.max-concurrent-file-group-rewrites: %d must be at least 1", c.MaxConcurrentFileGroupRewrites)
	case c.Strategy != StrategyBinPack && c.Strategy != StrategySort:
		return fmt.Errorf("compaction.strategy: %q is not %s or %s", c.Strategy, StrategyBinPack, StrategySort)
	case c.SortBufferBytes < 1<<20:
		return fmt.Errorf("compaction.sort-buffer-bytes: %d bytes is below the minimum of 1MiB", c.SortBufferBytes)
	case c.CommitTimeout < time.Second:
		return fmt.Errorf("compaction.commit-timeout: %s is below the minimum of 1s", c.CommitTimeout)
	case c.OrphanOlderThan < MinOrphanOlderThan:
		return fmt.Errorf("compaction.orphan-older-than: %s is below the minimum of %s: younger files may belong to commits still in flight", c.OrphanOlderThan, MinOrphanOlderThan)
	case c.OrphanInterval < 0:
		return fmt.Errorf("compaction.orphan-interval: %s is negative", c.OrphanInterval)
	case c.RewriteManifestsMaxManifests < 1:
		return fmt.Errorf("compaction.rewrite-manifests.max-manifests: %d must be at least 1", c.RewriteManifestsMaxManifests)
	case c.RewriteManifestsMinAverageBytes < 0:
		return fmt.Errorf("compaction.rewrite-manifests.min-average-bytes: %d is negative", c.RewriteManifestsMinAverageBytes)
	}
	for i, name := range c.Tables {
		if _, err := table.ParseIdent(name); err != nil {
			return fmt.Errorf("compaction.tables[%d]: %w", i, err)
		}
	}
	// Sizes given explicitly must be consistent among themselves; the ones
	// derived from a table are checked when a pass resolves them.
	if c.TargetFileSizeBytes > 0 {
		if _, err := c.planOptions(nil); err != nil {
			return err
		}
	}
	if c.MinFileSizeBytes > 0 && c.MaxFileSizeBytes > 0 && c.MinFileSizeBytes >= c.MaxFileSizeBytes {
		return fmt.Errorf("compaction.min-file-size-bytes: %d must be below max-file-size-bytes (%d)", c.MinFileSizeBytes, c.MaxFileSizeBytes)
	}
	return nil
}

func (c *Config) expireEnabled() bool    { return c.ExpireSnapshots == nil || *c.ExpireSnapshots }
func (c *Config) orphansEnabled() bool   { return c.RemoveOrphanFiles == nil || *c.RemoveOrphanFiles }
func (c *Config) manifestsEnabled() bool { return c.RewriteManifests == nil || *c.RewriteManifests }

// planOptions resolves the file sizes for a table with properties props
// (nil: the config's own values only).
func (c *Config) planOptions(props iceberg.Properties) (PlanOptions, error) {
	target := int64(c.TargetFileSizeBytes)
	if target == 0 {
		target = int64(icetable.WriteTargetFileSizeBytesDefault)
		if v, ok := props[icetable.WriteTargetFileSizeBytesKey]; ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n <= 0 {
				return PlanOptions{}, fmt.Errorf("table property %s: %q is not a positive number of bytes", icetable.WriteTargetFileSizeBytesKey, v)
			}
			target = n
		}
	}
	o := PlanOptions{
		TargetFileSizeBytes: target,
		MinFileSizeBytes:    int64(c.MinFileSizeBytes),
		MaxFileSizeBytes:    int64(c.MaxFileSizeBytes),
		MinInputFiles:       c.MinInputFiles,
		DeleteFileThreshold: c.DeleteFileThreshold,
	}
	if o.MinFileSizeBytes == 0 {
		o.MinFileSizeBytes = target * 3 / 4
	}
	if o.MaxFileSizeBytes == 0 {
		o.MaxFileSizeBytes = target * 9 / 5
	}
	if o.MinInputFiles == 0 {
		o.MinInputFiles = DefaultConfig().MinInputFiles
	}
	if o.DeleteFileThreshold == 0 {
		o.DeleteFileThreshold = DefaultConfig().DeleteFileThreshold
	}
	return o, o.validate()
}
