package meta

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
)

// lbRun runs the balancer's remote command name on m, as the leader's state goroutine does.
func lbRun(t *testing.T, m *machine, name string, args ...string) string {
	t.Helper()
	for _, c := range lbCommands() {
		if c.name == name {
			return c.run(m, args)
		}
	}
	t.Fatalf("no balancer command %q", name)
	return ""
}

// TestLBCommandAnswers checks each command's answers as Pegasus's tools read them: the
// current value without an argument, OK once set, the error text for a bad argument, and
// DEFAULT going back to the settings.
func TestLBCommandAnswers(t *testing.T) {
	sc := newSimCluster(t, Config{BalanceMovesPerNode: 3}, nodeAddrs(3))
	steps := []struct {
		cmd  string
		args []string
		want string
	}{
		{"meta.lb.only_move_primary", nil, "false"},
		{"meta.lb.only_move_primary", []string{"true"}, "OK"},
		{"meta.lb.only_move_primary", nil, "true"},
		{"meta.lb.only_move_primary", []string{"yes"}, "ERR: invalid arguments"},
		{"meta.lb.only_move_primary", nil, "true"},
		{"meta.lb.only_move_primary", []string{"false"}, "OK"},
		{"meta.lb.only_move_primary", nil, "false"},
		{"meta.lb.only_primary_balancer", nil, "false"},
		{"meta.lb.only_primary_balancer", []string{"true"}, "OK"},
		{"meta.lb.only_primary_balancer", nil, "true"},
		{"meta.lb.only_primary_balancer", []string{"1"}, "ERR: invalid arguments"},
		{"meta.lb.balancer_in_turn", []string{"true"}, "OK"},
		{"meta.lb.balancer_in_turn", nil, "true"},
		{"meta.lb.balancer_in_turn", []string{""}, "ERR: invalid arguments"},

		{"meta.lb.add_secondary_max_count_for_one_node", nil, "3"},
		{"meta.lb.add_secondary_max_count_for_one_node", []string{"7"}, "OK"},
		{"meta.lb.add_secondary_max_count_for_one_node", nil, "7"},
		{"meta.lb.add_secondary_max_count_for_one_node", []string{"-1"}, "ERR: invalid arguments"},
		{"meta.lb.add_secondary_max_count_for_one_node", []string{"two"}, "ERR: invalid arguments"},
		{"meta.lb.add_secondary_max_count_for_one_node", nil, "7"},
		{"meta.lb.add_secondary_max_count_for_one_node", []string{"0"}, "OK"},
		{"meta.lb.add_secondary_max_count_for_one_node", nil, "0"},
		{"meta.lb.add_secondary_max_count_for_one_node", []string{"DEFAULT"}, "OK"},
		{"meta.lb.add_secondary_max_count_for_one_node", nil, "3"},

		{"meta.lb.assign_delay_ms", nil, "0"},
		{"meta.lb.assign_delay_ms", []string{"10"}, "OK"},
		{"meta.lb.assign_delay_ms", nil, "10"},
		{"meta.lb.assign_delay_ms", []string{"1.5"}, "ERR: invalid arguments"},
		{"meta.lb.assign_delay_ms", []string{"default"}, "OK"},
		{"meta.lb.assign_delay_ms", nil, "0"},

		{"meta.live_percentage", nil, "0"},
		{"meta.live_percentage", []string{"101"}, "ERR: invalid arguments"},
		{"meta.live_percentage", []string{"-1"}, "ERR: invalid arguments"},
		{"meta.live_percentage", []string{"65"}, "OK"},
		{"meta.live_percentage", nil, "65"},
		{"meta.live_percentage", []string{"DEFAULT"}, "OK"},
		{"meta.live_percentage", nil, "0"},

		{"meta.lb.assign_secondary_black_list", nil, "get ok: "},
		{"meta.lb.assign_secondary_black_list", []string{"10.0.0.3:34801,10.0.0.1:34801"}, "set ok"},
		{"meta.lb.assign_secondary_black_list", nil, "get ok: 10.0.0.1:34801,10.0.0.3:34801"},
		{"meta.lb.assign_secondary_black_list", []string{"10.0.0.1:34801,replica-7"}, "invalid arguments"},
		{"meta.lb.assign_secondary_black_list", []string{"10.0.0.1:34801", "10.0.0.2:34801"}, "invalid arguments"},
		{"meta.lb.assign_secondary_black_list", nil, "get ok: 10.0.0.1:34801,10.0.0.3:34801"},
		{"meta.lb.assign_secondary_black_list", []string{"clear"}, "clear ok"},
		{"meta.lb.assign_secondary_black_list", nil, "get ok: "},

		{"meta.lb.get_balance_operation_count", nil, "total=0"},
		{"meta.lb.get_balance_operation_count", []string{"total"}, "total=0"},
		{"meta.lb.get_balance_operation_count", []string{"move_pri"}, "move_pri=0"},
		{"meta.lb.get_balance_operation_count", []string{"copy_pri"}, "copy_pri=0"},
		{"meta.lb.get_balance_operation_count", []string{"copy_sec"}, "copy_sec=0"},
		{"meta.lb.get_balance_operation_count", []string{"detail"}, "move_pri=0,copy_pri=0,copy_sec=0,total=0"},
		{"meta.lb.get_balance_operation_count", []string{"all"}, "ERR: invalid arguments"},
	}
	for i, s := range steps {
		if got := lbRun(t, sc.m, s.cmd, s.args...); got != s.want {
			t.Fatalf("step %d: %s %q = %q, want %q", i, s.cmd, s.args, got, s.want)
		}
	}
}

