package idl

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// specSchemas transcribes the field tables of protocol.md §2.2 and §2.3, independently of the
// codecs: "id type" pairs, "?" marking an optional field. Placeholder types are blob, gpid,
// addr (rpc_address), hostport and errcode; enums are i32; other names are structs.
var specSchemas = map[string]string{
	"PartitionConfiguration":     "1 gpid; 2 i64; 3 i32; 4 addr; 5 list<addr>; 6 list<addr>; 7 i64; 8 i32; ?9 hostport; ?10 list<hostport>; ?11 list<hostport>",
	"QueryCfgRequest":            "1 string; 2 list<i32>",
	"QueryCfgResponse":           "1 errcode; 2 i32; 3 i32; 4 bool; 5 list<PartitionConfiguration>",
	"AppInfo":                    "1 i32; 2 string; 3 string; 4 i32; 5 i32; 6 map<string,string>; 7 bool; 8 i32; 9 i64; 10 i64; 11 i64; ?12 bool; 13 i32; ?14 bool; ?15 bool",
	"CreateAppOptions":           "1 i32; 2 i32; 3 bool; 4 string; 5 bool; 6 map<string,string>; ?7 bool",
	"CreateAppRequest":           "1 string; 2 CreateAppOptions",
	"CreateAppResponse":          "1 errcode; 2 i32",
	"DropAppOptions":             "1 bool; ?2 i64",
	"DropAppRequest":             "1 string; 2 DropAppOptions",
	"DropAppResponse":            "1 errcode",
	"ListAppsRequest":            "1 i32; ?2 string; ?3 i32",
	"ListAppsResponse":           "1 errcode; 2 list<AppInfo>; ?3 string",
	"NodeInfo":                   "1 i32; 2 addr; ?3 hostport",
	"ListNodesRequest":           "1 i32",
	"ListNodesResponse":          "1 errcode; 2 list<NodeInfo>",
	"ClusterInfoRequest":         "",
	"ClusterInfoResponse":        "1 errcode; 2 list<string>; 3 list<string>",
	"Command":                    "1 string; 2 list<string>",
	"UpdateAppEnvRequest":        "1 string; 2 i32; ?3 list<string>; ?4 list<string>; ?5 string",
	"UpdateAppEnvResponse":       "1 errcode; 2 string",
	"RecallAppRequest":           "1 i32; 2 string",
	"RecallAppResponse":          "1 errcode; 2 AppInfo",
	"QueryAppInfoRequest":        "1 addr; ?2 hostport",
	"QueryAppInfoResponse":       "1 errcode; 2 list<AppInfo>",
	"NegotiationRequest":         "1 i32; 2 blob",
	"NegotiationResponse":        "1 i32; 2 blob",
	"UpdateRequest":              "1 blob; 2 blob; 3 i32; ?4 i32; ?5 bool; ?6 bool; ?7 blob",
	"KeyValue":                   "1 blob; 2 blob; ?3 i32",
	"MultiPutRequest":            "1 blob; 2 list<KeyValue>; 3 i32",
	"MultiRemoveRequest":         "1 blob; 2 list<blob>; 3 i64",
	"IncrRequest":                "1 blob; 2 i64; 3 i32",
	"CheckAndSetRequest":         "1 blob; 2 blob; 3 i32; 4 blob; 5 bool; 6 blob; 7 blob; 8 i32; 9 bool",
	"Mutate":                     "1 i32; 2 blob; 3 blob; 4 i32",
	"CheckAndMutateRequest":      "1 blob; 2 blob; 3 i32; 4 blob; 5 list<Mutate>; 6 bool",
	"MultiGetRequest":            "1 blob; 2 list<blob>; 3 i32; 4 i32; 5 bool; 6 blob; 7 blob; 8 bool; 9 bool; 10 i32; 11 blob; 12 bool",
	"FullKey":                    "1 blob; 2 blob",
	"BatchGetRequest":            "1 list<FullKey>",
	"GetScannerRequest":          "1 blob; 2 blob; 3 bool; 4 bool; 5 i32; 6 bool; 7 i32; 8 blob; 9 i32; 10 blob; ?11 bool; ?12 bool; ?13 bool; ?14 bool",
	"ScanRequest":                "1 i64",
	"UpdateResponse":             "1 i32; 2 i32; 3 i32; 4 i64; 5 string",
	"ReadResponse":               "1 i32; 2 blob; 3 i32; 4 i32; 6 string",
	"TTLResponse":                "1 i32; 2 i32; 3 i32; 4 i32; 6 string",
	"CountResponse":              "1 i32; 2 i64; 3 i32; 4 i32; 6 string",
	"MultiRemoveResponse":        "1 i32; 2 i64; 3 i32; 4 i32; 5 i64; 6 string",
	"MultiGetResponse":           "1 i32; 2 list<KeyValue>; 3 i32; 4 i32; 6 string",
	"FullData":                   "1 blob; 2 blob; 3 blob",
	"BatchGetResponse":           "1 i32; 2 list<FullData>; 3 i32; 4 i32; 6 string",
	"IncrResponse":               "1 i32; 2 i64; 3 i32; 4 i32; 5 i64; 6 string",
	"CheckAndSetResponse":        "1 i32; 2 bool; 3 bool; 4 blob; 5 i32; 6 i32; 7 i64; 8 string",
	"CheckAndMutateResponse":     "1 i32; 2 bool; 3 bool; 4 blob; 5 i32; 6 i32; 7 i64; 8 string",
	"ScanResponse":               "1 i32; 2 list<KeyValue>; 3 i64; 4 i32; 5 i32; 6 string; ?7 i32",
	"FileMeta":                   "1 string; 2 i64; 3 string",
	"BulkLoadMetadata":           "1 list<FileMeta>; 2 i64",
	"StartBulkLoadRequest":       "1 string; 2 string; 3 string; 4 string; 5 bool",
	"StartBulkLoadResponse":      "1 errcode; 2 string",
	"PartitionBulkLoadState":     "?1 i32; ?2 errcode; ?3 i32; ?4 bool; ?5 bool",
	"ControlBulkLoadRequest":     "1 string; 2 i32",
	"ControlBulkLoadResponse":    "1 errcode; ?2 string",
	"QueryBulkLoadRequest":       "1 string",
	"ClearBulkLoadRequest":       "1 string",
	"ClearBulkLoadResponse":      "1 errcode; 2 string",
	"PolicyInfo":                 "1 string; 2 string",
	"RestoreRequest":             "1 string; 2 string; 3 i64; 4 string; 5 i32; 6 string; 7 string; 8 bool; ?9 string",
	"RestoreResponse":            "1 errcode; 2 i32",
	"ModifyBackupPolicyRequest":  "1 string; ?2 list<i32>; ?3 list<i32>; ?4 i64; ?5 i32; ?6 bool; ?7 string; ?8 bool",
	"ModifyBackupPolicyResponse": "1 errcode; 2 string",
	"AddBackupPolicyRequest":     "1 string; 2 string; 3 list<i32>; 4 i64; 5 i32; 6 string",
	"AddBackupPolicyResponse":    "1 errcode; 2 string",
	"PolicyEntry":                "1 string; 2 string; 3 string; 4 set<i32>; 5 i32; 6 string; 7 bool",
	"BackupEntry":                "1 i64; 2 i64; 3 i64; 4 set<i32>",
	"QueryBackupPolicyRequest":   "1 list<string>; 2 i32",
	"QueryRestoreRequest":        "1 i32",
	"QueryRestoreResponse":       "1 errcode; 2 list<errcode>; 3 list<i32>",
	"StartBackupAppRequest":      "1 string; 2 i32; ?3 string",
	"StartBackupAppResponse":     "1 errcode; 2 string; ?3 i64",
	"BackupItem":                 "1 i64; 2 string; 3 string; 4 string; 5 i64; 6 i64; 7 bool",
	"QueryBackupStatusRequest":   "1 i32; ?2 i64",
	"QueryBackupStatusResponse":  "1 errcode; 2 string; ?3 list<BackupItem>",
	// operations-structs.md (partition_split.thrift) and meta_admin.thrift.
	"StartPartitionSplitRequest":  "1 string; 2 i32",
	"StartPartitionSplitResponse": "1 errcode; 2 string",
	"ControlSplitRequest":         "1 string; 2 i32; 3 i32; ?4 i32",
	"ControlSplitResponse":        "1 errcode; ?2 string",
	"QuerySplitRequest":           "1 string",
	"QuerySplitResponse":          "1 errcode; 2 i32; 3 map<i32,i32>; ?4 string",
	"MetaControlRequest":          "1 i32",
	"MetaControlResponse":         "1 errcode; 2 i32",
	"ProposalAction":              "1 addr; 2 addr; 3 i32",
	"BalancerRequest":             "1 gpid; 2 list<ProposalAction>; ?3 bool; ?4 i32",
	"BalancerResponse":            "1 errcode",
	// operations-structs.md, duplication.thrift and duplication_internal.thrift; the fields
	// numbered 100 are gopegasus's own.
	"DuplicationAddRequest":     "1 string; 2 string; ?3 bool; ?4 string; ?5 i32",
	"DuplicationAddResponse":    "1 errcode; 2 i32; 3 i32; ?4 string; ?5 string; ?6 i32",
	"DuplicationModifyRequest":  "1 string; 2 i32; ?3 i32; ?4 i32",
	"DuplicationModifyResponse": "1 errcode; 2 i32",
	"DuplicationPartitionState": "1 i64; 2 i64; ?100 bool",
	"DuplicationEntry":          "1 i32; 2 i32; 3 string; 4 i64; ?5 map<i32,i64>; ?7 i32; ?8 string; ?9 i32; ?10 i32; ?11 map<i32,DuplicationPartitionState>",
	"DuplicationAppState":       "1 i32; 2 map<i32,DuplicationEntry>; 3 string; 4 i32",
	"DuplicationQueryRequest":   "1 string",
	"DuplicationQueryResponse":  "1 errcode; 3 i32; 4 list<DuplicationEntry>",
	"DuplicationConfirmEntry":   "1 i32; 2 i64; ?3 bool; ?4 i64; ?100 bool",
	"DuplicationSyncRequest":    "1 addr; 2 map<gpid,list<DuplicationConfirmEntry>>; 3 hostport",
	"DuplicationSyncResponse":   "1 errcode; 2 map<i32,map<i32,DuplicationEntry>>",
	"DuplicationListRequest":    "1 string; 2 i32",
	"DuplicationListResponse":   "1 errcode; 2 string; 3 map<string,DuplicationAppState>",
	"DuplicateEntry":            "?1 i64; ?2 taskcode; ?3 blob; ?4 byte; ?5 bool",
	"DuplicateRequest":          "1 list<DuplicateEntry>",
	"DuplicateResponse":         "?1 i32; ?2 string",
	"DetectHotkeyRequest":       "1 i32; 2 i32; 3 gpid",
	"DetectHotkeyResponse":      "1 errcode; ?2 string; ?3 string",
}

