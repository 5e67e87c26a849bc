// Package catalog opens the Iceberg catalog and the object storage that Floe's
// tables live in, from one Config.
//
// It knows three catalogs — a SQLite file (the embedded default, through the
// pure-Go modernc.org/sqlite driver), PostgreSQL (pgx) through iceberg-go's SQL
// catalog, and any Iceberg REST catalog — and two kinds of storage: a local
// directory (file://) and S3-compatible object storage (s3://, e.g. MinIO)
// through iceberg-go's S3 IO. It creates a missing bucket with minio-go.
//
// This package opens things; it never reads or writes table data.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	_ "github.com/apache/iceberg-go/catalog/rest" // registers the "rest" catalog type
	_ "github.com/apache/iceberg-go/catalog/sql"  // registers the "sql" catalog type
	iceio "github.com/apache/iceberg-go/io"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // registers the s3:// scheme
	_ "github.com/jackc/pgx/v5/stdlib"             // database/sql driver "pgx"
	_ "modernc.org/sqlite"                         // database/sql driver "sqlite", pure Go
)

// Catalog types accepted in Config.Type.
const (
	TypeSQLite   = "sqlite"
	TypePostgres = "postgres"
	TypeREST     = "rest"
)

// Environment variables that override secrets in the config file.
const (
	EnvS3AccessKeyID     = "FLOE_S3_ACCESS_KEY_ID"
	EnvS3SecretAccessKey = "FLOE_S3_SECRET_ACCESS_KEY"
	EnvS3Endpoint        = "FLOE_S3_ENDPOINT"
	EnvCatalogURI        = "FLOE_CATALOG_URI"
	// EnvS3CAFile overrides s3.ca-file.
	EnvS3CAFile = "FLOE_S3_CA_FILE"
	// EnvCatalogPassword is the PostgreSQL catalog's password; it
	// overrides password-file and a password in the uri.
	EnvCatalogPassword = "FLOE_CATALOG_PASSWORD"
)

// Config says which catalog to open and where table data is stored.
type Config struct {
	// Type is one of sqlite, postgres, rest. Default: sqlite.
	Type string `yaml:"type"`
	// Name is the catalog's name (the SQL catalog's catalog_name column).
	// Default: floe.
	Name string `yaml:"name"`
	// URI is the SQLite file path, the PostgreSQL DSN
	// (postgres://user:pass@127.0.0.1:5432/db) or the REST catalog's URL.
	// Default for sqlite: floe-lake/catalog.db. Env FLOE_CATALOG_URI overrides.
	URI string `yaml:"uri"`
	// PasswordFile is a file holding the PostgreSQL catalog's password (a
	// mounted secret; one trailing newline is ignored), so that the uri
	// need not carry it. Env FLOE_CATALOG_PASSWORD overrides the file; either
	// overrides a password in the uri. Never logged. Default: none.
	PasswordFile string `yaml:"password-file"`
	// Warehouse is where new tables are created: a local directory (a path
	// or file:///abs/path) or s3://bucket/prefix. Default: floe-lake/warehouse.
	Warehouse string `yaml:"warehouse"`
	// S3 configures S3-compatible storage; used when Warehouse is s3://.
	S3 S3Config `yaml:"s3"`
	// Properties are passed to iceberg-go's catalog as they are (Iceberg's
	// own names, e.g. "s3.region", "credential", "token"). Default: none.
	Properties map[string]string `yaml:"properties"`
}

