package meta

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
)

// simGroup is a partition's raft group as the replica servers would run it toward the
// meta's placement (package replica's reconcile): add one missing member (learner, then
// voter), else remove one member that left (handing the leadership on first if it leads),
// else hand the leadership to the placement's first member.
type simGroup struct {
	voters []string
	leader string
	term   uint64
}

// simCluster drives a machine with simulated replica servers.
type simCluster struct {
	t      *testing.T
	m      *machine
	groups map[idl.GPID]*simGroup
	nodes  []string
	clock  *fakeClock
}

func newSimCluster(t *testing.T, cfg Config, nodes []string) *simCluster {
	clock := newFakeClock()
	cfg.NodeGrace, cfg.Now = DefaultNodeGrace, clock.Now
	cfg.EnsureDefaults()
	m := newMachine(cfg, slog.New(slog.DiscardHandler), &failingLog{}, &appliedMap{m: newClusterMap()})
	m.leading = true
	sc := &simCluster{t: t, m: m, groups: map[idl.GPID]*simGroup{}, clock: clock}
	sc.addNodes(nodes...)
	return sc
}

func (sc *simCluster) addNodes(nodes ...string) {
	sc.nodes = append(sc.nodes, nodes...)
	sc.report()
}

func (sc *simCluster) create(name string, partitions, replicas int32) {
	sc.t.Helper()
	r := sc.m.createApp(sc.t.Context(), &idl.CreateAppRequest{AppName: name, Options: goAdminOptions(partitions, replicas)})
	if r.Err != "ERR_OK" {
		sc.t.Fatalf("create %s: %+v", name, r)
	}
	t := sc.m.state.tableByID(r.AppID)
	for i, p := range t.Partitions {
		sc.groups[idl.GPID{AppID: r.AppID, PartitionIndex: int32(i)}] = &simGroup{voters: slices.Clone(p.Members), leader: p.Members[0], term: 1}
	}
	sc.report()
}

// report sends every simulated server's sync.
func (sc *simCluster) report() {
	for _, n := range sc.nodes {
		var rs []cluster.ReplicaState
		for gpid, g := range sc.groups {
			if !slices.Contains(g.voters, n) {
				continue
			}
			rs = append(rs, cluster.ReplicaState{AppID: gpid.AppID, PartitionIndex: gpid.PartitionIndex,
				IsLeader: g.leader == n, Term: g.term, Voters: slices.Clone(g.voters)})
		}
		if _, code := sc.m.sync(sc.t.Context(), &cluster.SyncRequest{Node: n, StartTime: 1, Replicas: rs}); code != 0 {
			sc.t.Fatalf("sync %s: %v", n, code)
		}
	}
}

// step moves every group one change toward its placement, checking it never has fewer
// voters than the table's replica count.
func (sc *simCluster) step() {
	for gpid, g := range sc.groups {
		t := sc.m.state.tableByID(gpid.AppID)
		members := t.Partitions[gpid.PartitionIndex].Members
		switch {
		case slices.ContainsFunc(members, func(a string) bool { return !slices.Contains(g.voters, a) }):
			for _, a := range members {
				if !slices.Contains(g.voters, a) {
					g.voters = append(g.voters, a)
					break
				}
			}
		case slices.ContainsFunc(g.voters, func(a string) bool { return !slices.Contains(members, a) }):
			for i, a := range g.voters {
				if slices.Contains(members, a) {
					continue
				}
				if g.leader == a {
					// A leader the placement dropped hears of no change (its server is no
					// longer sent the partition): the group would be stuck.
					sc.t.Fatalf("partition %s: the placement %v dropped its leader %s", gpid, members, a)
				}
				g.voters = slices.Delete(g.voters, i, i+1)
				break
			}
		case g.leader != members[0]:
			g.leader, g.term = members[0], g.term+1
		}
		if int32(len(g.voters)) < t.ReplicaCount {
			sc.t.Fatalf("partition %s down to %d voters %v (replica count %d)", gpid, len(g.voters), g.voters, t.ReplicaCount)
		}
	}
	sc.report()
}

