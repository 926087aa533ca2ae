package replica

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/raftgroup"
)

// Quiescence: an idle raft group stops ticking and heartbeating, so that a server hosting
// hundreds of idle partitions costs almost nothing (setting [replication] quiesce).
//
// The leader quiesces its group once it has been idle for quiesceAfter ticks (no proposal,
// no read, through the loop or the lease shortcut, no message but heartbeats and their
// answers) and everything is settled (see settled): every voter holds the whole log, all of
// it committed and applied here, the membership is what the meta placed, nothing is being
// transferred, copied, shipped or held. It marks its last heartbeats (quiesceMark in their
// context, which followers echo and a lease-based leader ignores) and stops its ticker: its
// loop sleeps in select. A follower that gets a marked heartbeat from its leader, with its
// log caught up to the leader's commit and applied, stops its ticker too.
//
// Anything else wakes the group: a proposal, a read, a transfer, a snapshot, a split or
// membership order from the meta (setTable pokes the loop), any raft message but the
// quiesce heartbeat (and, at the leader, the answers to it). A woken leader heartbeats at
// once. Its lease rules do not change: its quorum was last heard when it quiesced, so it
// serves no lease read until a quorum answers again, and the gap in its loop counts as a
// stall (checkStall): the first read waits for an empty entry to commit.
//
// Failure detection without ticks: every tick, a server pings (a message of livenessGroup
// on the raft transport) the servers that follow the groups it leads quiesced; any frame
// from a server counts as hearing it. A follower that quiesced under a leader watches that
// leader's server until it hears from the leader again (watchLead): once the server has
// not been heard for an election timeout, the follower wakes and fast-forwards its election
// clock by an election timeout, so that it campaigns (and grants votes) as soon as it
// would have had it kept ticking without heartbeats. Its refusal to vote while the leader
// may still hold its lease is kept: the leader's last frame reached it less than an
// election timeout ago. A follower that restarted ticks and campaigns as usual; its
// pre-vote wakes the quiesced leader, which then heartbeats again.

// quiesceAfter is how many ticks a leader's group must be idle before it quiesces: three
// election timeouts.
const quiesceAfter = 3 * raftgroup.ElectionTicks

// quiesceMark is the context of a leader's last heartbeats before it quiesces.
var quiesceMark = []byte("quiesce")

// livenessGroup is the group id of the servers' liveness pings on the raft transport; no
// table has it.
var livenessGroup = idl.GPID{AppID: -1, PartitionIndex: -1}

// What a partition's loop does about quiescence, as the server's liveness sees it
// (partition.quiet).
const (
	ticking int32 = iota
	quietLeader
	quietFollower
)

// quiesceState is a partition's quiescence, shared between its loop and the server.
type quiesceState struct {
	quiet atomic.Int32
	// watchLead is the raft id of the leader a follower quiesced under, until it hears
	// from that leader again (0: none), and watchSince when it began to watch; leaderLost
	// is set by the liveness when the leader's server went unheard for an election timeout.
	watchLead  atomic.Uint64
	watchSince atomic.Int64
	leaderLost atomic.Bool
	// peers are the servers of a quiesced leader's followers, which the liveness pings
	// (taken from the placement as the group quiesces: a change of placement wakes it),
	// and watched, while watchLead is not 0, the address of its leader's server; both as
	// the server's quietIndex holds them (guarded by its mutex).
	peers   []string
	watched string
	// pokeC wakes the loop to look at the table again or at leaderLost.
	pokeC chan struct{}
	// shortcutReads counts the reads served by the lease shortcut, which the loop does not
	// see otherwise.
	shortcutReads atomic.Uint64
	ticks, wakes  atomic.Int64
}

// poke makes the loop run an iteration (and wake, if quiesced).
func (q *quiesceState) poke() {
	select {
	case q.pokeC <- struct{}{}:
	default:
	}
}

// loopQuiet is the loop's own quiescence state (loop goroutine only).
type loopQuiet struct {
	ticker *time.Ticker
	tick   time.Duration
	tickC  <-chan time.Time
	// quiesced: the ticker is stopped. idle counts the ticks without activity (leader).
	quiesced bool
	idle     int
	reads    uint64 // shortcutReads as last seen
	// offer is a quiesce heartbeat from the leader, to act on once its Ready is handled.
	offer *raftpb.Message
}

// busy notes activity: the group is not idle, and wakes if it was quiesced.
func (l *loop) busy() {
	l.q.idle = 0
	if l.q.quiesced {
		l.wake()
	}
}

