// Package cli implements the subcommands of the pegasus binary. Each subcommand is a
// function of (ctx, args, stdout, stderr) with its own flag set; only this package reads
// flags and configuration files.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sort"
)

// Version is the gopegasus release this binary reports.
const Version = "0.1.0-dev"

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"version":  {"print the version", runVersion},
		"onebox":   {"run a meta and 3 replica servers in one process", runOnebox},
		"meta":     {"run one meta server", runMeta},
		"replica":  {"run one replica server", runReplica},
		"shell":    {"interactive shell: data and admin commands", runShell},
		"bench":    {"benchmark a cluster: YCSB workloads A–F, put, get, multi_get, scan", runBench},
		"bulkload": {"bulkload prepare: turn a CSV or JSON-lines file into a bulk load's files", runBulkLoad},
	}
}

// Main runs the subcommand named by args[0] and returns the process exit code: 0 on success,
// 1 when the command failed, 2 on a usage error.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "pegasus: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "pegasus %s: %v\n", args[0], err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

var errUsage = errors.New("usage error")

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: pegasus <command> [flags]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return errors.Join(errUsage, err)
	}
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	fmt.Fprintf(stdout, "gopegasus %s (revision %s, %s %s/%s)\n", Version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
