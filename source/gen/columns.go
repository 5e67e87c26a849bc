package gen

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Columns are bound to the Arrow schema the sink returns by name, so the
// table may order them differently or carry extra optional columns (filled
// with nulls). A column the generator produces may be missing from the
// table; it is then not generated.

// binder binds a table's columns to typed Arrow builders.
type binder struct {
	table string
	sc    *arrow.Schema
	rb    *array.RecordBuilder
	bound []bool
	err   error
}

func newBinder(mem memory.Allocator, table string, sc *arrow.Schema) *binder {
	return &binder{table: table, sc: sc, rb: array.NewRecordBuilder(mem, sc), bound: make([]bool, sc.NumFields())}
}

// field finds a column; -1 when the table has none by that name.
func (b *binder) field(name string, mayBeNull bool) int {
	idx := b.sc.FieldIndices(name)
	if len(idx) == 0 {
		return -1
	}
	i := idx[0]
	b.bound[i] = true
	if mayBeNull && !b.sc.Field(i).Nullable && b.err == nil {
		b.err = fmt.Errorf("table %s: column %s is required but the generator leaves it null", b.table, name)
	}
	return i
}

func (b *binder) mismatch(i int, want string) {
	if b.err == nil {
		b.err = fmt.Errorf("table %s: column %s: want %s, got %s", b.table, b.sc.Field(i).Name, want, b.sc.Field(i).Type)
	}
}

func (b *binder) int64(name string, mayBeNull bool) *array.Int64Builder {
	i := b.field(name, mayBeNull)
	if i < 0 {
		return nil
	}
	x, ok := b.rb.Field(i).(*array.Int64Builder)
	if !ok {
		b.mismatch(i, "long")
	}
	return x
}

// str binds a string column; its bytes go through the underlying
// BinaryBuilder (String and LargeString share it).
func (b *binder) str(name string, mayBeNull bool) *array.BinaryBuilder {
	i := b.field(name, mayBeNull)
	if i < 0 {
		return nil
	}
	switch x := b.rb.Field(i).(type) {
	case *array.StringBuilder:
		return x.BinaryBuilder
	case *array.LargeStringBuilder:
		return x.BinaryBuilder
	}
	b.mismatch(i, "string")
	return nil
}

// tsCol appends microsecond timestamps in the column's unit.
type tsCol struct {
	b           *array.TimestampBuilder
	mul, divide int64
}

func (c tsCol) value(us int64) arrow.Timestamp {
	if c.divide > 1 {
		v := us / c.divide
		if us%c.divide < 0 {
			v--
		}
		return arrow.Timestamp(v)
	}
	return arrow.Timestamp(us * c.mul)
}

func (c tsCol) append(us int64) { c.b.Append(c.value(us)) }

func (b *binder) ts(name string, mayBeNull bool) tsCol {
	i := b.field(name, mayBeNull)
	if i < 0 {
		return tsCol{}
	}
	x, ok := b.rb.Field(i).(*array.TimestampBuilder)
	if !ok {
		b.mismatch(i, "timestamptz")
		return tsCol{}
	}
	c := tsCol{b: x, mul: 1, divide: 1}
	switch x.Type().(*arrow.TimestampType).Unit {
	case arrow.Nanosecond:
		c.mul = 1000
	case arrow.Millisecond:
		c.divide = 1000
	case arrow.Second:
		c.divide = 1_000_000
	}
	return c
}

// decCol appends amounts given in cents.
type decCol struct {
	b   *array.Decimal128Builder
	mul int64
}

func (c decCol) value(cents int64) decimal128.Num { return decimal128.FromI64(cents * c.mul) }

func (c decCol) append(cents int64) { c.b.Append(c.value(cents)) }

func (b *binder) cents(name string, mayBeNull bool) decCol {
	i := b.field(name, mayBeNull)
	if i < 0 {
		return decCol{}
	}
	x, ok := b.rb.Field(i).(*array.Decimal128Builder)
	dt, _ := b.sc.Field(i).Type.(*arrow.Decimal128Type)
	// Amounts need 2 decimal places and up to 7 integer digits; the
	// multiplier must fit int64 with room for those digits.
	if !ok || dt == nil || dt.Scale < 2 || dt.Scale > 11 || dt.Precision-dt.Scale < 7 {
		b.mismatch(i, "decimal(P,S) with S in [2,11] and P-S >= 7")
		return decCol{}
	}
	c := decCol{b: x, mul: 1}
	for s := int32(2); s < dt.Scale; s++ {
		c.mul *= 10
	}
	return c
}

// finish returns the builders of the columns the generator does not fill,
// which get nulls; a required one is an error.
func (b *binder) finish() ([]array.Builder, error) {
	if b.err != nil {
		b.rb.Release()
		return nil, b.err
	}
	var extra []array.Builder
	for i, ok := range b.bound {
		if ok {
			continue
		}
		f := b.sc.Field(i)
		if !f.Nullable {
			b.rb.Release()
			return nil, fmt.Errorf("table %s: column %s is required but the generator does not produce it", b.table, f.Name)
		}
		extra = append(extra, b.rb.Field(i))
	}
	return extra, nil
}

