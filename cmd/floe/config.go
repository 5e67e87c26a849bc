package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/config"
	"github.com/floe-lake/floe/source/all"
)

// fileConfig is floe.yaml (internal/config).
type fileConfig = config.File

// section is a set of floe.yaml's sections: the ones a command uses, which
// loadConfig validates.
type section = config.Section

const (
	catalogSection = config.Catalog
	tablesSection  = config.Tables
	sourcesSection = config.Sources

	allSections     = config.All
	ingestSections  = config.Ingest
	compactSections = config.Compact
)

// loadConfig reads floe.yaml (an empty path: the embedded defaults) with
// the built-in source kinds and validates the sections in need. Every
// mistake is a usageError (exit code 2), found before anything is created.
func loadConfig(path string, need section) (*fileConfig, error) {
	cfg, err := config.Load(path, need, all.Registry())
	if err != nil {
		return nil, usageError{err}
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

// closeSources closes a pipeline's or a service's sources, logging a failure.
func closeSources(c io.Closer, log *slog.Logger) {
	if err := c.Close(); err != nil {
		log.Warn("close sources", "err", err)
	}
}

// configuredMetrics is the config's metrics address, 127.0.0.1:9464 by default.
func configuredMetrics(cfg *fileConfig) string {
	if cfg.Metrics != nil {
		return *cfg.Metrics
	}
	return "127.0.0.1:9464"
}

// closeCatalog closes cat when it holds resources (a SQL catalog's
// database), logging a failure.
func closeCatalog(cat icecat.Catalog, log *slog.Logger) {
	if c, ok := cat.(io.Closer); ok {
		if err := c.Close(); err != nil {
			log.Warn("close catalog", "err", err)
		}
	}
}
