package idl

// RPC names (protocol.md §2.1). A reply carries the request name plus "_ACK".
const (
	RPCQueryConfig  = "RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX"
	RPCCreateApp    = "RPC_CM_CREATE_APP"
	RPCDropApp      = "RPC_CM_DROP_APP"
	RPCListApps     = "RPC_CM_LIST_APPS"
	RPCListNodes    = "RPC_CM_LIST_NODES"
	RPCClusterInfo  = "RPC_CM_CLUSTER_INFO"
	RPCUpdateAppEnv = "RPC_CM_UPDATE_APP_ENV"
	RPCRecallApp    = "RPC_CM_RECALL_APP"
	RPCQueryAppInfo = "RPC_QUERY_APP_INFO"

	RPCStartBackupApp      = "RPC_CM_START_BACKUP_APP"
	RPCQueryBackupStatus   = "RPC_CM_QUERY_BACKUP_STATUS"
	RPCAddBackupPolicy     = "RPC_CM_ADD_BACKUP_POLICY"
	RPCQueryBackupPolicy   = "RPC_CM_QUERY_BACKUP_POLICY"
	RPCModifyBackupPolicy  = "RPC_CM_MODIFY_BACKUP_POLICY"
	RPCStartRestore        = "RPC_CM_START_RESTORE"
	RPCQueryRestoreStatus  = "RPC_CM_QUERY_RESTORE_STATUS"
	RPCStartBulkLoad       = "RPC_CM_START_BULK_LOAD"
	RPCControlBulkLoad     = "RPC_CM_CONTROL_BULK_LOAD"
	RPCQueryBulkLoadStatus = "RPC_CM_QUERY_BULK_LOAD_STATUS"
	RPCClearBulkLoad       = "RPC_CM_CLEAR_BULK_LOAD"

	RPCStartSplit     = "RPC_CM_START_PARTITION_SPLIT"
	RPCControlSplit   = "RPC_CM_CONTROL_PARTITION_SPLIT"
	RPCQuerySplit     = "RPC_CM_QUERY_PARTITION_SPLIT"
	RPCControlMeta    = "RPC_CM_CONTROL_META"
	RPCProposeBalance = "RPC_CM_PROPOSE_BALANCER"

	RPCCLICall        = "RPC_CLI_CLI_CALL"
	RPCNegotiation    = "RPC_NEGOTIATION"
	RPCPut            = "RPC_RRDB_RRDB_PUT"
	RPCMultiPut       = "RPC_RRDB_RRDB_MULTI_PUT"
	RPCRemove         = "RPC_RRDB_RRDB_REMOVE"
	RPCMultiRemove    = "RPC_RRDB_RRDB_MULTI_REMOVE"
	RPCIncr           = "RPC_RRDB_RRDB_INCR"
	RPCCheckAndSet    = "RPC_RRDB_RRDB_CHECK_AND_SET"
	RPCCheckAndMutate = "RPC_RRDB_RRDB_CHECK_AND_MUTATE"
	RPCGet            = "RPC_RRDB_RRDB_GET"
	RPCMultiGet       = "RPC_RRDB_RRDB_MULTI_GET"
	RPCBatchGet       = "RPC_RRDB_RRDB_BATCH_GET"
	RPCSortKeyCount   = "RPC_RRDB_RRDB_SORTKEY_COUNT"
	RPCTTL            = "RPC_RRDB_RRDB_TTL"
	RPCGetScanner     = "RPC_RRDB_RRDB_GET_SCANNER"
	RPCScan           = "RPC_RRDB_RRDB_SCAN"
	RPCClearScanner   = "RPC_RRDB_RRDB_CLEAR_SCANNER"

	// Duplication (operations.md §1): the meta RPCs, and the follower replica's RPC that
	// takes duplicated writes.
	RPCAddDuplication    = "RPC_CM_ADD_DUPLICATION"
	RPCModifyDuplication = "RPC_CM_MODIFY_DUPLICATION"
	RPCQueryDuplication  = "RPC_CM_QUERY_DUPLICATION"
	RPCListDuplication   = "RPC_CM_LIST_DUPLICATION"
	RPCDuplicationSync   = "RPC_CM_DUPLICATION_SYNC"
	RPCDuplicate         = "RPC_RRDB_RRDB_DUPLICATE"

	// RPCDetectHotkey starts, stops or queries the hot-key detection of a partition
	// replica (operations.md §6); it is sent to the replica server itself.
	RPCDetectHotkey = "RPC_DETECT_HOTKEY"

	// RPCConfigSync is gopegasus's own replica → meta report (package cluster); no
	// official client sends it. Args and reply are blobs holding JSON.
	RPCConfigSync = "RPC_GP_CONFIG_SYNC"
	// RPCRaft carries raft messages between the replica servers of a partition's group
	// (package replica). One-way: never answered. Args is a blob.
	RPCRaft = "RPC_GP_RAFT"
	// RPCMetaRaft carries raft messages between the meta servers of the metas' group
	// (package meta). One-way: never answered. Args is a blob.
	RPCMetaRaft = "RPC_GP_META_RAFT"
	// RPCForward carries a client request from a replica server that does not lead the
	// partition to the one that does (package replica). Args is a blob holding the request;
	// the reply is the forwarded RPC's own reply.
	RPCForward = "RPC_GP_FORWARD"
	// RPCDecommission marks replica servers as leaving (or no longer) and reports how far
	// their decommission is (package meta). Args and reply are blobs holding JSON.
	RPCDecommission = "RPC_GP_DECOMMISSION"
)

