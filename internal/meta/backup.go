package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopegasus/pegasus/internal/backup"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Cold backups, driven by the meta leader (operations.md §3).
//
// A backup of a table is a backupRun in the replicated state. While it runs, every sync
// answer to the server holding a partition's primary carries a [cluster.BackupTask]; the
// primary checkpoints its store, uploads it (package backup) and reports; the leader
// records each partition's outcome (its decree and size) through the raft group. The ops
// driver (opsdriver.go) writes the table's app_metadata before, and app_backup_status and
// backup_info once every partition is in, and only then is the backup finished: a backup
// that lost a partition is marked failed, never left looking complete. A new leader finds
// the runs in the state and carries on: the primaries are asked again, and one that was
// uploading when the leader changed goes on and reports to the new one.

// policyNamePattern is what a backup policy's name must match (operations.md §3).
var policyNamePattern = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// appMetadata is the table's app_info as Pegasus writes app_metadata: JSON, envs cleared.
func appMetadata(t *table) json.RawMessage {
	md := backup.AppMetadata{
		AppType: t.AppType, AppName: t.Name, AppID: t.AppID, PartitionCount: t.PartitionCount,
		IsStateful: t.IsStateful, MaxReplicaCount: t.ReplicaCount, Envs: map[string]string{},
		CreateSecond: t.CreateSecond, DataVersion: 1, Status: "app_status::AS_AVAILABLE",
	}
	b, _ := json.Marshal(md)
	return b
}

// provider returns the block service name, or an error when none is configured so.
func (m *machine) provider(name string) (blockservice.Service, error) {
	if m.cfg.BlockServices == nil {
		return nil, fmt.Errorf("%w: %q", blockservice.ErrUnknownProvider, name)
	}
	return m.cfg.BlockServices.Get(name)
}

// newBackupRun prepares the backup of table t with id.
func (m *machine) newBackupRun(t *table, id int64, provider, path, policy string) *backupRun {
	return &backupRun{ID: id, Policy: policy, Provider: provider, BackupPath: path,
		Root: backup.Root(path, m.cfg.ClusterName), AppID: t.AppID, AppName: t.Name,
		PartitionCount: t.PartitionCount, AppMetadata: appMetadata(t)}
}

// backingUp reports whether a backup of app id is running.
func (m *machine) backingUp(appID int32) bool {
	if m.state.Ops == nil {
		return false
	}
	return slices.ContainsFunc(m.state.Ops.Backups, func(r *backupRun) bool { return r.AppID == appID && !r.finished() })
}

// startBackupApp serves RPC_CM_START_BACKUP_APP.
func (m *machine) startBackupApp(ctx context.Context, q *idl.StartBackupAppRequest) *idl.StartBackupAppResponse {
	fail := func(c wire.Code, hint string) *idl.StartBackupAppResponse {
		return &idl.StartBackupAppResponse{Err: errCode(c), HintMessage: hint}
	}
	if m.cfg.ColdBackupDisabled {
		return fail(wire.ErrServiceNotActive, "cold backup is disabled")
	}
	t := m.state.tableByID(q.AppID)
	if t == nil || t.Status != idl.AppStatusAvailable {
		return fail(wire.ErrInvalidState, fmt.Sprintf("Backup failed: invalid app id %d.", q.AppID))
	}
	if _, err := m.provider(q.BackupProviderType); err != nil {
		return fail(wire.ErrInvalidParameters, fmt.Sprintf("Backup failed: invalid backup_provider_type %s: %v", q.BackupProviderType, err))
	}
	if m.backingUp(q.AppID) {
		return fail(wire.ErrInvalidState, fmt.Sprintf("Backup failed: app %d is actively being backed up.", q.AppID))
	}
	id := m.cfg.Now().UnixMilli()
	run := m.newBackupRun(t, id, q.BackupProviderType, q.BackupPath.V, "")
	res, err := m.commit(ctx, &mutation{Ops: &opsMutation{StartBackups: []*backupRun{run}}})
	if err != nil {
		return fail(commitErrCode(err), "cannot persist the backup")
	}
	if res.Code != wire.OK {
		return fail(res.Code, "a backup with this id exists")
	}
	m.lg.Info("backup started", "table", t.Name, "app_id", t.AppID, "backup_id", id, "provider", q.BackupProviderType)
	return &idl.StartBackupAppResponse{Err: errCode(wire.OK), HintMessage: fmt.Sprintf("Backup succeed: metadata of app %d has been initialized.", q.AppID),
		BackupID: idl.Some(id)}
}

