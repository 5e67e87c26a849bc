package mysql

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// vkind is the representation of a decoded MySQL value.
type vkind uint8

const (
	vNull  vkind = iota
	vInt         // i
	vUint        // u
	vFloat       // f
	vStr         // s: characters, bytes, or text to parse (decimals, temporals)
	vBytes       // b
)

// value is one decoded MySQL value, before conversion to its column's
// Arrow type. Decoding and converting a whole row before appending any of
// it lets a bad row go to the dead letters without a half-appended row.
type value struct {
	k vkind
	i int64
	u uint64
	f float64
	s string
	b []byte
	// After prepare: the value in the column's representation.
	pi   int64 // ints, dates (days), times and timestamps (micros)
	pf   float64
	pdec decimal128.Num
}

// str is the value's text. For bytes it is a view of them, not a copy:
// it is read (parsed, appended to a builder) and never kept.
func (v *value) str() string {
	if v.k == vStr {
		return v.s
	}
	return unsafe.String(unsafe.SliceData(v.b), len(v.b))
}

// target is a column of a table's Arrow schema.
type target struct {
	name     string
	typ      arrow.DataType
	id       arrow.Type // typ.ID(), read once
	nullable bool
	scale    int32
	prec     int32
}

func targetsOf(sc *arrow.Schema) []target {
	out := make([]target, sc.NumFields())
	for i, f := range sc.Fields() {
		t := target{name: f.Name, typ: f.Type, id: f.Type.ID(), nullable: f.Nullable}
		if d, ok := f.Type.(*arrow.Decimal128Type); ok {
			t.prec, t.scale = d.Precision, d.Scale
		}
		out[i] = t
	}
	return out
}

var errNull = errors.New("NULL in a NOT NULL column")

// prepare converts v to t's representation, or says why it cannot.
func prepare(v *value, t *target) error {
	if v.k == vNull {
		if !t.nullable {
			return errNull
		}
		return nil
	}
	switch t.id {
	case arrow.INT32:
		n, err := v.asInt()
		if err != nil {
			return err
		}
		if n < math.MinInt32 || n > math.MaxInt32 {
			return fmt.Errorf("%d does not fit an int", n)
		}
		v.pi = n
	case arrow.INT64:
		n, err := v.asInt()
		if err != nil {
			return err
		}
		v.pi = n
	case arrow.FLOAT32, arrow.FLOAT64:
		switch v.k {
		case vFloat:
			v.pf = v.f
		case vInt:
			v.pf = float64(v.i)
		case vUint:
			v.pf = float64(v.u)
		default:
			f, err := strconv.ParseFloat(strings.TrimSpace(v.str()), 64)
			if err != nil {
				return fmt.Errorf("not a number: %q", v.str())
			}
			v.pf = f
		}
	case arrow.DECIMAL128:
		var err error
		switch v.k {
		case vInt:
			v.pdec, err = scaleDecimal(decimal128.FromI64(v.i), 0, t)
		case vUint:
			v.pdec, err = scaleDecimal(decimal128.FromU64(v.u), 0, t)
		default:
			v.pdec, err = parseDecimal(v.str(), t)
		}
		if err != nil {
			return err
		}
	case arrow.STRING, arrow.LARGE_STRING:
		switch v.k {
		case vInt:
			v.s, v.k = strconv.FormatInt(v.i, 10), vStr
		case vUint:
			v.s, v.k = strconv.FormatUint(v.u, 10), vStr
		case vFloat:
			v.s, v.k = strconv.FormatFloat(v.f, 'g', -1, 64), vStr
		}
	case arrow.BINARY, arrow.LARGE_BINARY:
		if v.k != vStr && v.k != vBytes {
			return fmt.Errorf("a %s value for a binary column", t.typ)
		}
	case arrow.DATE32:
		d, err := parseDate(v.str())
		if err != nil {
			return err
		}
		v.pi = int64(d)
	case arrow.TIME64:
		us, err := parseTime(v.str())
		if err != nil {
			return err
		}
		v.pi = us
	case arrow.TIMESTAMP:
		us, err := parseDatetime(v.str())
		if err != nil {
			return err
		}
		v.pi = us
	case arrow.BOOL:
		n, err := v.asInt()
		if err != nil {
			return err
		}
		v.pi = n
	default:
		return fmt.Errorf("column type %s is not supported", t.typ)
	}
	return nil
}

func (v *value) asInt() (int64, error) {
	switch v.k {
	case vInt:
		return v.i, nil
	case vUint:
		if v.u > math.MaxInt64 {
			return 0, fmt.Errorf("%d does not fit a long", v.u)
		}
		return int64(v.u), nil
	case vFloat:
		return 0, fmt.Errorf("a float value %v for an integer column", v.f)
	}
	s := strings.TrimSpace(v.str())
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an integer: %q", s)
	}
	return n, nil
}

// appendValue appends a prepared value.
func appendValue(b array.Builder, v *value) {
	if v.k == vNull {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.Int32Builder:
		b.Append(int32(v.pi))
	case *array.Int64Builder:
		b.Append(v.pi)
	case *array.Float32Builder:
		b.Append(float32(v.pf))
	case *array.Float64Builder:
		b.Append(v.pf)
	case *array.Decimal128Builder:
		b.Append(v.pdec)
	case *array.StringBuilder:
		if v.k == vBytes {
			b.BinaryBuilder.Append(v.b)
		} else {
			b.Append(v.s)
		}
	case *array.LargeStringBuilder:
		b.Append(v.str())
	case *array.BinaryBuilder:
		if v.k == vBytes {
			b.Append(v.b)
		} else {
			b.AppendString(v.s)
		}
	case *array.Date32Builder:
		b.Append(arrow.Date32(v.pi))
	case *array.Time64Builder:
		b.Append(arrow.Time64(v.pi))
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(v.pi))
	case *array.BooleanBuilder:
		b.Append(v.pi != 0)
	default:
		b.AppendNull()
	}
}

