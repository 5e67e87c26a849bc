package gen

import "github.com/floe-lake/floe/table"

// EventsSpec is the events table the generator writes: one row per tracking
// event, partitioned by day(event_time).
func EventsSpec(name string) table.Spec {
	return table.Spec{
		Name: name,
		Schema: []table.Field{
			{Name: "event_id", Type: "long", Required: true, Doc: "unique: partition<<40 | offset"},
			{Name: "event_time", Type: "timestamptz", Required: true, Doc: "when the event happened; late events lag the generator clock by up to 2 h"},
			{Name: "user_id", Type: "long"},
			{Name: "device_id", Type: "string"},
			{Name: "session_id", Type: "string", Doc: "per user and 30-minute window"},
			{Name: "event_type", Type: "string", Doc: "page_view, click, ad_show, ad_click, add_cart, order, pay"},
			{Name: "page_url", Type: "string"},
			{Name: "ad_id", Type: "long", Doc: "ad events only"},
			{Name: "province", Type: "string"},
			{Name: "city", Type: "string"},
			{Name: "amount", Type: "decimal(18,2)", Doc: "order and pay events only"},
			{Name: "properties", Type: "string", Doc: "a small JSON object"},
		},
		Partition: []table.PartitionField{{Column: "event_time", Transform: "day"}},
	}
}

// OrdersSpec is the orders table: one row per order event, keyed by
// order_id, partitioned by day(created_at).
func OrdersSpec(name string) table.Spec {
	return table.Spec{
		Name: name,
		Schema: []table.Field{
			{Name: "order_id", Type: "long", Required: true, Doc: "the event_id of the order event"},
			{Name: "user_id", Type: "long"},
			{Name: "province", Type: "string"},
			{Name: "city", Type: "string"},
			{Name: "amount", Type: "decimal(18,2)"},
			{Name: "status", Type: "string", Doc: "created, paid, shipped, completed, cancelled"},
			{Name: "created_at", Type: "timestamptz"},
			{Name: "updated_at", Type: "timestamptz"},
		},
		Partition:        []table.PartitionField{{Column: "created_at", Transform: "day"}},
		IdentifierFields: []string{"order_id"},
	}
}
