package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"

	"github.com/floe-lake/floe/table"
)

// kind is how a MySQL column's values are read.
type kind uint8

const (
	kSigned    kind = iota + 1 // tinyint..bigint, year
	kUnsigned                  // unsigned tinyint..bigint
	kDecimal                   // decimal(p,s)
	kFloat                     // float
	kDouble                    // double
	kString                    // char, varchar, text, json, enum, set (as labels)
	kBinary                    // binary, varbinary, blob, geometry
	kBit                       // bit(n): big-endian bytes
	kDate                      // date
	kTime                      // time
	kDatetime                  // datetime: wall clock, no zone
	kTimestamp                 // timestamp: an instant (UTC)
)

// column is one MySQL column and the Iceberg type it maps to.
type column struct {
	Name string
	// Type is the column's type as information_schema's COLUMN_TYPE
	// spells it: "int(10) unsigned", "decimal(10,2)", "enum('a','b')".
	Type     string
	Nullable bool
	Kind     kind
	// Iceberg is the Iceberg type: "int", "decimal(20,0)", ...
	Iceberg string
}

// tableDef is a MySQL table as the source maps it.
type tableDef struct {
	DB, Name string
	Columns  []column
	// PK lists the primary key's columns in key order; empty when the
	// table has none (it cannot be captured).
	PK []string
}

// mapType maps a MySQL column type (information_schema DATA_TYPE and
// COLUMN_TYPE, or a type parsed from DDL) to how it is read and its Iceberg
// type:
//
//	tinyint, smallint, mediumint, int, year      → int (int unsigned → long)
//	bigint                                       → long (unsigned → decimal(20,0))
//	decimal(p,s)                                 → decimal(p,s) (p > 38 → string)
//	float, double                                → float, double
//	char, varchar, *text, json, enum, set        → string (enum: its label;
//	                                               set: labels joined by ",")
//	binary, varbinary, *blob, bit, geometry      → binary (bit: big-endian bytes)
//	date, time                                   → date, time
//	datetime                                     → timestamp
//	timestamp                                    → timestamptz
func mapType(dataType, columnType string) (kind, string, error) {
	dt := strings.ToLower(strings.TrimSpace(dataType))
	ct := strings.ToLower(columnType)
	unsigned := strings.Contains(ct, "unsigned")
	switch dt {
	case "tinyint", "smallint", "mediumint", "bool", "boolean":
		if unsigned {
			return kUnsigned, "int", nil
		}
		return kSigned, "int", nil
	case "int", "integer":
		if unsigned {
			return kUnsigned, "long", nil
		}
		return kSigned, "int", nil
	case "bigint":
		if unsigned {
			return kUnsigned, "decimal(20,0)", nil
		}
		return kSigned, "long", nil
	case "year":
		return kSigned, "int", nil
	case "decimal", "numeric", "dec", "fixed":
		p, s := 10, 0
		if args := typeArgs(ct); len(args) > 0 {
			var err error
			if p, err = strconv.Atoi(strings.TrimSpace(args[0])); err != nil {
				return 0, "", fmt.Errorf("type %q: bad precision", columnType)
			}
			if len(args) > 1 {
				if s, err = strconv.Atoi(strings.TrimSpace(args[1])); err != nil {
					return 0, "", fmt.Errorf("type %q: bad scale", columnType)
				}
			}
		}
		if p > 38 {
			return kDecimal, "string", nil
		}
		return kDecimal, fmt.Sprintf("decimal(%d,%d)", p, s), nil
	case "float":
		// float(p) with p > 24 is a double; information_schema reports it
		// as double already.
		return kFloat, "float", nil
	case "double", "real", "double precision":
		return kDouble, "double", nil
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json", "enum", "set",
		"nchar", "nvarchar", "national char", "national varchar", "long", "long varchar", "uuid", "inet4", "inet6":
		if strings.Contains(ct, "character set binary") {
			return kBinary, "binary", nil
		}
		return kString, "string", nil
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "long varbinary",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
		"geometrycollection", "geomcollection":
		return kBinary, "binary", nil
	case "bit":
		return kBit, "binary", nil
	case "date":
		return kDate, "date", nil
	case "time":
		return kTime, "time", nil
	case "datetime":
		return kDatetime, "timestamp", nil
	case "timestamp":
		return kTimestamp, "timestamptz", nil
	}
	return 0, "", fmt.Errorf("type %q is not supported", columnType)
}