// run alternates balancer rounds and group steps until nothing is under way and the
// balancer plans nothing more, checking the per-server bound on moves under way.
func (sc *simCluster) run(limit int) int {
	sc.t.Helper()
	moves := 0
	for round := range 1000 {
		before := sc.m.stateIndex
		sc.m.balance(sc.t.Context())
		ops, busy := inFlight(sc.m.partitionViews())
		for n, b := range busy {
			if b > limit {
				sc.t.Fatalf("round %d: %s takes part in %d moves at once (limit %d)", round, n, b, limit)
			}
		}
		if sc.m.stateIndex != before {
			moves++
		}
		if ops.total() == 0 && sc.m.stateIndex == before {
			return moves
		}
		sc.step()
	}
	sc.t.Fatal("the balancer never settled")
	return 0
}

// counts returns replicas and primaries per node.
func (sc *simCluster) counts() (replicas, primaries map[string]int) {
	replicas, primaries = map[string]int{}, map[string]int{}
	for _, g := range sc.groups {
		for _, a := range g.voters {
			replicas[a]++
		}
		primaries[g.leader]++
	}
	return replicas, primaries
}

// withinOne fails unless every node in nodes has a count within one of the mean.
func withinOne(t *testing.T, what string, nodes []string, count map[string]int) {
	t.Helper()
	total := 0
	for _, n := range nodes {
		total += count[n]
	}
	mean := float64(total) / float64(len(nodes))
	for _, n := range nodes {
		if d := float64(count[n]) - mean; d > 1 || d < -1 {
			t.Fatalf("%s: %s has %d, mean %.2f: %v", what, n, count[n], mean, count)
		}
	}
}

// TestBalancerSpreadsNewServers grows a simulated cluster from 3 to 5 servers in lively mode:
// replicas and primaries end within one of the mean, no group ever drops below its replica
// count, and no server takes part in more moves at once than the setting allows.
func TestBalancerSpreadsNewServers(t *testing.T) {
	for _, limit := range []int{1, 2, 5} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			nodes := nodeAddrs(5)
			sc := newSimCluster(t, Config{LevelOnStart: "lively", BalanceMovesPerNode: limit}, nodes[:3])
			sc.create("temp", 8, 3)
			sc.create("stat", 4, 3)
			sc.create("one", 5, 1)
			if moves := sc.run(limit); moves != 0 {
				t.Fatalf("a balanced cluster got %d rounds of moves", moves)
			}
			sc.addNodes(nodes[3:]...)
			sc.run(limit)
			replicas, primaries := sc.counts()
			withinOne(t, "replicas", nodes, replicas)
			withinOne(t, "primaries", nodes, primaries)
			if replicas[nodes[3]] == 0 || primaries[nodes[4]] == 0 {
				t.Fatalf("new servers got nothing: %v %v", replicas, primaries)
			}
		})
	}
}

// TestBalancerSteadyMovesNothing checks that steady mode leaves a new server empty.
func TestBalancerSteadyMovesNothing(t *testing.T) {
	nodes := nodeAddrs(4)
	sc := newSimCluster(t, Config{}, nodes[:3])
	sc.create("temp", 8, 3)
	sc.addNodes(nodes[3])
	if moves := sc.run(2); moves != 0 {
		t.Fatalf("steady mode moved replicas (%d rounds)", moves)
	}
	if replicas, _ := sc.counts(); replicas[nodes[3]] != 0 {
		t.Fatalf("steady mode gave the new server %d replicas", replicas[nodes[3]])
	}
}

