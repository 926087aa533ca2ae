package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/gopegasus/pegasus/internal/backup"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Bulk load (operations.md §2), driven by the meta leader. The load of a table is a bulkLoad
// in the replicated state: DOWNLOADING while every replica of every partition downloads its
// partition's files (checked by size and md5; RocksDB-made files converted); DOWNLOADED once
// all replicas of all partitions have them; INGESTING while each partition's primary
// proposes the ingestion as one raft entry, which every replica applies with Pebble's
// Ingest (client writes are refused meanwhile); SUCCEED once every partition ingested. A
// failure anywhere makes it FAILED with the error; PAUSED, CANCELED by request.

// bulkLoad is the state of a table's bulk load.
type bulkLoad struct {
	AppID    int32              `json:"app_id"`
	AppName  string             `json:"app_name"`
	LoadID   int64              `json:"load_id"`
	Cluster  string             `json:"cluster"`
	Provider string             `json:"provider"`
	Root     string             `json:"root"`
	Status   idl.BulkLoadStatus `json:"status"`
	Parts    []bulkPart         `json:"parts"`
	Error    string             `json:"error,omitempty"`
}

type bulkPart struct {
	Status idl.BulkLoadStatus `json:"status"`
	Error  string             `json:"error,omitempty"`
}

// running reports whether the load is in progress (the table is "bulk loading").
func (b *bulkLoad) running() bool {
	switch b.Status {
	case idl.BulkLoadDownloading, idl.BulkLoadDownloaded, idl.BulkLoadIngesting, idl.BulkLoadPausing, idl.BulkLoadPaused:
		return true
	}
	return false
}

// bulkLoadMutation changes a bulk load; exactly one field is set.
type bulkLoadMutation struct {
	Start  *bulkLoad        `json:"start,omitempty"`
	Status *bulkStatus      `json:"status,omitempty"`
	Parts  []bulkPartUpdate `json:"parts,omitempty"`
	Clear  *int32           `json:"clear,omitempty"`
}

type bulkStatus struct {
	AppID  int32              `json:"app_id"`
	LoadID int64              `json:"load_id"`
	Status idl.BulkLoadStatus `json:"status"`
	Error  string             `json:"error,omitempty"`
}

type bulkPartUpdate struct {
	AppID  int32              `json:"app_id"`
	LoadID int64              `json:"load_id"`
	Pidx   int32              `json:"pidx"`
	Status idl.BulkLoadStatus `json:"status"`
	Error  string             `json:"error,omitempty"`
}

func (s *opsState) bulkLoad(appID int32) *bulkLoad {
	for _, b := range s.BulkLoads {
		if b.AppID == appID {
			return b
		}
	}
	return nil
}

func (m *clusterMap) applyBulkLoad(op *bulkLoadMutation) result {
	s := m.Ops
	switch {
	case op.Start != nil:
		if b := s.bulkLoad(op.Start.AppID); b != nil && b.running() {
			return result{Code: wire.ErrBusy}
		}
		s.BulkLoads = slices.DeleteFunc(s.BulkLoads, func(b *bulkLoad) bool { return b.AppID == op.Start.AppID })
		c := *op.Start
		c.Parts = slices.Clone(c.Parts)
		s.BulkLoads = append(s.BulkLoads, &c)
	case op.Status != nil:
		b := s.bulkLoad(op.Status.AppID)
		if b == nil || b.LoadID != op.Status.LoadID {
			return result{Code: wire.ErrInactiveState}
		}
		b.Status = op.Status.Status
		if op.Status.Error != "" {
			b.Error = op.Status.Error
		}
		for i := range b.Parts {
			switch b.Status {
			case idl.BulkLoadIngesting, idl.BulkLoadCanceled, idl.BulkLoadPaused, idl.BulkLoadDownloading:
				if b.Parts[i].Status != idl.BulkLoadFailed {
					b.Parts[i].Status = b.Status
				}
			}
		}
	case len(op.Parts) > 0:
		for _, u := range op.Parts {
			b := s.bulkLoad(u.AppID)
			if b == nil || b.LoadID != u.LoadID || u.Pidx < 0 || int(u.Pidx) >= len(b.Parts) {
				continue
			}
			b.Parts[u.Pidx] = bulkPart{Status: u.Status, Error: u.Error}
			if u.Status == idl.BulkLoadFailed && b.running() {
				b.Status = idl.BulkLoadFailed
				b.Error = fmt.Sprintf("partition %d: %s", u.Pidx, u.Error)
			}
		}
	case op.Clear != nil:
		b := s.bulkLoad(*op.Clear)
		if b == nil {
			return result{Code: wire.ErrInactiveState}
		}
		if b.running() {
			return result{Code: wire.ErrInvalidState}
		}
		s.BulkLoads = slices.DeleteFunc(s.BulkLoads, func(b *bulkLoad) bool { return b.AppID == *op.Clear })
	default:
		return result{Code: wire.ErrInvalidParameters}
	}
	return result{Code: wire.OK}
}

