package replica

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/raftgroup"
)

// readWait is a read waiting until the partition has applied its read index, or until
// deadline: past it the loop fails the read with errReadExpired (see expireReads).
type readWait struct {
	done     chan error
	deadline time.Time
}

// readWaitLimit bounds, in election timeouts, how long a read waits for its barrier when its
// client gave no timeout: longer than any wait a sound group imposes (a transfer's hold is
// three), far shorter than a client's own patience.
const readWaitLimit = 4

// errReadExpired: the read could not be served within its client's timeout (or
// readWaitLimit), whatever held it. It had no effect: the client gets ERR_INVALID_STATE,
// refreshes its configuration and sends it again.
var errReadExpired = fmt.Errorf("%w: the read's barrier was not reached in time", errNotLeader)

// leaseOpen reports whether the lease-read shortcut is published and not yet expired.
func (p *partition) leaseOpen() bool {
	until := p.leaseUntil.Load()
	return until != 0 && int64(time.Since(epoch)) < until
}

// shortcutOpen reports whether a read may be served now without the loop: the lease is
// open and the store has applied its term's read floor. The lease is loaded before the
// floor, which publishLease stores before it: an open lease comes with the floor of its
// own term (or a later one), never an earlier term's.
func (p *partition) shortcutOpen() bool {
	if !p.leaseOpen() {
		return false
	}
	floor := p.leaseFloor.Load()
	return floor != 0 && p.applied.Load() >= floor
}

// readBarrier waits until a linearizable read may be served from the local store: the
// replica is the leader, under a sound lease, and has applied its read floor: the first
// entry of its term, once one is committed, or a later entry whose effect reaches clients
// otherwise than through this leader's answers (see readFloor).
//
// Why the floor is enough, where raft's ReadIndex would wait for the whole commit index to
// be applied: a read must reflect every write acknowledged before it began. Only the
// leader that proposed a write acknowledges it, and only once it has applied it itself
// (applyWrites, applyIngest; an orphan's answer too comes from its apply). Take such a
// write, acknowledged by the leader of term T'; the lease (leaseSuspended) makes sure no
// leader of a later term than this replica's T exists, so T' <= T. If T' == T, the write's
// leader is this replica, which applied it before it answered: the store holds it. If
// T' < T, its entry was committed in T', so it is in this leader's log (raft's leader
// completeness), with term T', hence before every entry of term T, the floor included:
// applied >= floor holds it too. The entries committed and not yet applied are writes
// nobody has acknowledged; a read may be ordered before them, and every later read sees
// them once they are applied (applied never goes back, and a next leader holds them below
// its own floor). This is TiKV's local read condition (the leader has applied an entry of
// its own term), and it keeps a read from waiting behind a backlog of big committed writes.
//
// The wait ends by timeout at the latest (0, or anything longer: readWaitLimit election
// timeouts): the loop fails
// the read with errReadExpired once it is due, and should the loop itself not answer, the
// read gives up a moment later on its own, with the same error.
func (p *partition) readBarrier(ctx context.Context, timeout time.Duration) error {
	if !p.isLeader.Load() {
		return errNotLeader
	}
	// The shortcut: the loop publishes the read floor of its term with the lease, which is
	// good for half an election timeout and renewed on every tick while it leads.
	if p.shortcutOpen() {
		// The loop does not see this read: it counts as activity (quiesce.go), and wakes a
		// quiesced group, whose lease would otherwise run out under further reads.
		p.quiesce.shortcutReads.Add(1)
		if p.quiesce.quiet.Load() != ticking {
			p.quiesce.poke()
		}
		return nil
	}
	if limit := readWaitLimit * raftgroup.ElectionTicks * p.s.cfg.TickInterval; timeout <= 0 || timeout > limit {
		timeout = limit
	}
	rw := &readWait{done: make(chan error, 1), deadline: time.Now().Add(timeout)}
	// The loop expires the read on a tick: a tick later, and the read gives up by itself.
	wctx, cancel := context.WithDeadline(ctx, rw.deadline.Add(2*p.s.cfg.TickInterval))
	defer cancel()
	answer, err := raftgroup.Submit(wctx, p.readC, rw, rw.done, p.done, errStopped, errStopped)
	if err != nil {
		if ctx.Err() == nil && wctx.Err() != nil {
			p.readsExpired.Add(1)
			return errReadExpired
		}
		return err
	}
	return answer
}

type readBatch struct {
	index uint64
	waits []*readWait
}

// epoch anchors the monotonic times of leaseUntil.
var epoch = time.Now()