// ackSuffix turns a request name into its reply name.
const ackSuffix = "_ACK"

// RPC describes one RPC: the payload types of its args field 1 and of its result field 0.
// The values returned by [LookupRPC] and [RPCs] are shared; do not modify them.
type RPC struct {
	// Name is the request name, e.g. [RPCGet].
	Name string
	// AckName is the reply name, Name + "_ACK".
	AckName string
	// ArgsType is the type byte of args field 1 (NewRequest().ThriftType()).
	ArgsType Type
	// ReplyType is the type byte of result field 0, or TypeStop when NewReply is nil.
	ReplyType Type
	// NewRequest returns a new, empty args payload: for example *[Blob] for GET, REMOVE, TTL
	// and SORTKEY_COUNT, *[ContextID] for CLEAR_SCANNER, *[UpdateRequest] for PUT.
	NewRequest func() Value
	// NewReply returns a new, empty reply payload. It is nil for CLEAR_SCANNER, which a server
	// must never answer.
	NewReply func() Value
}

// IsOneWay reports whether the RPC is never answered (CLEAR_SCANNER).
func (r *RPC) IsOneWay() bool { return r.NewReply == nil }

func newRPC(name string, req, reply func() Value) *RPC {
	r := &RPC{Name: name, AckName: name + ackSuffix, ArgsType: req().ThriftType(),
		ReplyType: TypeStop, NewRequest: req, NewReply: reply}
	if reply != nil {
		r.ReplyType = reply().ThriftType()
	}
	return r
}