// bulkLoadInfo is the provider's bulk_load_info.
type bulkLoadInfo struct {
	AppID          int32  `json:"app_id"`
	AppName        string `json:"app_name"`
	PartitionCount int32  `json:"partition_count"`
}

// bulkLoadDir is the table's directory of a bulk load on its provider.
func bulkLoadDir(root, cluster, app string) string { return path.Join(root, cluster, app) }

// startBulkLoad serves RPC_CM_START_BULK_LOAD with the checks of operations.md §2, in
// their order. bulk_load_info is read off the state loop.
func (s *Server) startBulkLoad(ctx context.Context, q *idl.StartBulkLoadRequest) (idl.Value, wire.Code) {
	refuse := func(e idl.ErrorCode, _ string) idl.Value { return &idl.StartBulkLoadResponse{Err: e} }
	// The checks that need the map come first, then the provider's, then the map's again
	// (it may have changed meanwhile) with the commit.
	pre, code := s.serve(ctx, func(context.Context) idl.Value { return s.m.checkBulkLoad(q, nil) }, refuse)
	if r, ok := pre.(*idl.StartBulkLoadResponse); code != wire.OK || !ok || r.Err != errCode(wire.OK) {
		return pre, code
	}
	fail := func(c wire.Code, hint string) (idl.Value, wire.Code) {
		return &idl.StartBulkLoadResponse{Err: errCode(c), HintMsg: hint}, wire.OK
	}
	if s.cfg.BlockServices == nil {
		return fail(wire.ErrInvalidParameters, "invalid file_provider")
	}
	svc, err := s.cfg.BlockServices.Get(q.FileProviderType)
	if err != nil {
		return fail(wire.ErrInvalidParameters, "invalid file_provider: "+err.Error())
	}
	p := path.Join(bulkLoadDir(q.RemoteRootPath, q.ClusterName, q.AppName), "bulk_load_info")
	raw, err := backup.ReadFile(ctx, svc, p)
	if err != nil {
		if errors.Is(err, blockservice.ErrNotFound) {
			return fail(wire.ErrObjectNotFound, "read bulk_load_info failed: "+err.Error())
		}
		return fail(wire.ErrFileOperationFailed, "read bulk_load_info failed: "+err.Error())
	}
	var info bulkLoadInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		return fail(wire.ErrCorruption, "bulk_load_info is not valid: "+err.Error())
	}
	v, code := s.serve(ctx, func(ctx context.Context) idl.Value {
		if r := s.m.checkBulkLoad(q, &info); r.Err != errCode(wire.OK) {
			return r
		}
		return s.m.beginBulkLoad(ctx, q)
	}, refuse)
	return v, code
}

