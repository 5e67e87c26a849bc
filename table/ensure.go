package table

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icetable "github.com/apache/iceberg-go/table"
)

// ensureAttempts bounds how often Ensure re-plans a schema change after a
// concurrent commit to the same table.
const ensureAttempts = 5

// Ensure makes the table s describes exist in cat and returns it, loaded
// fresh from the catalog.
//
// A missing namespace (and each missing parent level) is created; a missing
// table is created with the spec's schema, partitioning, sort order and
// properties. When another process creates either first, its creation is
// accepted.
//
// An existing table's current schema is compared with the spec's by column
// name, nested fields included:
//
//   - new optional columns and new optional struct fields are added with
//     fresh ids;
//   - int→long, float→double and decimal precision widening (same scale)
//     are applied, as are required→optional and changed docs;
//   - a spec naming identifier fields that differ from the table's sets
//     them;
//   - a new required column, an optional→required change, any other type
//     change, and changing a map key are errors naming the column;
//   - columns of the table missing from the spec are left alone.
//
// Partitioning, sort order and properties of an existing table are not
// changed. A table that needs no change gets no new metadata.
func Ensure(ctx context.Context, cat icecat.Catalog, s Spec) (*icetable.Table, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	ident, _ := ParseIdent(s.Name) // validated above
	if err := ensureNamespace(ctx, cat, icecat.NamespaceFromIdent(ident)); err != nil {
		return nil, fmt.Errorf("ensure table %s: %w", s.Name, err)
	}

	tbl, err := cat.LoadTable(ctx, ident)
	switch {
	case err == nil:
		return evolve(ctx, cat, ident, tbl, s)
	case !errors.Is(err, icecat.ErrNoSuchTable):
		return nil, fmt.Errorf("load table %s: %w", s.Name, err)
	}

	sc, err := s.IcebergSchema()
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", s.Name, err)
	}
	spec, err := s.IcebergPartitionSpec(sc)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", s.Name, err)
	}
	order, err := s.IcebergSortOrder(sc)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", s.Name, err)
	}
	tbl, err = cat.CreateTable(ctx, ident, sc,
		icecat.WithPartitionSpec(&spec),
		icecat.WithSortOrder(order),
		icecat.WithProperties(s.TableProperties()))
	if err == nil {
		return tbl, nil
	}
	if !errors.Is(err, icecat.ErrTableAlreadyExists) {
		return nil, fmt.Errorf("create table %s: %w", s.Name, err)
	}
	// A concurrent creator won: evolve its table like any existing one.
	tbl, err = cat.LoadTable(ctx, ident)
	if err != nil {
		return nil, fmt.Errorf("load table %s: %w", s.Name, err)
	}
	return evolve(ctx, cat, ident, tbl, s)
}

// ensureNamespace creates ns and each missing parent level.
func ensureNamespace(ctx context.Context, cat icecat.Catalog, ns icetable.Identifier) error {
	for i := 1; i <= len(ns); i++ {
		level := ns[:i]
		name := strings.Join(level, ".")
		ok, err := cat.CheckNamespaceExists(ctx, level)
		if err != nil {
			return fmt.Errorf("check namespace %s: %w", name, err)
		}
		if ok {
			continue
		}
		if err := cat.CreateNamespace(ctx, level, nil); err != nil && !errors.Is(err, icecat.ErrNamespaceAlreadyExists) {
			return fmt.Errorf("create namespace %s: %w", name, err)
		}
	}
	return nil
}

// evolve brings tbl's schema up to the spec's, retrying on commit conflicts
// with a freshly loaded table and a fresh plan.
func evolve(ctx context.Context, cat icecat.Catalog, ident icetable.Identifier, tbl *icetable.Table, s Spec) (*icetable.Table, error) {
	want, err := s.IcebergSchema()
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", s.Name, err)
	}
	for attempt := 1; ; attempt++ {
		plan, err := planEvolution(tbl.Schema(), want)
		if err != nil {
			return nil, fmt.Errorf("evolve table %s: %w", s.Name, incompatibleError{err})
		}
		if plan.empty() {
			return tbl, nil
		}
		err = plan.commit(ctx, tbl)
		if err == nil {
			tbl, err = cat.LoadTable(ctx, ident)
			if err != nil {
				return nil, fmt.Errorf("load table %s: %w", s.Name, err)
			}
			return tbl, nil
		}
		if !IsConflict(err) || attempt >= ensureAttempts {
			return nil, fmt.Errorf("evolve table %s: %w", s.Name, err)
		}
		if tbl, err = cat.LoadTable(ctx, ident); err != nil {
			return nil, fmt.Errorf("load table %s: %w", s.Name, err)
		}
	}
}

