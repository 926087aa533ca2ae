// Command oneboxprof runs "pegasus onebox" with a CPU profile of the whole process: the meta
// and replica servers all run in it. bench/compare uses it to profile our servers under the
// YCSB workloads without a profiling flag on the onebox itself.
//
//	oneboxprof -cpuprofile onebox.pprof -- --data ./onebox --meta-port 34601
//
// Everything after "--" is passed to "pegasus onebox". The profile is written when the
// onebox stops (SIGINT or SIGTERM).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/gopegasus/pegasus/internal/cli"
)

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("oneboxprof", flag.ContinueOnError)
	out := fs.String("cpuprofile", "onebox.pprof", "file the CPU profile is written to")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oneboxprof:", err)
		return 1
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "oneboxprof:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, append([]string{"onebox"}, fs.Args()...), os.Stdout, os.Stderr)
	stop()
	pprof.StopCPUProfile()
	return code
}
