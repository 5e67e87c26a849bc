// Package jsonrow maps JSON objects to rows of an Arrow schema: one object
// in, one row appended, or an error that says which field is wrong and
// nothing appended. Sources (the generator, Kafka) use it to decode records
// whose rejection must become a dead-letter row rather than a half-written
// batch.
//
// Columns are matched by name, exactly (case-sensitive). Unknown members
// are ignored (Options.RejectUnknown rejects them); when a member repeats,
// the last one wins. A missing or null member is a null; for a required
// (non-nullable) field it is an error. Values map as follows, and anything
// else is an error naming the field, the column type and the JSON type:
//
//	boolean                  true, false
//	int, long (int8–int64)   an integral number (1, -3, 2.0, 1e3)
//	float, double            a number
//	decimal(P,S)             a number or a string holding one; parsed from its
//	                         text, exactly — more than S decimal places or
//	                         more than P digits is an error, never rounded
//	string                   a string (valid UTF-8)
//	binary                   a base64 string (standard or URL alphabet,
//	                         padded or not)
//	fixed[N]                 a base64 string of exactly N bytes
//	uuid                     a string: 8-4-4-4-12 hex digits or 32 bare ones
//	date                     a string "2006-01-02"
//	time                     a string "15:04:05[.ffffff]"
//	timestamp, timestamptz   an RFC 3339 string ("2006-01-02T15:04:05.999999Z07:00";
//	                         a space may replace the T; timestamptz needs the
//	                         offset, timestamp without one reads the wall
//	                         clock as UTC), or an epoch number: milliseconds
//	                         when its magnitude is below EpochMicrosThreshold
//	                         (1e14), microseconds otherwise. Digits below the
//	                         column's unit are truncated.
//	struct                   an object
//	list                     an array
//	map<string, V>           an object
//
// This package only decodes: it does no I/O, knows nothing of tables,
// positions or dead letters, and never modifies the schema it is given.
package jsonrow

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/extensions"
)

// Options tune decoding. The zero value is the strict default.
type Options struct {
	// RejectUnknown makes a member that matches no field (at any nesting
	// level) an error. Default: false, unknown members are ignored.
	RejectUnknown bool
	// QuotedNumbers accepts a string holding a number for int, long, float
	// and double columns ("42"), as protobuf's JSON mapping writes 64-bit
	// integers. Default: false, such a string is a type mismatch.
	QuotedNumbers bool
	// RawJSONStrings stores an object or array given for a string column as
	// its JSON text. Default: false, it is a type mismatch.
	RawJSONStrings bool
}

// kind is how a field is decoded and appended.
type kind uint8

const (
	kBool kind = iota
	kInt
	kFloat32
	kFloat64
	kString
	kBinary
	kFixed
	kUUID
	kDate
	kTime
	kTimestamp
	kDecimal
	kStruct
	kList
	kMap
)

// plan is how one field (column, struct field, list element, map key or
// value) is decoded. Plans are immutable once NewDecoder returns.
type plan struct {
	id       int32
	name     string
	kind     kind
	nullable bool
	dtype    arrow.DataType
	typeName string // Iceberg's name for the type, for errors

	minInt, maxInt int64 // kInt
	perSec         int64 // kTime, kTimestamp: units per second
	zoned          bool  // kTimestamp: timestamptz
	prec, scale    int   // kDecimal
	width          int   // kFixed

	fields   []*plan        // kStruct
	index    map[string]int // kStruct: field name → index in fields (the first, if names repeat)
	dupNames bool           // kStruct: two fields have the same name
	elem     *plan          // kList
	key      *plan          // kMap
	value    *plan          // kMap
}

// Decoder maps JSON objects to rows of one Arrow schema. It is immutable and
// safe for concurrent use; each goroutine appends through its own Builder.
type Decoder struct {
	schema *arrow.Schema
	opts   Options
	root   *plan   // a struct plan over the schema's fields
	plans  []*plan // by id
}

// NewDecoder compiles sc for decoding. It fails on column types it cannot
// decode into (anything beyond the mapping in the package documentation),
// naming the field.
func NewDecoder(sc *arrow.Schema, opts Options) (*Decoder, error) {
	if sc == nil {
		return nil, fmt.Errorf("new decoder: nil schema")
	}
	d := &Decoder{schema: sc, opts: opts}
	root := &plan{id: -1, kind: kStruct, index: make(map[string]int, sc.NumFields())}
	for i, f := range sc.Fields() {
		p, err := d.compile(f, f.Name)
		if err != nil {
			return nil, fmt.Errorf("new decoder: %w", err)
		}
		root.fields = append(root.fields, p)
		if _, dup := root.index[f.Name]; dup {
			root.dupNames = true
		} else {
			root.index[f.Name] = i
		}
	}
	d.root = root
	return d, nil
}

// Schema returns the schema rows are decoded into.
func (d *Decoder) Schema() *arrow.Schema { return d.schema }

