package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gopegasus/pegasus/admin"
)

// The shell's commands of cold backups, restores and bulk loads, named and flagged as the
// Apache Pegasus shell's (and, for backup and query_backup_status, admin-cli's).

func opsCommands() []shellCommand {
	return []shellCommand{
		{name: "add_backup_policy", args: "-p NAME -b PROVIDER -a APP_ID[,APP_ID...] -i INTERVAL_SECONDS -s HH:MM -c HISTORY_COUNT",
			summary: "add a periodic backup policy (start time of day in UTC)", run: (*shell).cmdAddBackupPolicy},
		{name: "ls_backup_policy", summary: "list the backup policies", run: (*shell).cmdLsBackupPolicy},
		{name: "query_backup_policy", args: "-p NAME[,NAME...] [-b BACKUP_INFO_COUNT]", summary: "a policy and its latest backups",
			run: (*shell).cmdQueryBackupPolicy},
		{name: "modify_backup_policy", args: "-p NAME [-a ADD_APP_IDS] [-r REMOVE_APP_IDS] [-i INTERVAL_SECONDS] [-c HISTORY_COUNT] [-s HH:MM]",
			summary: "change a backup policy", run: (*shell).cmdModifyBackupPolicy},
		{name: "disable_backup_policy", args: "-p NAME [-f]", summary: "stop a policy's backups (-f: even while one runs)", run: (*shell).cmdDisableBackupPolicy},
		{name: "enable_backup_policy", args: "-p NAME", summary: "resume a policy's backups", run: (*shell).cmdEnableBackupPolicy},
		{name: "backup", args: "APP_ID PROVIDER [BACKUP_PATH] [-w]", summary: "a one-time backup of a table (-w: wait for it, with a progress bar)",
			run: (*shell).cmdBackup},
		{name: "query_backup_status", args: "APP_ID [BACKUP_ID]", summary: "a table's one-time backups", run: (*shell).cmdQueryBackupStatus},
		{name: "restore_app", args: "-c OLD_CLUSTER -p POLICY -a OLD_APP -i OLD_APP_ID -t BACKUP_ID -b PROVIDER [-n NEW_APP] [-s] [-r RESTORE_PATH]",
			summary: "create a table from a backup (-s: skip bad partitions)", run: (*shell).cmdRestoreApp},
		{name: "query_restore_status", args: "RESTORE_APP_ID [-d] [-w]", summary: "a restore's progress (-d: per partition; -w: wait for it, with a progress bar)",
			run: (*shell).cmdQueryRestoreStatus},
		{name: "start_bulk_load", args: "-a APP -c CLUSTER -p PROVIDER -r ROOT [-i]", summary: "load prepared files into a table (-i: ingest behind)",
			run: (*shell).cmdStartBulkLoad},
		{name: "query_bulk_load_status", args: "-a APP [-i PIDX] [-d] [-w]", summary: "a bulk load's state (-d: per replica; -w: wait for it to end, with a progress bar)",
			run: (*shell).cmdQueryBulkLoadStatus},
		{name: "pause_bulk_load", args: "-a APP", summary: "pause a bulk load that is downloading", run: bulkControl(admin.BulkLoadPause)},
		{name: "restart_bulk_load", args: "-a APP", summary: "restart a paused bulk load", run: bulkControl(admin.BulkLoadRestart)},
		{name: "cancel_bulk_load", args: "-a APP [-f]", summary: "cancel a bulk load (-f: in any state)", run: (*shell).cmdCancelBulkLoad},
		{name: "clear_bulk_load", args: "-a APP", summary: "forget a finished bulk load's result", run: (*shell).cmdClearBulkLoad},
	}
}

// progressBar renders done of total as a bar of width cells and a percentage.
func progressBar(done, total, width int) string {
	if total <= 0 {
		total = 1
	}
	done = max(0, min(done, total))
	n := done * width / total
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "] " + strconv.Itoa(done*100/total) + "%"
}

