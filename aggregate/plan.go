package aggregate

import (
	"fmt"
	"slices"
	"time"

	"github.com/apache/iceberg-go"

	"github.com/floe-lake/floe/table"
)

// valueKind is how a column's values are held while aggregating.
type valueKind uint8

const (
	// kInt: int, long, date, timestamp, timestamptz, as int64 in the
	// column's own unit.
	kInt valueKind = iota
	kFloat
	kDecimal
	// kBytes: string and binary.
	kBytes
	kBool
)

// kindOf classifies a primitive type; ok is false for types aggregation
// does not support (time, uuid, fixed, nanosecond timestamps, nested).
func kindOf(t iceberg.Type) (valueKind, bool) {
	switch t.(type) {
	case iceberg.Int32Type, iceberg.Int64Type, iceberg.DateType, iceberg.TimestampType, iceberg.TimestampTzType:
		return kInt, true
	case iceberg.Float32Type, iceberg.Float64Type:
		return kFloat, true
	case iceberg.DecimalType:
		return kDecimal, true
	case iceberg.StringType, iceberg.BinaryType:
		return kBytes, true
	case iceberg.BooleanType:
		return kBool, true
	}
	return 0, false
}

// dimPlan is one bound dimension.
type dimPlan struct {
	name string
	typ  iceberg.Type
	kind valueKind
}

// measurePlan is one bound measure.
type measurePlan struct {
	Measure
	// srcType is the column's type (nil for count of rows).
	srcType iceberg.Type
	kind    valueKind
	scale   int32
	outType iceberg.Type
}

// plan is a spec bound to its source table's schema.
type plan struct {
	spec Spec
	// Window geometry in microseconds.
	size, slide, unit int64
	nWin              int
	dims              []dimPlan
	measures          []measurePlan
	// topBy is the index of the ranking measure, -1 without Top; within
	// the indexes of the Within dimensions.
	topBy  int
	within []int
	// columns are the source columns read: time, dimensions, measures.
	columns []string
	// retractable: every measure can take back deleted rows.
	retractable bool
	// grid places the window starts (see Window).
	grid grid
	// step (µs) of a cumulative window; 0 otherwise.
	step int64
	// loc is the zone of the local columns; nil for UTC.
	loc *time.Location
	// firstSeen lists, per measure, the index of its column among
	// fsCols (-1 for measures that are not new_users/returning_users);
	// fsCols are the columns whose first-seen windows are tracked.
	firstSeen []int
	fsCols    []string
	// emptyState is the state of a group without rows: the _state of a
	// cumulative window's step that has no rows of its own.
	emptyState []byte
	// proj is a SQL spec's pre-projection (sql.go); nil for YAML specs.
	proj *projection
}

// cumulative reports whether the window is cumulative.
func (p *plan) cumulative() bool { return p.step > 0 }

// hasFirstSeen reports whether a measure counts new or returning users.
func (p *plan) hasFirstSeen() bool { return len(p.fsCols) > 0 }

