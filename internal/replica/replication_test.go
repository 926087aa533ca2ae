package replica

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/tracker"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

const replApp = 5

var replPID = idl.GPID{AppID: replApp}

// group is a set of replica servers sharing one single-partition table.
type group struct {
	t       testing.TB
	a       *assigner
	meta    string
	servers map[string]*Server
	stops   map[string]func()
	dirs    map[string]string
	// settings, when set, makes run start its servers with a copy of cfg (quiesce_test.go).
	settings func() Config
}

func newGroup(t *testing.T, n int) (*group, []string) {
	a, meta := startAssigner(t)
	a.joiners = map[string]bool{}
	g := &group{t: t, a: a, meta: meta, servers: map[string]*Server{}, stops: map[string]func(){}, dirs: map[string]string{}}
	var addrs []string
	for range n {
		dir := t.TempDir()
		s, stop := g.run(dir, "127.0.0.1:0")
		addrs = append(addrs, s.Addr())
		g.dirs[s.Addr()] = dir
		_ = stop
	}
	return g, addrs
}

func (g *group) run(dir, addr string) (*Server, func()) {
	cfg := Config{LogCompactEvery: 50, LogKeep: 10}
	if g.settings != nil {
		cfg = g.settings()
	}
	cfg.Listen, cfg.DataDir, cfg.Metas = addr, dir, []string{g.meta}
	s, stop := runReplicaCfg(g.t, cfg)
	g.servers[s.Addr()] = s
	g.stops[s.Addr()] = stop
	return s, stop
}

func (g *group) setMembers(members ...string) {
	g.a.mu.Lock()
	defer g.a.mu.Unlock()
	g.a.tables = []cluster.Assignment{{AppID: replApp, AppName: "r", PartitionCount: 1, Members: members}}
}

// leader waits for a leader among the given servers and returns it.
func (g *group) leader(among ...string) string {
	var l string
	poll.Until(g.t, "a leader", func() bool {
		for _, a := range among {
			if p := g.servers[a].partition(replPID); p != nil && p.isLeader.Load() {
				l = a
				return true
			}
		}
		return false
	})
	return l
}

// put writes through whichever of the servers leads, retrying while leadership moves.
func (g *group) put(among []string, i int) {
	g.t.Helper()
	k := key.Encode([]byte(fmt.Sprintf("k%04d", i)), nil)
	var err error
	var resp idl.UpdateResponse
	if werr := poll.Wait(g.t.Context(), func(ctx context.Context) (bool, error) {
		conn := rpc.NewConn(g.leader(among...), rpc.ConnConfig{})
		defer conn.Close()
		resp = idl.UpdateResponse{}
		err = conn.Call(ctx, wire.Header{AppID: replApp}, idl.RPCPut, &idl.UpdateRequest{Key: k, Value: []byte(fmt.Sprint(i))}, &resp)
		return err == nil && resp.Error == 0, nil
	}); werr != nil {
		g.t.Fatalf("put %d: %v (last answer: %v %+v)", i, werr, err, resp)
	}
}

// hasAll checks a server's own store directly: it holds every key 0..n-1.
func (g *group) hasAll(addr string, n int) bool {
	p := g.servers[addr].partition(replPID)
	if p == nil {
		return false
	}
	db, release := p.readDB()
	defer release()
	for i := range n {
		v, code, err := db.Get(key.Encode([]byte(fmt.Sprintf("k%04d", i)), nil))
		if err != nil || code != 0 || string(v) != fmt.Sprint(i) {
			return false
		}
	}
	return true
}

func TestLaggingFollowerCatchesUpBySnapshot(t *testing.T) {
	g, addrs := newGroup(t, 3)
	a, b, c := addrs[0], addrs[1], addrs[2]
	g.setMembers(a, b, c)
	for i := range 20 {
		g.put(addrs, i)
	}
	// c misses many writes: the leader truncates its log past them.
	g.stops[c]()
	for i := 20; i < 300; i++ {
		g.put([]string{a, b}, i)
	}
	g.run(g.dirs[c], c)
	poll.Until(t, "c to catch up", func() bool { return g.hasAll(c, 300) })
	if n := g.servers[c].partition(replPID).snapshots.Load(); n == 0 {
		t.Fatal("c caught up without a snapshot although the log was truncated")
	}
	// And c takes part in the group again: with a stopped, b and c still commit.
	g.stops[a]()
	for i := 300; i < 320; i++ {
		g.put([]string{b, c}, i)
	}
	if !g.hasAll(c, 320) && !g.hasAll(b, 320) {
		t.Fatal("writes after the catch-up are missing")
	}
}

func TestLostMemberIsReplaced(t *testing.T) {
	g, addrs := newGroup(t, 4)
	a, b, c, d := addrs[0], addrs[1], addrs[2], addrs[3]
	g.setMembers(a, b, c)
	for i := range 200 {
		g.put([]string{a, b, c}, i)
	}
	// c is lost; the placement replaces it by d, which joins the existing group.
	g.stops[c]()
	g.a.mu.Lock()
	g.a.joiners[d] = true
	g.a.mu.Unlock()
	g.setMembers(a, b, d)
	poll.Until(t, "d to become a voter and c to be removed", func() bool {
		l := g.leader(a, b, d)
		v := g.servers[l].partition(replPID).voters.Load()
		if v == nil {
			return false
		}
		got := slices.Clone(*v)
		slices.Sort(got)
		want := []string{a, b, d}
		slices.Sort(want)
		return slices.Equal(got, want)
	})
	poll.Until(t, "d to hold the data", func() bool { return g.hasAll(d, 200) })
	// The new group {a, b, d} commits without c, even with a down too.
	g.stops[a]()
	for i := 200; i < 230; i++ {
		g.put([]string{b, d}, i)
	}
	poll.Until(t, "d to hold the new writes", func() bool { return g.hasAll(d, 230) })
}

