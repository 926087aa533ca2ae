package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/raftgroup"
)

// loop is the partition's raft state machine: its goroutine (run) owns rn and every field
// below; other goroutines reach it through the partition's channels.
type loop struct {
	p        *partition
	rn       *raft.RawNode
	ms       *raft.MemoryStorage
	conf     raftgroup.ConfLog
	waiters  *raftgroup.Waiters[[]*write]
	reads    *raftgroup.Waiters[[]*readWait] // by read-index context, until raft answers
	readIDs  []uint64                        // the read-index contexts issued, oldest first (expireReads)
	readyAt  []readBatch                     // answered, waiting for apply
	lead     uint64
	truncAt  uint64 // last truncation point
	entryBuf []byte

	// flushing is the store flush a truncation waits for (nil: none under way), which
	// makes the store durable through the applied index flushFor; storeDurable is the
	// applied index the last finished one covered. The loop does not wait for a flush: on
	// a full or failing disk Pebble retries it until the disk heals.
	flushing               <-chan struct{}
	flushFor, storeDurable uint64

	installed uint64 // the store holds every write up to this index (last snapshot installed)
	// pendingSnap is a received snapshot whose message raft was given and whose checkpoint
	// waits for raft to accept it (stageAppend swaps it in) or not (settleSnapshot).
	pendingSnap   *install
	sending       map[uint64]bool // peers a snapshot is being sent to
	confPending   bool            // a membership change is proposed and not yet applied
	confAt        time.Time
	lastReconcile time.Time
	lastTransfer  time.Time
	// transferStarted is when this replica last asked raft to hand its leadership over, in
	// term transferTerm; heldReads wait meanwhile (see leaseSuspended).
	transferStarted time.Time
	transferTerm    uint64
	heldReads       []*readWait
	// floor is the read floor of term floorTerm (see readFloor); ctlIndex is the last
	// control entry staged, of term ctlTerm, which raises the floor of its term.
	floor, floorTerm  uint64
	ctlIndex, ctlTerm uint64
	// heard is when this leader last handled each member's answer of its term, and
	// lastIteration when its loop last ran; while confirming, after a stall of the loop, only
	// answers to heartbeats sent since, which carry stallEpoch, count as heard. Lease reads
	// need all three (see leaseSuspended).
	heard         map[uint64]time.Time
	lastIteration time.Time
	confirming    bool
	stallEpoch    uint64
	// handover is the leadership transfer under way that this replica started (handover.go).
	handover *handover
	// orphans are the writes this replica proposed before it stopped leading, until
	// orphansUntil: their entries may still be committed by the new leader and applied
	// here, which answers them with their real outcome (see setLeader).
	orphans      *raftgroup.Waiters[[]*write]
	orphansUntil time.Time
	// A new group's first election (see newLoop): until startUntil, the preferred member
	// campaigns every campaignEvery ticks while no leader is known, and the others do not
	// campaign at all.
	startUntil    time.Time
	preferred     bool
	sinceCampaign int
	// toSend are the snapshots raft asked to send, for run to start (startTransfers).
	toSend []outgoingSnapshot

	// appends are raft's storage appends (MsgStorageAppend) staged in the raft log and
	// waiting, in order, for their fsync; the loop keeps stepping messages, taking proposals,
	// applying and answering reads meanwhile, and completes each when its fsync is done.
	appends []pendingAppend
	// staged is the last log index staged (durable or not) and hsStaged the last hard
	// state staged.
	staged   uint64
	hsStaged raftpb.HardState

	// inflight are the batches this leader proposed, in order, with when the oldest write
	// of each was handed to the loop, until they are answered (see publishBacklog).
	inflight []inflightBatch
	// retained counts the bytes of the entries in ms, for truncations by bytes.
	retained retainedLog

	// split is the split child's copy this parent replica builds (split.go), nil when none;
	// splitCheckpointing is set while the checkpoint that starts one runs; splitProposed is
	// when the leader last proposed the cut-over.
	split              *splitCopy
	splitCheckpointing bool
	splitProposed      time.Time

	// q is the group's quiescence (quiesce.go): the ticker and the idle count.
	q loopQuiet
}