// checkBulkLoad makes the checks of a start request that need the map; with info, also
// those against bulk_load_info.
func (m *machine) checkBulkLoad(q *idl.StartBulkLoadRequest, info *bulkLoadInfo) *idl.StartBulkLoadResponse {
	fail := func(c wire.Code, hint string) *idl.StartBulkLoadResponse {
		return &idl.StartBulkLoadResponse{Err: errCode(c), HintMsg: hint}
	}
	if m.state.Ops != nil && !m.cfg.ConcurrentBulkLoad {
		for _, b := range m.state.Ops.BulkLoads {
			if b.running() && b.AppName != q.AppName {
				return fail(wire.ErrBusy, "meta server is busy now, please wait")
			}
		}
	}
	t := m.state.availableTable(q.AppName)
	if t == nil {
		for _, d := range m.state.Tables {
			if d.Name == q.AppName {
				return fail(wire.ErrAppDropped, fmt.Sprintf("app(%s) is not available", q.AppName))
			}
		}
		return fail(wire.ErrAppNotExist, fmt.Sprintf("app(%s) does not exist", q.AppName))
	}
	if m.state.Ops != nil {
		if b := m.state.Ops.bulkLoad(t.AppID); b != nil && b.running() {
			return fail(wire.ErrBusy, fmt.Sprintf("app(%s) is already executing bulk load, please wait", q.AppName))
		}
	}
	if q.IngestBehind && t.Envs["rocksdb.allow_ingest_behind"] != "true" {
		return fail(wire.ErrInconsistentState, fmt.Sprintf("app(%s) does not allow ingest_behind", q.AppName))
	}
	if _, err := m.provider(q.FileProviderType); err != nil {
		return fail(wire.ErrInvalidParameters, "invalid file_provider")
	}
	if info != nil && (info.AppID != t.AppID || info.PartitionCount != t.PartitionCount) {
		return fail(wire.ErrInconsistentState, fmt.Sprintf("bulk_load_info has app_id %d and partition_count %d; app(%s) has %d and %d",
			info.AppID, info.PartitionCount, q.AppName, t.AppID, t.PartitionCount))
	}
	return fail(wire.OK, "")
}

// beginBulkLoad records a new bulk load of q's table.
func (m *machine) beginBulkLoad(ctx context.Context, q *idl.StartBulkLoadRequest) *idl.StartBulkLoadResponse {
	t := m.state.availableTable(q.AppName)
	b := &bulkLoad{AppID: t.AppID, AppName: t.Name, LoadID: m.cfg.Now().UnixNano(), Cluster: q.ClusterName,
		Provider: q.FileProviderType, Root: q.RemoteRootPath, Status: idl.BulkLoadDownloading,
		Parts: make([]bulkPart, t.PartitionCount)}
	for i := range b.Parts {
		b.Parts[i].Status = idl.BulkLoadDownloading
	}
	res, err := m.commit(ctx, &mutation{Ops: &opsMutation{BulkLoad: &bulkLoadMutation{Start: b}}})
	if err != nil {
		return &idl.StartBulkLoadResponse{Err: errCode(commitErrCode(err)), HintMsg: "cannot persist the bulk load"}
	}
	if res.Code != wire.OK {
		return &idl.StartBulkLoadResponse{Err: errCode(res.Code), HintMsg: "already loading"}
	}
	m.lg.Info("bulk load started", "table", t.Name, "app_id", t.AppID, "provider", q.FileProviderType, "root", q.RemoteRootPath)
	return &idl.StartBulkLoadResponse{Err: errCode(wire.OK), HintMsg: ""}
}

