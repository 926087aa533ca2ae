package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/raftgroup"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// newQuiesceGroup starts n replica servers with raft ticks of tick and quiescence on or
// off; restarts (g.run) keep both.
func newQuiesceGroup(t testing.TB, n int, tick time.Duration, quiesce bool) (*group, []string) {
	a, meta := startAssigner(t)
	a.joiners = map[string]bool{}
	g := &group{t: t, a: a, meta: meta, servers: map[string]*Server{}, stops: map[string]func(){}, dirs: map[string]string{}}
	g.settings = func() Config {
		st := NewSettings()
		if err := st.Registry().Set("quiesce", strconv.FormatBool(quiesce)); err != nil {
			t.Fatal(err)
		}
		return Config{TickInterval: tick, Settings: st, LogCompactEvery: 50, LogKeep: 10}
	}
	var addrs []string
	for range n {
		dir := t.TempDir()
		s, _ := g.run(dir, "127.0.0.1:0")
		addrs = append(addrs, s.Addr())
		g.dirs[s.Addr()] = dir
	}
	return g, addrs
}

// quiet reports whether the replica at addr has quiesced.
func (g *group) quiet(addr string) bool {
	p := g.servers[addr].partition(replPID)
	return p != nil && p.quiesce.quiet.Load() != ticking
}

func (g *group) allQuiet(addrs ...string) bool {
	for _, a := range addrs {
		if !g.quiet(a) {
			return false
		}
	}
	return true
}

func (g *group) ticks(addr string) int64 {
	return g.servers[addr].partition(replPID).quiesce.ticks.Load()
}

// get reads key i at addr and returns its value.
func (g *group) get(addr string, i int) (string, error) {
	conn := rpc.NewConn(addr, rpc.ConnConfig{})
	defer conn.Close()
	blob := idl.Blob(key.Encode([]byte(fmt.Sprintf("k%04d", i)), nil))
	var resp idl.ReadResponse
	if err := conn.Call(g.t.Context(), wire.Header{AppID: replApp}, idl.RPCGet, &blob, &resp); err != nil {
		return "", err
	}
	if resp.Error != 0 {
		return "", fmt.Errorf("error %d", resp.Error)
	}
	return string(resp.Value), nil
}

// An idle group quiesces: its leader and followers stop ticking (their tick counts stand
// still) and exchange no raft message. A write wakes it and is acknowledged, a read after it
// sees it, and the group quiesces again.
func TestIdleGroupQuiesces(t *testing.T) {
	g, addrs := newQuiesceGroup(t, 3, 10*time.Millisecond, true)
	g.setMembers(addrs...)
	g.put(addrs, 0)
	poll.Until(t, "every replica to quiesce", func() bool { return g.allQuiet(addrs...) })
	leader := g.leader(addrs...)
	if leader != addrs[0] {
		t.Fatalf("quiesced under %s, not the preferred member %s", leader, addrs[0])
	}
	before := map[string]int64{}
	msgs := map[string]int64{}
	for _, a := range addrs {
		before[a] = g.ticks(a)
		msgs[a] = g.servers[a].transport.Metrics().MessagesSent
	}
	time.Sleep(50 * 10 * time.Millisecond) // 5 election timeouts
	for _, a := range addrs {
		if !g.quiet(a) {
			t.Fatalf("%s woke while idle", a)
		}
		if n := g.ticks(a) - before[a]; n != 0 {
			t.Errorf("%s ticked %d times while quiesced", a, n)
		}
	}
	// Only the leader's server pings (one message per follower server and tick); the
	// followers' servers send nothing.
	for _, a := range addrs[1:] {
		if n := g.servers[a].transport.Metrics().MessagesSent - msgs[a]; n != 0 {
			t.Errorf("follower server %s sent %d raft messages while quiesced", a, n)
		}
	}
	if n, _ := g.servers[leader].QuiescedGroups(); n != 1 {
		t.Errorf("QuiescedGroups at the leader: %d, want 1", n)
	}

	// A write on the quiesced group is acknowledged, and read back at once at the leader.
	g.put(addrs, 1)
	if v, err := g.get(leader, 1); err != nil || v != "1" {
		t.Fatalf("read after the write on the quiesced group: %q, %v", v, err)
	}
	for _, a := range addrs {
		if g.servers[a].partition(replPID).quiesce.wakes.Load() == 0 {
			t.Errorf("%s did not wake for the write", a)
		}
	}
	poll.Until(t, "the group to quiesce again", func() bool { return g.allQuiet(addrs...) })
	// A read alone wakes it too, and is served (linearizable: it waits for the leadership
	// to be confirmed, see checkStall).
	if v, err := g.get(leader, 0); err != nil || v != "0" {
		t.Fatalf("read on the quiesced group: %q, %v", v, err)
	}
	if g.quiet(leader) {
		t.Error("the leader did not wake for a read")
	}
	for _, a := range addrs {
		poll.Until(t, a+" to hold both writes", func() bool { return g.hasAll(a, 2) })
	}
}