type specField struct {
	id  int16
	typ string
	opt bool
}

func parseSpec(t *testing.T, name string) []specField {
	t.Helper()
	s, ok := specSchemas[name]
	if !ok {
		t.Fatalf("no spec schema for %s", name)
	}
	var fs []specField
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		idStr, typ, _ := strings.Cut(part, " ")
		opt := strings.HasPrefix(idStr, "?")
		id, err := strconv.Atoi(strings.TrimPrefix(idStr, "?"))
		if err != nil {
			t.Fatalf("bad spec %q: %v", part, err)
		}
		fs = append(fs, specField{int16(id), typ, opt})
	}
	return fs
}

// specWireType is the type byte the spec type occupies in a field header or list header.
func specWireType(typ string) Type {
	switch {
	case typ == "bool":
		return TypeBool
	case typ == "byte":
		return TypeByte
	case typ == "i32":
		return TypeI32
	case typ == "i64":
		return TypeI64
	case typ == "string":
		return TypeString
	case strings.HasPrefix(typ, "list<"):
		return TypeList
	case strings.HasPrefix(typ, "set<"):
		return TypeSet
	case strings.HasPrefix(typ, "map<"):
		return TypeMap
	}
	return TypeStruct // placeholder types and structs
}

// specWalker checks encoded bytes against specSchemas.
type specWalker struct {
	t *testing.T
	d *Decoder
}

