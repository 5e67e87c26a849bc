package kafka

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/floe-lake/floe/table"
)

// col appends Go values to one Arrow column whose type was checked when it
// was bound.
type col struct {
	b    array.Builder
	unit int64 // timestamps: units per second
}

// colKind is what a bound column holds.
type colKind uint8

const (
	kindString colKind = iota // string or binary
	kindInt                   // int or long
	kindTime                  // timestamp(tz)
)

// bindCol checks that field f of table tbl can hold kind and returns an
// appender on b.
func bindCol(tbl string, f arrow.Field, b array.Builder, kind colKind) (col, error) {
	bad := func() (col, error) {
		want := map[colKind]string{kindString: "string or binary", kindInt: "int or long", kindTime: "timestamp or timestamptz"}[kind]
		return col{}, fmt.Errorf("table %s: column %s: want %s, got %s", tbl, f.Name, want, f.Type)
	}
	c := col{b: b}
	switch t := f.Type.(type) {
	case *arrow.StringType, *arrow.LargeStringType, *arrow.BinaryType, *arrow.LargeBinaryType:
		if kind != kindString {
			return bad()
		}
	case *arrow.Int32Type, *arrow.Int64Type:
		if kind != kindInt {
			return bad()
		}
	case *arrow.TimestampType:
		if kind != kindTime {
			return bad()
		}
		c.unit = map[arrow.TimeUnit]int64{arrow.Second: 1, arrow.Millisecond: 1e3, arrow.Microsecond: 1e6, arrow.Nanosecond: 1e9}[t.Unit]
	default:
		return bad()
	}
	return c, nil
}

func (c col) null() { c.b.AppendNull() }

// bytes appends v; a string column gets it as text (invalid UTF-8
// replaced).
func (c col) bytes(v []byte) {
	switch b := c.b.(type) {
	case *array.BinaryBuilder:
		b.Append(v)
	case *array.StringBuilder:
		b.Append(validUTF8(v))
	case *array.LargeStringBuilder:
		b.Append(validUTF8(v))
	}
}

func (c col) str(v string) {
	switch b := c.b.(type) {
	case *array.StringBuilder:
		b.Append(v)
	case *array.LargeStringBuilder:
		b.Append(v)
	case *array.BinaryBuilder:
		b.AppendString(v)
	}
}

func (c col) int(v int64) {
	switch b := c.b.(type) {
	case *array.Int32Builder:
		b.Append(int32(v))
	case *array.Int64Builder:
		b.Append(v)
	}
}

// time appends t (the zero time as null).
func (c col) time(t time.Time) {
	if t.IsZero() {
		c.b.AppendNull()
		return
	}
	var v int64
	switch c.unit {
	case 1:
		v = t.Unix()
	case 1e3:
		v = t.UnixMilli()
	case 1e6:
		v = t.UnixMicro()
	default:
		v = t.UnixNano()
	}
	c.b.(*array.TimestampBuilder).Append(arrow.Timestamp(v))
}

func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// metaColumns are the metadata columns MetadataColumns adds: the Kafka ones
// always, the CDC ones for tables fed by a canal-json or debezium-json
// route.
func metaColumns(cdc bool) []table.Field {
	fs := []table.Field{
		{Name: ColTopic, Type: "string", Doc: "Kafka topic the row came from"},
		{Name: ColPartition, Type: "int", Doc: "Kafka partition"},
		{Name: ColOffset, Type: "long", Doc: "Kafka offset"},
		{Name: ColTimestamp, Type: "timestamptz", Doc: "Kafka record timestamp"},
		{Name: ColKey, Type: "binary", Doc: "Kafka record key"},
	}
	if cdc {
		fs = append(fs,
			table.Field{Name: ColOp, Type: "string", Doc: "change type: insert, update, delete, read"},
			table.Field{Name: ColEventTime, Type: "timestamptz", Doc: "when the change happened in the source database"},
		)
	}
	return fs
}

// isMeta reports whether a column is filled by the source rather than from
// the record's JSON.
func isMeta(name string) bool {
	switch name {
	case ColTopic, ColPartition, ColOffset, ColTimestamp, ColKey, ColOp, ColEventTime:
		return true
	}
	return false
}