// rpcList is the registry, in protocol.md §2.1 order.
var rpcList = []*RPC{
	newRPC(RPCQueryConfig,
		func() Value { return new(QueryCfgRequest) }, func() Value { return new(QueryCfgResponse) }),
	newRPC(RPCCreateApp,
		func() Value { return new(CreateAppRequest) }, func() Value { return new(CreateAppResponse) }),
	newRPC(RPCDropApp,
		func() Value { return new(DropAppRequest) }, func() Value { return new(DropAppResponse) }),
	newRPC(RPCListApps,
		func() Value { return new(ListAppsRequest) }, func() Value { return new(ListAppsResponse) }),
	newRPC(RPCListNodes,
		func() Value { return new(ListNodesRequest) }, func() Value { return new(ListNodesResponse) }),
	newRPC(RPCClusterInfo,
		func() Value { return new(ClusterInfoRequest) }, func() Value { return new(ClusterInfoResponse) }),
	newRPC(RPCUpdateAppEnv,
		func() Value { return new(UpdateAppEnvRequest) }, func() Value { return new(UpdateAppEnvResponse) }),
	newRPC(RPCRecallApp,
		func() Value { return new(RecallAppRequest) }, func() Value { return &RecallAppResponse{Info: NewAppInfo()} }),
	newRPC(RPCQueryAppInfo,
		func() Value { return new(QueryAppInfoRequest) }, func() Value { return new(QueryAppInfoResponse) }),
	newRPC(RPCStartBackupApp,
		func() Value { return new(StartBackupAppRequest) }, func() Value { return new(StartBackupAppResponse) }),
	newRPC(RPCQueryBackupStatus,
		func() Value { return new(QueryBackupStatusRequest) }, func() Value { return new(QueryBackupStatusResponse) }),
	newRPC(RPCAddBackupPolicy,
		func() Value { return new(AddBackupPolicyRequest) }, func() Value { return new(AddBackupPolicyResponse) }),
	newRPC(RPCQueryBackupPolicy,
		func() Value { return new(QueryBackupPolicyRequest) }, func() Value { return new(QueryBackupPolicyResponse) }),
	newRPC(RPCModifyBackupPolicy,
		func() Value { return new(ModifyBackupPolicyRequest) }, func() Value { return new(ModifyBackupPolicyResponse) }),
	newRPC(RPCStartRestore,
		func() Value { return new(RestoreRequest) }, func() Value { return new(RestoreResponse) }),
	newRPC(RPCQueryRestoreStatus,
		func() Value { return new(QueryRestoreRequest) }, func() Value { return new(QueryRestoreResponse) }),
	newRPC(RPCStartBulkLoad,
		func() Value { return new(StartBulkLoadRequest) }, func() Value { return new(StartBulkLoadResponse) }),
	newRPC(RPCControlBulkLoad,
		func() Value { return new(ControlBulkLoadRequest) }, func() Value { return new(ControlBulkLoadResponse) }),
	newRPC(RPCQueryBulkLoadStatus,
		func() Value { return new(QueryBulkLoadRequest) }, func() Value { return new(QueryBulkLoadResponse) }),
	newRPC(RPCClearBulkLoad,
		func() Value { return new(ClearBulkLoadRequest) }, func() Value { return new(ClearBulkLoadResponse) }),
	newRPC(RPCStartSplit,
		func() Value { return new(StartPartitionSplitRequest) }, func() Value { return new(StartPartitionSplitResponse) }),
	newRPC(RPCControlSplit,
		func() Value { return new(ControlSplitRequest) }, func() Value { return new(ControlSplitResponse) }),
	newRPC(RPCQuerySplit,
		func() Value { return new(QuerySplitRequest) }, func() Value { return new(QuerySplitResponse) }),
	newRPC(RPCControlMeta,
		func() Value { return new(MetaControlRequest) }, func() Value { return new(MetaControlResponse) }),
	newRPC(RPCProposeBalance,
		func() Value { return new(BalancerRequest) }, func() Value { return new(BalancerResponse) }),
	newRPC(RPCCLICall,
		func() Value { return new(Command) }, func() Value { return new(Text) }),
	newRPC(RPCNegotiation,
		func() Value { return new(NegotiationRequest) }, func() Value { return new(NegotiationResponse) }),
	newRPC(RPCPut,
		func() Value { return new(UpdateRequest) }, func() Value { return new(UpdateResponse) }),
	newRPC(RPCMultiPut,
		func() Value { return new(MultiPutRequest) }, func() Value { return new(UpdateResponse) }),
	newRPC(RPCRemove,
		func() Value { return new(Blob) }, func() Value { return new(UpdateResponse) }),
	newRPC(RPCMultiRemove,
		func() Value { return new(MultiRemoveRequest) }, func() Value { return new(MultiRemoveResponse) }),
	newRPC(RPCIncr,
		func() Value { return new(IncrRequest) }, func() Value { return new(IncrResponse) }),
	newRPC(RPCCheckAndSet,
		func() Value { return new(CheckAndSetRequest) }, func() Value { return new(CheckAndSetResponse) }),
	newRPC(RPCCheckAndMutate,
		func() Value { return new(CheckAndMutateRequest) }, func() Value { return new(CheckAndMutateResponse) }),
	newRPC(RPCGet,
		func() Value { return new(Blob) }, func() Value { return new(ReadResponse) }),
	newRPC(RPCMultiGet,
		func() Value { return new(MultiGetRequest) }, func() Value { return new(MultiGetResponse) }),
	newRPC(RPCBatchGet,
		func() Value { return new(BatchGetRequest) }, func() Value { return new(BatchGetResponse) }),
	newRPC(RPCSortKeyCount,
		func() Value { return new(Blob) }, func() Value { return new(CountResponse) }),
	newRPC(RPCTTL,
		func() Value { return new(Blob) }, func() Value { return new(TTLResponse) }),
	newRPC(RPCGetScanner,
		func() Value { return new(GetScannerRequest) }, func() Value { return new(ScanResponse) }),
	newRPC(RPCScan,
		func() Value { return new(ScanRequest) }, func() Value { return new(ScanResponse) }),
	newRPC(RPCClearScanner,
		func() Value { return new(ContextID) }, nil),
	newRPC(RPCAddDuplication,
		func() Value { r := NewDuplicationAddRequest(); return &r }, func() Value { return new(DuplicationAddResponse) }),
	newRPC(RPCModifyDuplication,
		func() Value { return new(DuplicationModifyRequest) }, func() Value { return new(DuplicationModifyResponse) }),
	newRPC(RPCQueryDuplication,
		func() Value { return new(DuplicationQueryRequest) }, func() Value { return new(DuplicationQueryResponse) }),
	newRPC(RPCListDuplication,
		func() Value { return new(DuplicationListRequest) }, func() Value { return new(DuplicationListResponse) }),
	newRPC(RPCDuplicationSync,
		func() Value { return new(DuplicationSyncRequest) }, func() Value { return new(DuplicationSyncResponse) }),
	newRPC(RPCDuplicate,
		func() Value { return new(DuplicateRequest) }, func() Value { return new(DuplicateResponse) }),
	newRPC(RPCDetectHotkey,
		func() Value { return new(DetectHotkeyRequest) }, func() Value { return new(DetectHotkeyResponse) }),
	newRPC(RPCConfigSync,
		func() Value { return new(Blob) }, func() Value { return new(Blob) }),
	newRPC(RPCRaft, func() Value { return new(Blob) }, nil),
	newRPC(RPCMetaRaft, func() Value { return new(Blob) }, nil),
	newRPC(RPCForward, func() Value { return new(Blob) }, func() Value { return new(Blob) }),
	newRPC(RPCDecommission, func() Value { return new(Blob) }, func() Value { return new(Blob) }),
}

// rpcByName indexes rpcList by request name.
var rpcByName = func() map[string]*RPC {
	m := make(map[string]*RPC, len(rpcList))
	for _, r := range rpcList {
		m[r.Name] = r
	}
	return m
}()

// LookupRPC returns the RPC with request name name. It does not allocate.
func LookupRPC(name string) (*RPC, bool) {
	r, ok := rpcByName[name]
	return r, ok
}

// RPCs returns every known RPC, in protocol.md §2.1 order, in a new slice.
func RPCs() []*RPC { return append([]*RPC(nil), rpcList...) }

// AckName returns the reply name of request name (name + "_ACK"). For a known RPC it returns
// the precomputed string without allocating.
func AckName(name string) string {
	if r, ok := rpcByName[name]; ok {
		return r.AckName
	}
	return name + ackSuffix
}
