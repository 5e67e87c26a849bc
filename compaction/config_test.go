package compaction

import (
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"gopkg.in/yaml.v3"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.Interval != 5*time.Minute || c.MinInputFiles != 5 || c.OrphanOlderThan != 72*time.Hour ||
		!c.expireEnabled() || !c.orphansEnabled() || !c.manifestsEnabled() || c.PartialProgress {
		t.Errorf("defaults: %+v", c)
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
interval: 30s
tables: [ods.events, "a.b.c"]
concurrency: 2
target-file-size-bytes: 64MiB
min-file-size-bytes: 32MiB
min-input-files: 8
partial-progress.enabled: true
max-concurrent-file-group-rewrites: 3
strategy: sort
orphan-older-than: 96h
expire-snapshots.enabled: false
rewrite-manifests.max-manifests: 50
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Interval != 30*time.Second || len(c.Tables) != 2 || c.TargetFileSizeBytes != 64<<20 || c.MinFileSizeBytes != 32<<20 ||
		c.MinInputFiles != 8 || !c.PartialProgress || c.MaxConcurrentFileGroupRewrites != 3 || c.Strategy != StrategySort ||
		c.OrphanOlderThan != 96*time.Hour || c.expireEnabled() || !c.orphansEnabled() || c.RewriteManifestsMaxManifests != 50 {
		t.Errorf("decoded: %+v", c)
	}
	o, err := c.planOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.TargetFileSizeBytes != 64<<20 || o.MinFileSizeBytes != 32<<20 || o.MaxFileSizeBytes != 64<<20*9/5 {
		t.Errorf("plan options: %+v", o)
	}
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		mod func(*Config)
	}{
		{"compaction.interval", func(c *Config) { c.Interval = time.Millisecond }},
		{"compaction.concurrency", func(c *Config) { c.Concurrency = -1 }},
		{"compaction.min-input-files", func(c *Config) { c.MinInputFiles = -2 }},
		{"compaction.delete-file-threshold", func(c *Config) { c.DeleteFileThreshold = -1 }},
		{"compaction.max-concurrent-file-group-rewrites", func(c *Config) { c.MaxConcurrentFileGroupRewrites = -1 }},
		{"compaction.strategy", func(c *Config) { c.Strategy = "zorder" }},
		{"compaction.orphan-older-than", func(c *Config) { c.OrphanOlderThan = 30 * time.Minute }},
		{"compaction.commit-timeout", func(c *Config) { c.CommitTimeout = time.Millisecond }},
		{"compaction.tables[1]", func(c *Config) { c.Tables = []string{"a.b", "nodot"} }},
		{"compaction.target-file-size-bytes", func(c *Config) { c.TargetFileSizeBytes = -5 }},
		{"compaction.min-file-size-bytes", func(c *Config) { c.TargetFileSizeBytes = 100; c.MinFileSizeBytes = 200 }},
		{"compaction.max-file-size-bytes", func(c *Config) { c.TargetFileSizeBytes = 100; c.MaxFileSizeBytes = 50 }},
		{"compaction.rewrite-manifests.max-manifests", func(c *Config) { c.RewriteManifestsMaxManifests = -1 }},
	} {
		t.Run(tc.key, func(t *testing.T) {
			var c Config
			tc.mod(&c)
			c.ApplyDefaults()
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tc.key+":") {
				t.Fatalf("Validate() = %v, want an error starting %q", err, tc.key+":")
			}
		})
	}
}

func TestPlanOptionsFromTable(t *testing.T) {
	var c Config
	c.ApplyDefaults()
	o, err := c.planOptions(iceberg.Properties{"write.target-file-size-bytes": "1000"})
	if err != nil {
		t.Fatal(err)
	}
	if o.TargetFileSizeBytes != 1000 || o.MinFileSizeBytes != 750 || o.MaxFileSizeBytes != 1800 || o.MinInputFiles != 5 {
		t.Errorf("options from the table: %+v", o)
	}
	if o, _ := c.planOptions(nil); o.TargetFileSizeBytes != 512<<20 {
		t.Errorf("a table without the property: target %d, want iceberg-go's 512MiB", o.TargetFileSizeBytes)
	}
	if _, err := c.planOptions(iceberg.Properties{"write.target-file-size-bytes": "big"}); err == nil {
		t.Error("a bad table property was accepted")
	}
	// The config's own min-file-size-bytes above the table's target.
	c.MinFileSizeBytes = 5000
	if _, err := c.planOptions(iceberg.Properties{"write.target-file-size-bytes": "1000"}); err == nil || !strings.Contains(err.Error(), "compaction.min-file-size-bytes") {
		t.Errorf("min above the table's target: %v", err)
	}
}