// columnAdd is a new optional column or struct field.
type columnAdd struct {
	path  []string
	field iceberg.NestedField
}

// columnUpdate changes an existing column in place.
type columnUpdate struct {
	path   []string
	update icetable.ColumnUpdate
}

// evolution is the schema change Ensure applies to an existing table.
type evolution struct {
	adds    []columnAdd
	updates []columnUpdate
	// identifiers, when non-nil, replaces the identifier fields.
	identifiers [][]string
}

func (e *evolution) empty() bool {
	return len(e.adds) == 0 && len(e.updates) == 0 && e.identifiers == nil
}

// commit applies e to tbl in one transaction.
func (e *evolution) commit(ctx context.Context, tbl *icetable.Table) error {
	txn := tbl.NewTransaction()
	var opts []icetable.UpdateSchemaOption
	if nm := tbl.NameMapping(); nm != nil {
		// Keep a name mapping the table already has in step with the schema.
		opts = append(opts, icetable.WithNameMapping(nm))
	}
	us := txn.UpdateSchema(true, false, opts...)
	for _, u := range e.updates {
		us.UpdateColumn(u.path, u.update)
	}
	for _, a := range e.adds {
		us.AddColumn(a.path, a.field.Type, a.field.Doc, false, nil)
	}
	if e.identifiers != nil {
		us.SetIdentifierField(e.identifiers)
	}
	if err := us.Commit(); err != nil {
		return fmt.Errorf("stage schema update: %w", err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		return fmt.Errorf("commit schema update: %w", err)
	}
	return nil
}

// planEvolution compares the table's schema cur with the spec's want by
// name and returns the changes to apply, or an error naming the first
// column that cannot be evolved.
func planEvolution(cur, want *iceberg.Schema) (*evolution, error) {
	e := &evolution{}
	if err := e.structFields(nil, cur.Fields(), want.Fields()); err != nil {
		return nil, err
	}
	if len(want.IdentifierFieldIDs) > 0 {
		names := func(sc *iceberg.Schema) []string {
			out := make([]string, 0, len(sc.IdentifierFieldIDs))
			for _, id := range sc.IdentifierFieldIDs {
				if n, ok := sc.FindColumnName(id); ok {
					out = append(out, n)
				}
			}
			sort.Strings(out)
			return out
		}
		if w := names(want); !slices.Equal(names(cur), w) {
			e.identifiers = make([][]string, len(w))
			for i, n := range w {
				e.identifiers[i] = []string{n}
			}
		}
	}
	return e, nil
}

func childOf(path []string, name string) []string {
	return append(slices.Clone(path), name)
}

func (e *evolution) structFields(path []string, cur, want []iceberg.NestedField) error {
	byName := make(map[string]iceberg.NestedField, len(cur))
	for _, f := range cur {
		byName[f.Name] = f
	}
	for _, w := range want {
		p := childOf(path, w.Name)
		c, ok := byName[w.Name]
		if !ok {
			if w.Required {
				return fmt.Errorf("column %q: cannot add a required column to an existing table; make it optional", strings.Join(p, "."))
			}
			e.adds = append(e.adds, columnAdd{path: p, field: w})
			continue
		}
		if err := e.field(p, c, w); err != nil {
			return err
		}
	}
	return nil
}

// field compares one existing field (a column, struct field, list element
// or map value) with the spec's.
func (e *evolution) field(path []string, cur, want iceberg.NestedField) error {
	name := strings.Join(path, ".")
	var upd icetable.ColumnUpdate
	switch {
	case want.Required && !cur.Required:
		return fmt.Errorf("column %q: cannot make an optional column required", name)
	case !want.Required && cur.Required:
		upd.Required = iceberg.Optional[bool]{Valid: true, Val: false}
	}
	mismatch := func() error {
		return fmt.Errorf("column %q: cannot change type %s to %s", name, cur.Type, want.Type)
	}
	switch wt := want.Type.(type) {
	case *iceberg.StructType:
		ct, ok := cur.Type.(*iceberg.StructType)
		if !ok {
			return mismatch()
		}
		if err := e.structFields(path, ct.FieldList, wt.FieldList); err != nil {
			return err
		}
	case *iceberg.ListType:
		ct, ok := cur.Type.(*iceberg.ListType)
		if !ok {
			return mismatch()
		}
		if err := e.field(childOf(path, "element"), ct.ElementField(), wt.ElementField()); err != nil {
			return err
		}
	case *iceberg.MapType:
		ct, ok := cur.Type.(*iceberg.MapType)
		if !ok {
			return mismatch()
		}
		if !sameShape(ct.KeyType, wt.KeyType) {
			return fmt.Errorf("column %q: cannot change a map key (%s to %s)", name+".key", ct.KeyType, wt.KeyType)
		}
		if err := e.field(childOf(path, "value"), ct.ValueField(), wt.ValueField()); err != nil {
			return err
		}
	case iceberg.PrimitiveType:
		ct, ok := cur.Type.(iceberg.PrimitiveType)
		if !ok {
			return mismatch()
		}
		if !ct.Equals(wt) {
			if !Promotable(ct, wt) {
				return fmt.Errorf("column %q: cannot change type %s to %s: only int to long, float to double and widening a decimal's precision are allowed", name, ct, wt)
			}
			upd.FieldType = iceberg.Optional[iceberg.Type]{Valid: true, Val: wt}
		}
	default:
		if !cur.Type.Equals(want.Type) {
			return mismatch()
		}
	}
	if want.Doc != "" && want.Doc != cur.Doc {
		upd.Doc = iceberg.Optional[string]{Valid: true, Val: want.Doc}
	}
	if upd.Required.Valid || upd.FieldType.Valid || upd.Doc.Valid {
		e.updates = append(e.updates, columnUpdate{path: path, update: upd})
	}
	return nil
}

// Promotable reports whether Iceberg allows changing a column's type from
// one to the other in place: int to long, float to double, a decimal's
// precision widened at the same scale.
func Promotable(from, to iceberg.Type) bool {
	switch f := from.(type) {
	case iceberg.Int32Type:
		_, ok := to.(iceberg.Int64Type)
		return ok
	case iceberg.Float32Type:
		_, ok := to.(iceberg.Float64Type)
		return ok
	case iceberg.DecimalType:
		t, ok := to.(iceberg.DecimalType)
		return ok && t.Scale() == f.Scale() && t.Precision() >= f.Precision()
	}
	return false
}

// sameShape compares two types ignoring field ids.
func sameShape(a, b iceberg.Type) bool {
	switch at := a.(type) {
	case *iceberg.StructType:
		bt, ok := b.(*iceberg.StructType)
		if !ok || len(at.FieldList) != len(bt.FieldList) {
			return false
		}
		for i, af := range at.FieldList {
			bf := bt.FieldList[i]
			if af.Name != bf.Name || af.Required != bf.Required || !sameShape(af.Type, bf.Type) {
				return false
			}
		}
		return true
	case *iceberg.ListType:
		bt, ok := b.(*iceberg.ListType)
		return ok && at.ElementRequired == bt.ElementRequired && sameShape(at.Element, bt.Element)
	case *iceberg.MapType:
		bt, ok := b.(*iceberg.MapType)
		return ok && at.ValueRequired == bt.ValueRequired && sameShape(at.KeyType, bt.KeyType) && sameShape(at.ValueType, bt.ValueType)
	}
	return a.Equals(b)
}

// TableInfo describes a table for people and scripts (floe table describe).
type TableInfo struct {
	Name              string `json:"name"`
	UUID              string `json:"uuid"`
	Location          string `json:"location"`
	MetadataLocation  string `json:"metadata-location"`
	FormatVersion     int    `json:"format-version"`
	LastUpdated       string `json:"last-updated"`
	CurrentSnapshotID *int64 `json:"current-snapshot-id"`
	// SchemaID is the id of the current schema; Schema its columns.
	SchemaID         int      `json:"schema-id"`
	Schema           []Field  `json:"schema"`
	IdentifierFields []string `json:"identifier-fields,omitempty"`
	// Partition lists partition fields as transform(column), e.g.
	// "day(event_time)", "bucket[16](user_id)"; empty when unpartitioned.
	Partition []string `json:"partition"`
	// Sort lists sort keys as "column asc nulls-first", with a transform
	// as in Partition when it is not identity; empty when unsorted.
	Sort       []string          `json:"sort"`
	Properties map[string]string `json:"properties"`
	Snapshots  int               `json:"snapshots"`
	// Positions are Floe's source positions as of the current snapshot.
	Positions PositionMap `json:"positions"`
	// PositionsError is set when the positions could not be read.
	PositionsError string `json:"positions-error,omitempty"`
}

// Describe summarises tbl's current metadata.
func Describe(tbl *icetable.Table) TableInfo {
	meta := tbl.Metadata()
	sc := tbl.Schema()
	info := TableInfo{
		Name:             strings.Join(tbl.Identifier(), "."),
		UUID:             meta.TableUUID().String(),
		Location:         tbl.Location(),
		MetadataLocation: tbl.MetadataLocation(),
		FormatVersion:    meta.Version(),
		LastUpdated:      time.UnixMilli(meta.LastUpdatedMillis()).UTC().Format(time.RFC3339),
		SchemaID:         sc.ID,
		Schema:           FieldsFromIceberg(sc.Fields()),
		Partition:        []string{},
		Sort:             []string{},
		Properties:       maps.Clone(map[string]string(tbl.Properties())),
		Snapshots:        len(meta.Snapshots()),
	}
	if info.Properties == nil {
		info.Properties = map[string]string{}
	}
	if s := tbl.CurrentSnapshot(); s != nil {
		id := s.SnapshotID
		info.CurrentSnapshotID = &id
	}
	for _, id := range sc.IdentifierFieldIDs {
		if n, ok := sc.FindColumnName(id); ok {
			info.IdentifierFields = append(info.IdentifierFields, n)
		}
	}
	colName := func(id int) string {
		if n, ok := sc.FindColumnName(id); ok {
			return n
		}
		return "#" + strconv.Itoa(id) // a dropped column
	}
	spec := tbl.Spec()
	for _, f := range spec.Fields() {
		info.Partition = append(info.Partition, fmt.Sprintf("%s(%s)", f.Transform, colName(f.SourceID())))
	}
	for _, f := range tbl.SortOrder().Fields() {
		col := colName(f.SourceID())
		if _, ok := f.Transform.(iceberg.IdentityTransform); !ok {
			col = fmt.Sprintf("%s(%s)", f.Transform, col)
		}
		info.Sort = append(info.Sort, fmt.Sprintf("%s %s %s", col, f.Direction, f.NullOrder))
	}
	pos, err := CurrentPositions(tbl)
	if err != nil {
		info.PositionsError = err.Error()
		pos = PositionMap{}
	}
	info.Positions = pos
	return info
}

// FieldsFromIceberg converts Iceberg fields back to spec fields.
func FieldsFromIceberg(fields []iceberg.NestedField) []Field {
	out := make([]Field, 0, len(fields))
	for _, f := range fields {
		ff := fieldFromType(f.Type, f.Required)
		ff.Name, ff.Doc = f.Name, f.Doc
		out = append(out, ff)
	}
	return out
}

func fieldFromType(t iceberg.Type, required bool) Field {
	f := Field{Type: t.String(), Required: required}
	switch tt := t.(type) {
	case *iceberg.StructType:
		f.Type = "struct"
		f.Fields = FieldsFromIceberg(tt.FieldList)
	case *iceberg.ListType:
		f.Type = "list"
		elem := fieldFromType(tt.Element, tt.ElementRequired)
		f.Element = &elem
	case *iceberg.MapType:
		f.Type = "map"
		// Map keys are always required; specs leave that unsaid.
		key := fieldFromType(tt.KeyType, false)
		value := fieldFromType(tt.ValueType, tt.ValueRequired)
		f.Key, f.Value = &key, &value
	case iceberg.DecimalType:
		f.Type = fmt.Sprintf("decimal(%d,%d)", tt.Precision(), tt.Scale())
	}
	return f
}

// SnapshotInfo describes one snapshot (floe table snapshots).
type SnapshotInfo struct {
	ID        int64  `json:"snapshot-id"`
	ParentID  *int64 `json:"parent-snapshot-id"`
	Sequence  int64  `json:"sequence-number"`
	Timestamp string `json:"timestamp"` // UTC, RFC 3339, milliseconds
	// Current marks the table's current snapshot.
	Current bool `json:"current"`
	// Operation is Iceberg's: append, overwrite, replace, delete.
	Operation      string `json:"operation"`
	AddedRecords   *int64 `json:"added-records"`
	AddedDataFiles *int64 `json:"added-data-files"`
	TotalRecords   *int64 `json:"total-records"`
	TotalDataFiles *int64 `json:"total-data-files"`
	// Floe's summary properties; empty for snapshots other engines wrote.
	WriterID      string      `json:"writer-id,omitempty"`
	CommitID      string      `json:"commit-id,omitempty"`
	FloeOperation string      `json:"floe-operation,omitempty"`
	Positions     PositionMap `json:"positions,omitempty"`
	// Summary is the snapshot's whole summary.
	Summary map[string]string `json:"summary"`
}

// DescribeSnapshots lists tbl's snapshots, oldest first.
func DescribeSnapshots(tbl *icetable.Table) []SnapshotInfo {
	snaps := tbl.Metadata().Snapshots()
	var current int64 = -1
	if s := tbl.CurrentSnapshot(); s != nil {
		current = s.SnapshotID
	}
	out := make([]SnapshotInfo, 0, len(snaps))
	for i := range snaps {
		s := &snaps[i]
		si := SnapshotInfo{
			ID:        s.SnapshotID,
			ParentID:  s.ParentSnapshotID,
			Sequence:  s.SequenceNumber,
			Timestamp: time.UnixMilli(s.TimestampMs).UTC().Format("2006-01-02T15:04:05.000Z07:00"),
			Current:   s.SnapshotID == current,
			Summary:   map[string]string{},
		}
		if s.Summary != nil {
			props := s.Summary.Properties
			si.Operation = string(s.Summary.Operation)
			maps.Copy(si.Summary, props)
			si.AddedRecords = summaryIntPtr(s, "added-records")
			si.AddedDataFiles = summaryIntPtr(s, "added-data-files")
			si.TotalRecords = summaryIntPtr(s, "total-records")
			si.TotalDataFiles = summaryIntPtr(s, "total-data-files")
			si.WriterID = props[PropWriterID]
			si.CommitID = props[PropCommitID]
			si.FloeOperation = props[PropOperation]
		}
		if pos, ok, err := positionsFromSummary(s); err == nil && ok {
			si.Positions = pos
		}
		out = append(out, si)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Sequence != out[j].Sequence {
			return out[i].Sequence < out[j].Sequence
		}
		return out[i].Timestamp < out[j].Timestamp
	})
	return out
}

// summaryIntPtr is SummaryInt for JSON: nil when the summary does not say.
func summaryIntPtr(s *icetable.Snapshot, key string) *int64 {
	if n, ok := SummaryInt(s, key); ok {
		return &n
	}
	return nil
}

// ErrIncompatibleSchema marks an Ensure error naming a column that the
// spec cannot evolve the existing table to (a new required column, a type
// change that is not a promotion): retrying cannot fix it.
var ErrIncompatibleSchema = errors.New("incompatible schema change")

// incompatibleError is an evolution error; its message is the wrapped
// error's, and it matches ErrIncompatibleSchema.
type incompatibleError struct{ error }

func (e incompatibleError) Unwrap() error        { return e.error }
func (e incompatibleError) Is(target error) bool { return target == ErrIncompatibleSchema }
