package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/floe-lake/floe/table"
)

// States for schema evolution and for the canonical form of each type.

// buildEvolved changes the schema between appends: Ensure adds columns
// (and promotes int to long), iceberg-go's UpdateSchema renames one and
// drops another.
func buildEvolved(ctx context.Context, b *builder, name string) (string, error) {
	spec := table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "label", Type: "string"},
		{Name: "legacy", Type: "string"},
		{Name: "qty", Type: "int"},
		{Name: "price", Type: "decimal(9,2)"},
	}}
	if _, err := b.ensure(ctx, spec); err != nil {
		return "", err
	}
	if err := b.appendJSON(ctx, name, jsonRows(0, 10, func(i int) string {
		return fmt.Sprintf(`{"id":%d,"label":"l%d","legacy":"old%d","qty":%d,"price":"%d.50"}`, i, i, i, i*2, i)
	})); err != nil {
		return "", err
	}
	// 1. Ensure: add a column and a struct column, qty int → long, price (9,2) → (12,2).
	spec.Schema[3].Type = "long"
	spec.Schema[4].Type = "decimal(12,2)"
	spec.Schema = append(spec.Schema,
		table.Field{Name: "added", Type: "double"},
		table.Field{Name: "info", Type: "struct", Fields: []table.Field{{Name: "a", Type: "int"}, {Name: "b", Type: "string"}}})
	if _, err := b.ensure(ctx, spec); err != nil {
		return "", err
	}
	if err := b.reopen(ctx); err != nil {
		return "", err
	}
	if err := b.appendJSON(ctx, name, jsonRows(10, 20, func(i int) string {
		return fmt.Sprintf(`{"id":%d,"label":"l%d","legacy":"old%d","qty":%d,"price":"%d.25","added":%d.5,"info":{"a":%d,"b":"x%d"}}`,
			i, i, i, int64(i)<<33, i*1000, i, i, i)
	})); err != nil {
		return "", err
	}
	// 2. Rename label → title and a struct field info.b → info.bee; drop legacy.
	evolve := func(f func(us *icetable.UpdateSchema)) error {
		return commitCDC(ctx, b.cat, name, func(ctx context.Context, txn *icetable.Transaction, _ iceberg.Properties) error {
			us := txn.UpdateSchema(true, false)
			f(us)
			return us.Commit()
		})
	}
	if err := evolve(func(us *icetable.UpdateSchema) {
		us.RenameColumn([]string{"label"}, "title")
		us.RenameColumn([]string{"info", "b"}, "bee")
	}); err != nil {
		return "", fmt.Errorf("rename: %w", err)
	}
	if err := b.reopen(ctx); err != nil {
		return "", err
	}
	if err := b.appendJSON(ctx, name, jsonRows(20, 30, func(i int) string {
		return fmt.Sprintf(`{"id":%d,"title":"t%d","legacy":"old%d","qty":%d,"price":"%d.75","added":null,"info":{"a":%d,"bee":"y%d"}}`, i, i, i, i, i, i, i)
	})); err != nil {
		return "", err
	}
	if err := evolve(func(us *icetable.UpdateSchema) { us.DeleteColumn([]string{"legacy"}) }); err != nil {
		return "", fmt.Errorf("drop: %w", err)
	}
	if err := b.reopen(ctx); err != nil {
		return "", err
	}
	if err := b.appendJSON(ctx, name, jsonRows(30, 40, func(i int) string {
		return fmt.Sprintf(`{"id":%d,"title":"t%d","qty":%d,"price":null,"added":%d.125,"info":null}`, i, i, -i, i)
	})); err != nil {
		return "", err
	}
	tbl, err := load(ctx, b.cat, name)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("4 appends across schemas 0→%d: added added/info, qty int→long, price decimal(9,2)→(12,2), renamed label→title and info.b→info.bee, dropped legacy",
		tbl.Schema().ID), nil
}

