package jsonrow

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Builder accumulates decoded rows into Arrow builders. Append is
// all-or-nothing: a record is fully decoded and checked into an intermediate
// list of values before anything is appended, so a rejected record leaves
// the builder as it was. A Builder is not safe for concurrent use.
type Builder struct {
	dec   *Decoder
	rb    *array.RecordBuilder
	slots []slot // by plan id
	rows  int

	// Per-record state, reused.
	p     parser
	ops   []op
	bin   []byte  // decoded binary values (base64, uuid)
	seen  []int32 // member node per struct field, stacked by nesting
	path  []pathElem
	uuidb [16]byte
	sizes [][2]int // per slot: values and data bytes of the last record
	// perRow holds, per slot, the values and data bytes per row of the
	// last record, for ReserveRows; deferred makes NewRecord leave the
	// next record's capacity to ReserveRows.
	perRow   [][2]float64
	deferred bool

	// slowOnly turns the one-pass fast path off (tests compare the two).
	slowOnly bool
	// fastRows counts the records the fast path decoded (for tests).
	fastRows int
}

// slot is the Arrow builder a plan appends to.
type slot struct {
	b   array.Builder
	bin *array.BinaryBuilder          // kString, kBinary
	fsb *array.FixedSizeBinaryBuilder // kFixed, kUUID
}

// op is one append, staged until the whole record is known to be good.
type op struct {
	id   int32
	null bool
	src  uint8 // bytes: srcData, srcScratch, srcBin
	off  int32 // bytes span
	end  int32
	i    int64 // ints, dates, times, timestamps, decimal low bits, bool
	hi   int64 // decimal high bits
	f    float64
}

const (
	srcData uint8 = iota
	srcScratch
	srcBin
)

// pathElem is one step of the path to the field being decoded, rendered
// only for errors.
type pathElem struct {
	name  string // struct field
	index int    // list element, when name == "" and key < 0
	key   int32  // map entry: node whose key names it, or -1
}

// NewBuilder returns a Builder appending to fresh Arrow builders allocated
// from mem. Release it when done.
func (d *Decoder) NewBuilder(mem memory.Allocator) *Builder {
	b := &Builder{
		dec:   d,
		rb:    array.NewRecordBuilder(mem, d.schema),
		slots: make([]slot, len(d.plans)),
	}
	for i, p := range d.root.fields {
		b.bind(p, b.rb.Field(i))
	}
	return b
}

func (b *Builder) bind(p *plan, ab array.Builder) {
	s := slot{b: ab}
	switch p.kind {
	case kString:
		switch x := ab.(type) {
		case *array.StringBuilder:
			s.bin = x.BinaryBuilder
		case *array.LargeStringBuilder:
			s.bin = x.BinaryBuilder
		}
	case kBinary:
		s.bin, _ = ab.(*array.BinaryBuilder)
	case kFixed:
		s.fsb, _ = ab.(*array.FixedSizeBinaryBuilder)
	case kUUID:
		if eb, ok := ab.(interface{ StorageBuilder() array.Builder }); ok {
			s.fsb, _ = eb.StorageBuilder().(*array.FixedSizeBinaryBuilder)
		}
	case kStruct:
		sb := ab.(*array.StructBuilder)
		for i, c := range p.fields {
			b.bind(c, sb.FieldBuilder(i))
		}
	case kList:
		switch x := ab.(type) {
		case *array.ListBuilder:
			b.bind(p.elem, x.ValueBuilder())
		case *array.LargeListBuilder:
			b.bind(p.elem, x.ValueBuilder())
		}
	case kMap:
		mb := ab.(*array.MapBuilder)
		b.bind(p.key, mb.KeyBuilder())
		b.bind(p.value, mb.ItemBuilder())
	}
	b.slots[p.id] = s
}

// Len is the number of rows appended since the last NewRecord.
func (b *Builder) Len() int { return b.rows }

// reserveRows and reserveBytes cap what NewRecord reserves for the next
// record (values, and bytes of one string or binary column), so that a
// builder left idle after a large record holds little. reserveBytes
// covers a Kafka poll's worth of a long string column (10,000 records of
// 800 bytes): below that the column's buffer was reallocated and copied,
// zeroed memory and all, in every poll.
const (
	reserveRows  = 1 << 14
	reserveBytes = 8 << 20
)

