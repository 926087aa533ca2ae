package meta

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/raftgroup"
	"github.com/gopegasus/pegasus/internal/raftlog"
	"github.com/gopegasus/pegasus/internal/raftnet"
	"github.com/gopegasus/pegasus/internal/rpc"
)

// metaGroup is the id of the metas' group in their raft log (which holds no other).
var metaGroup = idl.GPID{}

var (
	errNotLeader   = errors.New("meta: not the leader")
	errRaftStopped = errors.New("meta: raft group stopped")
)

// appliedMap is the cluster map as of a raft log index. The map is never modified once
// published: applying a mutation makes a new one.
type appliedMap struct {
	index uint64
	m     *clusterMap
}

// raftStatus is what the server needs of the raft group's state, published as a whole.
type raftStatus struct {
	term     uint64
	lead     uint64
	leader   string // the leader's address; "" when unknown
	isLeader bool
	// ready is set on the leader once it applied an entry of its own term: everything
	// committed before its election is in its map, so it may serve.
	ready  bool
	voters []string // addresses, in configuration order
}

func (s *raftStatus) equal(o *raftStatus) bool {
	return s.term == o.term && s.lead == o.lead && s.leader == o.leader && s.isLeader == o.isLeader &&
		s.ready == o.ready && slices.Equal(s.voters, o.voters)
}

// applyResult is what applying one proposed mutation gave.
type applyResult struct {
	res   result
	state appliedMap
}

type proposal struct {
	op   []byte // the JSON mutation
	done chan proposalDone
}

type proposalDone struct {
	r   applyResult
	err error
}

type confRequest struct {
	cc   raftpb.ConfChange
	done chan error
}

type inbound struct {
	from string
	msg  raftpb.Message
}

// raftNode is this meta's member of the metas' raft group, whose state machine is the
// cluster map. Its run goroutine owns the raft state; the server talks to it through
// channels and reads what it publishes (status, latest map) atomically.
type raftNode struct {
	id        uint64
	self      string
	dir       string
	lg        *slog.Logger
	group     raftlog.Group
	tick      time.Duration
	snapEvery uint64
	campaign  bool
	tr        *raftnet.Transport

	// Owned by run.
	rn          *raft.RawNode
	ms          *raft.MemoryStorage
	conf        raftgroup.ConfLog
	addrs       map[uint64]string
	state       appliedMap
	term        uint64
	appliedTerm uint64
	snapIndex   uint64
	lead        uint64
	waiters     *raftgroup.Waiters[chan proposalDone]
	confWait    *confWaiter
	removed     bool

	proposeC chan proposal
	confC    chan confRequest
	recvC    chan inbound

	// nonMember counts the messages dropped because their sender is not a member.
	nonMember atomic.Int64

	latest atomic.Pointer[appliedMap]
	status atomic.Pointer[raftStatus]
	done   chan struct{}

	// changed is closed (and replaced) whenever status changes.
	changed struct {
		sync.Mutex
		ch chan struct{}
	}
}

type confWaiter struct {
	nodeID uint64
	typ    raftpb.ConfChangeType
	done   chan error
}