// queryBackupStatus serves RPC_CM_QUERY_BACKUP_STATUS: the one-time backups of a table.
func (m *machine) queryBackupStatus(q *idl.QueryBackupStatusRequest) *idl.QueryBackupStatusResponse {
	resp := &idl.QueryBackupStatusResponse{Err: errCode(wire.OK)}
	var items []idl.BackupItem
	if m.state.Ops != nil {
		for _, r := range m.state.Ops.Backups {
			if r.AppID != q.AppID || r.Policy != "" || (q.BackupID.Set && q.BackupID.V != r.ID) {
				continue
			}
			items = append(items, idl.BackupItem{BackupID: r.ID, AppName: r.AppName, BackupProviderType: r.Provider,
				BackupPath: r.BackupPath, StartTimeMS: r.ID, EndTimeMS: r.EndMS, IsBackupFailed: r.Failed})
		}
	}
	if len(items) == 0 {
		resp.Err = errCode(wire.ErrInvalidParameters)
		resp.HintMessage = "Backup not found, please check app_id or backup_id."
		return resp
	}
	resp.BackupItems = idl.Some(items)
	return resp
}

// BackupProgress is how far a running backup is, for the console and the admin client's
// progress bars: partitions done of all.
func (m *machine) backupProgress(r *backupRun) (done, total int) {
	for _, p := range r.Parts {
		if p.Done {
			done++
		}
	}
	return done, len(r.Parts)
}

// checkStartTime parses "hh:mm".
func checkStartTime(s string) (time.Duration, bool) {
	h, mm, ok := strings.Cut(s, ":")
	if !ok || len(h) == 0 || len(h) > 2 || len(mm) != 2 {
		return 0, false
	}
	hv, err1 := strconv.Atoi(h)
	mv, err2 := strconv.Atoi(mm)
	if err1 != nil || err2 != nil || hv < 0 || hv > 23 || mv < 0 || mv > 59 {
		return 0, false
	}
	return time.Duration(hv)*time.Hour + time.Duration(mv)*time.Minute, true
}

// addBackupPolicy serves RPC_CM_ADD_BACKUP_POLICY.
func (m *machine) addBackupPolicy(ctx context.Context, q *idl.AddBackupPolicyRequest) *idl.AddBackupPolicyResponse {
	fail := func(c wire.Code, hint string) *idl.AddBackupPolicyResponse {
		return &idl.AddBackupPolicyResponse{Err: errCode(c), HintMessage: hint}
	}
	switch {
	case m.cfg.ColdBackupDisabled:
		return fail(wire.ErrServiceNotActive, "cold backup is disabled")
	case q.BackupIntervalSeconds < int64(m.cfg.MinBackupInterval/time.Second):
		return fail(wire.ErrInvalidParameters, fmt.Sprintf("backup interval must be >= %d s", int64(m.cfg.MinBackupInterval/time.Second)))
	case !policyNamePattern.MatchString(q.PolicyName) || strings.Contains(q.PolicyName, backup.InfoFile):
		return fail(wire.ErrInvalidParameters, fmt.Sprintf("invalid policy name %q: want [a-zA-Z_][a-zA-Z0-9_]*, without %q", q.PolicyName, backup.InfoFile))
	case q.BackupHistoryCountToKeep <= 0:
		return fail(wire.ErrInvalidParameters, "backup_history_count_to_keep must be positive")
	case len(q.AppIDs) == 0:
		return fail(wire.ErrInvalidParameters, "no app id")
	}
	if _, ok := checkStartTime(q.StartTime); !ok {
		return fail(wire.ErrInvalidParameters, fmt.Sprintf("invalid start time %q: want hh:mm", q.StartTime))
	}
	for _, id := range q.AppIDs {
		if !m.state.tableAvailable(id) {
			return fail(wire.ErrInvalidParameters, fmt.Sprintf("invalid app id %d", id))
		}
	}
	if _, err := m.provider(q.BackupProviderType); err != nil {
		return fail(wire.ErrInvalidParameters, fmt.Sprintf("invalid backup_provider_type %s: %v", q.BackupProviderType, err))
	}
	if m.state.Ops != nil && m.state.Ops.policy(q.PolicyName) != nil {
		return fail(wire.ErrInvalidParameters, fmt.Sprintf("policy %s already exists", q.PolicyName))
	}
	ids := slices.Clone(q.AppIDs)
	slices.Sort(ids)
	p := &backupPolicy{Name: q.PolicyName, Provider: q.BackupProviderType, AppIDs: slices.Compact(ids),
		IntervalSec: q.BackupIntervalSeconds, HistoryCount: q.BackupHistoryCountToKeep, StartTime: q.StartTime,
		CreateMS: m.cfg.Now().UnixMilli()}
	if _, err := m.commit(ctx, &mutation{Ops: &opsMutation{PutPolicy: p}}); err != nil {
		return fail(commitErrCode(err), "cannot persist the policy")
	}
	m.lg.Info("backup policy added", "policy", p.Name, "apps", p.AppIDs)
	return &idl.AddBackupPolicyResponse{Err: errCode(wire.OK)}
}