func buildNested(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "point", Type: "struct", Fields: []table.Field{
			{Name: "x", Type: "double", Required: true}, {Name: "y", Type: "double"},
			{Name: "meta", Type: "struct", Fields: []table.Field{{Name: "tag", Type: "string"}, {Name: "n", Type: "int"}}},
		}},
		{Name: "tags", Type: "list", Element: &table.Field{Type: "string"}},
		{Name: "items", Type: "list", Element: &table.Field{Type: "struct", Fields: []table.Field{
			{Name: "sku", Type: "string", Required: true}, {Name: "qty", Type: "int"}, {Name: "price", Type: "decimal(10,2)"},
		}}},
		{Name: "attrs", Type: "map", Key: &table.Field{Type: "string"}, Value: &table.Field{Type: "string"}},
		{Name: "counts", Type: "map", Key: &table.Field{Type: "string"}, Value: &table.Field{Type: "long", Required: true}},
		{Name: "matrix", Type: "list", Element: &table.Field{Type: "list", Element: &table.Field{Type: "int"}}},
		{Name: "by_day", Type: "map", Key: &table.Field{Type: "date"}, Value: &table.Field{Type: "list", Element: &table.Field{Type: "string"}}},
	}})
	if err != nil {
		return "", err
	}
	rows := jsonRows(0, 30, func(i int) string {
		point := "null"
		if i%6 != 0 {
			meta := "null"
			if i%4 != 0 {
				meta = fmt.Sprintf(`{"tag":%s,"n":%s}`, nullOr(i, 5, q(fmt.Sprintf("m%d", i))), nullOr(i, 3, strconv.Itoa(i)))
			}
			point = fmt.Sprintf(`{"x":%d.5,"y":%s,"meta":%s}`, i, nullOr(i, 7, fmt.Sprintf("-%d.25", i)), meta)
		}
		tags := []string{"null", "[]", fmt.Sprintf(`["a%d"]`, i), fmt.Sprintf(`["a%d",null,"c"]`, i)}[i%4]
		items := []string{"[]", "null",
			fmt.Sprintf(`[{"sku":"s%d","qty":%d,"price":"%d.99"}]`, i, i, i),
			fmt.Sprintf(`[{"sku":"s%d","qty":null,"price":null},{"sku":"t%d","qty":2,"price":"-0.01"}]`, i, i)}[i%4]
		attrs := []string{"null", "[]", fmt.Sprintf(`[{"key":"k%d","value":"v%d"},{"key":"z","value":null}]`, i, i)}[i%3]
		counts := []string{fmt.Sprintf(`[{"key":"c","value":%d},{"key":"a","value":%d}]`, i, -i), "null", "[]"}[i%3]
		matrix := []string{"null", "[[1,2],[],null,[3,null]]", fmt.Sprintf("[[%d]]", i)}[i%3]
		byDay := []string{"null", fmt.Sprintf(`[{"key":"2026-03-%02d","value":["e%d"]},{"key":"1999-12-31","value":null}]`, i%28+1, i)}[i%2]
		return fmt.Sprintf(`{"id":%d,"point":%s,"tags":%s,"items":%s,"attrs":%s,"counts":%s,"matrix":%s,"by_day":%s}`,
			i, point, tags, items, attrs, counts, matrix, byDay)
	})
	if err := b.appendJSON(ctx, name, rows); err != nil {
		return "", err
	}
	return "1 append: struct in struct, list<string>, list<struct>, map<string,string>, map<string,long>, list<list<int>>, map<date,list<string>>, nulls at every level", nil
}