// openRaft restores this meta's raft state from cfg.DataDir (or starts a new group, or waits
// to be added to an existing one when cfg.Join is set).
func openRaft(cfg Config, lg *slog.Logger, rl *raftlog.Log) (*raftNode, error) {
	r := &raftNode{
		id: cluster.MemberID(cfg.Advertise), self: cfg.Advertise, dir: cfg.DataDir, lg: lg,
		group: rl.Group(metaGroup), tick: cfg.RaftTick, snapEvery: uint64(cfg.SnapshotEntries),
		addrs:    make(map[uint64]string),
		waiters:  raftgroup.NewWaiters[chan proposalDone](),
		proposeC: make(chan proposal),
		confC:    make(chan confRequest),
		recvC:    make(chan inbound, 1024),
		done:     make(chan struct{}),
	}
	r.changed.ch = make(chan struct{})
	tcfg := raftnet.Config{Addr: r.self, RPCName: idl.RPCMetaRaft, Handler: r.receive, Logger: lg}
	if cfg.Secret != nil {
		tcfg.Conn.Peer = &rpc.PeerCredentials{Secret: cfg.Secret, Addr: r.self}
	}
	tr, err := raftnet.New(tcfg)
	if err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	r.tr = tr
	for _, a := range cfg.Metas {
		r.addrs[cluster.MemberID(a)] = a
	}
	r.addrs[r.id] = r.self

	ms, found, err := r.group.Load()
	if err != nil {
		return nil, fmt.Errorf("meta: raft log: %w", err)
	}
	snap, raw, haveSnap, err := readSnapshot(r.dir)
	if err != nil {
		return nil, err
	}
	fresh := !found && !haveSnap
	switch {
	case fresh && cfg.Join:
		// An empty member: the leader adds it (meta-add) and sends it a snapshot.
		r.state = appliedMap{m: newClusterMap()}
		lg.Info("meta waiting to be added to the group", "metas", cfg.Metas)
	case fresh:
		if snap, raw, err = r.bootstrap(cfg); err != nil {
			return nil, err
		}
		if ms, _, err = r.group.Load(); err != nil {
			return nil, fmt.Errorf("meta: raft log: %w", err)
		}
		haveSnap = true
	case !haveSnap:
		return nil, fmt.Errorf("meta: %s has a raft log but no %s", r.dir, snapshotFile)
	}
	if haveSnap {
		if ms, err = r.restore(ms, snap, raw); err != nil {
			return nil, err
		}
	}
	r.ms = ms
	rc := raftgroup.NewConfig(r.id, &freshSnapshots{MemoryStorage: ms, r: r}, r.state.index, lg)
	if r.rn, err = raft.NewRawNode(rc); err != nil {
		return nil, fmt.Errorf("meta: raft: %w", err)
	}
	// The first configured meta (or a lone one) does not wait for an election timeout.
	voters := r.conf.Current().Voters
	r.campaign = slices.Contains(voters, r.id) && (len(voters) == 1 || (len(cfg.Metas) > 0 && cfg.Metas[0] == r.self))
	r.publishLatest()
	r.status.Store(&raftStatus{voters: r.voterAddrs()})
	return r, nil
}

// bootstrap starts a new group whose members are cfg.Metas: its log begins with a snapshot
// at index 1 holding the configuration and an empty map, identical on every member.
func (r *raftNode) bootstrap(cfg Config) (*snapshot, []byte, error) {
	m := newClusterMap()
	var cs raftpb.ConfState
	for _, a := range cfg.Metas {
		cs.Voters = append(cs.Voters, cluster.MemberID(a))
	}
	snap := &snapshot{Index: 1, Term: 1, ConfState: cs, Metas: slices.Clone(cfg.Metas), Map: m}
	raw, err := json.Marshal(snap)
	if err != nil {
		return nil, nil, err
	}
	if err := writeSnapshot(r.dir, raw); err != nil {
		return nil, nil, err
	}
	if err := r.group.Truncate(1, 1, cs); err != nil {
		return nil, nil, fmt.Errorf("meta: raft log: %w", err)
	}
	if err := r.group.Save(raftpb.HardState{Term: 1, Commit: 1}, nil); err != nil {
		return nil, nil, fmt.Errorf("meta: raft log: %w", err)
	}
	r.lg.Info("meta group created", "metas", cfg.Metas)
	return snap, raw, nil
}

