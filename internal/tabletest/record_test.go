package tabletest

import (
	"reflect"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// TestRecordRoundTrip: what Record builds, Cell reads back.
func TestRecordRoundTrip(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "n", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "b", Type: arrow.BinaryTypes.Binary},
		{Name: "d", Type: &arrow.Decimal128Type{Precision: 18, Scale: 2}},
	}, nil)
	ts := time.Date(2026, 3, 1, 12, 30, 0, 123456000, time.UTC)
	rec := Record(sc,
		[]any{int64(1), 7, ts, "one", []byte("x"), decimal128.FromI64(150)},
		[]any{2, nil, ts.UnixMicro(), nil, []byte{}, decimal128.FromI64(-5)},
	)
	defer rec.Release()
	want := [][]any{
		{int64(1), int64(7), ts, "one", "x", "1.50"},
		{int64(2), nil, ts, nil, "", "-0.05"},
	}
	for i, row := range want {
		for c, w := range row {
			if got := Cell(rec.Column(c), i); !reflect.DeepEqual(got, w) {
				t.Errorf("row %d column %s: %#v, want %#v", i, sc.Field(c).Name, got, w)
			}
		}
	}
}

// TestRecordWrongType: a value of the wrong type for its column panics.
func TestRecordWrongType(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String}}, nil)
	defer func() {
		if recover() == nil {
			t.Fatal("an int for a string column did not panic")
		}
	}()
	Record(sc, []any{1}).Release()
}
