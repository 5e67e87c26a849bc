package tabletest

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	icetable "github.com/apache/iceberg-go/table"
)

// CDC tests compare a MySQL table with the Iceberg table Floe replicates it
// into. MySQLRows and IcebergRows render both in one canonical form: one
// string a row, its columns sorted by name and joined by " | ", each value
// rendered independently of the source's type conversions (NULL; integers
// and decimals as digits; floats shortest; binaries as upper-case hex; BIT
// as its number; dates "2006-01-02"; datetimes in UTC
// "2006-01-02 15:04:05.000000"; times "15:04:05.000000"); rows sorted.

// MySQLRows reads table dbName.tbl through db in the canonical form (its
// columns sorted bytewise, as IcebergRows sorts them), each
// column rendered by MySQL itself.
func MySQLRows(db *sql.DB, dbName, tbl string) ([]string, error) {
	rows, err := db.Query(`SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY CAST(COLUMN_NAME AS BINARY)`, dbName, tbl)
	if err != nil {
		return nil, err
	}
	var exprs, kinds []string
	for rows.Next() {
		var c, dt string
		if err := rows.Scan(&c, &dt); err != nil {
			return nil, err
		}
		q := quoteIdent(c)
		switch dt {
		case "float":
			q = "CAST(" + q + " AS DOUBLE)"
		case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
			q = "HEX(" + q + ")"
		case "bit":
			q += "+0"
		case "date":
			q = "DATE_FORMAT(" + q + ", '%Y-%m-%d')"
		case "datetime", "timestamp":
			q = "DATE_FORMAT(" + q + ", '%Y-%m-%d %H:%i:%s.%f')"
		case "time":
			q = "TIME_FORMAT(" + q + ", '%H:%i:%s.%f')"
		}
		exprs, kinds = append(exprs, q), append(kinds, dt)
	}
	_ = rows.Close()
	rows, err = db.Query("SELECT " + strings.Join(exprs, ", ") + " FROM " + quoteIdent(dbName) + "." + quoteIdent(tbl))
	if err != nil {
		return nil, err
	}
	defer rows.Close() //nolint:errcheck // test helper
	raw := make([]sql.NullString, len(exprs))
	ptrs := make([]any, len(raw))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	var out []string
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		parts := make([]string, len(raw))
		for i, v := range raw {
			switch {
			case !v.Valid:
				parts[i] = "NULL"
			case kinds[i] == "float" || kinds[i] == "double":
				f, err := strconv.ParseFloat(v.String, 64)
				if err != nil {
					return nil, err
				}
				parts[i] = strconv.FormatFloat(f, 'g', -1, 64)
			default:
				parts[i] = v.String
			}
		}
		out = append(out, strings.Join(parts, " | "))
	}
	sort.Strings(out)
	return out, rows.Err()
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// IcebergRows scans tbl with iceberg-go in the canonical form. When the
// table has identifier fields, two rows with the same key are an error.
func IcebergRows(ctx context.Context, tbl *icetable.Table) ([]string, error) {
	sc := tbl.Schema()
	var names []string
	idx := map[string]int{}
	for i, f := range sc.Fields() {
		names = append(names, f.Name)
		idx[f.Name] = i
	}
	sort.Strings(names)
	var keyCols []int
	for _, id := range sc.IdentifierFieldIDs {
		for i, f := range sc.Fields() {
			if f.ID == id {
				keyCols = append(keyCols, i)
			}
		}
	}
	_, recs, err := tbl.Scan().ToArrowRecords(ctx)
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	var out []string
	for rec, err := range recs {
		if err != nil {
			return nil, err
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			parts := make([]string, len(names))
			for i, n := range names {
				c := idx[n]
				parts[i] = canonical(rec.Column(c), r, rec.Schema().Field(c).Metadata)
			}
			if len(keyCols) > 0 {
				var kb strings.Builder
				for _, c := range keyCols {
					kb.WriteString(canonical(rec.Column(c), r, rec.Schema().Field(c).Metadata) + "/")
				}
				if keys[kb.String()] {
					rec.Release()
					return nil, fmt.Errorf("%s: duplicate key %s", strings.Join(tbl.Identifier(), "."), kb.String())
				}
				keys[kb.String()] = true
			}
			out = append(out, strings.Join(parts, " | "))
		}
		rec.Release()
	}
	sort.Strings(out)
	return out, nil
}

// canonical renders a[i] as MySQLRows renders MySQL's value; md is the
// column's Arrow metadata, whose doc tells a BIT column from a binary one.
func canonical(a arrow.Array, i int, md arrow.Metadata) string {
	if a.IsNull(i) {
		return "NULL"
	}
	switch c := a.(type) {
	case *array.Int32:
		return strconv.FormatInt(int64(c.Value(i)), 10)
	case *array.Int64:
		return strconv.FormatInt(c.Value(i), 10)
	case *array.Float32:
		return strconv.FormatFloat(float64(c.Value(i)), 'g', -1, 64)
	case *array.Float64:
		return strconv.FormatFloat(c.Value(i), 'g', -1, 64)
	case *array.Decimal128:
		return c.Value(i).ToString(c.DataType().(*arrow.Decimal128Type).Scale)
	case *array.String:
		return c.Value(i)
	case *array.Binary:
		v := c.Value(i)
		if j := md.FindKey("doc"); j >= 0 && strings.Contains(md.Values()[j], "bit(") {
			return new(big.Int).SetBytes(v).String()
		}
		return strings.ToUpper(hex.EncodeToString(v))
	case *array.Date32:
		return c.Value(i).ToTime().Format("2006-01-02")
	case *array.Timestamp:
		return time.UnixMicro(int64(c.Value(i))).UTC().Format("2006-01-02 15:04:05.000000")
	case *array.Time64:
		us := int64(c.Value(i))
		return fmt.Sprintf("%02d:%02d:%02d.%06d", us/3600e6, us/60e6%60, us/1e6%60, us%1e6)
	}
	return "?" + a.DataType().String()
}

// DiffRows describes how got (Iceberg's rows) differs from want (MySQL's),
// both sorted: the counts and up to ten missing and ten extra rows. It is
// empty when they are equal.
func DiffRows(want, got []string) string {
	if slices.Equal(want, got) {
		return ""
	}
	w := map[string]int{}
	for _, s := range want {
		w[s]++
	}
	g := map[string]int{}
	for _, s := range got {
		g[s]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "MySQL has %d rows, Iceberg %d", len(want), len(got))
	n := 0
	for s, c := range w {
		if g[s] < c && n < 10 {
			fmt.Fprintf(&b, "\n  missing in Iceberg: %s", s)
			n++
		}
	}
	for s, c := range g {
		if w[s] < c && n < 20 {
			fmt.Fprintf(&b, "\n  extra in Iceberg (x%d): %s", c-w[s], s)
			n++
		}
	}
	return b.String()
}
