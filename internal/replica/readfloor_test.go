package replica

import (
	"errors"
	"io"
	"log"
	"log/slog"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/raftgroup"
)

// floorLoop is the loop of a lone voter that leads term 2 and has committed entries up to
// commit (index 1 is the bootstrap's conf change, of term 1; 2 the election's empty entry,
// the first of term 2); the test sets what its store has applied.
func floorLoop(t *testing.T, commit uint64) *loop {
	t.Helper()
	ms := raft.NewMemoryStorage()
	rn, err := raft.NewRawNode(&raft.Config{ID: 1, Storage: ms, ElectionTick: 10, HeartbeatTick: 1,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16, Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rn.Bootstrap([]raft.Peer{{ID: 1}}); err != nil {
		t.Fatal(err)
	}
	persistReady(t, rn, ms)
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	persistReady(t, rn, ms)
	for st := rn.BasicStatus(); st.Commit < commit; st = rn.BasicStatus() {
		if err := rn.Propose([]byte("w")); err != nil {
			t.Fatal(err)
		}
		persistReady(t, rn, ms)
	}
	st := rn.BasicStatus()
	if st.RaftState != raft.StateLeader || st.Term != 2 || st.Commit != commit {
		t.Fatalf("raft: %v term %d commit %d, want the leader of term 2 at commit %d", st.RaftState, st.Term, st.Commit, commit)
	}
	p := &partition{id: 1, s: &Server{cfg: Config{TickInterval: 10 * time.Millisecond}}, lg: slog.New(slog.DiscardHandler),
		readC: make(chan *readWait), done: make(chan struct{})}
	p.isLeader.Store(true)
	l := &loop{p: p, rn: rn, ms: ms, lead: 1, reads: raftgroup.NewWaiters[[]*readWait]()}
	l.conf.Reset(raftpb.ConfState{Voters: []uint64{1}})
	return l
}

// A leader whose store lags its commit index (a backlog of committed writes not yet
// applied, none of them acknowledged) serves reads as soon as it has applied the first
// entry of its term, with the lease shortcut and through its loop alike, not once it has
// applied everything committed; before that, reads wait for it.
func TestReadsServedAtTheTermFloor(t *testing.T) {
	const floor, commit = 2, 20
	l := floorLoop(t, commit)
	p := l.p

	// The store has not reached the floor: the loop's reads wait, the shortcut is closed.
	p.applied.Store(floor - 1)
	l.publishLease()
	if got := p.leaseFloor.Load(); got != floor {
		t.Fatalf("published read floor %d, want %d (the first index of the term, not the commit %d)", got, floor, commit)
	}
	if p.shortcutOpen() {
		t.Fatal("the shortcut is open before the store applied the term's floor")
	}
	early := &readWait{done: make(chan error, 1), deadline: time.Now().Add(time.Hour)}
	l.readIndex(early)
	select {
	case err := <-early.done:
		t.Fatalf("a read before the floor was applied answered %v", err)
	default:
	}

	// The floor applied, the rest of the commit index not: every read is served.
	p.applied.Store(floor)
	l.releaseReads()
	select {
	case err := <-early.done:
		if err != nil {
			t.Fatalf("the waiting read: %v", err)
		}
	default:
		t.Fatal("the read waiting for the floor was not answered once it was applied")
	}
	late := &readWait{done: make(chan error, 1), deadline: time.Now().Add(time.Hour)}
	l.readIndex(late)
	select {
	case err := <-late.done:
		if err != nil {
			t.Fatalf("a read through the loop: %v", err)
		}
	default:
		t.Fatalf("a read through the loop waits with the store at %d of %d, past the floor %d", floor, commit, floor)
	}
	l.publishLease()
	if !p.shortcutOpen() {
		t.Fatal("the shortcut is closed with the floor applied")
	}
	// No loop receives p.readC: a read that went to it would fail with errReadExpired.
	if err := p.readBarrier(t.Context(), 50*time.Millisecond); err != nil {
		t.Fatalf("a shortcut read behind the apply backlog: %v", err)
	}

	// The floor stays the term's first index while the commit index moves on.
	persist(t, l, []byte("w"))
	l.publishLease()
	if got := p.leaseFloor.Load(); got != floor {
		t.Fatalf("the floor moved to %d", got)
	}

	// A split's cut-over of this term, once staged, raises the floor to its index: reads
	// wait for it to be applied, whose effect (the child's half refused) they must see.
	cut := persist(t, l, []byte{controlVersion, controlSplit, 0, 0, 0, 2})
	l.noteControl(cut)
	at := cut[0].Index
	if got := p.leaseFloor.Load(); got != at {
		t.Fatalf("floor %d after a cut-over staged at %d", got, at)
	}
	if p.shortcutOpen() {
		t.Fatal("the shortcut is open before the cut-over was applied")
	}
	behind := &readWait{done: make(chan error, 1), deadline: time.Now().Add(time.Hour)}
	l.readIndex(behind)
	p.applied.Store(at - 1)
	l.releaseReads()
	select {
	case err := <-behind.done:
		t.Fatalf("a read answered before the cut-over was applied: %v", err)
	default:
	}
	p.applied.Store(at)
	l.releaseReads()
	if err := <-behind.done; err != nil {
		t.Fatalf("the read behind the cut-over: %v", err)
	}
	l.publishLease()
	if got := p.leaseFloor.Load(); got != at || !p.shortcutOpen() {
		t.Fatalf("floor %d (want %d), shortcut open %v, with the cut-over applied", got, at, p.shortcutOpen())
	}
}

// persist proposes data to the test's raft node and makes it durable and committed, as
// floorLoop does; it returns the entries appended.
func persist(t *testing.T, l *loop, data []byte) []raftpb.Entry {
	t.Helper()
	if err := l.rn.Propose(data); err != nil {
		t.Fatal(err)
	}
	var appended []raftpb.Entry
	for l.rn.HasReady() {
		rd := l.rn.Ready()
		if err := l.ms.Append(rd.Entries); err != nil {
			t.Fatal(err)
		}
		appended = append(appended, rd.Entries...)
		if !raft.IsEmptyHardState(rd.HardState) {
			if err := l.ms.SetHardState(rd.HardState); err != nil {
				t.Fatal(err)
			}
		}
		l.rn.Advance(rd)
	}
	return appended
}

// A shortcut read needs an open lease and a floor: with either missing, the read goes to the
// loop (here, a loop that does not answer: the read fails within its timeout).
func TestShortcutNeedsLeaseAndFloor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		floor uint64
		open  bool
	}{
		{"no floor", 0, true},
		{"lease closed", 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &partition{s: &Server{cfg: Config{TickInterval: 10 * time.Millisecond}}, lg: slog.New(slog.DiscardHandler),
				readC: make(chan *readWait, 1), done: make(chan struct{})}
			p.isLeader.Store(true)
			p.applied.Store(10)
			p.leaseFloor.Store(tc.floor)
			if tc.open {
				p.leaseUntil.Store(int64(time.Since(epoch) + time.Hour))
			}
			if err := p.readBarrier(t.Context(), 20*time.Millisecond); !errors.Is(err, errReadExpired) {
				t.Fatalf("read: %v, want %v from the loop that does not answer", err, errReadExpired)
			}
		})
	}
}