// publishLease publishes the read floor of this leader's term and renews the lease, for
// readBarrier's shortcut, or withdraws the shortcut when this replica may not serve lease
// reads.
func (l *loop) publishLease() {
	p := l.p
	if l.lead == p.id && !l.leaseSuspended() {
		if floor, ok := l.readFloor(); ok {
			p.leaseFloor.Store(floor) // before the lease: see readBarrier
			p.leaseUntil.Store(int64(time.Since(epoch) + l.electionTimeout()/2))
			return
		}
	}
	p.leaseUntil.Store(0)
}

// readFloor returns the read floor of this leader's term: the first entry of its term in
// its log, once one is committed (leaseReadIndex finds the commit index's entry of its
// term; the entries before it are in raft's storage too, and their terms never decrease).
// A read served under a sound lease once the store has applied it reflects every write
// acknowledged before the read began (see readBarrier). ok is false while leaseReadIndex
// cannot tell.
//
// A control entry of its term (a split's cut-over) raises the floor to its index: its
// effect is seen by clients through another group (the child's writes, once followers
// that applied it open the child), not through this leader's acknowledgements; a read the
// parent serves from the child's half must wait for the cut-over to be applied here, so
// that the parent refuses it (owns), as it would under raft's ReadIndex. An ingestion (a
// bulk load) does too: its outcome reaches the meta through every replica's reports, not
// only through this leader's answer.
func (l *loop) readFloor() (floor uint64, ok bool) {
	floor, ok = l.termFloor()
	if ok && l.ctlTerm == l.floorTerm {
		floor = max(floor, l.ctlIndex)
	}
	return floor, ok
}

// noteControl records the control entries among ents, staged in the raft log, and raises
// the published floor at once when this replica leads: the entry cannot be committed, nor
// sent to a follower, before the loop handles the append it was staged with (see
// readFloor).
func (l *loop) noteControl(ents []raftpb.Entry) {
	for i := range ents {
		if e := &ents[i]; e.Type == raftpb.EntryNormal && len(e.Data) > 0 && (e.Data[0] == controlVersion || isIngest(e.Data)) {
			l.ctlIndex, l.ctlTerm = e.Index, e.Term
		}
	}
	if l.lead == l.p.id && l.ctlTerm == l.floorTerm && l.ctlIndex > l.p.leaseFloor.Load() {
		l.p.leaseFloor.Store(l.ctlIndex)
	}
}

