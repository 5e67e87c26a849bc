package table

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/catalog"
)

// testCatalog opens a SQLite SQL catalog with a local warehouse in a
// temporary directory.
func testCatalog(t *testing.T) icecat.Catalog {
	t.Helper()
	t.Setenv(catalog.EnvCatalogURI, "") // the config below must win
	dir := t.TempDir()
	cfg := catalog.Config{Type: catalog.TypeSQLite, Name: "test", URI: filepath.Join(dir, "cat.db"), Warehouse: filepath.Join(dir, "wh")}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := cat.(icecat.Closer); ok {
		t.Cleanup(func() { _ = c.Close() })
	}
	return cat
}

func eventsSpec() Spec {
	return Spec{
		Name: "ods.events",
		Schema: []Field{
			{Name: "event_id", Type: "long", Required: true, Doc: "unique id"},
			{Name: "event_time", Type: "timestamptz", Required: true},
			{Name: "user_id", Type: "long"},
			{Name: "count", Type: "int"},
			{Name: "ratio", Type: "float"},
			{Name: "amount", Type: "decimal(10,2)"},
			{Name: "kind", Type: "string", Required: true},
			{Name: "device", Type: "struct", Fields: []Field{{Name: "os", Type: "string"}}},
			{Name: "tags", Type: "list", Element: &Field{Type: "string"}},
			{Name: "attrs", Type: "map", Key: &Field{Type: "string"}, Value: &Field{Type: "int"}},
		},
		Partition:        []PartitionField{{Column: "event_time", Transform: "day"}, {Column: "user_id", Transform: "bucket[16]"}},
		Sort:             []SortField{{Column: "event_time"}, {Column: "event_id", Direction: "desc"}},
		IdentifierFields: []string{"event_id"},
		Properties:       map[string]string{"write.target-file-size-bytes": "1048576"},
	}
}

// fieldIDs maps every column path of sc to its field id.
func fieldIDs(t *testing.T, sc *iceberg.Schema) map[string]int {
	t.Helper()
	idx, err := iceberg.IndexByName(sc)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func typeOf(t *testing.T, tbl *icetable.Table, col string) string {
	t.Helper()
	f, ok := tbl.Schema().FindFieldByName(col)
	if !ok {
		t.Fatalf("column %s not in %s", col, tbl.Schema())
	}
	return f.Type.String()
}

func TestEnsureCreate(t *testing.T) {
	ctx := context.Background()
	cat := testCatalog(t)
	s := eventsSpec()
	tbl, err := Ensure(ctx, cat, s)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("schema", func(t *testing.T) {
		want, err := s.IcebergSchema()
		if err != nil {
			t.Fatal(err)
		}
		got := tbl.Schema()
		if !reflect.DeepEqual(fieldIDs(t, got), fieldIDs(t, want)) {
			t.Fatalf("table schema\n%s\nwant\n%s", got, want)
		}
		if a, b := got.AsStruct(), want.AsStruct(); !a.Equals(&b) {
			t.Fatalf("table schema\n%s\nwant\n%s", got, want)
		}
		if !slices.Equal(got.IdentifierFieldIDs, []int{1}) {
			t.Fatalf("identifier fields %v", got.IdentifierFieldIDs)
		}
	})
	t.Run("partition and sort", func(t *testing.T) {
		info := Describe(tbl)
		if want := []string{"day(event_time)", "bucket[16](user_id)"}; !slices.Equal(info.Partition, want) {
			t.Fatalf("partition %q, want %q", info.Partition, want)
		}
		if want := []string{"event_time asc nulls-first", "event_id desc nulls-last"}; !slices.Equal(info.Sort, want) {
			t.Fatalf("sort %q, want %q", info.Sort, want)
		}
		spec := tbl.Spec()
		if f := spec.Field(0); f.Name != "event_time_day" || f.FieldID != 1000 {
			t.Fatalf("partition field 0: %+v", f)
		}
	})
	t.Run("properties", func(t *testing.T) {
		p := tbl.Properties()
		if p["write.target-file-size-bytes"] != "1048576" || p["write.parquet.compression-codec"] != "zstd" ||
			p["write.metadata.delete-after-commit.enabled"] != "true" {
			t.Fatalf("properties %v", p)
		}
		if v := tbl.Metadata().Version(); v != 2 {
			t.Fatalf("format version %d", v)
		}
	})
	t.Run("describe", func(t *testing.T) {
		info := Describe(tbl)
		if info.Name != "ods.events" || info.FormatVersion != 2 || info.CurrentSnapshotID != nil || info.Snapshots != 0 ||
			len(info.Positions) != 0 || info.PositionsError != "" || !strings.HasPrefix(info.Location, "file://") {
			t.Fatalf("describe: %+v", info)
		}
		if !reflect.DeepEqual(info.Schema, s.Schema) {
			t.Fatalf("describe schema\n%+v\nwant\n%+v", info.Schema, s.Schema)
		}
		if !slices.Equal(info.IdentifierFields, []string{"event_id"}) {
			t.Fatalf("identifier fields %q", info.IdentifierFields)
		}
		b, err := json.Marshal(info)
		if err != nil {
			t.Fatal(err)
		}
		var back TableInfo
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.Schema, info.Schema) {
			t.Fatal("schema does not survive JSON")
		}
		if len(DescribeSnapshots(tbl)) != 0 {
			t.Fatal("snapshots on a new table")
		}
	})
	t.Run("nested namespace", func(t *testing.T) {
		s := Spec{Name: "lake.raw.things", Schema: []Field{{Name: "id", Type: "long"}}}
		tbl, err := Ensure(ctx, cat, s)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(tbl.Identifier(), "."); got != s.Name {
			t.Fatalf("identifier %s", got)
		}
		for _, ns := range []icetable.Identifier{{"lake"}, {"lake", "raw"}} {
			if ok, err := cat.CheckNamespaceExists(ctx, ns); err != nil || !ok {
				t.Fatalf("namespace %v exists: %v, %v", ns, ok, err)
			}
		}
	})
	t.Run("invalid spec", func(t *testing.T) {
		_, err := Ensure(ctx, cat, Spec{Name: "ods.bad", Schema: []Field{{Name: "x", Type: "strin"}}})
		checkErr(t, err, `table ods.bad: column "x": unknown type "strin"`)
		if ok, _ := cat.CheckTableExists(ctx, icetable.Identifier{"ods", "bad"}); ok {
			t.Fatal("invalid table was created")
		}
	})
}