// skewPrimaries makes nodes[0] the preferred primary of every partition it holds, and
// steps the groups until their leaders follow.
func (sc *simCluster) skewPrimaries(first string) {
	sc.t.Helper()
	var lead []leadMove
	for _, t := range sc.m.state.Tables {
		for i, p := range t.Partitions {
			if slices.Contains(p.Members, first) {
				lead = append(lead, leadMove{GPID: idl.GPID{AppID: t.AppID, PartitionIndex: int32(i)}, Node: first})
			}
		}
	}
	if _, err := sc.m.commit(sc.t.Context(), &mutation{Balance: &balanceMoves{Lead: lead}}); err != nil {
		sc.t.Fatal(err)
	}
	for range 3 {
		sc.step()
	}
	if _, primaries := sc.counts(); primaries[first] != len(lead) {
		sc.t.Fatalf("primaries after the skew: %v", primaries)
	}
}

// TestOnlyPrimaryBalancer: with meta.lb.only_primary_balancer (or only_move_primary) on, the
// lively balancer leaves new servers without replicas but spreads the primaries over the
// servers that hold replicas; turned off again, replicas move to the new servers.
func TestOnlyPrimaryBalancer(t *testing.T) {
	for _, flag := range []string{"meta.lb.only_primary_balancer", "meta.lb.only_move_primary"} {
		t.Run(flag, func(t *testing.T) {
			nodes := nodeAddrs(5)
			sc := newSimCluster(t, Config{LevelOnStart: "lively"}, nodes[:3])
			if got := lbRun(t, sc.m, flag, "true"); got != "OK" {
				t.Fatalf("set: %q", got)
			}
			sc.create("temp", 9, 3)
			sc.skewPrimaries(nodes[0])
			sc.addNodes(nodes[3:]...)
			if moves := sc.run(2); moves == 0 {
				t.Fatal("the primaries were not moved")
			}
			replicas, primaries := sc.counts()
			if replicas[nodes[3]] != 0 || replicas[nodes[4]] != 0 {
				t.Fatalf("replicas moved with %s on: %v", flag, replicas)
			}
			withinOne(t, "primaries", nodes[:3], primaries)

			lbRun(t, sc.m, flag, "false")
			sc.run(2)
			replicas, primaries = sc.counts()
			withinOne(t, "replicas", nodes, replicas)
			withinOne(t, "primaries", nodes, primaries)
		})
	}
}

// TestMovesPerNodeCommand: meta.lb.add_secondary_max_count_for_one_node 0 holds the balancer
// and the replacement of lost replicas; 1 bounds the moves under way per server to one.
func TestMovesPerNodeCommand(t *testing.T) {
	nodes := nodeAddrs(5)
	sc := newSimCluster(t, Config{LevelOnStart: "lively"}, nodes[:3])
	sc.create("temp", 8, 3)
	lbRun(t, sc.m, "meta.lb.add_secondary_max_count_for_one_node", "0")
	sc.addNodes(nodes[3:]...)
	if moves := sc.run(0); moves != 0 {
		t.Fatalf("%d rounds of moves with the bound at 0", moves)
	}
	lbRun(t, sc.m, "meta.lb.add_secondary_max_count_for_one_node", "1")
	sc.run(1)
	replicas, _ := sc.counts()
	withinOne(t, "replicas", nodes, replicas)

	lbRun(t, sc.m, "meta.lb.add_secondary_max_count_for_one_node", "0")
	before := sc.placement()
	sc.kill(nodes[0])
	sc.m.replaceLost(t.Context())
	if after := sc.placement(); after != before {
		t.Fatalf("replaced with the bound at 0:\n%s\n%s", before, after)
	}
	lbRun(t, sc.m, "meta.lb.add_secondary_max_count_for_one_node", "DEFAULT")
	sc.m.replaceLost(t.Context())
	if after := sc.placement(); strings.Contains(after, nodes[0]) {
		t.Fatalf("not replaced once the bound is back:\n%s", after)
	}
}

