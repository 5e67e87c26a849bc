package aggregate

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// ErrNotRetractable means a deleted source row reached a measure whose
// partial state cannot take it back (min, max, count_distinct,
// approx_count_distinct).
var ErrNotRetractable = errors.New("measure cannot retract deleted rows")

// errBadState is wrapped by every state decoding error.
var errBadState = errors.New("bad aggregate state")

// accumulator holds one measure's partial aggregate for every group of a
// groupTable, indexed by group id. Every operation that combines states
// (update, mergeGroup, mergeState) is associative and commutative, so the
// result does not depend on how rows were split into batches or in which
// order partial states were merged; for float and double sums the result
// can differ in the last bits (floating-point addition is not
// associative).
type accumulator interface {
	// grow makes room for groups [0, n).
	grow(n int)
	// update folds the rows of a batch into their groups: row i into
	// group gids[i], skipped when gids[i] < 0, inserted (signs nil or
	// +1) or deleted (-1). c is nil for count of rows.
	update(gids []int32, c *colView, signs []int8, s *scratch) error
	// mergeGroup folds group sg of src (an accumulator of the same
	// measure) into group dst.
	mergeGroup(dst int32, src accumulator, sg int32)
	// appendState appends group g's serialised state.
	appendState(buf []byte, g int32) []byte
	// mergeState folds a serialised state into group g.
	mergeState(g int32, b []byte) error
	// appendValue appends group g's output value to b.
	appendValue(b array.Builder, g int32) error
	// rankValue is group g's output value for ranking.
	rankValue(g int32) scalar
	// rankKind is the kind of rankValue.
	rankKind() valueKind
}

// newAccumulator returns the accumulator of a bound measure.
func newAccumulator(m measurePlan) accumulator {
	switch m.Fn {
	case FnCount:
		return &countAcc{star: m.Column == ""}
	case FnSum, FnAvg:
		return &sumAcc{kind: m.kind, avg: m.Fn == FnAvg, scale: m.scale}
	case FnMin, FnMax:
		return &minMaxAcc{kind: m.kind, max: m.Fn == FnMax}
	case FnCountDistinct, FnNewUsers, FnReturningUsers:
		// new_users and returning_users keep the group's exact set; their
		// values are computed on output against the first-seen windows.
		return newDistinctAcc()
	case FnApproxCountDistinct:
		return newHLLAcc()
	}
	return nil
}

func sign(signs []int8, i int) int64 {
	if signs == nil {
		return 1
	}
	return int64(signs[i])
}

func hasDeletes(signs []int8) bool {
	for _, s := range signs {
		if s < 0 {
			return true
		}
	}
	return false
}

// scalar is one value of a dimension or a ranked measure.
type scalar struct {
	null bool
	i    int64
	f    float64
	d    decimal128.Num
	s    string
	b    bool
}

// compareScalar orders values of one kind, nulls first.
func compareScalar(k valueKind, a, b scalar) int {
	switch {
	case a.null && b.null:
		return 0
	case a.null:
		return -1
	case b.null:
		return 1
	}
	switch k {
	case kInt:
		return cmp.Compare(a.i, b.i)
	case kFloat:
		return cmp.Compare(a.f, b.f)
	case kDecimal:
		return a.d.Cmp(b.d)
	case kBytes:
		return cmp.Compare(a.s, b.s)
	case kBool:
		switch {
		case a.b == b.b:
			return 0
		case !a.b:
			return -1
		}
		return 1
	}
	return 0
}

func wrongBuilder(b array.Builder) error {
	return fmt.Errorf("aggregate: no value writer for Arrow type %s", b.Type())
}

// appendInt appends an integer-like value (int, long, date, timestamp).
func appendInt(b array.Builder, v int64) error {
	switch b := b.(type) {
	case *array.Int64Builder:
		b.Append(v)
	case *array.Int32Builder:
		b.Append(int32(v))
	case *array.Date32Builder:
		b.Append(arrow.Date32(v))
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(v))
	default:
		return wrongBuilder(b)
	}
	return nil
}

func appendFloat(b array.Builder, v float64) error {
	switch b := b.(type) {
	case *array.Float64Builder:
		b.Append(v)
	case *array.Float32Builder:
		b.Append(float32(v))
	default:
		return wrongBuilder(b)
	}
	return nil
}