// pendingAppend is a storage append between its staging and its fsync.
type pendingAppend struct {
	m       raftpb.Message
	durable <-chan error
}

// synced is the durable answer of an append that needs no fsync: closed, it answers nil to
// every receive.
var synced = func() <-chan error {
	c := make(chan error)
	close(c)
	return c
}()

// newLoop restores or bootstraps the partition's raft group; a split child's new group
// starts from init, the copy its parent's replica completed (split.go).
func newLoop(p *partition, members []string, join bool, init *splitMarker) (*loop, error) {
	ms, found, err := p.log.Load()
	if err != nil {
		return nil, err
	}
	if !found && init != nil {
		if err := initChildLog(p, init); err != nil {
			return nil, err
		}
		if ms, found, err = p.log.Load(); err != nil {
			return nil, err
		}
	}
	snap, err := ms.Snapshot()
	if err != nil {
		return nil, err
	}
	l := &loop{}
	// Entries after the last truncation point are redelivered on restart: storage skips
	// those it already holds, and conf changes are re-applied.
	cfg := raftgroup.NewConfig(p.id, leaderSnapshots{ms, l}, snap.Metadata.Index, p.lg)
	// Reads are served under the leader's lease (see doc.go for the clock assumption).
	cfg.ReadOnlyOption = raft.ReadOnlyLeaseBased
	// Storage appends and applies come as messages (see handleReady): the loop does not wait
	// for an fsync before it handles the next Ready.
	cfg.AsyncStorageWrites = true
	rn, err := raft.NewRawNode(cfg)
	if err != nil {
		return nil, fmt.Errorf("replica: raft group %v: %w", p.pid, err)
	}
	hs, _, err := ms.InitialState()
	if err != nil {
		return nil, err
	}
	*l = loop{
		p: p, rn: rn, ms: ms,
		waiters: raftgroup.NewWaiters[[]*write](),
		reads:   raftgroup.NewWaiters[[]*readWait](),
		truncAt: snap.Metadata.Index,
		sending: make(map[uint64]bool),
	}
	l.conf.Reset(snap.Metadata.ConfState)
	p.raftStats.logStart.Store(snap.Metadata.Index + 1)
	if l.staged, err = ms.LastIndex(); err != nil {
		return nil, err
	}
	if first, _ := ms.FirstIndex(); first <= l.staged {
		ents, err := ms.Entries(first, l.staged+1, math.MaxUint64)
		if err != nil {
			return nil, err
		}
		l.retained.append(ents)
	}
	l.hsStaged = hs
	if !found && !join {
		// A new group elects the placement's first member: it campaigns at once and again
		// until elected, while the others stay silent for the start window, long enough for
		// every member to learn of the group from the meta (a sync interval) and elect it. The
		// partition thus starts with the primary the meta intends, and no leadership
		// transfer follows its creation. A first member that never comes is replaced by a
		// normal election once the window is over.
		l.startUntil = time.Now().Add(p.s.cfg.SyncInterval + 2*l.electionTimeout())
		peers := make([]raft.Peer, 0, len(members))
		for _, m := range members {
			peers = append(peers, raft.Peer{ID: cluster.MemberID(m)})
		}
		if err := rn.Bootstrap(peers); err != nil {
			return nil, fmt.Errorf("replica: bootstrap raft group %v: %w", p.pid, err)
		}
	}
	return l, nil
}