// walkStruct reads one struct of spec name and returns the field ids in wire order.
func (w specWalker) walkStruct(name string) []int16 {
	fields := parseSpec(w.t, name)
	var ids []int16
	for {
		ft, id := w.d.FieldBegin()
		if ft == TypeStop {
			break
		}
		i := slices.IndexFunc(fields, func(f specField) bool { return f.id == id })
		if i < 0 {
			w.t.Fatalf("%s: field %d is not in the spec", name, id)
		}
		if want := specWireType(fields[i].typ); ft != want {
			w.t.Fatalf("%s: field %d has type byte %d, spec says %d (%s)", name, id, ft, want, fields[i].typ)
		}
		w.walkValue(name, fields[i].typ)
		ids = append(ids, id)
	}
	if err := w.d.Err(); err != nil {
		w.t.Fatalf("%s: %v", name, err)
	}
	return ids
}

func (w specWalker) walkValue(owner, typ string) {
	d := w.d
	switch {
	case typ == "bool", typ == "byte":
		d.Byte()
	case typ == "i32":
		d.I32()
	case typ == "i64", typ == "gpid", typ == "addr":
		d.I64()
	case typ == "string", typ == "blob", typ == "errcode", typ == "taskcode":
		d.Binary()
	case typ == "hostport":
		d.Binary()
		d.I16()
		d.Byte()
	case strings.HasPrefix(typ, "list<"), strings.HasPrefix(typ, "set<"):
		_, elem, _ := strings.Cut(strings.TrimSuffix(typ, ">"), "<")
		et, n := d.ListBegin()
		if want := specWireType(elem); et != want {
			w.t.Fatalf("%s: %s has element type %d, want %d", owner, typ, et, want)
		}
		for range n {
			w.walkValue(owner, elem)
		}
	case typ == "map<string,string>":
		kt, vt, n := d.MapBegin()
		if kt != TypeString || vt != TypeString {
			w.t.Fatalf("%s: map has types %d,%d", owner, kt, vt)
		}
		for range 2 * n {
			d.Binary()
		}
	case strings.HasPrefix(typ, "map<"):
		kv := strings.TrimSuffix(strings.TrimPrefix(typ, "map<"), ">")
		depth, cut := 0, -1
		for i, c := range kv {
			if c == '<' {
				depth++
			} else if c == '>' {
				depth--
			} else if c == ',' && depth == 0 {
				cut = i
				break
			}
		}
		k, v := kv[:cut], kv[cut+1:]
		kt, vt, n := d.MapBegin()
		if kt != specWireType(k) || vt != specWireType(v) {
			w.t.Fatalf("%s: %s has key/value types %d,%d", owner, typ, kt, vt)
		}
		for range n {
			w.walkValue(owner, k)
			w.walkValue(owner, v)
		}
	default:
		w.walkStruct(typ)
	}
}