// After a stall of its loop, a leader trusts its lease again once a quorum has answered
// heartbeats it sent since (they carry the stall's epoch), not on answers handled late
// (queued while it stood still) nor on answers to heartbeats of an earlier stall.
func TestStallConfirmedByLaterHeartbeats(t *testing.T) {
	ms := raft.NewMemoryStorage()
	rn, err := raft.NewRawNode(&raft.Config{ID: 1, Storage: ms, ElectionTick: 10, HeartbeatTick: 1,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 16, Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rn.Bootstrap([]raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}); err != nil {
		t.Fatal(err)
	}
	persistReady(t, rn, ms)
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	persistReady(t, rn, ms) // the vote for itself
	term := rn.BasicStatus().Term
	if err := rn.Step(raftpb.Message{From: 2, To: 1, Type: raftpb.MsgVoteResp, Term: term}); err != nil {
		t.Fatal(err)
	}
	if st := rn.BasicStatus(); st.RaftState != raft.StateLeader {
		t.Fatalf("raft: %v, want the leader", st.RaftState)
	}
	// Election timeout 10 s: the test's own pauses are never a stall.
	p := &partition{id: 1, s: &Server{cfg: Config{TickInterval: time.Second}}, lg: slog.New(slog.DiscardHandler)}
	l := &loop{p: p, rn: rn, ms: ms, lead: 1}
	l.conf.Reset(raftpb.ConfState{Voters: []uint64{1, 2, 3}})
	answer := func(from uint64, typ raftpb.MessageType, ctx []byte) {
		l.noteHeard(&raftpb.Message{From: from, To: 1, Type: typ, Term: term, Context: ctx}, time.Now())
	}
	beat := func() []byte {
		m := raftpb.Message{From: 1, To: 2, Type: raftpb.MsgHeartbeat, Term: term}
		l.markStallEpoch(&m)
		return m.Context
	}

	answer(2, raftpb.MsgAppResp, nil)
	if l.leaseSuspended() {
		t.Fatal("the lease is suspended with a quorum heard and no stall")
	}
	if ctx := beat(); ctx != nil {
		t.Fatalf("a heartbeat outside a stall carries context %q", ctx)
	}

	stall := func() {
		l.lastIteration = time.Now().Add(-5 * time.Second)
		if !l.leaseSuspended() {
			t.Fatal("the lease holds right after a stall")
		}
	}
	stall()
	first := beat() // sent after the stall
	// Answers handled after the stall, to heartbeats and appends sent before it.
	answer(2, raftpb.MsgAppResp, nil)
	answer(3, raftpb.MsgHeartbeatResp, nil)
	if !l.leaseSuspended() {
		t.Fatal("the lease holds on answers to messages sent before the stall")
	}
	// Another stall: the answer to the heartbeat sent after the first does not confirm it.
	stall()
	answer(2, raftpb.MsgHeartbeatResp, first)
	if !l.leaseSuspended() {
		t.Fatal("the lease holds on an answer to a heartbeat sent before the last stall")
	}
	answer(3, raftpb.MsgHeartbeatResp, beat())
	if l.leaseSuspended() {
		t.Fatal("the lease is still suspended with a quorum's answers to heartbeats sent after the stall")
	}
	// Confirmed: answers count as before.
	if ctx := beat(); ctx != nil {
		t.Fatalf("a heartbeat after the confirmation carries context %q", ctx)
	}
	answer(2, raftpb.MsgAppResp, nil)
	if l.leaseSuspended() {
		t.Fatal("the lease is suspended after the confirmation")
	}
}

// persistReady makes everything rn has ready durable in ms, applying its conf changes.
func persistReady(t *testing.T, rn *raft.RawNode, ms *raft.MemoryStorage) {
	t.Helper()
	for rn.HasReady() {
		rd := rn.Ready()
		if err := ms.Append(rd.Entries); err != nil {
			t.Fatal(err)
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			if err := ms.SetHardState(rd.HardState); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range rd.CommittedEntries {
			if e.Type == raftpb.EntryConfChange {
				var cc raftpb.ConfChange
				if err := cc.Unmarshal(e.Data); err != nil {
					t.Fatal(err)
				}
				rn.ApplyConfChange(cc)
			}
		}
		rn.Advance(rd)
	}
}