func ids(s string) ([]int32, error) {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.ParseInt(f, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad app id %q", f)
		}
		out = append(out, int32(n))
	}
	return out, nil
}

func (sh *shell) cmdAddBackupPolicy(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"p", "policy_name", true}, {"b", "backup_provider_type", true}, {"a", "app_ids", true},
		{"i", "backup_interval_seconds", true}, {"s", "start_time", true}, {"c", "backup_history_cnt", true}})
	if err != nil {
		return err
	}
	appIDs, err := ids(o.str("app_ids", ""))
	if err != nil {
		return err
	}
	interval, err := o.int("backup_interval_seconds", 86400)
	if err != nil {
		return err
	}
	count, err := o.int("backup_history_cnt", 6)
	if err != nil {
		return err
	}
	p := admin.BackupPolicy{Name: o.str("policy_name", ""), Provider: o.str("backup_provider_type", ""), AppIDs: appIDs,
		Interval: time.Duration(interval) * time.Second, HistoryCount: count, StartTime: o.str("start_time", "")}
	if p.Name == "" || p.Provider == "" || len(appIDs) == 0 || p.StartTime == "" {
		return usageErr("add_backup_policy -p NAME -b PROVIDER -a APP_IDS -i INTERVAL -s HH:MM -c COUNT")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := sh.admin.AddBackupPolicy(ctx, p); err != nil {
		return err
	}
	sh.out.message("OK")
	return nil
}

func (sh *shell) printPolicies(ps []admin.BackupPolicy, withBackups bool) {
	var rows [][]any
	for _, p := range ps {
		status := "enabled"
		if p.Disabled {
			status = "disabled"
		}
		appIDs := make([]string, len(p.AppIDs))
		for i, id := range p.AppIDs {
			appIDs[i] = strconv.Itoa(int(id))
		}
		rows = append(rows, []any{p.Name, p.Provider, int64(p.Interval / time.Second), appIDs, p.StartTime, status, p.HistoryCount})
	}
	sh.out.table([]string{"name", "provider", "interval_seconds", "app_ids", "start_time", "status", "history_count"}, rows, "policies", nil)
	if !withBackups {
		return
	}
	for _, p := range ps {
		var brows [][]any
		for _, b := range p.Backups {
			end := "running"
			if !b.End.IsZero() {
				end = b.End.UTC().Format(timeLayout)
			}
			brows = append(brows, []any{b.ID, b.Start.UTC().Format(timeLayout), end, fmt.Sprint(b.AppIDs)})
		}
		sh.out.table([]string{"backup_id", "start_time", "end_time", "app_ids"}, brows, p.Name+"_backups", nil)
	}
}

func (sh *shell) cmdLsBackupPolicy(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return usageErr("ls_backup_policy")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	ps, err := sh.admin.QueryBackupPolicies(ctx, nil, 0)
	if err != nil {
		return err
	}
	sh.printPolicies(ps, false)
	return nil
}

func (sh *shell) cmdQueryBackupPolicy(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"p", "policy_name", true}, {"b", "backup_info_cnt", true}})
	if err != nil {
		return err
	}
	n, err := o.int("backup_info_cnt", 3)
	if err != nil {
		return err
	}
	names := strings.Split(o.str("policy_name", ""), ",")
	if names[0] == "" {
		return usageErr("query_backup_policy -p NAME[,NAME...] [-b COUNT]")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	ps, err := sh.admin.QueryBackupPolicies(ctx, names, n)
	if err != nil {
		return err
	}
	sh.printPolicies(ps, true)
	return nil
}