// isStruct reports whether v is a thrift struct (not a placeholder or bare value).
func isStruct(v Value) bool {
	name := typeName(v)
	return reflect.TypeOf(v).Elem().Kind() == reflect.Struct && v.ThriftType() == TypeStruct &&
		name != "GPID" && name != "HostPort"
}

// TestEncodingMatchesSpec checks that every struct writes exactly the spec's field ids and
// types, in id order: all fields when fully populated, the non-optional ones when zero.
func TestEncodingMatchesSpec(t *testing.T) {
	for _, mk := range allValues() {
		v := mk()
		if !isStruct(v) {
			continue
		}
		name := typeName(v)
		t.Run(name, func(t *testing.T) {
			fields := parseSpec(t, name)
			var all, required []int16
			for _, f := range fields {
				all = append(all, f.id)
				if !f.opt {
					required = append(required, f.id)
				}
			}
			n := 0
			fill(reflect.ValueOf(v).Elem(), &n)
			if r, ok := v.(*DuplicationAddRequest); ok {
				r.IsDuplicatingCheckpoint = false // its default is true: only false is written
			}
			for _, tc := range []struct {
				what string
				v    Value
				want []int16
			}{{"populated", v, all}, {"zero", mk(), required}} {
				t.Run(tc.what, func(t *testing.T) {
					b := Marshal(tc.v)
					d := NewDecoder(b)
					got := specWalker{t, d}.walkStruct(name)
					if len(d.Remaining()) != 0 {
						t.Fatalf("%s: %d bytes after STOP", tc.what, len(d.Remaining()))
					}
					if !slices.Equal(got, tc.want) {
						t.Fatalf("%s: field ids %v, want %v", tc.what, got, tc.want)
					}
				})
			}
		})
	}
}

