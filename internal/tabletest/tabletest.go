// Package tabletest has helpers for tests that need a catalog and tables:
// a catalog that injects commit faults, comparable cell values, and the
// canonical rows CDC tests compare a MySQL table and its Iceberg table by.
// It is for tests only.
package tabletest

import (
	"context"
	"errors"
	"sync"
	"testing"

	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/catalog"
	"github.com/floe-lake/floe/internal/testenv"
)

// EachWarehouse runs fn in a subtest per test warehouse (see
// testenv.Warehouses), with a catalog opened on it.
func EachWarehouse(t *testing.T, fn func(t *testing.T, cat icecat.Catalog)) {
	t.Helper()
	for _, wh := range testenv.Warehouses(t) {
		t.Run(wh.Name, func(t *testing.T) { fn(t, Open(t, wh.Config)) })
	}
}

// OpenSQLite opens a SQLite catalog with a local warehouse in a temp dir.
func OpenSQLite(t testing.TB) icecat.Catalog {
	t.Helper()
	dir := t.TempDir()
	return Open(t, catalog.Config{Type: catalog.TypeSQLite, Name: "test", URI: dir + "/catalog.db", Warehouse: dir + "/warehouse"})
}

// Open opens cfg, failing the test on error.
func Open(t testing.TB, cfg catalog.Config) icecat.Catalog {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// FaultCatalog wraps a catalog; Before runs before each CommitTable and
// After after it, and either may replace the outcome. Tables it loads are
// bound to it, so their commits go through the hooks.
type FaultCatalog struct {
	icecat.Catalog
	mu sync.Mutex
	// Before runs before delegating; a non-nil error is returned instead
	// of committing.
	Before func(n int) error
	// After runs after a successful delegate; a non-nil error is returned
	// although the commit landed (an unknown outcome).
	After func(n int) error
	n     int
}

// ErrInjected is what the fault hooks usually return.
var ErrInjected = errors.New("injected: connection reset by peer")

// LoadTable loads through the wrapped catalog and binds the table to f.
func (f *FaultCatalog) LoadTable(ctx context.Context, ident icetable.Identifier) (*icetable.Table, error) {
	tbl, err := f.Catalog.LoadTable(ctx, ident)
	if err != nil {
		return nil, err
	}
	return icetable.New(ident, tbl.Metadata(), tbl.MetadataLocation(), tbl.FS, f), nil
}

// CommitTable commits through the wrapped catalog, with the hooks.
func (f *FaultCatalog) CommitTable(ctx context.Context, ident icetable.Identifier, reqs []icetable.Requirement, ups []icetable.Update) (icetable.Metadata, string, error) {
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	if f.Before != nil {
		if err := f.Before(n); err != nil {
			return nil, "", err
		}
	}
	meta, loc, err := f.Catalog.CommitTable(ctx, ident, reqs, ups)
	if err != nil {
		return meta, loc, err
	}
	if f.After != nil {
		if err := f.After(n); err != nil {
			return nil, "", err
		}
	}
	return meta, loc, nil
}
