package idl

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/gopegasus/pegasus/internal/golden"
)

func TestGPIDBytes(t *testing.T) {
	got := Marshal(&GPID{AppID: 2, PartitionIndex: 4})
	if want := golden.Unhex(t, "00 00 00 04 00 00 00 02"); !bytes.Equal(got, want) {
		t.Fatalf("GPID(2,4) = % x, want % x", got, want)
	}
	var p GPID
	if err := Unmarshal(golden.Unhex(t, "ff ff ff ff 80 00 00 00"), &p); err != nil {
		t.Fatal(err)
	}
	if p != (GPID{AppID: -2147483648, PartitionIndex: -1}) {
		t.Fatalf("decoded %+v", p)
	}
	if s := (GPID{2, 4}).String(); s != "2.4" {
		t.Fatalf("String = %q", s)
	}
}

func TestRPCAddress(t *testing.T) {
	a, err := ParseRPCAddress("127.0.0.1:34801")
	if err != nil {
		t.Fatal(err)
	}
	if a != 0x7f00000187f10001 {
		t.Fatalf("127.0.0.1:34801 = %#x", uint64(a))
	}
	if got, want := Marshal(&a), golden.Unhex(t, "7f 00 00 01 87 f1 00 01"); !bytes.Equal(got, want) {
		t.Fatalf("bytes % x, want % x", got, want)
	}
	if a.IP() != netip.MustParseAddr("127.0.0.1") || a.Port() != 34801 || a.IsZero() || !a.IsIPv4() {
		t.Fatalf("accessors: %v %v", a.IP(), a.Port())
	}
	if a.String() != "127.0.0.1:34801" {
		t.Fatalf("String = %q", a.String())
	}
	if b := NewRPCAddress([4]byte{127, 0, 0, 1}, 34801); b != a {
		t.Fatalf("NewRPCAddress = %#x", uint64(b))
	}
	if b, err := RPCAddressFrom(netip.MustParseAddrPort("[::ffff:127.0.0.1]:34801")); err != nil || b != a {
		t.Fatalf("4in6: %#x, %v", uint64(b), err)
	}
	var zero RPCAddress
	if !zero.IsZero() || zero.String() != "invalid" {
		t.Fatalf("zero: %q", zero.String())
	}
	for _, bad := range []string{"", "127.0.0.1", "[::1]:80", "host:80", "1.2.3.4:70000"} {
		t.Run(bad, func(t *testing.T) {
			if _, err := ParseRPCAddress(bad); !errors.Is(err, ErrInvalidAddress) {
				t.Errorf("ParseRPCAddress(%q) err = %v", bad, err)
			}
		})
	}
}

func TestHostPort(t *testing.T) {
	h := NewHostPort("127.0.0.1", 34801)
	want := golden.Unhex(t, `00 00 00 09 "127.0.0.1" 87 f1 01`)
	if got := Marshal(&h); !bytes.Equal(got, want) {
		t.Fatalf("bytes % x, want % x", got, want)
	}
	var g HostPort
	if err := Unmarshal(want, &g); err != nil || g != h {
		t.Fatalf("decoded %+v, %v", g, err)
	}
	if h.String() != "127.0.0.1:34801" || (HostPort{}).String() != "invalid" || !(HostPort{}).IsZero() {
		t.Fatalf("String = %q", h.String())
	}
	if s := NewHostPort("::1", 1).String(); s != "[::1]:1" {
		t.Fatalf("IPv6 String = %q", s)
	}
}