// TestSpecCoversAllStructs guards against a struct silently missing from the spec check.
func TestSpecCoversAllStructs(t *testing.T) {
	seen := map[string]bool{}
	for _, mk := range allValues() {
		v := mk()
		if !isStruct(v) {
			continue
		}
		name := typeName(v)
		if _, ok := specSchemas[name]; !ok {
			t.Errorf("struct %s has no spec schema", name)
		}
		seen[name] = true
	}
	for name := range specSchemas {
		if !seen[name] {
			t.Errorf("spec schema %s has no type in allValues", name)
		}
	}
}

func roundTrip(t *testing.T, v Value, mk func() Value) {
	t.Helper()
	b := Marshal(v)
	got := mk()
	if err := Unmarshal(b, got); err != nil {
		t.Fatalf("%T: unmarshal: %v\n% x", v, err, b)
	}
	if !valuesEqual(v, got) {
		t.Fatalf("%T round trip:\n got %+v\nwant %+v", v, got, v)
	}
	if again := Marshal(got); string(again) != string(b) {
		t.Fatalf("%T: re-encoding differs:\n got % x\nwant % x", v, again, b)
	}
}

func TestRoundTripPopulatedAndZero(t *testing.T) {
	for _, mk := range allValues() {
		v := mk()
		n := 0
		fill(reflect.ValueOf(v).Elem(), &n)
		if reflect.ValueOf(v).Elem().IsZero() && reflect.TypeOf(v).Elem().Size() > 0 {
			t.Fatalf("%T: fill left it zero", v)
		}
		roundTrip(t, v, mk)
		zero := mk()
		if a, ok := zero.(*AppInfo); ok {
			*a = NewAppInfo()
		}
		if r, ok := zero.(*RecallAppResponse); ok {
			r.Info = NewAppInfo()
		}
		roundTrip(t, zero, mk)
	}
}