func (l *loop) run(ctx context.Context, tick time.Duration, campaign bool) {
	p := l.p
	defer close(p.done)
	defer l.failAll(errStopped)
	defer p.leaseUntil.Store(0)
	defer p.backlogSince.Store(0)
	// ctx is the parent of the partition's snapshot transfers: they end with the loop.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l.q.ticker = time.NewTicker(tick)
	l.q.tick, l.q.tickC = tick, l.q.ticker.C
	defer l.q.ticker.Stop()
	defer p.setWatch(0) // a stopped loop acts on no verdict
	defer p.setQuiet(ticking)
	l.preferred = campaign
	l.resumeCopy()
	defer l.closeSplit()
	defer l.settleSnapshot(errStopped)
	defer l.wakePeers()
	for {
		if err := l.handleReadies(); err != nil {
			p.lg.Error("partition stopped: storage failure", "err", err)
			p.isLeader.Store(false)
			p.s.notifyMeta()
			return
		}
		if l.q.offer != nil {
			l.considerOffer()
		}
		l.settleSnapshot(errSnapshotRefused)
		l.checkHandover()
		l.startTransfers(ctx)
		if campaign && l.lead != 0 {
			campaign = false // another member was elected first
		}
		if campaign && len(l.appends) == 0 && p.applied.Load() >= l.rn.BasicStatus().Commit {
			// The preferred primary (or a lone voter) does not wait for an election
			// timeout, once the group's configuration (as bootstrapped or restored) is
			// durable and applied: raft refuses to campaign before.
			campaign = false
			l.sinceCampaign = 0
			_ = l.rn.Campaign()
			continue
		}
		var durable <-chan error
		if len(l.appends) > 0 {
			durable = l.appends[0].durable
		}
		select {
		case <-ctx.Done():
			return
		case <-p.stop:
			return
		case err := <-durable:
			if err == nil {
				err = l.finishAppends()
			}
			if err != nil {
				p.lg.Error("partition stopped: storage failure", "err", err)
				p.isLeader.Store(false)
				p.s.notifyMeta()
				return
			}
		case <-l.q.tickC:
			l.tick()
		case <-p.quiesce.pokeC:
			l.busy()
			l.checkLeaderLost()
		case tr := <-p.transferC:
			l.busy()
			l.handOver(tr.to, tr.reason, tr.done)
		case w := <-p.proposeC:
			l.busy()
			l.proposeBatch(w)
		case rw := <-p.readC:
			l.busy()
			l.readIndex(rw)
		case m := <-p.recvC:
			now := time.Now()
			l.step(m, now)
			// Step everything else already queued, so one Ready (and one fsync) covers it.
			for more := true; more; {
				select {
				case m := <-p.recvC:
					l.step(m, now)
				default:
					more = false
				}
			}
		case in := <-p.installC:
			l.busy()
			if err := l.installSnapshot(in); err != nil {
				in.done <- err
			}
		case d := <-p.snapDoneC:
			l.busy()
			delete(l.sending, d.to)
			status := raft.SnapshotFinish
			if !d.ok {
				status = raft.SnapshotFailure
			}
			l.rn.ReportSnapshot(d.to, status)
		case res := <-p.splitC:
			l.busy()
			l.checkpointDone(res)
		}
		if l.q.quiesced {
			// Only the answers to its last heartbeats reach a quiesced leader: nothing to
			// do, and its published lease runs out on its own (see quiesce.go).
			l.lastIteration = time.Now()
			continue
		}
		l.advanceSplit(ctx)
		if l.lead == p.id {
			l.reconcile()
		}
		l.releaseHeldReads()
		l.publishLease()
		l.publishBacklog()
		l.lastIteration = time.Now()
	}
}

// fromMember reports whether the group takes a message from the raft id from: a voter or
// learner of its configuration, or a member of the placement the meta gave (a replica being
// added hears from its group before it knows its configuration).
func (l *loop) fromMember(from uint64) bool {
	return raftgroup.IsMember(l.conf.Current(), from) || l.p.addressOf(from) != ""
}

// step hands a peer's message, received at now, to raft, unless its sender is not a
// member of the group.
func (l *loop) step(m *raftpb.Message, now time.Time) {
	// Snapshots arrive as checkpoint transfers (installSnapshot), never in a raft frame:
	// raft must not accept a snapshot whose store is not here.
	if m.Type == raftpb.MsgSnap || !l.fromMember(m.From) {
		l.p.s.raftRefused.Add(1)
		return
	}
	l.noteMessage(m)
	l.noteHeard(m, now)
	_ = l.rn.Step(*m)
}

