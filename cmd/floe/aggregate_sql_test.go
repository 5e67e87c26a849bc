package main

import (
	"path/filepath"
	"testing"
)

// TestAggregateSQL: floe aggregate takes a SQL SELECT in a .sql -spec
// file or inline with -sql, the output table given with -output.
func TestAggregateSQL(t *testing.T) {
	cfgPath, _ := aggregateTestConfig(t)
	dir := filepath.Join("..", "..", "examples", "aggregate")
	orders := filepath.Join(dir, "orders_city_15m.sql")
	adShow := filepath.Join(dir, "ad_show_local.sql")
	inline := "SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start, lower(event_type) AS kind, count(*) AS n " +
		"FROM ods.events WHERE properties->>'$.os' = 'ios' OR user_id % 2 = 0 GROUP BY 1, 2"
	tests := []cmdCase{
		{name: "sql file once", args: []string{"aggregate", "-config", cfgPath, "-spec", orders, "-output", "ads.orders_city_15m", "-once"},
			wantOut: []string{"orders_city_15m (once): ods.orders → ads.orders_city_15m at source snapshot"}},
		{name: "sql file backfill", args: []string{"aggregate", "-config", cfgPath, "-spec", adShow, "-output", "ads.ad_show_local", "-backfill"},
			wantOut: []string{"ad_show_local (backfill): ods.events → ads.ad_show_local", "in 1 commits"}},
		{name: "inline", args: []string{"aggregate", "-config", cfgPath, "-sql", inline, "-output", "dws.kinds_1h", "-once"},
			wantOut: []string{"kinds_1h (once): ods.events → dws.kinds_1h"}},
		{name: "sql file without output", args: []string{"aggregate", "-config", cfgPath, "-spec", orders, "-once"}, wantCode: 2,
			wantErr: []string{"a SQL spec needs the output table (-output namespace.table)"}},
		{name: "inline without output", args: []string{"aggregate", "-config", cfgPath, "-sql", inline, "-once"}, wantCode: 2,
			wantErr: []string{"-sql: the output table is not in the SELECT"}},
		{name: "spec and sql", args: []string{"aggregate", "-config", cfgPath, "-sql", inline, "-spec", orders, "-once"}, wantCode: 2,
			wantErr: []string{"-spec and -sql: give one"}},
		{name: "unsupported", args: []string{"aggregate", "-config", cfgPath, "-sql", inline + " ORDER BY n", "-output", "dws.x", "-once"}, wantCode: 2,
			wantErr: []string{"ORDER BY is not supported in a spec: line 1, column 192"}},
		{name: "type error", args: []string{"aggregate", "-config", cfgPath, "-sql", "SELECT time_bucket(INTERVAL '1 hour', event_time) AS window_start, count(*) AS n FROM ods.events WHERE city + 1 > 2 GROUP BY 1",
			"-output", "dws.x", "-once"}, wantCode: 1, wantErr: []string{"WHERE: sql type: cannot compute VARCHAR + BIGINT: line 1, column 109"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}