// controlBulkLoad serves RPC_CM_CONTROL_BULK_LOAD.
func (m *machine) controlBulkLoad(ctx context.Context, q *idl.ControlBulkLoadRequest) *idl.ControlBulkLoadResponse {
	fail := func(c wire.Code, hint string) *idl.ControlBulkLoadResponse {
		return &idl.ControlBulkLoadResponse{Err: errCode(c), HintMsg: idl.Some(hint)}
	}
	t := m.state.availableTable(q.AppName)
	if t == nil {
		return fail(wire.ErrAppNotExist, fmt.Sprintf("app(%s) does not exist", q.AppName))
	}
	var b *bulkLoad
	if m.state.Ops != nil {
		b = m.state.Ops.bulkLoad(t.AppID)
	}
	if b == nil || !b.running() {
		return fail(wire.ErrInactiveState, fmt.Sprintf("app(%s) is not executing bulk load", q.AppName))
	}
	var next idl.BulkLoadStatus
	switch s := b.Status; q.Type {
	case idl.BulkLoadPause:
		if s != idl.BulkLoadDownloading {
			return fail(wire.ErrInvalidState, fmt.Sprintf("can not pause bulk load of app(%s) in %s", q.AppName, s))
		}
		next = idl.BulkLoadPaused
	case idl.BulkLoadRestart:
		if s != idl.BulkLoadPaused {
			return fail(wire.ErrInvalidState, fmt.Sprintf("can not restart bulk load of app(%s) in %s", q.AppName, s))
		}
		next = idl.BulkLoadDownloading
	case idl.BulkLoadCancel:
		if s != idl.BulkLoadDownloading && s != idl.BulkLoadPaused {
			return fail(wire.ErrInvalidState, fmt.Sprintf("can not cancel bulk load of app(%s) in %s", q.AppName, s))
		}
		next = idl.BulkLoadCanceled
	case idl.BulkLoadForceCancel:
		next = idl.BulkLoadCanceled
	default:
		return fail(wire.ErrInvalidParameters, fmt.Sprintf("unknown control type %s", q.Type))
	}
	if _, err := m.commit(ctx, &mutation{Ops: &opsMutation{BulkLoad: &bulkLoadMutation{Status: &bulkStatus{AppID: t.AppID, LoadID: b.LoadID, Status: next}}}}); err != nil {
		return fail(commitErrCode(err), "cannot persist the change")
	}
	m.lg.Info("bulk load controlled", "table", t.Name, "type", q.Type.String(), "status", next.String())
	return &idl.ControlBulkLoadResponse{Err: errCode(wire.OK)}
}

// queryBulkLoad serves RPC_CM_QUERY_BULK_LOAD_STATUS.
func (m *machine) queryBulkLoad(q *idl.QueryBulkLoadRequest) *idl.QueryBulkLoadResponse {
	resp := &idl.QueryBulkLoadResponse{Err: errCode(wire.OK), AppName: q.AppName, PartitionsStatus: []idl.BulkLoadStatus{},
		BulkLoadStates: [][]idl.ReplicaBulkLoadState{}}
	t := m.state.availableTable(q.AppName)
	if t == nil {
		resp.Err = errCode(wire.ErrAppNotExist)
		resp.HintMsg = idl.Some(fmt.Sprintf("app(%s) does not exist", q.AppName))
		return resp
	}
	resp.MaxReplicaCount = t.ReplicaCount
	var b *bulkLoad
	if m.state.Ops != nil {
		b = m.state.Ops.bulkLoad(t.AppID)
	}
	if b == nil {
		resp.HintMsg = idl.Some(fmt.Sprintf("app(%s) is not during bulk load", q.AppName))
		resp.IsBulkLoading = idl.Some(false)
		return resp
	}
	resp.AppStatus = b.Status
	resp.IsBulkLoading = idl.Some(b.running())
	if !b.running() {
		hint := fmt.Sprintf("app(%s) is not during bulk load, return last time result", q.AppName)
		if b.Error != "" {
			hint += ": " + b.Error
		}
		resp.HintMsg = idl.Some(hint)
	}
	for i, p := range b.Parts {
		resp.PartitionsStatus = append(resp.PartitionsStatus, p.Status)
		var states []idl.ReplicaBulkLoadState
		gpid := idl.GPID{AppID: t.AppID, PartitionIndex: int32(i)}
		for _, addr := range t.Partitions[i].Members {
			n := m.nodes[addr]
			if n == nil {
				continue
			}
			st := m.bulkReplicas[bulkReplicaKey{gpid: gpid, addr: addr}]
			ps := idl.PartitionBulkLoadState{DownloadProgress: idl.Some(st.Progress)}
			switch {
			case st.Err != "":
				ps.DownloadStatus = idl.Some(idl.ErrorCode(st.Code))
				ps.IngestStatus = idl.Some(idl.IngestionFailed)
			case st.Ingested || p.Status == idl.BulkLoadSucceed:
				ps.IngestStatus = idl.Some(idl.IngestionSucceed)
			case p.Status == idl.BulkLoadIngesting:
				ps.IngestStatus = idl.Some(idl.IngestionRunning)
			}
			ps.IsPaused = p.Status == idl.BulkLoadPaused
			states = append(states, idl.ReplicaBulkLoadState{Addr: n.rpcAddr, HostPort: n.hostPort, State: ps})
		}
		resp.BulkLoadStates = append(resp.BulkLoadStates, states)
	}
	return resp
}

