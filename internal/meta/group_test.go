package meta

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/wire"
)

// freeAddrs returns n distinct addresses on 127.0.0.1 whose ports were free a moment ago.
// Every listener stays open until all n are picked: closed at once, the kernel could hand
// the same port out twice.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out = append(out, ln.Addr().String())
	}
	return out
}

// group is a raft group of metas running in the test.
type group struct {
	t     *testing.T
	addrs []string
	dirs  []string
	cfg   Config
	metas map[string]*testMeta
}

// startGroup starts n metas forming a new group; cfg is the template of their config.
func startGroup(t *testing.T, n int, cfg Config) *group {
	t.Helper()
	g := &group{t: t, addrs: freeAddrs(t, n), cfg: cfg, metas: map[string]*testMeta{}}
	for range n {
		g.dirs = append(g.dirs, t.TempDir())
	}
	for i := range g.addrs {
		g.start(i)
	}
	return g
}

func (g *group) config(addr, dir string) Config {
	cfg := g.cfg
	cfg.Listen, cfg.DataDir, cfg.Metas = addr, dir, slices.Clone(g.addrs)
	if cfg.RaftTick == 0 {
		cfg.RaftTick = 10 * time.Millisecond
	}
	return cfg
}

func (g *group) start(i int) *testMeta {
	tm := startMeta(g.t, g.config(g.addrs[i], g.dirs[i]))
	g.metas[g.addrs[i]] = tm
	return tm
}

func (g *group) stop(addr string) {
	g.metas[addr].stop()
	delete(g.metas, addr)
}

// leader waits until one running meta serves and returns it.
func (g *group) leader() *testMeta {
	g.t.Helper()
	var out *testMeta
	poll.Until(g.t, "a serving meta leader", func() bool {
		for _, tm := range g.metas {
			if _, ok := tm.srv.Leader(); ok {
				out = tm
				return true
			}
		}
		return false
	})
	return out
}

// follower returns a running meta other than the leader that knows the leader.
func (g *group) follower(leader *testMeta) *testMeta {
	g.t.Helper()
	var out *testMeta
	poll.Until(g.t, "a follower knowing the leader", func() bool {
		for _, tm := range g.metas {
			if l, _ := tm.srv.Leader(); tm != leader && l == leader.srv.Advertise() {
				out = tm
				return true
			}
		}
		return false
	})
	return out
}

func TestFollowerForwardsEveryRPC(t *testing.T) {
	g := startGroup(t, 3, Config{})
	lead := g.leader()
	lead.syncAll(nodeAddrs(1))
	lead.create("temp", 4, 1)
	f := g.follower(lead)
	leaderAddr := lead.srv.Advertise()
	fwd := idl.ErrorCode("ERR_FORWARD_TO_OTHERS")

	// query_cfg: the leader as the primary of one otherwise empty partition configuration.
	q := f.query("temp")
	if q.Err != fwd || len(q.Partitions) != 1 || q.AppID != 0 || q.PartitionCount != 0 {
		t.Fatalf("query_cfg on a follower: %+v", q)
	}
	pc := q.Partitions[0]
	hp, ok := pc.HPPrimary.Get()
	if pc.Primary.String() != leaderAddr || !ok || hp.String() != leaderAddr || pc.Ballot != 0 ||
		len(pc.Secondaries) != 0 || pc.PID != (idl.GPID{}) {
		t.Fatalf("leader hint: %+v (hp %v)", pc, hp)
	}
	// The admin RPCs: err only, no hint.
	if r := f.createOpts("x", goAdminOptions(2, 1)); r.Err != fwd || r.AppID != 0 {
		t.Fatalf("create_app: %+v", r)
	}
	if e := f.drop("temp", idl.DropAppOptions{}); e != fwd {
		t.Fatalf("drop_app: %s", e)
	}
	if r := f.listApps(&idl.ListAppsRequest{}); r.Err != fwd || len(r.Infos) != 0 {
		t.Fatalf("list_apps: %+v", r)
	}
	if r := f.listNodes(idl.NodeStatusInvalid); r.Err != fwd || len(r.Infos) != 0 {
		t.Fatalf("list_nodes: %+v", r)
	}
	var ci idl.ClusterInfoResponse
	f.call(idl.RPCClusterInfo, &idl.ClusterInfoRequest{}, &ci)
	if ci.Err != fwd || len(ci.Keys) != 0 {
		t.Fatalf("cluster_info: %+v", ci)
	}
	if r := f.updateEnv(&idl.UpdateAppEnvRequest{AppName: "temp", Op: idl.AppEnvOpSet,
		Keys: idl.Some([]string{"k"}), Values: idl.Some([]string{"v"})}); r.Err != fwd {
		t.Fatalf("update_app_env: %+v", r)
	}
	// A replica server's sync: the leader named.
	var reply idl.Blob
	f.call(cluster.RPCConfigSync, cluster.Encode(cluster.SyncRequest{Node: nodeAddrs(1)[0]}), &reply)
	var sr cluster.SyncResponse
	if err := cluster.Decode(&reply, &sr); err != nil || sr.Err != string(fwd) || sr.Leader != leaderAddr || len(sr.Assignments) != 0 {
		t.Fatalf("config sync: %+v %v", sr, err)
	}
	// Nothing of that reached the map.
	if r := lead.listApps(&idl.ListAppsRequest{}); len(r.Infos) != 1 || len(r.Infos[0].Envs) != 0 {
		t.Fatalf("apps on the leader: %+v", r.Infos)
	}
	if got := f.cli("meta-add", "127.0.0.1:1"); !strings.Contains(got, leaderAddr) {
		t.Fatalf("meta-add on a follower: %q", got)
	}
}