// TestRoundTripHandBuilt round-trips instances written out by hand, so the expectations do
// not depend on the reflection helpers.
func TestRoundTripHandBuilt(t *testing.T) {
	hp := NewHostPort("node1", 34801)
	addr := NewRPCAddress([4]byte{10, 0, 0, 1}, 34801)
	app := AppInfo{Status: AppStatusAvailable, AppType: "pegasus", AppName: "temp", AppID: 2,
		PartitionCount: 8, Envs: map[string]string{"a": "1", "b": "2"}, IsStateful: true,
		MaxReplicaCount: 3, ExpireSecond: 9, CreateSecond: 10, DropSecond: 11,
		Duplicating: true, InitPartitionCount: 8, IsBulkLoading: true, AtomicIdempotent: true}
	kv := KeyValue{Key: []byte("s1"), Value: []byte("v1"), ExpireTSSeconds: Some(int32(7))}
	vals := []Value{
		&PartitionConfiguration{PID: GPID{2, 4}, Ballot: 3, MaxReplicaCount: 3, Primary: addr,
			Secondaries: []RPCAddress{addr + 1<<16}, LastDrops: []RPCAddress{0}, LastCommittedDecree: 99,
			PartitionFlags: 1, HPPrimary: Some(hp), HPSecondaries: Some([]HostPort{hp}),
			HPLastDrops: Some([]HostPort{})},
		&QueryCfgResponse{Err: "ERR_OK", AppID: 2, PartitionCount: 8, IsStateful: true,
			Partitions: []PartitionConfiguration{{PID: GPID{2, 0}}}},
		&app,
		&CreateAppRequest{AppName: "t1", Options: CreateAppOptions{PartitionCount: 8, ReplicaCount: 3,
			SuccessIfExist: true, AppType: "pegasus", IsStateful: true, Envs: map[string]string{},
			AtomicIdempotent: true}},
		&DropAppRequest{AppName: "t1", Options: DropAppOptions{SuccessIfNotExist: true, ReserveSeconds: Some(int64(0))}},
		&ListAppsRequest{Status: AppStatusDropped, AppNamePattern: Some("te"), MatchType: Some(PatternMatchPrefix)},
		&ListAppsResponse{Err: "ERR_OK", Infos: []AppInfo{app, NewAppInfo()}, HintMessage: Some("")},
		&ListNodesResponse{Err: "ERR_OK", Infos: []NodeInfo{{Status: NodeStatusAlive, Node: addr, HPNode: Some(hp)}}},
		&ClusterInfoResponse{Err: "ERR_OK", Keys: []string{"meta_servers"}, Values: []string{"127.0.0.1:34601"}},
		&Command{Cmd: "help", Arguments: []string{"-v"}},
		&UpdateAppEnvRequest{AppName: "t", Op: AppEnvOpClear, ClearPrefix: Some("")},
		&RecallAppResponse{Err: "ERR_OK", Info: app},
		&QueryAppInfoRequest{MetaServer: addr, HPMetaServer: Some(hp)},
		&NegotiationResponse{Status: NegotiationSASLChallenge, Msg: []byte{0, 1}},
		&UpdateRequest{Key: []byte("\x00\x02h1s1"), Value: []byte("v"), ExpireTSSeconds: 5,
			Type: Some(UpdateCheckAndMutateRemove), CheckValueReturned: Some(false),
			CheckValueExist: Some(true), CheckValue: Some([]byte{})},
		&MultiPutRequest{HashKey: []byte("h1"), KVs: []KeyValue{kv, {}}, ExpireTSSeconds: 1},
		&CheckAndMutateRequest{HashKey: []byte("h"), CheckType: CheckValueIntGreater,
			MutateList: []Mutate{{Operation: MutateDelete, SortKey: []byte("s")}}, ReturnCheckValue: true},
		&GetScannerRequest{StartKey: []byte{0, 0}, StopKey: []byte{0xff, 0xff}, BatchSize: 1000,
			ValidatePartitionHash: Some(true), ReturnExpireTS: Some(false), FullScan: Some(true), OnlyReturnCount: true},
		&ScanResponse{KVs: []KeyValue{kv}, ContextID: -1, Server: "h:1", KVCount: Some(int32(1))},
		&BatchGetResponse{Data: []FullData{{HashKey: []byte("h"), SortKey: []byte("s"), Value: []byte("v")}}},
		&CheckAndMutateResponse{Error: 1, CheckValueReturned: true, CheckValue: []byte("x"), Decree: 4},
	}
	for _, v := range vals {
		mk := func() Value { return reflect.New(reflect.TypeOf(v).Elem()).Interface().(Value) }
		roundTrip(t, v, mk)
	}
}

// TestRoundTripRandom is a property test: random instances of every type survive
// encode→decode and re-encode to the same bytes.
func TestRoundTripRandom(t *testing.T) {
	seed := uint64(1)
	r := rand.New(rand.NewPCG(seed, 2))
	iters := 300
	if testing.Short() {
		iters = 30
	}
	for _, mk := range allValues() {
		for range iters {
			v := mk()
			randomize(r, reflect.ValueOf(v).Elem())
			roundTrip(t, v, mk)
		}
	}
}

