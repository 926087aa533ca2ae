package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/gopegasus/pegasus/admin"
)

func elasticCommands() []shellCommand {
	return []shellCommand{
		{name: "partition_split", args: "start TABLE NEW_COUNT [-n] | query TABLE | pause TABLE [-i PARENT] | restart TABLE [-i PARENT] | cancel TABLE -p OLD_COUNT",
			summary: "double a table's partition count online, and follow, pause, restart or cancel the split",
			detail: "start waits until the split is over, printing each parent partition that finished, unless\n" +
				"-n/--no_wait; -i/--parent_pidx one parent partition (default: all); -p/--old_partition_count\n" +
				"the count before the split. The count must be a power of two.",
			run: (*shell).cmdPartitionSplit},
		{name: "recall", args: "APP_ID [NEW_NAME]", summary: "bring back a dropped table that has not expired (ls -a lists them)",
			run: (*shell).cmdRecall},
	}
}

// splitWait bounds how long "partition_split start" waits for the split to end.
const splitWait = 10 * time.Minute

func (sh *shell) cmdPartitionSplit(ctx context.Context, args []string) error {
	const usage = "partition_split start TABLE NEW_COUNT [-n] | query TABLE | pause TABLE [-i PARENT] | restart TABLE [-i PARENT] | cancel TABLE -p OLD_COUNT"
	o, err := parseOpts(args, []optSpec{{"n", "no_wait", false}, {"i", "parent_pidx", true}, {"p", "old_partition_count", true}})
	if err != nil {
		return err
	}
	if len(o.pos) < 2 {
		return usageErr(usage)
	}
	sub, table := o.pos[0], o.pos[1]
	parent, err := o.int("parent_pidx", -1)
	if err != nil {
		return err
	}
	switch {
	case sub == "start" && len(o.pos) == 3:
		return sh.splitStart(ctx, table, o.pos[2], o.has("no_wait"))
	case len(o.pos) != 2:
		return usageErr(usage)
	case sub == "query":
		ctx, cancel := sh.opCtx(ctx)
		defer cancel()
		st, err := sh.admin.QueryPartitionSplit(ctx, table)
		if err != nil {
			return err
		}
		sh.printSplit(st)
		return nil
	case sub == "pause" || sub == "restart":
		ctx, cancel := sh.opCtx(ctx)
		defer cancel()
		if sub == "pause" {
			err = sh.admin.PausePartitionSplit(ctx, table, parent)
		} else {
			err = sh.admin.RestartPartitionSplit(ctx, table, parent)
		}
		if err != nil {
			return err
		}
	case sub == "cancel":
		old, err := o.int("old_partition_count", 0)
		if err != nil {
			return err
		}
		if old <= 0 {
			return usageErr("partition_split cancel TABLE -p OLD_COUNT")
		}
		ctx, cancel := sh.opCtx(ctx)
		defer cancel()
		if err := sh.admin.CancelPartitionSplit(ctx, table, old); err != nil {
			return err
		}
	default:
		return usageErr(usage)
	}
	sh.out.message("OK")
	return nil
}

// splitStart starts a split and, unless noWait, waits for its end, printing each parent
// that finished.
func (sh *shell) splitStart(ctx context.Context, table, count string, noWait bool) error {
	n, err := strconv.Atoi(count)
	if err != nil || n <= 0 {
		return fmt.Errorf("NEW_COUNT: %q is not a positive number", count)
	}
	start, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := sh.admin.StartPartitionSplit(start, table, n); err != nil {
		return err
	}
	if noWait {
		sh.out.message("split started")
		return nil
	}
	wait, cancelWait := context.WithTimeout(ctx, splitWait)
	defer cancelWait()
	left := n / 2
	err = sh.admin.WaitPartitionSplit(wait, table, func(st *admin.SplitStatus) {
		if len(st.Parents) != left {
			left = len(st.Parents)
			fmt.Fprintf(sh.stderr, "%d of %d parent partitions split\n", n/2-left, n/2)
		}
	})
	if err != nil {
		return err
	}
	cfgCtx, cancelCfg := sh.opCtx(ctx)
	defer cancelCfg()
	cfg, err := sh.admin.QueryConfig(cfgCtx, table)
	if err != nil {
		return err
	}
	if int(cfg.PartitionCount) != n {
		return fmt.Errorf("the split of table %s ended with %d partitions (cancelled?)", table, cfg.PartitionCount)
	}
	if left > 0 { // the last parents finished between two queries
		fmt.Fprintf(sh.stderr, "%d of %d parent partitions split\n", n/2, n/2)
	}
	sh.out.message(fmt.Sprintf("split done: table %s has %d partitions", table, n))
	return nil
}

func (sh *shell) printSplit(st *admin.SplitStatus) {
	var rows [][]any
	for _, p := range slices.Sorted(maps.Keys(st.Parents)) {
		rows = append(rows, []any{p, st.Parents[p]})
	}
	sh.out.table([]string{"parent_pidx", "split_status"}, rows, "parents",
		[]field{{"new_partition_count", st.NewPartitionCount}, {"splitting_count", len(rows)}})
}

func (sh *shell) cmdRecall(ctx context.Context, args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return usageErr("recall APP_ID [NEW_NAME]")
	}
	id, err := strconv.ParseInt(args[0], 10, 32)
	if err != nil || id <= 0 {
		return fmt.Errorf("APP_ID: %q is not an app id", args[0])
	}
	name := ""
	if len(args) == 2 {
		name = args[1]
	}
	ctx, cancel := context.WithTimeout(ctx, max(sh.timeout, time.Minute))
	defer cancel()
	t, err := sh.admin.RecallTable(ctx, int32(id), name)
	if err != nil {
		return err
	}
	sh.out.message(fmt.Sprintf("recalled table %s (app id %d, %d partitions)", t.Name, t.AppID, t.PartitionCount))
	return nil
}