// NewRecord returns the rows appended so far as a record batch of the
// decoder's schema and resets the builder. The caller releases the record.
//
// The Arrow builders start the next record with the capacity this one
// needed (values and, for strings and binaries, their bytes; up to
// reserveRows and reserveBytes), so that records of similar size do not
// regrow and copy their buffers from scratch.
func (b *Builder) NewRecord() arrow.RecordBatch {
	rows := b.rows
	b.rows = 0
	if cap(b.sizes) < len(b.slots) {
		b.sizes = make([][2]int, len(b.slots))
		b.perRow = make([][2]float64, len(b.slots))
	}
	sizes := b.sizes[:len(b.slots)]
	for i, s := range b.slots {
		var vals, bytes int
		if s.b != nil {
			vals = s.b.Len()
		}
		if s.bin != nil {
			bytes = s.bin.DataLen()
		}
		sizes[i] = [2]int{min(vals, reserveRows), min(bytes, reserveBytes)}
		if rows > 0 {
			b.perRow[i] = [2]float64{float64(vals) / float64(rows), float64(bytes) / float64(rows)}
		}
	}
	rec := b.rb.NewRecordBatch()
	if b.deferred {
		return rec
	}
	for i, s := range b.slots {
		if sizes[i][0] > 0 {
			s.b.Reserve(sizes[i][0])
		}
		if sizes[i][1] > 0 {
			s.bin.ReserveData(sizes[i][1])
		}
	}
	return rec
}

// DeferReserve makes NewRecord leave the next record's capacity to
// ReserveRows, for a caller that knows how many rows come next (a Kafka
// poll's records): reserving for the last record's rows either wastes
// capacity or regrows — and copies — the buffers when the count varies.
func (b *Builder) DeferReserve() { b.deferred = true }

// reserveSlack is the room ReserveRows adds for rows larger than the last
// record's average; maxAheadRows and maxAheadBytes cap what it reserves
// per column (values, and bytes of a string or binary column), so that a
// record of a few huge rows does not make it reserve their size many
// times over.
const (
	reserveSlack  = 1.0625
	maxAheadRows  = 1 << 16
	maxAheadBytes = 32 << 20
)

// ReserveRows makes room for about n more rows, sized by the last
// record's values and bytes per row (nothing before the first record).
func (b *Builder) ReserveRows(n int) {
	if n <= 0 {
		return
	}
	for i, s := range b.slots {
		if s.b == nil || i >= len(b.perRow) {
			continue
		}
		pr := b.perRow[i]
		if v := min(pr[0]*float64(n)*reserveSlack, maxAheadRows); v >= 1 {
			s.b.Reserve(int(v))
		}
		if d := min(pr[1]*float64(n)*reserveSlack, maxAheadBytes); d >= 1 && s.bin != nil {
			s.bin.ReserveData(int(d))
		}
	}
}

// Release frees the builder's memory. The builder must not be used after.
func (b *Builder) Release() {
	b.rb.Release()
}

// Append decodes raw, which must be one JSON object, and appends it as one
// row. On error nothing is appended and the error describes the problem.
func (b *Builder) Append(raw []byte) error {
	b.resetRecord()
	if !b.slowOnly && b.fastAppend(raw) {
		b.apply()
		b.rows++
		b.fastRows++
		return nil
	}
	b.resetRecord()
	root, err := b.p.parseDocument(raw)
	if err != nil {
		return err
	}
	if k := b.p.nodes[root].kind; k != jObject {
		return fmt.Errorf("expected a JSON object, got %s", k)
	}
	if err := b.members(b.dec.root, root); err != nil {
		return err
	}
	b.apply()
	b.rows++
	return nil
}

// resetRecord empties the per-record state.
func (b *Builder) resetRecord() {
	b.ops = b.ops[:0]
	b.bin = b.bin[:0]
	b.seen = b.seen[:0]
	b.path = b.path[:0]
}