// S3Config is the S3-compatible storage the warehouse lives on.
type S3Config struct {
	// Endpoint is the S3 API URL, e.g. http://127.0.0.1:9000. Env FLOE_S3_ENDPOINT
	// overrides. Default: AWS.
	Endpoint string `yaml:"endpoint"`
	// Region. Default: us-east-1.
	Region string `yaml:"region"`
	// AccessKeyID; env FLOE_S3_ACCESS_KEY_ID overrides. Never logged.
	AccessKeyID string `yaml:"access-key-id"`
	// SecretAccessKey; env FLOE_S3_SECRET_ACCESS_KEY overrides. Never logged.
	SecretAccessKey string `yaml:"secret-access-key"`
	// CreateBucket creates the warehouse bucket when missing. Default: true.
	CreateBucket *bool `yaml:"create-bucket"`
	// CAFile is a PEM bundle of certificate authorities trusted, besides
	// the system's, for an https endpoint (a MinIO with its own CA). Env
	// FLOE_S3_CA_FILE overrides. Default: none.
	CAFile string `yaml:"ca-file"`
}

// DefaultConfig is the embedded default: a SQLite file and a local warehouse
// under ./floe-lake.
func DefaultConfig() Config {
	return Config{Type: TypeSQLite, Name: "floe", URI: "floe-lake/catalog.db", Warehouse: "floe-lake/warehouse"}
}

// ApplyDefaults fills unset fields from DefaultConfig and the environment.
func (c *Config) ApplyDefaults() {
	d := DefaultConfig()
	if c.Type == "" {
		c.Type = d.Type
	}
	if c.Name == "" {
		c.Name = d.Name
	}
	if v := os.Getenv(EnvCatalogURI); v != "" {
		c.URI = v
	}
	if c.URI == "" && c.Type == TypeSQLite {
		c.URI = d.URI
	}
	if c.Warehouse == "" {
		c.Warehouse = d.Warehouse
	}
	if v := os.Getenv(EnvS3Endpoint); v != "" {
		c.S3.Endpoint = v
	}
	if v := os.Getenv(EnvS3AccessKeyID); v != "" {
		c.S3.AccessKeyID = v
	}
	if v := os.Getenv(EnvS3SecretAccessKey); v != "" {
		c.S3.SecretAccessKey = v
	}
	if v := os.Getenv(EnvS3CAFile); v != "" {
		c.S3.CAFile = v
	}
	if c.S3.Region == "" {
		c.S3.Region = "us-east-1"
	}
}

// Validate reports the first invalid setting, naming its key.
func (c *Config) Validate() error {
	switch c.Type {
	case TypeSQLite, TypePostgres, TypeREST:
	default:
		return fmt.Errorf("catalog.type: %q is not one of sqlite, postgres, rest", c.Type)
	}
	if c.URI == "" {
		return fmt.Errorf("catalog.uri: required for a %s catalog", c.Type)
	}
	if c.PasswordFile != "" && c.Type != TypePostgres {
		return fmt.Errorf("catalog.password-file: only for a postgres catalog, not %s", c.Type)
	}
	if c.IsS3() {
		u, err := url.Parse(c.Warehouse)
		if err != nil || u.Host == "" {
			return fmt.Errorf("catalog.warehouse: %q is not s3://bucket[/prefix]", c.Warehouse)
		}
		if c.S3.Endpoint != "" {
			if e, err := url.Parse(c.S3.Endpoint); err != nil || e.Scheme == "" || e.Host == "" {
				return fmt.Errorf("catalog.s3.endpoint: %q is not a URL like http://127.0.0.1:9000", c.S3.Endpoint)
			}
		}
	} else if strings.Contains(c.Warehouse, "://") && !strings.HasPrefix(c.Warehouse, "file://") {
		return fmt.Errorf("catalog.warehouse: %q: only a local path, file:// or s3:// is supported", c.Warehouse)
	}
	return nil
}

// IsS3 reports whether the warehouse is on S3-compatible storage.
func (c *Config) IsS3() bool {
	return strings.HasPrefix(c.Warehouse, "s3://") || strings.HasPrefix(c.Warehouse, "s3a://")
}

// WarehouseURL is the warehouse as a URL iceberg-go understands: s3://… as
// given, a local path made absolute as file:///….
func (c *Config) WarehouseURL() (string, error) {
	if c.IsS3() || strings.HasPrefix(c.Warehouse, "file://") {
		return c.Warehouse, nil
	}
	abs, err := filepath.Abs(c.Warehouse)
	if err != nil {
		return "", fmt.Errorf("catalog.warehouse: %w", err)
	}
	return "file://" + abs, nil
}