// clearBulkLoad serves RPC_CM_CLEAR_BULK_LOAD.
func (m *machine) clearBulkLoad(ctx context.Context, q *idl.ClearBulkLoadRequest) *idl.ClearBulkLoadResponse {
	fail := func(c wire.Code, hint string) *idl.ClearBulkLoadResponse {
		return &idl.ClearBulkLoadResponse{Err: errCode(c), HintMsg: hint}
	}
	t := m.state.availableTable(q.AppName)
	if t == nil {
		return fail(wire.ErrAppNotExist, fmt.Sprintf("app(%s) does not exist", q.AppName))
	}
	var b *bulkLoad
	if m.state.Ops != nil {
		b = m.state.Ops.bulkLoad(t.AppID)
	}
	switch {
	case b == nil:
		return fail(wire.ErrInactiveState, fmt.Sprintf("app(%s) has no bulk load to clear", q.AppName))
	case b.running():
		return fail(wire.ErrInvalidState, fmt.Sprintf("app(%s) is executing bulk load (%s)", q.AppName, b.Status))
	}
	id := t.AppID
	if _, err := m.commit(ctx, &mutation{Ops: &opsMutation{BulkLoad: &bulkLoadMutation{Clear: &id}}}); err != nil {
		return fail(commitErrCode(err), "cannot persist the change")
	}
	return fail(wire.OK, fmt.Sprintf("clear app(%s) bulk load result succeed", q.AppName))
}

// bulkReplicaKey names one replica's soft bulk load state.
type bulkReplicaKey struct {
	gpid idl.GPID
	addr string
}

// bulkLoadTasks returns the bulk load tasks of the server at addr: one per replica of a
// table that is loading.
func (m *machine) bulkLoadTasks(addr string) []cluster.BulkLoadTask {
	if m.state.Ops == nil {
		return nil
	}
	var tasks []cluster.BulkLoadTask
	for _, b := range m.state.Ops.BulkLoads {
		t := m.state.tableByID(b.AppID)
		if !b.running() || t == nil || t.Status != idl.AppStatusAvailable {
			continue
		}
		for i, p := range t.Partitions {
			if !slices.Contains(p.Members, addr) {
				continue
			}
			task := cluster.BulkLoadTask{AppID: b.AppID, PartitionIndex: int32(i), AppName: b.AppName, Provider: b.Provider,
				Dir: path.Join(bulkLoadDir(b.Root, b.Cluster, b.AppName), fmt.Sprint(i)), Status: int32(b.Parts[i].Status), LoadID: b.LoadID}
			if b.Parts[i].Status == idl.BulkLoadIngesting {
				n, ok := m.primaryOf(t, int32(i))
				task.Ingest = ok && n.addr == addr
			}
			tasks = append(tasks, task)
		}
	}
	return tasks
}