// members stages the fields of struct plan p from object node n.
func (b *Builder) members(p *plan, n int32) error {
	base := len(b.seen)
	for range p.fields {
		b.seen = append(b.seen, -1)
	}
	next := 0 // the field after the last one matched: members usually come in schema order
	for c := b.p.nodes[n].first; c >= 0; c = b.p.nodes[c].next {
		k := b.p.key(&b.p.nodes[c])
		i, ok := next, next < len(p.fields) && !p.dupNames && p.fields[next].name == string(k)
		if !ok {
			i, ok = p.index[string(k)]
		}
		if !ok {
			if b.dec.opts.RejectUnknown {
				return b.errorf("unknown field %s", strconv.Quote(b.pathString(string(k))))
			}
			continue
		}
		next = i + 1
		b.seen[base+i] = c
	}
	for i, f := range p.fields {
		c := b.seen[base+i]
		b.path = append(b.path, pathElem{name: f.name, key: -1})
		if c < 0 {
			if !f.nullable {
				return fmt.Errorf("missing required field %s", strconv.Quote(b.pathString("")))
			}
			b.ops = append(b.ops, op{id: f.id, null: true})
		} else if err := b.value(f, c); err != nil {
			return err
		}
		b.path = b.path[:len(b.path)-1]
	}
	b.seen = b.seen[:base]
	return nil
}

// value stages node n for plan p.
func (b *Builder) value(p *plan, n int32) error {
	nd := &b.p.nodes[n]
	if nd.kind == jNull {
		if !p.nullable {
			return b.errorf("null for a required field")
		}
		b.ops = append(b.ops, op{id: p.id, null: true})
		return nil
	}
	switch p.kind {
	case kStruct:
		if nd.kind != jObject {
			return b.mismatch(p, nd)
		}
		b.ops = append(b.ops, op{id: p.id})
		return b.members(p, n)
	case kList:
		if nd.kind != jArray {
			return b.mismatch(p, nd)
		}
		b.ops = append(b.ops, op{id: p.id})
		i := 0
		for c := nd.first; c >= 0; c = b.p.nodes[c].next {
			b.path = append(b.path, pathElem{index: i, key: -1})
			if err := b.value(p.elem, c); err != nil {
				return err
			}
			b.path = b.path[:len(b.path)-1]
			i++
		}
		return nil
	case kMap:
		if nd.kind != jObject {
			return b.mismatch(p, nd)
		}
		b.ops = append(b.ops, op{id: p.id})
		for c := nd.first; c >= 0; c = b.p.nodes[c].next {
			cn := &b.p.nodes[c]
			b.path = append(b.path, pathElem{key: c})
			k := b.p.key(cn)
			if !utf8.Valid(k) {
				return b.errorf("invalid UTF-8 in map key")
			}
			ko := op{id: p.key.id, off: cn.keyStart, end: cn.keyEnd}
			if cn.keyEsc {
				ko.src = srcScratch
			}
			b.ops = append(b.ops, ko)
			if err := b.value(p.value, c); err != nil {
				return err
			}
			b.path = b.path[:len(b.path)-1]
		}
		return nil
	}
	b.ops = append(b.ops, op{id: p.id})
	if err := b.scalar(p, nd, &b.ops[len(b.ops)-1]); err != nil {
		b.ops = b.ops[:len(b.ops)-1]
		return err
	}
	return nil
}

