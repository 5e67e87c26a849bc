package mysql

import (
	"fmt"
	"strings"
)

// ddlKind is what a statement does to one table.
type ddlKind uint8

const (
	ddlAlter    ddlKind = iota + 1 // ALTER TABLE: specs
	ddlCreate                      // CREATE TABLE (a new table, maybe captured)
	ddlDrop                        // DROP TABLE
	ddlRename                      // RENAME TABLE / ALTER TABLE ... RENAME TO: the table goes away
	ddlTruncate                    // TRUNCATE TABLE
	ddlDropDB                      // DROP DATABASE (Table is empty)
)

// ddlAction is one statement's effect on one table.
type ddlAction struct {
	Kind      ddlKind
	DB, Table string
	Specs     []alterSpec
	// To is the new name of a renamed table (db, table).
	ToDB, ToTable string
}

// specKind is one change of an ALTER TABLE.
type specKind uint8

const (
	specAdd         specKind = iota + 1 // Column, Type, Exact
	specDrop                            // Column
	specRename                          // Column → NewName
	specChange                          // Column → NewName, Type
	specModify                          // Column, Type
	specIgnore                          // indexes, defaults, table options: no schema effect
	specUnsupported                     // Reason
)

// alterSpec is one change of an ALTER TABLE statement.
type alterSpec struct {
	Kind    specKind
	Column  string
	NewName string
	// DataType and ColumnType are the new type as mapType takes them.
	DataType, ColumnType string
	// Exact is true for an added column that existing rows get as NULL
	// (nullable, no default, not generated): adding it to the Iceberg
	// schema leaves the table equal to MySQL's.
	Exact  bool
	Reason string
}

// token is a lexical token of a statement.
type token struct {
	s      string // identifier (unquoted), keyword, string content, or punctuation
	quoted bool   // a `quoted` identifier or a 'string'
	str    bool   // a string literal
}

func (t token) is(kw string) bool { return !t.quoted && strings.EqualFold(t.s, kw) }

// tokenize splits a statement into tokens, dropping comments (but keeping
// the contents of MySQL's executable comments /*!...*/ and /*M!...*/).
func tokenize(q string) []token {
	var out []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '#' || (c == '-' && i+2 < len(q) && q[i+1] == '-' && (q[i+2] == ' ' || q[i+2] == '\t' || q[i+2] == '\n')):
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			end := strings.Index(q[i+2:], "*/")
			body := ""
			if end < 0 {
				body, i = q[i+2:], len(q)
			} else {
				body, i = q[i+2:i+2+end], i+4+end
			}
			// Executable comments: /*!50100 code */, /*M!100100 code */.
			if strings.HasPrefix(body, "!") || strings.HasPrefix(body, "M!") {
				body = strings.TrimLeft(strings.TrimPrefix(strings.TrimPrefix(body, "M"), "!"), "0123456789")
				out = append(out, tokenize(body)...)
			}
		case c == '`' || c == '"' || c == '\'':
			var b strings.Builder
			j := i + 1
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c {
						b.WriteByte(c)
						j += 2
						continue
					}
					break
				}
				if q[j] == '\\' && c != '`' && j+1 < len(q) {
					b.WriteByte(q[j+1])
					j += 2
					continue
				}
				b.WriteByte(q[j])
				j++
			}
			out = append(out, token{s: b.String(), quoted: true, str: c != '`'})
			i = j + 1
		case isIdentByte(c):
			j := i
			for j < len(q) && isIdentByte(q[j]) {
				j++
			}
			out = append(out, token{s: q[i:j]})
			i = j
		default:
			out = append(out, token{s: string(c)})
			i++
		}
	}
	return out
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// parseDDL parses a statement of the binlog into its effects on tables;
// defaultDB is the session's database. Statements that change no table
// (BEGIN, GRANT, CREATE DATABASE, ...) give none. A statement it does not
// understand that names a table gives an ALTER with an unsupported spec
// when it can tell the table, else none.
func parseDDL(q, defaultDB string) []ddlAction {
	toks := tokenize(q)
	p := &parser{toks: toks, db: defaultDB}
	switch {
	case p.accept("ALTER"):
		p.accept("ONLINE")
		p.accept("IGNORE")
		if !p.accept("TABLE") {
			if p.accept("DATABASE") || p.accept("SCHEMA") {
				return nil
			}
			return nil
		}
		p.ifExists()
		db, tbl, ok := p.tableName()
		if !ok {
			return nil
		}
		a := ddlAction{Kind: ddlAlter, DB: db, Table: tbl}
		for _, spec := range p.splitTopLevel() {
			s := parseAlterSpec(spec, db)
			if s.Kind == specRename && s.Column == "" {
				// ALTER TABLE t RENAME TO u.
				return []ddlAction{{Kind: ddlRename, DB: db, Table: tbl, ToDB: s.DataType, ToTable: s.NewName}}
			}
			a.Specs = append(a.Specs, s)
		}
		return []ddlAction{a}
	case p.accept("CREATE"):
		if p.accept("OR") {
			p.accept("REPLACE")
		}
		if p.accept("TEMPORARY") {
			return nil
		}
		if !p.accept("TABLE") {
			return nil
		}
		p.ifNotExists()
		db, tbl, ok := p.tableName()
		if !ok {
			return nil
		}
		return []ddlAction{{Kind: ddlCreate, DB: db, Table: tbl}}
	case p.accept("DROP"):
		if p.accept("DATABASE") || p.accept("SCHEMA") {
			p.ifExists()
			if t, ok := p.next(); ok {
				return []ddlAction{{Kind: ddlDropDB, DB: t.s}}
			}
			return nil
		}
		if p.accept("TEMPORARY") {
			return nil
		}
		if !p.accept("TABLE") {
			return nil
		}
		p.ifExists()
		var out []ddlAction
		for {
			db, tbl, ok := p.tableName()
			if !ok {
				break
			}
			out = append(out, ddlAction{Kind: ddlDrop, DB: db, Table: tbl})
			if !p.accept(",") {
				break
			}
		}
		return out
	case p.accept("RENAME"):
		if !p.accept("TABLE") && !p.accept("TABLES") {
			return nil
		}
		var out []ddlAction
		for {
			db, tbl, ok := p.tableName()
			if !ok || !p.accept("TO") {
				break
			}
			toDB, toTbl, ok := p.tableName()
			if !ok {
				break
			}
			out = append(out, ddlAction{Kind: ddlRename, DB: db, Table: tbl, ToDB: toDB, ToTable: toTbl})
			if !p.accept(",") {
				break
			}
		}
		return out
	case p.accept("TRUNCATE"):
		p.accept("TABLE")
		if db, tbl, ok := p.tableName(); ok {
			return []ddlAction{{Kind: ddlTruncate, DB: db, Table: tbl}}
		}
	}
	return nil
}