// wake restarts the ticker; a leader heartbeats at once.
func (l *loop) wake() {
	p := l.p
	l.q.quiesced = false
	l.q.idle = 0
	l.q.offer = nil
	p.setQuiet(ticking)
	p.quiesce.wakes.Add(1)
	l.q.ticker.Reset(l.q.tick)
	l.q.tickC = l.q.ticker.C
	if l.lead == p.id && l.rn.BasicStatus().RaftState == raft.StateLeader {
		l.rn.Tick() // a heartbeat to every follower (HeartbeatTick is 1)
	}
}

// stopTicking stops the ticker as the group quiesces with this replica in role.
func (l *loop) stopTicking(role int32) {
	l.q.quiesced = true
	l.q.offer = nil
	l.q.ticker.Stop()
	l.q.tickC = nil
	l.p.setQuiet(role)
}

// noteMessage classifies a peer's message before raft steps it: a message that is not part
// of a settled group's heartbeats wakes the group; a quiesce heartbeat from the leader is
// offered to the follower.
func (l *loop) noteMessage(m *raftpb.Message) {
	p := l.p
	if m.From == l.lead && m.From != 0 && p.quiesce.watchLead.Load() == m.From {
		p.setWatch(0) // the leader is heard again
		p.quiesce.leaderLost.Store(false)
	}
	if (m.Type == raftpb.MsgPreVote || m.Type == raftpb.MsgVote) && p.leaderUnheard(time.Now()) {
		// Another member lost the leader too: this one need not wait for its server's next
		// liveness round to tell the same, and to grant its vote.
		p.quiesce.leaderLost.Store(true)
		l.checkLeaderLost()
	}
	marked := m.Type == raftpb.MsgHeartbeat && bytes.Equal(m.Context, quiesceMark)
	heartbeat := m.Type == raftpb.MsgHeartbeat || m.Type == raftpb.MsgHeartbeatResp
	if !heartbeat {
		l.q.idle = 0
	}
	if !p.s.quiesce {
		return
	}
	if l.q.quiesced {
		st := l.rn.BasicStatus()
		keep := m.Term == st.Term && (st.RaftState == raft.StateLeader && m.Type == raftpb.MsgHeartbeatResp ||
			st.RaftState == raft.StateFollower && marked && m.From == l.lead)
		if !keep {
			l.wake()
		}
		return
	}
	if marked {
		l.q.offer = m
	} else {
		l.q.offer = nil // something came after it: the group is not settled
	}
}

// considerOffer quiesces a follower that got its leader's quiesce heartbeat, once raft
// handled it, if its log is the leader's and applied.
func (l *loop) considerOffer() {
	m := l.q.offer
	l.q.offer = nil
	p := l.p
	st := l.rn.BasicStatus()
	if st.RaftState != raft.StateFollower || st.Lead != m.From || m.From != l.lead || st.Term != m.Term {
		return
	}
	last, err := l.ms.LastIndex()
	if err != nil || st.Commit != m.Commit || last != m.Commit || l.staged != last || p.applied.Load() < last {
		return
	}
	if !l.quietLocally() {
		return
	}
	p.quiesce.watchSince.Store(time.Now().UnixNano())
	p.quiesce.leaderLost.Store(false)
	p.setWatch(m.From)
	l.stopTicking(quietFollower)
}

// quietLocally reports whether nothing of this replica's own waits for the loop's time.
// Proposed writes and read indexes need no check of their own: with the whole log committed
// and applied, every proposal was answered, and lease-based read indexes are answered in
// the Ready that follows them (readyAt).
func (l *loop) quietLocally() bool {
	return len(l.appends) == 0 && l.pendingSnap == nil && len(l.sending) == 0 && len(l.toSend) == 0 &&
		l.split == nil && !l.splitCheckpointing && l.p.table().split == nil &&
		l.orphans == nil && len(l.heldReads) == 0 && len(l.readyAt) == 0 &&
		l.handover == nil && !l.confirming &&
		(l.startUntil.IsZero() || time.Now().After(l.startUntil))
}

// maybeQuiesce, on the leader's tick, counts the idle ticks and quiesces the group once it
// has been idle long enough and is settled. The heartbeats of this tick go out marked.
func (l *loop) maybeQuiesce() {
	p := l.p
	if !p.s.quiesce || l.q.quiesced || l.lead != p.id {
		l.q.idle = 0
		return
	}
	if n := p.quiesce.shortcutReads.Load(); n != l.q.reads {
		l.q.reads = n
		l.q.idle = 0
		return
	}
	if l.q.idle++; l.q.idle < quiesceAfter || !l.settled() {
		return
	}
	l.stopTicking(quietLeader)
}

