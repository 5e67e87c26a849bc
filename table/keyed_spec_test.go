package table_test

import (
	"context"
	"slices"
	"testing"

	"github.com/floe-lake/floe/internal/tabletest"
	"github.com/floe-lake/floe/table"
)

// TestKeyedPartitionedSpec: a spec may have identifier fields and
// partition fields together — partitioned by key columns or by others (the
// keyed writer's index is global, so partition columns need not be in the
// key) — and Ensure creates the table with both.
func TestKeyedPartitionedSpec(t *testing.T) {
	cases := []struct {
		name      string
		partition []table.PartitionField
		want      []string
	}{
		{"by a key column", []table.PartitionField{{Column: "id", Transform: "bucket[8]"}}, []string{"bucket[8](id)"}},
		{"by other columns", []table.PartitionField{{Column: "created", Transform: "day"}, {Column: "region"}},
			[]string{"day(created)", "identity(region)"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := table.Spec{
				Name: "shop.orders" + string(rune('a'+i)),
				Schema: []table.Field{
					{Name: "id", Type: "long", Required: true},
					{Name: "region", Type: "string"},
					{Name: "created", Type: "timestamp", Required: true},
				},
				Partition:        tc.partition,
				IdentifierFields: []string{"id"},
			}
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			cat := tabletest.OpenSQLite(t)
			tbl, err := table.Ensure(context.Background(), cat, s)
			if err != nil {
				t.Fatal(err)
			}
			info := table.Describe(tbl)
			if !slices.Equal(info.IdentifierFields, []string{"id"}) || !slices.Equal(info.Partition, tc.want) {
				t.Errorf("created with identifier fields %v, partition %v; want [id], %v", info.IdentifierFields, info.Partition, tc.want)
			}
		})
	}
}
