package idl

import "strconv"

// Structs of the meta server's RPCs and their shared types (protocol.md §2.2). Field comments
// give the thrift field id.

// enumName returns names[v], or "<typ>(<v>)" for a value without a name.
func enumName(names []string, typ string, v int32) string {
	if v >= 0 && int(v) < len(names) {
		return names[v]
	}
	return typ + "(" + strconv.Itoa(int(v)) + ")"
}

// PartitionConfiguration describes one partition: its replicas and config version.
type PartitionConfiguration struct {
	PID                 GPID                 // 1
	Ballot              int64                // 2: config version; -1 = split child not ready
	MaxReplicaCount     int32                // 3
	Primary             RPCAddress           // 4: zero when there is none
	Secondaries         []RPCAddress         // 5
	LastDrops           []RPCAddress         // 6
	LastCommittedDecree int64                // 7
	PartitionFlags      int32                // 8
	HPPrimary           Optional[HostPort]   // 9
	HPSecondaries       Optional[[]HostPort] // 10
	HPLastDrops         Optional[[]HostPort] // 11
}

// ThriftType implements [Value].
func (*PartitionConfiguration) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *PartitionConfiguration) Encode(e *Encoder) {
	e.FieldBegin(TypeStruct, 1)
	r.PID.Encode(e)
	e.FieldI64(2, r.Ballot)
	e.FieldI32(3, r.MaxReplicaCount)
	e.FieldBegin(TypeStruct, 4)
	r.Primary.Encode(e)
	e.addressList(5, r.Secondaries)
	e.addressList(6, r.LastDrops)
	e.FieldI64(7, r.LastCommittedDecree)
	e.FieldI32(8, r.PartitionFlags)
	if r.HPPrimary.Set {
		e.FieldBegin(TypeStruct, 9)
		r.HPPrimary.V.Encode(e)
	}
	if r.HPSecondaries.Set {
		e.hostPortList(10, r.HPSecondaries.V)
	}
	if r.HPLastDrops.Set {
		e.hostPortList(11, r.HPLastDrops.V)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *PartitionConfiguration) Decode(d *Decoder) {
	*r = PartitionConfiguration{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			if d.Want(t, TypeStruct) {
				r.PID.Decode(d)
			}
		case 2:
			d.i64Field(t, &r.Ballot)
		case 3:
			d.i32Field(t, &r.MaxReplicaCount)
		case 4:
			if d.Want(t, TypeStruct) {
				r.Primary.Decode(d)
			}
		case 5:
			r.Secondaries, _ = d.addressList(t)
		case 6:
			r.LastDrops, _ = d.addressList(t)
		case 7:
			d.i64Field(t, &r.LastCommittedDecree)
		case 8:
			d.i32Field(t, &r.PartitionFlags)
		case 9:
			if d.Want(t, TypeStruct) {
				r.HPPrimary.Set = true
				r.HPPrimary.V.Decode(d)
			}
		case 10:
			r.HPSecondaries.V, r.HPSecondaries.Set = d.hostPortList(t)
		case 11:
			r.HPLastDrops.V, r.HPLastDrops.Set = d.hostPortList(t)
		default:
			d.Skip(t)
		}
	}
}

// QueryCfgRequest asks for a table's partition configurations (RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX).
type QueryCfgRequest struct {
	AppName          string  // 1
	PartitionIndices []int32 // 2: empty (or absent) = all partitions
}

// ThriftType implements [Value].
func (*QueryCfgRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *QueryCfgRequest) Encode(e *Encoder) {
	e.FieldString(1, r.AppName)
	e.i32List(2, r.PartitionIndices)
	e.FieldStop()
}

// Decode implements [Value].
func (r *QueryCfgRequest) Decode(d *Decoder) {
	*r = QueryCfgRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.stringField(t, &r.AppName)
		case 2:
			r.PartitionIndices, _ = d.i32List(t)
		default:
			d.Skip(t)
		}
	}
}