func (sh *shell) modifyPolicy(ctx context.Context, name string, ch admin.PolicyChange) error {
	if name == "" {
		return usageErr("-p NAME is required")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := sh.admin.ModifyBackupPolicy(ctx, name, ch); err != nil {
		return err
	}
	sh.out.message("OK")
	return nil
}

func (sh *shell) cmdModifyBackupPolicy(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"p", "policy_name", true}, {"a", "add_app", true}, {"r", "remove_app", true},
		{"i", "backup_interval_seconds", true}, {"c", "backup_history_count", true}, {"s", "start_time", true}})
	if err != nil {
		return err
	}
	var ch admin.PolicyChange
	if ch.AddAppIDs, err = ids(o.str("add_app", "")); err != nil {
		return err
	}
	if ch.RemoveAppIDs, err = ids(o.str("remove_app", "")); err != nil {
		return err
	}
	iv, err := o.int("backup_interval_seconds", 0)
	if err != nil {
		return err
	}
	ch.Interval = time.Duration(iv) * time.Second
	if ch.HistoryCount, err = o.int("backup_history_count", 0); err != nil {
		return err
	}
	ch.StartTime = o.str("start_time", "")
	return sh.modifyPolicy(ctx, o.str("policy_name", ""), ch)
}

func (sh *shell) cmdDisableBackupPolicy(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"p", "policy_name", true}, {"f", "force", false}})
	if err != nil {
		return err
	}
	return sh.modifyPolicy(ctx, o.str("policy_name", ""), admin.PolicyChange{Disable: true, Force: o.has("force")})
}

func (sh *shell) cmdEnableBackupPolicy(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"p", "policy_name", true}})
	if err != nil {
		return err
	}
	return sh.modifyPolicy(ctx, o.str("policy_name", ""), admin.PolicyChange{Enable: true})
}

func (sh *shell) cmdBackup(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"w", "wait", false}})
	if err != nil {
		return err
	}
	if len(o.pos) < 2 || len(o.pos) > 3 {
		return usageErr("backup APP_ID PROVIDER [BACKUP_PATH] [-w]")
	}
	appID, err := strconv.ParseInt(o.pos[0], 10, 32)
	if err != nil {
		return fmt.Errorf("bad app id %q", o.pos[0])
	}
	path := ""
	if len(o.pos) == 3 {
		path = o.pos[2]
	}
	octx, cancel := sh.opCtx(ctx)
	id, err := sh.admin.StartBackup(octx, int32(appID), o.pos[1], path)
	cancel()
	if err != nil {
		return err
	}
	if !o.has("wait") {
		sh.out.object([]field{{"result", "OK"}, {"backup_id", id}})
		return nil
	}
	for {
		octx, cancel := sh.opCtx(ctx)
		bs, err := sh.admin.QueryBackups(octx, int32(appID), id)
		cancel()
		if err != nil {
			return err
		}
		if len(bs) == 1 && !bs[0].End.IsZero() {
			if bs[0].Failed {
				return fmt.Errorf("backup %d failed", id)
			}
			sh.out.object([]field{{"result", "OK"}, {"backup_id", id}, {"took", bs[0].End.Sub(bs[0].Start).Round(time.Millisecond).String()}})
			return nil
		}
		if !sh.out.json {
			fmt.Fprintf(sh.out.w, "backup %d running (%s)\n", id, time.Since(time.UnixMilli(id)).Round(time.Second))
		}
		if err := pause(ctx, time.Second); err != nil {
			return err
		}
	}
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (sh *shell) cmdQueryBackupStatus(ctx context.Context, args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return usageErr("query_backup_status APP_ID [BACKUP_ID]")
	}
	appID, err := strconv.ParseInt(args[0], 10, 32)
	if err != nil {
		return fmt.Errorf("bad app id %q", args[0])
	}
	var id int64
	if len(args) == 2 {
		if id, err = strconv.ParseInt(args[1], 10, 64); err != nil {
			return fmt.Errorf("bad backup id %q", args[1])
		}
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	bs, err := sh.admin.QueryBackups(ctx, int32(appID), id)
	if err != nil {
		return err
	}
	var rows [][]any
	for _, b := range bs {
		status, end := "running", "-"
		if !b.End.IsZero() {
			status, end = "succeed", b.End.UTC().Format(timeLayout)
			if b.Failed {
				status = "failed"
			}
		}
		rows = append(rows, []any{b.ID, b.Table, b.Provider, b.Path, b.Start.UTC().Format(timeLayout), end, status})
	}
	sh.out.table([]string{"backup_id", "app_name", "provider", "backup_path", "start_time", "end_time", "status"}, rows, "backups", nil)
	return nil
}

