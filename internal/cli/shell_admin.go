package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/wire"
)

func adminCommands() []shellCommand {
	return []shellCommand{
		{name: "ls", args: "[-d] [-a]", summary: "list the tables; -d/--detailed adds partition health, -a/--all dropped tables with their drop and expiry times", run: (*shell).cmdLs},
		{name: "create", args: "TABLE [-p PARTITIONS] [-r REPLICAS] [-e KEY=VALUE,...]",
			summary: "create a table (default 4 partitions of 3 replicas) and wait until it serves (every partition with its primary and secondaries)",
			detail:  "-p/--partition_count, -r/--replica_count, -e/--envs table envs as k1=v1,k2=v2.", run: (*shell).cmdCreate},
		{name: "drop", args: "TABLE [-r RESERVE_SECONDS]", summary: "drop a table", run: (*shell).cmdDrop},
		{name: "app", args: "TABLE [-d]", summary: "a table's information; -d/--detailed adds the partition map and replicas per node", run: (*shell).cmdApp},
		{name: "nodes", args: "[-d]", summary: "list the replica servers; -d/--detailed adds their replica counts", run: (*shell).cmdNodes},
		{name: "cluster_info", summary: "the meta server's view of the cluster", run: (*shell).cmdClusterInfo},
		{name: "get_app_envs", summary: "list the envs of the table in use", needTable: true, run: (*shell).cmdGetAppEnvs},
		{name: "set_app_envs", args: "KEY VALUE [KEY VALUE...]", summary: "set envs of the table in use", needTable: true, run: (*shell).cmdSetAppEnvs},
		{name: "del_app_envs", args: "KEY [KEY...]", summary: "delete envs of the table in use", needTable: true, run: (*shell).cmdDelAppEnvs},
		{name: "clear_app_envs", args: "[-a] [-p PREFIX]", summary: "delete every env (-a/--all) or those under PREFIX. (-p/--prefix) of the table in use", needTable: true, run: (*shell).cmdClearAppEnvs},
		{name: "manual_compact", args: "-a TABLE [-t once|periodic] [-c TRIGGER_TIME] [-e TARGET_LEVEL] [-b skip|force] [-m MAX_RUNNING]",
			summary: "ask a table's replicas to compact their data (through the manual_compact.* table envs)",
			detail: "-a/--app_name the table, -t/--type once (default: now) or periodic (daily at -c/--trigger_time,\n" +
				"e.g. 3:00,21:00), -e/--target_level -1 (default) or >= 1, -b/--bottommost_level_compaction\n" +
				"skip (default) or force, -m/--max_concurrent_running_count replicas of the table compacting at once\n" +
				"on one server (0: no bound). The replicas act on it at their next report to the meta server.",
			run: (*shell).cmdManualCompact},
	}
}

const timeLayout = "2006-01-02_15:04:05"

