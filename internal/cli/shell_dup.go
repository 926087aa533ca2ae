package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/wire"
)

// dupCommands are the duplication commands, with the Apache Pegasus shell's names and flags.
func dupCommands() []shellCommand {
	return []shellCommand{
		{name: "add_dup", args: "TABLE REMOTE_CLUSTER [-s] [-a REMOTE_TABLE] [-r REMOTE_REPLICAS]",
			summary: "duplicate a table to another cluster (named in the metas' [pegasus.clusters])",
			detail: "-s/--sst seeds the follower with the table's data (its checkpoints), then ships the writes;\n" +
				"without it only new writes are shipped, to a follower table that must exist.\n" +
				"-a/--remote_app_name the follower table (default: TABLE), -r/--remote_replica_count its replicas\n" +
				"(default: TABLE's).",
			run: (*shell).cmdAddDup},
		{name: "query_dup", args: "TABLE [-d]", summary: "a table's duplications; -d/--detail adds each partition's progress", run: (*shell).cmdQueryDup},
		{name: "dups", args: "[-a PATTERN] [-m all|exact|anywhere|prefix|postfix] [-j]",
			summary: "the duplications of every table whose name matches (default: all); -j/--json prints JSON", run: (*shell).cmdDups},
		{name: "start_dup", args: "TABLE DUPID", summary: "ship a paused duplication's writes again", run: (*shell).cmdStartDup},
		{name: "pause_dup", args: "TABLE DUPID", summary: "stop shipping a duplication's writes (the master keeps its log, up to a bound)", run: (*shell).cmdPauseDup},
		{name: "remove_dup", args: "TABLE DUPID", summary: "stop and forget a duplication", run: (*shell).cmdRemoveDup},
		{name: "set_dup_fail_mode", args: "TABLE DUPID slow|skip",
			summary: "what a duplication does with a write the follower refuses: retry (slow) or skip it", run: (*shell).cmdSetDupFailMode},
	}
}

func (sh *shell) cmdAddDup(ctx context.Context, args []string) error {
	const usage = "add_dup TABLE REMOTE_CLUSTER [-s] [-a REMOTE_TABLE] [-r REMOTE_REPLICAS]"
	o, err := parseOpts(args, []optSpec{{"s", "sst", false}, {"a", "remote_app_name", true}, {"r", "remote_replica_count", true}})
	if err != nil {
		return err
	}
	if len(o.pos) != 2 {
		return usageErr(usage)
	}
	replicas, err := o.int("remote_replica_count", 0)
	if err != nil || replicas < 0 {
		return usageErr(usage)
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	table, remote := o.pos[0], o.pos[1]
	added, err := sh.admin.AddDuplication(ctx, table, remote, &admin.AddDuplicationOptions{
		RemoteTable: o.str("remote_app_name", ""), RemoteReplicas: int32(replicas), NoCheckpoint: !o.has("sst")})
	if errors.Is(err, wire.ErrDupExist) && added != nil {
		fmt.Fprintf(sh.stderr, "WARNING: table %s already duplicates to %s\n", table, remote)
		sh.out.object(dupAddedFields(table, remote, added))
		return nil
	}
	if err != nil {
		return err
	}
	sh.out.object(dupAddedFields(table, remote, added))
	return nil
}

func dupAddedFields(table, remote string, a *admin.DuplicationAdded) []field {
	return []field{{"app_name", table}, {"remote_cluster_name", remote}, {"appid", a.AppID}, {"dupid", a.DupID},
		{"remote_app_name", a.RemoteTable}, {"remote_replica_count", a.RemoteReplicas}}
}

var dupCols = []string{"dupid", "status", "remote_cluster", "remote_app_name", "remote_replica_count", "fail_mode", "create_time"}

func dupRow(d *admin.Duplication) []any {
	return []any{d.DupID, d.Status, d.Remote, d.RemoteTable, d.RemoteReplicas, d.FailMode, d.CreateTime.Format(timeLayout)}
}

func (sh *shell) cmdQueryDup(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"d", "detail", false}})
	if err != nil {
		return err
	}
	if len(o.pos) != 1 {
		return usageErr("query_dup TABLE [-d]")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	appID, ds, err := sh.admin.QueryDuplications(ctx, o.pos[0])
	if err != nil {
		return err
	}
	rows := make([][]any, 0, len(ds))
	for _, d := range ds {
		rows = append(rows, dupRow(d))
	}
	summary := []field{{"app_name", o.pos[0]}, {"appid", appID}, {"duplication_count", len(ds)}}
	if !o.has("detail") {
		sh.out.table(dupCols, rows, "duplications", summary)
		return nil
	}
	cols := []string{"dupid", "pidx", "confirmed_decree", "last_committed_decree", "not_confirmed", "lagging"}
	var prog [][]any
	for _, d := range ds {
		for _, p := range d.Partitions {
			prog = append(prog, []any{d.DupID, p.Index, p.Confirmed, p.LastCommitted, max(0, p.LastCommitted-p.Confirmed), p.Lagging})
		}
	}
	if sh.out.json {
		sh.out.writeJSON(append(object{{"duplications", rowsJSON(dupCols, rows)}, {"partitions", rowsJSON(cols, prog)}}, summary...))
		return nil
	}
	sh.out.table(dupCols, rows, "duplications", nil)
	fmt.Fprintln(sh.out.w)
	sh.out.table(cols, prog, "partitions", summary)
	return nil
}

