package idl

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
)

// allValues returns a constructor for every Value type of the package: every struct, the
// placeholder types, ContextID and Text.
func allValues() []func() Value {
	return []func() Value{
		func() Value { return new(Blob) },
		func() Value { return new(GPID) },
		func() Value { return new(RPCAddress) },
		func() Value { return new(HostPort) },
		func() Value { return new(ErrorCode) },
		func() Value { return new(ContextID) },
		func() Value { return new(Text) },
		func() Value { return new(PartitionConfiguration) },
		func() Value { return new(QueryCfgRequest) },
		func() Value { return new(QueryCfgResponse) },
		func() Value { return new(AppInfo) },
		func() Value { return new(CreateAppOptions) },
		func() Value { return new(CreateAppRequest) },
		func() Value { return new(CreateAppResponse) },
		func() Value { return new(DropAppOptions) },
		func() Value { return new(DropAppRequest) },
		func() Value { return new(DropAppResponse) },
		func() Value { return new(ListAppsRequest) },
		func() Value { return new(ListAppsResponse) },
		func() Value { return new(NodeInfo) },
		func() Value { return new(ListNodesRequest) },
		func() Value { return new(ListNodesResponse) },
		func() Value { return new(ClusterInfoRequest) },
		func() Value { return new(ClusterInfoResponse) },
		func() Value { return new(Command) },
		func() Value { return new(UpdateAppEnvRequest) },
		func() Value { return new(UpdateAppEnvResponse) },
		func() Value { return new(RecallAppRequest) },
		func() Value { return new(RecallAppResponse) },
		func() Value { return new(QueryAppInfoRequest) },
		func() Value { return new(QueryAppInfoResponse) },
		func() Value { return new(NegotiationRequest) },
		func() Value { return new(StartPartitionSplitRequest) },
		func() Value { return new(StartPartitionSplitResponse) },
		func() Value { return new(ControlSplitRequest) },
		func() Value { return new(ControlSplitResponse) },
		func() Value { return new(QuerySplitRequest) },
		func() Value { return new(QuerySplitResponse) },
		func() Value { return new(MetaControlRequest) },
		func() Value { return new(MetaControlResponse) },
		func() Value { return new(ProposalAction) },
		func() Value { return new(BalancerRequest) },
		func() Value { return new(BalancerResponse) },
		func() Value { return new(NegotiationResponse) },
		func() Value { return new(UpdateRequest) },
		func() Value { return new(KeyValue) },
		func() Value { return new(MultiPutRequest) },
		func() Value { return new(MultiRemoveRequest) },
		func() Value { return new(IncrRequest) },
		func() Value { return new(CheckAndSetRequest) },
		func() Value { return new(Mutate) },
		func() Value { return new(CheckAndMutateRequest) },
		func() Value { return new(MultiGetRequest) },
		func() Value { return new(FullKey) },
		func() Value { return new(BatchGetRequest) },
		func() Value { return new(GetScannerRequest) },
		func() Value { return new(ScanRequest) },
		func() Value { return new(UpdateResponse) },
		func() Value { return new(ReadResponse) },
		func() Value { return new(TTLResponse) },
		func() Value { return new(CountResponse) },
		func() Value { return new(MultiRemoveResponse) },
		func() Value { return new(MultiGetResponse) },
		func() Value { return new(FullData) },
		func() Value { return new(BatchGetResponse) },
		func() Value { return new(IncrResponse) },
		func() Value { return new(CheckAndSetResponse) },
		func() Value { return new(CheckAndMutateResponse) },
		func() Value { return new(ScanResponse) },
		func() Value { return new(FileMeta) },
		func() Value { return new(BulkLoadMetadata) },
		func() Value { return new(StartBulkLoadRequest) },
		func() Value { return new(StartBulkLoadResponse) },
		func() Value { return new(PartitionBulkLoadState) },
		func() Value { return new(ControlBulkLoadRequest) },
		func() Value { return new(ControlBulkLoadResponse) },
		func() Value { return new(QueryBulkLoadRequest) },
		func() Value { return new(ClearBulkLoadRequest) },
		func() Value { return new(ClearBulkLoadResponse) },
		func() Value { return new(PolicyInfo) },
		func() Value { return new(RestoreRequest) },
		func() Value { return new(RestoreResponse) },
		func() Value { return new(ModifyBackupPolicyRequest) },
		func() Value { return new(ModifyBackupPolicyResponse) },
		func() Value { return new(AddBackupPolicyRequest) },
		func() Value { return new(AddBackupPolicyResponse) },
		func() Value { return new(PolicyEntry) },
		func() Value { return new(BackupEntry) },
		func() Value { return new(QueryBackupPolicyRequest) },
		func() Value { return new(QueryRestoreRequest) },
		func() Value { return new(QueryRestoreResponse) },
		func() Value { return new(StartBackupAppRequest) },
		func() Value { return new(StartBackupAppResponse) },
		func() Value { return new(BackupItem) },
		func() Value { return new(QueryBackupStatusRequest) },
		func() Value { return new(QueryBackupStatusResponse) },
		func() Value { r := NewDuplicationAddRequest(); return &r },
		func() Value { return new(DuplicationAddResponse) },
		func() Value { return new(DuplicationModifyRequest) },
		func() Value { return new(DuplicationModifyResponse) },
		func() Value { return new(DuplicationPartitionState) },
		func() Value { return new(DuplicationEntry) },
		func() Value { return new(DuplicationAppState) },
		func() Value { return new(DuplicationQueryRequest) },
		func() Value { return new(DuplicationQueryResponse) },
		func() Value { return new(DuplicationConfirmEntry) },
		func() Value { return new(DuplicationSyncRequest) },
		func() Value { return new(DuplicationSyncResponse) },
		func() Value { return new(DuplicationListRequest) },
		func() Value { return new(DuplicationListResponse) },
		func() Value { return new(DuplicateEntry) },
		func() Value { return new(DuplicateRequest) },
		func() Value { return new(DuplicateResponse) },
		func() Value { return new(DetectHotkeyRequest) },
		func() Value { return new(DetectHotkeyResponse) },
	}
}