// leaseOpen reports whether a server publishes the lease-read shortcut for the partition.
func (g *group) leaseOpen(addr string) bool {
	p := g.servers[addr].partition(replPID)
	return p != nil && p.leaseOpen()
}

// Only the leader publishes the lease-read shortcut, and an old leader has withdrawn it by
// the time its successor leads: a read taking the shortcut there could miss new writes.
func TestLeaseShortcutFollowsLeadership(t *testing.T) {
	g, addrs := newGroup(t, 3)
	a, b, c := addrs[0], addrs[1], addrs[2]
	g.setMembers(a, b, c)
	for i := range 10 {
		g.put(addrs, i)
	}
	poll.Until(t, "a to lead with the shortcut open", func() bool {
		return g.servers[a].partition(replPID).isLeader.Load() && g.leaseOpen(a)
	})
	for _, f := range []string{b, c} {
		if g.leaseOpen(f) {
			t.Fatalf("follower %s publishes the lease shortcut", f)
		}
	}
	// The placement now prefers b: a hands leadership over.
	g.setMembers(b, a, c)
	poll.Until(t, "b to lead", func() bool { return g.servers[b].partition(replPID).isLeader.Load() })
	if g.leaseOpen(a) {
		t.Fatal("the old leader still publishes the lease shortcut after b took over")
	}
	// Reads at the new leader see every write, including one made after the move.
	g.put([]string{b}, 10)
	conn := rpc.NewConn(b, rpc.ConnConfig{})
	defer conn.Close()
	for i := range 11 {
		var resp idl.ReadResponse
		k := key.Encode([]byte(fmt.Sprintf("k%04d", i)), nil)
		blob := idl.Blob(k)
		if err := conn.Call(context.Background(), wire.Header{AppID: replApp}, idl.RPCGet, &blob, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Error != 0 || string(resp.Value) != fmt.Sprint(i) {
			t.Fatalf("get k%04d at the new leader: error %d value %q", i, resp.Error, resp.Value)
		}
	}
	poll.Until(t, "b to open the shortcut", func() bool { return g.leaseOpen(b) })
}

// A learner becomes a voter only once it has answered the leader's appends and is close to
// its commit index: on a short log, a learner that has matched nothing is not "within
// LogKeep/2 of the commit" yet.
func TestLearnerPromotedOnlyOnceCaughtUp(t *testing.T) {
	for _, c := range []struct {
		name   string
		pr     tracker.Progress
		commit uint64
		want   bool
	}{
		{"just added, short log", tracker.Progress{State: tracker.StateProbe, RecentActive: true}, 20, false},
		{"answered nothing yet", tracker.Progress{State: tracker.StateReplicate, RecentActive: true}, 20, false},
		{"receiving a snapshot", tracker.Progress{State: tracker.StateSnapshot, RecentActive: true, Match: 5}, 20, false},
		{"silent", tracker.Progress{State: tracker.StateReplicate, Match: 20}, 20, false},
		{"far behind", tracker.Progress{State: tracker.StateReplicate, RecentActive: true, Match: 100}, 1000, false},
		{"within slack", tracker.Progress{State: tracker.StateReplicate, RecentActive: true, Match: 600}, 1000, true},
		{"caught up", tracker.Progress{State: tracker.StateReplicate, RecentActive: true, Match: 20}, 20, true},
	} {
		if got := caughtUp(c.pr, c.commit, 500); got != c.want {
			t.Errorf("%s: caughtUp = %v, want %v", c.name, got, c.want)
		}
	}
}

// A leader restarted after its group's membership changed reopens with the placement of its
// first open, which lacks the member that joined since; once the meta's current placement
// reaches it, the voters it reports name every member again, so the meta counts them all
// as secondaries.
func TestRestartedLeaderReportsEveryVoter(t *testing.T) {
	g, addrs := newGroup(t, 4)
	a, b, c, d := addrs[0], addrs[1], addrs[2], addrs[3]
	g.setMembers(a, b, c)
	for i := range 20 {
		g.put([]string{a, b, c}, i)
	}
	g.a.mu.Lock()
	g.a.joiners[d] = true
	g.a.mu.Unlock()
	g.setMembers(a, b, d)
	want := []string{a, b, d}
	slices.Sort(want)
	reports := func(addr string) bool {
		p := g.servers[addr].partition(replPID)
		if p == nil || !p.isLeader.Load() {
			return false
		}
		v := p.voters.Load()
		if v == nil {
			return false
		}
		got := slices.Clone(*v)
		slices.Sort(got)
		return slices.Equal(got, want)
	}
	poll.Until(t, "a to lead the group {a, b, d}", func() bool { return reports(a) })
	g.stops[c]()

	// a restarts on its data: its assignment file still says {a, b, c}.
	g.stops[a]()
	g.run(g.dirs[a], a)
	poll.Until(t, "the restarted a to lead and report {a, b, d}", func() bool { return reports(a) })
}