func appendDecimal(b array.Builder, v decimal128.Num) error {
	db, ok := b.(*array.Decimal128Builder)
	if !ok {
		return wrongBuilder(b)
	}
	db.Append(v)
	return nil
}

func appendBytes(b array.Builder, v string) error {
	switch b := b.(type) {
	case *array.StringBuilder:
		b.Append(v)
	case *array.LargeStringBuilder:
		b.Append(v)
	case *array.BinaryBuilder:
		b.AppendString(v)
	default:
		return wrongBuilder(b)
	}
	return nil
}

func appendBool(b array.Builder, v bool) error {
	bb, ok := b.(*array.BooleanBuilder)
	if !ok {
		return wrongBuilder(b)
	}
	bb.Append(v)
	return nil
}

// appendScalar appends a value of kind k.
func appendScalar(b array.Builder, k valueKind, v scalar) error {
	if v.null {
		b.AppendNull()
		return nil
	}
	switch k {
	case kInt:
		return appendInt(b, v.i)
	case kFloat:
		return appendFloat(b, v.f)
	case kDecimal:
		return appendDecimal(b, v.d)
	case kBytes:
		return appendBytes(b, v.s)
	case kBool:
		return appendBool(b, v.b)
	}
	return wrongBuilder(b)
}

// Fixed-width state parts.

func appendDec(buf []byte, d decimal128.Num) []byte {
	buf = binary.LittleEndian.AppendUint64(buf, d.LowBits())
	return binary.LittleEndian.AppendUint64(buf, uint64(d.HighBits()))
}

func readDec(b []byte) (decimal128.Num, []byte, error) {
	if len(b) < 16 {
		return decimal128.Num{}, nil, fmt.Errorf("%w: truncated decimal", errBadState)
	}
	return decimal128.New(int64(binary.LittleEndian.Uint64(b[8:])), binary.LittleEndian.Uint64(b)), b[16:], nil
}

func readVarint(b []byte) (int64, []byte, error) {
	v, k := binary.Varint(b)
	if k <= 0 {
		return 0, nil, fmt.Errorf("%w: bad varint", errBadState)
	}
	return v, b[k:], nil
}

func readFloat(b []byte) (float64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, fmt.Errorf("%w: truncated double", errBadState)
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b)), b[8:], nil
}

func noTrailing(b []byte) error {
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errBadState, len(b))
	}
	return nil
}

// countAcc counts rows (star) or non-null values. State: varint count.
type countAcc struct {
	star bool
	n    []int64
}

func (a *countAcc) grow(n int) {
	for len(a.n) < n {
		a.n = append(a.n, 0)
	}
}

func (a *countAcc) update(gids []int32, c *colView, signs []int8, _ *scratch) error {
	if a.star || !c.nulls {
		if signs == nil {
			for _, g := range gids {
				if g >= 0 {
					a.n[g]++
				}
			}
			return nil
		}
		for i, g := range gids {
			if g >= 0 {
				a.n[g] += int64(signs[i])
			}
		}
		return nil
	}
	for i, g := range gids {
		if g >= 0 && c.valid(i) {
			a.n[g] += sign(signs, i)
		}
	}
	return nil
}

func (a *countAcc) mergeGroup(dst int32, src accumulator, sg int32) {
	a.n[dst] += src.(*countAcc).n[sg]
}

func (a *countAcc) appendState(buf []byte, g int32) []byte {
	return binary.AppendVarint(buf, a.n[g])
}

func (a *countAcc) mergeState(g int32, b []byte) error {
	v, rest, err := readVarint(b)
	if err != nil {
		return err
	}
	a.n[g] += v
	return noTrailing(rest)
}

func (a *countAcc) appendValue(b array.Builder, g int32) error { return appendInt(b, a.n[g]) }
func (a *countAcc) rankValue(g int32) scalar                   { return scalar{i: a.n[g]} }
func (a *countAcc) rankKind() valueKind                        { return kInt }

