package catalog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"iter"
	"net/http"
	"time"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	iceio "github.com/apache/iceberg-go/io"
	ices3 "github.com/apache/iceberg-go/io/gocloud/s3"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/utils"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// iceberg-go's S3 IO builds its AWS configuration (config.LoadDefaultConfig:
// environment, shared files, the credential chain) and a new HTTP transport
// for every IO it makes, unless the context carries a configuration
// (utils.WithAwsConfig). Its SQL catalog makes three per commit (loading
// the table, loading it again to check the requirements, writing the
// metadata file): about 12 ms of CPU and a fresh connection each, measured
// on a MinIO commit. On S3 storage Floe builds the configuration once per
// catalog, with one HTTP client so connections are reused, and awsCatalog
// hands it to every catalog call. Properties given per table (a REST
// catalog's vended credentials) still override it, as iceberg-go applies
// them on top.

// sharedAWSConfig is the configuration iceberg-go would build from props,
// built once, with one tuned HTTP client (iceberg-go's S3 transport
// settings) unless props ask for a proxy or connect timeout, whose client
// iceberg-go's ParseAWSConfig makes itself. Non-nil roots are the
// certificate authorities the client trusts (s3.ca-file).
func sharedAWSConfig(ctx context.Context, props iceberg.Properties, roots *x509.CertPool) (*aws.Config, error) {
	cfg, err := ices3.ParseAWSConfig(ctx, props)
	if err != nil {
		return nil, fmt.Errorf("catalog.s3: %w", err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = 256
			t.MaxIdleConnsPerHost = 256
			t.MaxConnsPerHost = 2048
			t.IdleConnTimeout = 90 * time.Second
		})
	}
	if roots != nil {
		bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
		if !ok {
			return nil, fmt.Errorf("catalog.s3.ca-file: cannot apply to the HTTP client %T", cfg.HTTPClient)
		}
		cfg.HTTPClient = bc.WithTransportOptions(func(t *http.Transport) {
			if t.TLSClientConfig == nil {
				t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			t.TLSClientConfig.RootCAs = roots
		})
	}
	return cfg, nil
}

// awsCatalog passes one AWS configuration to every call of the catalog it
// wraps.
type awsCatalog struct {
	icecat.Catalog
	aws   *aws.Config
	outer icetable.CatalogIO // the wrapper tables are pointed at
}

// withAWS wraps cat so that every call carries cfg. A catalog that plans
// scans remotely keeps doing so.
func withAWS(cat icecat.Catalog, cfg *aws.Config) icecat.Catalog {
	c := &awsCatalog{Catalog: cat, aws: cfg}
	c.outer = c
	if p, ok := cat.(icetable.ScanPlanner); ok {
		pc := &awsPlanningCatalog{awsCatalog: c, planner: p}
		c.outer = pc
		return pc
	}
	return c
}

// Unwrap returns the wrapped catalog.
func (c *awsCatalog) Unwrap() icecat.Catalog { return c.Catalog }

func (c *awsCatalog) ctx(ctx context.Context) context.Context {
	if utils.GetAwsConfig(ctx) != nil {
		return ctx
	}
	return utils.WithAwsConfig(ctx, c.aws)
}

// table re-points a table the wrapped catalog returned at c, so that its
// commits and the IO it makes for reading and writing files get the
// configuration too.
func (c *awsCatalog) table(t *icetable.Table, err error) (*icetable.Table, error) {
	if err != nil || t == nil {
		return t, err
	}
	fs := func(ctx context.Context) (iceio.IO, error) { return t.FS(c.ctx(ctx)) }
	return icetable.New(t.Identifier(), t.Metadata(), t.MetadataLocation(), fs, c.outer), nil
}

func (c *awsCatalog) CreateTable(ctx context.Context, ident icetable.Identifier, sc *iceberg.Schema, opts ...icecat.CreateTableOpt) (*icetable.Table, error) {
	return c.table(c.Catalog.CreateTable(c.ctx(ctx), ident, sc, opts...))
}

func (c *awsCatalog) CommitTable(ctx context.Context, ident icetable.Identifier, reqs []icetable.Requirement, updates []icetable.Update) (icetable.Metadata, string, error) {
	return c.Catalog.CommitTable(c.ctx(ctx), ident, reqs, updates)
}

func (c *awsCatalog) ListTables(ctx context.Context, ns icetable.Identifier) iter.Seq2[icetable.Identifier, error] {
	return c.Catalog.ListTables(c.ctx(ctx), ns)
}

func (c *awsCatalog) LoadTable(ctx context.Context, ident icetable.Identifier) (*icetable.Table, error) {
	return c.table(c.Catalog.LoadTable(c.ctx(ctx), ident))
}

func (c *awsCatalog) DropTable(ctx context.Context, ident icetable.Identifier) error {
	return c.Catalog.DropTable(c.ctx(ctx), ident)
}

func (c *awsCatalog) RenameTable(ctx context.Context, from, to icetable.Identifier) (*icetable.Table, error) {
	return c.table(c.Catalog.RenameTable(c.ctx(ctx), from, to))
}

func (c *awsCatalog) CheckTableExists(ctx context.Context, ident icetable.Identifier) (bool, error) {
	return c.Catalog.CheckTableExists(c.ctx(ctx), ident)
}

func (c *awsCatalog) ListNamespaces(ctx context.Context, parent icetable.Identifier) ([]icetable.Identifier, error) {
	return c.Catalog.ListNamespaces(c.ctx(ctx), parent)
}

func (c *awsCatalog) CreateNamespace(ctx context.Context, ns icetable.Identifier, props iceberg.Properties) error {
	return c.Catalog.CreateNamespace(c.ctx(ctx), ns, props)
}

func (c *awsCatalog) DropNamespace(ctx context.Context, ns icetable.Identifier) error {
	return c.Catalog.DropNamespace(c.ctx(ctx), ns)
}

func (c *awsCatalog) CheckNamespaceExists(ctx context.Context, ns icetable.Identifier) (bool, error) {
	return c.Catalog.CheckNamespaceExists(c.ctx(ctx), ns)
}

func (c *awsCatalog) LoadNamespaceProperties(ctx context.Context, ns icetable.Identifier) (iceberg.Properties, error) {
	return c.Catalog.LoadNamespaceProperties(c.ctx(ctx), ns)
}

func (c *awsCatalog) UpdateNamespaceProperties(ctx context.Context, ns icetable.Identifier, removals []string, updates iceberg.Properties) (icecat.PropertiesUpdateSummary, error) {
	return c.Catalog.UpdateNamespaceProperties(c.ctx(ctx), ns, removals, updates)
}

// awsPlanningCatalog is an awsCatalog whose catalog plans scans.
type awsPlanningCatalog struct {
	*awsCatalog
	planner icetable.ScanPlanner
}

func (c *awsPlanningCatalog) SupportsRemoteScanPlanning() bool {
	return c.planner.SupportsRemoteScanPlanning()
}

func (c *awsPlanningCatalog) PlanFiles(ctx context.Context, req icetable.ScanPlanningRequest) (icetable.ScanPlanningResult, error) {
	return c.planner.PlanFiles(c.ctx(ctx), req)
}