// IcebergProperties are the properties iceberg-go's catalog and IO are
// opened with. They hold secrets: never log them.
func (c *Config) IcebergProperties() (iceberg.Properties, error) {
	wh, err := c.WarehouseURL()
	if err != nil {
		return nil, err
	}
	p := iceberg.Properties{"warehouse": wh}
	switch c.Type {
	case TypeSQLite:
		path := strings.TrimPrefix(c.URI, "file:")
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("catalog.uri: create directory for %s: %w", path, err)
			}
		}
		p["type"] = "sql"
		p["sql.driver"] = "sqlite"
		p["sql.dialect"] = "sqlite"
		// WAL and a busy timeout let several Floe processes share one file.
		p["uri"] = "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
		p["init_catalog_tables"] = "true"
	case TypePostgres:
		p["type"] = "sql"
		p["sql.driver"] = "pgx"
		p["sql.dialect"] = "postgres"
		uri, err := c.postgresURI()
		if err != nil {
			return nil, err
		}
		p["uri"] = uri
		p["init_catalog_tables"] = "true"
	case TypeREST:
		p["type"] = "rest"
		p["uri"] = c.URI
	}
	if c.IsS3() {
		p[iceio.S3Region] = c.S3.Region
		if c.S3.Endpoint != "" {
			p[iceio.S3EndpointURL] = c.S3.Endpoint
		}
		if c.S3.AccessKeyID != "" {
			p[iceio.S3AccessKeyID] = c.S3.AccessKeyID
			p[iceio.S3SecretAccessKey] = c.S3.SecretAccessKey
		}
	}
	for k, v := range c.Properties {
		p[k] = v
	}
	return p, nil
}

// Open opens the catalog described by cfg, after creating the warehouse
// directory or bucket when it is missing. cfg must have been validated.
func Open(ctx context.Context, cfg Config) (icecat.Catalog, error) {
	props, err := cfg.IcebergProperties()
	if err != nil {
		return nil, err
	}
	if cfg.IsS3() {
		if cfg.S3.CreateBucket == nil || *cfg.S3.CreateBucket {
			if err := EnsureBucket(ctx, cfg); err != nil {
				return nil, err
			}
		}
	} else {
		wh, _ := cfg.WarehouseURL()
		if err := os.MkdirAll(strings.TrimPrefix(wh, "file://"), 0o755); err != nil {
			return nil, fmt.Errorf("create warehouse %s: %w", wh, err)
		}
	}
	cat, err := icecat.Load(ctx, cfg.Name, props)
	if err != nil {
		return nil, fmt.Errorf("open %s catalog %s: %w", cfg.Type, redact(cfg.URI), err)
	}
	if cfg.IsS3() {
		roots, err := cfg.S3.rootCAs()
		if err != nil {
			return nil, err
		}
		awscfg, err := sharedAWSConfig(ctx, props, roots)
		if err != nil {
			return nil, err
		}
		cat = withAWS(cat, awscfg)
	}
	return cat, nil
}

// redact hides a password in a DSN or URL, also in one that does not
// parse (everything between :// and the last @), and in a keyword/value
// DSN's password=….
func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		if i, j := strings.Index(uri, "://"), strings.LastIndex(uri, "@"); i >= 0 && j > i {
			return uri[:i+3] + "xxxxx" + uri[j:]
		}
		return redactKeyword(uri)
	}
	if u.User == nil {
		return redactKeyword(uri)
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// ErrNoCredentials is returned when S3 storage has no credentials.
var ErrNoCredentials = errors.New("no S3 credentials: set catalog.s3.access-key-id/secret-access-key or FLOE_S3_ACCESS_KEY_ID/FLOE_S3_SECRET_ACCESS_KEY")