func appendNulls(bs []array.Builder) {
	for _, b := range bs {
		b.AppendNull()
	}
}

// eventCols appends events.
type eventCols struct {
	rb                                             *array.RecordBuilder
	extra                                          []array.Builder
	eventID, userID, adID                          *array.Int64Builder
	eventTime                                      tsCol
	device, session, etype, url, prov, city, props *array.BinaryBuilder
	amount                                         decCol
}

func newEventCols(mem memory.Allocator, table string, sc *arrow.Schema) (*eventCols, error) {
	b := newBinder(mem, table, sc)
	c := &eventCols{
		rb:        b.rb,
		eventID:   b.int64("event_id", false),
		eventTime: b.ts("event_time", false),
		userID:    b.int64("user_id", false),
		device:    b.str("device_id", false),
		session:   b.str("session_id", false),
		etype:     b.str("event_type", false),
		url:       b.str("page_url", false),
		adID:      b.int64("ad_id", true),
		prov:      b.str("province", false),
		city:      b.str("city", false),
		amount:    b.cents("amount", true),
		props:     b.str("properties", false),
	}
	var err error
	if c.extra, err = b.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

// reserve makes room for n events, string bytes included, so that
// appending never grows a buffer.
func (c *eventCols) reserve(m *model, n int) {
	c.rb.Reserve(n)
	for _, col := range []struct {
		b   *array.BinaryBuilder
		max int
	}{
		{c.device, len(event{}.device)},
		{c.session, len(event{}.session)},
		{c.etype, maxLen(m.types)},
		{c.url, maxLen(m.urls)},
		{c.prov, maxLen(m.provNames)},
		{c.city, m.maxCity},
		{c.props, maxLen(m.props)},
	} {
		if col.b != nil {
			col.b.ReserveData(n * col.max)
		}
	}
}

func maxLen(vs [][]byte) int {
	n := 0
	for _, v := range vs {
		n = max(n, len(v))
	}
	return n
}

// append appends e; reserve must have made room for it.
func (c *eventCols) append(m *model, e *event) {
	if c.eventID != nil {
		c.eventID.UnsafeAppend(e.id)
	}
	if c.eventTime.b != nil {
		c.eventTime.b.UnsafeAppend(c.eventTime.value(e.time))
	}
	if c.userID != nil {
		c.userID.UnsafeAppend(e.userID)
	}
	if c.device != nil {
		c.device.UnsafeAppend(e.device[:])
	}
	if c.session != nil {
		c.session.UnsafeAppend(e.session[:])
	}
	if c.etype != nil {
		c.etype.UnsafeAppend(m.types[e.etype])
	}
	if c.url != nil {
		c.url.UnsafeAppend(m.urls[e.url])
	}
	if c.adID != nil {
		if e.adID == 0 {
			c.adID.UnsafeAppendBoolToBitmap(false)
		} else {
			c.adID.UnsafeAppend(e.adID)
		}
	}
	if c.prov != nil {
		c.prov.UnsafeAppend(m.provNames[e.prov])
	}
	if c.city != nil {
		c.city.UnsafeAppend(m.cityNames[e.prov][e.city])
	}
	if c.amount.b != nil {
		if e.cents < 0 {
			c.amount.b.UnsafeAppendBoolToBitmap(false)
		} else {
			c.amount.b.UnsafeAppend(c.amount.value(e.cents))
		}
	}
	if c.props != nil {
		c.props.UnsafeAppend(m.props[e.props])
	}
	appendNulls(c.extra)
}

// orderCols appends orders.
type orderCols struct {
	rb                   *array.RecordBuilder
	extra                []array.Builder
	orderID, userID      *array.Int64Builder
	prov, city, status   *array.BinaryBuilder
	amount               decCol
	createdAt, updatedAt tsCol
}

func newOrderCols(mem memory.Allocator, table string, sc *arrow.Schema) (*orderCols, error) {
	b := newBinder(mem, table, sc)
	c := &orderCols{
		rb:        b.rb,
		orderID:   b.int64("order_id", false),
		userID:    b.int64("user_id", false),
		prov:      b.str("province", false),
		city:      b.str("city", false),
		amount:    b.cents("amount", false),
		status:    b.str("status", false),
		createdAt: b.ts("created_at", false),
		updatedAt: b.ts("updated_at", false),
	}
	var err error
	if c.extra, err = b.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *orderCols) append(m *model, e *event) {
	if c.orderID != nil {
		c.orderID.Append(e.id)
	}
	if c.userID != nil {
		c.userID.Append(e.userID)
	}
	if c.prov != nil {
		c.prov.Append(m.provNames[e.prov])
	}
	if c.city != nil {
		c.city.Append(m.cityNames[e.prov][e.city])
	}
	if c.amount.b != nil {
		c.amount.append(e.cents)
	}
	if c.status != nil {
		c.status.Append(m.statuses[e.status])
	}
	if c.createdAt.b != nil {
		c.createdAt.append(e.time)
	}
	if c.updatedAt.b != nil {
		c.updatedAt.append(e.updatedAt)
	}
	appendNulls(c.extra)
}