// restore rebuilds the raft storage from the saved snapshot and the log entries after it.
// The snapshot file is written before the log is truncated, so it may be ahead of the
// log's truncation point (a crash in between): the truncation is redone.
func (r *raftNode) restore(ms *raft.MemoryStorage, snap *snapshot, raw []byte) (*raft.MemoryStorage, error) {
	first, _ := ms.FirstIndex()
	if snap.Index+1 < first {
		return nil, fmt.Errorf("meta: %s (index %d) is older than the raft log (from %d)", snapshotFile, snap.Index, first)
	}
	if snap.Index+1 > first {
		if err := r.group.Truncate(snap.Index, snap.Term, snap.ConfState); err != nil {
			return nil, fmt.Errorf("meta: raft log: %w", err)
		}
	}
	hs, _, err := ms.InitialState()
	if err != nil {
		return nil, err
	}
	var ents []raftpb.Entry
	if last, _ := ms.LastIndex(); last > snap.Index {
		if ents, err = ms.Entries(snap.Index+1, last+1, math.MaxUint64); err != nil {
			return nil, fmt.Errorf("meta: raft log: %w", err)
		}
	}
	// Terms never decrease along a log: entries of an older term than the snapshot's are a
	// stale tail from before the snapshot was installed.
	for i, e := range ents {
		if e.Term < snap.Term {
			ents = ents[:i]
			break
		}
	}
	out := raft.NewMemoryStorage()
	if err := out.ApplySnapshot(raftpb.Snapshot{Data: raw, Metadata: raftpb.SnapshotMetadata{
		Index: snap.Index, Term: snap.Term, ConfState: snap.ConfState}}); err != nil {
		return nil, err
	}
	if err := out.Append(ents); err != nil {
		return nil, err
	}
	if hs.Term < snap.Term {
		hs.Term, hs.Vote = snap.Term, 0
	}
	hs.Commit = max(hs.Commit, snap.Index)
	if err := out.SetHardState(hs); err != nil {
		return nil, err
	}
	r.state = appliedMap{index: snap.Index, m: snap.Map}
	r.conf.Reset(snap.ConfState)
	r.term = hs.Term
	r.appliedTerm = snap.Term
	r.snapIndex = snap.Index
	for _, a := range snap.Metas {
		r.addrs[cluster.MemberID(a)] = a
	}
	return out, nil
}

// freshSnapshots is the raft storage: the log in memory (persisted by the raft loop), and
// snapshots made when raft asks for one, of the map as last applied. A stored snapshot could
// predate a membership change, and a meta being added must find itself in the snapshot's
// configuration. raft calls Snapshot from the raft loop only, which owns what it reads.
type freshSnapshots struct {
	*raft.MemoryStorage
	r *raftNode
}

func (s *freshSnapshots) Snapshot() (raftpb.Snapshot, error) {
	r := s.r
	at := r.state.index
	term, err := r.ms.Term(at)
	if err != nil {
		return raftpb.Snapshot{}, err
	}
	cs := r.conf.Current()
	raw, err := json.Marshal(&snapshot{Index: at, Term: term, ConfState: cs, Metas: r.memberAddrs(), Map: r.state.m})
	if err != nil {
		return raftpb.Snapshot{}, err
	}
	return raftpb.Snapshot{Data: raw, Metadata: raftpb.SnapshotMetadata{Index: at, Term: term, ConfState: cs}}, nil
}

// run drives the raft group until ctx ends. It returns an error when the raft log cannot be
// written: the meta must then stop.
func (r *raftNode) run(ctx context.Context) error {
	defer close(r.done)
	defer r.failWaiters(errRaftStopped)
	ticker := time.NewTicker(r.tick)
	defer ticker.Stop()
	for first := true; ; first = false {
		if err := r.drain(ctx); err != nil {
			r.lg.Error("meta raft group stopped: storage failure", "err", err)
			r.status.Store(&raftStatus{term: r.term, voters: r.voterAddrs()})
			r.notify()
			return err
		}
		if first && r.campaign {
			_ = r.rn.Campaign()
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			r.rn.Tick()
		case p := <-r.proposeC:
			r.propose(p)
		case c := <-r.confC:
			r.proposeConf(c)
		case in := <-r.recvC:
			if !r.fromMember(in.msg.From) {
				r.nonMember.Add(1)
				continue
			}
			if _, ok := r.addrs[in.msg.From]; !ok {
				r.addrs[in.msg.From] = in.from
			}
			_ = r.rn.Step(in.msg)
		}
	}
}

