package meta

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

func nodeList(r *idl.ListNodesResponse) []string {
	var out []string
	for _, n := range r.Infos {
		out = append(out, n.Status.String()+" "+n.Node.String()+" "+n.HPNode.V.String())
	}
	return out
}

func TestNodeLivenessWithFakeClock(t *testing.T) {
	const grace = 10 * time.Second
	tm := startMeta(t, Config{NodeGrace: grace})
	nodes := nodeAddrs(3)
	tm.syncAll(nodes)
	id := tm.create("t", 1, 3)
	members := tm.syncNode(nodes[0]).Assignments[0].Members
	a, b := members[0], members[1]

	tm.clock.Advance(grace / 2)
	tm.syncNode(a, leader(id, 0, 2))
	tm.syncNode(b)
	if pc := tm.query("t").Partitions[0]; addrString(pc.Primary) != a || len(pc.Secondaries) != 2 {
		t.Fatalf("primary %s secondaries %v", addrString(pc.Primary), pc.Secondaries)
	}
	// One grace period after the first syncs, only a and b (who synced since) are alive.
	tm.clock.Advance(grace / 2)
	var alive []string
	var dead string
	for _, n := range nodes {
		if n == a || n == b {
			alive = append(alive, "NS_ALIVE "+n+" "+n)
		} else {
			dead = "NS_UNALIVE " + n + " " + n
		}
	}
	if got := nodeList(tm.listNodes(idl.NodeStatusInvalid)); !slices.Equal(got, append(slices.Clone(alive), dead)) {
		t.Fatalf("all nodes: %v", got)
	}
	if got := nodeList(tm.listNodes(idl.NodeStatusAlive)); !slices.Equal(got, alive) {
		t.Fatalf("alive nodes: %v", got)
	}
	if got := nodeList(tm.listNodes(idl.NodeStatusUnalive)); !slices.Equal(got, []string{dead}) {
		t.Fatalf("dead nodes: %v", got)
	}
	// The dead member is no longer a secondary.
	if pc := tm.query("t").Partitions[0]; addrString(pc.Primary) != a || len(pc.Secondaries) != 1 || addrString(pc.Secondaries[0]) != b {
		t.Fatalf("with a dead member: primary %s secondaries %v", addrString(pc.Primary), pc.Secondaries)
	}
	// When the primary dies, no primary is reported; the ballot stays.
	tm.clock.Advance(grace / 2)
	tm.syncNode(b)
	if pc := tm.query("t").Partitions[0]; !pc.Primary.IsZero() || pc.Ballot != 2 {
		t.Fatalf("dead primary still reported: %s ballot %d", addrString(pc.Primary), pc.Ballot)
	}
	// It comes back (still leader): primary again.
	tm.syncNode(a, leader(id, 0, 2))
	if pc := tm.query("t").Partitions[0]; addrString(pc.Primary) != a {
		t.Fatalf("returning primary: %s", addrString(pc.Primary))
	}
}

// leadAll makes node report leadership (term 1) of every partition it is assigned.
func (tm *testMeta) leadAll(node string) {
	tm.t.Helper()
	var reps []cluster.ReplicaState
	for _, a := range tm.syncNode(node).Assignments {
		reps = append(reps, leader(a.AppID, a.PartitionIndex, 1))
	}
	tm.syncNode(node, reps...)
}

func TestListNodesAliveFirst(t *testing.T) {
	const grace = 10 * time.Second
	tm := startMeta(t, Config{NodeGrace: grace})
	nodes := nodeAddrs(4)
	tm.syncAll(nodes)
	tm.clock.Advance(grace)
	tm.syncNode(nodes[3])
	tm.syncNode(nodes[1])
	want := []string{
		"NS_ALIVE " + nodes[1] + " " + nodes[1], "NS_ALIVE " + nodes[3] + " " + nodes[3],
		"NS_UNALIVE " + nodes[0] + " " + nodes[0], "NS_UNALIVE " + nodes[2] + " " + nodes[2],
	}
	if got := nodeList(tm.listNodes(idl.NodeStatusInvalid)); !slices.Equal(got, want) {
		t.Fatalf("nodes %v, want %v", got, want)
	}
	// Only alive nodes count for create.
	if r := tm.createOpts("t", goAdminOptions(4, 3)); r.Err != "ERR_INVALID_PARAMETERS" {
		t.Fatalf("create 3 replicas on 2 alive nodes: %s", r.Err)
	}
	tm.create("t", 4, 2)
	for _, n := range []string{nodes[0], nodes[2]} {
		if got := tm.syncNode(n).Assignments; len(got) != 0 {
			t.Fatalf("table placed on dead node %s: %+v", n, got)
		}
	}
}

