package idl

// The structs of the backup, restore and bulk load RPCs are generated from backup.schema
// into backup_gen.go. This file holds the two replies whose nested containers the schema
// does not express.

// QueryBackupPolicyResponse answers [QueryBackupPolicyRequest]: the policies found and, for
// each, its latest backups (configuration_query_backup_policy_response).
type QueryBackupPolicyResponse struct {
	Err         ErrorCode        // 1
	Policies    []PolicyEntry    // 2: "policys" upstream
	BackupInfos [][]BackupEntry  // 3: one list per policy, in the order of Policies
	HintMsg     Optional[string] // 4
}

// ThriftType implements [Value].
func (*QueryBackupPolicyResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value].
func (r *QueryBackupPolicyResponse) Encode(e *Encoder) {
	e.FieldBegin(TypeStruct, 1)
	r.Err.Encode(e)
	e.FieldBegin(TypeList, 2)
	e.ListBegin(TypeStruct, len(r.Policies))
	for i := range r.Policies {
		r.Policies[i].Encode(e)
	}
	e.FieldBegin(TypeList, 3)
	e.ListBegin(TypeList, len(r.BackupInfos))
	for _, l := range r.BackupInfos {
		e.ListBegin(TypeStruct, len(l))
		for i := range l {
			l[i].Encode(e)
		}
	}
	if r.HintMsg.Set {
		e.FieldString(4, r.HintMsg.V)
	}
	e.FieldStop()
}

// Decode implements [Value].
func (r *QueryBackupPolicyResponse) Decode(d *Decoder) {
	*r = QueryBackupPolicyResponse{}
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
				r.Err.Decode(d)
			}
		case 2:
			if n, ok := d.list(t, TypeStruct, 1); ok {
				r.Policies = make([]PolicyEntry, n)
				for i := 0; i < n && d.err == nil; i++ {
					r.Policies[i].Decode(d)
				}
			}
		case 3:
			if n, ok := d.list(t, TypeList, 5); ok {
				r.BackupInfos = make([][]BackupEntry, n)
				for i := 0; i < n && d.err == nil; i++ {
					r.BackupInfos[i] = decodeStructList[BackupEntry](d)
				}
			}
		case 4:
			if d.Want(t, TypeString) {
				r.HintMsg = Some(d.String())
			}
		default:
			d.Skip(t)
		}
	}
}

// decodeStructList reads a list header and its struct elements, skipping a list of another
// element type.
func decodeStructList[T any, P interface {
	*T
	Value
}](d *Decoder) []T {
	et, n := d.ListBegin()
	if d.err != nil {
		return nil
	}
	if et != TypeStruct {
		for i := 0; i < n && d.err == nil; i++ {
			d.Skip(et)
		}
		return nil
	}
	l := make([]T, n)
	for i := 0; i < n && d.err == nil; i++ {
		P(&l[i]).Decode(d)
	}
	return l
}

// ReplicaBulkLoadState is one replica's bulk load state in a [QueryBulkLoadResponse]: on
// the wire, an entry of the partition's map keyed by rpc_address (field 6) and of the one
// keyed by host_port (field 9).
type ReplicaBulkLoadState struct {
	Addr     RPCAddress
	HostPort HostPort
	State    PartitionBulkLoadState
}

// QueryBulkLoadResponse answers [QueryBulkLoadRequest] (query_bulk_load_response).
type QueryBulkLoadResponse struct {
	Err              ErrorCode                // 1
	AppName          string                   // 2
	AppStatus        BulkLoadStatus           // 3
	PartitionsStatus []BulkLoadStatus         // 4
	MaxReplicaCount  int32                    // 5
	BulkLoadStates   [][]ReplicaBulkLoadState // 6 and 9: one per partition
	HintMsg          Optional[string]         // 7
	IsBulkLoading    Optional[bool]           // 8
}

// ThriftType implements [Value].
func (*QueryBulkLoadResponse) ThriftType() Type { return TypeStruct }