func TestEnsureExisting(t *testing.T) {
	ctx := context.Background()
	cat := testCatalog(t)
	base, err := Ensure(ctx, cat, eventsSpec())
	if err != nil {
		t.Fatal(err)
	}
	baseIDs := fieldIDs(t, base.Schema())

	t.Run("no change", func(t *testing.T) {
		tbl, err := Ensure(ctx, cat, eventsSpec())
		if err != nil {
			t.Fatal(err)
		}
		if tbl.MetadataLocation() != base.MetadataLocation() {
			t.Fatalf("re-ensure wrote new metadata %s (was %s)", tbl.MetadataLocation(), base.MetadataLocation())
		}
	})

	t.Run("columns missing from the spec are kept", func(t *testing.T) {
		s := eventsSpec()
		s.Schema = slices.DeleteFunc(s.Schema, func(f Field) bool { return f.Name == "tags" || f.Name == "attrs" })
		tbl, err := Ensure(ctx, cat, s)
		if err != nil {
			t.Fatal(err)
		}
		if tbl.MetadataLocation() != base.MetadataLocation() {
			t.Fatal("dropping columns from the spec changed the table")
		}
		if _, ok := tbl.Schema().FindFieldByName("tags"); !ok {
			t.Fatal("tags dropped")
		}
	})

	// The cases below run in order against the same table.
	tests := []struct {
		name string
		edit func(s *Spec)
		// wantErr: the spec is rejected with this text.
		wantErr string
		// check runs on the evolved table.
		check func(t *testing.T, tbl *icetable.Table)
	}{
		{
			name: "add optional columns",
			edit: func(s *Spec) {
				s.Schema = append(s.Schema,
					Field{Name: "country", Type: "string", Doc: "ISO code"},
					Field{Name: "geo", Type: "struct", Fields: []Field{{Name: "lat", Type: "double", Required: true}, {Name: "lon", Type: "double", Required: true}}})
				s.Schema[7].Fields = append(s.Schema[7].Fields, Field{Name: "version", Type: "string"}) // device.version
			},
			check: func(t *testing.T, tbl *icetable.Table) {
				ids := fieldIDs(t, tbl.Schema())
				for name, id := range baseIDs {
					if ids[name] != id {
						t.Errorf("column %s changed id %d -> %d", name, id, ids[name])
					}
				}
				last := base.Metadata().LastColumnID()
				for _, name := range []string{"country", "geo", "geo.lat", "geo.lon", "device.version"} {
					if ids[name] <= last {
						t.Errorf("new column %s has id %d, not above %d", name, ids[name], last)
					}
				}
				f, _ := tbl.Schema().FindFieldByName("country")
				if f.Required || f.Doc != "ISO code" || f.Type.String() != "string" {
					t.Errorf("country: %s", f)
				}
				if f, _ := tbl.Schema().FindFieldByName("geo.lat"); !f.Required {
					t.Errorf("geo.lat should stay required inside the optional struct: %s", f)
				}
				if got := tbl.Schema().Field(tbl.Schema().NumFields() - 1).Name; got != "geo" {
					t.Errorf("last column %s, want geo", got)
				}
			},
		},
		{
			name: "add required column",
			edit: func(s *Spec) {
				s.Schema = append(s.Schema, Field{Name: "tenant", Type: "string", Required: true})
			},
			wantErr: `evolve table ods.events: column "tenant": cannot add a required column to an existing table`,
		},
		{
			name: "add required nested field",
			edit: func(s *Spec) {
				s.Schema[7].Fields = append(s.Schema[7].Fields, Field{Name: "arch", Type: "string", Required: true})
			},
			wantErr: `column "device.arch": cannot add a required column`,
		},
		{
			name: "promote int to long, float to double, widen decimal",
			edit: func(s *Spec) {
				s.Schema[3].Type = "long"           // count
				s.Schema[4].Type = "double"         // ratio
				s.Schema[5].Type = "decimal(20, 2)" // amount
				s.Schema[9].Value.Type = "long"     // attrs.value
			},
			check: func(t *testing.T, tbl *icetable.Table) {
				for col, want := range map[string]string{"count": "long", "ratio": "double", "amount": "decimal(20, 2)", "attrs.value": "long"} {
					if got := typeOf(t, tbl, col); got != want {
						t.Errorf("%s: %s, want %s", col, got, want)
					}
				}
				ids := fieldIDs(t, tbl.Schema())
				for _, col := range []string{"count", "ratio", "amount", "attrs.value"} {
					if ids[col] != baseIDs[col] {
						t.Errorf("%s changed id", col)
					}
				}
			},
		},
		{
			name:    "string to int",
			edit:    func(s *Spec) { s.Schema[6].Type = "int" }, // kind
			wantErr: `evolve table ods.events: column "kind": cannot change type string to int`,
		},
		{
			name:    "long to int",
			edit:    func(s *Spec) { s.Schema[2].Type = "int" }, // user_id
			wantErr: `column "user_id": cannot change type long to int`,
		},
		{
			name:    "decimal scale",
			edit:    func(s *Spec) { s.Schema[5].Type = "decimal(20,3)" },
			wantErr: `column "amount": cannot change type decimal(20, 2) to decimal(20, 3)`,
		},
		{
			name:    "nested type change",
			edit:    func(s *Spec) { s.Schema[7].Fields[0].Type = "binary" },
			wantErr: `column "device.os": cannot change type string to binary`,
		},
		{
			name:    "list element type change",
			edit:    func(s *Spec) { s.Schema[8].Element.Type = "int" },
			wantErr: `column "tags.element": cannot change type string to int`,
		},
		{
			name:    "map key change",
			edit:    func(s *Spec) { s.Schema[9].Key.Type = "int" },
			wantErr: `column "attrs.key": cannot change a map key`,
		},
		{
			name: "primitive to struct",
			edit: func(s *Spec) {
				s.Schema[3] = Field{Name: "count", Type: "struct", Fields: []Field{{Name: "x", Type: "int"}}}
			},
			wantErr: `column "count": cannot change type long to struct`,
		},
		{
			name:    "optional to required",
			edit:    func(s *Spec) { s.Schema[2].Required = true },
			wantErr: `column "user_id": cannot make an optional column required`,
		},
		{
			name: "required to optional",
			edit: func(s *Spec) { s.Schema[6].Required = false }, // kind
			check: func(t *testing.T, tbl *icetable.Table) {
				if f, _ := tbl.Schema().FindFieldByName("kind"); f.Required {
					t.Error("kind still required")
				}
			},
		},
		{
			name: "identifier fields",
			edit: func(s *Spec) { s.IdentifierFields = []string{"event_id", "event_time"} },
			check: func(t *testing.T, tbl *icetable.Table) {
				if got := Describe(tbl).IdentifierFields; !slices.Equal(got, []string{"event_id", "event_time"}) {
					t.Errorf("identifier fields %q", got)
				}
			},
		},
	}
	spec := eventsSpec()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := cat.LoadTable(ctx, icetable.Identifier{"ods", "events"})
			if err != nil {
				t.Fatal(err)
			}
			s := spec
			s.Schema = cloneFields(spec.Schema)
			s.IdentifierFields = slices.Clone(spec.IdentifierFields)
			tt.edit(&s)
			tbl, err := Ensure(ctx, cat, s)
			checkErr(t, err, tt.wantErr)
			if err != nil {
				after, lerr := cat.LoadTable(ctx, icetable.Identifier{"ods", "events"})
				if lerr != nil {
					t.Fatal(lerr)
				}
				if after.MetadataLocation() != before.MetadataLocation() {
					t.Fatal("a rejected spec changed the table")
				}
				return
			}
			if tbl.MetadataLocation() == before.MetadataLocation() {
				t.Fatal("no new metadata after an evolution")
			}
			tt.check(t, tbl)
			// The evolved spec is now the table's: ensuring it again is a no-op.
			again, err := Ensure(ctx, cat, s)
			if err != nil {
				t.Fatal(err)
			}
			if again.MetadataLocation() != tbl.MetadataLocation() {
				t.Fatal("re-ensuring the evolved spec changed the table")
			}
			spec = s
		})
	}
}