// scalar converts the non-null value nd for plan p of a scalar kind (not
// a struct, list or map) into o, which holds p's id and zeros (it is
// filled in place, not returned: the op is large and this is the hottest
// call of decoding).
func (b *Builder) scalar(p *plan, nd *jnode, o *op) error {
	switch p.kind {
	case kBool:
		switch nd.kind {
		case jTrue:
			o.i = 1
		case jFalse:
		default:
			return b.mismatch(p, nd)
		}
	case kInt:
		s, err := b.numberText(p, nd)
		if err != nil {
			return err
		}
		if o.i, err = parseInt(s, p.minInt, p.maxInt); err != nil {
			return b.badValue(p, s, err)
		}
	case kFloat32, kFloat64:
		s, err := b.numberText(p, nd)
		if err != nil {
			return err
		}
		size := 64
		if p.kind == kFloat32 {
			size = 32
		}
		if o.f, err = strconv.ParseFloat(string(s), size); err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return b.badValue(p, s, errOutOfRange)
			}
			return b.badValue(p, s, errNotNumber)
		}
	case kString:
		switch nd.kind {
		case jString:
			s := b.p.text(nd)
			if !utf8.Valid(s) {
				return b.errorf("invalid UTF-8 in string")
			}
			o.off, o.end = nd.start, nd.end
			if nd.esc {
				o.src = srcScratch
			}
		case jObject, jArray:
			if !b.dec.opts.RawJSONStrings {
				return b.mismatch(p, nd)
			}
			if !utf8.Valid(b.p.data[nd.start:nd.end]) {
				return b.errorf("invalid UTF-8 in string")
			}
			o.off, o.end = nd.start, nd.end
		default:
			return b.mismatch(p, nd)
		}
	case kBinary, kFixed:
		if nd.kind != jString {
			return b.mismatch(p, nd)
		}
		s := b.p.text(nd)
		off, err := b.decodeBase64(s)
		if err != nil {
			return b.badValue(p, s, err)
		}
		if got := len(b.bin) - off; p.kind == kFixed && got != p.width {
			return b.errorf("invalid %s: %d bytes, want %d", p.typeName, got, p.width)
		}
		o.src, o.off, o.end = srcBin, int32(off), int32(len(b.bin))
	case kUUID:
		if nd.kind != jString {
			return b.mismatch(p, nd)
		}
		s := b.p.text(nd)
		if err := parseUUID(s, &b.uuidb); err != nil {
			return b.badValue(p, s, err)
		}
		off := len(b.bin)
		b.bin = append(b.bin, b.uuidb[:]...)
		o.src, o.off, o.end = srcBin, int32(off), int32(len(b.bin))
	case kDate:
		if nd.kind != jString {
			return b.mismatch(p, nd)
		}
		s := b.p.text(nd)
		d, err := parseDate(s)
		if err != nil {
			return b.badValue(p, s, err)
		}
		o.i = int64(d)
	case kTime:
		if nd.kind != jString {
			return b.mismatch(p, nd)
		}
		s := b.p.text(nd)
		ns, err := parseTime(s)
		if err != nil {
			return b.badValue(p, s, err)
		}
		o.i = ns / (1e9 / p.perSec)
	case kTimestamp:
		var err error
		switch nd.kind {
		case jString:
			s := b.p.text(nd)
			sec, nsec, perr := parseTimestamp(s, p.zoned)
			if perr == nil {
				o.i, perr = toUnit(sec, nsec, p.perSec)
			}
			if perr != nil {
				return b.badValue(p, s, perr)
			}
		case jNumber:
			s := b.p.text(nd)
			var v int64
			if v, err = parseInt(s, math.MinInt64, math.MaxInt64); err == nil {
				if v, err = epochToMicros(v); err == nil {
					o.i, err = microsToUnit(v, p.perSec)
				}
			}
			if err != nil {
				return b.badValue(p, s, err)
			}
		default:
			return b.mismatch(p, nd)
		}
	case kDecimal:
		if nd.kind != jNumber && nd.kind != jString {
			return b.mismatch(p, nd)
		}
		s := b.p.text(nd)
		neg, mag, err := parseDecimal(s, p.prec, p.scale)
		if err != nil {
			return b.badValue(p, s, err)
		}
		n := decimal128.New(int64(mag.hi), mag.lo)
		if neg {
			n = n.Negate()
		}
		o.hi, o.i = n.HighBits(), int64(n.LowBits())
	}
	return nil
}

// numberText returns the text of a number, or of a string holding one when
// QuotedNumbers allows it.
func (b *Builder) numberText(p *plan, nd *jnode) ([]byte, error) {
	switch {
	case nd.kind == jNumber:
		return b.p.text(nd), nil
	case nd.kind == jString && b.dec.opts.QuotedNumbers:
		return b.p.text(nd), nil
	}
	return nil, b.mismatch(p, nd)
}

