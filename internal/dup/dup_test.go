package dup

import (
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/wire"
)

func TestTransition(t *testing.T) {
	const (
		I = idl.DupStatusInit
		P = idl.DupStatusPrepare
		A = idl.DupStatusApp
		L = idl.DupStatusLog
		U = idl.DupStatusPause
		R = idl.DupStatusRemoved
	)
	allowed := map[[2]idl.DuplicationStatus]bool{
		{I, P}: true, {P, A}: true, {I, L}: true, {A, L}: true, {U, L}: true, {L, U}: true,
	}
	all := []idl.DuplicationStatus{I, P, A, L, U, R}
	for _, from := range all {
		for _, to := range all {
			want := from == to || to == R || allowed[[2]idl.DuplicationStatus{from, to}]
			if got := Transition(from, to); got != want {
				t.Errorf("Transition(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
	if ValidStatus(6) || ValidStatus(-1) || !ValidStatus(R) || ValidFailMode(3) || !ValidFailMode(idl.DupFailFast) {
		t.Fatal("enum ranges")
	}
}

func TestParseFailMode(t *testing.T) {
	for in, want := range map[string]idl.DuplicationFailMode{"slow": idl.DupFailSlow, "SKIP": idl.DupFailSkip} {
		if got, err := ParseFailMode(in); err != nil || got != want {
			t.Errorf("ParseFailMode(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"fast", "", "FAIL_SLOW"} {
		if _, err := ParseFailMode(bad); err == nil {
			t.Errorf("ParseFailMode(%q) accepted", bad)
		}
	}
}

func TestPeers(t *testing.T) {
	p, err := NewPeers(map[string]string{"c2": "127.0.0.1:1, 127.0.0.1:2", "c3": "10.0.0.1:34601"},
		map[string]string{"c1": "1", "c2": " 2 "})
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := p.Metas("c2"); !ok || len(m) != 2 || m[1] != "127.0.0.1:2" {
		t.Fatalf("metas of c2: %v %v", m, ok)
	}
	if _, ok := p.Metas("c1"); ok {
		t.Fatal("c1 has no metas listed")
	}
	if id, ok := p.ID("c2"); !ok || id != 2 {
		t.Fatalf("id of c2: %d %v", id, ok)
	}
	if _, ok := p.ID("c3"); ok {
		t.Fatal("c3 has no id")
	}
	if !p.HasID(1) || p.HasID(3) {
		t.Fatal("HasID")
	}
	if got := p.Clusters(); len(got) != 2 || got[0] != "c2" {
		t.Fatalf("clusters %v", got)
	}
	var zero Peers
	if _, ok := zero.ID("c1"); ok || zero.HasID(1) {
		t.Fatal("the zero Peers knows a cluster")
	}
	for _, tc := range []struct {
		clusters, group map[string]string
		want            string
	}{
		{map[string]string{"c2": ""}, nil, "no meta servers"},
		{map[string]string{"c2": "host:1"}, nil, "not ip:port"},
		{nil, map[string]string{"c2": "0"}, "want a cluster id from 1 to 127"},
		{nil, map[string]string{"c2": "128"}, "want a cluster id"},
		{nil, map[string]string{"c2": "x"}, "want a cluster id"},
		{nil, map[string]string{"a": "3", "b": "3"}, "a and b have the same id 3"},
	} {
		if _, err := NewPeers(tc.clusters, tc.group); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewPeers(%v, %v) = %v, want %q", tc.clusters, tc.group, err, tc.want)
		}
	}
}

func TestTimetag(t *testing.T) {
	if got := Timetag(0x1234, 5, false); got != 0x1234<<8|5<<1 {
		t.Fatalf("%x", got)
	}
	if got := Timetag(0x1234, 5, true); got != 0x1234<<8|5<<1|1 {
		t.Fatalf("%x", got)
	}
	// The timestamp keeps 56 bits; the cluster id 7.
	if got := Timetag(-1, 0xff, false); got != (1<<56-1)<<8|0x7f<<1 {
		t.Fatalf("%x", got)
	}
}

func put(decree uint64, h string, size int) Write {
	body := idl.Marshal(&idl.UpdateRequest{Key: key.Encode([]byte(h), []byte("s")), Value: make([]byte, size)})
	return Write{Decree: decree, RPC: idl.RPCPut, Body: body, TimestampUS: int64(decree) * 10}
}

func TestBatches(t *testing.T) {
	o := Options{ClusterID: 3, VerifyTimetag: true, BatchBytes: 100}
	// Decrees 5, 5, 6, 7: each write ~60 bytes, so batches of two.
	ws := []Write{put(5, "a", 40), put(5, "b", 40), put(6, "c", 40), put(7, "d", 40)}
	bs := Batches(ws, 9, o)
	if len(bs) != 2 {
		t.Fatalf("%d batches", len(bs))
	}
	if bs[0].Upto != 5 || bs[0].Writes != 2 || bs[1].Upto != 9 || bs[1].Writes != 2 {
		t.Fatalf("batches %+v / %+v", bs[0], bs[1])
	}
	if want := key.Hash([]byte("b")); bs[0].Hash != want {
		t.Fatalf("hash %x, want the last write's %x", bs[0].Hash, want)
	}
	e := bs[1].Req.Entries[1]
	if e.TaskCode.V != idl.RPCPut || e.ClusterID.V != 3 || !e.VerifyTimetag || e.Timestamp.V != 70 || string(e.RawMessage.V) != string(ws[3].Body) {
		t.Fatalf("entry %+v", e)
	}
	// A batch that ends inside an entry ships through the decree before it.
	bs = Batches([]Write{put(5, "a", 40), put(6, "b", 40), put(6, "c", 40)}, 6, o)
	if len(bs) != 2 || bs[0].Upto != 5 || bs[1].Upto != 6 {
		t.Fatalf("batches %+v", bs)
	}
	bs = Batches([]Write{put(5, "a", 40), put(5, "b", 40), put(5, "c", 40)}, 5, o)
	if len(bs) != 2 || bs[0].Upto != 4 || bs[1].Upto != 5 {
		t.Fatalf("within one entry: %+v", bs)
	}
	if bs := Batches(nil, 8, o); len(bs) != 0 {
		t.Fatal("batches without writes")
	}
	// No batch holds more than MaxBatchBytes, even with a larger BatchBytes.
	big := []Write{put(1, "a", MaxBatchBytes/2), put(2, "b", MaxBatchBytes/2), put(3, "c", 10)}
	for _, b := range Batches(big, 3, Options{BatchBytes: 8 << 20}) {
		if b.Bytes > MaxBatchBytes {
			t.Fatalf("batch of %d bytes", b.Bytes)
		}
	}
}

func TestWriteHash(t *testing.T) {
	k := key.Encode([]byte("h"), []byte("s"))
	for _, tc := range []struct {
		w    Write
		want uint64
	}{
		{Write{RPC: idl.RPCPut, Body: idl.Marshal(&idl.UpdateRequest{Key: k})}, key.Hash([]byte("h"))},
		{Write{RPC: idl.RPCRemove, Body: idl.Marshal((*idl.Blob)(&k))}, key.Hash([]byte("h"))},
		{Write{RPC: idl.RPCMultiPut, Body: idl.Marshal(&idl.MultiPutRequest{HashKey: []byte("m")})}, key.Hash([]byte("m"))},
		{Write{RPC: idl.RPCMultiRemove, Body: idl.Marshal(&idl.MultiRemoveRequest{HashKey: []byte("r")})}, key.Hash([]byte("r"))},
		{Write{RPC: idl.RPCMultiPut, Body: idl.Marshal(&idl.MultiPutRequest{})}, 0}, // no hash key: no hash
		{Write{RPC: idl.RPCPut, Body: []byte{1, 2}}, 0},                             // undecodable
	} {
		if got := WriteHash(tc.w); got != tc.want {
			t.Errorf("WriteHash(%s) = %x, want %x", tc.w.RPC, got, tc.want)
		}
	}
}

func TestFollowerCheck(t *testing.T) {
	peers, err := NewPeers(nil, map[string]string{"c1": "1", "c2": "2"})
	if err != nil {
		t.Fatal(err)
	}
	f := Follower{Peers: peers, Self: 2}
	entry := func(id int8, rpc string) idl.DuplicateEntry {
		return idl.DuplicateEntry{ClusterID: idl.Some(id), TaskCode: idl.Some(rpc), RawMessage: idl.Some([]byte{}), Timestamp: idl.Some(int64(1))}
	}
	for _, tc := range []struct {
		f    Follower
		e    idl.DuplicateEntry
		want string
	}{
		{f, entry(1, idl.RPCPut), ""},
		{f, entry(9, idl.RPCPut), "request cluster id is unconfigured"},
		{f, entry(2, idl.RPCPut), "self-duplicating"},
		{f, entry(1, idl.RPCIncr), "unrecognized task code RPC_RRDB_RRDB_INCR"},
		{f, idl.DuplicateEntry{TaskCode: idl.Some(idl.RPCPut)}, "request cluster id is unconfigured"},
		{f, idl.DuplicateEntry{ClusterID: idl.Some(int8(1)), TaskCode: idl.Some(idl.RPCPut)}, "without a message"},
		{Follower{Peers: peers, Self: 2, IgnoreOthers: true}, entry(9, idl.RPCMultiRemove), ""},
		{Follower{Peers: peers, Self: 2, IgnoreOthers: true}, entry(2, idl.RPCPut), "self-duplicating"},
		{Follower{Peers: peers, Self: 5}, entry(5, idl.RPCPut), "self-duplicating"}, // its own id, though unconfigured
	} {
		// The bad entry comes after a good one: the whole request is refused.
		req := &idl.DuplicateRequest{Entries: []idl.DuplicateEntry{entry(1, idl.RPCRemove), tc.e}}
		st, hint := tc.f.Check(req)
		switch {
		case tc.want == "" && (st != wire.StatusOK || hint != ""):
			t.Errorf("%+v: refused: %v %q", tc.e, st, hint)
		case tc.want != "" && (st != wire.StatusInvalidArgument || !strings.Contains(hint, tc.want)):
			t.Errorf("%+v: %v %q, want InvalidArgument %q", tc.e, st, hint, tc.want)
		}
	}
}

func TestRepeatedCreate(t *testing.T) {
	f := FollowerTable{Name: "t", PartitionCount: 4, ReplicaCount: 3, Envs: map[string]string{"default_ttl": "9"},
		Master: "c1", MasterMetas: []string{"127.0.0.1:1", "127.0.0.1:2"}, MasterApp: "m"}
	creating := f.CreateRequest(FollowerCreating)
	envs := creating.Options.Envs
	if envs["default_ttl"] != "9" || envs[EnvMasterCluster] != "c1" || envs[EnvMasterMetas] != "127.0.0.1:1,127.0.0.1:2" ||
		envs[EnvMasterApp] != "m" || envs[EnvFollowerStatus] != FollowerCreating || !IsFollowerCreate(creating) {
		t.Fatalf("envs %v", envs)
	}
	if f.Envs[EnvMasterCluster] != "" {
		t.Fatal("the master's envs were changed")
	}
	created := f.CreateRequest(FollowerCreated)
	other := FollowerTable{Name: "t", PartitionCount: 4, Master: "c9", MasterApp: "m"}.CreateRequest(FollowerCreating)
	for _, tc := range []struct {
		existing   map[string]string
		partitions int32
		req        *idl.CreateAppRequest
		code       wire.Code
		set        string
	}{
		{envs, 4, creating, wire.OK, ""},
		{envs, 4, created, wire.OK, FollowerCreated},
		{created.Options.Envs, 4, created, wire.OK, ""},
		{created.Options.Envs, 4, creating, wire.OK, ""},
		{envs, 4, other, wire.ErrAppExist, ""},                   // another master
		{map[string]string{}, 4, creating, wire.ErrAppExist, ""}, // not a follower table
		{envs, 8, creating, wire.ErrAppExist, ""},                // another shape
	} {
		if code, set := RepeatedCreate(tc.existing, tc.partitions, tc.req); code != tc.code || set != tc.set {
			t.Errorf("RepeatedCreate(%v, %d, %v) = %v %q, want %v %q", tc.existing, tc.partitions,
				tc.req.Options.Envs[EnvFollowerStatus], code, set, tc.code, tc.set)
		}
	}
}
