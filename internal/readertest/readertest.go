// Package readertest has helpers for tests that read tables through the
// reader. It is for tests only.
package readertest

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/reader"
)

// Each reads the current snapshot of name (of tbl, when it is not nil)
// with cfg and calls fn on every record batch, releasing it afterwards;
// an error fails the test.
func Each(t testing.TB, cat icecat.Catalog, name string, tbl *icetable.Table, cfg reader.Config, fn func(arrow.RecordBatch)) {
	t.Helper()
	r, err := reader.New(cat, name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var st *reader.Stream
	if tbl != nil {
		st, err = r.SnapshotIn(context.Background(), tbl, reader.At{})
	} else {
		st, err = r.Snapshot(context.Background(), reader.At{})
	}
	if err != nil {
		t.Fatal(err)
	}
	for rec, err := range st.Records() {
		if err != nil {
			t.Fatal(err)
		}
		fn(rec)
		rec.Release()
	}
}
