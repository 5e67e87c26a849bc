package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/table"
)

// States with row-level changes committed through Floe's commit protocol:
// equality deletes, and merge-on-read position deletes.

// commitCDC commits one row-level change through Floe's commit protocol.
func commitCDC(ctx context.Context, cat icecat.Catalog, name string, apply func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error) error {
	ident, err := table.ParseIdent(name)
	if err != nil {
		return err
	}
	c := table.NewCommitter(cat, ident, table.CommitterConfig{WriterID: "mkstates"})
	_, err = c.Commit(ctx, table.Commit{Operation: "cdc", Apply: apply})
	return err
}

// arrowRecord builds a record of sc from JSON rows.
func arrowRecord(sc *arrow.Schema, rows string) (arrow.RecordBatch, error) {
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, sc, strings.NewReader(rows))
	return rec, err
}

func one(rec arrow.RecordBatch) func(func(arrow.RecordBatch, error) bool) {
	return func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }
}

func cdcRow(i int, status string, ver int) string {
	return fmt.Sprintf(`{"id":%d,"status":%q,"amount":"%d.%02d","version":%d}`, i, status, i*10, i%100, ver)
}

// buildCDCEquality is a CDC table keyed by id: two appends, then an update
// of ids 5 and 7 as one row delta (equality deletes + the new rows), then a
// delete of ids 2 and 9 (equality deletes only).
func buildCDCEquality(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "status", Type: "string"},
		{Name: "amount", Type: "decimal(12,2)"},
		{Name: "version", Type: "int"},
	}, IdentifierFields: []string{"id"}})
	if err != nil {
		return "", err
	}
	for c := 0; c < 2; c++ {
		if err := b.appendJSON(ctx, name, jsonRows(c*10, c*10+10, func(i int) string { return cdcRow(i, "created", 1) })); err != nil {
			return "", err
		}
	}
	eqDelete := func(ids string, upserts string) error {
		return commitCDC(ctx, b.cat, name, func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
			staged, err := txn.StagedTable()
			if err != nil {
				return err
			}
			sc := staged.Schema()
			idField, ok := sc.FindFieldByName("id")
			if !ok {
				return errors.New("no id column")
			}
			keySc, err := icetable.SchemaToArrowSchema(iceberg.NewSchema(0, idField), nil, true, false)
			if err != nil {
				return err
			}
			keys, err := arrowRecord(keySc, ids)
			if err != nil {
				return err
			}
			defer keys.Release()
			dels, err := txn.WriteEqualityDeletes(ctx, []int{idField.ID}, one(keys))
			if err != nil {
				return fmt.Errorf("write equality deletes: %w", err)
			}
			rd := txn.NewRowDelta(props).AddDeletes(dels...)
			if upserts != "" {
				fullSc, err := icetable.SchemaToArrowSchema(sc, nil, true, false)
				if err != nil {
					return err
				}
				rec, err := arrowRecord(fullSc, upserts)
				if err != nil {
					return err
				}
				for df, err := range icetable.WriteRecords(ctx, staged.Table, fullSc, one(rec)) {
					if err != nil {
						return fmt.Errorf("write upserted rows: %w", err)
					}
					rd.AddRows(df)
				}
			}
			return rd.Commit(ctx)
		})
	}
	if err := eqDelete(`[{"id":5},{"id":7}]`, "["+cdcRow(5, "paid", 2)+","+cdcRow(7, "shipped", 2)+"]"); err != nil {
		return "", err
	}
	if err := eqDelete(`[{"id":2},{"id":9}]`, ""); err != nil {
		return "", err
	}
	return "2 appends, a row delta (equality deletes of ids 5, 7 + their new rows), equality deletes of ids 2, 9", nil
}

// buildCDCPosition is a merge-on-read table: three appends, then two
// deletes by predicate, which iceberg-go writes as position delete files.
func buildCDCPosition(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "status", Type: "string"},
		{Name: "amount", Type: "decimal(12,2)"},
		{Name: "version", Type: "int"},
	}, IdentifierFields: []string{"id"}, Properties: map[string]string{
		icetable.WriteDeleteModeKey: icetable.WriteModeMergeOnRead,
	}})
	if err != nil {
		return "", err
	}
	for c := 0; c < 3; c++ {
		if err := b.appendJSON(ctx, name, jsonRows(c*10, c*10+10, func(i int) string { return cdcRow(i, "created", 1) })); err != nil {
			return "", err
		}
	}
	del := func(filter iceberg.BooleanExpression) error {
		return commitCDC(ctx, b.cat, name, func(ctx context.Context, txn *icetable.Transaction, props iceberg.Properties) error {
			return txn.Delete(ctx, filter, props)
		})
	}
	if err := del(iceberg.IsIn(iceberg.Reference("id"), int64(3), int64(14), int64(25))); err != nil {
		return "", err
	}
	if err := del(iceberg.NewAnd(iceberg.GreaterThanEqual(iceberg.Reference("id"), int64(20)), iceberg.LessThan(iceberg.Reference("id"), int64(23)))); err != nil {
		return "", err
	}
	tbl, err := load(ctx, b.cat, name)
	if err != nil {
		return "", err
	}
	sum := tbl.CurrentSnapshot().Summary.Properties
	if sum["total-position-deletes"] == "" || sum["total-position-deletes"] == "0" {
		return "", fmt.Errorf("merge-on-read deletes wrote no position deletes (summary %v)", sum)
	}
	return fmt.Sprintf("3 appends, 2 merge-on-read deletes: %s position delete files, %s position deletes, %s data files",
		sum["total-delete-files"], sum["total-position-deletes"], sum["total-data-files"]), nil
}
