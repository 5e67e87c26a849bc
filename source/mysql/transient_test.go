package mysql

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/writer"
)

// flakyCatalog fails loading one table with a refused connection its first
// fails times: object storage or a catalog unreachable for a while.
type flakyCatalog struct {
	icecat.Catalog
	name  string
	mu    sync.Mutex
	fails int
}

func (c *flakyCatalog) LoadTable(ctx context.Context, ident icetable.Identifier) (*icetable.Table, error) {
	if strings.Join(ident, ".") == c.name {
		c.mu.Lock()
		fail := c.fails > 0
		c.fails--
		c.mu.Unlock()
		if fail {
			return nil, fmt.Errorf("load table %s: %w", c.name, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
		}
	}
	return c.Catalog.LoadTable(ctx, ident)
}

// TestTransientOpenFailure: a table whose Iceberg table cannot be opened
// because the store or catalog is unreachable is captured once it can be
// (the run fails and is restarted), not left uncaptured until the process
// restarts. TestSoak found it after a MinIO outage.
func TestTransientOpenFailure(t *testing.T) {
	dsn := mariaDSN(t)
	db, name := testDB(t, dsn)
	mustExec(t, db, `CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20))`)
	mustExec(t, db, `CREATE TABLE b (id INT PRIMARY KEY, v VARCHAR(20))`)
	mustExec(t, db, `INSERT INTO a VALUES (1, 'one')`)
	mustExec(t, db, `INSERT INTO b VALUES (1, 'one'), (2, 'two')`)
	cat := &flakyCatalog{Catalog: tabletest.OpenSQLite(t), name: name + ".b", fails: 2}
	src, err := New(testConfig(dsn, name), Options{})
	if err != nil {
		t.Fatal(err)
	}
	runSupervised(t, cat, src, testWriterConfig(), writer.Hooks{})
	waitEqual(t, db, name, "a", cat, name+".a", 30*time.Second)
	mustExec(t, db, `INSERT INTO b VALUES (3, 'three')`)
	waitEqual(t, db, name, "b", cat, name+".b", 30*time.Second)
}