// tick advances raft's clock by one tick, except for a member of a new group that waits for
// the preferred member's election (see newLoop), and does the loop's timed work.
func (l *loop) tick() {
	now := time.Now()
	l.p.quiesce.ticks.Add(1)
	switch starting := l.lead == 0 && now.Before(l.startUntil); {
	case starting && l.preferred:
		// Its earlier campaign may have reached members that did not host the group yet.
		if l.sinceCampaign++; l.sinceCampaign >= campaignEvery {
			l.sinceCampaign = 0
			_ = l.rn.Campaign()
		}
		l.rn.Tick()
	case starting:
		// Not a tick: its election timer does not run, so it does not campaign.
	default:
		l.startUntil = time.Time{}
		l.rn.Tick()
	}
	l.releaseHeldReads()
	l.expireReads(now)
	if l.orphans != nil && now.After(l.orphansUntil) {
		l.orphans.FailAll(func(ws []*write) { failWrites(ws, errOutcomeUnknown) })
		l.orphans = nil
	}
	l.maybeQuiesce()
}

// campaignEvery is how many ticks the preferred member of a new group waits for its
// campaign to succeed before it campaigns again.
const campaignEvery = 2

// proposeBatch proposes w and every other write already queued as one raft entry.
func (l *loop) proposeBatch(first *write) {
	p := l.p
	batch := []*write{first}
	size := len(first.data)
drain:
	for first.kind != kindIngest && len(batch) < maxWritesPerEntry && size < maxEntryBytes {
		select {
		case w := <-p.proposeC:
			if w.kind == kindIngest {
				defer l.proposeBatch(w) // an ingestion goes alone, after this batch
				break drain
			}
			batch = append(batch, w)
			size += len(w.data)
		default:
			break drain
		}
	}
	if l.lead != p.id || l.handover != nil {
		// Never in the log: the handlers send them to the new leader (forward.go).
		failWrites(batch, errNotLeader)
		return
	}
	now := time.Now()
	if batch = l.shedExpired(batch, now); len(batch) == 0 {
		return
	}
	ti := p.table()
	id := l.waiters.NextID()
	l.entryBuf = appendEntry(l.entryBuf[:0], id, now, ti.defaultTTL, batch)
	// raft keeps the slice in its unstable log: hand it a copy.
	data := append([]byte(nil), l.entryBuf...)
	if err := l.rn.Propose(data); err != nil {
		failWrites(batch, errNotLeader)
		return
	}
	l.waiters.Add(id, batch)
	l.inflight = append(l.inflight, inflightBatch{id: id, queued: oldestQueued(batch)})
}

func failWrites(ws []*write, err error) {
	for _, w := range ws {
		w.done <- writeResult{err: err}
	}
}

// handleReadies handles every Ready raft has (raft's asynchronous storage writes): peer
// messages go out at once; storage appends are staged in the raft log and queued for their
// fsync (finishAppends completes them); committed entries are applied at once (raft hands
// out only entries already durable here).
func (l *loop) handleReadies() error {
	p := l.p
	for l.rn.HasReady() {
		rd := l.rn.Ready()
		// The term first: a report that finds this replica leading finds its term too.
		if !raft.IsEmptyHardState(rd.HardState) {
			p.term.Store(rd.HardState.Term)
		}
		if rd.SoftState != nil {
			l.setLeader(rd.SoftState.Lead)
		}
		var peers []raftpb.Message
		for _, m := range rd.Messages {
			switch m.To {
			case raft.LocalAppendThread:
				if err := l.stageAppend(m); err != nil {
					return err
				}
			case raft.LocalApplyThread:
				if err := l.apply(m.Entries); err != nil {
					return err
				}
				for _, r := range m.Responses {
					_ = l.rn.Step(r)
				}
			default:
				peers = append(peers, m)
			}
		}
		l.send(peers)
		for _, rs := range rd.ReadStates {
			if len(rs.RequestCtx) != 8 {
				continue
			}
			if waits, ok := l.reads.Take(binary.BigEndian.Uint64(rs.RequestCtx)); ok {
				l.readyAt = append(l.readyAt, readBatch{index: rs.Index, waits: waits})
			}
		}
		l.releaseReads()
	}
	return l.maybeTruncate()
}

// appendHardState is the hard state a storage append carries: empty when it carries none.
func appendHardState(m raftpb.Message) raftpb.HardState {
	return raftpb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
}