func (sh *shell) cmdDups(ctx context.Context, args []string) error {
	const usage = "dups [-a PATTERN] [-m all|exact|anywhere|prefix|postfix] [-j]"
	o, err := parseOpts(args, []optSpec{{"a", "app_name_pattern", true}, {"m", "match_type", true}, {"j", "json", false}})
	if err != nil {
		return err
	}
	if len(o.pos) != 0 {
		return usageErr(usage)
	}
	types := map[string]admin.MatchType{"all": admin.MatchAll, "exact": admin.MatchExact, "anywhere": admin.MatchAnywhere,
		"prefix": admin.MatchPrefix, "postfix": admin.MatchPostfix}
	pattern := o.str("app_name_pattern", "")
	mt := admin.MatchAll
	if pattern != "" {
		mt = admin.MatchPrefix
	}
	if v := o.str("match_type", ""); v != "" {
		var ok bool
		if mt, ok = types[v]; !ok {
			return usageErr(usage)
		}
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	all, err := sh.admin.ListDuplications(ctx, pattern, mt)
	if err != nil {
		return err
	}
	cols := append([]string{"app_name"}, dupCols...)
	var rows [][]any
	tables := 0
	for _, name := range slices.Sorted(maps.Keys(all)) {
		if len(all[name]) > 0 {
			tables++
		}
		for _, d := range all[name] {
			rows = append(rows, append([]any{name}, dupRow(d)...))
		}
	}
	out := sh.out
	if o.has("json") {
		out = &printer{w: sh.out.w, json: true, hex: sh.out.hex}
	}
	out.table(cols, rows, "duplications", []field{{"duplicated_tables", tables}, {"duplication_count", len(rows)}})
	return nil
}

// tableDup reads "TABLE DUPID".
func tableDup(args []string, usage string) (string, int32, error) {
	if len(args) != 2 {
		return "", 0, usageErr(usage)
	}
	id, err := strconv.ParseInt(args[1], 10, 32)
	if err != nil {
		return "", 0, usageErr(usage)
	}
	return args[0], int32(id), nil
}

func (sh *shell) dupChange(ctx context.Context, args []string, usage string, fn func(context.Context, string, int32) error) error {
	table, id, err := tableDup(args, usage)
	if err != nil {
		return err
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := fn(ctx, table, id); err != nil {
		return err
	}
	sh.out.message("OK")
	return nil
}

func (sh *shell) cmdStartDup(ctx context.Context, args []string) error {
	return sh.dupChange(ctx, args, "start_dup TABLE DUPID", sh.admin.StartDuplication)
}

func (sh *shell) cmdPauseDup(ctx context.Context, args []string) error {
	return sh.dupChange(ctx, args, "pause_dup TABLE DUPID", sh.admin.PauseDuplication)
}

func (sh *shell) cmdRemoveDup(ctx context.Context, args []string) error {
	return sh.dupChange(ctx, args, "remove_dup TABLE DUPID", sh.admin.RemoveDuplication)
}

func (sh *shell) cmdSetDupFailMode(ctx context.Context, args []string) error {
	const usage = "set_dup_fail_mode TABLE DUPID slow|skip"
	if len(args) != 3 || (args[2] != "slow" && args[2] != "skip") {
		return usageErr(usage)
	}
	mode := args[2]
	return sh.dupChange(ctx, args[:2], usage, func(ctx context.Context, table string, id int32) error {
		return sh.admin.SetDuplicationFailMode(ctx, table, id, mode)
	})
}