func cloneFields(fs []Field) []Field {
	out := slices.Clone(fs)
	for i := range out {
		out[i].Fields = cloneFields(out[i].Fields)
		for _, p := range []**Field{&out[i].Element, &out[i].Key, &out[i].Value} {
			if *p != nil {
				c := **p
				c.Fields = cloneFields(c.Fields)
				*p = &c
			}
		}
	}
	return out
}

func TestEnsureConcurrent(t *testing.T) {
	ctx := context.Background()
	cat := testCatalog(t)
	s := eventsSpec()
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	locs := make([]string, n)
	for i := range n {
		wg.Go(func() {
			tbl, err := Ensure(ctx, cat, s)
			errs[i] = err
			if err == nil {
				locs[i] = tbl.MetadataLocation()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ensure %d: %v", i, err)
		}
	}
	for _, l := range locs[1:] {
		if l != locs[0] {
			t.Fatalf("concurrent creators saw different tables: %q", locs)
		}
	}
}

func TestEvolveRetriesConflicts(t *testing.T) {
	ctx := context.Background()
	cat := testCatalog(t)
	ident := icetable.Identifier{"ods", "events"}
	if _, err := Ensure(ctx, cat, eventsSpec()); err != nil {
		t.Fatal(err)
	}
	stale, err := cat.LoadTable(ctx, ident)
	if err != nil {
		t.Fatal(err)
	}
	// Another process adds a column after stale was loaded.
	other := eventsSpec()
	other.Schema = append(other.Schema, Field{Name: "from_other", Type: "string"})
	if _, err := Ensure(ctx, cat, other); err != nil {
		t.Fatal(err)
	}
	mine := eventsSpec()
	mine.Schema = append(mine.Schema, Field{Name: "from_me", Type: "string"})
	tbl, err := evolve(ctx, cat, ident, stale, mine)
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"from_other", "from_me"} {
		if _, ok := tbl.Schema().FindFieldByName(col); !ok {
			t.Fatalf("%s missing from %s", col, tbl.Schema())
		}
	}
	ids := fieldIDs(t, tbl.Schema())
	if ids["from_other"] == ids["from_me"] {
		t.Fatal("both new columns got the same id")
	}
}

func TestEnsureKeepsNameMappingInStep(t *testing.T) {
	ctx := context.Background()
	cat := testCatalog(t)
	tbl, err := Ensure(ctx, cat, eventsSpec())
	if err != nil {
		t.Fatal(err)
	}
	// Writers that add files leave a name mapping behind (AddDataFiles does).
	mapping, err := json.Marshal(tbl.Schema().NameMapping())
	if err != nil {
		t.Fatal(err)
	}
	txn := tbl.NewTransaction()
	if err := txn.SetProperties(iceberg.Properties{icetable.DefaultNameMappingKey: string(mapping)}); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	s := eventsSpec()
	s.Schema = append(s.Schema, Field{Name: "country", Type: "string"})
	s.Schema[7].Fields = append(s.Schema[7].Fields, Field{Name: "version", Type: "string"})
	tbl, err = Ensure(ctx, cat, s)
	if err != nil {
		t.Fatal(err)
	}
	nm := tbl.NameMapping()
	if nm == nil {
		t.Fatal("name mapping dropped")
	}
	ids := fieldIDs(t, tbl.Schema())
	for _, col := range []string{"country", "device.version", "event_id"} {
		id, ok := mappedID(nm, col)
		if !ok || id != ids[col] {
			t.Errorf("name mapping: %s -> %d, %v; want %d", col, id, ok, ids[col])
		}
	}
}

// mappedID looks a dotted column path up in a name mapping.
func mappedID(nm iceberg.NameMapping, path string) (int, bool) {
	fields := []iceberg.MappedField(nm)
	var f *iceberg.MappedField
	for _, part := range strings.Split(path, ".") {
		f = nil
		for i := range fields {
			if slices.Contains(fields[i].Names, part) {
				f = &fields[i]
				break
			}
		}
		if f == nil {
			return 0, false
		}
		fields = f.Fields
	}
	return f.ID(), f.FieldID != nil
}