func buildDecimals(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "d9", Type: "decimal(9,2)"},
		{Name: "d18", Type: "decimal(18,6)"},
		{Name: "d38", Type: "decimal(38,10)"},
		{Name: "d0", Type: "decimal(5,0)"},
	}})
	if err != nil {
		return "", err
	}
	vals := [][4]string{
		{"0.00", "0.000000", "0.0000000000", "0"},
		{"1.50", "-1.500000", "1.0000000001", "-1"},
		{"-0.01", "0.000001", "-0.0000000001", "99999"},
		{"9999999.99", "999999999999.999999", "9999999999999999999999999999.9999999999", "-99999"},
		{"-9999999.99", "-999999999999.999999", "-9999999999999999999999999999.9999999999", "12345"},
		{"123.45", "42.424242", "3.1415926535", "7"},
	}
	rows := jsonRows(0, 24, func(i int) string {
		v := vals[i%len(vals)]
		return fmt.Sprintf(`{"id":%d,"d9":%s,"d18":%s,"d38":%s,"d0":%s}`, i,
			nullOr(i, 7, q(v[0])), nullOr(i+1, 7, q(v[1])), nullOr(i+2, 7, q(v[2])), nullOr(i+3, 7, q(v[3])))
	})
	if err := b.appendJSON(ctx, name, rows); err != nil {
		return "", err
	}
	return "1 append: decimal(9,2), (18,6), (38,10), (5,0) at their extremes, negative, zero, null", nil
}

var timestampVals = []string{
	"2026-01-01T00:00:00.000000", "1970-01-01T00:00:00.000000", "1969-12-31T23:59:59.999999",
	"1900-03-01T12:34:56.789012", "2262-04-11T23:47:16.854775", "2024-02-29T13:14:15.000001",
	"0001-01-01T00:00:00.000000", "9999-12-31T23:59:59.999999",
}

func buildTimestamps(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "ts", Type: "timestamp"},
		{Name: "tstz", Type: "timestamptz"},
		{Name: "d", Type: "date"},
	}})
	if err != nil {
		return "", err
	}
	rows := jsonRows(0, 24, func(i int) string {
		v := timestampVals[i%len(timestampVals)]
		w := timestampVals[(i+3)%len(timestampVals)]
		return fmt.Sprintf(`{"id":%d,"ts":%s,"tstz":%s,"d":%s}`, i,
			nullOr(i, 9, q(v)), nullOr(i+1, 9, q(w+"Z")), nullOr(i+2, 9, q(v[:10])))
	})
	if err := b.appendJSON(ctx, name, rows); err != nil {
		return "", err
	}
	return "1 append: timestamp (no zone), timestamptz, date; microseconds, before 1970, years 0001 and 9999, null", nil
}

func buildTimeOfDay(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "t", Type: "time"},
	}})
	if err != nil {
		return "", err
	}
	tv := []string{"00:00:00.000000", "12:34:56.789012", "23:59:59.999999", "07:08:09.000001"}
	rows := jsonRows(0, 12, func(i int) string { return fmt.Sprintf(`{"id":%d,"t":%s}`, i, nullOr(i, 5, q(tv[i%len(tv)]))) })
	if err := b.appendJSON(ctx, name, rows); err != nil {
		return "", err
	}
	return "1 append: time (microseconds), null", nil
}

func buildUUIDs(ctx context.Context, b *builder, name string) (string, error) {
	_, err := b.ensure(ctx, table.Spec{Name: name, Schema: []table.Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "u", Type: "uuid"},
		{Name: "bin", Type: "binary"},
		{Name: "fx", Type: "fixed[4]"},
	}})
	if err != nil {
		return "", err
	}
	rows := jsonRows(0, 20, func(i int) string {
		u := uuid.NewSHA1(uuid.NameSpaceOID, []byte(strconv.Itoa(i)))
		if i == 1 {
			u = uuid.UUID{}
		}
		bin := []byte(fmt.Sprintf("bytes-%d\x00\xff", i))
		fx := []byte{byte(i), 0, 0xff, byte(255 - i)}
		// Arrow's JSON form of binary and fixed is base64.
		return fmt.Sprintf(`{"id":%d,"u":%s,"bin":%s,"fx":%s}`, i, nullOr(i, 6, q(u.String())),
			nullOr(i+2, 6, q(b64(bin))), nullOr(i+4, 6, q(b64(fx))))
	})
	if err := b.appendJSON(ctx, name, rows); err != nil {
		return "", err
	}
	return "1 append: uuid, binary, fixed[4], null", nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