func (sh *shell) cmdRestoreApp(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"c", "old_cluster_name", true}, {"p", "old_policy_name", true}, {"a", "old_app_name", true},
		{"i", "old_app_id", true}, {"t", "timestamp", true}, {"b", "backup_provider_type", true}, {"n", "new_app_name", true},
		{"s", "skip_bad_partition", false}, {"r", "restore_path", true}})
	if err != nil {
		return err
	}
	appID, err := o.int("old_app_id", 0)
	if err != nil {
		return err
	}
	ts, err := strconv.ParseInt(o.str("timestamp", "0"), 10, 64)
	if err != nil {
		return fmt.Errorf("-t: bad backup id: %w", err)
	}
	r := admin.Restore{Cluster: o.str("old_cluster_name", ""), Policy: o.str("old_policy_name", ""), BackupID: ts,
		Table: o.str("old_app_name", ""), AppID: int32(appID), NewName: o.str("new_app_name", ""),
		Provider: o.str("backup_provider_type", ""), Path: o.str("restore_path", ""), SkipBadPartition: o.has("skip_bad_partition")}
	if r.Cluster == "" || r.Table == "" || r.AppID == 0 || r.BackupID == 0 || r.Provider == "" {
		return usageErr("restore_app -c CLUSTER -p POLICY -a APP -i APP_ID -t BACKUP_ID -b PROVIDER [-n NEW_APP] [-s] [-r PATH]")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	id, err := sh.admin.RestoreTable(ctx, r)
	if err != nil {
		return err
	}
	sh.out.object([]field{{"result", "OK"}, {"restore_app_id", id}})
	return nil
}

func (sh *shell) cmdQueryRestoreStatus(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"d", "detailed", false}, {"w", "wait", false}})
	if err != nil {
		return err
	}
	if len(o.pos) != 1 {
		return usageErr("query_restore_status RESTORE_APP_ID [-d] [-w]")
	}
	appID, err := strconv.ParseInt(o.pos[0], 10, 32)
	if err != nil {
		return fmt.Errorf("bad app id %q", o.pos[0])
	}
	for {
		octx, cancel := sh.opCtx(ctx)
		parts, err := sh.admin.QueryRestore(octx, int32(appID))
		cancel()
		if err != nil {
			return err
		}
		done, sum, failed := 0, 0, 0
		var rows [][]any
		for i, p := range parts {
			sum += p.Progress
			switch {
			case p.Code != "ERR_OK":
				failed++
			case p.Progress >= 1000:
				done++
			}
			rows = append(rows, []any{i, p.Code, progressBar(p.Progress, 1000, 20)})
		}
		finished := done+failed == len(parts)
		if !o.has("wait") || finished {
			if o.has("detailed") {
				sh.out.table([]string{"pidx", "status", "progress"}, rows, "partitions", nil)
			}
			status := "restoring"
			switch {
			case failed > 0 && finished:
				status = "failed"
			case finished:
				status = "restored"
			}
			sh.out.object([]field{{"status", status}, {"progress", progressBar(sum, 1000*max(1, len(parts)), 30)},
				{"partitions_done", done}, {"partitions_failed", failed}, {"partitions", len(parts)}})
			return nil
		}
		if !sh.out.json {
			fmt.Fprintf(sh.out.w, "restoring %s\n", progressBar(sum, 1000*max(1, len(parts)), 30))
		}
		if err := pause(ctx, time.Second); err != nil {
			return err
		}
	}
}