var pow10 = func() [39]decimal128.Num {
	var p [39]decimal128.Num
	p[0] = decimal128.FromU64(1)
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1].Mul(decimal128.FromU64(10))
	}
	return p
}()

// scaleDecimal rescales n (with scale from) to t's scale and checks its
// precision.
func scaleDecimal(n decimal128.Num, from int32, t *target) (decimal128.Num, error) {
	if t.scale > from {
		n = n.Mul(pow10[t.scale-from])
	} else if t.scale < from {
		q, r := n.Div(pow10[from-t.scale])
		if r != (decimal128.Num{}) {
			return n, fmt.Errorf("decimal has more than %d fraction digits", t.scale)
		}
		n = q
	}
	if !n.FitsInPrecision(t.prec) {
		return n, fmt.Errorf("decimal does not fit decimal(%d,%d)", t.prec, t.scale)
	}
	return n, nil
}

// parseDecimal parses MySQL's text form of a decimal ("-12.30").
func parseDecimal(s string, t *target) (decimal128.Num, error) {
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" && frac == "" {
		return decimal128.Num{}, fmt.Errorf("not a decimal: %q", s)
	}
	for _, part := range [2]string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return decimal128.Num{}, fmt.Errorf("not a decimal: %q", s)
			}
		}
	}
	var n decimal128.Num
	if len(intPart)+len(frac) <= 18 {
		// The common case, without building the digits' string.
		var u uint64
		for _, part := range [2]string{intPart, frac} {
			for i := 0; i < len(part); i++ {
				u = u*10 + uint64(part[i]-'0')
			}
		}
		n = decimal128.FromU64(u)
	} else {
		digits := strings.TrimLeft(intPart+frac, "0")
		if len(digits) <= 18 {
			var u uint64
			for i := 0; i < len(digits); i++ {
				u = u*10 + uint64(digits[i]-'0')
			}
			n = decimal128.FromU64(u)
		} else {
			bi, ok := new(big.Int).SetString(digits, 10)
			if !ok || bi.BitLen() > 126 {
				return decimal128.Num{}, fmt.Errorf("decimal %q is too large", s)
			}
			n = decimal128.FromBigInt(bi)
		}
	}
	if neg {
		n = n.Negate()
	}
	return scaleDecimal(n, int32(len(frac)), t)
}

func atoi(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysFromCivil is the days since 1970-01-01 of a proleptic Gregorian date.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// parseDate parses YYYY-MM-DD; zero or partial dates are errors.
func parseDate(s string) (int32, error) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, fmt.Errorf("not a date: %q", s)
	}
	y, ok1 := atoi(s[:4])
	m, ok2 := atoi(s[5:7])
	d, ok3 := atoi(s[8:10])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, fmt.Errorf("date %q cannot be represented (zero or invalid date)", s)
	}
	return int32(daysFromCivil(y, m, d)), nil
}

// parseFraction parses up to 6 fraction digits as microseconds.
func parseFraction(f string) (int64, bool) {
	if len(f) == 0 || len(f) > 6 {
		return 0, len(f) == 0
	}
	n, ok := atoi(f)
	if !ok {
		return 0, false
	}
	for i := len(f); i < 6; i++ {
		n *= 10
	}
	return int64(n), true
}

// parseDatetime parses YYYY-MM-DD HH:MM:SS[.ffffff] as microseconds since
// the epoch, reading the wall clock as UTC.
func parseDatetime(s string) (int64, error) {
	if len(s) < 19 || s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return 0, fmt.Errorf("not a datetime: %q", s)
	}
	days, err := parseDate(s[:10])
	if err != nil {
		return 0, err
	}
	h, ok1 := atoi(s[11:13])
	mi, ok2 := atoi(s[14:16])
	se, ok3 := atoi(s[17:19])
	var us int64
	ok4 := true
	if len(s) > 19 {
		if s[19] != '.' {
			return 0, fmt.Errorf("not a datetime: %q", s)
		}
		us, ok4 = parseFraction(s[20:])
	}
	if !ok1 || !ok2 || !ok3 || !ok4 || h > 23 || mi > 59 || se > 59 {
		return 0, fmt.Errorf("not a datetime: %q", s)
	}
	return (int64(days)*86400+int64(h*3600+mi*60+se))*1_000_000 + us, nil
}

// parseTime parses MySQL's TIME ([-]H+:MM:SS[.ffffff]) as microseconds
// since midnight. Iceberg's time is a time of day: negative values and
// values of 24 hours or more cannot be represented.
func parseTime(s string) (int64, error) {
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("TIME %q is negative; Iceberg's time holds a time of day", s)
	}
	hms, frac, _ := strings.Cut(s, ".")
	parts := strings.Split(hms, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("not a time: %q", s)
	}
	h, ok1 := atoi(parts[0])
	mi, ok2 := atoi(parts[1])
	se, ok3 := atoi(parts[2])
	us, ok4 := parseFraction(frac)
	if !ok1 || !ok2 || !ok3 || !ok4 || mi > 59 || se > 59 {
		return 0, fmt.Errorf("not a time: %q", s)
	}
	if h > 23 {
		return 0, fmt.Errorf("TIME %q is 24 hours or more; Iceberg's time holds a time of day", s)
	}
	return int64(h*3600+mi*60+se)*1_000_000 + us, nil
}