// settled reports whether the leader's group may quiesce: every voter holds the whole log,
// committed and applied here, the configuration is the placement's with no learner and no
// change under way, no transfer of leadership or snapshot is under way, and nothing waits.
func (l *loop) settled() bool {
	p := l.p
	st := l.rn.Status()
	if st.RaftState != raft.StateLeader || st.LeadTransferee != 0 || l.confPending {
		return false
	}
	if st.Term == l.transferTerm && time.Since(l.transferStarted) < 3*l.electionTimeout() {
		return false
	}
	last, err := l.ms.LastIndex()
	if err != nil || st.Commit != last || l.staged != last || p.applied.Load() < last {
		return false
	}
	cs := l.conf.Current()
	if len(cs.Learners) > 0 || len(cs.LearnersNext) > 0 || len(cs.VotersOutgoing) > 0 {
		return false
	}
	// reconcile would hand the leadership to the preferred member: that first.
	ti := p.table()
	if ti.duplicating() || !sameMembers(cs.Voters, ti.members) || cluster.MemberID(ti.members[0]) != p.id {
		return false
	}
	for _, id := range cs.Voters {
		pr, ok := st.Progress[id]
		if !ok || pr.Match != last {
			return false
		}
		if id != p.id && (!pr.RecentActive || pr.State != tracker.StateReplicate || pr.IsPaused()) {
			return false
		}
	}
	return l.quietLocally()
}

// sameMembers reports whether the voters are exactly the placement's members.
func sameMembers(voters []uint64, members []string) bool {
	if len(voters) != len(members) {
		return false
	}
	for _, m := range members {
		if !slices.Contains(voters, cluster.MemberID(m)) {
			return false
		}
	}
	return true
}

// markBeats marks the heartbeats a quiesced leader sends (its last ones).
func (l *loop) markBeats(m *raftpb.Message) {
	if l.q.quiesced && m.Type == raftpb.MsgHeartbeat && l.lead == l.p.id {
		m.Context = quiesceMark
	}
}

// checkLeaderLost handles the liveness's verdict on a quiesced follower's leader: it wakes
// and fast-forwards its election clock by an election timeout.
func (l *loop) checkLeaderLost() {
	p := l.p
	if !p.quiesce.leaderLost.Swap(false) || p.quiesce.watchLead.Load() == 0 {
		return
	}
	p.setWatch(0)
	if l.q.quiesced {
		l.wake()
	}
	if l.rn.BasicStatus().RaftState == raft.StateLeader {
		return
	}
	p.lg.Info("the quiesced group's leader went unheard: the election clock is fast-forwarded")
	for range raftgroup.ElectionTicks {
		l.rn.Tick()
	}
}

// leaderUnheard reports whether this replica watches the leader it quiesced under and has
// not heard from its server for an election timeout.
func (p *partition) leaderUnheard(now time.Time) bool {
	lead := p.quiesce.watchLead.Load()
	if lead == 0 {
		return false
	}
	return p.unheardSince(now, p.s.live.lastHeard(p.addressOf(lead)))
}

// unheardSince reports whether a replica that watches its leader, whose server was last
// heard at heard (unix nanoseconds), has not heard from it for an election timeout.
func (p *partition) unheardSince(now time.Time, heard int64) bool {
	heard = max(heard, p.quiesce.watchSince.Load())
	return now.UnixNano()-heard > int64(raftgroup.ElectionTicks*p.s.cfg.TickInterval)
}

// wakePeers tells a stopping leader's followers that its group no longer leads here: a
// plain heartbeat wakes a quiesced follower, which then elects another leader once no more
// come (its server may well go on answering liveness pings).
func (l *loop) wakePeers() {
	p := l.p
	st := l.rn.BasicStatus()
	if st.RaftState != raft.StateLeader || !p.s.quiesce || p.s.cutOff.Load() {
		return
	}
	for _, id := range l.conf.Current().Voters {
		if id != p.id {
			// Commit 0: a follower's commit index never moves back.
			p.s.transport.Send(p.addressOf(id), p.pid, &raftpb.Message{Type: raftpb.MsgHeartbeat, To: id, From: p.id, Term: st.Term})
		}
	}
}

// liveness is the server's failure detection for quiesced groups.
type liveness struct {
	heard sync.Map // address -> *atomic.Int64, unix nanoseconds of the last frame
}