// placement renders every partition's members.
func (sc *simCluster) placement() string {
	var b strings.Builder
	for _, t := range sc.m.state.Tables {
		for i, p := range t.Partitions {
			fmt.Fprintf(&b, "%d.%d %v\n", t.AppID, i, p.Members)
		}
	}
	return b.String()
}

// kill stops the syncs of addrs and lets the meta declare them dead.
func (sc *simCluster) kill(addrs ...string) {
	sc.nodes = slices.DeleteFunc(sc.nodes, func(a string) bool { return slices.Contains(addrs, a) })
	sc.clock.Advance(sc.m.cfg.NodeGrace)
	sc.report()
	sc.m.refresh()
}

// TestBlackList: a black-listed server gets no replica from a new table, from the lively
// balancer (although it is empty), from a decommissioned server or from the replacement of a lost server's replicas; once
// the list is cleared, a new table is placed on it.
func TestBlackList(t *testing.T) {
	nodes := nodeAddrs(6)
	sc := newSimCluster(t, Config{LevelOnStart: "lively"}, nodes)
	black := nodes[5]
	if got := lbRun(t, sc.m, "meta.lb.assign_secondary_black_list", black); got != "set ok" {
		t.Fatalf("set: %q", got)
	}
	sc.create("temp", 8, 3)
	sc.create("stat", 4, 3)
	if strings.Contains(sc.placement(), black) {
		t.Fatalf("new tables placed on the black-listed server:\n%s", sc.placement())
	}
	sc.run(2)
	if replicas, _ := sc.counts(); replicas[black] != 0 {
		t.Fatalf("the balancer gave the black-listed server %d replicas", replicas[black])
	}
	if r := sc.m.decommission(t.Context(), &cluster.DecommissionRequest{Op: cluster.DecommissionStart, Nodes: []string{nodes[1]}}); r.Err != "ERR_OK" {
		t.Fatalf("decommission: %+v", r)
	}
	sc.run(2)
	if replicas, _ := sc.counts(); replicas[black] != 0 || replicas[nodes[1]] != 0 {
		t.Fatalf("after draining %s: %v", nodes[1], replicas)
	}
	sc.kill(nodes[0])
	sc.m.replaceLost(t.Context())
	p := sc.placement()
	if strings.Contains(p, black) || strings.Contains(p, nodes[0]) {
		t.Fatalf("after replacing %s's replicas:\n%s", nodes[0], p)
	}

	lbRun(t, sc.m, "meta.lb.assign_secondary_black_list", "clear")
	sc.create("after", 4, 3)
	if !strings.Contains(sc.placement(), black) {
		t.Fatalf("the emptiest server got nothing from a new table once off the list:\n%s", sc.placement())
	}
}

// TestLivePercentage: below meta.live_percentage of alive servers the lost replicas are not
// replaced; at it, they are.
func TestLivePercentage(t *testing.T) {
	nodes := nodeAddrs(5)
	sc := newSimCluster(t, Config{}, nodes)
	sc.create("temp", 8, 3)
	lbRun(t, sc.m, "meta.live_percentage", "70")
	sc.kill(nodes[3], nodes[4]) // 3 of 5 alive: 60%
	before := sc.placement()
	sc.m.replaceLost(t.Context())
	if after := sc.placement(); after != before {
		t.Fatalf("replaced with 60%% alive, threshold 70%%:\n%s\n%s", before, after)
	}
	lbRun(t, sc.m, "meta.live_percentage", "60")
	sc.m.replaceLost(t.Context())
	if after := sc.placement(); after == before {
		t.Fatalf("nothing replaced with 60%% alive, threshold 60%%:\n%s", after)
	}
}

// TestAssignDelay: a dead server's replicas wait meta.lb.assign_delay_ms before they are
// replaced.
func TestAssignDelay(t *testing.T) {
	nodes := nodeAddrs(4)
	sc := newSimCluster(t, Config{}, nodes)
	sc.create("temp", 8, 3)
	lbRun(t, sc.m, "meta.lb.assign_delay_ms", "60000")
	sc.kill(nodes[0])
	before := sc.placement()
	sc.clock.Advance(59 * 1e9)
	sc.report()
	sc.m.replaceLost(t.Context())
	if after := sc.placement(); after != before {
		t.Fatalf("replaced within the delay:\n%s\n%s", before, after)
	}
	sc.clock.Advance(1e9)
	sc.report()
	sc.m.replaceLost(t.Context())
	if after := sc.placement(); strings.Contains(after, nodes[0]) {
		t.Fatalf("not replaced after the delay:\n%s", after)
	}
}