func (sh *shell) cmdStartBulkLoad(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"a", "app_name", true}, {"c", "cluster_name", true}, {"p", "file_provider_type", true},
		{"r", "root_path", true}, {"i", "ingest_behind", false}})
	if err != nil {
		return err
	}
	app, cluster, provider, root := o.str("app_name", ""), o.str("cluster_name", ""), o.str("file_provider_type", ""), o.str("root_path", "")
	if app == "" || cluster == "" || provider == "" || root == "" {
		return usageErr("start_bulk_load -a APP -c CLUSTER -p PROVIDER -r ROOT [-i]")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := sh.admin.StartBulkLoad(ctx, app, cluster, provider, root, o.has("ingest_behind")); err != nil {
		return err
	}
	sh.out.message("OK")
	return nil
}

func (sh *shell) cmdQueryBulkLoadStatus(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"a", "app_name", true}, {"i", "partition_index", true}, {"d", "detailed", false}, {"w", "wait", false}})
	if err != nil {
		return err
	}
	app := o.str("app_name", "")
	if app == "" {
		return usageErr("query_bulk_load_status -a APP [-i PIDX] [-d] [-w]")
	}
	only, err := o.int("partition_index", -1)
	if err != nil {
		return err
	}
	for {
		octx, cancel := sh.opCtx(ctx)
		b, err := sh.admin.QueryBulkLoad(octx, app)
		cancel()
		if err != nil {
			return err
		}
		sum, n := 0, 0
		var rows [][]any
		for i, reps := range b.Replicas {
			for _, r := range reps {
				sum += r.DownloadProgress
				n++
				if only < 0 || only == i {
					rows = append(rows, []any{i, b.Partitions[i], r.Address, progressBar(r.DownloadProgress, 100, 20), r.Ingestion})
				}
			}
		}
		if !o.has("wait") || !b.Loading {
			if o.has("detailed") || only >= 0 {
				sh.out.table([]string{"pidx", "status", "replica", "download", "ingestion"}, rows, "replicas", nil)
			}
			fields := []field{{"app_name", app}, {"status", b.Status}, {"download", progressBar(sum, 100*max(1, n), 30)}}
			if b.Hint != "" {
				fields = append(fields, field{"hint", b.Hint})
			}
			sh.out.object(fields)
			return nil
		}
		if !sh.out.json {
			fmt.Fprintf(sh.out.w, "%s download %s\n", b.Status, progressBar(sum, 100*max(1, n), 30))
		}
		if err := pause(ctx, time.Second); err != nil {
			return err
		}
	}
}

func bulkControl(c admin.BulkLoadControl) func(*shell, context.Context, []string) error {
	return func(sh *shell, ctx context.Context, args []string) error { return sh.controlBulkLoad(ctx, args, c) }
}

func (sh *shell) controlBulkLoad(ctx context.Context, args []string, c admin.BulkLoadControl) error {
	o, err := parseOpts(args, []optSpec{{"a", "app_name", true}, {"f", "forced", false}})
	if err != nil {
		return err
	}
	app := o.str("app_name", "")
	if app == "" {
		return usageErr("-a APP is required")
	}
	if c == admin.BulkLoadCancel && o.has("forced") {
		c = admin.BulkLoadForceCancel
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := sh.admin.ControlBulkLoad(ctx, app, c); err != nil {
		return err
	}
	sh.out.message("OK")
	return nil
}

func (sh *shell) cmdCancelBulkLoad(ctx context.Context, args []string) error {
	return sh.controlBulkLoad(ctx, args, admin.BulkLoadCancel)
}

func (sh *shell) cmdClearBulkLoad(ctx context.Context, args []string) error {
	o, err := parseOpts(args, []optSpec{{"a", "app_name", true}})
	if err != nil {
		return err
	}
	app := o.str("app_name", "")
	if app == "" {
		return usageErr("clear_bulk_load -a APP")
	}
	ctx, cancel := sh.opCtx(ctx)
	defer cancel()
	if err := sh.admin.ClearBulkLoad(ctx, app); err != nil {
		return err
	}
	sh.out.message("OK")
	return nil
}