// sumAcc is sum or avg: the count of non-null values and their sum, as
// int64, float64 or a 128-bit decimal by the column's kind. State: varint
// count, then the sum (varint, 8-byte double, or 16-byte decimal).
type sumAcc struct {
	kind  valueKind
	avg   bool
	scale int32
	n     []int64
	i     []int64
	f     []float64
	d     []decimal128.Num
}

func (a *sumAcc) grow(n int) {
	for len(a.n) < n {
		a.n = append(a.n, 0)
		switch a.kind {
		case kInt:
			a.i = append(a.i, 0)
		case kFloat:
			a.f = append(a.f, 0)
		case kDecimal:
			a.d = append(a.d, decimal128.Num{})
		}
	}
}

func (a *sumAcc) update(gids []int32, c *colView, signs []int8, _ *scratch) error {
	switch a.kind {
	case kInt:
		for i, g := range gids {
			if g < 0 || !c.valid(i) {
				continue
			}
			s := sign(signs, i)
			a.n[g] += s
			a.i[g] += s * c.ints[i]
		}
	case kFloat:
		for i, g := range gids {
			if g < 0 || !c.valid(i) {
				continue
			}
			s := sign(signs, i)
			a.n[g] += s
			a.f[g] += float64(s) * c.floats[i]
		}
	case kDecimal:
		for i, g := range gids {
			if g < 0 || !c.valid(i) {
				continue
			}
			if s := sign(signs, i); s > 0 {
				a.n[g]++
				a.d[g] = a.d[g].Add(c.decs[i])
			} else {
				a.n[g]--
				a.d[g] = a.d[g].Sub(c.decs[i])
			}
		}
	}
	return nil
}

func (a *sumAcc) mergeGroup(dst int32, src accumulator, sg int32) {
	o := src.(*sumAcc)
	a.n[dst] += o.n[sg]
	switch a.kind {
	case kInt:
		a.i[dst] += o.i[sg]
	case kFloat:
		a.f[dst] += o.f[sg]
	case kDecimal:
		a.d[dst] = a.d[dst].Add(o.d[sg])
	}
}

func (a *sumAcc) appendState(buf []byte, g int32) []byte {
	buf = binary.AppendVarint(buf, a.n[g])
	switch a.kind {
	case kInt:
		buf = binary.AppendVarint(buf, a.i[g])
	case kFloat:
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(a.f[g]))
	case kDecimal:
		buf = appendDec(buf, a.d[g])
	}
	return buf
}

func (a *sumAcc) mergeState(g int32, b []byte) error {
	n, b, err := readVarint(b)
	if err != nil {
		return err
	}
	switch a.kind {
	case kInt:
		var v int64
		if v, b, err = readVarint(b); err != nil {
			return err
		}
		a.i[g] += v
	case kFloat:
		var v float64
		if v, b, err = readFloat(b); err != nil {
			return err
		}
		a.f[g] += v
	case kDecimal:
		var v decimal128.Num
		if v, b, err = readDec(b); err != nil {
			return err
		}
		a.d[g] = a.d[g].Add(v)
	}
	a.n[g] += n
	return noTrailing(b)
}

func (a *sumAcc) mean(g int32) float64 {
	n := float64(a.n[g])
	switch a.kind {
	case kInt:
		return float64(a.i[g]) / n
	case kFloat:
		return a.f[g] / n
	}
	return a.d[g].ToFloat64(a.scale) / n
}

func (a *sumAcc) appendValue(b array.Builder, g int32) error {
	if a.n[g] <= 0 {
		b.AppendNull()
		return nil
	}
	if a.avg {
		return appendFloat(b, a.mean(g))
	}
	switch a.kind {
	case kInt:
		return appendInt(b, a.i[g])
	case kFloat:
		return appendFloat(b, a.f[g])
	}
	return appendDecimal(b, a.d[g])
}

func (a *sumAcc) rankValue(g int32) scalar {
	if a.n[g] <= 0 {
		return scalar{null: true}
	}
	if a.avg {
		return scalar{f: a.mean(g)}
	}
	switch a.kind {
	case kInt:
		return scalar{i: a.i[g]}
	case kFloat:
		return scalar{f: a.f[g]}
	}
	return scalar{d: a.d[g]}
}

func (a *sumAcc) rankKind() valueKind {
	if a.avg {
		return kFloat
	}
	return a.kind
}