// QueryCfgResponse answers [QueryCfgRequest].
type QueryCfgResponse struct {
	Err            ErrorCode                // 1
	AppID          int32                    // 2
	PartitionCount int32                    // 3
	IsStateful     bool                     // 4
	Partitions     []PartitionConfiguration // 5
}

// ThriftType implements [Value].
func (*QueryCfgResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *QueryCfgResponse) Encode(e *Encoder) {
	e.errorCode(1, r.Err)
	e.FieldI32(2, r.AppID)
	e.FieldI32(3, r.PartitionCount)
	e.FieldBool(4, r.IsStateful)
	e.FieldBegin(TypeList, 5)
	e.ListBegin(TypeStruct, len(r.Partitions))
	for i := range r.Partitions {
		r.Partitions[i].Encode(e)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *QueryCfgResponse) Decode(d *Decoder) {
	*r = QueryCfgResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.errorCodeField(t, &r.Err)
		case 2:
			d.i32Field(t, &r.AppID)
		case 3:
			d.i32Field(t, &r.PartitionCount)
		case 4:
			d.boolField(t, &r.IsStateful)
		case 5:
			r.Partitions, _ = structList[PartitionConfiguration](d, t)
		default:
			d.Skip(t)
		}
	}
}

// AppStatus is the lifecycle state of a table (app_status, i32 on the wire).
type AppStatus int32

// AppStatus values.
const (
	AppStatusInvalid AppStatus = iota
	AppStatusAvailable
	AppStatusCreating
	AppStatusCreateFailed
	AppStatusDropping
	AppStatusDropFailed
	AppStatusDropped
	AppStatusRecalling
)

var appStatusNames = []string{"AS_INVALID", "AS_AVAILABLE", "AS_CREATING", "AS_CREATE_FAILED",
	"AS_DROPPING", "AS_DROP_FAILED", "AS_DROPPED", "AS_RECALLING"}

// String returns the Pegasus name of s ("AS_AVAILABLE"), or "AppStatus(n)" if unknown.
func (s AppStatus) String() string { return enumName(appStatusNames, "AppStatus", int32(s)) }

// AppInfo describes a table. Its InitPartitionCount defaults to -1 in the idl: [NewAppInfo]
// returns an AppInfo with that default, and Decode applies it when the field is absent.
type AppInfo struct {
	Status             AppStatus         // 1
	AppType            string            // 2: "pegasus"
	AppName            string            // 3
	AppID              int32             // 4
	PartitionCount     int32             // 5
	Envs               map[string]string // 6: encoded in sorted key order
	IsStateful         bool              // 7
	MaxReplicaCount    int32             // 8
	ExpireSecond       int64             // 9
	CreateSecond       int64             // 10: unix seconds
	DropSecond         int64             // 11
	Duplicating        bool              // 12: optional, written only when true
	InitPartitionCount int32             // 13: idl default -1
	IsBulkLoading      bool              // 14: optional, written only when true
	AtomicIdempotent   bool              // 15: optional, written only when true
}

// NewAppInfo returns an AppInfo holding the idl defaults (InitPartitionCount -1).
func NewAppInfo() AppInfo { return AppInfo{InitPartitionCount: -1} }