// termFloor returns the first index of this leader's term, once it knows one committed.
func (l *loop) termFloor() (floor uint64, ok bool) {
	term := l.rn.BasicStatus().Term
	if l.floorTerm == term && l.floor != 0 {
		return l.floor, true
	}
	hi, ok := l.leaseReadIndex()
	if !ok {
		return 0, false
	}
	// The first index of term in [the log's first entry, hi]; hi is of term. An index
	// raft's storage cannot tell the term of counts as earlier: the search then ends at a
	// later index of term, still committed and of term, so still a sound floor.
	lo, err := l.ms.FirstIndex()
	if err != nil {
		lo = hi
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if t, err := l.ms.Term(mid); err == nil && t == term {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	l.floor, l.floorTerm = hi, term
	return hi, true
}

// readIndex asks raft to confirm leadership for rw and every other queued read at once.
func (l *loop) readIndex(first *readWait) {
	p := l.p
	batch := []*readWait{first}
drain:
	for {
		select {
		case rw := <-p.readC:
			batch = append(batch, rw)
		default:
			break drain
		}
	}
	if l.lead != p.id {
		for _, rw := range batch {
			rw.done <- errNotLeader
		}
		return
	}
	if l.leaseSuspended() {
		l.heldReads = append(l.heldReads, batch...)
		return
	}
	l.serveReads(batch)
}

// serveReads answers batch once the store has applied the read floor (at once, most often),
// or, when there is none yet, raft's read index.
func (l *loop) serveReads(batch []*readWait) {
	if floor, ok := l.readFloor(); ok {
		l.readyAt = append(l.readyAt, readBatch{index: floor, waits: batch})
		l.releaseReads()
		return
	}
	l.issueReadIndex(batch)
}

// leaseReadIndex answers what raft's lease-based ReadIndex would answer this leader, without
// waiting for raft's next Ready: its commit index, provided an
// entry of its own term is committed. ok is false when that cannot be told here (the
// committed entry is not in raft's storage yet); raft's ReadIndex is asked then.
func (l *loop) leaseReadIndex() (index uint64, ok bool) {
	st := l.rn.BasicStatus()
	if st.RaftState != raft.StateLeader {
		return 0, false
	}
	term, err := l.ms.Term(st.Commit)
	if err != nil || term != st.Term {
		return 0, false
	}
	return st.Commit, true
}

// Reads are served under the leader's lease (ReadOnlyLeaseBased). A leadership transfer
// breaks the lease: the transferee is elected without waiting for it to run out, while this
// replica still believes it leads. So while a transfer this replica started may be under
// way, and for a few election timeouts after, reads are held instead of answered locally;
// but only in the term the transfer started in: a transferee's campaign is for that term
// plus one, which cannot unseat a leader of a later term, so a replica leading again after
// its transfer (a restoration, or a transfer that failed and an election) serves at once.
//
// Nor does a leader serve lease reads unless it knows that a quorum still follows it: every
// voter of a quorum (this replica counted) answered one of its appends or heartbeats of
// this term within half an election timeout (see noteHeard), and, after a stall of the
// loop, answered a heartbeat sent since (see checkStall). raft's CheckQuorum alone lets a leader cut off
// from its followers believe it leads for up to two election timeouts, while they elect
// another after one or two: reads served meanwhile would miss the new leader's writes.
func (l *loop) leaseSuspended() bool {
	st := l.rn.BasicStatus()
	if st.LeadTransferee != 0 {
		return true
	}
	if st.Term == l.transferTerm && time.Since(l.transferStarted) < 3*l.electionTimeout() {
		return true
	}
	now := time.Now()
	return l.checkStall(now, st) || !l.quorumHeard(now)
}

// noteHeard records, for the lease, when this leader handled a member's answer to its
// appends or heartbeats of its current term (loop only, for each message from a peer).
func (l *loop) noteHeard(m *raftpb.Message, now time.Time) {
	if m.Type != raftpb.MsgAppResp && m.Type != raftpb.MsgHeartbeatResp {
		return
	}
	if l.confirming {
		// After a stall, an answer proves the member followed this leader since only if it
		// answers a heartbeat sent since (see checkStall).
		if epoch, ok := stallEpochOf(m); !ok || epoch != l.stallEpoch {
			return
		}
	}
	if st := l.rn.BasicStatus(); st.RaftState != raft.StateLeader || m.Term != st.Term {
		return
	}
	if l.heard == nil {
		l.heard = make(map[uint64]time.Time)
	}
	l.heard[m.From] = now
}

// quorumHeard reports whether a quorum of the group's voters, this replica counted, was
// heard from (noteHeard) within half an election timeout of now, in the incoming and, during
// a joint change, the outgoing configuration. A follower that answered refuses to vote for
// another member for an election timeout (CheckQuorum's lease), so the half left covers the
// answer's way back and the loop's delay in handling it.
func (l *loop) quorumHeard(now time.Time) bool {
	cs := l.conf.Current()
	window := l.electionTimeout() / 2
	majority := func(ids []uint64) bool {
		n := 0
		for _, id := range ids {
			if t, ok := l.heard[id]; id == l.p.id || ok && now.Sub(t) < window {
				n++
			}
		}
		return 2*n > len(ids)
	}
	return majority(cs.Voters) && (len(cs.VotersOutgoing) == 0 || majority(cs.VotersOutgoing))
}

// stallGap is the gap between two iterations of a leader's loop, in election timeouts, past
// which the loop counts as having stalled (it runs at least once a tick).
const stallGap = 4

// checkStall reports whether this leader's loop stalled (the process was paused, or starved
// of CPU, or the loop's own work held it: a big apply, a store that makes its writes wait)
// and has not yet seen a quorum confirm its leadership since. After a stall the answers
// queued while it stood still look fresh when it handles them, though their senders may
// since have elected another leader; so the leader forgets what it heard and counts again
// only the answers to heartbeats it sends from now on, which carry the stall's epoch
// (markStallEpoch): a member that answers one of them, in this term, received it after the
// stall and still followed this leader then, which a follower of another leader would not.
// Once a quorum has so answered, within half an election timeout as always (quorumHeard),
// the lease is trusted again. This confirms the leadership as an empty entry committed
// after the stall would, without waiting behind the appends queued before it: under a
// backlog of big writes, that entry's commit took seconds, and every read waited for it.
// st is raft's status now.
func (l *loop) checkStall(now time.Time, st raft.BasicStatus) bool {
	if !l.lastIteration.IsZero() && now.Sub(l.lastIteration) > l.electionTimeout()/stallGap &&
		st.RaftState == raft.StateLeader {
		l.stallEpoch++
		l.confirming = true
		clear(l.heard)
		l.p.raftStats.leaseStalls.Add(1)
		l.p.lg.Info("the loop stalled: lease reads wait for the group to confirm the leadership",
			"stalled", now.Sub(l.lastIteration))
	}
	l.lastIteration = now
	if l.confirming && l.quorumHeard(now) {
		l.confirming = false
	}
	return l.confirming
}

// stallEpochTag ends, before the epoch's 8 bytes, the context of a heartbeat a leader
// sends while it confirms its leadership after a stall; the follower's answer carries
// the context back (raft echoes it).
var stallEpochTag = []byte("stall-epoch")

// markStallEpoch adds the stall's epoch to a heartbeat this leader sends while it confirms
// its leadership (see checkStall). A quiesced leader, whose heartbeats carry quiesceMark,
// is never confirming (quietLocally).
func (l *loop) markStallEpoch(m *raftpb.Message) {
	if !l.confirming || m.Type != raftpb.MsgHeartbeat || l.lead != l.p.id {
		return
	}
	ctx := make([]byte, 0, len(m.Context)+len(stallEpochTag)+8)
	ctx = append(append(ctx, m.Context...), stallEpochTag...)
	m.Context = binary.BigEndian.AppendUint64(ctx, l.stallEpoch)
}

// stallEpochOf returns the stall epoch a heartbeat's answer carries back, if any.
func stallEpochOf(m *raftpb.Message) (uint64, bool) {
	c := m.Context
	n := len(c) - 8 - len(stallEpochTag)
	if m.Type != raftpb.MsgHeartbeatResp || n < 0 || !bytes.Equal(c[n:n+len(stallEpochTag)], stallEpochTag) {
		return 0, false
	}
	return binary.BigEndian.Uint64(c[n+len(stallEpochTag):]), true
}

func (l *loop) electionTimeout() time.Duration {
	return raftgroup.ElectionTicks * l.p.s.cfg.TickInterval
}

// releaseHeldReads issues the reads held during a transfer once the lease is sound again.
func (l *loop) releaseHeldReads() {
	if len(l.heldReads) == 0 || l.lead != l.p.id || l.leaseSuspended() {
		return
	}
	batch := l.heldReads
	l.heldReads = nil
	l.serveReads(batch)
}

func (l *loop) issueReadIndex(batch []*readWait) {
	id := l.reads.NextID()
	var rctx [8]byte
	binary.BigEndian.PutUint64(rctx[:], id)
	l.reads.Add(id, batch)
	l.readIDs = append(l.readIDs, id)
	l.rn.ReadIndex(rctx[:])
}

// expireReads fails, with errReadExpired, every read waiting in the loop past its deadline:
// held (leaseSuspended), waiting for raft's read index, or for the store to apply it. A
// read must end with an answer or an error within its client's timeout whatever raft does:
// raft forgets a read index request, without an answer, when it is asked while it cannot
// lead (a candidate, a follower with no leader), and a lease that never becomes sound again
// would hold its reads for ever. Called on every tick, and when the loop wakes.
func (l *loop) expireReads(now time.Time) {
	expired := 0
	fail := func(ws []*readWait) []*readWait {
		n := 0
		for _, rw := range ws {
			if !rw.deadline.IsZero() && now.After(rw.deadline) {
				rw.done <- errReadExpired
				expired++
				continue
			}
			ws[n] = rw
			n++
		}
		clear(ws[n:])
		return ws[:n]
	}
	l.heldReads = fail(l.heldReads)
	n := 0
	for _, rb := range l.readyAt {
		if rb.waits = fail(rb.waits); len(rb.waits) > 0 {
			l.readyAt[n] = rb
			n++
		}
	}
	clear(l.readyAt[n:])
	l.readyAt = l.readyAt[:n]
	n = 0
	for _, id := range l.readIDs {
		ws, ok := l.reads.Take(id)
		if !ok {
			continue // answered, or failed with the others
		}
		if ws = fail(ws); len(ws) > 0 {
			l.reads.Add(id, ws)
			l.readIDs[n] = id
			n++
		}
	}
	l.readIDs = l.readIDs[:n]
	if expired > 0 {
		// What held them, for the log: reads are not expected to wait this long.
		l.p.readsExpired.Add(int64(expired))
		st := l.rn.Status()
		progress := make([]string, 0, len(st.Progress))
		for id, pr := range st.Progress {
			progress = append(progress, fmt.Sprintf("%s:%s match %d next %d active %v", l.p.addressOf(id), pr.State, pr.Match, pr.Next, pr.RecentActive))
		}
		l.p.lg.Warn("reads failed: their barrier was not reached in time", "reads", expired,
			"state", st.RaftState.String(), "term", st.Term, "leader", l.lead == l.p.id, "transferee", st.LeadTransferee,
			"held", len(l.heldReads), "read_index", len(l.readIDs), "applying", len(l.readyAt),
			"confirming", l.confirming, "staged", l.staged, "applied", l.p.applied.Load(), "commit", st.Commit,
			"progress", progress)
	}
}

func (l *loop) releaseReads() {
	applied := l.p.applied.Load()
	n := 0
	for _, rb := range l.readyAt {
		if rb.index <= applied {
			for _, rw := range rb.waits {
				rw.done <- nil
			}
			continue
		}
		l.readyAt[n] = rb
		n++
	}
	l.readyAt = l.readyAt[:n]
}