// minMaxAcc keeps the least (or greatest) non-null value. State: a
// presence byte, then the value (varint, 8-byte double, 16-byte decimal,
// or uvarint length and bytes).
type minMaxAcc struct {
	kind valueKind
	max  bool
	has  []bool
	i    []int64
	f    []float64
	d    []decimal128.Num
	s    []string
}

func (a *minMaxAcc) grow(n int) {
	for len(a.has) < n {
		a.has = append(a.has, false)
		switch a.kind {
		case kInt:
			a.i = append(a.i, 0)
		case kFloat:
			a.f = append(a.f, 0)
		case kDecimal:
			a.d = append(a.d, decimal128.Num{})
		case kBytes:
			a.s = append(a.s, "")
		}
	}
}

// better reports whether c (compared with the current value) replaces it.
func (a *minMaxAcc) better(c int) bool {
	if a.max {
		return c > 0
	}
	return c < 0
}

func (a *minMaxAcc) update(gids []int32, c *colView, signs []int8, _ *scratch) error {
	if hasDeletes(signs) {
		return ErrNotRetractable
	}
	for i, g := range gids {
		if g < 0 || !c.valid(i) {
			continue
		}
		switch a.kind {
		case kInt:
			if v := c.ints[i]; !a.has[g] || a.better(cmp.Compare(v, a.i[g])) {
				a.i[g] = v
			}
		case kFloat:
			if v := c.floats[i]; !a.has[g] || a.better(cmp.Compare(v, a.f[g])) {
				a.f[g] = v
			}
		case kDecimal:
			if v := c.decs[i]; !a.has[g] || a.better(v.Cmp(a.d[g])) {
				a.d[g] = v
			}
		case kBytes:
			if v := c.bytesAt(i); !a.has[g] || a.better(cmp.Compare(string(v), a.s[g])) {
				a.s[g] = string(v)
			}
		}
		a.has[g] = true
	}
	return nil
}

func (a *minMaxAcc) take(dst int32, v scalar) {
	var c int
	if a.has[dst] {
		switch a.kind {
		case kInt:
			c = cmp.Compare(v.i, a.i[dst])
		case kFloat:
			c = cmp.Compare(v.f, a.f[dst])
		case kDecimal:
			c = v.d.Cmp(a.d[dst])
		case kBytes:
			c = cmp.Compare(v.s, a.s[dst])
		}
		if !a.better(c) {
			return
		}
	}
	a.has[dst] = true
	switch a.kind {
	case kInt:
		a.i[dst] = v.i
	case kFloat:
		a.f[dst] = v.f
	case kDecimal:
		a.d[dst] = v.d
	case kBytes:
		a.s[dst] = v.s
	}
}

func (a *minMaxAcc) value(g int32) scalar {
	if !a.has[g] {
		return scalar{null: true}
	}
	switch a.kind {
	case kInt:
		return scalar{i: a.i[g]}
	case kFloat:
		return scalar{f: a.f[g]}
	case kDecimal:
		return scalar{d: a.d[g]}
	}
	return scalar{s: a.s[g]}
}

func (a *minMaxAcc) mergeGroup(dst int32, src accumulator, sg int32) {
	o := src.(*minMaxAcc)
	if o.has[sg] {
		a.take(dst, o.value(sg))
	}
}

func (a *minMaxAcc) appendState(buf []byte, g int32) []byte {
	if !a.has[g] {
		return append(buf, 0)
	}
	buf = append(buf, 1)
	switch a.kind {
	case kInt:
		buf = binary.AppendVarint(buf, a.i[g])
	case kFloat:
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(a.f[g]))
	case kDecimal:
		buf = appendDec(buf, a.d[g])
	case kBytes:
		buf = binary.AppendUvarint(buf, uint64(len(a.s[g])))
		buf = append(buf, a.s[g]...)
	}
	return buf
}

