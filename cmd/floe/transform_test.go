package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
)

func TestTransformCommand(t *testing.T) {
	cfgPath, _, cat := sqliteConfig(t, "")
	ctx := context.Background()
	for _, s := range []table.Spec{
		{Name: "ods.orders", Schema: []table.Field{{Name: "order_id", Type: "long", Required: true}, {Name: "user_id", Type: "long"}, {Name: "amount", Type: "long"}}},
		{Name: "ods.users", Schema: []table.Field{{Name: "user_id", Type: "long", Required: true}, {Name: "city", Type: "string"}}, IdentifierFields: []string{"user_id"}},
	} {
		if _, err := table.Ensure(ctx, cat, s); err != nil {
			t.Fatal(err)
		}
	}
	usersTbl := tabletest.Load(t, cat, "ods.users")
	users := tabletest.Record(arrowSchemaOf(t, usersTbl), []any{int64(1), "Hangzhou"})
	tabletest.Append(t, usersTbl, users)
	users.Release()
	ordersTbl := tabletest.Load(t, cat, "ods.orders")
	orders := tabletest.Record(arrowSchemaOf(t, ordersTbl), []any{int64(1), int64(1), int64(10)}, []any{int64(2), int64(2), int64(20)})
	tabletest.Append(t, ordersTbl, orders)
	orders.Release()

	dir := t.TempDir()
	sqlPath := filepath.Join(dir, "detail.sql")
	sql := "SELECT o.order_id, o.amount, u.city FROM ods.orders o LEFT JOIN ods.users u ON o.user_id = u.user_id WHERE o.amount > 5"
	if err := os.WriteFile(sqlPath, []byte(sql), 0o644); err != nil {
		t.Fatal(err)
	}
	yamlPath := filepath.Join(dir, "detail.yaml")
	if err := os.WriteFile(yamlPath, []byte("output: dwd.detail\nsql: "+sql+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badPath := filepath.Join(dir, "bad.sql")
	if err := os.WriteFile(badPath, []byte("SELECT order_id FROM ods.orders GROUP BY order_id"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []cmdCase{
		{name: "once from a .sql file", args: []string{"transform", "-config", cfgPath, "-spec", sqlPath, "-output", "dwd.detail", "-once"},
			wantOut: []string{"dwd.detail (once): ods.orders → dwd.detail", "2 source rows, 2 rows written in 1 commits"}},
		{name: "once again: caught up", args: []string{"transform", "-config", cfgPath, "-spec", yamlPath, "-once"},
			wantOut: []string{"0 source rows, 0 rows written in 0 commits"}},
		{name: "backfill into another table", args: []string{"transform", "-config", cfgPath, "-spec", yamlPath, "-backfill", "-output", "dwd.check"},
			wantOut: []string{"dwd.check (backfill)", "2 rows written in 1 commits"}},
		{name: "inline SQL", args: []string{"transform", "-config", cfgPath, "-sql", sql, "-output", "dwd.inline", "-backfill"},
			wantOut: []string{"dwd.inline (backfill)", "2 rows written in 1 commits"}},
		{name: "no spec", args: []string{"transform", "-config", cfgPath, "-once"}, wantCode: 2, wantErr: []string{"want one of -spec FILE and -sql SELECT"}},
		{name: "no mode", args: []string{"transform", "-config", cfgPath, "-spec", yamlPath}, wantCode: 2, wantErr: []string{"want exactly one of -follow, -once and -backfill"}},
		{name: ".sql without output", args: []string{"transform", "-config", cfgPath, "-spec", sqlPath, "-once"}, wantCode: 2, wantErr: []string{"output: required"}},
		{name: "snapshot without backfill", args: []string{"transform", "-config", cfgPath, "-spec", yamlPath, "-once", "-snapshot", "1"}, wantCode: 2,
			wantErr: []string{"-snapshot goes with -backfill"}},
		{name: "GROUP BY refused", args: []string{"transform", "-config", cfgPath, "-spec", badPath, "-output", "dwd.bad", "-once"}, wantCode: 1,
			wantErr: []string{"GROUP BY and HAVING are not supported by floe transform"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}

func arrowSchemaOf(t *testing.T, tbl *icetable.Table) *arrow.Schema {
	t.Helper()
	sc, err := icetable.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}
