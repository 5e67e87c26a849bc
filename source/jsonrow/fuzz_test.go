package jsonrow

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// fuzzSchema has every supported type, required and optional, nested.
func fuzzSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "at", Type: tsTZ},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "i8", Type: arrow.PrimitiveTypes.Int8, Nullable: true},
		{Name: "i32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "f64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ls", Type: arrow.BinaryTypes.LargeString, Nullable: true},
		{Name: "bin", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "fx", Type: &arrow.FixedSizeBinaryType{ByteWidth: 3}, Nullable: true},
		{Name: "u", Type: extensions.NewUUIDType(), Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "t", Type: arrow.FixedWidthTypes.Time64us, Nullable: true},
		{Name: "ts", Type: tsNTZ, Nullable: true},
		{Name: "tsn", Type: tsNSTZ, Nullable: true},
		{Name: "dec", Type: dec182, Nullable: true},
		{Name: "dec64", Type: &arrow.Decimal64Type{Precision: 12, Scale: 4}, Nullable: true},
		{Name: "st", Type: arrow.StructOf(
			arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int32},
			arrow.Field{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
			arrow.Field{Name: "m", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
		), Nullable: true},
		{Name: "l", Type: arrow.ListOfField(arrow.Field{Name: "element", Type: arrow.StructOf(
			arrow.Field{Name: "k", Type: arrow.BinaryTypes.String},
		)}), Nullable: true},
		{Name: "ll", Type: arrow.LargeListOf(arrow.PrimitiveTypes.Float64), Nullable: true},
		{Name: "m", Type: arrow.MapOfFields(
			arrow.Field{Name: "key", Type: arrow.BinaryTypes.String},
			arrow.Field{Name: "value", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
		), Nullable: true},
	}, nil)
}

// FuzzAppend: Append never panics and appends exactly one row or none, and
// the builder always yields a consistent record.
func FuzzAppend(f *testing.F) {
	seeds := []string{
		`{"id":1,"at":"2026-01-01T00:00:00Z"}`,
		`{"id":1,"at":1767225600000,"b":true,"i8":-3,"i32":7,"f32":1.5,"f64":-2e10,"s":"x\u00e9","ls":"y",` +
			`"bin":"aGk=","fx":"AQID","u":"123e4567-e89b-12d3-a456-426614174000","d":"2026-01-02","t":"01:02:03.5",` +
			`"ts":"2026-01-01T00:00:00","tsn":"2026-01-01T00:00:00.123456789+01:00","dec":"12.34","dec64":1.2345,` +
			`"st":{"x":1,"l":[1,null],"m":{"a":"b","c":null}},"l":[{"k":"v"}],"ll":[1,2.5],"m":{"a":[1,2],"b":[]}}`,
		`{"id":1,"at":"2026-13-45T99:00"}`,
		`{"id":"abc","at":"2026-01-01T00:00:00Z"}`,
		`{"at":"2026-01-01T00:00:00Z"}`,
		`{"id":1,"at":"2026-01-01T00:00:00Z","st":{"x":1,"l":[1,"x"]}}`,
		`{"id":1,"at":"2026-01-01T00:00:00Z","l":[{"k":"v"},{}]}`,
		`{"id":1,"at":"2026-01-01T00:00:00Z","m":{"a":[1],"b":[null]}}`,
		`[1,2]`,
		`{"id":1,"at":"2026-01-01T00:00:00Z","s":"\ud800\udc00"}`,
		`{"id":1e2,"at":-1e14,"dec":1e-2}`,
		``,
		`{`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	d, err := NewDecoder(fuzzSchema(), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		b := d.NewBuilder(mem)
		good := `{"id":1,"at":"2026-01-01T00:00:00Z","st":{"x":1,"l":[1],"m":{"a":"b"}},"l":[{"k":"v"}],"m":{"a":[1]}}`
		if err := b.Append([]byte(good)); err != nil {
			t.Fatalf("good record: %v", err)
		}
		err := b.Append(raw)
		want := 1
		if err == nil {
			want = 2
		} else if err.Error() == "" {
			t.Fatal("empty error message")
		}
		if b.Len() != want {
			t.Fatalf("Len = %d after Append = %v, want %d", b.Len(), err, want)
		}
		if err := b.Append([]byte(good)); err != nil {
			t.Fatalf("good record after: %v", err)
		}
		want++
		rec := b.NewRecord()
		if err := validateRecord(rec, want); err != nil {
			t.Fatalf("after Append(%q) = %v: %v", raw, err, err)
		}
		rec.Release()
		b.Release()
		mem.AssertSize(t, 0)
	})
}