// drain handles every pending Ready: persist, send, apply, advance.
func (r *raftNode) drain(ctx context.Context) error {
	for r.rn.HasReady() {
		rd := r.rn.Ready()
		if !raft.IsEmptySnap(rd.Snapshot) {
			if err := r.install(rd.Snapshot); err != nil {
				return err
			}
		}
		if err := r.group.Save(rd.HardState, rd.Entries); err != nil {
			return err
		}
		if err := r.ms.Append(rd.Entries); err != nil {
			return err
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			if err := r.ms.SetHardState(rd.HardState); err != nil {
				return err
			}
			r.term = rd.HardState.Term
		}
		if rd.SoftState != nil {
			r.setLead(rd.SoftState.Lead)
		}
		var snapsTo []uint64
		for _, m := range rd.Messages {
			if m.Type == raftpb.MsgSnap {
				snapsTo = append(snapsTo, m.To)
			}
		}
		for i := range rd.Messages {
			r.tr.Send(r.addrs[rd.Messages[i].To], metaGroup, &rd.Messages[i])
		}
		if err := r.apply(rd.CommittedEntries); err != nil {
			return err
		}
		r.rn.Advance(rd)
		// Snapshots travel as one-way messages: report them sent. If one was lost, the
		// follower rejects the next append and the leader sends a snapshot again.
		for _, id := range snapsTo {
			r.rn.ReportSnapshot(id, raft.SnapshotFinish)
		}
	}
	if err := r.maybeSnapshot(); err != nil {
		return err
	}
	r.publish()
	return nil
}

// install makes a snapshot received from the leader this member's state. The snapshot file
// is written first; restore redoes the rest after a crash.
func (r *raftNode) install(s raftpb.Snapshot) error {
	snap, err := decodeSnapshot(s.Data)
	if err != nil {
		return err
	}
	if snap.Index != s.Metadata.Index || snap.Term != s.Metadata.Term {
		return fmt.Errorf("meta: snapshot data at %d/%d, metadata at %d/%d", snap.Index, snap.Term, s.Metadata.Index, s.Metadata.Term)
	}
	if err := writeSnapshot(r.dir, s.Data); err != nil {
		return err
	}
	if err := r.group.Truncate(s.Metadata.Index, s.Metadata.Term, s.Metadata.ConfState); err != nil {
		return err
	}
	if err := r.ms.ApplySnapshot(s); err != nil {
		return err
	}
	r.conf.Reset(s.Metadata.ConfState)
	for _, a := range snap.Metas {
		r.addrs[cluster.MemberID(a)] = a
	}
	r.snapIndex = s.Metadata.Index
	r.appliedTerm = s.Metadata.Term
	r.state = appliedMap{index: s.Metadata.Index, m: snap.Map}
	r.publishLatest()
	r.lg.Info("cluster map restored from the leader's snapshot", "index", s.Metadata.Index, "tables", len(snap.Map.Tables))
	return nil
}

func (r *raftNode) setLead(lead uint64) {
	if lead == r.lead {
		return
	}
	was := r.lead == r.id
	r.lead = lead
	if was && lead != r.id {
		// Proposals not applied yet have an unknown outcome.
		r.failWaiters(errNotLeader)
	}
	r.lg.Info("meta group leader", "leader", r.addrs[lead], "term", r.term, "self", lead == r.id)
}

func (r *raftNode) failWaiters(err error) {
	r.waiters.FailAll(func(w chan proposalDone) { w <- proposalDone{err: err} })
	if r.confWait != nil {
		r.confWait.done <- err
		r.confWait = nil
	}
}

func (r *raftNode) propose(p proposal) {
	if r.lead != r.id {
		p.done <- proposalDone{err: errNotLeader}
		return
	}
	id := r.waiters.NextID()
	data := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(p.op)), id)
	data = append(data, p.op...)
	if err := r.rn.Propose(data); err != nil {
		p.done <- proposalDone{err: fmt.Errorf("%w: %w", errNotLeader, err)}
		return
	}
	r.waiters.Add(id, p.done)
}

// proposeConf proposes a membership change after checking it makes sense.
func (r *raftNode) proposeConf(c confRequest) {
	fail := func(format string, args ...any) { c.done <- fmt.Errorf(format, args...) }
	if r.lead != r.id {
		c.done <- errNotLeader
		return
	}
	if r.confWait != nil {
		fail("meta: another membership change is in progress")
		return
	}
	addr := string(c.cc.Context)
	member := slices.Contains(r.conf.Current().Voters, c.cc.NodeID)
	switch c.cc.Type {
	case raftpb.ConfChangeAddNode:
		if member {
			fail("meta: %s is already a member", addr)
			return
		}
		r.addrs[c.cc.NodeID] = addr
	case raftpb.ConfChangeRemoveNode:
		if !member {
			fail("meta: %s is not a member", addr)
			return
		}
		if c.cc.NodeID == r.id {
			fail("meta: %s is the leader; stop it, then remove it on the new leader", addr)
			return
		}
	}
	if err := r.rn.ProposeConfChange(c.cc); err != nil {
		c.done <- err
		return
	}
	r.confWait = &confWaiter{nodeID: c.cc.NodeID, typ: c.cc.Type, done: c.done}
}

