package meta

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"

	"github.com/gopegasus/pegasus/internal/backup"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Restore (operations.md §3): RPC_CM_START_RESTORE reads the backup's app_metadata, then
// creates a new table with the backup's partition count and the envs restore.* that say
// where its data is. Every replica of the new table downloads its partition's checkpoint,
// checks it (size and md5 of every file) and opens it (package replica); the replicas
// report their progress and outcome, which the leader records in the replicated state.

// Table envs of a restored table (Pegasus's names).
const (
	EnvRestoreProvider   = "restore.block_service_provider"
	EnvRestoreCluster    = "restore.cluster_name"
	EnvRestorePolicy     = "restore.policy_name"
	EnvRestoreAppName    = "restore.app_name"
	EnvRestoreAppID      = "restore.app_id"
	EnvRestoreBackupID   = "restore.backup_id"
	EnvRestoreSkipBad    = "restore.skip_bad_partition"
	EnvRestorePath       = "restore.restore_path"
	restoreProgressScale = 1000
)

// startRestore serves RPC_CM_START_RESTORE: the provider is read here, off the state loop,
// then the table is created on it.
func (s *Server) startRestore(ctx context.Context, q *idl.RestoreRequest) (idl.Value, wire.Code) {
	refuse := func(e idl.ErrorCode, _ string) idl.Value { return &idl.RestoreResponse{Err: e} }
	if code, leader := s.refusal(); code != "" {
		return refuse(code, leader), wire.OK
	}
	fail := func(c wire.Code, msg string) (idl.Value, wire.Code) {
		s.lg.Warn("restore refused", "app", q.AppName, "backup_id", q.TimeStamp, "err", msg)
		return &idl.RestoreResponse{Err: errCode(c)}, wire.OK
	}
	if s.cfg.ColdBackupDisabled {
		return fail(wire.ErrServiceNotActive, "cold backup is disabled")
	}
	var svc blockservice.Service
	var err error
	if s.cfg.BlockServices == nil {
		err = blockservice.ErrUnknownProvider
	} else {
		svc, err = s.cfg.BlockServices.Get(q.BackupProviderName)
	}
	if err != nil {
		return fail(wire.ErrInvalidParameters, fmt.Sprintf("invalid provider %q: %v", q.BackupProviderName, err))
	}
	if q.NewAppName == "" {
		q.NewAppName = q.AppName
	}
	root := backup.Root(q.RestorePath.V, q.ClusterName)
	var md backup.AppMetadata
	if err := backup.ReadJSON(ctx, svc, backup.AppMetadataPath(root, q.TimeStamp, q.AppName, q.AppID), &md); err != nil {
		code := wire.ErrFileOperationFailed
		switch {
		case errors.Is(err, blockservice.ErrNotFound):
			code = wire.ErrObjectNotFound
		case errors.Is(err, backup.ErrCorrupt), errors.Is(err, blockservice.ErrChecksum):
			code = wire.ErrCorruption
		}
		return fail(code, "read app_metadata: "+err.Error())
	}
	if md.PartitionCount <= 0 || md.PartitionCount > MaxPartitionCount {
		return fail(wire.ErrCorruption, fmt.Sprintf("app_metadata: partition count %d", md.PartitionCount))
	}
	envs := maps.Clone(md.Envs)
	if envs == nil {
		envs = map[string]string{}
	}
	maps.Copy(envs, map[string]string{
		EnvRestoreProvider: q.BackupProviderName, EnvRestoreCluster: q.ClusterName, EnvRestorePolicy: q.PolicyName,
		EnvRestoreAppName: q.AppName, EnvRestoreAppID: strconv.Itoa(int(q.AppID)),
		EnvRestoreBackupID: strconv.FormatInt(q.TimeStamp, 10), EnvRestoreSkipBad: strconv.FormatBool(q.SkipBadPartition),
	})
	if q.RestorePath.Set {
		envs[EnvRestorePath] = q.RestorePath.V
	}
	v, code := s.serve(ctx, func(ctx context.Context) idl.Value {
		return s.m.createRestored(ctx, q.NewAppName, &md, envs)
	}, refuse)
	return v, code
}