// decodeBase64 decodes s into b.bin and returns where it starts.
func (b *Builder) decodeBase64(s []byte) (int, error) {
	enc := base64.StdEncoding
	for _, c := range s {
		if c == '-' || c == '_' {
			enc = base64.URLEncoding
			break
		}
	}
	if len(s)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	off := len(b.bin)
	need := enc.DecodedLen(len(s))
	b.bin = append(b.bin, make([]byte, need)...)
	n, err := enc.Decode(b.bin[off:], s)
	if err != nil {
		b.bin = b.bin[:off]
		return 0, errBadBase64
	}
	b.bin = b.bin[:off+n]
	return off, nil
}

// apply appends the staged ops. It cannot fail: every op was checked.
func (b *Builder) apply() {
	for i := range b.ops {
		o := &b.ops[i]
		s := &b.slots[o.id]
		if o.null {
			s.b.AppendNull()
			continue
		}
		p := b.dec.plans[o.id]
		switch p.kind {
		case kBool:
			s.b.(*array.BooleanBuilder).Append(o.i != 0)
		case kInt:
			switch x := s.b.(type) {
			case *array.Int64Builder:
				x.Append(o.i)
			case *array.Int32Builder:
				x.Append(int32(o.i))
			case *array.Int16Builder:
				x.Append(int16(o.i))
			case *array.Int8Builder:
				x.Append(int8(o.i))
			}
		case kFloat32:
			s.b.(*array.Float32Builder).Append(float32(o.f))
		case kFloat64:
			s.b.(*array.Float64Builder).Append(o.f)
		case kString, kBinary:
			s.bin.Append(b.bytes(o))
		case kFixed, kUUID:
			s.fsb.Append(b.bytes(o))
		case kDate:
			s.b.(*array.Date32Builder).Append(arrow.Date32(o.i))
		case kTime:
			s.b.(*array.Time64Builder).Append(arrow.Time64(o.i))
		case kTimestamp:
			s.b.(*array.TimestampBuilder).Append(arrow.Timestamp(o.i))
		case kDecimal:
			switch x := s.b.(type) {
			case *array.Decimal128Builder:
				x.Append(decimal128.New(o.hi, uint64(o.i)))
			case *array.Decimal64Builder:
				x.Append(decimal.Decimal64(o.i))
			case *array.Decimal32Builder:
				x.Append(decimal.Decimal32(o.i))
			}
		case kStruct:
			s.b.(*array.StructBuilder).Append(true)
		case kList:
			switch x := s.b.(type) {
			case *array.ListBuilder:
				x.Append(true)
			case *array.LargeListBuilder:
				x.Append(true)
			}
		case kMap:
			s.b.(*array.MapBuilder).Append(true)
		}
	}
}

func (b *Builder) bytes(o *op) []byte {
	switch o.src {
	case srcScratch:
		return b.p.scratch[o.off:o.end]
	case srcBin:
		return b.bin[o.off:o.end]
	default:
		return b.p.data[o.off:o.end]
	}
}

// pathString renders the current path, with leaf appended when not empty.
func (b *Builder) pathString(leaf string) string {
	var sb strings.Builder
	for _, e := range b.path {
		switch {
		case e.name != "":
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(e.name)
		case e.key >= 0:
			sb.WriteByte('[')
			sb.WriteString(strconv.Quote(string(b.p.key(&b.p.nodes[e.key]))))
			sb.WriteByte(']')
		default:
			fmt.Fprintf(&sb, "[%d]", e.index)
		}
	}
	if leaf != "" {
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(leaf)
	}
	return sb.String()
}

// errorf returns an error about the current field.
func (b *Builder) errorf(format string, args ...any) error {
	return fmt.Errorf("field %s: %s", strconv.Quote(b.pathString("")), fmt.Sprintf(format, args...))
}

func (b *Builder) mismatch(p *plan, nd *jnode) error {
	return b.errorf("expected %s, got %s", p.typeName, nd.kind)
}

// badValue reports a value of the right JSON type that does not convert.
func (b *Builder) badValue(p *plan, s []byte, err error) error {
	const maxShown = 64
	shown := string(s)
	if len(shown) > maxShown {
		shown = shown[:maxShown] + "…"
	}
	return b.errorf("invalid %s %s: %v", p.typeName, strconv.Quote(shown), err)
}