// A read on a quiesced group at the leader sees a write acknowledged through another
// replica's forward just before: every acknowledged write is visible.
func TestQuiescedGroupReadsAreLinearizable(t *testing.T) {
	g, addrs := newQuiesceGroup(t, 3, 10*time.Millisecond, true)
	g.setMembers(addrs...)
	g.put(addrs, 0)
	for i := 1; i <= 5; i++ {
		poll.Until(t, "the group to quiesce", func() bool { return g.allQuiet(addrs...) })
		g.put(addrs, i)
		for _, a := range addrs {
			// Through a follower, the read is forwarded to the leader.
			if v, err := g.get(a, i); err != nil || v != strconv.Itoa(i) {
				t.Fatalf("read of write %d at %s right after it: %q, %v", i, a, v, err)
			}
		}
	}
}

// failover measures, on a quiesced group (or an idle ticking one), the time from the
// leader's crash (its server stops answering at once: cut off, then closed, so it sends no
// goodbye) to a new leader among the others.
func failover(t testing.TB, g *group, addrs []string, quiesce bool) time.Duration {
	g.setMembers(addrs...)
	g.put(addrs, 0)
	if quiesce {
		poll.Until(g.t, "every replica to quiesce", func() bool { return g.allQuiet(addrs...) })
	} else {
		time.Sleep(3 * raftgroup.ElectionTicks * g.servers[addrs[0]].cfg.TickInterval)
	}
	leader := g.leader(addrs...)
	var others []string
	for _, a := range addrs {
		if a != leader {
			others = append(others, a)
		}
	}
	start := time.Now()
	g.servers[leader].CutOffPeers(true)
	g.stops[leader]()
	g.leader(others...)
	took := time.Since(start)
	g.put(others, 1)
	return took
}

// The crash of a quiesced leader's server leads to a new leader: the followers' servers no
// longer hear it, and the followers wake and elect. The time is logged next to an idle
// ticking group's (BenchmarkQuiescedFailover measures both).
func TestQuiescedLeaderCrashFailsOver(t *testing.T) {
	const tick = 20 * time.Millisecond
	for _, quiesce := range []bool{true, false} {
		t.Run(fmt.Sprintf("quiesce=%v", quiesce), func(t *testing.T) {
			g, addrs := newQuiesceGroup(t, 3, tick, quiesce)
			took := failover(t, g, addrs, quiesce)
			t.Logf("new leader %v after the crash (%.1f election timeouts)", took.Round(time.Millisecond),
				float64(took)/float64(raftgroup.ElectionTicks*tick))
		})
	}
}

// A graceful stop of a quiesced leader's server (its loops end while the server still
// answers pings for a moment) wakes the followers, which elect another leader.
func TestQuiescedLeaderStopFailsOver(t *testing.T) {
	g, addrs := newQuiesceGroup(t, 3, 10*time.Millisecond, true)
	g.setMembers(addrs...)
	g.put(addrs, 0)
	poll.Until(t, "every replica to quiesce", func() bool { return g.allQuiet(addrs...) })
	leader := g.leader(addrs...)
	g.stops[leader]()
	g.put(addrs[1:], 1)
}