func (r *raftNode) apply(ents []raftpb.Entry) error {
	for i := range ents {
		e := &ents[i]
		if e.Index <= r.state.index {
			continue // already in the snapshot the map was restored from
		}
		switch e.Type {
		case raftpb.EntryNormal:
			r.applyMutation(e)
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			wasMember := slices.Contains(r.conf.Current().Voters, r.id)
			cc, err := r.conf.Apply(r.rn, e)
			if err != nil {
				return fmt.Errorf("meta: conf change at %d: %w", e.Index, err)
			}
			if cc != nil {
				r.appliedConf(*cc, wasMember)
			}
		}
		r.appliedTerm = e.Term
		if r.state.index != e.Index {
			r.state = appliedMap{index: e.Index, m: r.state.m}
			r.publishLatest()
		}
	}
	return nil
}

func (r *raftNode) applyMutation(e *raftpb.Entry) {
	if len(e.Data) == 0 {
		return // a new leader's empty entry
	}
	if len(e.Data) < 8 {
		r.lg.Error("skipping a malformed meta log entry", "index", e.Index)
		return
	}
	w, _ := r.waiters.Take(binary.BigEndian.Uint64(e.Data))
	var op mutation
	if err := json.Unmarshal(e.Data[8:], &op); err != nil {
		// Every meta decodes the same bytes the same way: skipping keeps them equal.
		r.lg.Error("skipping an undecodable meta log entry", "index", e.Index, "err", err)
		if w != nil {
			w <- proposalDone{err: err}
		}
		return
	}
	next := r.state.m.clone()
	res := next.apply(&op)
	if res.Code == 0 {
		r.state = appliedMap{index: e.Index, m: next}
	} else {
		r.state = appliedMap{index: e.Index, m: r.state.m}
	}
	r.publishLatest()
	if w != nil {
		w <- proposalDone{r: applyResult{res: res, state: r.state}}
	}
}

// appliedConf follows up a membership change just applied (a raftpb.ConfChange, the kind
// proposeConf proposes): the member's address, the log, the waiting proposer.
func (r *raftNode) appliedConf(cc raftpb.ConfChange, wasMember bool) {
	addr := string(cc.Context)
	if addr != "" && cluster.MemberID(addr) == cc.NodeID {
		r.addrs[cc.NodeID] = addr
	}
	r.lg.Info("meta group membership changed", "change", cc.Type.String(), "meta", addr, "voters", r.voterAddrs())
	if wasMember && !slices.Contains(r.conf.Current().Voters, r.id) && !r.removed {
		r.removed = true
		r.lg.Warn("this meta was removed from the meta group; it no longer takes part")
	}
	if w := r.confWait; w != nil && w.nodeID == cc.NodeID && w.typ == cc.Type {
		w.done <- nil
		r.confWait = nil
	}
}

// maybeSnapshot saves the map and truncates the log once enough entries were applied.
func (r *raftNode) maybeSnapshot() error {
	if r.state.index < r.snapIndex+r.snapEvery {
		return nil
	}
	return r.snapshot()
}

// snapshot saves the map as of the last applied entry and truncates the log there.
func (r *raftNode) snapshot() error {
	at := r.state.index
	term, err := r.ms.Term(at)
	if err != nil {
		return err
	}
	cs := r.conf.Truncate(at)
	snap := &snapshot{Index: at, Term: term, ConfState: cs, Metas: r.memberAddrs(), Map: r.state.m}
	raw, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	if err := writeSnapshot(r.dir, raw); err != nil {
		return err
	}
	if err := r.group.Truncate(at, term, cs); err != nil {
		return err
	}
	if _, err := r.ms.CreateSnapshot(at, &cs, raw); err != nil {
		return err
	}
	if err := r.ms.Compact(at); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return err
	}
	r.snapIndex = at
	r.lg.Debug("meta log truncated", "index", at)
	return nil
}

