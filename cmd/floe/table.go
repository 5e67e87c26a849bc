package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"

	icetable "github.com/apache/iceberg-go/table"

	"github.com/floe-lake/floe/inspect"
	"github.com/floe-lake/floe/table"
)

const tableUsage = `usage: floe table [flags] <subcommand> [args]

subcommands:
  list [namespace]       namespaces (nested ones included) and their tables
  describe <ns.table>    schema, partitioning, sort order, properties, positions
  snapshots <ns.table>   the table's snapshots, oldest first
  files <ns.table>       the data files of the current snapshot

Flags go before the subcommand: floe table -format json describe ods.events

flags:
`

// The JSON shapes of 'floe table list' and 'floe table files'.
type (
	namespaceListing = inspect.Namespace
	fileInfo         = inspect.File
)

// registerTable is 'floe table': read-only inspection of the catalog.
func registerTable(fs *flag.FlagSet) func(ctx context.Context, env *env, args []string) error {
	cfgPath := configFlag(fs)
	format := fs.String("format", "text", "output format: text (aligned columns) or json")
	asJSON := fs.Bool("json", false, "same as -format json")
	fs.Usage = func() {
		_, _ = fmt.Fprint(fs.Output(), tableUsage)
		fs.PrintDefaults()
	}
	return func(ctx context.Context, env *env, args []string) error {
		if *asJSON {
			*format = "json"
		}
		if *format != "text" && *format != "json" {
			return usageError{fmt.Errorf("-format: %q is not text or json", *format)}
		}
		return runTable(ctx, env, *cfgPath, *format == "json", args)
	}
}

func runTable(ctx context.Context, env *env, cfgPath string, asJSON bool, args []string) error {
	if len(args) == 0 {
		return usageError{errors.New("missing subcommand: list, describe, snapshots or files (see floe table -h)")}
	}
	sub, rest := args[0], args[1:]
	for _, a := range rest {
		if strings.HasPrefix(a, "-") {
			return usageError{fmt.Errorf("flag %s must come before the subcommand (floe table %s %s <args>)", a, a, sub)}
		}
	}
	var ident icetable.Identifier
	switch sub {
	case "list":
		if len(rest) > 1 {
			return usageError{errors.New("usage: floe table list [namespace]")}
		}
		if len(rest) == 1 {
			ident = strings.Split(rest[0], ".")
			if slices.Contains(ident, "") {
				return usageError{fmt.Errorf("namespace %q: empty part", rest[0])}
			}
		}
	case "describe", "snapshots", "files":
		if len(rest) != 1 {
			return usageError{fmt.Errorf("usage: floe table %s <namespace.table>", sub)}
		}
		var err error
		if ident, err = table.ParseIdent(rest[0]); err != nil {
			return usageError{err}
		}
	default:
		return usageError{fmt.Errorf("unknown subcommand %q: want list, describe, snapshots or files", sub)}
	}

	cfg, err := loadConfig(cfgPath, catalogSection)
	if err != nil {
		return err
	}
	cat, err := openCatalog(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeCatalog(cat, env.log)
	out := inspect.Printer{W: env.stdout, JSON: asJSON}
	if sub == "list" {
		listing, err := inspect.List(ctx, cat, env.log, ident)
		if err != nil {
			return err
		}
		return out.List(listing)
	}
	tbl, err := inspect.Load(ctx, cat, ident)
	if err != nil {
		return err
	}
	switch sub {
	case "describe":
		return out.Describe(inspect.Describe(tbl))
	case "snapshots":
		return out.Snapshots(inspect.Snapshots(tbl))
	}
	files, err := inspect.Files(ctx, tbl)
	if err != nil {
		return err
	}
	return out.Files(files, tbl.Location())
}