func (a *minMaxAcc) mergeState(g int32, b []byte) error {
	if len(b) == 0 || b[0] > 1 {
		return fmt.Errorf("%w: min/max presence", errBadState)
	}
	if b[0] == 0 {
		return noTrailing(b[1:])
	}
	b = b[1:]
	var v scalar
	var err error
	switch a.kind {
	case kInt:
		v.i, b, err = readVarint(b)
	case kFloat:
		v.f, b, err = readFloat(b)
	case kDecimal:
		v.d, b, err = readDec(b)
	case kBytes:
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return fmt.Errorf("%w: min/max string length", errBadState)
		}
		v.s = string(b[k : k+int(n)])
		b = b[k+int(n):]
	default:
		return fmt.Errorf("%w: min/max of kind %d", errBadState, a.kind)
	}
	if err != nil {
		return err
	}
	if err := noTrailing(b); err != nil {
		return err
	}
	a.take(g, v)
	return nil
}

func (a *minMaxAcc) appendValue(b array.Builder, g int32) error {
	return appendScalar(b, a.kind, a.value(g))
}

func (a *minMaxAcc) rankValue(g int32) scalar { return a.value(g) }
func (a *minMaxAcc) rankKind() valueKind      { return a.kind }

// sketch is what a distinct-count measure keeps per group, fed the 64-bit
// xxhash values of the group's values: the exact set (hashSet) or a
// HyperLogLog sketch (hll).
type sketch[S any] interface {
	*S
	add(h uint64)
	merge(o *S)
	appendEncoded(buf []byte) []byte
	encodedBound() int
	cardinality() int64
	empty() bool
}

// distinctAcc counts distinct values per group with a sketch, made on the
// group's first value. State: the sketch's encoding; a group without one
// is a single 0 byte.
type distinctAcc[S any, P sketch[S]] struct {
	groups []P
	decode func([]byte) (P, error)
}

// newDistinctAcc returns the exact count-distinct accumulator.
func newDistinctAcc() accumulator { return &distinctAcc[hashSet, *hashSet]{decode: decodeHashSet} }

// newHLLAcc returns the approximate count-distinct accumulator.
func newHLLAcc() accumulator { return &distinctAcc[hll, *hll]{decode: decodeHLL} }

func (a *distinctAcc[S, P]) grow(n int) {
	for len(a.groups) < n {
		a.groups = append(a.groups, nil)
	}
}

func (a *distinctAcc[S, P]) sketch(g int32) P {
	s := a.groups[g]
	if s == nil {
		s = new(S)
		a.groups[g] = s
	}
	return s
}

func (a *distinctAcc[S, P]) update(gids []int32, c *colView, signs []int8, s *scratch) error {
	if hasDeletes(signs) {
		return ErrNotRetractable
	}
	hs := c.hashAll(s)
	for i, g := range gids {
		if g >= 0 && c.valid(i) {
			a.sketch(g).add(hs[i])
		}
	}
	return nil
}

func (a *distinctAcc[S, P]) mergeGroup(dst int32, src accumulator, sg int32) {
	if o := src.(*distinctAcc[S, P]).groups[sg]; o != nil {
		a.sketch(dst).merge(o)
	}
}

func (a *distinctAcc[S, P]) appendState(buf []byte, g int32) []byte {
	if a.groups[g] == nil {
		return append(buf, 0)
	}
	return a.groups[g].appendEncoded(buf)
}

func (a *distinctAcc[S, P]) stateBound(g int32) int {
	if a.groups[g] == nil {
		return 1
	}
	return a.groups[g].encodedBound()
}

func (a *distinctAcc[S, P]) mergeState(g int32, b []byte) error {
	if bytes.Equal(b, []byte{0}) {
		return nil
	}
	s, err := a.decode(b)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadState, err)
	}
	if s.empty() {
		return nil
	}
	if a.groups[g] == nil {
		a.groups[g] = s
		return nil
	}
	a.groups[g].merge((*S)(s))
	return nil
}

func (a *distinctAcc[S, P]) count(g int32) int64 {
	if a.groups[g] == nil {
		return 0
	}
	return a.groups[g].cardinality()
}

func (a *distinctAcc[S, P]) appendValue(b array.Builder, g int32) error {
	return appendInt(b, a.count(g))
}
func (a *distinctAcc[S, P]) rankValue(g int32) scalar { return scalar{i: a.count(g)} }
func (a *distinctAcc[S, P]) rankKind() valueKind      { return kInt }
