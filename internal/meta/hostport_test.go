package meta

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/golden"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// TestHostPortsByClient checks which requests get the host_port fields in their replies
// (hostport.go): the query_cfg frames of the 2018 go-client (client_timeout 0) get none, the
// current go-client's (same bytes but client_timeout) and the Java client's header (v1) get
// them all, and list_nodes follows the same rule. The rpc_address fields are there for all.
func TestHostPortsByClient(t *testing.T) {
	tm := startMeta(t, Config{})
	nodes := nodeAddrs(3)
	tm.syncAll(nodes)
	id := tm.create("temp", 2, 3)
	members := tm.syncNode(nodes[0]).Assignments[0].Members
	tm.syncNode(members[0], leader(id, 0, 3))

	c, err := net.Dial("tcp", tm.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	build := func(h wire.Header, name string, args idl.Value) []byte {
		return wire.AppendRequest(nil, &h, name, 1, args)
	}
	queryTemp := &idl.QueryCfgRequest{AppName: "temp", PartitionIndices: []int32{}}

	for _, tc := range []struct {
		name  string
		frame []byte
		hp    bool
	}{
		{"gocli2018 frame", golden.Frame(t, filepath.Join(golden.Dir(t), "gocli2018"), "01"), false},
		{"go-client frame", golden.Frame(t, golden.Dir(t), "01"), true},
		{"v0, client_timeout 0", build(wire.Header{}, idl.RPCQueryConfig, queryTemp), false},
		{"v0, client_timeout 1", build(wire.Header{ClientTimeout: 1}, idl.RPCQueryConfig, queryTemp), true},
		{"v1, client_timeout 0", build(wire.Header{Version: 1}, idl.RPCQueryConfig, queryTemp), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r idl.QueryCfgResponse
			roundTripFrame(t, c, tc.frame, idl.RPCQueryConfig+"_ACK", &r)
			if r.Err != "ERR_OK" || len(r.Partitions) != 2 {
				t.Fatalf("%s: %+v", tc.name, r)
			}
			pc := r.Partitions[0]
			if addrString(pc.Primary) != members[0] || len(pc.Secondaries) != 2 {
				t.Fatalf("%s: primary %s secondaries %v, want %s and two", tc.name, addrString(pc.Primary), pc.Secondaries, members[0])
			}
			for _, p := range r.Partitions {
				// Partition 1 has no primary, so no hp_primary either.
				hasPrimary := p.PID.PartitionIndex == 0
				if p.HPPrimary.Set != (tc.hp && hasPrimary) || p.HPSecondaries.Set != tc.hp || p.HPLastDrops.Set != tc.hp {
					t.Fatalf("%s: partition %d host_port fields present %v/%v/%v, want %v", tc.name,
						p.PID.PartitionIndex, p.HPPrimary.Set, p.HPSecondaries.Set, p.HPLastDrops.Set, tc.hp)
				}
			}
			if tc.hp && (pc.HPPrimary.V.String() != members[0] || len(pc.HPSecondaries.V) != 2) {
				t.Fatalf("%s: hp_primary %s hp_secondaries %v", tc.name, pc.HPPrimary.V, pc.HPSecondaries.V)
			}
		})
	}

	listAlive := &idl.ListNodesRequest{Status: idl.NodeStatusAlive}
	for _, tc := range []struct {
		name  string
		frame []byte
		hp    bool
	}{
		{"go-client frame", golden.Frame(t, golden.Dir(t), "34"), true},
		{"v0, client_timeout 0", build(wire.Header{}, idl.RPCListNodes, listAlive), false},
		{"v1, client_timeout 0", build(wire.Header{Version: 1}, idl.RPCListNodes, listAlive), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r idl.ListNodesResponse
			roundTripFrame(t, c, tc.frame, idl.RPCListNodes+"_ACK", &r)
			if r.Err != "ERR_OK" || len(r.Infos) != 3 {
				t.Fatalf("list nodes, %s: %+v", tc.name, r)
			}
			for _, n := range r.Infos {
				if n.Node.IsZero() || n.HPNode.Set != tc.hp {
					t.Fatalf("list nodes, %s: node %s hp_node present %v, want %v", tc.name, n.Node, n.HPNode.Set, tc.hp)
				}
			}
		})
	}
}