// ThriftType implements [Value].
func (*AppInfo) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *AppInfo) Encode(e *Encoder) {
	e.FieldI32(1, int32(r.Status))
	e.FieldString(2, r.AppType)
	e.FieldString(3, r.AppName)
	e.FieldI32(4, r.AppID)
	e.FieldI32(5, r.PartitionCount)
	e.stringMap(6, r.Envs)
	e.FieldBool(7, r.IsStateful)
	e.FieldI32(8, r.MaxReplicaCount)
	e.FieldI64(9, r.ExpireSecond)
	e.FieldI64(10, r.CreateSecond)
	e.FieldI64(11, r.DropSecond)
	if r.Duplicating {
		e.FieldBool(12, true)
	}
	e.FieldI32(13, r.InitPartitionCount)
	if r.IsBulkLoading {
		e.FieldBool(14, true)
	}
	if r.AtomicIdempotent {
		e.FieldBool(15, true)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *AppInfo) Decode(d *Decoder) {
	*r = NewAppInfo()
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, (*int32)(&r.Status))
		case 2:
			d.stringField(t, &r.AppType)
		case 3:
			d.stringField(t, &r.AppName)
		case 4:
			d.i32Field(t, &r.AppID)
		case 5:
			d.i32Field(t, &r.PartitionCount)
		case 6:
			r.Envs = d.stringMap(t)
		case 7:
			d.boolField(t, &r.IsStateful)
		case 8:
			d.i32Field(t, &r.MaxReplicaCount)
		case 9:
			d.i64Field(t, &r.ExpireSecond)
		case 10:
			d.i64Field(t, &r.CreateSecond)
		case 11:
			d.i64Field(t, &r.DropSecond)
		case 12:
			d.boolField(t, &r.Duplicating)
		case 13:
			d.i32Field(t, &r.InitPartitionCount)
		case 14:
			d.boolField(t, &r.IsBulkLoading)
		case 15:
			d.boolField(t, &r.AtomicIdempotent)
		default:
			d.Skip(t)
		}
	}
}

// CreateAppOptions are the parameters of a new table.
type CreateAppOptions struct {
	PartitionCount   int32             // 1
	ReplicaCount     int32             // 2
	SuccessIfExist   bool              // 3
	AppType          string            // 4
	IsStateful       bool              // 5
	Envs             map[string]string // 6: encoded in sorted key order
	AtomicIdempotent bool              // 7: optional, written only when true
}

// ThriftType implements [Value].
func (*CreateAppOptions) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *CreateAppOptions) Encode(e *Encoder) {
	e.FieldI32(1, r.PartitionCount)
	e.FieldI32(2, r.ReplicaCount)
	e.FieldBool(3, r.SuccessIfExist)
	e.FieldString(4, r.AppType)
	e.FieldBool(5, r.IsStateful)
	e.stringMap(6, r.Envs)
	if r.AtomicIdempotent {
		e.FieldBool(7, true)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *CreateAppOptions) Decode(d *Decoder) {
	*r = CreateAppOptions{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, &r.PartitionCount)
		case 2:
			d.i32Field(t, &r.ReplicaCount)
		case 3:
			d.boolField(t, &r.SuccessIfExist)
		case 4:
			d.stringField(t, &r.AppType)
		case 5:
			d.boolField(t, &r.IsStateful)
		case 6:
			r.Envs = d.stringMap(t)
		case 7:
			d.boolField(t, &r.AtomicIdempotent)
		default:
			d.Skip(t)
		}
	}
}

// CreateAppRequest creates a table (RPC_CM_CREATE_APP).
type CreateAppRequest struct {
	AppName string           // 1
	Options CreateAppOptions // 2
}

// ThriftType implements [Value].
func (*CreateAppRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *CreateAppRequest) Encode(e *Encoder) {
	e.FieldString(1, r.AppName)
	e.FieldBegin(TypeStruct, 2)
	r.Options.Encode(e)
	e.FieldStop()
}

// Decode implements [Value].
func (r *CreateAppRequest) Decode(d *Decoder) {
	*r = CreateAppRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.stringField(t, &r.AppName)
		case 2:
			if d.Want(t, TypeStruct) {
				r.Options.Decode(d)
			}
		default:
			d.Skip(t)
		}
	}
}

// CreateAppResponse answers [CreateAppRequest].
type CreateAppResponse struct {
	Err   ErrorCode // 1
	AppID int32     // 2 (appid)
}

// ThriftType implements [Value].
func (*CreateAppResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *CreateAppResponse) Encode(e *Encoder) {
	e.errorCode(1, r.Err)
	e.FieldI32(2, r.AppID)
	e.FieldStop()
}

