package meta

import (
	"context"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// opsHandle registers a meta RPC served on the state loop (see New).
type opsHandle func(name string, serve func(ctx context.Context, args idl.Value) idl.Value, refuse func(idl.ErrorCode, string) idl.Value)

// registerOps registers the RPCs of backups, restores and bulk loads.
func (s *Server) registerOps(handle opsHandle) {
	handle(idl.RPCStartBackupApp, func(ctx context.Context, a idl.Value) idl.Value {
		return s.m.startBackupApp(ctx, a.(*idl.StartBackupAppRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value { return &idl.StartBackupAppResponse{Err: e} })
	handle(idl.RPCQueryBackupStatus, func(_ context.Context, a idl.Value) idl.Value {
		return s.m.queryBackupStatus(a.(*idl.QueryBackupStatusRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value { return &idl.QueryBackupStatusResponse{Err: e} })
	handle(idl.RPCAddBackupPolicy, func(ctx context.Context, a idl.Value) idl.Value {
		return s.m.addBackupPolicy(ctx, a.(*idl.AddBackupPolicyRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value { return &idl.AddBackupPolicyResponse{Err: e} })
	handle(idl.RPCModifyBackupPolicy, func(ctx context.Context, a idl.Value) idl.Value {
		return s.m.modifyBackupPolicy(ctx, a.(*idl.ModifyBackupPolicyRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value { return &idl.ModifyBackupPolicyResponse{Err: e} })
	handle(idl.RPCQueryBackupPolicy, func(_ context.Context, a idl.Value) idl.Value {
		return s.m.queryBackupPolicy(a.(*idl.QueryBackupPolicyRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value {
		return &idl.QueryBackupPolicyResponse{Err: e, Policies: []idl.PolicyEntry{}, BackupInfos: [][]idl.BackupEntry{}}
	})
	handle(idl.RPCQueryRestoreStatus, func(_ context.Context, a idl.Value) idl.Value {
		return s.m.queryRestoreStatus(a.(*idl.QueryRestoreRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value {
		return &idl.QueryRestoreResponse{Err: e, RestoreStatus: []idl.ErrorCode{}, RestoreProgress: []int32{}}
	})
	handle(idl.RPCControlBulkLoad, func(ctx context.Context, a idl.Value) idl.Value {
		return s.m.controlBulkLoad(ctx, a.(*idl.ControlBulkLoadRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value { return &idl.ControlBulkLoadResponse{Err: e} })
	handle(idl.RPCQueryBulkLoadStatus, func(_ context.Context, a idl.Value) idl.Value {
		return s.m.queryBulkLoad(a.(*idl.QueryBulkLoadRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value {
		return &idl.QueryBulkLoadResponse{Err: e, PartitionsStatus: []idl.BulkLoadStatus{}, BulkLoadStates: [][]idl.ReplicaBulkLoadState{}}
	})
	handle(idl.RPCClearBulkLoad, func(ctx context.Context, a idl.Value) idl.Value {
		return s.m.clearBulkLoad(ctx, a.(*idl.ClearBulkLoadRequest))
	}, func(e idl.ErrorCode, _ string) idl.Value { return &idl.ClearBulkLoadResponse{Err: e} })
	// These two read the provider before they touch the map, off the state loop.
	s.rpc.Handle(idl.RPCStartRestore, func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		v, code := s.startRestore(ctx, req.Args.(*idl.RestoreRequest))
		return forClient(req.Header, v), code
	})
	s.rpc.Handle(idl.RPCStartBulkLoad, func(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
		v, code := s.startBulkLoad(ctx, req.Args.(*idl.StartBulkLoadRequest))
		return forClient(req.Header, v), code
	})
}
