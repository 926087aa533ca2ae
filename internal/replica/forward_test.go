package replica

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/storage"
	"github.com/gopegasus/pegasus/internal/wire"
)

// startGroupOf3 runs a group of 3 replica servers for one single-partition table, waits until
// every member knows its leader, and returns the leader and the followers.
func startGroupOf3(t *testing.T) (g *group, leader string, followers []string) {
	g, addrs := newGroup(t, 3)
	g.setMembers(addrs...)
	leader = g.leader(addrs...)
	poll.Until(t, "every member to know the leader", func() bool {
		for _, a := range addrs {
			if p := g.servers[a].partition(replPID); p == nil || p.leadership().lead != cluster.MemberID(leader) {
				return false
			}
		}
		return true
	})
	for _, a := range addrs {
		if a != leader {
			followers = append(followers, a)
		}
	}
	return g, leader, followers
}

// scanAll reads a whole scan through c, from get_scanner to its last batch, with batches of
// one record, running between before each batch after the first.
func scanAll(t *testing.T, c *client, between func()) []string {
	t.Helper()
	var resp idl.ScanResponse
	err := c.conn.Call(t.Context(), c.header(nil), idl.RPCGetScanner, &idl.GetScannerRequest{StartKey: []byte{0, 0},
		StopKey: []byte{0xff, 0xff}, StartInclusive: true, BatchSize: 1, ValidatePartitionHash: idl.Some(false)}, &resp)
	var got []string
	for {
		if err != nil || resp.Error != 0 {
			t.Fatalf("scan after %v: %v, error %d", got, err, resp.Error)
		}
		for _, kv := range resp.KVs {
			got = append(got, string(kv.Value))
		}
		if resp.ContextID == storage.ContextComplete {
			return got
		}
		between()
		err = c.conn.Call(t.Context(), c.header(nil), idl.RPCScan, &idl.ScanRequest{ContextID: resp.ContextID}, &resp)
	}
}

// A follower serves every request meant for the primary by forwarding it to the leader: the
// client sees the leader's answers, including the results of writes decided at apply time,
// and a scan started through the follower continues through it.
func TestFollowerForwardsToLeader(t *testing.T) {
	g, _, followers := startGroupOf3(t)
	f := followers[0]
	c := &client{conn: rpc.NewConn(f, rpc.ConnConfig{}), appID: replApp, count: 1}
	defer c.conn.Close()
	for i := range 3 {
		c.put(t, "h", fmt.Sprint("s", i), fmt.Sprint("v", i))
	}
	if v, code := c.get(t, "h", "s1"); code != 0 || v != "v1" {
		t.Fatalf("get through the follower: %q, code %d", v, code)
	}
	var incr idl.IncrResponse
	for want := int64(5); want <= 10; want += 5 {
		if err := c.conn.Call(t.Context(), c.header([]byte("n")), idl.RPCIncr,
			&idl.IncrRequest{Key: key.Encode([]byte("n"), nil), Increment: 5}, &incr); err != nil || incr.Error != 0 || incr.NewValue != want {
			t.Fatalf("incr through the follower: %v %+v, want %d", err, incr, want)
		}
	}
	if got := scanAll(t, c, func() {}); !reflect.DeepEqual(got, []string{"v0", "v1", "v2", "10"}) {
		t.Fatalf("scan through the follower: %v", got)
	}
	if n := g.servers[f].ForwardedRequests(); n < 8 {
		t.Fatalf("the follower forwarded %d requests, want at least 8", n)
	}
}

// A leadership handover leaves a scan running: the replica that started it continues it
// from its context after it stopped leading.
func TestScanContinuesAcrossHandover(t *testing.T) {
	g, leader, followers := startGroupOf3(t)
	c := &client{conn: rpc.NewConn(leader, rpc.ConnConfig{}), appID: replApp, count: 1}
	defer c.conn.Close()
	for i := range 4 {
		c.put(t, "h", fmt.Sprint("s", i), fmt.Sprint("v", i))
	}
	moved := false
	got := scanAll(t, c, func() {
		if !moved {
			moved = true
			if err := g.servers[leader].TransferLeader(t.Context(), replPID, followers[0], "test"); err != nil {
				t.Fatal(err)
			}
		}
	})
	if !reflect.DeepEqual(got, []string{"v0", "v1", "v2", "v3"}) {
		t.Fatalf("scan across a handover: %v", got)
	}
	if g.servers[leader].partition(replPID).isLeader.Load() {
		t.Fatal("the old leader leads again")
	}
}