// stageAppend writes a storage append's snapshot, entries and hard state to the raft log,
// unsynced, and queues it for the fsync it needs (new entries, a snapshot, a new term or
// vote; a commit index alone needs none).
func (l *loop) stageAppend(m raftpb.Message) error {
	p := l.p
	hs := appendHardState(m)
	if m.Snapshot != nil {
		// raft accepted the snapshot: its checkpoint becomes the store now, then the
		// snapshot is installed at once (synced). raft replaced its whole log with it, so
		// the entries of appends still waiting for their fsync are gone too: raft's storage
		// must not learn them when they finish.
		if err := l.swapInPending(m.Snapshot.Metadata); err != nil {
			return err
		}
		if err := l.applySnapshot(*m.Snapshot, hs); err != nil {
			return err
		}
		l.staged = m.Snapshot.Metadata.Index
		for i := range l.appends {
			l.appends[i].m.Entries = nil
		}
	}
	if err := p.log.Stage(hs, m.Entries, l.staged); err != nil {
		return err
	}
	l.noteControl(m.Entries)
	if n := len(m.Entries); n > 0 {
		l.staged = m.Entries[n-1].Index
	}
	// Entries, and a new term or vote, must be durable before raft hears they are (the
	// snapshot's own hard state was synced when it was installed).
	durable := synced
	newVote := m.Snapshot == nil && !raft.IsEmptyHardState(hs) &&
		(hs.Term != l.hsStaged.Term || hs.Vote != l.hsStaged.Vote)
	if len(m.Entries) > 0 || newVote {
		durable = p.log.Sync()
	}
	if !raft.IsEmptyHardState(hs) {
		l.hsStaged = hs
	}
	l.appends = append(l.appends, pendingAppend{m: m, durable: durable})
	return nil
}

// finishAppends completes the first queued append, whose fsync is done, and every one after
// it that is durable too: raft's storage learns their entries, and their responses (the
// acknowledgements to peers, raft's own MsgStorageAppendResp) are delivered, in order.
func (l *loop) finishAppends() error {
	for first := true; len(l.appends) > 0; first = false {
		a := l.appends[0]
		if !first {
			select {
			case err := <-a.durable:
				if err != nil {
					return err
				}
			default:
				return nil
			}
		}
		l.appends = l.appends[1:]
		if err := l.ms.Append(a.m.Entries); err != nil {
			return err
		}
		l.retained.append(a.m.Entries)
		if hs := appendHardState(a.m); !raft.IsEmptyHardState(hs) {
			if err := l.ms.SetHardState(hs); err != nil {
				return err
			}
		}
		var peers []raftpb.Message
		for _, r := range a.m.Responses {
			if r.To == l.p.id {
				_ = l.rn.Step(r)
			} else {
				peers = append(peers, r)
			}
		}
		l.send(peers)
	}
	return nil
}

func (l *loop) setLeader(lead uint64) {
	p := l.p
	if lead == l.lead {
		return
	}
	was := l.lead == p.id
	l.lead = lead
	// No shortcut until publishLease finds the lease sound again, with the floor of the
	// new term (readFloor) if it leads.
	p.leaseUntil.Store(0)
	clear(l.heard) // a new term's lease needs new answers
	l.confirming = false
	now := lead == p.id
	p.isLeader.Store(now)
	p.raftStats.leaderChanges.Add(1)
	if was && !now {
		// Reads must be served by the new leader. The writes proposed and not yet applied
		// stay in the log and are most often committed by the new leader (always after a
		// handover, which waits for the new leader to hold all of them): they wait, for an
		// election timeout, to be applied here, which gives them their outcome; the others
		// then get ERR_TIMEOUT (outcome unknown).
		l.failReads(errNotLeader)
		if l.orphans != nil {
			l.orphans.FailAll(func(ws []*write) { failWrites(ws, errOutcomeUnknown) })
		}
		l.orphans, l.waiters = l.waiters, raftgroup.NewWaiters[[]*write]()
		l.orphansUntil = time.Now().Add(l.electionTimeout())
	}
	l.publishView()
	if was != now {
		// The meta names the primary from the reports: it hears of the change at once.
		p.lg.Info("partition leadership", "leader", now, "term", l.rn.BasicStatus().Term)
		p.s.notifyMeta()
	}
}

