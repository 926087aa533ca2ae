package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gopegasus/pegasus/admin"
)

func balanceCommands() []shellCommand {
	return []shellCommand{
		{name: "get_meta_level", summary: "the meta function level: steady (nothing is balanced) or lively (the balancer runs), or stopped, blind, freezed",
			run: (*shell).cmdGetMetaLevel},
		{name: "set_meta_level", args: "stopped|blind|freezed|steady|lively", summary: "set the meta function level",
			run: (*shell).cmdSetMetaLevel},
		{name: "balance", args: "-g APP_ID.PIDX -p move_pri|copy_pri|copy_sec -f FROM -t TO",
			summary: "one manual move of a partition's primary (move_pri) or of a secondary's replica (copy_sec)",
			detail: "-g/--gpid the partition; -p/--type the move; -f/--from and -t/--to the servers (ip:port).\n" +
				"copy_pri is refused by a gopegasus meta: move the primary first, then its replica (copy_sec).",
			run: (*shell).cmdBalance},
		{name: "node_decommission", args: "start ADDR... [-n] | cancel ADDR... | status",
			summary: "move every replica off replica servers before they are stopped, and follow it",
			detail: "start marks the servers as leaving and waits until they are empty (they can then be stopped),\n" +
				"printing the replicas left on each, unless -n/--no_wait; cancel marks them as staying again;\n" +
				"status shows the leaving servers. A server's data is deleted by the server itself once its\n" +
				"replicas have gone unassigned for gc_disk_garbage_replica_interval_seconds.",
			run: (*shell).cmdNodeDecommission},
	}
}

// decommissionWait bounds how long "node_decommission start" waits for the servers to empty.
const decommissionWait = time.Hour

func (sh *shell) cmdGetMetaLevel(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return usageErr("get_meta_level")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	l, err := sh.admin.GetMetaLevel(ctx)
	if err != nil {
		return err
	}
	sh.out.object([]field{{"meta_function_level", l}})
	return nil
}

func (sh *shell) cmdSetMetaLevel(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usageErr("set_meta_level stopped|blind|freezed|steady|lively")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	old, err := sh.admin.SetMetaLevel(ctx, args[0])
	if err != nil {
		return err
	}
	sh.out.message(fmt.Sprintf("meta function level %s (was %s)", strings.TrimPrefix(args[0], "fl_"), old))
	return nil
}

func (sh *shell) cmdBalance(ctx context.Context, args []string) error {
	const usage = "balance -g APP_ID.PIDX -p move_pri|copy_pri|copy_sec -f FROM -t TO"
	o, err := parseOpts(args, []optSpec{{"g", "gpid", true}, {"p", "type", true}, {"f", "from", true}, {"t", "to", true}})
	if err != nil {
		return err
	}
	gpid, kind, from, to := o.str("gpid", ""), o.str("type", ""), o.str("from", ""), o.str("to", "")
	if len(o.pos) != 0 || gpid == "" || kind == "" || from == "" || to == "" {
		return usageErr(usage)
	}
	app, pidx, ok := strings.Cut(gpid, ".")
	id, err1 := strconv.ParseInt(app, 10, 32)
	pi, err2 := strconv.Atoi(pidx)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("-g: %q is not APP_ID.PIDX", gpid)
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	tables, err := sh.admin.ListTables(ctx)
	if err != nil {
		return err
	}
	name := ""
	for _, t := range tables {
		if int64(t.AppID) == id {
			name = t.Name
		}
	}
	if name == "" {
		return fmt.Errorf("no available table has app id %d", id)
	}
	if err := sh.admin.Balance(ctx, name, pi, kind, from, to); err != nil {
		return err
	}
	sh.out.message(fmt.Sprintf("proposed %s of %s from %s to %s", kind, gpid, from, to))
	return nil
}

func (sh *shell) cmdNodeDecommission(ctx context.Context, args []string) error {
	const usage = "node_decommission start ADDR... [-n] | cancel ADDR... | status"
	o, err := parseOpts(args, []optSpec{{"n", "no_wait", false}})
	if err != nil {
		return err
	}
	if len(o.pos) == 0 {
		return usageErr(usage)
	}
	sub, nodes := o.pos[0], o.pos[1:]
	opCtx, cancel := sh.opCtx(ctx)
	defer cancel()
	switch {
	case sub == "status" && len(nodes) == 0:
		p, err := sh.admin.DecommissionStatus(opCtx)
		if err != nil {
			return err
		}
		sh.printDecommission(p)
		return nil
	case sub == "cancel" && len(nodes) > 0:
		if err := sh.admin.CancelDecommission(opCtx, nodes...); err != nil {
			return err
		}
		sh.out.message("OK")
		return nil
	case sub != "start" || len(nodes) == 0:
		return usageErr(usage)
	}
	if _, err := sh.admin.Decommission(opCtx, nodes...); err != nil {
		return err
	}
	if o.has("no_wait") {
		sh.out.message("decommission started; node_decommission status follows it")
		return nil
	}
	wait, cancelWait := context.WithTimeout(ctx, decommissionWait)
	defer cancelWait()
	err = sh.admin.WaitDecommission(wait, func(ps []*admin.DecommissionProgress) {
		for _, p := range ps {
			fmt.Fprintf(sh.stderr, "%s: %d replicas placed, %d groups still counting it, %d primaries\n",
				p.Node, p.Replicas, p.Voter, p.Primaries)
		}
	}, nodes...)
	if err != nil {
		return err
	}
	sh.out.message(fmt.Sprintf("decommissioned %s: empty, can be stopped", strings.Join(nodes, ", ")))
	return nil
}

func (sh *shell) printDecommission(ps []*admin.DecommissionProgress) {
	var rows [][]any
	for _, p := range ps {
		status := "NS_UNALIVE"
		if p.Alive {
			status = "NS_ALIVE"
		}
		rows = append(rows, []any{p.Node, status, p.Replicas, p.Voter, p.Primaries, p.Empty})
	}
	sh.out.table([]string{"address", "status", "replicas", "voter_of", "primaries", "empty"}, rows, "leaving", []field{{"count", len(rows)}})
}