// createRestored creates the table a restore fills.
func (m *machine) createRestored(ctx context.Context, name string, md *backup.AppMetadata, envs map[string]string) idl.Value {
	fail := func(c wire.Code) idl.Value { return &idl.RestoreResponse{Err: errCode(c)} }
	if m.state.availableTable(name) != nil {
		return fail(wire.ErrInvalidParameters)
	}
	alive := m.replicaTargets()
	replicas := md.MaxReplicaCount
	if replicas < MinReplicaCount || replicas > MaxReplicaCount {
		replicas = 3
	}
	replicas = min(replicas, int32(len(alive)))
	if replicas < MinReplicaCount {
		return fail(wire.ErrStateFreezed)
	}
	appType := md.AppType
	if appType == "" {
		appType = "pegasus"
	}
	res, err := m.commit(ctx, &mutation{CreateTable: m.newTable(name, appType, md.PartitionCount, replicas, true, false, envs, alive)})
	if err != nil {
		return fail(commitErrCode(err))
	}
	if res.Code != wire.OK {
		return fail(res.Code)
	}
	run := &restoreRun{AppID: res.AppID, Parts: make([]restorePart, md.PartitionCount)}
	if _, err := m.commit(ctx, &mutation{Ops: &opsMutation{StartRestore: run}}); err != nil {
		m.lg.Warn("restore state not recorded; progress is reported from the replicas", "app_id", res.AppID, "err", err)
	}
	m.lg.Info("restore started", "table", name, "app_id", res.AppID, "from", md.AppName, "partitions", md.PartitionCount)
	return &idl.RestoreResponse{Err: errCode(wire.OK), AppID: res.AppID}
}

// queryRestoreStatus serves RPC_CM_QUERY_RESTORE_STATUS: per partition its error (ERR_OK
// while running or done) and its progress (1000 once done).
func (m *machine) queryRestoreStatus(q *idl.QueryRestoreRequest) *idl.QueryRestoreResponse {
	var run *restoreRun
	if m.state.Ops != nil {
		run = m.state.Ops.restore(q.RestoreAppID)
	}
	if run == nil {
		return &idl.QueryRestoreResponse{Err: errCode(wire.ErrAppNotExist), RestoreStatus: []idl.ErrorCode{}, RestoreProgress: []int32{}}
	}
	resp := &idl.QueryRestoreResponse{Err: errCode(wire.OK)}
	for i, p := range run.Parts {
		code, prog := errCode(wire.OK), m.progress[progressKey{kind: "restore", gpid: idl.GPID{AppID: run.AppID, PartitionIndex: int32(i)}}]
		switch {
		case p.Code != "":
			code = idl.ErrorCode(p.Code)
		case p.Done:
			prog = restoreProgressScale
		}
		resp.RestoreStatus = append(resp.RestoreStatus, code)
		resp.RestoreProgress = append(resp.RestoreProgress, prog)
	}
	return resp
}

// restoreErrors returns the failures of a restore, by partition (for logs and the shell).
func (m *machine) restoreErrors(appID int32) map[int32]string {
	out := map[int32]string{}
	if m.state.Ops == nil {
		return out
	}
	if run := m.state.Ops.restore(appID); run != nil {
		for i, p := range run.Parts {
			if p.Error != "" {
				out[int32(i)] = p.Error
			}
		}
	}
	return out
}

// noteRestoreReports records the outcomes in a server's restore reports. A partition's
// outcome is its first replica's: every replica reads the same files.
func (m *machine) noteRestoreReports(ctx context.Context, reps []cluster.RestoreReport) {
	var done []restorePartDone
	for _, rep := range reps {
		gpid := idl.GPID{AppID: rep.AppID, PartitionIndex: rep.PartitionIndex}
		m.progress[progressKey{kind: "restore", gpid: gpid}] = max(m.progress[progressKey{kind: "restore", gpid: gpid}], rep.Progress)
		if !rep.Done && rep.Err == "" {
			continue
		}
		run := m.state.Ops.restore(rep.AppID)
		if run == nil || rep.PartitionIndex < 0 || int(rep.PartitionIndex) >= len(run.Parts) {
			continue
		}
		if p := run.Parts[rep.PartitionIndex]; p.Done || p.Code != "" {
			continue
		}
		d := restorePartDone{AppID: rep.AppID, Pidx: rep.PartitionIndex, Skipped: rep.Skipped}
		if !rep.Done {
			d.Code, d.Err = rep.Code, rep.Err
			if d.Code == "" {
				d.Code = wire.ErrFileOperationFailed.Name()
			}
		}
		done = append(done, d)
	}
	if len(done) == 0 {
		return
	}
	if _, err := m.commit(ctx, &mutation{Ops: &opsMutation{RestoreParts: done}}); err != nil {
		return
	}
	for _, d := range done {
		if d.Code != "" {
			m.lg.Error("restore of a partition failed", "app_id", d.AppID, "pidx", d.Pidx, "code", d.Code, "err", d.Err)
		} else {
			m.lg.Info("partition restored", "app_id", d.AppID, "pidx", d.Pidx, "skipped", d.Skipped)
		}
	}
}