func (sh *shell) findTable(ctx context.Context, name string) (*admin.TableInfo, error) {
	tables, err := sh.admin.ListTables(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, fmt.Errorf("table %q: %w", name, wire.ErrObjectNotFound)
}

// health counts a table's partitions: fully healthy ones have a primary and all their
// replicas; without a primary a partition can neither be read nor written.
type health struct{ full, unhealthy, noPrimary int }

func healthOf(cfg *admin.TableConfig) health {
	var h health
	for _, p := range cfg.Partitions {
		switch {
		case p.Primary == "":
			h.noPrimary++
			h.unhealthy++
		case int32(1+len(p.Secondaries)) < p.MaxReplicaCount:
			h.unhealthy++
		default:
			h.full++
		}
	}
	return h
}

func (sh *shell) cmdLs(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"d", "detailed", false}, {"a", "all", false}})
	if err != nil {
		return err
	}
	if len(o.pos) != 0 {
		return usageErr("ls [-d] [-a]")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	all := o.has("all")
	list := sh.admin.ListTables
	if all {
		list = sh.admin.ListAllTables
	}
	tables, err := list(ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(tables, func(a, b *admin.TableInfo) int { return int(a.AppID - b.AppID) })
	detailed := o.has("detailed")
	cols := []string{"app_id", "status", "app_name", "app_type", "partition_count", "replica_count", "is_stateful", "create_time", "envs_count"}
	if all {
		cols = append(cols, "drop_time", "drop_expire")
	}
	if detailed {
		cols = append(cols, "fully_healthy", "unhealthy", "write_unhealthy", "read_unhealthy")
	}
	var rows [][]any
	for _, t := range tables {
		r := []any{t.AppID, t.Status, t.Name, "pegasus", t.PartitionCount, t.ReplicaCount, true, t.CreateTime.Format(timeLayout), len(t.Envs)}
		if all {
			r = append(r, "-", "-")
			if !t.DropTime.IsZero() {
				r[len(r)-2], r[len(r)-1] = t.DropTime.Format(timeLayout), t.ExpireTime.Format(timeLayout)
			}
		}
		if detailed && t.Status != "AS_AVAILABLE" {
			r = append(r, "-", "-", "-", "-")
		} else if detailed {
			cfg, err := sh.admin.QueryConfig(ctx, t.Name)
			if err != nil {
				return err
			}
			h := healthOf(cfg)
			r = append(r, h.full, h.unhealthy, h.noPrimary, h.noPrimary)
		}
		rows = append(rows, r)
	}
	sh.out.table(cols, rows, "tables", []field{{"count", len(rows)}})
	return nil
}

func (sh *shell) cmdCreate(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"p", "partition_count", true}, {"r", "replica_count", true}, {"e", "envs", true}})
	if err != nil {
		return err
	}
	if len(o.pos) != 1 {
		return usageErr("create TABLE [-p PARTITIONS] [-r REPLICAS] [-e KEY=VALUE,...]")
	}
	p, err := o.int("partition_count", 4)
	if err != nil {
		return err
	}
	r, err := o.int("replica_count", 3)
	if err != nil {
		return err
	}
	envs := map[string]string{}
	for _, kv := range splitList(o.str("envs", "")) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("-e: %q is not KEY=VALUE", kv)
		}
		envs[k] = v
	}
	const wait = 60 * time.Second
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	id, err := sh.admin.CreateTable(ctx, o.pos[0], p, r, envs, int32(wait/time.Second), false)
	if err != nil {
		return err
	}
	sh.out.object([]field{{"result", "OK"}, {"app_name", o.pos[0]}, {"app_id", id}, {"partition_count", p}, {"replica_count", r}})
	return nil
}

func (sh *shell) cmdDrop(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"r", "reserve_seconds", true}})
	if err != nil {
		return err
	}
	if len(o.pos) != 1 {
		return usageErr("drop TABLE [-r RESERVE_SECONDS]")
	}
	reserve, err := o.int("reserve_seconds", 0)
	if err != nil {
		return err
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if _, err := sh.findTable(ctx, o.pos[0]); err != nil {
		return err
	}
	if err := sh.admin.DropTable(ctx, o.pos[0], int64(reserve)); err != nil {
		return err
	}
	if sh.table == o.pos[0] {
		sh.table, sh.tbl = "", nil
	}
	sh.out.message("OK")
	return nil
}