func TestClusterInfo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tm := startMeta(t, Config{Listener: ln, Metas: []string{ln.Addr().String()}, ClusterName: "onebox"})
	nodes := nodeAddrs(2)
	tm.syncAll(nodes)
	info := func() map[string]string {
		var r idl.ClusterInfoResponse
		tm.call(idl.RPCClusterInfo, &idl.ClusterInfoRequest{}, &r)
		wantKeys := []string{"meta_servers", "primary_meta_server", "zookeeper_hosts", "zookeeper_root",
			"meta_function_level", "balance_operation_count", "primary_replica_count_stddev",
			"total_replica_count_stddev", "cluster_name"}
		if r.Err != "ERR_OK" || !slices.Equal(r.Keys, wantKeys) || len(r.Values) != len(wantKeys) {
			t.Fatalf("cluster_info: %+v", r)
		}
		v := map[string]string{}
		for i, k := range r.Keys {
			v[k] = r.Values[i]
		}
		return v
	}
	// One replica per partition, spread: each node hosts and leads one.
	tm.create("t", 2, 1)
	tm.leadAll(nodes[0])
	tm.leadAll(nodes[1])
	v := info()
	if v["meta_servers"] != ln.Addr().String() || v["primary_meta_server"] != tm.srv.Advertise() ||
		v["zookeeper_hosts"] != "" || v["zookeeper_root"] != "" || v["meta_function_level"] != "steady" ||
		v["cluster_name"] != "onebox" || v["total_replica_count_stddev"] != "0.00" ||
		v["primary_replica_count_stddev"] != "0.00" || v["balance_operation_count"] != "move_pri=0,copy_pri=0,copy_sec=0,total=0" {
		t.Fatalf("cluster_info values: %v", v)
	}
	// A third partition: one node hosts and leads 2, the other 1, so both stddevs are 0.50.
	tm.create("u", 1, 1)
	tm.leadAll(nodes[0])
	tm.leadAll(nodes[1])
	if v := info(); v["primary_replica_count_stddev"] != "0.50" || v["total_replica_count_stddev"] != "0.50" {
		t.Fatalf("stddevs: primary %s total %s", v["primary_replica_count_stddev"], v["total_replica_count_stddev"])
	}
}

func TestSyncRejectsBadRequests(t *testing.T) {
	tm := startMeta(t, Config{})
	ctx := t.Context()
	var reply idl.Blob
	bad := idl.Blob("{not json")
	err := tm.conn.Call(ctx, wire.Header{}, cluster.RPCConfigSync, &bad, &reply)
	if !errors.Is(err, wire.ErrInvalidParameters) {
		t.Fatalf("bad json: %v", err)
	}
	err = tm.conn.Call(ctx, wire.Header{}, cluster.RPCConfigSync, cluster.Encode(cluster.SyncRequest{Node: "host.example:34801"}), &reply)
	if !errors.Is(err, wire.ErrInvalidParameters) {
		t.Fatalf("host name node: %v", err)
	}
	if got := tm.listNodes(idl.NodeStatusInvalid); len(got.Infos) != 0 {
		t.Fatalf("rejected syncs registered nodes: %v", nodeList(got))
	}
	// The connection still works.
	tm.syncNode("10.0.0.1:34801")
	if got := tm.listNodes(idl.NodeStatusAlive); len(got.Infos) != 1 {
		t.Fatalf("nodes: %v", nodeList(got))
	}
}

func TestRemoteCommands(t *testing.T) {
	tm := startMeta(t, Config{Version: "1.2.3"})
	help := tm.cli("help")
	for _, c := range []string{"help", "version", "server-info"} {
		if !strings.Contains(help, c) {
			t.Errorf("help does not list %s:\n%s", c, help)
		}
	}
	if got := tm.cli("version"); !strings.Contains(got, "1.2.3") {
		t.Errorf("version: %q", got)
	}
	tm.clock.Advance(90 * time.Second)
	info := tm.cli("server-info")
	for _, want := range []string{"1.2.3", "meta", tm.srv.Advertise(), "1m30s"} {
		if !strings.Contains(info, want) {
			t.Errorf("server-info lacks %q: %q", want, info)
		}
	}
	if got := tm.cli("no-such-command", "x"); !strings.Contains(got, "unknown command") || !strings.Contains(got, "help") {
		t.Errorf("unknown command: %q", got)
	}
	tm.srv.Commands().Register("echo", "echo ARGS: print the arguments", func(args []string) (string, error) {
		return strings.Join(args, " "), nil
	})
	if got := tm.cli("echo", "a", "b"); got != "a b" {
		t.Errorf("registered command: %q", got)
	}
}

func TestHTTP(t *testing.T) {
	tm := startMeta(t, Config{Version: "1.2.3"})
	get := func(path string) (int, string) {
		req, err := http.NewRequestWithContext(context.WithoutCancel(t.Context()), "GET", "http://"+tm.srv.Addr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/")
	if code != 200 || !strings.HasPrefix(body, `{"/":"`) || !strings.Contains(body, `"/meta/apps":"[detail]. `) || !strings.HasSuffix(body, "}\n") {
		t.Fatalf("/: %d %q", code, body)
	}
	if code, body := get("/version"); code != 200 || !strings.HasPrefix(body, `{"Version":"1.2.3","GitCommit":"`) {
		t.Fatalf("/version: %d %q", code, body)
	}
	if code, body := get("/recentStartTime"); code != 200 || body != `{"RecentStartTime":"`+tm.clock.Now().Local().Format("2006-01-02 15:04:05")+`"}`+"\n" {
		t.Fatalf("/recentStartTime: %d %q", code, body)
	}
	if code, body := get("/meta/nothing"); code != 404 || body != `service not found for "meta/nothing"` {
		t.Fatalf("unknown path: %d %q", code, body)
	}
}