// TestDecommissionDrains marks a server leaving: in steady mode its replicas move off, the
// progress shows it empty at the end, and no new table is placed on it.
func TestDecommissionDrains(t *testing.T) {
	nodes := nodeAddrs(4)
	sc := newSimCluster(t, Config{}, nodes)
	sc.create("temp", 8, 3)
	victim := nodes[1]
	resp := sc.m.decommission(t.Context(), &cluster.DecommissionRequest{Op: cluster.DecommissionStart, Nodes: []string{victim}})
	if resp.Err != "ERR_OK" || len(resp.Nodes) != 1 || resp.Nodes[0].Empty || resp.Nodes[0].Replicas == 0 {
		t.Fatalf("start: %+v", resp)
	}
	sc.run(2)
	resp = sc.m.decommission(t.Context(), &cluster.DecommissionRequest{Op: cluster.DecommissionStatus})
	if resp.Err != "ERR_OK" || len(resp.Nodes) != 1 || !resp.Nodes[0].Empty {
		t.Fatalf("status after the drain: %+v", resp)
	}
	if replicas, primaries := sc.counts(); replicas[victim] != 0 || primaries[victim] != 0 {
		t.Fatalf("left on the decommissioned server: %d replicas, %d primaries", replicas[victim], primaries[victim])
	}
	sc.create("after", 6, 3)
	for _, p := range sc.m.state.availableTable("after").Partitions {
		if slices.Contains(p.Members, victim) {
			t.Fatalf("new table placed on a leaving server: %v", p.Members)
		}
	}
	// Three servers stay: a fourth leaving one would leave too few for 3 replicas.
	if r := sc.m.decommission(t.Context(), &cluster.DecommissionRequest{Op: cluster.DecommissionStart, Nodes: []string{nodes[0]}}); r.Err != "ERR_INVALID_PARAMETERS" {
		t.Fatalf("decommission below the replica count: %+v", r)
	}
	if r := sc.m.decommission(t.Context(), &cluster.DecommissionRequest{Op: cluster.DecommissionCancel, Nodes: []string{victim}}); r.Err != "ERR_OK" || len(r.Nodes) != 0 {
		t.Fatalf("cancel: %+v", r)
	}
}

// TestMetaLevelRPC sets the level with RPC_CM_CONTROL_META and reads it back from the RPC,
// cluster_info and /meta/cluster, which agree.
func TestMetaLevelRPC(t *testing.T) {
	tm := startMeta(t, Config{})
	control := func(l idl.MetaFunctionLevel) idl.MetaControlResponse {
		var r idl.MetaControlResponse
		tm.call(idl.RPCControlMeta, &idl.MetaControlRequest{Level: int32(l)}, &r)
		if r.Err != "ERR_OK" {
			t.Fatalf("control_meta %s: %+v", l, r)
		}
		return r
	}
	shown := func() (rpcLevel, httpLevel string) {
		var ci idl.ClusterInfoResponse
		tm.call(idl.RPCClusterInfo, &idl.ClusterInfoRequest{}, &ci)
		for i, k := range ci.Keys {
			if k == "meta_function_level" {
				rpcLevel = ci.Values[i]
			}
		}
		resp, err := http.Get("http://" + tm.srv.Addr() + "/meta/cluster")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range []string{"stopped", "blind", "freezed", "steady", "lively"} {
			if strings.Contains(string(b), `"meta_function_level":"`+l+`"`) {
				httpLevel = l
			}
		}
		return rpcLevel, httpLevel
	}
	if r := control(idl.MetaLevelInvalid); idl.MetaFunctionLevel(r.OldLevel) != idl.MetaLevelSteady {
		t.Fatalf("default level: %+v", r)
	}
	if a, b := shown(); a != "steady" || b != "steady" {
		t.Fatalf("shown: cluster_info %q, /meta/cluster %q", a, b)
	}
	control(idl.MetaLevelLively)
	if r := control(idl.MetaLevelInvalid); idl.MetaFunctionLevel(r.OldLevel) != idl.MetaLevelLively {
		t.Fatalf("after set: %+v", r)
	}
	if a, b := shown(); a != "lively" || b != "lively" {
		t.Fatalf("shown: cluster_info %q, /meta/cluster %q", a, b)
	}
	if r := control(idl.MetaFunctionLevel(12345)); idl.MetaFunctionLevel(r.OldLevel) != idl.MetaLevelLively {
		t.Fatalf("a value that is no level changed it: %+v", r)
	}
	// The level is in the replicated map: it survives a restart of the meta.
	if r := callFor[idl.BalancerResponse](tm, idl.RPCProposeBalance, &idl.BalancerRequest{}); r.Err != "ERR_APP_NOT_EXIST" {
		t.Fatalf("propose for no table: %s", r.Err)
	}
	cfg := Config{DataDir: tm.dir, Listen: tm.srv.Addr()}
	tm.stop()
	tm2 := startMeta(t, cfg)
	var r idl.MetaControlResponse
	tm2.call(idl.RPCControlMeta, &idl.MetaControlRequest{Level: int32(idl.MetaLevelInvalid)}, &r)
	if idl.MetaFunctionLevel(r.OldLevel) != idl.MetaLevelLively {
		t.Fatalf("after restart: %+v", r)
	}
}

