package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/floe-lake/floe/table"
)

// tableTestConfig creates a SQLite catalog in a temporary directory with
// the table ns.t in it and returns the path of a config file naming it.
func tableTestConfig(t *testing.T) string {
	t.Helper()
	cfgPath, _, cat := sqliteConfig(t, "")
	if c, ok := cat.(icecat.Closer); ok {
		defer func() { _ = c.Close() }()
	}
	spec := table.Spec{
		Name: "ns.t",
		Schema: []table.Field{
			{Name: "event_id", Type: "long", Required: true, Doc: "unique id"},
			{Name: "event_time", Type: "timestamptz", Required: true},
			{Name: "device", Type: "struct", Fields: []table.Field{{Name: "os", Type: "string"}}},
			{Name: "tags", Type: "list", Element: &table.Field{Type: "string"}},
		},
		Partition:        []table.PartitionField{{Column: "event_time", Transform: "day"}},
		IdentifierFields: []string{"event_id"},
	}
	if _, err := table.Ensure(context.Background(), cat, spec); err != nil {
		t.Fatal(err)
	}
	return cfgPath
}

func TestTableCommand(t *testing.T) {
	cfgPath := tableTestConfig(t)
	tests := []cmdCase{
		{name: "describe", args: []string{"table", "-config", cfgPath, "describe", "ns.t"},
			wantOut: []string{"ns.t", "event_id", "event_time", "device.os", "tags", "list<string>", "day(event_time)", "unique id", "required"}},
		{name: "describe json", args: []string{"table", "-config", cfgPath, "-json", "describe", "ns.t"},
			wantOut: []string{`"event_id"`, `"device"`}, json: &table.TableInfo{}},
		{name: "list", args: []string{"table", "-config", cfgPath, "list"}, wantOut: []string{"NAMESPACE", "ns", "t"}},
		{name: "list namespace json", args: []string{"table", "-config", cfgPath, "-json", "list", "ns"},
			wantOut: []string{`"ns.t"`}, json: &[]namespaceListing{}},
		{name: "snapshots", args: []string{"table", "-config", cfgPath, "snapshots", "ns.t"}, wantOut: []string{"SNAPSHOT", "TOTAL-RECORDS"}},
		{name: "snapshots json", args: []string{"table", "-config", cfgPath, "-json", "snapshots", "ns.t"}, json: &[]table.SnapshotInfo{}},
		{name: "files", args: []string{"table", "-config", cfgPath, "files", "ns.t"}, wantOut: []string{"no data files"}},
		{name: "files json", args: []string{"table", "-config", cfgPath, "-json", "files", "ns.t"}, json: &[]fileInfo{}},

		{name: "missing table", args: []string{"table", "-config", cfgPath, "describe", "ns.nope"}, wantCode: 1,
			wantErr: []string{"table ns.nope not found"}},
		{name: "missing namespace", args: []string{"table", "-config", cfgPath, "files", "other.nope"}, wantCode: 1,
			wantErr: []string{"table other.nope not found"}},
		{name: "list missing namespace", args: []string{"table", "-config", cfgPath, "list", "nope"}, wantCode: 1,
			wantErr: []string{"namespace nope not found"}},
		{name: "no subcommand", args: []string{"table", "-config", cfgPath}, wantCode: 2, wantErr: []string{"missing subcommand"}},
		{name: "unknown subcommand", args: []string{"table", "-config", cfgPath, "drop", "ns.t"}, wantCode: 2, wantErr: []string{`unknown subcommand "drop"`}},
		{name: "no table", args: []string{"table", "-config", cfgPath, "describe"}, wantCode: 2, wantErr: []string{"usage: floe table describe <namespace.table>"}},
		{name: "bad table name", args: []string{"table", "-config", cfgPath, "describe", "t"}, wantCode: 2, wantErr: []string{`table name "t": want namespace.table`}},
		{name: "flag after subcommand", args: []string{"table", "-config", cfgPath, "describe", "-json", "ns.t"}, wantCode: 2,
			wantErr: []string{"flag -json must come before the subcommand"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}

	t.Run("describe json contents", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := run([]string{"table", "-config", cfgPath, "-json", "describe", "ns.t"}, &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, &errOut)
		}
		var info table.TableInfo
		if err := json.Unmarshal(out.Bytes(), &info); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range info.Schema {
			names = append(names, f.Name)
		}
		if info.Name != "ns.t" || strings.Join(names, ",") != "event_id,event_time,device,tags" ||
			len(info.Partition) != 1 || info.Partition[0] != "day(event_time)" || info.FormatVersion != 2 {
			t.Fatalf("describe: %+v", info)
		}
	})
}