// modifyBackupPolicy serves RPC_CM_MODIFY_BACKUP_POLICY.
func (m *machine) modifyBackupPolicy(ctx context.Context, q *idl.ModifyBackupPolicyRequest) *idl.ModifyBackupPolicyResponse {
	fail := func(c wire.Code, hint string) *idl.ModifyBackupPolicyResponse {
		return &idl.ModifyBackupPolicyResponse{Err: errCode(c), HintMessage: hint}
	}
	if m.cfg.ColdBackupDisabled {
		return fail(wire.ErrServiceNotActive, "cold backup is disabled")
	}
	var old *backupPolicy
	if m.state.Ops != nil {
		old = m.state.Ops.policy(q.PolicyName)
	}
	if old == nil {
		return fail(wire.ErrInvalidParameters, fmt.Sprintf("policy %s does not exist", q.PolicyName))
	}
	p := *old
	p.AppIDs = slices.Clone(old.AppIDs)
	var hints []string
	if ids, ok := q.AddAppIDs.Get(); ok {
		for _, id := range ids {
			if !m.state.tableAvailable(id) {
				return fail(wire.ErrInvalidParameters, fmt.Sprintf("invalid app id %d", id))
			}
			p.AppIDs = append(p.AppIDs, id)
		}
	}
	if ids, ok := q.RemovalAppIDs.Get(); ok {
		p.AppIDs = slices.DeleteFunc(p.AppIDs, func(id int32) bool { return slices.Contains(ids, id) })
	}
	slices.Sort(p.AppIDs)
	p.AppIDs = slices.Compact(p.AppIDs)
	if v, ok := q.NewBackupIntervalSec.Get(); ok {
		if v < int64(m.cfg.MinBackupInterval/time.Second) {
			return fail(wire.ErrInvalidParameters, fmt.Sprintf("backup interval must be >= %d s", int64(m.cfg.MinBackupInterval/time.Second)))
		}
		p.IntervalSec = v
	}
	if v, ok := q.BackupHistoryCountToKeep.Get(); ok {
		if v <= 0 {
			return fail(wire.ErrInvalidParameters, "backup_history_count_to_keep must be positive")
		}
		p.HistoryCount = v
	}
	if v, ok := q.StartTime.Get(); ok {
		if _, ok := checkStartTime(v); !ok {
			return fail(wire.ErrInvalidParameters, fmt.Sprintf("invalid start time %q: want hh:mm", v))
		}
		p.StartTime = v
	}
	if v, ok := q.IsDisable.Get(); ok {
		if v && !q.ForceDisable.Or(false) && slices.ContainsFunc(m.state.Ops.Backups, func(r *backupRun) bool {
			return r.Policy == p.Name && !r.finished()
		}) {
			hints = append(hints, "policy is backing up now; it is disabled after this backup")
		}
		p.Disabled = v
	}
	if len(p.AppIDs) == 0 {
		return fail(wire.ErrInvalidParameters, "a policy needs at least one app")
	}
	if _, err := m.commit(ctx, &mutation{Ops: &opsMutation{PutPolicy: &p}}); err != nil {
		return fail(commitErrCode(err), "cannot persist the policy")
	}
	return &idl.ModifyBackupPolicyResponse{Err: errCode(wire.OK), HintMessage: strings.Join(hints, "; ")}
}

// queryBackupPolicy serves RPC_CM_QUERY_BACKUP_POLICY: the named policies (all with no
// name), each with its latest backup_info_count backups.
func (m *machine) queryBackupPolicy(q *idl.QueryBackupPolicyRequest) *idl.QueryBackupPolicyResponse {
	resp := &idl.QueryBackupPolicyResponse{Err: errCode(wire.OK), Policies: []idl.PolicyEntry{}, BackupInfos: [][]idl.BackupEntry{}}
	var missing []string
	for _, p := range m.policies(q.PolicyNames, &missing) {
		resp.Policies = append(resp.Policies, p.entry())
		resp.BackupInfos = append(resp.BackupInfos, m.policyBackups(p.Name, int(q.BackupInfoCount)))
	}
	if len(missing) > 0 {
		resp.HintMsg = idl.Some("invalid policy names: " + strings.Join(missing, ","))
		if len(resp.Policies) == 0 {
			resp.Err = errCode(wire.ErrInvalidParameters)
		}
	}
	return resp
}

