package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/metaclient"
)

// Operations are the admin calls of cold backups, restores and bulk loads (the RPCs an
// Apache Pegasus admin tool sends for them). A refused call returns an error wrapping the
// meta's error code, with its hint when it gave one.
type Operations interface {
	// StartBackup starts a one-time backup of table appID to the block service provider
	// (a [block_service.<name>] section of the servers), under path if not empty, and
	// returns the backup's id (its start time in unix milliseconds).
	StartBackup(ctx context.Context, appID int32, provider, path string) (int64, error)
	// QueryBackups returns the one-time backups of table appID (only backupID's if it is
	// not 0).
	QueryBackups(ctx context.Context, appID int32, backupID int64) ([]Backup, error)
	// AddBackupPolicy creates a periodic backup policy.
	AddBackupPolicy(ctx context.Context, p BackupPolicy) error
	// QueryBackupPolicies returns the named policies (all with none), each with its latest
	// backups (at most backups of them; 0: all).
	QueryBackupPolicies(ctx context.Context, names []string, backups int) ([]BackupPolicy, error)
	// ModifyBackupPolicy changes a policy.
	ModifyBackupPolicy(ctx context.Context, name string, c PolicyChange) error
	// RestoreTable creates a table from a backup and returns its app id; the restore then
	// runs in the background (see QueryRestore).
	RestoreTable(ctx context.Context, r Restore) (int32, error)
	// QueryRestore returns each partition's restore state of the table restoring.
	QueryRestore(ctx context.Context, appID int32) ([]RestorePartition, error)
	// StartBulkLoad starts a bulk load of table from root/cluster/table on provider.
	StartBulkLoad(ctx context.Context, table, cluster, provider, root string, ingestBehind bool) error
	// ControlBulkLoad pauses, restarts or cancels a table's bulk load.
	ControlBulkLoad(ctx context.Context, table string, c BulkLoadControl) error
	// QueryBulkLoad returns the state of a table's bulk load.
	QueryBulkLoad(ctx context.Context, table string) (*BulkLoad, error)
	// ClearBulkLoad forgets a table's finished bulk load.
	ClearBulkLoad(ctx context.Context, table string) error
}

// Backup is one backup of a table.
type Backup struct {
	ID       int64
	Table    string
	Provider string
	Path     string
	Start    time.Time
	End      time.Time // zero while running
	Failed   bool
}

// BackupPolicy is a periodic backup.
type BackupPolicy struct {
	Name         string
	Provider     string
	AppIDs       []int32
	Interval     time.Duration // whole seconds, at least the meta's minimum (a day)
	HistoryCount int           // backups kept
	StartTime    string        // "hh:mm", UTC: the first backup's time of day
	Disabled     bool
	// Backups are the policy's latest backups, newest first (QueryBackupPolicies only).
	Backups []PolicyBackup
}

// PolicyBackup is one backup of a policy.
type PolicyBackup struct {
	ID         int64
	Start, End time.Time // End zero while running
	AppIDs     []int32
}

// PolicyChange says what [Operations.ModifyBackupPolicy] changes; nil and zero fields
// leave the policy as it is.
type PolicyChange struct {
	AddAppIDs, RemoveAppIDs []int32
	Interval                time.Duration
	HistoryCount            int
	StartTime               string
	Disable, Enable         bool
	// Force disables a policy even while it is backing up.
	Force bool
}

// Restore says what [Operations.RestoreTable] restores.
type Restore struct {
	Cluster  string // the cluster the backup was taken on
	Policy   string // "" for a one-time backup
	BackupID int64
	Table    string // the backed-up table's name
	AppID    int32  // and id
	NewName  string // "" keeps Table
	Provider string
	// Path is the backup_path the backup was taken under ("" for none).
	Path string
	// SkipBadPartition starts a partition whose files are bad empty instead of failing it.
	SkipBadPartition bool
}

// RestorePartition is one partition's restore: Code "ERR_OK" while running or once done
// (Progress 1000), or why it failed.
type RestorePartition struct {
	Code     string
	Progress int // 0 to 1000
}

// BulkLoadControl is what [Operations.ControlBulkLoad] does.
type BulkLoadControl int

// Bulk load controls.
const (
	BulkLoadPause BulkLoadControl = iota
	BulkLoadRestart
	BulkLoadCancel
	BulkLoadForceCancel
)

// BulkLoad is the state of a table's bulk load.
type BulkLoad struct {
	Status     string   // BLS_DOWNLOADING, ..., BLS_SUCCEED; BLS_INVALID: none
	Partitions []string // each partition's status
	// Replicas holds, per partition, each replica's download progress (percent).
	Replicas [][]BulkLoadReplica
	Loading  bool
	Hint     string
}