func (d *Decoder) compile(f arrow.Field, path string) (*plan, error) {
	p := &plan{id: int32(len(d.plans)), name: f.Name, nullable: f.Nullable, dtype: f.Type}
	d.plans = append(d.plans, p)
	unsupported := func() (*plan, error) {
		return nil, fmt.Errorf("field %q: unsupported type %s", path, f.Type)
	}
	switch t := f.Type.(type) {
	case *arrow.BooleanType:
		p.kind, p.typeName = kBool, "boolean"
	case *arrow.Int8Type:
		p.kind, p.typeName, p.minInt, p.maxInt = kInt, "tinyint", -1<<7, 1<<7-1
	case *arrow.Int16Type:
		p.kind, p.typeName, p.minInt, p.maxInt = kInt, "smallint", -1<<15, 1<<15-1
	case *arrow.Int32Type:
		p.kind, p.typeName, p.minInt, p.maxInt = kInt, "int", -1<<31, 1<<31-1
	case *arrow.Int64Type:
		p.kind, p.typeName, p.minInt, p.maxInt = kInt, "long", -1<<63, 1<<63-1
	case *arrow.Float32Type:
		p.kind, p.typeName = kFloat32, "float"
	case *arrow.Float64Type:
		p.kind, p.typeName = kFloat64, "double"
	case *arrow.StringType, *arrow.LargeStringType:
		p.kind, p.typeName = kString, "string"
	case *arrow.BinaryType, *arrow.LargeBinaryType:
		p.kind, p.typeName = kBinary, "binary"
	case *arrow.FixedSizeBinaryType:
		p.kind, p.typeName, p.width = kFixed, fmt.Sprintf("fixed[%d]", t.ByteWidth), t.ByteWidth
	case *extensions.UUIDType:
		p.kind, p.typeName = kUUID, "uuid"
	case *arrow.Date32Type:
		p.kind, p.typeName = kDate, "date"
	case *arrow.Time64Type:
		p.kind, p.typeName = kTime, "time"
		p.perSec = perSecond(t.Unit)
	case *arrow.TimestampType:
		p.kind, p.zoned, p.perSec = kTimestamp, t.TimeZone != "", perSecond(t.Unit)
		p.typeName = "timestamp"
		if p.zoned {
			p.typeName = "timestamptz"
		}
		if t.Unit == arrow.Nanosecond {
			p.typeName += "_ns"
		}
	case *arrow.Decimal32Type:
		p.kind, p.prec, p.scale = kDecimal, int(t.Precision), int(t.Scale)
	case *arrow.Decimal64Type:
		p.kind, p.prec, p.scale = kDecimal, int(t.Precision), int(t.Scale)
	case *arrow.Decimal128Type:
		p.kind, p.prec, p.scale = kDecimal, int(t.Precision), int(t.Scale)
	case *arrow.StructType:
		p.kind, p.typeName = kStruct, "struct"
		p.index = make(map[string]int, t.NumFields())
		for i, cf := range t.Fields() {
			c, err := d.compile(cf, path+"."+cf.Name)
			if err != nil {
				return nil, err
			}
			p.fields = append(p.fields, c)
			if _, dup := p.index[cf.Name]; dup {
				p.dupNames = true
			} else {
				p.index[cf.Name] = i
			}
		}
	case *arrow.MapType:
		p.kind, p.typeName = kMap, "map"
		kf := t.KeyField()
		switch kf.Type.(type) {
		case *arrow.StringType, *arrow.LargeStringType:
		default:
			return nil, fmt.Errorf("field %q: unsupported map key type %s (only string keys)", path, kf.Type)
		}
		k, err := d.compile(kf, path+".key")
		if err != nil {
			return nil, err
		}
		k.nullable = false
		v, err := d.compile(t.ItemField(), path+".value")
		if err != nil {
			return nil, err
		}
		p.key, p.value = k, v
	case *arrow.ListType:
		p.kind, p.typeName = kList, "list"
		e, err := d.compile(t.ElemField(), path+".element")
		if err != nil {
			return nil, err
		}
		p.elem = e
	case *arrow.LargeListType:
		p.kind, p.typeName = kList, "list"
		e, err := d.compile(t.ElemField(), path+".element")
		if err != nil {
			return nil, err
		}
		p.elem = e
	default:
		return unsupported()
	}
	if p.kind == kDecimal {
		if p.prec < 1 || p.prec > 38 || p.scale < 0 || p.scale > p.prec {
			return unsupported()
		}
		p.typeName = fmt.Sprintf("decimal(%d,%d)", p.prec, p.scale)
	}
	return p, nil
}

func perSecond(u arrow.TimeUnit) int64 {
	switch u {
	case arrow.Second:
		return 1
	case arrow.Millisecond:
		return 1e3
	case arrow.Microsecond:
		return 1e6
	default:
		return 1e9
	}
}