// TestProposeBalancer runs manual moves given as Pegasus's shell sends them.
func TestProposeBalancer(t *testing.T) {
	nodes := nodeAddrs(4)
	sc := newSimCluster(t, Config{}, nodes)
	sc.create("temp", 4, 3)
	gpid := idl.GPID{AppID: 1, PartitionIndex: 0}
	members := slices.Clone(sc.m.state.tableByID(1).Partitions[0].Members)
	spare := ""
	for _, n := range nodes {
		if !slices.Contains(members, n) {
			spare = n
		}
	}
	addr := func(s string) idl.RPCAddress {
		a, err := idl.ParseRPCAddress(s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	act := func(target, node string, typ idl.ConfigType) idl.ProposalAction {
		return idl.ProposalAction{Target: addr(target), Node: addr(node), Type: typ}
	}
	// move_pri: members[1] becomes the primary.
	r := sc.m.proposeBalancer(t.Context(), &idl.BalancerRequest{GPID: gpid, ActionList: []idl.ProposalAction{
		act(members[0], members[0], idl.ConfigDowngradeToSecondary), act(members[1], members[1], idl.ConfigUpgradeToPrimary)}})
	if r.Err != "ERR_OK" || sc.m.state.tableByID(1).Partitions[0].Members[0] != members[1] {
		t.Fatalf("move_pri: %+v %v", r, sc.m.state.tableByID(1).Partitions[0].Members)
	}
	if ops := sc.m.balanceOpCounts(); ops != (balanceOps{movePri: 1}) || ops.text() != "move_pri=1,copy_pri=0,copy_sec=0,total=1" {
		t.Fatalf("moves under way after move_pri: %+v", ops)
	}
	// Under way: a second move is refused until it is done.
	r = sc.m.proposeBalancer(t.Context(), &idl.BalancerRequest{GPID: gpid, ActionList: []idl.ProposalAction{
		act(members[1], spare, idl.ConfigAddSecondaryForLB), act(members[1], members[2], idl.ConfigRemove)}})
	if r.Err != "ERR_BUSY" {
		t.Fatalf("move while one is under way: %+v", r)
	}
	sc.step()
	r = sc.m.proposeBalancer(t.Context(), &idl.BalancerRequest{GPID: gpid, ActionList: []idl.ProposalAction{
		act(members[1], spare, idl.ConfigAddSecondaryForLB), act(members[1], members[2], idl.ConfigRemove)}})
	if got := sc.m.state.tableByID(1).Partitions[0].Members; r.Err != "ERR_OK" || slices.Contains(got, members[2]) || !slices.Contains(got, spare) {
		t.Fatalf("copy_sec: %+v %v", r, got)
	}
	if ops := sc.m.balanceOpCounts(); ops != (balanceOps{copySec: 1}) ||
		ops.json() != "{\n  \"copy_pri\": 0,\n  \"copy_sec\": 1,\n  \"move_pri\": 0,\n  \"total\": 1\n}" {
		t.Fatalf("moves under way after copy_sec: %+v", ops)
	}
	for range 3 {
		sc.step()
	}
	if ops := sc.m.balanceOpCounts(); ops.total() != 0 {
		t.Fatalf("moves under way once done: %+v", ops)
	}
	if g := sc.groups[gpid]; !sameSet(g.voters, []string{members[0], members[1], spare}) || g.leader != members[1] {
		t.Fatalf("group after the moves: %+v", g)
	}
	r = sc.m.proposeBalancer(t.Context(), &idl.BalancerRequest{GPID: gpid, ActionList: []idl.ProposalAction{
		act(members[1], members[0], idl.ConfigAddSecondaryForLB), act(members[1], members[1], idl.ConfigRemove)}})
	if r.Err != "ERR_INVALID_PARAMETERS" {
		t.Fatalf("adding a member it already has: %+v", r)
	}
	// copy_pri: the placement never drops the member that leads.
	r = sc.m.proposeBalancer(t.Context(), &idl.BalancerRequest{GPID: gpid, ActionList: []idl.ProposalAction{
		act(members[1], members[2], idl.ConfigAddSecondaryForLB), act(members[1], members[1], idl.ConfigDowngradeToSecondary),
		act(members[2], members[2], idl.ConfigUpgradeToPrimary), act(members[2], members[1], idl.ConfigRemove)}})
	if r.Err != "ERR_INVALID_STATE" {
		t.Fatalf("copy_pri: %+v", r)
	}
}