func TestFollowerRedirectsMetadataQueries(t *testing.T) {
	g := startGroup(t, 3, Config{})
	lead := g.leader()
	f := g.follower(lead)
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(base, path string) *http.Response {
		t.Helper()
		resp, err := hc.Get("http://" + base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	leaderAddr := lead.srv.Advertise()
	for path, want := range map[string]string{
		"/meta/cluster":              "/meta/cluster",
		"/meta/cluster?x=1":          "/meta/cluster?x=1",
		"/meta/apps":                 "/meta/apps",
		"/meta/apps?detail":          "/meta/apps?detail=",
		"/meta/app?name=temp":        "/meta/app?name=temp",
		"/meta/app?name=temp&detail": "/meta/app?name=temp&detail=",
		"//meta/nodes/?detail=true":  "/meta/nodes?detail=true",
		"/meta/nodes":                "/meta/nodes",
	} {
		resp := get(f.srv.Addr(), path)
		if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != "http://"+leaderAddr+want {
			t.Errorf("GET %s on a follower: %d Location %q, want 307 %q", path, resp.StatusCode, resp.Header.Get("Location"), "http://"+leaderAddr+want)
		}
	}
	// Unknown or duplicate arguments are refused before the redirect.
	for _, path := range []string{"/meta/apps?bogus=1", "/meta/app?name=a&name=b", "/meta/nodes?name=x"} {
		if resp := get(f.srv.Addr(), path); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s on a follower: %d, want 400", path, resp.StatusCode)
		}
	}
	// Answered locally: the builtins on the follower; the queries themselves on the leader.
	if resp := get(f.srv.Addr(), "/version"); resp.StatusCode != http.StatusOK {
		t.Errorf("/version on a follower: %d", resp.StatusCode)
	}
	if resp := get(leaderAddr, "/meta/cluster"); resp.StatusCode != http.StatusOK {
		t.Errorf("/meta/cluster on the leader: %d", resp.StatusCode)
	}
}

func TestLeaderNotReadyAnswersServiceNotActive(t *testing.T) {
	addr := freeAddrs(t, 1)[0]
	s, err := New(Config{Listen: addr, DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// Never run: Close releases the raft log and the listener.
	defer s.Close()
	refuse := func(e idl.ErrorCode, leader string) idl.Value { return refuseQueryConfig(e, leader) }
	ran := false
	serve := func(context.Context) idl.Value { ran = true; return nil }

	// No leader known yet: a forward without a hint.
	v, code := s.serve(t.Context(), serve, refuse)
	if r := v.(*idl.QueryCfgResponse); code != wire.OK || r.Err != "ERR_FORWARD_TO_OTHERS" || len(r.Partitions) != 0 {
		t.Fatalf("before any leader: %v %+v", code, r)
	}
	// Elected, but the log of earlier terms not applied yet.
	s.raft.status.Store(&raftStatus{term: 2, lead: s.raft.id, leader: addr, isLeader: true})
	v, code = s.serve(t.Context(), serve, refuse)
	if r := v.(*idl.QueryCfgResponse); code != wire.OK || r.Err != "ERR_SERVICE_NOT_ACTIVE" || len(r.Partitions) != 0 {
		t.Fatalf("leader not ready: %v %+v", code, r)
	}
	// Another meta leads: its address as the hint.
	s.raft.status.Store(&raftStatus{term: 3, lead: cluster.MemberID("10.0.0.9:34601"), leader: "10.0.0.9:34601"})
	v, _ = s.serve(t.Context(), serve, refuse)
	if r := v.(*idl.QueryCfgResponse); r.Err != "ERR_FORWARD_TO_OTHERS" || len(r.Partitions) != 1 || r.Partitions[0].Primary.String() != "10.0.0.9:34601" {
		t.Fatalf("follower: %+v", r)
	}
	if ran {
		t.Fatal("a request ran on a meta that does not serve")
	}
}

// TestNewLeaderKeepsNodesAlive checks the takeover of failure detection: a new leader starts
// every known replica server's clock at its election instead of declaring them dead, keeps
// the persisted ballots and reports primaries again as soon as their servers sync.
func TestNewLeaderKeepsNodesAlive(t *testing.T) {
	clock := newFakeClock()
	grace := 10 * time.Second
	log := &failingLog{}
	cfg := Config{NodeGrace: grace, Now: clock.Now}
	old := newMachine(cfg, slog.New(slog.DiscardHandler), log, &appliedMap{m: newClusterMap()})
	ctx := t.Context()
	nodes := nodeAddrs(3)
	for _, n := range nodes {
		old.sync(ctx, &cluster.SyncRequest{Node: n})
	}
	id := old.createApp(ctx, &idl.CreateAppRequest{AppName: "t", Options: goAdminOptions(3, 1)}).AppID
	for _, n := range nodes {
		// Every node leads the partitions placed on it, in term 5.
		var rs []cluster.ReplicaState
		for p := range int32(3) {
			if slices.Contains(log.saved.Tables[0].Partitions[p].Members, n) {
				rs = append(rs, leader(id, p, 5))
			}
		}
		old.sync(ctx, &cluster.SyncRequest{Node: n, Replicas: rs})
	}
	if pc := old.queryConfig(&idl.QueryCfgRequest{AppName: "t"}); pc.Partitions[0].Primary.IsZero() {
		t.Fatalf("old leader has no primary: %+v", pc.Partitions[0])
	}

	// Much later (longer than the grace period: the old leader's syncs are long gone), a new
	// leader takes over from the replicated map.
	clock.Advance(3 * grace)
	nl := newMachine(cfg, slog.New(slog.DiscardHandler), log, &appliedMap{})
	nl.takeOver(7, &appliedMap{index: log.index, m: log.saved})
	nl.refresh()
	if got := nl.listNodes(&idl.ListNodesRequest{Status: idl.NodeStatusAlive}); len(got.Infos) != 3 {
		t.Fatalf("new leader declared nodes dead at once: %v", nodeList(got))
	}
	q := nl.queryConfig(&idl.QueryCfgRequest{AppName: "t"})
	for i, pc := range q.Partitions {
		if pc.Ballot != 5 || !pc.Primary.IsZero() {
			t.Fatalf("partition %d before any sync: ballot %d primary %s", i, pc.Ballot, addrString(pc.Primary))
		}
	}
	// Within the grace period two servers sync (one of them reporting its leadership); the
	// third stays silent.
	clock.Advance(grace / 2)
	nl.refresh()
	var rs []cluster.ReplicaState
	for p := range int32(3) {
		if slices.Contains(log.saved.Tables[0].Partitions[p].Members, nodes[0]) {
			rs = append(rs, leader(id, p, 5))
		}
	}
	nl.sync(ctx, &cluster.SyncRequest{Node: nodes[0], Replicas: rs})
	nl.sync(ctx, &cluster.SyncRequest{Node: nodes[1]})
	if got := nl.listNodes(&idl.ListNodesRequest{Status: idl.NodeStatusAlive}); len(got.Infos) != 3 {
		t.Fatalf("nodes within the grace period: %v", nodeList(got))
	}
	primaries := 0
	for _, pc := range nl.queryConfig(&idl.QueryCfgRequest{AppName: "t"}).Partitions {
		if !pc.Primary.IsZero() {
			primaries++
			if pc.Primary.String() != nodes[0] || pc.Ballot != 5 {
				t.Fatalf("primary after the sync: %s ballot %d", addrString(pc.Primary), pc.Ballot)
			}
		}
	}
	if primaries != len(rs) {
		t.Fatalf("%d primaries after %s reported %d", primaries, nodes[0], len(rs))
	}
	// The grace period since the election passes: only the silent one is dead.
	clock.Advance(grace/2 + time.Second)
	nl.refresh()
	if got := nl.listNodes(&idl.ListNodesRequest{Status: idl.NodeStatusUnalive}); len(got.Infos) != 1 || got.Infos[0].Node.String() != nodes[2] {
		t.Fatalf("dead after the grace period: %v, want %s", nodeList(got), nodes[2])
	}
}

func TestMetaAddAndRemove(t *testing.T) {
	// Snapshots every few entries, so the new meta cannot catch up from the log alone.
	g := startGroup(t, 3, Config{SnapshotEntries: 2})
	lead := g.leader()
	nodes := nodeAddrs(3)
	lead.syncAll(nodes)
	lead.create("before", 4, 3)
	lead.create("more", 2, 1)

	// A fourth meta joins with an empty data directory and catches up by snapshot.
	addr4, dir4 := freeAddrs(t, 1)[0], t.TempDir()
	cfg4 := g.config(addr4, dir4)
	cfg4.Join = true
	m4 := startMeta(t, cfg4)
	if got := lead.cli("meta-add", addr4); !strings.HasPrefix(got, "added "+addr4) {
		t.Fatalf("meta-add: %q", got)
	}
	if got := lead.cli("meta-add", addr4); !strings.Contains(got, "already a member") {
		t.Fatalf("second meta-add: %q", got)
	}
	has := func(tm *testMeta, name string) bool {
		return tm.srv.raft.latest.Load().m.availableTable(name) != nil
	}
	poll.Until(t, "the new meta to catch up", func() bool { return has(m4, "before") && has(m4, "more") })
	if _, err := os.Stat(filepath.Join(dir4, snapshotFile)); err != nil {
		t.Fatalf("the new meta did not install a snapshot: %v", err)
	}
	if got := lead.cli("meta-list"); !strings.Contains(got, addr4) || !strings.Contains(got, "leader "+lead.srv.Advertise()) {
		t.Fatalf("meta-list: %q", got)
	}

	// Remove one of the original followers, stop it, then stop the leader: the two left
	// (the new meta among them) are a majority of the three and elect a leader.
	var removed string
	for a := range g.metas {
		if a != lead.srv.Advertise() {
			removed = a
			break
		}
	}
	if got := lead.cli("meta-remove", removed); !strings.HasPrefix(got, "removed "+removed) {
		t.Fatalf("meta-remove: %q", got)
	}
	if got := lead.cli("meta-remove", lead.srv.Advertise()); !strings.Contains(got, "is the leader") {
		t.Fatalf("meta-remove of the leader: %q", got)
	}
	if got := lead.cli("meta-list"); strings.Contains(got, removed) {
		t.Fatalf("meta-list after the removal: %q", got)
	}
	g.stop(removed)
	oldLeader := lead.srv.Advertise()
	g.stop(oldLeader)
	g.metas[addr4] = m4
	lead = g.leader()
	if lead.srv.Advertise() == oldLeader {
		t.Fatal("stopped leader still leads")
	}
	if q := lead.query("before"); q.Err != "ERR_OK" || q.PartitionCount != 4 {
		t.Fatalf("query_cfg on the new leader %s: %+v", lead.srv.Advertise(), q)
	}
	lead.syncAll(nodes)
	lead.create("after", 2, 1)
	for _, tm := range g.metas {
		poll.Until(t, "the table created on the new leader everywhere", func() bool { return has(tm, "after") })
	}
}

func TestGroupRestartsFromItsData(t *testing.T) {
	g := startGroup(t, 3, Config{SnapshotEntries: 3})
	lead := g.leader()
	lead.fillMap(nodeAddrs(3), 9)
	lead.create("last", 1, 1)
	beforeApps := lead.listApps(&idl.ListAppsRequest{})
	beforeCfg := lead.query("t")

	for _, addr := range slices.Clone(g.addrs) {
		g.stop(addr)
	}
	for i := range g.addrs {
		g.start(i)
	}
	lead = g.leader()
	if got := lead.listApps(&idl.ListAppsRequest{}); !reflect.DeepEqual(got, beforeApps) {
		t.Fatalf("apps after restart:\n%+v\nwant\n%+v", got.Infos, beforeApps.Infos)
	}
	for i, pc := range lead.query("t").Partitions {
		if want := beforeCfg.Partitions[i]; pc.Ballot != want.Ballot || pc.PID != want.PID {
			t.Fatalf("partition %d after restart: %+v, want ballot %d", i, pc, want.Ballot)
		}
	}
	if got := lead.listNodes(idl.NodeStatusInvalid); len(got.Infos) != 3 {
		t.Fatalf("nodes after restart: %v", nodeList(got))
	}
	// The log was truncated by snapshots on every meta.
	for _, dir := range g.dirs {
		snap, _, ok, err := readSnapshot(dir)
		if err != nil || !ok || snap.Index <= 1 {
			t.Fatalf("snapshot in %s: %+v %v %v", dir, snap, ok, err)
		}
	}
}