// TestBalanceOperationCountCommand: meta.lb.get_balance_operation_count counts the moves
// under way as /meta/cluster does.
func TestBalanceOperationCountCommand(t *testing.T) {
	nodes := nodeAddrs(3)
	sc := newSimCluster(t, Config{}, nodes)
	sc.create("temp", 6, 3)
	var lead []leadMove
	for i, p := range sc.m.state.Tables[0].Partitions {
		if p.Members[0] != nodes[1] {
			lead = append(lead, leadMove{GPID: idl.GPID{AppID: sc.m.state.Tables[0].AppID, PartitionIndex: int32(i)}, Node: nodes[1]})
		}
	}
	if _, err := sc.m.commit(t.Context(), &mutation{Balance: &balanceMoves{Lead: lead}}); err != nil {
		t.Fatal(err)
	}
	n := len(lead)
	for args, want := range map[string]string{
		"":         fmt.Sprintf("total=%d", n),
		"move_pri": fmt.Sprintf("move_pri=%d", n),
		"copy_sec": "copy_sec=0",
		"detail":   fmt.Sprintf("move_pri=%d,copy_pri=0,copy_sec=0,total=%d", n, n),
	} {
		var a []string
		if args != "" {
			a = []string{args}
		}
		if got := lbRun(t, sc.m, "meta.lb.get_balance_operation_count", a...); got != want || n == 0 {
			t.Fatalf("%q: %q, want %q", args, got, want)
		}
	}
	sc.step()
	if got := lbRun(t, sc.m, "meta.lb.get_balance_operation_count"); got != "total=0" {
		t.Fatalf("once done: %q", got)
	}
}

// TestLBCommandsOnServer sends the commands as Pegasus's tools do (RPC_CLI_CLI_CALL to the
// leader): they answer as above and are listed by help. With access control on, a user who
// is no super user may read the operation count but not change the balancer.
func TestLBCommandsOnServer(t *testing.T) {
	tm := startMeta(t, Config{})
	for _, s := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"meta.lb.only_move_primary", []string{"true"}, "OK\n"},
		{"meta.lb.only_move_primary", nil, "true\n"},
		{"meta.live_percentage", []string{"0"}, "OK\n"},
		{"meta.lb.assign_secondary_black_list", []string{"10.0.0.9:34801"}, "set ok\n"},
		{"meta.lb.assign_secondary_black_list", nil, "get ok: 10.0.0.9:34801\n"},
		{"meta.lb.get_balance_operation_count", []string{"detail"}, "move_pri=0,copy_pri=0,copy_sec=0,total=0\n"},
	} {
		if got := tm.cli(s.cmd, s.args...); got != s.want {
			t.Fatalf("%s %q = %q, want %q", s.cmd, s.args, got, s.want)
		}
	}
	help := tm.cli("help")
	for _, c := range lbCommands() {
		if !strings.Contains(help, c.help+"\n") {
			t.Fatalf("help does not list %s:\n%s", c.name, help)
		}
	}

	settings := NewSettings()
	for k, v := range map[string]string{"enable_acl": "true", "meta_acl_rpc_allow_list": "RPC_CM_LIST_APPS," + idl.RPCCLICall} {
		if err := settings.Registry().Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	guarded := startMeta(t, Config{Settings: settings})
	if got := guarded.cli("meta.lb.only_move_primary", "true"); !strings.Contains(got, "ERR_ACL_DENY") {
		t.Fatalf("an anonymous user changed the balancer: %q", got)
	}
	if got := guarded.cli("meta.lb.get_balance_operation_count"); got != "total=0\n" {
		t.Fatalf("operation count for an anonymous user: %q", got)
	}
	var st string
	if err := guarded.srv.doWithin(lbCommandTimeout, func() { st = strconv.FormatBool(guarded.srv.m.lb.onlyMovePrimary) }); err != nil || st != "false" {
		t.Fatalf("only_move_primary after the refusal: %s %v", st, err)
	}
}

// TestLBCommandsOnFollower: a meta that does not lead takes no balancer command and names
// the leader; the leader keeps its own values.
func TestLBCommandsOnFollower(t *testing.T) {
	g := startGroup(t, 3, Config{})
	lead := g.leader()
	f := g.follower(lead)
	for _, args := range [][]string{{"true"}, nil} {
		got := f.cli("meta.lb.only_primary_balancer", args...)
		if !strings.HasPrefix(got, "error: meta.lb.only_primary_balancer: ") || !strings.Contains(got, lead.srv.Advertise()) {
			t.Fatalf("on a follower, %q: %q", args, got)
		}
	}
	if got := lead.cli("meta.lb.only_primary_balancer"); got != "false\n" {
		t.Fatalf("on the leader: %q", got)
	}
}