// BulkLoadReplica is one replica's part of a bulk load.
type BulkLoadReplica struct {
	Address          string
	DownloadProgress int
	Ingestion        string // IS_INVALID, IS_RUNNING, IS_SUCCEED, IS_FAILED
}

// opFailed is the error of a refused operation: what it was, the reply's error and hint.
func opFailed(what string, err error, hint string) error {
	return fmt.Errorf("%s: %w", what, withHint(err, idl.Some(hint)))
}

func (c *client) StartBackup(ctx context.Context, appID int32, provider, path string) (int64, error) {
	q := &idl.StartBackupAppRequest{BackupProviderType: provider, AppID: appID}
	if path != "" {
		q.BackupPath = idl.Some(path)
	}
	r, err := call(ctx, c, idl.RPCStartBackupApp, q, func(r *idl.StartBackupAppResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		hint := ""
		if r != nil {
			hint = r.HintMessage
		}
		return 0, opFailed(fmt.Sprintf("backup of app %d", appID), err, hint)
	}
	return r.BackupID.V, nil
}

func (c *client) QueryBackups(ctx context.Context, appID int32, backupID int64) ([]Backup, error) {
	q := &idl.QueryBackupStatusRequest{AppID: appID}
	if backupID != 0 {
		q.BackupID = idl.Some(backupID)
	}
	r, err := call(ctx, c, idl.RPCQueryBackupStatus, q, func(r *idl.QueryBackupStatusResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		hint := ""
		if r != nil {
			hint = r.HintMessage
		}
		return nil, opFailed(fmt.Sprintf("backups of app %d", appID), err, hint)
	}
	var out []Backup
	for _, it := range r.BackupItems.V {
		b := Backup{ID: it.BackupID, Table: it.AppName, Provider: it.BackupProviderType, Path: it.BackupPath,
			Start: time.UnixMilli(it.StartTimeMS), Failed: it.IsBackupFailed}
		if it.EndTimeMS != 0 {
			b.End = time.UnixMilli(it.EndTimeMS)
		}
		out = append(out, b)
	}
	return out, nil
}

func (c *client) AddBackupPolicy(ctx context.Context, p BackupPolicy) error {
	q := &idl.AddBackupPolicyRequest{BackupProviderType: p.Provider, PolicyName: p.Name, AppIDs: p.AppIDs,
		BackupIntervalSeconds: int64(p.Interval / time.Second), BackupHistoryCountToKeep: int32(p.HistoryCount), StartTime: p.StartTime}
	r, err := call(ctx, c, idl.RPCAddBackupPolicy, q, func(r *idl.AddBackupPolicyResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		hint := ""
		if r != nil {
			hint = r.HintMessage
		}
		return opFailed("add backup policy "+p.Name, err, hint)
	}
	return nil
}

func (c *client) QueryBackupPolicies(ctx context.Context, names []string, backups int) ([]BackupPolicy, error) {
	q := &idl.QueryBackupPolicyRequest{PolicyNames: names, BackupInfoCount: int32(backups)}
	r, err := call(ctx, c, idl.RPCQueryBackupPolicy, q, func(r *idl.QueryBackupPolicyResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		hint := ""
		if r != nil {
			hint = r.HintMsg.V
		}
		return nil, opFailed("query backup policies", err, hint)
	}
	var out []BackupPolicy
	for i, e := range r.Policies {
		var iv int64
		fmt.Sscan(e.BackupIntervalSeconds, &iv)
		p := BackupPolicy{Name: e.PolicyName, Provider: e.BackupProviderType, AppIDs: e.AppIDs, Interval: time.Duration(iv) * time.Second,
			HistoryCount: int(e.BackupHistoryCountToKeep), StartTime: e.StartTime, Disabled: e.IsDisable}
		if i < len(r.BackupInfos) {
			for _, b := range r.BackupInfos[i] {
				pb := PolicyBackup{ID: b.BackupID, Start: time.UnixMilli(b.StartTimeMS), AppIDs: b.AppIDs}
				if b.EndTimeMS != 0 {
					pb.End = time.UnixMilli(b.EndTimeMS)
				}
				p.Backups = append(p.Backups, pb)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func (c *client) ModifyBackupPolicy(ctx context.Context, name string, ch PolicyChange) error {
	q := &idl.ModifyBackupPolicyRequest{PolicyName: name}
	if len(ch.AddAppIDs) > 0 {
		q.AddAppIDs = idl.Some(ch.AddAppIDs)
	}
	if len(ch.RemoveAppIDs) > 0 {
		q.RemovalAppIDs = idl.Some(ch.RemoveAppIDs)
	}
	if ch.Interval > 0 {
		q.NewBackupIntervalSec = idl.Some(int64(ch.Interval / time.Second))
	}
	if ch.HistoryCount > 0 {
		q.BackupHistoryCountToKeep = idl.Some(int32(ch.HistoryCount))
	}
	if ch.StartTime != "" {
		q.StartTime = idl.Some(ch.StartTime)
	}
	switch {
	case ch.Disable:
		q.IsDisable = idl.Some(true)
		if ch.Force {
			q.ForceDisable = idl.Some(true)
		}
	case ch.Enable:
		q.IsDisable = idl.Some(false)
	}
	r, err := call(ctx, c, idl.RPCModifyBackupPolicy, q, func(r *idl.ModifyBackupPolicyResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		hint := ""
		if r != nil {
			hint = r.HintMessage
		}
		return opFailed("modify backup policy "+name, err, hint)
	}
	return nil
}

func (c *client) RestoreTable(ctx context.Context, rs Restore) (int32, error) {
	q := &idl.RestoreRequest{ClusterName: rs.Cluster, PolicyName: rs.Policy, TimeStamp: rs.BackupID, AppName: rs.Table,
		AppID: rs.AppID, NewAppName: rs.NewName, BackupProviderName: rs.Provider, SkipBadPartition: rs.SkipBadPartition}
	if rs.Path != "" {
		q.RestorePath = idl.Some(rs.Path)
	}
	r, err := call(ctx, c, idl.RPCStartRestore, q, func(r *idl.RestoreResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		return 0, fmt.Errorf("restore of %s (backup %d): %w", rs.Table, rs.BackupID, err)
	}
	return r.AppID, nil
}

func (c *client) QueryRestore(ctx context.Context, appID int32) ([]RestorePartition, error) {
	r, err := call(ctx, c, idl.RPCQueryRestoreStatus, &idl.QueryRestoreRequest{RestoreAppID: appID},
		func(r *idl.QueryRestoreResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		return nil, fmt.Errorf("restore status of app %d: %w", appID, err)
	}
	out := make([]RestorePartition, len(r.RestoreStatus))
	for i, code := range r.RestoreStatus {
		out[i].Code = string(code)
		if i < len(r.RestoreProgress) {
			out[i].Progress = int(r.RestoreProgress[i])
		}
	}
	return out, nil
}

func (c *client) StartBulkLoad(ctx context.Context, table, cluster, provider, root string, ingestBehind bool) error {
	q := &idl.StartBulkLoadRequest{AppName: table, ClusterName: cluster, FileProviderType: provider, RemoteRootPath: root, IngestBehind: ingestBehind}
	r, err := call(ctx, c, idl.RPCStartBulkLoad, q, func(r *idl.StartBulkLoadResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		hint := ""
		if r != nil {
			hint = r.HintMsg
		}
		return opFailed("bulk load of "+table, err, hint)
	}
	return nil
}

func (c *client) ControlBulkLoad(ctx context.Context, table string, ctl BulkLoadControl) error {
	r, err := call(ctx, c, idl.RPCControlBulkLoad, &idl.ControlBulkLoadRequest{AppName: table, Type: idl.BulkLoadControlType(ctl)},
		func(r *idl.ControlBulkLoadResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		hint := ""
		if r != nil {
			hint = r.HintMsg.V
		}
		return opFailed(fmt.Sprintf("%s bulk load of %s", idl.BulkLoadControlType(ctl), table), err, hint)
	}
	return nil
}

func (c *client) QueryBulkLoad(ctx context.Context, table string) (*BulkLoad, error) {
	r, err := call(ctx, c, idl.RPCQueryBulkLoadStatus, &idl.QueryBulkLoadRequest{AppName: table},
		func(r *idl.QueryBulkLoadResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		hint := ""
		if r != nil {
			hint = r.HintMsg.V
		}
		return nil, opFailed("bulk load of "+table, err, hint)
	}
	b := &BulkLoad{Status: r.AppStatus.String(), Loading: r.IsBulkLoading.V, Hint: r.HintMsg.V}
	for i, s := range r.PartitionsStatus {
		b.Partitions = append(b.Partitions, s.String())
		var reps []BulkLoadReplica
		if i < len(r.BulkLoadStates) {
			for _, st := range r.BulkLoadStates[i] {
				reps = append(reps, BulkLoadReplica{Address: st.Addr.String(), DownloadProgress: int(st.State.DownloadProgress.V),
					Ingestion: st.State.IngestStatus.V.String()})
			}
		}
		b.Replicas = append(b.Replicas, reps)
	}
	return b, nil
}

func (c *client) ClearBulkLoad(ctx context.Context, table string) error {
	r, err := call(ctx, c, idl.RPCClearBulkLoad, &idl.ClearBulkLoadRequest{AppName: table},
		func(r *idl.ClearBulkLoadResponse) metaclient.Status { return metaclient.CodeStatus(r.Err) })
	if err != nil {
		hint := ""
		if r != nil {
			hint = r.HintMsg
		}
		return opFailed("clear bulk load of "+table, err, hint)
	}
	return nil
}