// bind checks the spec's columns against the source schema.
func bind(s Spec, src *iceberg.Schema) (*plan, error) {
	p := &plan{
		spec:        s,
		size:        s.Window.Size.D().Microseconds(),
		slide:       s.slideOrSize().Microseconds(),
		unit:        s.PartitionUnit().Microseconds(),
		topBy:       -1,
		retractable: s.Retractable(),
	}
	p.nWin = int(p.size / p.slide)
	p.step = s.Window.Step.D().Microseconds()
	src, err := p.bindSQL(s, src)
	if err != nil {
		return nil, err
	}
	if p.grid, err = newGrid(s.Window.TimeZone, s.slideOrSize()); err != nil {
		return nil, fmt.Errorf("aggregate %s: window.time-zone: %w", s.Name, err)
	}
	p.loc = p.grid.loc
	bad := func(format string, args ...any) error {
		return fmt.Errorf("aggregate %s: %s", s.Name, fmt.Sprintf(format, args...))
	}
	field := func(key, name string) (iceberg.NestedField, error) {
		for _, f := range src.Fields() {
			if f.Name == name {
				return f, nil
			}
		}
		return iceberg.NestedField{}, bad("%s: source %s has no top-level column %q", key, s.Source, name)
	}
	addCol := func(name string) {
		if !slices.Contains(p.columns, name) {
			p.columns = append(p.columns, name)
		}
	}

	tf, err := field("time", s.Time)
	if err != nil {
		return nil, err
	}
	switch tf.Type.(type) {
	case iceberg.TimestampType, iceberg.TimestampTzType:
	default:
		return nil, bad("time: column %q is a %s, not a timestamp or timestamptz", s.Time, tf.Type)
	}
	addCol(s.Time)

	for i, d := range s.Dimensions {
		f, err := field(fmt.Sprintf("dimensions[%d]", i), d)
		if err != nil {
			return nil, err
		}
		k, ok := kindOf(f.Type)
		if !ok {
			return nil, bad("dimensions[%d]: column %q of type %s cannot be a dimension (boolean, int, long, float, double, decimal, date, timestamp, timestamptz, string, binary)", i, d, f.Type)
		}
		p.dims = append(p.dims, dimPlan{name: d, typ: f.Type, kind: k})
		addCol(d)
	}

	for i, m := range s.Measures {
		key := fmt.Sprintf("measures[%d]", i)
		mp := measurePlan{Measure: m}
		fs := -1
		if m.Fn.firstSeen() {
			if fs = slices.Index(p.fsCols, m.Column); fs < 0 {
				fs = len(p.fsCols)
				p.fsCols = append(p.fsCols, m.Column)
			}
		}
		p.firstSeen = append(p.firstSeen, fs)
		if m.Column == "" {
			mp.outType = iceberg.PrimitiveTypes.Int64
			p.measures = append(p.measures, mp)
			continue
		}
		f, err := field(key+".column", m.Column)
		if err != nil {
			return nil, err
		}
		k, ok := kindOf(f.Type)
		if !ok {
			return nil, bad("%s.column: column %q of type %s cannot be aggregated", key, m.Column, f.Type)
		}
		mp.srcType, mp.kind = f.Type, k
		if dt, ok := f.Type.(iceberg.DecimalType); ok {
			mp.scale = int32(dt.Scale())
		}
		numeric := k == kInt || k == kFloat || k == kDecimal
		if _, isDate := f.Type.(iceberg.DateType); isDate {
			numeric = false
		}
		switch f.Type.(type) {
		case iceberg.TimestampType, iceberg.TimestampTzType:
			numeric = false
		}
		switch m.Fn {
		case FnCount, FnCountDistinct, FnApproxCountDistinct, FnNewUsers, FnReturningUsers:
			mp.outType = iceberg.PrimitiveTypes.Int64
		case FnSum:
			if !numeric {
				return nil, bad("%s: sum of column %q of type %s: want int, long, float, double or decimal", key, m.Column, f.Type)
			}
			switch k {
			case kInt:
				mp.outType = iceberg.PrimitiveTypes.Int64
			case kFloat:
				mp.outType = iceberg.PrimitiveTypes.Float64
			case kDecimal:
				mp.outType = iceberg.DecimalTypeOf(38, int(mp.scale))
			}
		case FnAvg:
			if !numeric {
				return nil, bad("%s: avg of column %q of type %s: want int, long, float, double or decimal", key, m.Column, f.Type)
			}
			mp.outType = iceberg.PrimitiveTypes.Float64
		case FnMin, FnMax:
			if k == kBool {
				return nil, bad("%s: %s of boolean column %q is not supported", key, m.Fn, m.Column)
			}
			if _, isBin := f.Type.(iceberg.BinaryType); isBin {
				return nil, bad("%s: %s of binary column %q is not supported", key, m.Fn, m.Column)
			}
			mp.outType = f.Type
		}
		p.measures = append(p.measures, mp)
		addCol(m.Column)
	}

	if t := s.Top; t != nil {
		for i, m := range s.Measures {
			if m.Name == t.By {
				p.topBy = i
			}
		}
		for _, w := range t.Within {
			p.within = append(p.within, slices.Index(s.Dimensions, w))
		}
	}
	if p.proj != nil {
		p.columns = p.proj.sourceColumns
	}
	empty := newGroupTable(p)
	g := empty.lookup(nil)
	empty.sync()
	p.emptyState, _ = empty.appendState(nil, nil, g)
	return p, nil
}