func TestDecodeDefaultsAndTolerance(t *testing.T) {
	// A ReadResponse with an unknown list field, the value blob sent as type STRING (which
	// must be skipped, as generated readers do), and fields in reverse order.
	var e Encoder
	e.FieldBegin(TypeList, 9)
	e.ListBegin(TypeI32, 2)
	e.I32(1)
	e.I32(2)
	e.FieldBinary(2, []byte("wrong type"))
	e.FieldString(6, "srv")
	e.FieldI32(1, 7)
	e.FieldStop()
	var rr ReadResponse
	if err := Unmarshal(e.Buf, &rr); err != nil {
		t.Fatal(err)
	}
	if want := (ReadResponse{Error: 7, Server: "srv"}); !valuesEqual(&rr, &want) || rr.Value != nil {
		t.Fatalf("got %+v, want %+v", rr, want)
	}

	// Missing fields take the idl defaults.
	var app AppInfo
	if err := Unmarshal([]byte{0}, &app); err != nil {
		t.Fatal(err)
	}
	if app.InitPartitionCount != -1 {
		t.Fatalf("InitPartitionCount = %d, want -1", app.InitPartitionCount)
	}
	var gs GetScannerRequest
	if err := Unmarshal([]byte{0}, &gs); err != nil {
		t.Fatal(err)
	}
	if !gs.ValidatesPartitionHash() || gs.ReturnExpireTS.Or(false) || gs.FullScan.Or(false) {
		t.Fatalf("absent optional defaults wrong: %+v", gs)
	}

	// A mutate without its value field, as the Java client sends MO_DELETE.
	e = Encoder{}
	e.FieldI32(1, int32(MutateDelete))
	e.FieldBlob(2, []byte("s"))
	e.FieldI32(4, 0)
	e.FieldStop()
	var m Mutate
	if err := Unmarshal(e.Buf, &m); err != nil {
		t.Fatal(err)
	}
	if m.Operation != MutateDelete || string(m.SortKey) != "s" || m.Value != nil {
		t.Fatalf("got %+v", m)
	}
	// Encoding writes field 3 anyway, empty.
	if got := Marshal(&m); !strings.Contains(string(got), "\x0c\x00\x03\x00\x00\x00\x00") {
		t.Fatalf("mutate value not written: % x", got)
	}

	// A list<blob> whose element type is not STRUCT is skipped as a whole.
	e = Encoder{}
	e.FieldBegin(TypeList, 2)
	e.ListBegin(TypeString, 1)
	e.String("s1")
	e.FieldI64(3, 5)
	e.FieldStop()
	var mr MultiRemoveRequest
	if err := Unmarshal(e.Buf, &mr); err != nil {
		t.Fatal(err)
	}
	if mr.SortKeys != nil || mr.MaxCount != 5 {
		t.Fatalf("got %+v", mr)
	}

	// Decode overwrites stale state, optional presence included.
	sr := ScanResponse{KVCount: Some(int32(3)), KVs: []KeyValue{{}}}
	if err := Unmarshal([]byte{0}, &sr); err != nil {
		t.Fatal(err)
	}
	if sr.KVCount.Set || sr.KVs != nil {
		t.Fatalf("stale fields survived: %+v", sr)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, mk := range allValues() {
		v := mk()
		n := 0
		fill(reflect.ValueOf(v).Elem(), &n)
		b := Marshal(v)
		for i := range len(b) {
			if err := Unmarshal(b[:i], mk()); err == nil {
				t.Fatalf("%T: truncated to %d of %d bytes decoded without error", v, i, len(b))
			}
		}
		if err := Unmarshal(append(b, 0), mk()); !errors.Is(err, ErrTrailingData) {
			t.Fatalf("%T: trailing byte: err = %v", v, err)
		}
	}
	// Nesting beyond MaxDepth fails instead of exhausting the stack.
	var e Encoder
	for range MaxDepth + 2 {
		e.FieldBegin(TypeStruct, 99)
	}
	for range MaxDepth + 3 {
		e.FieldStop()
	}
	if err := Unmarshal(e.Buf, new(ReadResponse)); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("deep nesting: err = %v", err)
	}
	// A list count larger than the bytes left is rejected before allocating.
	e = Encoder{}
	e.FieldBegin(TypeList, 2)
	e.ListBegin(TypeStruct, 1<<30)
	if err := Unmarshal(e.Buf, new(MultiGetRequest)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("huge list: err = %v", err)
	}
}
