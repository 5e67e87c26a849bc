package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/floe-lake/floe/table"
	"github.com/floe-lake/floe/writer"
)

// buildKeyedPartitioned is a table written through Floe's keyed path (MySQL
// CDC, Kafka upserts), partitioned by day(ts) and bucket[4](id): inserts
// over four days, then updates that move rows to other days, updates in
// place and deletes, in separate commits: data files and position-delete
// files per partition.
func buildKeyedPartitioned(ctx context.Context, b *builder, name string) (string, error) {
	spec := table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "ts", Type: "timestamptz", Required: true},
		{Name: "status", Type: "string"},
	}, Partition: []table.PartitionField{{Column: "ts", Transform: "day"}, {Column: "id", Transform: "bucket[4]"}},
		IdentifierFields: []string{"id"}}
	kt, err := b.w.OpenKeyed(ctx, spec, "mkstates", writer.KeyedOptions{})
	if err != nil {
		return "", err
	}
	defer kt.Abort()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	row := func(id, day int, status string) string {
		ts := base.Add(time.Duration(day)*24*time.Hour + time.Duration(id)*time.Minute + 321*time.Microsecond)
		return fmt.Sprintf(`{"id":%d,"ts":%q,"status":%s}`, id, ts.Format("2006-01-02T15:04:05.000000Z"), status)
	}
	var pos int64
	apply := func(rows []string, ops []writer.Op) error {
		rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, kt.Schema(), strings.NewReader("["+strings.Join(rows, ",")+"]"))
		if err != nil {
			return err
		}
		pos++
		if err := kt.Apply(writer.Changes{Record: rec, Ops: ops, Next: table.Positions{"p0": pos}}); err != nil {
			return err
		}
		return kt.Commit(ctx)
	}
	var rows []string
	var ops []writer.Op
	for id := range 80 {
		rows, ops = append(rows, row(id, id%4, nullOr(id, 13, q("new")))), append(ops, writer.OpUpsert)
	}
	if err := apply(rows, ops); err != nil {
		return "", err
	}
	rows, ops = nil, nil
	for id := 0; id < 80; id += 3 { // to the next day
		rows, ops = append(rows, row(id, id%4+1, q("moved"))), append(ops, writer.OpUpsert)
	}
	for id := 1; id < 80; id += 5 { // in place
		rows, ops = append(rows, row(id, id%4, q("paid"))), append(ops, writer.OpUpsert)
	}
	if err := apply(rows, ops); err != nil {
		return "", err
	}
	rows, ops = nil, nil
	for id := 2; id < 80; id += 7 {
		rows, ops = append(rows, row(id, 0, "null")), append(ops, writer.OpDelete)
	}
	if err := apply(rows, ops); err != nil {
		return "", err
	}
	if err := kt.Close(ctx); err != nil {
		return "", err
	}
	tbl, err := load(ctx, b.cat, name)
	if err != nil {
		return "", err
	}
	sum := tbl.CurrentSnapshot().Summary.Properties
	return fmt.Sprintf("keyed writer, day(ts)+bucket[4](id): 3 commits (inserts; moves across days and updates in place; deletes): %s data files, %s position-delete files",
		sum["total-data-files"], sum["total-delete-files"]), nil
}