// memberAddrs returns the addresses of the voters and learners (ids without a known address
// are left out: a snapshot carries addresses only).
func (r *raftNode) memberAddrs() []string {
	var out []string
	cs := r.conf.Current()
	for _, id := range slices.Concat(cs.Voters, cs.Learners) {
		if a, ok := r.addrs[id]; ok {
			out = append(out, a)
		}
	}
	return out
}

func (r *raftNode) voterAddrs() []string {
	voters := r.conf.Current().Voters
	out := make([]string, 0, len(voters))
	for _, id := range voters {
		if a, ok := r.addrs[id]; ok {
			out = append(out, a)
		} else {
			out = append(out, fmt.Sprintf("raft-id-%x", id))
		}
	}
	return out
}

// publish makes the group's state visible to the server, and wakes it when it changed.
func (r *raftNode) publish() {
	st := &raftStatus{
		term:     r.term,
		lead:     r.lead,
		leader:   r.addrs[r.lead],
		isLeader: r.lead == r.id,
		voters:   r.voterAddrs(),
	}
	st.ready = st.isLeader && r.appliedTerm == r.term
	if r.lead == 0 {
		st.leader = ""
	}
	if prev := r.status.Load(); prev != nil && prev.equal(st) {
		return
	}
	r.status.Store(st)
	r.notify()
}

func (r *raftNode) notify() {
	r.changed.Lock()
	defer r.changed.Unlock()
	close(r.changed.ch)
	r.changed.ch = make(chan struct{})
}

// watch returns a channel closed at the next status change: read the status after calling
// it, so no change is missed.
func (r *raftNode) watch() <-chan struct{} {
	r.changed.Lock()
	defer r.changed.Unlock()
	return r.changed.ch
}

// submit replicates op through the group and waits until it is applied. It fails with
// errNotLeader when this meta is not the leader or stops being it before op is applied (op
// may then still be applied later), with ctx's error, or with errRaftStopped.
func (r *raftNode) submit(ctx context.Context, op *mutation) (applyResult, error) {
	b, err := json.Marshal(op)
	if err != nil {
		return applyResult{}, err
	}
	p := proposal{op: b, done: make(chan proposalDone, 1)}
	d, err := raftgroup.Submit(ctx, r.proposeC, p, p.done, r.done, errRaftStopped, errRaftStopped)
	if err != nil {
		return applyResult{}, err
	}
	return d.r, d.err
}

// changeMembers proposes a membership change and waits until it is applied, at most
// timeout.
func (r *raftNode) changeMembers(cc raftpb.ConfChange, timeout time.Duration) error {
	c := confRequest{cc: cc, done: make(chan error, 1)}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r.confC <- c:
	case <-t.C:
		return errors.New("meta: timed out")
	case <-r.done:
		return errRaftStopped
	}
	select {
	case err := <-c.done:
		return err
	case <-t.C:
		return errors.New("meta: timed out waiting for the change to be committed (is a majority of the metas up?)")
	case <-r.done:
		return errRaftStopped
	}
}

// fromMember reports whether the group takes a message from id: a voter or learner of its
// configuration, or anyone (authenticated, when the cluster has a secret) while this meta
// is not a member yet (it waits for the leader that adds it). Run goroutine only.
func (r *raftNode) fromMember(id uint64) bool {
	cs := r.conf.Current()
	return raftgroup.IsMember(cs, id) || !raftgroup.IsMember(cs, r.id)
}

// receive hands a message from another meta to the group. Messages of another group, or
// that do not come from the address they claim, are dropped; so are messages arriving faster
// than they are handled (raft retries).
func (r *raftNode) receive(from string, group idl.GPID, m raftpb.Message) {
	if group != metaGroup || cluster.MemberID(from) != m.From {
		return
	}
	select {
	case r.recvC <- inbound{from: from, msg: m}:
	default:
	}
}

// publishLatest makes the map as last applied visible to the server (a copy: r.state is the
// loop's).
func (r *raftNode) publishLatest() {
	st := r.state
	r.latest.Store(&st)
}