// noteHeard records a frame from the server at addr.
func (lv *liveness) noteHeard(addr string, now int64) {
	v, ok := lv.heard.Load(addr)
	if !ok {
		v, _ = lv.heard.LoadOrStore(addr, new(atomic.Int64))
	}
	v.(*atomic.Int64).Store(now)
}

func (lv *liveness) lastHeard(addr string) int64 {
	if v, ok := lv.heard.Load(addr); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// runLiveness pings, every tick, the servers that follow groups quiesced here under this
// server's lead, and tells the quiesced followers here whose leader's server went unheard.
func (s *Server) runLiveness(ctx context.Context) {
	t := time.NewTicker(s.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.livenessOnce(time.Now())
	}
}

// quietIndex is what the liveness works from, kept up to date as replicas quiesce, wake
// and watch their leaders, so that its round, every tick, costs in proportion to the peer
// servers, not to the replicas (with hundreds of replicas, touching each one every tick
// was most of an idle server's CPU).
type quietIndex struct {
	mu sync.Mutex
	// pings counts, per peer server, the quiesced leaders here with a follower there.
	pings map[string]int
	// watchers are the replicas watching a leader, by the leader's server address.
	watchers map[string]map[*partition]struct{}
}

// setQuiet publishes the partition's quiescence role (loop goroutine only).
func (p *partition) setQuiet(role int32) {
	ix := &p.s.quiet
	ix.mu.Lock()
	defer ix.mu.Unlock()
	q := &p.quiesce
	if q.quiet.Load() == quietLeader {
		for _, m := range q.peers {
			if ix.pings[m]--; ix.pings[m] <= 0 {
				delete(ix.pings, m)
			}
		}
		q.peers = nil
	}
	if role == quietLeader {
		for _, m := range p.table().members {
			if m != p.s.addr {
				q.peers = append(q.peers, m)
				if ix.pings == nil {
					ix.pings = map[string]int{}
				}
				ix.pings[m]++
			}
		}
	}
	q.quiet.Store(role)
}

// setWatch makes the replica watch the leader lead (0: none; loop goroutine only).
func (p *partition) setWatch(lead uint64) {
	ix := &p.s.quiet
	ix.mu.Lock()
	defer ix.mu.Unlock()
	q := &p.quiesce
	if q.watchLead.Load() != 0 { // setWatch is watchLead's only writer
		if ws := ix.watchers[q.watched]; ws != nil {
			delete(ws, p)
			if len(ws) == 0 {
				delete(ix.watchers, q.watched)
			}
		}
		q.watched = ""
	}
	if lead != 0 {
		q.watched = p.addressOf(lead)
		if ix.watchers == nil {
			ix.watchers = map[string]map[*partition]struct{}{}
		}
		if ix.watchers[q.watched] == nil {
			ix.watchers[q.watched] = map[*partition]struct{}{}
		}
		ix.watchers[q.watched][p] = struct{}{}
	}
	q.watchLead.Store(lead)
}

// livenessOnce is a round of the liveness: the pings of the servers that follow groups
// quiesced under a leader here, and the verdicts on the leaders watched here.
func (s *Server) livenessOnce(now time.Time) {
	timeout := int64(raftgroup.ElectionTicks * s.cfg.TickInterval)
	s.quiet.mu.Lock()
	ping := make([]string, 0, len(s.quiet.pings))
	for addr := range s.quiet.pings {
		ping = append(ping, addr)
	}
	for addr, ws := range s.quiet.watchers {
		heard := s.live.lastHeard(addr)
		if now.UnixNano()-heard <= timeout {
			continue // heard within an election timeout: no watcher of it can be due
		}
		for p := range ws {
			if p.unheardSince(now, heard) {
				p.quiesce.leaderLost.Store(true)
				p.quiesce.poke()
			}
		}
	}
	s.quiet.mu.Unlock()
	if s.cutOff.Load() {
		return
	}
	self := cluster.MemberID(s.addr)
	for _, addr := range ping {
		s.transport.Send(addr, livenessGroup, &raftpb.Message{Type: raftpb.MsgHeartbeat, From: self, To: cluster.MemberID(addr)})
	}
}

// QuiescedGroups returns how many of the server's replicas are quiesced, and how many
// times its replicas woke from quiescence. Safe for concurrent use.
func (s *Server) QuiescedGroups() (quiesced int, wakes int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, p := range s.parts {
		if p.quiesce.quiet.Load() != ticking {
			quiesced++
		}
		wakes += p.quiesce.wakes.Load()
	}
	return quiesced, wakes
}
