// Command mkstates writes the table states of Floe's engines matrix into a
// catalog with Floe's own packages (catalog.Open, table.Ensure, the writer,
// the compactor, table.Committer) and dumps Floe's view of each table — an
// iceberg-go scan — as canonical JSON lines, for external engines
// (integration/engines/read.py) to be compared against. It also dumps
// Floe's view of tables other engines wrote (the other direction).
//
//	mkstates write -catalog-type sqlite -catalog-uri DIR/catalog.db -warehouse DIR/wh -ns e2e -out OUT
//	mkstates dump  -catalog-type sqlite -catalog-uri DIR/catalog.db -warehouse DIR/wh -out OUT ns.t1 ns.t2
//
// write creates namespace -ns and one table per state in it, and writes
// OUT/manifest.json (the tables, their states and the filters engines
// also run) and OUT/<table>.jsonl (Floe's rows) and
// OUT/<table>.filter.jsonl (the rows the filter selects, computed from the
// rows, not by iceberg-go's pruning). dump writes OUT/<table>.jsonl for the
// tables named. S3 settings come from FLOE_S3_* as for floe itself.
//
// The canonical form, shared with integration/engines/canon.py: one JSON
// object per row, keyed by column name; null as null; booleans; integers as
// numbers; floats as numbers; decimals as strings with exactly the column's
// scale; strings; binary and fixed as lower-case hex; uuid as
// 8-4-4-4-12 lower-case; date "2006-01-02"; time "15:04:05.000000";
// timestamp "2006-01-02T15:04:05.000000"; timestamptz the same in UTC with
// a trailing "Z"; structs as objects; lists as arrays; maps as arrays of
// [key, value] pairs sorted by the key's JSON.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/floe-lake/floe/catalog"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	var cc catalog.Config
	fs.StringVar(&cc.Type, "catalog-type", "sqlite", "sqlite, postgres or rest")
	fs.StringVar(&cc.Name, "catalog-name", "floe", "catalog name")
	fs.StringVar(&cc.URI, "catalog-uri", "", "SQLite file, PostgreSQL DSN or REST URL")
	fs.StringVar(&cc.Warehouse, "warehouse", "", "local path, file:///abs or s3://bucket/prefix")
	ns := fs.String("ns", "e2e", "namespace of the state tables (write)")
	out := fs.String("out", "", "output directory")
	only := fs.String("only", "", "comma-separated states to write (default: all)")
	_ = fs.Parse(args)
	if *out == "" {
		usage()
	}
	cc.ApplyDefaults()
	if err := cc.Validate(); err != nil {
		fatal(err)
	}
	ctx := context.Background()
	cat, err := catalog.Open(ctx, cc)
	if err != nil {
		fatal(err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fatal(err)
	}
	switch cmd {
	case "write":
		var sel []string
		if *only != "" {
			sel = strings.Split(*only, ",")
		}
		err = writeStates(ctx, cat, *ns, *out, sel)
	case "dump":
		for _, name := range fs.Args() {
			if _, err = dumpTable(ctx, cat, name, *out, nil); err != nil {
				break
			}
		}
	default:
		usage()
	}
	if err != nil {
		fatal(err)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mkstates write|dump -catalog-type T -catalog-uri U -warehouse W [-ns NS] -out DIR [tables...]")
	os.Exit(2)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mkstates:", err)
	os.Exit(1)
}
