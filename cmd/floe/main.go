// Command floe is Floe's one binary: ingest, compact, read, aggregate and
// table administration over Apache Iceberg tables. main parses the
// subcommand and global flags, builds the logger and metrics registry, and
// runs the chosen component; each subcommand lives in its own file with a
// registerX/runX pair.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"syscall"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	// register adds the subcommand's flags and returns its run function.
	register func(fs *flag.FlagSet) func(ctx context.Context, env *env, args []string) error
}

// env is what every subcommand gets: its output streams and logger.
type env struct {
	stdout, stderr io.Writer
	log            *slog.Logger
}

func commands() []command {
	return []command{
		{"ingest", "run sources into Iceberg tables (daemon)", registerIngest},
		{"table", "list, describe, snapshots, files of a table", registerTable},
		{"compact", "rewrite small files, expire snapshots, remove orphans (daemon)", registerCompact},
		{"read", "read a table's rows or changes", registerRead},
		{"aggregate", "aggregate a table into a summary table, streaming or backfill", registerAggregate},
		{"transform", "filter, project and join a table into another, streaming or backfill", registerTransform},
		{"demo", "generator → ingest → compact → aggregate on a local warehouse", registerDemo},
		{"verify", "reconcile tables with their sources: aggregate, mysql, kafka", registerVerify},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: floe <command> [flags]")
	fmt.Fprintln(w)
	cmds := commands()
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'floe <command> -h' for a command's flags.")
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == args[0] {
			cmd = &c
			break
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "floe: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	fs := flag.NewFlagSet("floe "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	runFn := cmd.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "floe: %v\n", err)
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "floe: -cpuprofile: %v\n", err)
			return 2
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runFn(ctx, &env{stdout: stdout, stderr: stderr, log: log}, fs.Args()); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "floe %s: %v\n", cmd.name, err)
			return 2
		}
		fmt.Fprintf(stderr, "floe %s: %v\n", cmd.name, err)
		return 1
	}
	return 0
}

// alias registers name as another spelling of the flag of: both set the
// same value. Old spellings stay accepted this way.
func alias(fs *flag.FlagSet, name, of string) {
	fs.Var(fs.Lookup(of).Value, name, "same as -"+of)
}

// usageError is a mistake in the command line or config: exit code 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %q is not debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format: %q is not text or json", format)
}