// TestHostPortsInLeaderHint checks the same rule on the leader hint of a meta that is not the
// leader: the hint's partition keeps its primary and loses its host_port fields.
func TestHostPortsInLeaderHint(t *testing.T) {
	hint := func(h wire.Header) idl.PartitionConfiguration {
		r := forClient(h, refuseQueryConfig(errCode(wire.ErrForwardToOthers), "127.0.0.1:34601")).(*idl.QueryCfgResponse)
		if len(r.Partitions) != 1 || addrString(r.Partitions[0].Primary) != "127.0.0.1:34601" {
			t.Fatalf("hint: %+v", r)
		}
		return r.Partitions[0]
	}
	if pc := hint(wire.Header{}); pc.HPPrimary.Set || pc.HPSecondaries.Set || pc.HPLastDrops.Set {
		t.Fatalf("hint to a client from before host_port: %+v", pc)
	}
	if pc := hint(wire.Header{ClientTimeout: 1000}); pc.HPPrimary.V.String() != "127.0.0.1:34601" {
		t.Fatalf("hint to a current client: %+v", pc)
	}
}

// TestUnregisteredChildrenForOldClients: to a client from before host_port, a split child
// without a primary (ballot -1) is listed with its nearest registered ancestor's primary,
// through two splits in a row; registered partitions and current clients' replies are left
// as they are.
func TestUnregisteredChildrenForOldClients(t *testing.T) {
	addr := func(port uint16) idl.RPCAddress { return idl.NewRPCAddress([4]byte{127, 0, 0, 1}, port) }
	// 8 partitions: 0-3 registered (primaries 1000+i), 4 and 6 unregistered children of 0 and
	// 2, 5 registered with its own primary, 7 unregistered child of 3.
	mk := func() *idl.QueryCfgResponse {
		r := &idl.QueryCfgResponse{PartitionCount: 8}
		for i := range int32(8) {
			pc := idl.PartitionConfiguration{PID: idl.GPID{AppID: 1, PartitionIndex: i}, Ballot: 3}
			switch i {
			case 4, 6, 7:
				pc.Ballot = -1
			default:
				pc.Primary = addr(1000 + uint16(i))
			}
			r.Partitions = append(r.Partitions, pc)
		}
		return r
	}
	old := forClient(wire.Header{}, mk()).(*idl.QueryCfgResponse)
	want := map[int32]uint16{0: 1000, 1: 1001, 2: 1002, 3: 1003, 4: 1000, 5: 1005, 6: 1002, 7: 1003}
	for _, pc := range old.Partitions {
		if pc.Primary != addr(want[pc.PID.PartitionIndex]) || (pc.PID.PartitionIndex >= 6 || pc.PID.PartitionIndex == 4) && pc.Ballot != -1 {
			t.Errorf("old client, partition %d: primary %v ballot %d, want primary port %d", pc.PID.PartitionIndex, pc.Primary, pc.Ballot, want[pc.PID.PartitionIndex])
		}
	}
	// 16 partitions, the children of an unregistered child: 12's parent 4 has none, so 0's.
	r := &idl.QueryCfgResponse{PartitionCount: 16}
	for i := range int32(16) {
		pc := idl.PartitionConfiguration{PID: idl.GPID{AppID: 1, PartitionIndex: i}, Ballot: -1}
		if i < 4 {
			pc.Ballot, pc.Primary = 2, addr(2000+uint16(i))
		}
		r.Partitions = append(r.Partitions, pc)
	}
	forClient(wire.Header{}, r)
	if got := r.Partitions[12].Primary; got != addr(2000) {
		t.Errorf("partition 12 of 16: primary %v, want its ancestor 0's", got)
	}
	current := forClient(wire.Header{ClientTimeout: 703}, mk()).(*idl.QueryCfgResponse)
	for _, i := range []int32{4, 6, 7} {
		if !current.Partitions[i].Primary.IsZero() {
			t.Errorf("current client, partition %d: primary %v, want none", i, current.Partitions[i].Primary)
		}
	}
}