type parser struct {
	toks []token
	i    int
	db   string
}

func (p *parser) peek() (token, bool) {
	if p.i < len(p.toks) {
		return p.toks[p.i], true
	}
	return token{}, false
}

func (p *parser) next() (token, bool) {
	t, ok := p.peek()
	if ok {
		p.i++
	}
	return t, ok
}

func (p *parser) accept(kw string) bool {
	if t, ok := p.peek(); ok && t.is(kw) {
		p.i++
		return true
	}
	return false
}

func (p *parser) ifExists() {
	if t, ok := p.peek(); ok && t.is("IF") && p.i+1 < len(p.toks) && p.toks[p.i+1].is("EXISTS") {
		p.i += 2
	}
}

func (p *parser) ifNotExists() {
	if t, ok := p.peek(); ok && t.is("IF") && p.i+2 < len(p.toks) && p.toks[p.i+1].is("NOT") && p.toks[p.i+2].is("EXISTS") {
		p.i += 3
	}
}

// tableName reads [db.]table.
func (p *parser) tableName() (db, tbl string, ok bool) {
	t, ok := p.next()
	if !ok || t.s == "" || (!t.quoted && !isIdentByte(t.s[0])) || t.str {
		return "", "", false
	}
	if p.accept(".") {
		t2, ok := p.next()
		if !ok || t2.s == "" || t2.str {
			return "", "", false
		}
		return t.s, t2.s, true
	}
	return p.db, t.s, true
}