// noteBulkLoadReports records a server's bulk load reports: soft progress, and the
// outcomes that change a partition's state.
func (m *machine) noteBulkLoadReports(ctx context.Context, addr string, reps []cluster.BulkLoadReport) {
	var ups []bulkPartUpdate
	for _, rep := range reps {
		gpid := idl.GPID{AppID: rep.AppID, PartitionIndex: rep.PartitionIndex}
		m.bulkReplicas[bulkReplicaKey{gpid: gpid, addr: addr}] = rep
		b := m.state.Ops.bulkLoad(rep.AppID)
		if b == nil || b.LoadID != rep.LoadID || rep.PartitionIndex < 0 || int(rep.PartitionIndex) >= len(b.Parts) || !b.running() {
			continue
		}
		cur := b.Parts[rep.PartitionIndex].Status
		switch {
		case rep.Err != "":
			ups = append(ups, bulkPartUpdate{AppID: rep.AppID, LoadID: rep.LoadID, Pidx: rep.PartitionIndex, Status: idl.BulkLoadFailed,
				Error: fmt.Sprintf("%s on %s: %s", rep.Code, addr, rep.Err)})
		case rep.Ingested && cur == idl.BulkLoadIngesting:
			ups = append(ups, bulkPartUpdate{AppID: rep.AppID, LoadID: rep.LoadID, Pidx: rep.PartitionIndex, Status: idl.BulkLoadSucceed})
		case rep.Downloaded && cur == idl.BulkLoadDownloading && m.allDownloaded(b, rep.PartitionIndex):
			ups = append(ups, bulkPartUpdate{AppID: rep.AppID, LoadID: rep.LoadID, Pidx: rep.PartitionIndex, Status: idl.BulkLoadDownloaded})
		}
	}
	if len(ups) == 0 {
		return
	}
	if _, err := m.commit(ctx, &mutation{Ops: &opsMutation{BulkLoad: &bulkLoadMutation{Parts: ups}}}); err != nil {
		return
	}
	for _, u := range ups {
		if u.Status == idl.BulkLoadFailed {
			m.lg.Error("bulk load of a partition failed", "app_id", u.AppID, "pidx", u.Pidx, "err", u.Error)
		}
	}
}

// allDownloaded reports whether every member of partition pidx reported its download done.
func (m *machine) allDownloaded(b *bulkLoad, pidx int32) bool {
	t := m.state.tableByID(b.AppID)
	if t == nil {
		return false
	}
	gpid := idl.GPID{AppID: b.AppID, PartitionIndex: pidx}
	for _, addr := range t.Partitions[pidx].Members {
		st, ok := m.bulkReplicas[bulkReplicaKey{gpid: gpid, addr: addr}]
		if !ok || st.LoadID != b.LoadID || !st.Downloaded {
			return false
		}
	}
	return true
}

// bulkLoadSteps moves loads whose partitions all reached a state on: all downloaded →
// ingesting; all ingested → succeed.
func (m *machine) bulkLoadSteps() []opsStep {
	var steps []opsStep
	for _, b := range m.state.Ops.BulkLoads {
		if !b.running() {
			continue
		}
		all := func(s idl.BulkLoadStatus) bool {
			return !slices.ContainsFunc(b.Parts, func(p bulkPart) bool { return p.Status != s })
		}
		var next idl.BulkLoadStatus
		switch {
		case !m.state.tableAvailable(b.AppID):
			next = idl.BulkLoadFailed
		case b.Status == idl.BulkLoadDownloading && all(idl.BulkLoadDownloaded):
			next = idl.BulkLoadIngesting
		case b.Status == idl.BulkLoadIngesting && all(idl.BulkLoadSucceed):
			next = idl.BulkLoadSucceed
		default:
			continue
		}
		op := &opsMutation{BulkLoad: &bulkLoadMutation{Status: &bulkStatus{AppID: b.AppID, LoadID: b.LoadID, Status: next}}}
		steps = append(steps, opsStep{what: "bulk load " + next.String(), io: func(context.Context) (*opsMutation, error) {
			m.lg.Info("bulk load moves on", "app_id", op.BulkLoad.Status.AppID, "status", next.String())
			return op, nil
		}})
	}
	return steps
}

// bulkLoadStatusOf returns the bulk load state of a table for HTTP (BLS_INVALID when none).
func (m *machine) bulkLoadStatusOf(appID int32) idl.BulkLoadStatus {
	if m.state.Ops == nil {
		return idl.BulkLoadInvalid
	}
	if b := m.state.Ops.bulkLoad(appID); b != nil {
		return b.Status
	}
	return idl.BulkLoadInvalid
}