// policies returns the named policies, or all; names not found go to missing.
func (m *machine) policies(names []string, missing *[]string) []*backupPolicy {
	if m.state.Ops == nil {
		*missing = append(*missing, names...)
		return nil
	}
	if len(names) == 0 {
		return m.state.Ops.Policies
	}
	var out []*backupPolicy
	for _, n := range names {
		if p := m.state.Ops.policy(n); p != nil {
			out = append(out, p)
		} else {
			*missing = append(*missing, n)
		}
	}
	return out
}

func (p *backupPolicy) entry() idl.PolicyEntry {
	return idl.PolicyEntry{PolicyName: p.Name, BackupProviderType: p.Provider,
		BackupIntervalSeconds: strconv.FormatInt(p.IntervalSec, 10), AppIDs: slices.Clone(p.AppIDs),
		BackupHistoryCountToKeep: p.HistoryCount, StartTime: p.StartTime, IsDisable: p.Disabled}
}

// policyBackups returns the latest n (all if n <= 0) backups of a policy, newest first.
func (m *machine) policyBackups(policy string, n int) []idl.BackupEntry {
	byID := map[int64]*idl.BackupEntry{}
	var ids []int64
	for _, r := range m.state.Ops.Backups {
		if r.Policy != policy {
			continue
		}
		e := byID[r.ID]
		if e == nil {
			e = &idl.BackupEntry{BackupID: r.ID, StartTimeMS: r.ID, EndTimeMS: r.EndMS}
			byID[r.ID] = e
			ids = append(ids, r.ID)
		}
		e.AppIDs = append(e.AppIDs, r.AppID)
		if !r.finished() {
			e.EndTimeMS = 0
		}
	}
	slices.SortFunc(ids, func(a, b int64) int { return int(min(max(b-a, -1), 1)) })
	if n > 0 && len(ids) > n {
		ids = ids[:n]
	}
	out := []idl.BackupEntry{}
	for _, id := range ids {
		out = append(out, *byID[id])
	}
	return out
}

// backupTasks returns the backup tasks for the server at addr: the running backups'
// partitions whose primary it is and that are not done.
func (m *machine) backupTasks(addr string) []cluster.BackupTask {
	if m.state.Ops == nil {
		return nil
	}
	var tasks []cluster.BackupTask
	for _, r := range m.state.Ops.Backups {
		t := m.state.tableByID(r.AppID)
		if r.finished() || r.Failed || !r.MetaWritten || t == nil || t.Status != idl.AppStatusAvailable {
			continue
		}
		for i, p := range r.Parts {
			if p.Done {
				continue
			}
			if n, ok := m.primaryOf(t, int32(i)); ok && n.addr == addr {
				tasks = append(tasks, cluster.BackupTask{AppID: r.AppID, PartitionIndex: int32(i), AppName: r.AppName,
					BackupID: r.ID, Provider: r.Provider, Root: r.Root})
			}
		}
	}
	return tasks
}

// noteBackupReports records the outcomes in a server's reports.
func (m *machine) noteBackupReports(ctx context.Context, reps []cluster.BackupReport) {
	var done []backupPartDone
	for _, rep := range reps {
		m.progress[progressKey{kind: "backup", id: rep.BackupID, gpid: idl.GPID{AppID: rep.AppID, PartitionIndex: rep.PartitionIndex}}] = rep.Progress
		if !rep.Done && rep.Err == "" {
			continue
		}
		r := m.state.Ops.backup(backupKey{rep.BackupID, rep.AppID})
		if r == nil || r.finished() || rep.PartitionIndex < 0 || int(rep.PartitionIndex) >= len(r.Parts) || r.Parts[rep.PartitionIndex].Done {
			continue
		}
		done = append(done, backupPartDone{backupKey: backupKey{rep.BackupID, rep.AppID}, Pidx: rep.PartitionIndex,
			Decree: rep.Decree, Size: rep.Size, Err: rep.Err})
	}
	if len(done) == 0 {
		return
	}
	if _, err := m.commit(ctx, &mutation{Ops: &opsMutation{BackupParts: done}}); err != nil {
		return // the server reports again
	}
	for _, d := range done {
		if d.Err != "" {
			m.lg.Error("backup of a partition failed", "backup_id", d.ID, "app_id", d.AppID, "pidx", d.Pidx, "err", d.Err)
		} else {
			m.lg.Info("partition backed up", "backup_id", d.ID, "app_id", d.AppID, "pidx", d.Pidx, "decree", d.Decree, "bytes", d.Size)
		}
	}
}

// progressKey names a partition's soft progress of an operation.
type progressKey struct {
	kind string
	id   int64
	gpid idl.GPID
}

// errNotServing: this meta no longer leads (a driver's step, or a wait, ends).
var errNotServing = errors.New("meta: not the serving leader")