// splitTopLevel splits the remaining tokens at commas outside parentheses.
func (p *parser) splitTopLevel() [][]token {
	var out [][]token
	var cur []token
	depth := 0
	for ; p.i < len(p.toks); p.i++ {
		t := p.toks[p.i]
		if !t.quoted {
			switch t.s {
			case "(":
				depth++
			case ")":
				depth--
			case ",":
				if depth == 0 {
					out = append(out, cur)
					cur = nil
					continue
				}
			}
		}
		cur = append(cur, t)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// parseAlterSpec parses one change of an ALTER TABLE.
func parseAlterSpec(toks []token, db string) alterSpec {
	p := &parser{toks: toks, db: db}
	unsupported := func() alterSpec {
		return alterSpec{Kind: specUnsupported, Reason: "unsupported ALTER TABLE clause " + strings.TrimSpace(join(toks))}
	}
	first, ok := p.next()
	if !ok {
		return alterSpec{Kind: specIgnore}
	}
	switch {
	case first.is("ADD"):
		if t, ok := p.peek(); ok && !t.quoted {
			switch strings.ToUpper(t.s) {
			case "INDEX", "KEY", "FULLTEXT", "SPATIAL", "UNIQUE", "CONSTRAINT", "FOREIGN", "CHECK", "PARTITION", "PERIOD", "SYSTEM":
				return alterSpec{Kind: specIgnore}
			case "PRIMARY":
				return alterSpec{Kind: specUnsupported, Reason: "ADD PRIMARY KEY changes the key Floe applies updates by"}
			}
		}
		p.accept("COLUMN")
		p.ifNotExists()
		if p.accept("(") {
			// ADD (a INT, b TEXT): several columns; not split further here.
			return alterSpec{Kind: specUnsupported, Reason: "ADD COLUMN with a parenthesised column list"}
		}
		name, ok := p.next()
		if !ok || name.str {
			return unsupported()
		}
		return columnDef(specAdd, name.s, "", p)
	case first.is("DROP"):
		if t, ok := p.peek(); ok && !t.quoted {
			switch strings.ToUpper(t.s) {
			case "INDEX", "KEY", "FOREIGN", "CONSTRAINT", "CHECK", "PARTITION", "SYSTEM", "PERIOD":
				return alterSpec{Kind: specIgnore}
			case "PRIMARY":
				return alterSpec{Kind: specUnsupported, Reason: "DROP PRIMARY KEY removes the key Floe applies updates by"}
			}
		}
		p.accept("COLUMN")
		p.ifExists()
		name, ok := p.next()
		if !ok || name.str {
			return unsupported()
		}
		return alterSpec{Kind: specDrop, Column: name.s}
	case first.is("RENAME"):
		if p.accept("COLUMN") {
			from, ok1 := p.next()
			if !ok1 || !p.accept("TO") {
				return unsupported()
			}
			to, ok2 := p.next()
			if !ok2 {
				return unsupported()
			}
			return alterSpec{Kind: specRename, Column: from.s, NewName: to.s}
		}
		if p.accept("INDEX") || p.accept("KEY") {
			return alterSpec{Kind: specIgnore}
		}
		if !p.accept("TO") {
			p.accept("AS")
		}
		toDB, toTbl, ok := p.tableName()
		if !ok {
			return unsupported()
		}
		return alterSpec{Kind: specRename, NewName: toTbl, DataType: toDB}
	case first.is("CHANGE"):
		p.accept("COLUMN")
		p.ifExists()
		from, ok1 := p.next()
		to, ok2 := p.next()
		if !ok1 || !ok2 {
			return unsupported()
		}
		return columnDef(specChange, from.s, to.s, p)
	case first.is("MODIFY"):
		p.accept("COLUMN")
		p.ifExists()
		name, ok := p.next()
		if !ok {
			return unsupported()
		}
		return columnDef(specModify, name.s, "", p)
	case first.is("ALTER"):
		// ALTER [COLUMN] c SET DEFAULT / DROP DEFAULT / SET [IN]VISIBLE,
		// ALTER INDEX ...: no effect on the values of existing rows.
		return alterSpec{Kind: specIgnore}
	case first.is("CONVERT"):
		if strings.Contains(strings.ToLower(join(toks)), "binary") {
			return alterSpec{Kind: specUnsupported, Reason: "CONVERT TO CHARACTER SET binary turns text columns into binary ones"}
		}
		return alterSpec{Kind: specIgnore}
	}
	switch strings.ToUpper(first.s) {
	case "ENGINE", "AUTO_INCREMENT", "AVG_ROW_LENGTH", "CHECKSUM", "COMMENT", "CONNECTION", "DATA", "INDEX",
		"DELAY_KEY_WRITE", "INSERT_METHOD", "KEY_BLOCK_SIZE", "MAX_ROWS", "MIN_ROWS", "PACK_KEYS", "PASSWORD",
		"ROW_FORMAT", "STATS_AUTO_RECALC", "STATS_PERSISTENT", "STATS_SAMPLE_PAGES", "TABLESPACE", "UNION",
		"ALGORITHM", "LOCK", "FORCE", "ORDER", "DEFAULT", "CHARACTER", "CHARSET", "COLLATE", "ENABLE", "DISABLE",
		"DISCARD", "IMPORT", "PAGE_CHECKSUM", "TRANSACTIONAL", "ENCRYPTED", "ENCRYPTION_KEY_ID", "PAGE_COMPRESSED",
		"PAGE_COMPRESSION_LEVEL", "IETF_QUOTES", "SEQUENCE", "WITH", "WITHOUT", "NOWAIT", "WAIT", "PARTITION",
		"REMOVE", "COALESCE", "REORGANIZE", "ANALYZE", "CHECK", "OPTIMIZE", "REBUILD", "REPAIR", "TRUNCATE", "EXCHANGE",
		"SECONDARY_ENGINE", "SECONDARY_ENGINE_ATTRIBUTE", "ENGINE_ATTRIBUTE", "AUTOEXTEND_SIZE", "COMPRESSION",
		"STORAGE", "UPGRADE", "VALIDATION":
		return alterSpec{Kind: specIgnore}
	}
	return unsupported()
}

func join(toks []token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch {
		case t.str:
			b.WriteString("'" + t.s + "'")
		case t.quoted:
			b.WriteString("`" + t.s + "`")
		default:
			b.WriteString(t.s)
		}
	}
	return b.String()
}

// multiWordTypes are type names of more than one word.
var multiWordTypes = map[string]string{
	"double precision":  "double",
	"national char":     "char",
	"national varchar":  "varchar",
	"character varying": "varchar",
	"long varchar":      "mediumtext",
	"long varbinary":    "mediumblob",
	"char varying":      "varchar",
}

// columnDef reads a column definition (type and attributes) after a
// column name.
func columnDef(k specKind, name, newName string, p *parser) alterSpec {
	s := alterSpec{Kind: k, Column: name, NewName: newName}
	t, ok := p.next()
	if !ok || t.quoted {
		return alterSpec{Kind: specUnsupported, Reason: fmt.Sprintf("column %s: no type", name)}
	}
	dt := strings.ToLower(t.s)
	if nt, ok := p.peek(); ok && !nt.quoted {
		if m, ok := multiWordTypes[dt+" "+strings.ToLower(nt.s)]; ok {
			dt = m
			p.i++
		}
	}
	if dt == "character" {
		dt = "char"
	}
	ct := dt
	if p.accept("(") {
		var args []string
		depth := 1
		var cur strings.Builder
		for depth > 0 {
			a, ok := p.next()
			if !ok {
				break
			}
			if !a.quoted {
				switch a.s {
				case "(":
					depth++
				case ")":
					depth--
					if depth == 0 {
						args = append(args, cur.String())
						continue
					}
				case ",":
					if depth == 1 {
						args = append(args, cur.String())
						cur.Reset()
						continue
					}
				}
			}
			if a.str {
				cur.WriteString("'" + strings.ReplaceAll(a.s, "'", "''") + "'")
			} else {
				cur.WriteString(a.s)
			}
		}
		ct += "(" + strings.Join(args, ",") + ")"
	}
	nullable, hasDefault, generated, autoinc := true, false, false, false
	for {
		a, ok := p.next()
		if !ok {
			break
		}
		switch {
		case a.is("UNSIGNED"):
			ct += " unsigned"
		case a.is("NOT"):
			if p.accept("NULL") {
				nullable = false
			}
		case a.is("DEFAULT"):
			if d, ok := p.next(); ok && (!d.is("NULL") || d.quoted) {
				hasDefault = true
			}
		case a.is("AUTO_INCREMENT"):
			autoinc = true
		case a.is("GENERATED") || a.is("AS"):
			generated = true
		case a.is("CHARACTER") || a.is("CHARSET"):
			p.accept("SET")
			if cs, ok := p.next(); ok && strings.EqualFold(cs.s, "binary") {
				ct += " character set binary"
			}
		case a.is("PRIMARY"):
			return alterSpec{Kind: specUnsupported, Reason: fmt.Sprintf("column %s: PRIMARY KEY changes the key Floe applies updates by", name)}
		}
	}
	s.DataType, s.ColumnType = dt, ct
	s.Exact = nullable && !hasDefault && !generated && !autoinc
	return s
}