// typeName is the Go name of the type v points to.
func typeName(v Value) string { return reflect.TypeOf(v).Elem().Name() }

// isOptional reports whether t is an instance of Optional[T].
func isOptional(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && strings.HasPrefix(t.Name(), "Optional[")
}

// fill sets every field reachable from v to a distinct non-zero value: every optional field
// present, every slice and map with two entries. n numbers the values.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte(fmt.Sprintf("b%d", *n)))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), n)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, n)
			fill(e, n)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

// randomize sets v to a random value that survives a round trip: an absent Optional has a
// zero V.
func randomize(r *rand.Rand, v reflect.Value) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 1)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := int64(r.Uint64())
		if r.IntN(3) == 0 {
			x = int64(r.IntN(5) - 2) // small values, -1 and 0 included
		}
		v.SetInt(x)
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(r.Uint64())
	case reflect.String:
		v.SetString(string(randomBytes(r)))
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			switch r.IntN(3) {
			case 0: // nil
			case 1:
				v.SetBytes([]byte{})
			default:
				v.SetBytes(randomBytes(r))
			}
			return
		}
		n := r.IntN(4)
		if n == 0 && r.IntN(2) == 0 {
			return // nil
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			randomize(r, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		n := r.IntN(4)
		if n == 0 && r.IntN(2) == 0 {
			return
		}
		m := reflect.MakeMap(v.Type())
		for range n {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			randomize(r, k)
			randomize(r, e)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		if isOptional(v.Type()) {
			if r.IntN(2) == 0 {
				v.FieldByName("Set").SetBool(true)
				randomize(r, v.FieldByName("V"))
			}
			return
		}
		for i := range v.NumField() {
			randomize(r, v.Field(i))
		}
	default:
		panic("randomize: unhandled kind " + v.Kind().String())
	}
}

func randomBytes(r *rand.Rand) []byte {
	b := make([]byte, r.IntN(8))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// equalish is reflect.DeepEqual except that a nil slice or map equals an empty one: the wire
// cannot tell them apart (decoding yields non-nil empty slices for present fields).
func equalish(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !equalish(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !equalish(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !equalish(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalish(a.Elem(), b.Elem())
	default:
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
}

func valuesEqual(a, b Value) bool { return equalish(reflect.ValueOf(a), reflect.ValueOf(b)) }
