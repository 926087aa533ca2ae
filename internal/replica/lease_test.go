package replica

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/raftgroup"
)

// A leader cut off from its followers (a network partition; its clients still reach it)
// stops serving lease reads within half an election timeout, although raft's CheckQuorum
// lets it believe it leads for up to two: by then its followers may have elected another
// leader and committed writes it does not have. Its reads wait instead, and fail once it
// steps down. Raft ticks of 100 ms here, so that the time between the lease's end (0.5 s)
// and the earliest step-down (1 s) is wide enough for a loaded machine.
func TestCutOffLeaderStopsLeaseReads(t *testing.T) {
	const tick = 100 * time.Millisecond
	et := raftgroup.ElectionTicks * tick
	a, meta := startAssigner(t)
	a.joiners = map[string]bool{}
	g := &group{t: t, a: a, meta: meta, servers: map[string]*Server{}, stops: map[string]func(){}, dirs: map[string]string{}}
	var addrs []string
	for range 3 {
		s, _ := runReplicaCfg(t, Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Metas: []string{meta}, TickInterval: tick})
		g.servers[s.Addr()] = s
		addrs = append(addrs, s.Addr())
	}
	g.setMembers(addrs...)
	g.put(addrs, 0)
	leader := g.leader(addrs...)
	p := g.servers[leader].partition(replPID)
	poll.Until(t, "the leader's lease shortcut", func() bool { return g.leaseOpen(leader) })

	g.servers[leader].cutOff.Store(true)
	cut := time.Now()
	time.Sleep(et/2 + 2*tick)
	ctx, cancel := context.WithTimeout(t.Context(), 2*tick)
	err := p.readBarrier(ctx, 0)
	cancel()
	stillLeads := p.isLeader.Load()
	if err == nil {
		t.Fatalf("the leader, cut off %v ago and leading: %v, served a lease read", time.Since(cut).Round(time.Millisecond), stillLeads)
	}
	if !stillLeads {
		t.Logf("the leader stepped down already, %v after the cut (a loaded machine): the read was refused (%v)", time.Since(cut), err)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read at the cut-off leader: %v, want it held until it steps down", err)
	}
	if g.leaseOpen(leader) {
		t.Fatal("the cut-off leader still publishes its lease shortcut")
	}

	// A read held there fails once it steps down; the others elect a leader meanwhile.
	ctx, cancel = context.WithTimeout(t.Context(), 10*et)
	defer cancel()
	if err := p.readBarrier(ctx, 0); !errors.Is(err, errNotLeader) {
		t.Fatalf("read held at the cut-off leader: %v, want %v once it steps down", err, errNotLeader)
	}
	var others []string
	for _, s := range addrs {
		if s != leader {
			others = append(others, s)
		}
	}
	g.put(others, 1)

	// Back in touch, it follows the new leader, and the group serves lease reads again.
	g.servers[leader].cutOff.Store(false)
	now := g.leader(addrs...)
	poll.Until(t, "the lease shortcut at "+now, func() bool { return g.leaseOpen(now) })
	poll.Until(t, "the old leader to catch up", func() bool { return g.hasAll(leader, 2) })
}