// typeArgs returns the comma-separated arguments in the first parentheses
// of a column type, unquoted: decimal(10,2) → [10 2], enum('a','b') → [a b].
func typeArgs(ct string) []string {
	open := strings.IndexByte(ct, '(')
	if open < 0 {
		return nil
	}
	var out []string
	var cur strings.Builder
	inQuote := byte(0)
	for i := open + 1; i < len(ct); i++ {
		c := ct[i]
		switch {
		case inQuote != 0:
			if c == inQuote {
				if i+1 < len(ct) && ct[i+1] == inQuote {
					cur.WriteByte(c)
					i++
					continue
				}
				inQuote = 0
				continue
			}
			if c == '\\' && i+1 < len(ct) {
				i++
				cur.WriteByte(ct[i])
				continue
			}
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			inQuote = c
		case c == ',':
			out = append(out, cur.String())
			cur.Reset()
		case c == ')':
			return append(out, cur.String())
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

// spec is the Iceberg table spec of t: its columns in order, the primary
// key's columns required and the identifier fields.
func (t *tableDef) spec(name string) table.Spec {
	pk := map[string]bool{}
	for _, c := range t.PK {
		pk[c] = true
	}
	s := table.Spec{Name: name, IdentifierFields: append([]string(nil), t.PK...)}
	for _, c := range t.Columns {
		s.Schema = append(s.Schema, table.Field{
			Name: c.Name, Type: c.Iceberg, Required: pk[c.Name],
			Doc: "MySQL " + c.Type,
		})
	}
	return s
}

// querier is a *sql.DB, *sql.Conn or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// listTables returns the base tables of the server, as "db.table", in the
// order information_schema lists them (system schemas excluded).
func listTables(ctx context.Context, q querier) ([][2]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_TYPE = 'BASE TABLE'
		  AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
		ORDER BY TABLE_SCHEMA, TABLE_NAME`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close() //nolint:errcheck // read-only query
	var out [][2]string
	for rows.Next() {
		var db, t string
		if err := rows.Scan(&db, &t); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		out = append(out, [2]string{db, t})
	}
	return out, rows.Err()
}

// describeTables reads the columns and primary keys of the given tables.
// A column whose type cannot be mapped is an error for its table only:
// errs holds them by "db.table".
func describeTables(ctx context.Context, q querier, names [][2]string) (map[string]*tableDef, map[string]error, error) {
	defs := map[string]*tableDef{}
	errs := map[string]error{}
	if len(names) == 0 {
		return defs, errs, nil
	}
	want := map[string]bool{}
	dbs := map[string]bool{}
	for _, n := range names {
		want[n[0]+"."+n[1]] = true
		dbs[n[0]] = true
	}
	var dbList []any
	ph := make([]string, 0, len(dbs))
	for db := range dbs {
		dbList = append(dbList, db)
		ph = append(ph, "?")
	}
	in := strings.Join(ph, ",")
	rows, err := q.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE,
		COALESCE(CHARACTER_SET_NAME, '')
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (`+in+`)
		ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`, dbList...)
	if err != nil {
		return nil, nil, fmt.Errorf("describe tables: %w", err)
	}
	for rows.Next() {
		var db, tn, col, dt, ct, nullable, charset string
		if err := rows.Scan(&db, &tn, &col, &dt, &ct, &nullable, &charset); err != nil {
			_ = rows.Close()
			return nil, nil, fmt.Errorf("describe tables: %w", err)
		}
		full := db + "." + tn
		if !want[full] {
			continue
		}
		d := defs[full]
		if d == nil {
			d = &tableDef{DB: db, Name: tn}
			defs[full] = d
		}
		if charset == "binary" && !strings.Contains(strings.ToLower(ct), "binary") {
			ct += " character set binary"
		}
		k, ice, err := mapType(dt, ct)
		if err != nil {
			if errs[full] == nil {
				errs[full] = fmt.Errorf("column %s: %w", col, err)
			}
			continue
		}
		d.Columns = append(d.Columns, column{Name: col, Type: ct, Nullable: nullable == "YES", Kind: k, Iceberg: ice})
	}
	if err := rows.Close(); err != nil {
		return nil, nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("describe tables: %w", err)
	}
	rows, err = q.QueryContext(ctx, `SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
		WHERE CONSTRAINT_NAME = 'PRIMARY' AND TABLE_SCHEMA IN (`+in+`)
		ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`, dbList...)
	if err != nil {
		return nil, nil, fmt.Errorf("describe primary keys: %w", err)
	}
	defer rows.Close() //nolint:errcheck // read-only query
	for rows.Next() {
		var db, tn, col string
		if err := rows.Scan(&db, &tn, &col); err != nil {
			return nil, nil, fmt.Errorf("describe primary keys: %w", err)
		}
		if d := defs[db+"."+tn]; d != nil {
			d.PK = append(d.PK, col)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("describe primary keys: %w", err)
	}
	for full, d := range defs {
		if len(d.PK) == 0 && errs[full] == nil {
			errs[full] = fmt.Errorf("table %s has no primary key; CDC needs one to apply updates and deletes", full)
		}
	}
	return defs, errs, nil
}

// icebergType parses an Iceberg primitive type name ("decimal(20,0)").
func icebergType(name string) (iceberg.Type, error) {
	sc, err := table.Spec{Name: "x.y", Schema: []table.Field{{Name: "c", Type: name}}}.IcebergSchema()
	if err != nil {
		return nil, err
	}
	return sc.Field(0).Type, nil
}

// isIdentifier reports whether field id is one of sc's identifier fields.
func isIdentifier(sc *iceberg.Schema, id int) bool {
	for _, i := range sc.IdentifierFieldIDs {
		if i == id {
			return true
		}
	}
	return false
}