func (p *plan) zoneDoc() string {
	if p.spec.Window.TimeZone == "" {
		return "UTC"
	}
	return p.spec.Window.TimeZone
}

// OutputSpec is the summary table of a spec over a source schema:
// window_start (required) and window_end, the window's local columns (dt,
// hour), the dimensions in their source types, the measures, rank when
// the spec has a Top, and _state,
// partitioned by hour(window_start) for windows up to an hour and by
// day(window_start) for longer ones.
func OutputSpec(s Spec, src *iceberg.Schema) (table.Spec, error) {
	p, err := bind(s, src)
	if err != nil {
		return table.Spec{}, err
	}
	return p.outputSpec(), nil
}

func (p *plan) outputSpec() table.Spec {
	s := p.spec
	fields := []table.Field{
		{Name: ColWindowStart, Type: "timestamptz", Required: true, Doc: "start of the event-time window (inclusive)"},
		{Name: ColWindowEnd, Type: "timestamptz", Doc: "end of the event-time window (exclusive)"},
	}
	for _, c := range s.Window.LocalColumns {
		switch c {
		case ColDate:
			fields = append(fields, table.Field{Name: ColDate, Type: "date", Doc: "local date of window_start in " + p.zoneDoc()})
		case ColHour:
			fields = append(fields, table.Field{Name: ColHour, Type: "int", Doc: "local hour of window_start in " + p.zoneDoc()})
		}
	}
	for _, d := range p.dims {
		f := table.FieldsFromIceberg([]iceberg.NestedField{{Name: d.name, Type: d.typ}})[0]
		f.Doc = "dimension"
		fields = append(fields, f)
	}
	for _, m := range p.measures {
		f := table.FieldsFromIceberg([]iceberg.NestedField{{Name: m.Name, Type: m.outType}})[0]
		f.Doc = string(m.Fn)
		if m.Column != "" {
			f.Doc += "(" + m.Column + ")"
		} else {
			f.Doc += "(*)"
		}
		fields = append(fields, f)
	}
	if s.Top != nil {
		fields = append(fields, table.Field{Name: ColRank, Type: "int", Doc: fmt.Sprintf("rank by %s within the window; top %d: rank <= %d", s.Top.By, s.Top.N, s.Top.N)})
	}
	fields = append(fields, table.Field{Name: ColState, Type: "binary", Doc: "serialised partial aggregates (Floe aggregate state)"})
	transform := "hour"
	if p.unit > time.Hour.Microseconds() {
		transform = "day"
	}
	return table.Spec{
		Name:      s.Output,
		Schema:    fields,
		Partition: []table.PartitionField{{Column: ColWindowStart, Transform: transform}},
		Properties: map[string]string{
			PropFingerprint: s.Fingerprint(),
			PropSpec:        specJSON(s),
			// States of distinct counts are sorted hashes: a dictionary
			// never pays off, and trying one first doubled the write cost.
			"write.parquet.dict-encoding-enabled.column." + ColState: "false",
			// A streaming step rewrites the partitions it touches, states
			// included, which are mostly incompressible hashes: zstd spent
			// a quarter of a step's CPU on them for no gain (snappy gives
			// up on incompressible data quickly).
			"write.parquet.compression-codec": "snappy",
		},
	}
}