func (sh *shell) cmdApp(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"d", "detailed", false}})
	if err != nil {
		return err
	}
	if len(o.pos) != 1 {
		return usageErr("app TABLE [-d]")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	t, err := sh.findTable(ctx, o.pos[0])
	if err != nil {
		return err
	}
	cfg, err := sh.admin.QueryConfig(ctx, t.Name)
	if err != nil {
		return err
	}
	h := healthOf(cfg)
	info := []field{{"app_name", t.Name}, {"app_id", t.AppID}, {"status", t.Status}, {"partition_count", t.PartitionCount},
		{"replica_count", t.ReplicaCount}, {"create_time", t.CreateTime.Format(timeLayout)}, {"envs_count", len(t.Envs)},
		{"fully_healthy", h.full}, {"unhealthy", h.unhealthy}}
	if !o.has("detailed") {
		sh.out.object(info)
		return nil
	}
	var parts [][]any
	type count struct{ primary, secondary int }
	perNode := map[string]*count{}
	node := func(a string) *count {
		if perNode[a] == nil {
			perNode[a] = &count{}
		}
		return perNode[a]
	}
	for _, p := range cfg.Partitions {
		primary := any(p.Primary)
		if p.Primary == "" {
			primary = nil
		} else {
			node(p.Primary).primary++
		}
		for _, s := range p.Secondaries {
			node(s).secondary++
		}
		parts = append(parts, []any{p.Index, p.Ballot, fmt.Sprintf("%d/%d", len(p.Secondaries)+btoi(p.Primary != ""), p.MaxReplicaCount), primary, slices.Clone(p.Secondaries)})
	}
	var nodes [][]any
	for _, a := range slices.Sorted(maps.Keys(perNode)) {
		c := perNode[a]
		nodes = append(nodes, []any{a, c.primary, c.secondary, c.primary + c.secondary})
	}
	partCols := []string{"pidx", "ballot", "replica_count", "primary", "secondaries"}
	nodeCols := []string{"node", "primary", "secondary", "total"}
	if sh.out.json {
		sh.out.writeJSON(append(object(info), field{"partitions", rowsJSON(partCols, parts)}, field{"nodes", rowsJSON(nodeCols, nodes)}))
		return nil
	}
	sh.out.object(info)
	fmt.Fprintln(sh.out.w)
	sh.out.table(partCols, parts, "", nil)
	fmt.Fprintln(sh.out.w)
	sh.out.table(nodeCols, nodes, "", nil)
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (sh *shell) cmdNodes(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"d", "detailed", false}})
	if err != nil {
		return err
	}
	if len(o.pos) != 0 {
		return usageErr("nodes [-d]")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	nodes, err := sh.admin.ListNodes(ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(nodes, func(a, b *admin.NodeInfo) int { return strings.Compare(a.Address, b.Address) })
	detailed := o.has("detailed")
	type count struct{ primary, secondary int }
	counts := map[string]*count{}
	if detailed {
		for _, n := range nodes {
			counts[n.Address] = &count{}
		}
		tables, err := sh.admin.ListTables(ctx)
		if err != nil {
			return err
		}
		for _, t := range tables {
			cfg, err := sh.admin.QueryConfig(ctx, t.Name)
			if err != nil {
				return err
			}
			for _, p := range cfg.Partitions {
				if c := counts[p.Primary]; c != nil {
					c.primary++
				}
				for _, s := range p.Secondaries {
					if c := counts[s]; c != nil {
						c.secondary++
					}
				}
			}
		}
	}
	cols := []string{"address", "status"}
	if detailed {
		cols = append(cols, "replica_count", "primary_count", "secondary_count")
	}
	var rows [][]any
	for _, n := range nodes {
		r := []any{n.Address, strings.TrimPrefix(n.Status, "NS_")}
		if detailed {
			c := counts[n.Address]
			r = append(r, c.primary+c.secondary, c.primary, c.secondary)
		}
		rows = append(rows, r)
	}
	sh.out.table(cols, rows, "nodes", []field{{"count", len(rows)}})
	return nil
}

func (sh *shell) cmdClusterInfo(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return usageErr("cluster_info")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	items, err := sh.admin.ClusterInfo(ctx)
	if err != nil {
		return err
	}
	var fields []field
	for _, it := range items {
		fields = append(fields, field{it.Key, it.Value})
	}
	sh.out.object(fields)
	return nil
}

func (sh *shell) cmdGetAppEnvs(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return usageErr("get_app_envs")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	envs, err := sh.admin.GetAppEnvs(ctx, sh.table)
	if err != nil {
		return err
	}
	var rows [][]any
	for _, k := range slices.Sorted(maps.Keys(envs)) {
		rows = append(rows, []any{k, envs[k]})
	}
	sh.out.table([]string{"key", "value"}, rows, "envs", []field{{"table", sh.table}, {"count", len(rows)}})
	return nil
}

func (sh *shell) cmdSetAppEnvs(ctx context.Context, args []string) error {
	if len(args) == 0 || len(args)%2 != 0 {
		return usageErr("set_app_envs KEY VALUE [KEY VALUE...]")
	}
	envs := map[string]string{}
	for i := 0; i < len(args); i += 2 {
		envs[args[i]] = args[i+1]
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := sh.admin.SetAppEnvs(ctx, sh.table, envs); err != nil {
		return err
	}
	sh.out.message("OK")
	return nil
}

func (sh *shell) cmdDelAppEnvs(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErr("del_app_envs KEY [KEY...]")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := sh.admin.DelAppEnvs(ctx, sh.table, args); err != nil {
		return err
	}
	sh.out.message("OK")
	return nil
}

func (sh *shell) cmdClearAppEnvs(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"a", "all", false}, {"p", "prefix", true}})
	if err != nil {
		return err
	}
	if len(o.pos) != 0 || o.has("all") == o.has("prefix") {
		return usageErr("clear_app_envs -a | -p PREFIX")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := sh.admin.ClearAppEnvs(ctx, sh.table, o.str("prefix", "")); err != nil {
		return err
	}
	sh.out.message("OK")
	return nil
}