// Encode implements [Value]. Field 9 (the host_port maps) is written when field 6 is.
func (r *QueryBulkLoadResponse) Encode(e *Encoder) {
	e.FieldBegin(TypeStruct, 1)
	r.Err.Encode(e)
	e.FieldString(2, r.AppName)
	e.FieldI32(3, int32(r.AppStatus))
	e.FieldBegin(TypeList, 4)
	e.ListBegin(TypeI32, len(r.PartitionsStatus))
	for _, s := range r.PartitionsStatus {
		e.I32(int32(s))
	}
	e.FieldI32(5, r.MaxReplicaCount)
	for _, byHP := range []bool{false, true} {
		if byHP {
			if r.HintMsg.Set {
				e.FieldString(7, r.HintMsg.V)
			}
			if r.IsBulkLoading.Set {
				e.FieldBool(8, r.IsBulkLoading.V)
			}
			e.FieldBegin(TypeList, 9)
		} else {
			e.FieldBegin(TypeList, 6)
		}
		e.ListBegin(TypeMap, len(r.BulkLoadStates))
		for _, p := range r.BulkLoadStates {
			e.MapBegin(TypeStruct, TypeStruct, len(p))
			for i := range p {
				if byHP {
					p[i].HostPort.Encode(e)
				} else {
					p[i].Addr.Encode(e)
				}
				p[i].State.Encode(e)
			}
		}
	}
	e.FieldStop()
}

// Decode implements [Value]. The states come from field 6, their host_ports from field 9
// when it has as many entries in the same order.
func (r *QueryBulkLoadResponse) Decode(d *Decoder) {
	*r = QueryBulkLoadResponse{}
	if !d.Enter() {
		return
	}
	defer d.Leave()
	var hps [][]HostPort
	for {
		t, id := d.FieldBegin()
		if t == TypeStop {
			break
		}
		switch id {
		case 1:
			if d.Want(t, TypeStruct) {
				r.Err.Decode(d)
			}
		case 2:
			if d.Want(t, TypeString) {
				r.AppName = d.String()
			}
		case 3:
			if d.Want(t, TypeI32) {
				r.AppStatus = BulkLoadStatus(d.I32())
			}
		case 4:
			if n, ok := d.list(t, TypeI32, 4); ok {
				r.PartitionsStatus = make([]BulkLoadStatus, n)
				for i := range r.PartitionsStatus {
					r.PartitionsStatus[i] = BulkLoadStatus(d.I32())
				}
			}
		case 5:
			if d.Want(t, TypeI32) {
				r.MaxReplicaCount = d.I32()
			}
		case 6, 9:
			n, ok := d.list(t, TypeMap, 6)
			if !ok {
				continue
			}
			states := make([][]ReplicaBulkLoadState, n)
			for i := 0; i < n && d.err == nil; i++ {
				kt, vt, m := d.MapBegin()
				if d.err != nil {
					break
				}
				if kt != TypeStruct || vt != TypeStruct {
					for j := 0; j < m && d.err == nil; j++ {
						d.Skip(kt)
						d.Skip(vt)
					}
					continue
				}
				states[i] = make([]ReplicaBulkLoadState, m)
				for j := 0; j < m && d.err == nil; j++ {
					if id == 6 {
						states[i][j].Addr.Decode(d)
					} else {
						states[i][j].HostPort.Decode(d)
					}
					states[i][j].State.Decode(d)
				}
			}
			if id == 6 {
				r.BulkLoadStates = states
				continue
			}
			hps = make([][]HostPort, n)
			for i, p := range states {
				for _, s := range p {
					hps[i] = append(hps[i], s.HostPort)
				}
			}
		case 7:
			if d.Want(t, TypeString) {
				r.HintMsg = Some(d.String())
			}
		case 8:
			if d.Want(t, TypeBool) {
				r.IsBulkLoading = Some(d.Bool())
			}
		default:
			d.Skip(t)
		}
	}
	if len(hps) != len(r.BulkLoadStates) {
		return
	}
	for i, p := range r.BulkLoadStates {
		if len(hps[i]) != len(p) {
			return
		}
	}
	for i, p := range r.BulkLoadStates {
		for j := range p {
			p[j].HostPort = hps[i][j]
		}
	}
}
