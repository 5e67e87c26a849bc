package table

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	icetable "github.com/apache/iceberg-go/table"
)

func TestParseIdent(t *testing.T) {
	tests := []struct {
		name    string
		want    []string
		wantErr string
	}{
		{name: "ods.events", want: []string{"ods", "events"}},
		{name: "lake.ods.events", want: []string{"lake", "ods", "events"}},
		{name: "events", wantErr: `table name "events": want namespace.table`},
		{name: ".events", wantErr: `table name ".events": empty`},
		{name: "ods.", wantErr: `table name "ods.": empty`},
		{name: "a..b", wantErr: `table name "a..b": empty`},
		{name: "ods.ev/ents", wantErr: `part "ev/ents"`},
		{name: "ods. events", wantErr: `part " events"`},
		{name: "", wantErr: `table name "": want namespace.table`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIdent(tt.name)
			checkErr(t, err, tt.wantErr)
			if tt.wantErr == "" && !slices.Equal(got, tt.want) {
				t.Fatalf("ParseIdent(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

// checkErr fails unless err contains want, or is nil when want is empty.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func TestIcebergSchemaPrimitives(t *testing.T) {
	tests := []struct {
		typ  string
		want iceberg.Type
	}{
		{"boolean", iceberg.PrimitiveTypes.Bool},
		{"int", iceberg.PrimitiveTypes.Int32},
		{"long", iceberg.PrimitiveTypes.Int64},
		{"float", iceberg.PrimitiveTypes.Float32},
		{"double", iceberg.PrimitiveTypes.Float64},
		{"date", iceberg.PrimitiveTypes.Date},
		{"time", iceberg.PrimitiveTypes.Time},
		{"timestamp", iceberg.PrimitiveTypes.Timestamp},
		{"timestamptz", iceberg.PrimitiveTypes.TimestampTz},
		{"string", iceberg.PrimitiveTypes.String},
		{"uuid", iceberg.PrimitiveTypes.UUID},
		{"binary", iceberg.PrimitiveTypes.Binary},
		{"fixed[16]", iceberg.FixedTypeOf(16)},
		{"fixed[ 3 ]", iceberg.FixedTypeOf(3)},
		{"decimal(18,2)", iceberg.DecimalTypeOf(18, 2)},
		{"decimal( 38 , 0 )", iceberg.DecimalTypeOf(38, 0)},
		{"decimal(1,1)", iceberg.DecimalTypeOf(1, 1)},
		{"Timestamptz", iceberg.PrimitiveTypes.TimestampTz},
		{" long ", iceberg.PrimitiveTypes.Int64},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			s := Spec{Name: "ns.t", Schema: []Field{{Name: "c", Type: tt.typ, Required: true, Doc: "the column"}}}
			sc, err := s.IcebergSchema()
			if err != nil {
				t.Fatal(err)
			}
			f := sc.Field(0)
			if !f.Type.Equals(tt.want) || f.ID != 1 || f.Name != "c" || !f.Required || f.Doc != "the column" {
				t.Fatalf("got %s, want 1: c: required %s (the column)", f, tt.want)
			}
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestIcebergSchemaBadTypes(t *testing.T) {
	tests := []struct {
		name    string
		schema  []Field
		wantErr string
	}{
		{"unknown", []Field{{Name: "a", Type: "strin"}}, `column "a": unknown type "strin"`},
		{"nested unknown", []Field{{Name: "device", Type: "struct", Fields: []Field{{Name: "os", Type: "strin"}}}},
			`column "device.os": unknown type "strin"`},
		{"list element", []Field{{Name: "tags", Type: "list", Element: &Field{Type: "text"}}},
			`column "tags.element": unknown type "text"`},
		{"map value", []Field{{Name: "m", Type: "map", Key: &Field{Type: "string"}, Value: &Field{Type: "nope"}}},
			`column "m.value": unknown type "nope"`},
		{"map key", []Field{{Name: "m", Type: "map", Key: &Field{Type: "nope"}, Value: &Field{Type: "int"}}},
			`column "m.key": unknown type "nope"`},
		{"empty type", []Field{{Name: "a"}}, `column "a": no type`},
		{"no name", []Field{{Name: "a", Type: "int"}, {Type: "int"}}, `schema[1]: column has no name`},
		{"nested no name", []Field{{Name: "s", Type: "struct", Fields: []Field{{Type: "int"}}}}, `column "s": field 0 has no name`},
		{"duplicate", []Field{{Name: "a", Type: "int"}, {Name: "a", Type: "long"}}, `column "a": duplicate name`},
		{"nested duplicate", []Field{{Name: "s", Type: "struct", Fields: []Field{{Name: "x", Type: "int"}, {Name: "x", Type: "int"}}}},
			`column "s.x": duplicate name`},
		{"decimal precision", []Field{{Name: "d", Type: "decimal(39,2)"}}, `column "d": type "decimal(39,2)": decimal precision must be 1 to 38`},
		{"decimal zero precision", []Field{{Name: "d", Type: "decimal(0,0)"}}, `column "d": type "decimal(0,0)": decimal precision must be 1 to 38`},
		{"decimal scale", []Field{{Name: "d", Type: "decimal(4,5)"}}, `column "d": type "decimal(4,5)": decimal scale must be 0 to the precision`},
		{"decimal malformed", []Field{{Name: "d", Type: "decimal(4)"}}, `column "d": unknown type "decimal(4)"`},
		{"fixed zero", []Field{{Name: "f", Type: "fixed[0]"}}, `column "f": type "fixed[0]": fixed length must be a positive integer`},
		{"fixed malformed", []Field{{Name: "f", Type: "fixed"}}, `column "f": unknown type "fixed"`},
		{"timestamp_ns", []Field{{Name: "f", Type: "timestamp_ns"}}, `column "f": unknown type "timestamp_ns"`},
		{"struct without fields", []Field{{Name: "s", Type: "struct"}}, `column "s": struct has no fields`},
		{"list without element", []Field{{Name: "l", Type: "list"}}, `column "l": list has no element`},
		{"map without value", []Field{{Name: "m", Type: "map", Key: &Field{Type: "string"}}}, `column "m": map needs both key and value`},
		{"primitive with fields", []Field{{Name: "a", Type: "int", Fields: []Field{{Name: "x", Type: "int"}}}},
			`column "a": type int does not take fields`},
		{"struct with element", []Field{{Name: "s", Type: "struct", Fields: []Field{{Name: "x", Type: "int"}}, Element: &Field{Type: "int"}}},
			`column "s": type struct does not take element`},
		{"list with key", []Field{{Name: "l", Type: "list", Element: &Field{Type: "int"}, Key: &Field{Type: "int"}}},
			`column "l": type list does not take key`},
		{"no columns", nil, `schema: no columns`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Spec{Name: "ns.t", Schema: tt.schema}
			_, err := s.IcebergSchema()
			checkErr(t, err, tt.wantErr)
			err = s.Validate()
			checkErr(t, err, "table ns.t: "+tt.wantErr)
		})
	}
}

// nestedSpec has every kind of nesting.
func nestedSpec() Spec {
	return Spec{
		Name: "ods.nested",
		Schema: []Field{
			{Name: "id", Type: "long", Required: true},
			{Name: "device", Type: "struct", Fields: []Field{
				{Name: "os", Type: "string"},
				{Name: "screen", Type: "struct", Required: true, Fields: []Field{
					{Name: "w", Type: "int", Required: true},
					{Name: "h", Type: "int", Required: true},
				}},
			}},
			{Name: "tags", Type: "list", Element: &Field{Type: "string", Required: true}},
			{Name: "attrs", Type: "map", Key: &Field{Type: "string"}, Value: &Field{Type: "string"}},
			{Name: "events", Type: "list", Element: &Field{Type: "struct", Fields: []Field{
				{Name: "at", Type: "timestamptz", Required: true},
				{Name: "kind", Type: "string"},
			}}},
			{Name: "scores", Type: "map", Key: &Field{Type: "string"}, Value: &Field{Type: "list", Required: true, Element: &Field{Type: "double"}}},
			{Name: "last", Type: "string"},
		},
	}
}

func TestIcebergSchemaNested(t *testing.T) {
	sc, err := nestedSpec().IcebergSchema()
	if err != nil {
		t.Fatal(err)
	}
	wantIDs := map[string]int{
		"id": 1, "device": 2, "device.os": 3, "device.screen": 4, "device.screen.w": 5, "device.screen.h": 6,
		"tags": 7, "tags.element": 8,
		"attrs": 9, "attrs.key": 10, "attrs.value": 11,
		"events": 12, "events.element": 13, "events.element.at": 14, "events.element.kind": 15,
		"scores": 16, "scores.key": 17, "scores.value": 18, "scores.value.element": 19,
		"last": 20,
	}
	for name, id := range wantIDs {
		t.Run(name, func(t *testing.T) {
			f, ok := sc.FindFieldByName(name)
			if !ok {
				t.Fatalf("%s not found in %s", name, sc)
			}
			if f.ID != id {
				t.Fatalf("%s has id %d, want %d", name, f.ID, id)
			}
		})
	}
	t.Run("same ids as iceberg", func(t *testing.T) {
		fresh, err := iceberg.AssignFreshSchemaIDs(sc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fresh.AsStruct(), sc.AsStruct(); !got.Equals(&want) {
			t.Fatalf("iceberg assigns\n%s\nwe assign\n%s", fresh, sc)
		}
	})
	t.Run("types", func(t *testing.T) {
		want := map[string]string{
			"device":        "struct<3: os: optional string, 4: screen: required struct<5: w: required int, 6: h: required int>>",
			"tags":          "list<string>",
			"attrs":         "map<string, string>",
			"scores":        "map<string, list<double>>",
			"events":        "list<struct<14: at: required timestamptz, 15: kind: optional string>>",
			"device.screen": "struct<5: w: required int, 6: h: required int>",
		}
		for name, typ := range want {
			f, _ := sc.FindFieldByName(name)
			if got := f.Type.String(); got != typ {
				t.Errorf("%s: type %s, want %s", name, got, typ)
			}
		}
		tags, _ := sc.FindFieldByName("tags")
		if !tags.Type.(*iceberg.ListType).ElementRequired {
			t.Error("tags: element should be required")
		}
		scores, _ := sc.FindFieldByName("scores")
		if !scores.Type.(*iceberg.MapType).ValueRequired {
			t.Error("scores: value should be required")
		}
		attrs, _ := sc.FindFieldByName("attrs")
		if attrs.Type.(*iceberg.MapType).ValueRequired {
			t.Error("attrs: value should be optional")
		}
	})
}

func TestIdentifierFields(t *testing.T) {
	schema := []Field{
		{Name: "id", Type: "long", Required: true},
		{Name: "region", Type: "string", Required: true},
		{Name: "opt", Type: "long"},
		{Name: "score", Type: "double", Required: true},
		{Name: "s", Type: "struct", Required: true, Fields: []Field{{Name: "x", Type: "int", Required: true}}},
	}
	tests := []struct {
		name    string
		ids     []string
		want    []int
		wantErr string
	}{
		{name: "none", want: []int{}},
		{name: "one", ids: []string{"id"}, want: []int{1}},
		{name: "two", ids: []string{"region", "id"}, want: []int{2, 1}},
		{name: "missing", ids: []string{"nope"}, wantErr: `identifier-fields: "nope" is not a top-level column`},
		{name: "nested", ids: []string{"s.x"}, wantErr: `identifier-fields: "s.x" is not a top-level column`},
		{name: "optional", ids: []string{"opt"}, wantErr: `identifier-fields: column "opt" must be required`},
		{name: "double", ids: []string{"score"}, wantErr: `identifier-fields: column "score": a double column cannot identify rows`},
		{name: "struct", ids: []string{"s"}, wantErr: `identifier-fields: column "s" must be a primitive type, not struct`},
		{name: "twice", ids: []string{"id", "id"}, wantErr: `identifier-fields: "id" listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := Spec{Name: "ns.t", Schema: schema, IdentifierFields: tt.ids}.IcebergSchema()
			checkErr(t, err, tt.wantErr)
			if err == nil && !slices.Equal(sc.IdentifierFieldIDs, tt.want) {
				t.Fatalf("identifier ids %v, want %v", sc.IdentifierFieldIDs, tt.want)
			}
		})
	}
}

// transformSchema has a column of each kind transforms care about.
var transformSchema = []Field{
	{Name: "id", Type: "long", Required: true},
	{Name: "n", Type: "int"},
	{Name: "name", Type: "string"},
	{Name: "ts", Type: "timestamp"},
	{Name: "tstz", Type: "timestamptz"},
	{Name: "d", Type: "date"},
	{Name: "amount", Type: "decimal(10,2)"},
	{Name: "b", Type: "binary"},
	{Name: "flag", Type: "boolean"},
	{Name: "device", Type: "struct", Fields: []Field{{Name: "os", Type: "string"}}},
	{Name: "tags", Type: "list", Element: &Field{Type: "string"}},
	{Name: "items", Type: "list", Element: &Field{Type: "struct", Fields: []Field{{Name: "sku", Type: "string"}}}},
}

func TestIcebergPartitionSpec(t *testing.T) {
	tests := []struct {
		name      string
		partition []PartitionField
		// wantFields are "name: transform(source id)".
		wantFields []string
		wantErr    string
	}{
		{name: "unpartitioned"},
		{name: "identity default", partition: []PartitionField{{Column: "name"}}, wantFields: []string{"name: identity(3)"}},
		{name: "identity", partition: []PartitionField{{Column: "id", Transform: "identity"}}, wantFields: []string{"id: identity(1)"}},
		{name: "year", partition: []PartitionField{{Column: "ts", Transform: "year"}}, wantFields: []string{"ts_year: year(4)"}},
		{name: "month", partition: []PartitionField{{Column: "tstz", Transform: "month"}}, wantFields: []string{"tstz_month: month(5)"}},
		{name: "day", partition: []PartitionField{{Column: "tstz", Transform: "day"}}, wantFields: []string{"tstz_day: day(5)"}},
		{name: "day of date", partition: []PartitionField{{Column: "d", Transform: "day"}}, wantFields: []string{"d_day: day(6)"}},
		{name: "hour", partition: []PartitionField{{Column: "ts", Transform: "hour"}}, wantFields: []string{"ts_hour: hour(4)"}},
		{name: "bucket", partition: []PartitionField{{Column: "id", Transform: "bucket[16]"}}, wantFields: []string{"id_bucket_16: bucket[16](1)"}},
		{name: "bucket spaces", partition: []PartitionField{{Column: "name", Transform: "bucket[ 8 ]"}}, wantFields: []string{"name_bucket_8: bucket[8](3)"}},
		{name: "truncate", partition: []PartitionField{{Column: "name", Transform: "truncate[4]"}}, wantFields: []string{"name_trunc_4: truncate[4](3)"}},
		{name: "truncate decimal", partition: []PartitionField{{Column: "amount", Transform: "truncate[100]"}}, wantFields: []string{"amount_trunc_100: truncate[100](7)"}},
		{name: "void", partition: []PartitionField{{Column: "n", Transform: "void"}}, wantFields: []string{"n_null: void(2)"}},
		{name: "upper case", partition: []PartitionField{{Column: "tstz", Transform: "DAY"}}, wantFields: []string{"tstz_day: day(5)"}},
		{name: "named", partition: []PartitionField{{Column: "tstz", Transform: "day", Name: "dt"}}, wantFields: []string{"dt: day(5)"}},
		{name: "nested struct column", partition: []PartitionField{{Column: "device.os"}}, wantFields: []string{"device.os: identity(11)"}},
		{name: "several", partition: []PartitionField{{Column: "tstz", Transform: "day"}, {Column: "id", Transform: "bucket[4]"}},
			wantFields: []string{"tstz_day: day(5)", "id_bucket_4: bucket[4](1)"}},

		{name: "unknown transform", partition: []PartitionField{{Column: "ts", Transform: "weekly"}},
			wantErr: `partition[0] on "ts": unknown transform "weekly": want identity, year, month, day, hour, bucket[N], truncate[W] or void`},
		{name: "bucket without width", partition: []PartitionField{{Column: "id", Transform: "bucket"}}, wantErr: `unknown transform "bucket"`},
		{name: "bucket zero", partition: []PartitionField{{Column: "id", Transform: "bucket[0]"}}, wantErr: `partition[0] on "id": transform "bucket[0]"`},
		{name: "bucket negative", partition: []PartitionField{{Column: "id", Transform: "bucket[-1]"}}, wantErr: `unknown transform "bucket[-1]"`},
		{name: "truncate not a number", partition: []PartitionField{{Column: "name", Transform: "truncate[x]"}}, wantErr: `unknown transform "truncate[x]"`},
		{name: "day of string", partition: []PartitionField{{Column: "name", Transform: "day"}},
			wantErr: `partition[0]: transform day does not apply to column "name" of type string`},
		{name: "hour of date", partition: []PartitionField{{Column: "d", Transform: "hour"}},
			wantErr: `partition[0]: transform hour does not apply to column "d" of type date`},
		{name: "truncate of timestamp", partition: []PartitionField{{Column: "ts", Transform: "truncate[4]"}},
			wantErr: `transform truncate[4] does not apply to column "ts" of type timestamp`},
		{name: "bucket of boolean", partition: []PartitionField{{Column: "flag", Transform: "bucket[2]"}},
			wantErr: `transform bucket[2] does not apply to column "flag" of type boolean`},
		{name: "missing column", partition: []PartitionField{{Column: "nope"}}, wantErr: `partition[0]: column "nope" not found`},
		{name: "no column", partition: []PartitionField{{Transform: "day"}}, wantErr: `partition[0]: no column`},
		{name: "struct column", partition: []PartitionField{{Column: "device"}}, wantErr: `partition[0]: column "device" is a struct, not a primitive column`},
		{name: "list element", partition: []PartitionField{{Column: "tags.element"}}, wantErr: `partition[0]: column "tags.element" is inside a list or map`},
		{name: "struct in list", partition: []PartitionField{{Column: "items.element.sku"}}, wantErr: `column "items.element.sku" is inside a list or map`},
		{name: "duplicate name", partition: []PartitionField{{Column: "id", Name: "p"}, {Column: "name", Name: "p"}}, wantErr: `partition: `},
		{name: "two time transforms", partition: []PartitionField{{Column: "ts", Transform: "day"}, {Column: "ts", Transform: "hour"}}, wantErr: `redundant partition field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Spec{Name: "ns.t", Schema: transformSchema, Partition: tt.partition}
			sc, err := s.IcebergSchema()
			if err != nil {
				t.Fatal(err)
			}
			spec, err := s.IcebergPartitionSpec(sc)
			checkErr(t, err, tt.wantErr)
			checkErr(t, s.Validate(), tt.wantErr)
			if err != nil {
				return
			}
			var got []string
			for i, f := range spec.Fields() {
				if f.FieldID != iceberg.PartitionDataIDStart+i {
					t.Errorf("field %d has id %d", i, f.FieldID)
				}
				got = append(got, f.Name+": "+f.Transform.String()+"("+strconv.Itoa(f.SourceID())+")")
			}
			if !slices.Equal(got, tt.wantFields) {
				t.Fatalf("fields %q, want %q", got, tt.wantFields)
			}
		})
	}
}

func TestIcebergSortOrder(t *testing.T) {
	tests := []struct {
		name string
		sort []SortField
		// want are "transform(source id) direction nulls".
		want    []string
		wantErr string
	}{
		{name: "unsorted"},
		{name: "defaults", sort: []SortField{{Column: "ts"}}, want: []string{"identity(4) asc nulls-first"}},
		{name: "desc default nulls", sort: []SortField{{Column: "ts", Direction: "desc"}}, want: []string{"identity(4) desc nulls-last"}},
		{name: "explicit nulls", sort: []SortField{{Column: "id", Direction: "asc", Nulls: "last"}, {Column: "name", Direction: "DESC", Nulls: "nulls-first"}},
			want: []string{"identity(1) asc nulls-last", "identity(3) desc nulls-first"}},
		{name: "transform", sort: []SortField{{Column: "tstz", Transform: "day"}, {Column: "id", Transform: "bucket[8]"}, {Column: "name", Transform: "truncate[2]"}},
			want: []string{"day(5) asc nulls-first", "bucket[8](1) asc nulls-first", "truncate[2](3) asc nulls-first"}},
		{name: "year month hour", sort: []SortField{{Column: "ts", Transform: "year"}, {Column: "ts", Transform: "month"}, {Column: "ts", Transform: "hour"}},
			want: []string{"year(4) asc nulls-first", "month(4) asc nulls-first", "hour(4) asc nulls-first"}},
		{name: "nested", sort: []SortField{{Column: "device.os"}}, want: []string{"identity(11) asc nulls-first"}},

		{name: "bad direction", sort: []SortField{{Column: "ts", Direction: "up"}}, wantErr: `sort[0] on "ts": direction "up": want asc or desc`},
		{name: "bad nulls", sort: []SortField{{Column: "ts", Nulls: "middle"}}, wantErr: `sort[0] on "ts": nulls "middle": want first or last`},
		{name: "bad transform", sort: []SortField{{Column: "ts", Transform: "minute"}}, wantErr: `sort[0] on "ts": unknown transform "minute"`},
		{name: "transform mismatch", sort: []SortField{{Column: "name", Transform: "year"}}, wantErr: `sort[0]: transform year does not apply to column "name" of type string`},
		{name: "missing column", sort: []SortField{{Column: "x"}}, wantErr: `sort[0]: column "x" not found`},
		{name: "list column", sort: []SortField{{Column: "tags"}}, wantErr: `sort[0]: column "tags" is a list, not a primitive column`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Spec{Name: "ns.t", Schema: transformSchema, Sort: tt.sort}
			sc, err := s.IcebergSchema()
			if err != nil {
				t.Fatal(err)
			}
			order, err := s.IcebergSortOrder(sc)
			checkErr(t, err, tt.wantErr)
			checkErr(t, s.Validate(), tt.wantErr)
			if err != nil {
				return
			}
			var got []string
			for _, f := range order.Fields() {
				got = append(got, f.Transform.String()+"("+strconv.Itoa(f.SourceID())+") "+string(f.Direction)+" "+string(f.NullOrder))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("sort %q, want %q", got, tt.want)
			}
			wantID := icetable.InitialSortOrderID
			if len(tt.sort) == 0 {
				wantID = icetable.UnsortedSortOrderID
			}
			if order.OrderID() != wantID {
				t.Fatalf("order id %d, want %d", order.OrderID(), wantID)
			}
		})
	}
}

func TestTableProperties(t *testing.T) {
	s := Spec{Properties: map[string]string{"write.target-file-size-bytes": "1024", "custom": "x"}}
	got := s.TableProperties()
	want := DefaultProperties()
	want["write.target-file-size-bytes"] = "1024"
	want["custom"] = "x"
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if DefaultProperties()["write.target-file-size-bytes"] != "134217728" {
		t.Fatal("TableProperties changed the defaults")
	}
}

func TestValidate(t *testing.T) {
	ok := []Field{{Name: "id", Type: "long", Required: true}}
	tests := []struct {
		name    string
		spec    Spec
		wantErr string
	}{
		{"ok", Spec{Name: "ns.t", Schema: ok}, ""},
		{"dead letter", DeadLetterSpec("ops.dead_letters"), ""},
		{"nested", nestedSpec(), ""},
		{"bad name", Spec{Name: "t", Schema: ok}, `table name "t": want namespace.table`},
		{"format version", Spec{Name: "ns.t", Schema: ok, Properties: map[string]string{"format-version": "9"}},
			`table ns.t: properties: format-version "9": want 1, 2 or 3`},
		{"format version 3", Spec{Name: "ns.t", Schema: ok, Properties: map[string]string{"format-version": "3"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, tt.spec.Validate(), tt.wantErr)
		})
	}
}

func TestParseSpecs(t *testing.T) {
	const example = `
name: ods.events
schema:
  - {name: event_id, type: long, required: true}
  - {name: event_time, type: timestamptz, required: true}
  - {name: user_id, type: long}
  - {name: amount, type: "decimal(18,2)"}
  - name: device
    type: struct
    fields: [{name: os, type: string}]
  - {name: tags, type: list, element: {type: string}}
  - {name: attrs, type: map, key: {type: string}, value: {type: string}}
partition:
  - {column: event_time, transform: day}
  - {column: user_id, transform: "bucket[16]"}
sort:
  - {column: event_time}
identifier-fields: [event_id]
properties:
  write.target-file-size-bytes: "134217728"
`
	tests := []struct {
		name      string
		yaml      string
		wantNames []string
		wantErr   string
	}{
		{name: "one", yaml: example, wantNames: []string{"ods.events"}},
		{name: "list", yaml: `
- name: a.one
  schema: [{name: id, type: long}]
- name: a.two
  schema: [{name: id, type: int}]
`, wantNames: []string{"a.one", "a.two"}},
		{name: "documents", yaml: example + "---\n- name: b.x\n  schema: [{name: id, type: long}]\n---\n", wantNames: []string{"ods.events", "b.x"}},
		{name: "unknown key", yaml: "name: a.b\nschema: [{name: id, type: long}]\npartitions: []\n", wantErr: "field partitions not found"},
		{name: "unknown nested key", yaml: "name: a.b\nschema: [{name: id, type: long, nullable: true}]\n", wantErr: "field nullable not found"},
		{name: "unknown key in list", yaml: "- name: a.b\n  schema: [{name: id, type: long}]\n  extra: 1\n", wantErr: "field extra not found"},
		{name: "bad type", yaml: "name: a.b\nschema: [{name: id, type: strin}]\n", wantErr: `table spec 1: table a.b: column "id": unknown type "strin"`},
		{name: "bad transform", yaml: "- name: a.b\n  schema: [{name: id, type: long}]\n- name: a.c\n  schema: [{name: id, type: long}]\n  partition: [{column: id, transform: \"bucket[x]\"}]\n",
			wantErr: `table spec 2: table a.c: partition[0] on "id": unknown transform "bucket[x]"`},
		{name: "duplicate", yaml: "- name: a.b\n  schema: [{name: id, type: long}]\n- name: a.b\n  schema: [{name: id, type: long}]\n",
			wantErr: "table spec 2: table a.b is already specified by spec 1"},
		{name: "empty", yaml: "", wantErr: "no tables"},
		{name: "scalar", yaml: "hello", wantErr: "want a table spec or a list of them"},
		{name: "syntax", yaml: "name: [", wantErr: "parse table specs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs, err := ParseSpecs([]byte(tt.yaml))
			checkErr(t, err, tt.wantErr)
			if err != nil {
				return
			}
			var names []string
			for _, s := range specs {
				names = append(names, s.Name)
			}
			if !slices.Equal(names, tt.wantNames) {
				t.Fatalf("names %q, want %q", names, tt.wantNames)
			}
		})
	}

	t.Run("example contents", func(t *testing.T) {
		specs, err := ParseSpecs([]byte(example))
		if err != nil {
			t.Fatal(err)
		}
		s := specs[0]
		if len(s.Schema) != 7 || s.Schema[5].Element == nil || s.Schema[6].Key == nil || s.Schema[6].Value == nil ||
			len(s.Schema[4].Fields) != 1 || !s.Schema[0].Required || len(s.Partition) != 2 || s.Partition[1].Transform != "bucket[16]" ||
			len(s.Sort) != 1 || !slices.Equal(s.IdentifierFields, []string{"event_id"}) ||
			s.Properties["write.target-file-size-bytes"] != "134217728" {
			t.Fatalf("parsed %+v", s)
		}
	})
}