// Decode implements [Value].
func (r *CreateAppResponse) Decode(d *Decoder) {
	*r = CreateAppResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.errorCodeField(t, &r.Err)
		case 2:
			d.i32Field(t, &r.AppID)
		default:
			d.Skip(t)
		}
	}
}

// DropAppOptions are the parameters of a table drop.
type DropAppOptions struct {
	SuccessIfNotExist bool            // 1
	ReserveSeconds    Optional[int64] // 2: the go admin client always sets it
}

// ThriftType implements [Value].
func (*DropAppOptions) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *DropAppOptions) Encode(e *Encoder) {
	e.FieldBool(1, r.SuccessIfNotExist)
	if r.ReserveSeconds.Set {
		e.FieldI64(2, r.ReserveSeconds.V)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *DropAppOptions) Decode(d *Decoder) {
	*r = DropAppOptions{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.boolField(t, &r.SuccessIfNotExist)
		case 2:
			if d.Want(t, TypeI64) {
				r.ReserveSeconds = Some(d.I64())
			}
		default:
			d.Skip(t)
		}
	}
}

// DropAppRequest drops a table (RPC_CM_DROP_APP).
type DropAppRequest struct {
	AppName string         // 1
	Options DropAppOptions // 2
}

// ThriftType implements [Value].
func (*DropAppRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *DropAppRequest) Encode(e *Encoder) {
	e.FieldString(1, r.AppName)
	e.FieldBegin(TypeStruct, 2)
	r.Options.Encode(e)
	e.FieldStop()
}

// Decode implements [Value].
func (r *DropAppRequest) Decode(d *Decoder) {
	*r = DropAppRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.stringField(t, &r.AppName)
		case 2:
			if d.Want(t, TypeStruct) {
				r.Options.Decode(d)
			}
		default:
			d.Skip(t)
		}
	}
}

// DropAppResponse answers [DropAppRequest].
type DropAppResponse struct {
	Err ErrorCode // 1
}

// ThriftType implements [Value].
func (*DropAppResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *DropAppResponse) Encode(e *Encoder) {
	e.errorCode(1, r.Err)
	e.FieldStop()
}

// Decode implements [Value].
func (r *DropAppResponse) Decode(d *Decoder) {
	*r = DropAppResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.errorCodeField(t, &r.Err)
		default:
			d.Skip(t)
		}
	}
}

// PatternMatchType says how [ListAppsRequest].AppNamePattern matches (i32 on the wire).
type PatternMatchType int32

// PatternMatchType values.
const (
	PatternMatchInvalid PatternMatchType = iota
	PatternMatchAll
	PatternMatchExact
	PatternMatchAnywhere
	PatternMatchPrefix
	PatternMatchPostfix
	PatternMatchRegex
)

var patternMatchNames = []string{"PMT_INVALID", "PMT_MATCH_ALL", "PMT_MATCH_EXACT",
	"PMT_MATCH_ANYWHERE", "PMT_MATCH_PREFIX", "PMT_MATCH_POSTFIX", "PMT_MATCH_REGEX"}

// String returns the Pegasus name of p ("PMT_MATCH_PREFIX"), or "PatternMatchType(n)".
func (p PatternMatchType) String() string {
	return enumName(patternMatchNames, "PatternMatchType", int32(p))
}

// ListAppsRequest lists tables (RPC_CM_LIST_APPS). The real meta filters by name only when
// both AppNamePattern and MatchType are present.
type ListAppsRequest struct {
	Status         AppStatus                  // 1: AppStatusInvalid = every status
	AppNamePattern Optional[string]           // 2
	MatchType      Optional[PatternMatchType] // 3
}

