package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	icecat "github.com/apache/iceberg-go/catalog"
	"gopkg.in/yaml.v3"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/compaction"
	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// fileConfig is floe.yaml: one file describes the catalog, storage, tables,
// sources and daemons. Every component's section has its own Config with
// defaults in one place and Validate().
type fileConfig struct {
	Catalog catalog.Config `yaml:"catalog"`
	Writer  writer.Config  `yaml:"writer"`
	// Compaction configures floe compact.
	Compaction compaction.Config `yaml:"compaction"`
	// Tables are created when missing and evolved when their spec adds
	// optional columns.
	Tables []table.Spec `yaml:"tables"`
	// Sources feed the tables; see sourceConfig.
	Sources []sourceConfig `yaml:"sources"`
	// Metrics is the address /metrics and /healthz listen on.
	// Default: 127.0.0.1:9464; "" or "off" disables.
	Metrics *string `yaml:"metrics-address"`
}

// loadConfig reads and validates a config file. An empty path gives the
// embedded defaults.
func loadConfig(path string) (*fileConfig, error) {
	cfg := &fileConfig{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, usageError{fmt.Errorf("read config: %w", err)}
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
			return nil, usageError{fmt.Errorf("config %s: %w", path, err)}
		}
	}
	cfg.Catalog.ApplyDefaults()
	if err := cfg.Catalog.Validate(); err != nil {
		return nil, usageError{fmt.Errorf("config %s: %w", path, err)}
	}
	cfg.Writer.ApplyDefaults()
	if err := cfg.Writer.Validate(); err != nil {
		return nil, usageError{fmt.Errorf("config %s: %w", path, err)}
	}
	cfg.Compaction.ApplyDefaults()
	if err := cfg.Compaction.Validate(); err != nil {
		return nil, usageError{fmt.Errorf("config %s: %w", path, err)}
	}
	for i := range cfg.Sources {
		if err := cfg.Sources[i].validate(fmt.Sprintf("sources[%d]", i)); err != nil {
			return nil, usageError{fmt.Errorf("config %s: %w", path, err)}
		}
	}
	return cfg, nil
}

// configFlag registers -config.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", os.Getenv("FLOE_CONFIG"), "config file (floe.yaml); default: embedded defaults (SQLite catalog and warehouse under ./floe-lake); env FLOE_CONFIG")
}

func openCatalog(ctx context.Context, cfg *fileConfig) (icecat.Catalog, error) {
	return catalog.Open(ctx, cfg.Catalog)
}