// TestReadResponseExample checks the read_response inside protocol.md §1.7(c).
func TestReadResponseExample(t *testing.T) {
	want := golden.Unhex(t, `
		08 00 01 00 00 00 00
		0c 00 02 00 00 00 02 "v1"
		08 00 03 00 00 00 02
		08 00 04 00 00 00 04
		0b 00 06 00 00 00 0b "host1:34801"
		00`)
	r := ReadResponse{Error: 0, Value: []byte("v1"), AppID: 2, PartitionIndex: 4, Server: "host1:34801"}
	if got := Marshal(&r); !bytes.Equal(got, want) {
		t.Fatalf("encode:\n got % x\nwant % x", got, want)
	}

	// The whole reply of §1.7(c): the result struct (field 0) is at the end of it.
	reply := golden.Unhex(t, `00 00 00 64 00 00 00 06 "ERR_OK"
		80 01 00 02 00 00 00 15 "RPC_RRDB_RRDB_GET_ACK" 00 00 00 07 0c 00 00`)
	reply = append(append(reply, want...), 0)
	d := NewDecoder(reply[4:])
	if d.String() != "ERR_OK" || uint32(d.I32()) != 0x80010002 || d.String() != AckName(RPCGet) || d.I32() != 7 {
		t.Fatal("reply header mismatch")
	}
	if ft, id := d.FieldBegin(); ft != TypeStruct || id != 0 {
		t.Fatalf("result field %d type %d", id, ft)
	}
	rpc, _ := LookupRPC(RPCGet)
	got := rpc.NewReply()
	got.Decode(d)
	if ft, _ := d.FieldBegin(); ft != TypeStop || d.Err() != nil || len(d.Remaining()) != 0 {
		t.Fatalf("trailer: %v", d.Err())
	}
	if !valuesEqual(got, &r) {
		t.Fatalf("decoded %+v", got)
	}
	if len(reply) != 100 {
		t.Fatalf("example reply length %d, want 100", len(reply))
	}
}

// TestQueryCfgExample checks the args struct of protocol.md §1.7(a).
func TestQueryCfgExample(t *testing.T) {
	want := golden.Unhex(t, `0b 00 01 00 00 00 04 "temp" 0f 00 02 08 00 00 00 00 00`)
	if got := Marshal(&QueryCfgRequest{AppName: "temp"}); !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
}

func TestRegistry(t *testing.T) {
	names := []string{RPCQueryConfig, RPCCreateApp, RPCDropApp, RPCListApps, RPCListNodes,
		RPCClusterInfo, RPCUpdateAppEnv, RPCRecallApp, RPCQueryAppInfo, RPCStartSplit, RPCControlSplit,
		RPCQuerySplit, RPCControlMeta, RPCProposeBalance, RPCCLICall, RPCNegotiation,
		RPCPut, RPCMultiPut, RPCRemove, RPCMultiRemove, RPCIncr, RPCCheckAndSet, RPCCheckAndMutate,
		RPCGet, RPCMultiGet, RPCBatchGet, RPCSortKeyCount, RPCTTL, RPCGetScanner, RPCScan,
		RPCClearScanner, RPCAddDuplication, RPCModifyDuplication, RPCQueryDuplication,
		RPCListDuplication, RPCDuplicationSync, RPCDuplicate, RPCConfigSync, RPCRaft, RPCMetaRaft,
		RPCForward, RPCDecommission, RPCStartBackupApp, RPCQueryBackupStatus, RPCAddBackupPolicy, RPCQueryBackupPolicy,
		RPCModifyBackupPolicy, RPCStartRestore, RPCQueryRestoreStatus, RPCStartBulkLoad,
		RPCControlBulkLoad, RPCQueryBulkLoadStatus, RPCClearBulkLoad, RPCDetectHotkey}
	if len(RPCs()) != len(names) {
		t.Fatalf("registry has %d RPCs, want %d", len(RPCs()), len(names))
	}
	for _, name := range names {
		r, ok := LookupRPC(name)
		if !ok || r.Name != name {
			t.Fatalf("LookupRPC(%q) = %v, %v", name, r, ok)
		}
		if r.AckName != name+"_ACK" || AckName(name) != r.AckName {
			t.Fatalf("%s: ack name %q", name, r.AckName)
		}
		a, b := r.NewRequest(), r.NewRequest()
		if (a == b && reflect.TypeOf(a).Elem().Size() > 0) || a.ThriftType() != r.ArgsType {
			t.Fatalf("%s: NewRequest not fresh or ArgsType wrong", name)
		}
		if r.IsOneWay() != (name == RPCClearScanner || name == RPCRaft || name == RPCMetaRaft) {
			t.Fatalf("%s: IsOneWay = %v", name, r.IsOneWay())
		}
		if r.NewReply != nil && r.NewReply().ThriftType() != r.ReplyType {
			t.Fatalf("%s: ReplyType wrong", name)
		}
	}
	// Spot checks of the §2.1 table.
	for name, want := range map[string]struct{ args, reply Value }{
		RPCGet:          {new(Blob), new(ReadResponse)},
		RPCRemove:       {new(Blob), new(UpdateResponse)},
		RPCMultiPut:     {new(MultiPutRequest), new(UpdateResponse)},
		RPCSortKeyCount: {new(Blob), new(CountResponse)},
		RPCTTL:          {new(Blob), new(TTLResponse)},
		RPCGetScanner:   {new(GetScannerRequest), new(ScanResponse)},
		RPCScan:         {new(ScanRequest), new(ScanResponse)},
		RPCCLICall:      {new(Command), new(Text)},
		RPCClearScanner: {new(ContextID), nil},
	} {
		t.Run(name, func(t *testing.T) {
			r, _ := LookupRPC(name)
			if typeName(r.NewRequest()) != typeName(want.args) {
				t.Errorf("%s args %T, want %T", name, r.NewRequest(), want.args)
			}
			if want.reply != nil && typeName(r.NewReply()) != typeName(want.reply) {
				t.Errorf("%s reply %T, want %T", name, r.NewReply(), want.reply)
			}
		})
	}
	if r, _ := LookupRPC(RPCClearScanner); r.ArgsType != TypeI64 {
		t.Errorf("CLEAR_SCANNER args type %d", r.ArgsType)
	}
	if r, _ := LookupRPC(RPCCLICall); r.ReplyType != TypeString {
		t.Errorf("CLI reply type %d", r.ReplyType)
	}
	if _, ok := LookupRPC("RPC_NO_SUCH"); ok {
		t.Error("unknown name found")
	}
	if AckName("RPC_X") != "RPC_X_ACK" {
		t.Error("AckName of unknown name")
	}
	name := string([]byte(RPCMultiGet)) // not the constant's backing array
	if n := testing.AllocsPerRun(100, func() {
		r, _ := LookupRPC(name)
		_ = AckName(r.Name)
	}); n != 0 {
		t.Errorf("LookupRPC+AckName allocate %v times", n)
	}
}

func TestEnumStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{AppStatusRecalling.String(), "AS_RECALLING"},
		{AppStatus(8).String(), "AppStatus(8)"},
		{NodeStatusUnalive.String(), "NS_UNALIVE"},
		{PatternMatchRegex.String(), "PMT_MATCH_REGEX"},
		{AppEnvOpClear.String(), "APP_ENV_OP_CLEAR"},
		{NegotiationSASLAuthFail.String(), "SASL_AUTH_FAIL"},
		{FilterMatchPostfix.String(), "FT_MATCH_POSTFIX"},
		{CheckValueIntGreater.String(), "CT_VALUE_INT_GREATER"},
		{CASCheckType(-1).String(), "CASCheckType(-1)"},
		{MutateDelete.String(), "MO_DELETE"},
		{UpdateCheckAndMutateRemove.String(), "UT_CHECK_AND_MUTATE_REMOVE"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
	// Wire values from protocol.md §2.3.
	if CheckValueIntGreater != 17 || CheckValueBytesEqual != 10 || AppStatusRecalling != 7 ||
		NegotiationSASLAuthFail != 10 || PatternMatchRegex != 6 || UpdateCheckAndMutateRemove != 4 {
		t.Fatal("enum values drifted from the spec")
	}
}

func TestReadResponseDecodeAllocs(t *testing.T) {
	buf := Marshal(&ReadResponse{Value: []byte("value"), AppID: 2, PartitionIndex: 4, Server: "host1:34801"})
	var r ReadResponse
	var d Decoder
	if n := testing.AllocsPerRun(100, func() {
		d.Reset(buf)
		r.Decode(&d)
	}); n != 0 {
		t.Fatalf("decoding a ReadResponse allocates %v times", n)
	}
	if d.Err() != nil || string(r.Value) != "value" || r.Server != "host1:34801" {
		t.Fatalf("decoded %+v, %v", r, d.Err())
	}
	var blob Blob
	if n := testing.AllocsPerRun(100, func() {
		d.Reset(buf[10:]) // the value blob, after field 1 and the header of field 2
		blob.Decode(&d)
	}); n != 0 {
		t.Fatalf("decoding a Blob allocates %v times", n)
	}
	var e Encoder
	if n := testing.AllocsPerRun(100, func() {
		e.Buf = e.Buf[:0]
		r.Encode(&e)
	}); n != 0 {
		t.Fatalf("encoding a ReadResponse allocates %v times", n)
	}
}