// ThriftType implements [Value].
func (*ListAppsRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *ListAppsRequest) Encode(e *Encoder) {
	e.FieldI32(1, int32(r.Status))
	if r.AppNamePattern.Set {
		e.FieldString(2, r.AppNamePattern.V)
	}
	if r.MatchType.Set {
		e.FieldI32(3, int32(r.MatchType.V))
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *ListAppsRequest) Decode(d *Decoder) {
	*r = ListAppsRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, (*int32)(&r.Status))
		case 2:
			d.optStringField(t, &r.AppNamePattern)
		case 3:
			if d.Want(t, TypeI32) {
				r.MatchType = Some(PatternMatchType(d.I32()))
			}
		default:
			d.Skip(t)
		}
	}
}

// ListAppsResponse answers [ListAppsRequest].
type ListAppsResponse struct {
	Err         ErrorCode        // 1
	Infos       []AppInfo        // 2
	HintMessage Optional[string] // 3
}

// ThriftType implements [Value].
func (*ListAppsResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *ListAppsResponse) Encode(e *Encoder) {
	e.errorCode(1, r.Err)
	e.FieldBegin(TypeList, 2)
	e.ListBegin(TypeStruct, len(r.Infos))
	for i := range r.Infos {
		r.Infos[i].Encode(e)
	}
	if r.HintMessage.Set {
		e.FieldString(3, r.HintMessage.V)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *ListAppsResponse) Decode(d *Decoder) {
	*r = ListAppsResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.errorCodeField(t, &r.Err)
		case 2:
			r.Infos, _ = structList[AppInfo](d, t)
		case 3:
			d.optStringField(t, &r.HintMessage)
		default:
			d.Skip(t)
		}
	}
}

// NodeStatus is the liveness of a replica server (node_status, i32 on the wire).
type NodeStatus int32

// NodeStatus values.
const (
	NodeStatusInvalid NodeStatus = iota
	NodeStatusAlive
	NodeStatusUnalive
)

var nodeStatusNames = []string{"NS_INVALID", "NS_ALIVE", "NS_UNALIVE"}

// String returns the Pegasus name of s ("NS_ALIVE"), or "NodeStatus(n)".
func (s NodeStatus) String() string { return enumName(nodeStatusNames, "NodeStatus", int32(s)) }

// NodeInfo describes one replica server.
type NodeInfo struct {
	Status NodeStatus         // 1
	Node   RPCAddress         // 2
	HPNode Optional[HostPort] // 3
}

// ThriftType implements [Value].
func (*NodeInfo) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *NodeInfo) Encode(e *Encoder) {
	e.FieldI32(1, int32(r.Status))
	e.FieldBegin(TypeStruct, 2)
	r.Node.Encode(e)
	if r.HPNode.Set {
		e.FieldBegin(TypeStruct, 3)
		r.HPNode.V.Encode(e)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *NodeInfo) Decode(d *Decoder) {
	*r = NodeInfo{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, (*int32)(&r.Status))
		case 2:
			if d.Want(t, TypeStruct) {
				r.Node.Decode(d)
			}
		case 3:
			if d.Want(t, TypeStruct) {
				r.HPNode.Set = true
				r.HPNode.V.Decode(d)
			}
		default:
			d.Skip(t)
		}
	}
}

// ListNodesRequest lists replica servers (RPC_CM_LIST_NODES).
type ListNodesRequest struct {
	Status NodeStatus // 1: NodeStatusInvalid = alive and dead
}

// ThriftType implements [Value].
func (*ListNodesRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *ListNodesRequest) Encode(e *Encoder) {
	e.FieldI32(1, int32(r.Status))
	e.FieldStop()
}

// Decode implements [Value].
func (r *ListNodesRequest) Decode(d *Decoder) {
	*r = ListNodesRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, (*int32)(&r.Status))
		default:
			d.Skip(t)
		}
	}
}

// ListNodesResponse answers [ListNodesRequest].
type ListNodesResponse struct {
	Err   ErrorCode  // 1
	Infos []NodeInfo // 2
}