// BenchmarkQuiescedFailover measures the failover time after the leader's crash, with the
// group quiesced and with quiescence off (an idle ticking group), with the default 100 ms
// raft tick: ms/failover, and et/failover in election timeouts.
func BenchmarkQuiescedFailover(b *testing.B) {
	const tick = DefaultTickInterval
	for _, quiesce := range []bool{true, false} {
		b.Run(fmt.Sprintf("quiesce=%v", quiesce), func(b *testing.B) {
			var total time.Duration
			for range b.N {
				g, addrs := newQuiesceGroup(b, 3, tick, quiesce)
				total += failover(b, g, addrs, quiesce)
				for _, stop := range g.stops {
					stop()
				}
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/failover")
			b.ReportMetric(float64(total)/float64(b.N)/float64(raftgroup.ElectionTicks*tick), "et/failover")
		})
	}
}

// A quiesced leader cut off from its followers (its clients still reach it) serves no lease
// read once half an election timeout has passed since its quorum last answered (when it
// quiesced): its followers elect another leader, which takes writes, and a read at the old
// leader waits and fails (it steps down) rather than missing them.
func TestCutOffQuiescedLeaderServesNoStaleRead(t *testing.T) {
	const tick = 100 * time.Millisecond
	et := raftgroup.ElectionTicks * tick
	g, addrs := newQuiesceGroup(t, 3, tick, true)
	g.setMembers(addrs...)
	g.put(addrs, 0)
	poll.Until(t, "every replica to quiesce", func() bool { return g.allQuiet(addrs...) })
	leader := g.leader(addrs...)
	p := g.servers[leader].partition(replPID)

	g.servers[leader].CutOffPeers(true)
	time.Sleep(et/2 + 2*tick)
	ctx, cancel := context.WithTimeout(t.Context(), 2*tick)
	err := p.readBarrier(ctx, 0)
	cancel()
	if err == nil {
		t.Fatal("the quiesced leader, cut off, served a lease read")
	}
	// The others elect a leader (their servers stop hearing the old leader's) and write.
	others := addrs[1:]
	g.put(others, 1)
	ctx, cancel = context.WithTimeout(t.Context(), 10*et)
	defer cancel()
	if err := p.readBarrier(ctx, 0); !errors.Is(err, errNotLeader) {
		t.Fatalf("read at the cut-off old leader after the new leader's write: %v, want %v", err, errNotLeader)
	}
	g.servers[leader].CutOffPeers(false)
	poll.Until(t, "the old leader to catch up", func() bool { return g.hasAll(leader, 2) })
	poll.Until(t, "the group to quiesce again", func() bool { return g.allQuiet(addrs...) })
}

// A follower of a quiesced group that restarts ticks (it heard no quiesce heartbeat), and
// its pre-vote wakes the quiesced leader, which keeps leading and takes it back: the group
// quiesces again with the restarted follower (which only a new quiesce heartbeat of the
// leader quiesces), and a write then reaches it.
func TestRestartedFollowerOfQuiescedGroup(t *testing.T) {
	g, addrs := newQuiesceGroup(t, 3, 10*time.Millisecond, true)
	g.setMembers(addrs...)
	g.put(addrs, 0)
	poll.Until(t, "every replica to quiesce", func() bool { return g.allQuiet(addrs...) })
	leader := g.leader(addrs...)
	f := addrs[2]
	g.stops[f]()
	wakes := g.servers[leader].partition(replPID).quiesce.wakes.Load()
	g.run(g.dirs[f], f)
	poll.Until(t, "the group to quiesce again with the restarted follower", func() bool { return g.allQuiet(addrs...) })
	if g.servers[leader].partition(replPID).quiesce.wakes.Load() == wakes {
		t.Error("the leader did not wake for the restarted follower")
	}
	if l := g.leader(addrs...); l != leader {
		t.Errorf("leader %s after the follower's restart, want %s still", l, leader)
	}
	g.put(addrs, 1)
	poll.Until(t, "the restarted follower to get the write", func() bool { return g.hasAll(f, 2) })
}

// BenchmarkLivenessRound is one round of the liveness (every tick) on a server hosting
// 1,600 quiesced replicas of 25 tables: a third led here, the rest following a leader on
// one of two other servers, heard just now.
func BenchmarkLivenessRound(b *testing.B) {
	servers := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	s := &Server{addr: servers[0], parts: map[idl.GPID]*partition{}}
	s.cfg.TickInterval = 100 * time.Millisecond
	s.cutOff.Store(true) // the round builds its pings but sends none
	now := time.Now()
	for _, addr := range servers[1:] {
		s.live.noteHeard(addr, now.UnixNano())
	}
	for i := range 1600 {
		pid := idl.GPID{AppID: int32(2 + i/64), PartitionIndex: int32(i % 64)}
		p := &partition{s: s, pid: pid}
		p.quiesce.pokeC = make(chan struct{}, 1)
		members := slices.Clone(servers)
		ti := &tableInfo{members: members, addrs: map[uint64]string{}}
		for _, m := range members {
			ti.addrs[cluster.MemberID(m)] = m
		}
		p.info.Store(ti)
		if lead := servers[i%3]; lead == s.addr {
			p.setQuiet(quietLeader)
		} else {
			p.setQuiet(quietFollower)
			p.quiesce.watchSince.Store(now.UnixNano())
			p.setWatch(cluster.MemberID(lead))
		}
		s.parts[pid] = p
	}
	if got := len(s.quiet.pings); got != 2 {
		b.Fatalf("the liveness pings %d servers, want the 2 peers", got)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.livenessOnce(now)
	}
	for _, p := range s.parts {
		if p.quiesce.leaderLost.Load() {
			b.Fatalf("%v: its leader, heard just now, reported lost", p.pid)
		}
	}
}

// TestLivenessIndex: the liveness pings the peers of the leaders quiesced here, only while
// they are, and gives its verdict on a watched leader whose server went unheard for an
// election timeout, only to the replicas that watch it.
func TestLivenessIndex(t *testing.T) {
	servers := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	s := &Server{addr: servers[0], parts: map[idl.GPID]*partition{}}
	s.cfg.TickInterval = 100 * time.Millisecond
	newPart := func(i int32) *partition {
		p := &partition{s: s, pid: idl.GPID{AppID: 2, PartitionIndex: i}}
		p.quiesce.pokeC = make(chan struct{}, 1)
		ti := &tableInfo{members: slices.Clone(servers), addrs: map[uint64]string{}}
		for _, m := range servers {
			ti.addrs[cluster.MemberID(m)] = m
		}
		p.info.Store(ti)
		return p
	}
	leader, f2, f3 := newPart(0), newPart(1), newPart(2)
	leader.setQuiet(quietLeader)
	if len(s.quiet.pings) != 2 || s.quiet.pings[servers[1]] != 1 {
		t.Fatalf("pings %v, want both peers once", s.quiet.pings)
	}
	leader.setQuiet(ticking)
	if len(s.quiet.pings) != 0 {
		t.Fatalf("pings %v after the leader woke, want none", s.quiet.pings)
	}
	start := time.Now()
	for _, p := range []*partition{f2, f3} {
		p.setQuiet(quietFollower)
		p.quiesce.watchSince.Store(start.UnixNano())
	}
	f2.setWatch(cluster.MemberID(servers[1]))
	f3.setWatch(cluster.MemberID(servers[2]))
	s.live.noteHeard(servers[1], start.UnixNano())
	s.live.noteHeard(servers[2], start.UnixNano())
	s.livenessOnce(start.Add(500 * time.Millisecond))
	if f2.quiesce.leaderLost.Load() || f3.quiesce.leaderLost.Load() {
		t.Fatal("a leader heard half an election timeout ago reported lost")
	}
	later := start.Add(1500 * time.Millisecond)
	s.live.noteHeard(servers[2], later.UnixNano())
	s.livenessOnce(later)
	if !f2.quiesce.leaderLost.Load() || f3.quiesce.leaderLost.Load() {
		t.Fatalf("lost: f2 %v (its leader unheard 1.5 s), f3 %v (heard now); want true, false",
			f2.quiesce.leaderLost.Load(), f3.quiesce.leaderLost.Load())
	}
	f2.quiesce.leaderLost.Store(false)
	f2.setWatch(0)
	s.livenessOnce(later)
	if f2.quiesce.leaderLost.Load() || len(s.quiet.watchers) != 1 {
		t.Fatalf("after the watch ended: lost %v, %d servers watched; want false, 1", f2.quiesce.leaderLost.Load(), len(s.quiet.watchers))
	}
}
