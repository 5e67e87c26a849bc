package table_test

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
)

// appendOne returns an Apply that writes one small data file per attempt
// and adds it with the commit's props.
func appendOne(t *testing.T, cat icecat.Catalog, ident icetable.Identifier) func(context.Context, *icetable.Transaction, iceberg.Properties) error {
	t.Helper()
	return func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			return err
		}
		sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
		if err != nil {
			return err
		}
		rec := tabletest.Record(sc, []any{int64(1)})
		var files []iceberg.DataFile
		for df, err := range icetable.WriteRecords(ctx, tbl, sc, func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }) {
			if err != nil {
				return err
			}
			files = append(files, df)
		}
		return txn.AddDataFiles(ctx, files, props, icetable.WithoutDuplicateCheck())
	}
}