// ThriftType implements [Value].
func (*ListNodesResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *ListNodesResponse) Encode(e *Encoder) {
	e.errorCode(1, r.Err)
	e.FieldBegin(TypeList, 2)
	e.ListBegin(TypeStruct, len(r.Infos))
	for i := range r.Infos {
		r.Infos[i].Encode(e)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *ListNodesResponse) Decode(d *Decoder) {
	*r = ListNodesResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.errorCodeField(t, &r.Err)
		case 2:
			r.Infos, _ = structList[NodeInfo](d, t)
		default:
			d.Skip(t)
		}
	}
}

// ClusterInfoRequest asks for cluster information (RPC_CM_CLUSTER_INFO). It has no fields.
type ClusterInfoRequest struct{}

// ThriftType implements [Value].
func (*ClusterInfoRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (*ClusterInfoRequest) Encode(e *Encoder) { e.FieldStop() }

// Decode implements [Value].
func (*ClusterInfoRequest) Decode(d *Decoder) { d.Skip(TypeStruct) }

// ClusterInfoResponse answers [ClusterInfoRequest] with parallel key and value lists.
type ClusterInfoResponse struct {
	Err    ErrorCode // 1
	Keys   []string  // 2
	Values []string  // 3
}

// ThriftType implements [Value].
func (*ClusterInfoResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *ClusterInfoResponse) Encode(e *Encoder) {
	e.errorCode(1, r.Err)
	e.stringList(2, r.Keys)
	e.stringList(3, r.Values)
	e.FieldStop()
}

// Decode implements [Value].
func (r *ClusterInfoResponse) Decode(d *Decoder) {
	*r = ClusterInfoResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.errorCodeField(t, &r.Err)
		case 2:
			r.Keys, _ = d.stringList(t)
		case 3:
			r.Values, _ = d.stringList(t)
		default:
			d.Skip(t)
		}
	}
}

// Command is a remote command for any node (RPC_CLI_CLI_CALL); the reply is a [Text].
type Command struct {
	Cmd       string   // 1
	Arguments []string // 2
}

// ThriftType implements [Value].
func (*Command) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *Command) Encode(e *Encoder) {
	e.FieldString(1, r.Cmd)
	e.stringList(2, r.Arguments)
	e.FieldStop()
}

// Decode implements [Value].
func (r *Command) Decode(d *Decoder) {
	*r = Command{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.stringField(t, &r.Cmd)
		case 2:
			r.Arguments, _ = d.stringList(t)
		default:
			d.Skip(t)
		}
	}
}

// Text is a bare thrift string as a [Value]: the reply of RPC_CLI_CLI_CALL, whose result
// field 0 has type STRING.
type Text string

// ThriftType implements [Value].
func (Text) ThriftType() Type { return TypeString }

// Encode implements [Value].
func (s Text) Encode(e *Encoder) { e.String(string(s)) }

// Decode implements [Value].
func (s *Text) Decode(d *Decoder) { *s = Text(d.String()) }

// AppEnvOperation is the kind of a table-env update (app_env_operation, i32 on the wire).
type AppEnvOperation int32

// AppEnvOperation values.
const (
	AppEnvOpInvalid AppEnvOperation = iota
	AppEnvOpSet
	AppEnvOpDel
	AppEnvOpClear
)

var appEnvOpNames = []string{"APP_ENV_OP_INVALID", "APP_ENV_OP_SET", "APP_ENV_OP_DEL",
	"APP_ENV_OP_CLEAR"}

// String returns the Pegasus name of o ("APP_ENV_OP_SET"), or "AppEnvOperation(n)".
func (o AppEnvOperation) String() string {
	return enumName(appEnvOpNames, "AppEnvOperation", int32(o))
}

// UpdateAppEnvRequest sets, deletes or clears table envs (RPC_CM_UPDATE_APP_ENV).
type UpdateAppEnvRequest struct {
	AppName     string             // 1
	Op          AppEnvOperation    // 2
	Keys        Optional[[]string] // 3: SET and DEL
	Values      Optional[[]string] // 4: SET, parallel to Keys
	ClearPrefix Optional[string]   // 5: CLEAR (required there; empty = all envs)
}