// failAll fails every pending request: reads with err, proposed writes with
// errOutcomeUnknown (they are in the raft log and may yet be committed).
func (l *loop) failAll(err error) {
	l.waiters.FailAll(func(ws []*write) { failWrites(ws, errOutcomeUnknown) })
	if l.orphans != nil {
		l.orphans.FailAll(func(ws []*write) { failWrites(ws, errOutcomeUnknown) })
	}
	l.failReads(err)
	if h := l.handover; h != nil {
		l.handover = nil
		for _, w := range h.waiters {
			w <- err
		}
	}
}

// failReads fails every read waiting for the loop with err.
func (l *loop) failReads(err error) {
	l.reads.FailAll(func(rs []*readWait) {
		for _, rw := range rs {
			rw.done <- err
		}
	})
	l.readIDs = nil
	for _, rb := range l.readyAt {
		for _, rw := range rb.waits {
			rw.done <- err
		}
	}
	l.readyAt = nil
	for _, rw := range l.heldReads {
		rw.done <- err
	}
	l.heldReads = nil
}

func (l *loop) apply(ents []raftpb.Entry) error {
	p := l.p
	if len(ents) > 0 && p.leaseUntil.Load() != 0 {
		l.publishLease() // renews the lease while the loop applies
	}
	for i := range ents {
		e := &ents[i]
		switch e.Type {
		case raftpb.EntryNormal:
			switch {
			case len(e.Data) == 0:
			case e.Data[0] == controlVersion:
				if err := l.applyControl(e); err != nil {
					return err
				}
			default:
				if err := l.applyWrites(e); err != nil {
					return err
				}
			}
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			cc, err := l.conf.Apply(l.rn, e)
			if err != nil {
				return fmt.Errorf("replica: conf change at %d: %w", e.Index, err)
			}
			if cc != nil {
				l.confPending = false
			}
			l.publishVoters()
		}
		// After a checkpoint was installed the store can be ahead of these entries (they are
		// skipped then): applied never goes back.
		p.applied.Store(max(p.applied.Load(), e.Index))
	}
	p.dup.signalApplied()
	return nil
}

func (l *loop) applyWrites(e *raftpb.Entry) error {
	p := l.p
	if id, req, ok := ingestEntry(e.Data); ok {
		return l.applyIngest(e, id, req)
	}
	id, batch, err := decodeEntry(e.Data)
	if err != nil {
		// Every replica decodes the same bytes the same way, so skipping keeps them equal.
		p.lg.Error("skipping undecodable raft entry", "index", e.Index, "err", err)
		return nil
	}
	ws, ok := l.waiters.Take(id)
	if !ok && l.orphans != nil {
		ws, _ = l.orphans.Take(id)
	}
	if e.Index <= p.db.LastAppliedIndex() {
		// Already in the store (replayed after a restart, or covered by a checkpoint
		// installed meanwhile): the write took effect, its result is not known here.
		failWrites(ws, errOutcomeUnknown)
		return nil
	}
	batch.Index = e.Index
	results, err := p.db.Apply(&batch)
	if err != nil {
		failWrites(ws, err)
		return err
	}
	p.noteAppliedWrites(batch.Mutations, results)
	if len(ws) != len(results) {
		failWrites(ws, errOutcomeUnknown) // not our proposal after all
		return nil
	}
	for i, w := range ws {
		w.done <- writeResult{res: results[i], decree: int64(e.Index)}
	}
	return nil
}