// TransferLeader's refusals, and a handover that completes.
func TestTransferLeaderErrors(t *testing.T) {
	g, leader, followers := startGroupOf3(t)
	ctx := t.Context()
	if err := g.servers[followers[0]].TransferLeader(ctx, replPID, followers[1], "test"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("at a follower: %v", err)
	}
	if err := g.servers[leader].TransferLeader(ctx, replPID, "127.0.0.1:1", "test"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("to a stranger: %v", err)
	}
	if err := g.servers[leader].TransferLeader(ctx, idl.GPID{AppID: 99}, followers[0], "test"); !errors.Is(err, ErrNoPartition) {
		t.Fatalf("of a partition not hosted: %v", err)
	}
	if err := g.servers[leader].TransferLeader(ctx, replPID, leader, "test"); err != nil {
		t.Fatalf("to itself: %v", err)
	}
	// raft gives a transfer an election timeout (100 ms with these tests' ticks), which a
	// loaded machine can overrun: the replica then still leads, and may try again.
	err := g.servers[leader].TransferLeader(ctx, replPID, followers[1], "test")
	for try := 1; errors.Is(err, ErrTransferFailed) && try < 5; try++ {
		t.Logf("transfer %d: %v", try, err)
		err = g.servers[leader].TransferLeader(ctx, replPID, followers[1], "test")
	}
	if err != nil {
		t.Fatalf("to a follower: %v", err)
	}
	if !g.servers[followers[1]].partition(replPID).isLeader.Load() {
		t.Fatal("the transferee does not lead once TransferLeader returned")
	}
}

// With leader_change_hold_ms at 0, a follower refuses requests meant for the primary with
// ERR_INVALID_STATE, as before forwarding existed.
func TestNoForwardingWithoutHold(t *testing.T) {
	g, _, followers := startGroupOf3(t)
	s := g.servers[followers[0]]
	if err := s.settings.reg.Update(s.settings.LeaderChangeHoldMS.Name(), "0"); err != nil {
		t.Fatal(err)
	}
	conn := rpc.NewConn(followers[0], rpc.ConnConfig{})
	defer conn.Close()
	var resp idl.UpdateResponse
	err := conn.Call(t.Context(), wire.Header{AppID: replApp}, idl.RPCPut, &idl.UpdateRequest{Key: key.Encode([]byte("h"), []byte("s")), Value: []byte("v")}, &resp)
	if !errors.Is(err, wire.ErrInvalidState) {
		t.Fatalf("put at a follower without forwarding: %v", err)
	}
	if n := s.ForwardedRequests(); n != 0 {
		t.Fatalf("%d requests forwarded", n)
	}
}

// Decoding a forwarded request never panics, and what decodes encodes back to itself.
func FuzzDecodeForwarded(f *testing.F) {
	f.Add(appendForwarded(nil, &rpc.Request{Name: idl.RPCGet, Header: wire.Header{AppID: 3, PartitionIndex: 1,
		ThreadHash: wire.ThreadHash(3, 1), PartitionHash: 42, ClientTimeout: 1000}, Args: new(idl.Blob(key.Encode([]byte("h"), []byte("s"))))}))
	f.Add(appendForwarded(nil, &rpc.Request{Name: idl.RPCPut, Header: wire.Header{IsBackupRequest: true},
		Args: &idl.UpdateRequest{Key: key.Encode([]byte("h"), []byte("s")), Value: []byte("v")}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeForwarded(b)
		if err != nil {
			return
		}
		again, err := decodeForwarded(appendForwarded(nil, &rpc.Request{Name: fr.name, Header: fr.header, Args: encodedArgs(fr.args)}))
		if err != nil || !reflect.DeepEqual(fr, again) {
			t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, again, fr)
		}
	})
}

// encodedArgs are args already encoded: they encode as themselves.
type encodedArgs []byte

func (a encodedArgs) ThriftType() idl.Type  { return idl.TypeStruct }
func (a encodedArgs) Encode(e *idl.Encoder) { e.Buf = append(e.Buf, a...) }
func (a encodedArgs) Decode(*idl.Decoder)   { panic("encodedArgs are only encoded") }