// ThriftType implements [Value].
func (*UpdateAppEnvRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *UpdateAppEnvRequest) Encode(e *Encoder) {
	e.FieldString(1, r.AppName)
	e.FieldI32(2, int32(r.Op))
	if r.Keys.Set {
		e.stringList(3, r.Keys.V)
	}
	if r.Values.Set {
		e.stringList(4, r.Values.V)
	}
	if r.ClearPrefix.Set {
		e.FieldString(5, r.ClearPrefix.V)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *UpdateAppEnvRequest) Decode(d *Decoder) {
	*r = UpdateAppEnvRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.stringField(t, &r.AppName)
		case 2:
			d.i32Field(t, (*int32)(&r.Op))
		case 3:
			r.Keys.V, r.Keys.Set = d.stringList(t)
		case 4:
			r.Values.V, r.Values.Set = d.stringList(t)
		case 5:
			d.optStringField(t, &r.ClearPrefix)
		default:
			d.Skip(t)
		}
	}
}

// UpdateAppEnvResponse answers [UpdateAppEnvRequest].
type UpdateAppEnvResponse struct {
	Err         ErrorCode // 1
	HintMessage string    // 2
}

// ThriftType implements [Value].
func (*UpdateAppEnvResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *UpdateAppEnvResponse) Encode(e *Encoder) {
	e.errorCode(1, r.Err)
	e.FieldString(2, r.HintMessage)
	e.FieldStop()
}

// Decode implements [Value].
func (r *UpdateAppEnvResponse) Decode(d *Decoder) {
	*r = UpdateAppEnvResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.errorCodeField(t, &r.Err)
		case 2:
			d.stringField(t, &r.HintMessage)
		default:
			d.Skip(t)
		}
	}
}

// RecallAppRequest restores a dropped table under a new name (RPC_CM_RECALL_APP).
type RecallAppRequest struct {
	AppID      int32  // 1
	NewAppName string // 2
}

// ThriftType implements [Value].
func (*RecallAppRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *RecallAppRequest) Encode(e *Encoder) {
	e.FieldI32(1, r.AppID)
	e.FieldString(2, r.NewAppName)
	e.FieldStop()
}

// Decode implements [Value].
func (r *RecallAppRequest) Decode(d *Decoder) {
	*r = RecallAppRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, &r.AppID)
		case 2:
			d.stringField(t, &r.NewAppName)
		default:
			d.Skip(t)
		}
	}
}

// RecallAppResponse answers [RecallAppRequest]. A missing Info decodes as [NewAppInfo].
type RecallAppResponse struct {
	Err  ErrorCode // 1
	Info AppInfo   // 2
}

// ThriftType implements [Value].
func (*RecallAppResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *RecallAppResponse) Encode(e *Encoder) {
	e.errorCode(1, r.Err)
	e.FieldBegin(TypeStruct, 2)
	r.Info.Encode(e)
	e.FieldStop()
}

// Decode implements [Value].
func (r *RecallAppResponse) Decode(d *Decoder) {
	*r = RecallAppResponse{Info: NewAppInfo()}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.errorCodeField(t, &r.Err)
		case 2:
			if d.Want(t, TypeStruct) {
				r.Info.Decode(d)
			}
		default:
			d.Skip(t)
		}
	}
}

// QueryAppInfoRequest asks a meta server for all its tables (RPC_QUERY_APP_INFO).
type QueryAppInfoRequest struct {
	MetaServer   RPCAddress         // 1
	HPMetaServer Optional[HostPort] // 2
}