// maybeTruncate drops applied entries from the raft log once enough accumulated, after
// making the store durable through them (a flush it starts and checks on later calls).
func (l *loop) maybeTruncate() error {
	p := l.p
	last, err := l.ms.LastIndex()
	if err != nil {
		return err
	}
	applied := p.applied.Load()
	at, ok := truncationPoint(applied, last, l.truncAt, uint64(p.s.cfg.LogCompactEvery), uint64(p.s.cfg.LogKeep))
	if keep := int64(p.s.settings.LogKeepBytes.Get()); !ok && keep > 0 && l.retained.bytes > 2*keep {
		// Big entries: keep keep bytes of them rather than raft_log_keep entries.
		if b := min(l.retained.keeping(applied, keep), last); b > l.truncAt {
			at, ok = b, true
		}
	}
	if !ok {
		return nil
	}
	if at, ok = p.dupRetention(applied, at, l.truncAt); !ok {
		return nil
	}
	if p.s.rlog.NoSpace() {
		return nil // a flush of the store would wait for space too; truncate later
	}
	if at, ok, err = l.truncationLimit(at); err != nil || !ok {
		return err
	}
	if at > l.storeDurable {
		if l.flushing == nil {
			if l.flushing, err = p.db.StartSyncApplied(); err != nil {
				return err
			}
			l.flushFor = applied
		}
		select {
		case <-l.flushing:
			l.flushing, l.storeDurable = nil, l.flushFor
		default:
			return nil // truncate once the store is durable, an iteration later
		}
		if at > l.storeDurable {
			return nil // an older flush; the next call starts one that covers at
		}
	}
	term, err := l.ms.Term(at)
	if err != nil {
		return err
	}
	cs := l.conf.Truncate(at)
	if err := p.log.Truncate(at, term, cs); err != nil {
		return err
	}
	// The snapshot record tells raft where the log now starts (and what to send a follower
	// that needs more than the log has: see sendSnapshot).
	if _, err := l.ms.CreateSnapshot(at, &cs, nil); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
		return err
	}
	if err := l.ms.Compact(at); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return err
	}
	l.retained.compact(at)
	l.truncAt = at
	p.raftStats.logStart.Store(at + 1)
	return nil
}

// truncationPoint decides a truncation of a log last truncated at truncAt that holds entries
// up to last: once `every` entries more than the `keep` a truncation leaves are applied, it
// truncates keep entries before applied, but never past last. The store can be ahead of the
// log: a checkpoint installed as a snapshot holds the writes up to its own index, often past
// the snapshot's, until the log catches up (raft's storage knows no term past its last entry).
func truncationPoint(applied, last, truncAt, every, keep uint64) (at uint64, ok bool) {
	if applied < truncAt+every+keep {
		return 0, false
	}
	if at = min(applied-keep, last); at <= truncAt {
		return 0, false
	}
	return at, true
}

// send hands raft messages to the transport; snapshots go through a checkpoint transfer.
func (l *loop) send(msgs []raftpb.Message) {
	p := l.p
	if p.s.cutOff.Load() {
		return // but for snapshots, whose transfers fail on their own
	}
	for _, m := range msgs {
		if m.Type != raftpb.MsgSnap {
			l.markBeats(&m)
			l.markStallEpoch(&m)
			p.s.transport.Send(p.addressOf(m.To), p.pid, &m)
			continue
		}
		addr := p.addressOf(m.To)
		if addr == "" || l.sending[m.To] {
			l.rn.ReportSnapshot(m.To, raft.SnapshotFailure)
			continue
		}
		l.sending[m.To] = true
		p.raftStats.snapshotsSent.Add(1)
		l.toSend = append(l.toSend, outgoingSnapshot{m: m, addr: addr})
	}
}

// addressOf maps a raft id to a member's address ("" if unknown).
func (p *partition) addressOf(id uint64) string { return p.table().addrs[id] }

// applySnapshot makes a snapshot raft accepted the group's new starting point. The store
// was already replaced by installSnapshot.
func (l *loop) applySnapshot(snap raftpb.Snapshot, hs raftpb.HardState) error {
	p := l.p
	if err := p.log.InstallSnapshot(snap.Metadata, hs); err != nil {
		return err
	}
	if err := l.ms.ApplySnapshot(snap); err != nil {
		return err
	}
	l.retained.reset()
	l.conf.Reset(snap.Metadata.ConfState)
	l.truncAt = snap.Metadata.Index
	p.raftStats.logStart.Store(snap.Metadata.Index + 1)
	l.publishVoters()
	if l.installed < snap.Metadata.Index {
		return fmt.Errorf("replica: snapshot at %d applied over a store holding writes up to %d", snap.Metadata.Index, l.installed)
	}
	p.applied.Store(max(p.applied.Load(), snap.Metadata.Index))
	return nil
}
