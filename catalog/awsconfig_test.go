package catalog

import (
	"context"
	"iter"
	"testing"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	iceio "github.com/apache/iceberg-go/io"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/utils"
	"github.com/aws/aws-sdk-go-v2/aws"
)

// recorder is a catalog that records whether each call's context carried
// an AWS configuration.
type recorder struct {
	icecat.Catalog // nil: calls not overridden panic
	seen           map[string]*aws.Config
	meta           icetable.Metadata
}

func (r *recorder) note(ctx context.Context, call string) { r.seen[call] = utils.GetAwsConfig(ctx) }

func (r *recorder) LoadTable(ctx context.Context, ident icetable.Identifier) (*icetable.Table, error) {
	r.note(ctx, "LoadTable")
	fs := func(ctx context.Context) (iceio.IO, error) {
		r.note(ctx, "FS")
		return iceio.LocalFS{}, nil
	}
	return icetable.New(ident, r.meta, "file:///m.json", fs, r), nil
}

func (r *recorder) CommitTable(ctx context.Context, _ icetable.Identifier, _ []icetable.Requirement, _ []icetable.Update) (icetable.Metadata, string, error) {
	r.note(ctx, "CommitTable")
	return r.meta, "file:///m.json", nil
}

func (r *recorder) ListTables(ctx context.Context, _ icetable.Identifier) iter.Seq2[icetable.Identifier, error] {
	r.note(ctx, "ListTables")
	return func(func(icetable.Identifier, error) bool) {}
}

// planner is a recorder that plans scans remotely.
type planner struct{ *recorder }

func (planner) SupportsRemoteScanPlanning() bool { return true }
func (p planner) PlanFiles(ctx context.Context, _ icetable.ScanPlanningRequest) (icetable.ScanPlanningResult, error) {
	p.note(ctx, "PlanFiles")
	return icetable.ScanPlanningResult{}, nil
}

func testMetadata(t *testing.T) icetable.Metadata {
	t.Helper()
	sc := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64})
	meta, err := icetable.NewMetadata(sc, iceberg.UnpartitionedSpec, icetable.UnsortedSortOrder, "file:///t", nil)
	if err != nil {
		t.Fatal(err)
	}
	return meta
}

// TestAWSCatalogPassesConfig: every call through the wrapper, the commits
// of tables it returns and the IO those tables make carry the one shared
// configuration; a configuration the caller put in the context wins.
func TestAWSCatalogPassesConfig(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{seen: map[string]*aws.Config{}, meta: testMetadata(t)}
	shared := &aws.Config{Region: "shared"}
	cat := withAWS(rec, shared)

	tbl, err := cat.LoadTable(ctx, icetable.Identifier{"ns", "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.FS(ctx); err != nil {
		t.Fatal(err)
	}
	txn := tbl.NewTransaction()
	if err := txn.SetProperties(iceberg.Properties{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for _, err := range cat.ListTables(ctx, icetable.Identifier{"ns"}) {
		t.Fatal(err)
	}
	for _, call := range []string{"LoadTable", "FS", "CommitTable", "ListTables"} {
		if got, ok := rec.seen[call]; !ok || got != shared {
			t.Errorf("%s: context carried %v, want the shared configuration", call, got)
		}
	}

	own := &aws.Config{Region: "own"}
	if _, err := cat.LoadTable(utils.WithAwsConfig(ctx, own), icetable.Identifier{"ns", "t"}); err != nil {
		t.Fatal(err)
	}
	if rec.seen["LoadTable"] != own {
		t.Errorf("LoadTable: the caller's configuration was replaced")
	}
	if _, ok := cat.(icetable.ScanPlanner); ok {
		t.Errorf("a catalog without remote scan planning gained it")
	}
}

// TestAWSCatalogKeepsScanPlanning: a catalog that plans scans remotely
// (a REST catalog) still does so through the wrapper.
func TestAWSCatalogKeepsScanPlanning(t *testing.T) {
	rec := &recorder{seen: map[string]*aws.Config{}, meta: testMetadata(t)}
	shared := &aws.Config{Region: "shared"}
	cat := withAWS(planner{rec}, shared)
	p, ok := cat.(icetable.ScanPlanner)
	if !ok || !p.SupportsRemoteScanPlanning() {
		t.Fatal("remote scan planning lost")
	}
	if _, err := p.PlanFiles(context.Background(), icetable.ScanPlanningRequest{}); err != nil {
		t.Fatal(err)
	}
	if rec.seen["PlanFiles"] != shared {
		t.Errorf("PlanFiles: context carried %v", rec.seen["PlanFiles"])
	}
}