// ThriftType implements [Value].
func (*QueryAppInfoRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *QueryAppInfoRequest) Encode(e *Encoder) {
	e.FieldBegin(TypeStruct, 1)
	r.MetaServer.Encode(e)
	if r.HPMetaServer.Set {
		e.FieldBegin(TypeStruct, 2)
		r.HPMetaServer.V.Encode(e)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *QueryAppInfoRequest) Decode(d *Decoder) {
	*r = QueryAppInfoRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			if d.Want(t, TypeStruct) {
				r.MetaServer.Decode(d)
			}
		case 2:
			if d.Want(t, TypeStruct) {
				r.HPMetaServer.Set = true
				r.HPMetaServer.V.Decode(d)
			}
		default:
			d.Skip(t)
		}
	}
}

// QueryAppInfoResponse answers [QueryAppInfoRequest].
type QueryAppInfoResponse struct {
	Err  ErrorCode // 1
	Apps []AppInfo // 2
}

// ThriftType implements [Value].
func (*QueryAppInfoResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *QueryAppInfoResponse) Encode(e *Encoder) {
	e.errorCode(1, r.Err)
	e.FieldBegin(TypeList, 2)
	e.ListBegin(TypeStruct, len(r.Apps))
	for i := range r.Apps {
		r.Apps[i].Encode(e)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *QueryAppInfoResponse) Decode(d *Decoder) {
	*r = QueryAppInfoResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.errorCodeField(t, &r.Err)
		case 2:
			r.Apps, _ = structList[AppInfo](d, t)
		default:
			d.Skip(t)
		}
	}
}

// NegotiationStatus is a step of the SASL negotiation (negotiation_status, i32 on the wire).
type NegotiationStatus int32

// NegotiationStatus values.
const (
	NegotiationInvalid NegotiationStatus = iota
	NegotiationSASLListMechanisms
	NegotiationSASLListMechanismsResp
	NegotiationSASLSelectMechanisms
	NegotiationSASLSelectMechanismsResp
	NegotiationSASLInitiate
	NegotiationSASLChallenge
	NegotiationSASLChallengeResp
	NegotiationSASLSucc
	NegotiationSASLAuthDisable
	NegotiationSASLAuthFail
)

var negotiationNames = []string{"INVALID", "SASL_LIST_MECHANISMS", "SASL_LIST_MECHANISMS_RESP",
	"SASL_SELECT_MECHANISMS", "SASL_SELECT_MECHANISMS_RESP", "SASL_INITIATE", "SASL_CHALLENGE",
	"SASL_CHALLENGE_RESP", "SASL_SUCC", "SASL_AUTH_DISABLE", "SASL_AUTH_FAIL"}

// String returns the Pegasus name of s ("SASL_INITIATE"), or "NegotiationStatus(n)".
func (s NegotiationStatus) String() string {
	return enumName(negotiationNames, "NegotiationStatus", int32(s))
}

// NegotiationRequest is one client step of the SASL negotiation (RPC_NEGOTIATION).
type NegotiationRequest struct {
	Status NegotiationStatus // 1
	Msg    []byte            // 2: blob
}

// ThriftType implements [Value].
func (*NegotiationRequest) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *NegotiationRequest) Encode(e *Encoder) {
	e.FieldI32(1, int32(r.Status))
	e.FieldBlob(2, r.Msg)
	e.FieldStop()
}

// Decode implements [Value].
func (r *NegotiationRequest) Decode(d *Decoder) {
	*r = NegotiationRequest{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			return
		}
		switch id {
		case 1:
			d.i32Field(t, (*int32)(&r.Status))
		case 2:
			d.blobField(t, &r.Msg)
		default:
			d.Skip(t)
		}
	}
}

// NegotiationResponse is one server step of the SASL negotiation; same layout as
// [NegotiationRequest].
type NegotiationResponse NegotiationRequest

// ThriftType implements [Value].
func (*NegotiationResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *NegotiationResponse) Encode(e *Encoder) { (*NegotiationRequest)(r).Encode(e) }

// Decode implements [Value].
func (r *NegotiationResponse) Decode(d *Decoder) { (*NegotiationRequest)(r).Decode(d) }