func (sh *shell) cmdManualCompact(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"a", "app_name", true}, {"t", "type", true}, {"c", "trigger_time", true},
		{"e", "target_level", true}, {"b", "bottommost_level_compaction", true}, {"m", "max_concurrent_running_count", true}})
	if err != nil {
		return err
	}
	table, typ := o.str("app_name", ""), o.str("type", "once")
	level, err := o.int("target_level", -1)
	if err != nil {
		return err
	}
	maxRunning, err := o.int("max_concurrent_running_count", 0)
	if err != nil {
		return err
	}
	bottom := o.str("bottommost_level_compaction", "skip")
	trigger := o.str("trigger_time", "")
	switch {
	case len(o.pos) != 0 || table == "":
		return usageErr("manual_compact -a TABLE [options]; \"help manual_compact\" lists them")
	case typ != "once" && typ != "periodic":
		return errors.New("-t: want once or periodic")
	case typ == "periodic" && trigger == "":
		return errors.New("-t periodic needs -c TRIGGER_TIME (daily times such as 3:00,21:00)")
	case level == 0 || level < -1:
		return errors.New("-e: the target level is -1 or at least 1")
	case bottom != "skip" && bottom != "force":
		return errors.New("-b: want skip or force")
	case maxRunning < 0:
		return errors.New("-m: must not be negative")
	}
	if typ == "once" {
		trigger = strconv.FormatInt(time.Now().Unix(), 10)
	}
	envs := map[string]string{
		"manual_compact." + typ + ".trigger_time":                trigger,
		"manual_compact." + typ + ".target_level":                strconv.Itoa(level),
		"manual_compact." + typ + ".bottommost_level_compaction": bottom,
	}
	if maxRunning > 0 {
		envs["manual_compact.max_concurrent_running_count"] = strconv.Itoa(maxRunning)
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := sh.admin.SetAppEnvs(ctx, table, envs); err != nil {
		return err
	}
	var fields []field
	fields = append(fields, field{"result", "OK"}, field{"app_name", table})
	for _, k := range slices.Sorted(maps.Keys(envs)) {
		fields = append(fields, field{k, envs[k]})
	}
	sh.out.object(fields)
	return nil
}
