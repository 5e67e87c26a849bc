package mysql

import "testing"

// FuzzParseDDL: any statement parses without panicking, and every action
// names a table (or a database).
func FuzzParseDDL(f *testing.F) {
	for _, s := range []string{
		"ALTER TABLE t ADD COLUMN c INT", "alter table `a`.`b` change x y decimal(10,2) not null default '1', drop z",
		"RENAME TABLE a TO b, c TO d", "DROP TABLE IF EXISTS x /* c */", "/*!40000 ALTER TABLE t */", "CREATE TABLE t (",
		"ALTER TABLE t ADD c ENUM('a','b''c", "TRUNCATE", "ALTER TABLE", "-- x\nALTER TABLE `t` RENAME COLUMN a TO b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		for _, a := range parseDDL(q, "d") {
			if a.Kind != ddlDropDB && a.Table == "" {
				t.Fatalf("%q: action without a table: %+v", q, a)
			}
		}
	})
}

// FuzzParseValues: the text parsers of temporal and decimal values never
// panic, and what they accept is in range.
func FuzzParseValues(f *testing.F) {
	for _, s := range []string{"2024-02-29 23:59:59.999999", "0000-00-00", "838:59:59", "-1.5", "12:00:00.1234567", "99999999999999999999999999999999999999.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if us, err := parseTime(s); err == nil && (us < 0 || us >= 86400e6) {
			t.Fatalf("parseTime(%q) = %d out of range", s, us)
		}
		_, _ = parseDatetime(s)
		_, _ = parseDate(s)
		_, _ = parseDecimal(s, &target{prec: 38, scale: 5})
		_, _ = parseIntBytes([]byte(s))
		_ = typeArgs(s)
		_, _, _ = mapType(s, s)
	})
}
