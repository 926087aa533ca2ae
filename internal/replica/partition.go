package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/raftlog"
	"github.com/gopegasus/pegasus/internal/storage"
)

// Partition tuning.
const (
	// maxWritesPerEntry bounds how many client writes one raft entry batches.
	maxWritesPerEntry = 256
	// maxEntryBytes bounds one entry's payload (a single larger write still goes alone).
	maxEntryBytes = 4 << 20
	// compactEvery is how many applied entries accumulate before the raft log is truncated.
	compactEvery = 10000
	// keepEntries is how many applied entries stay in the log after a truncation, so a
	// follower slightly behind can catch up from the log.
	keepEntries = 1000
)

var (
	errNotLeader = errors.New("replica: not the primary")
	errStopped   = errors.New("replica: partition stopped")
)

// raftID maps a replica server address to its raft member id in every group.
func raftID(addr string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(addr))
	if id := h.Sum64(); id != 0 {
		return id
	}
	return 1
}

// tableInfo is what a partition knows of its table, replaced as a whole on updates.
type tableInfo struct {
	appName        string
	partitionCount int32
	members        []string
	envs           map[string]string
	defaultTTL     int32
}

// readWait is a read waiting until the partition has applied its read index.
type readWait struct {
	done chan error
}

// partition is one partition replica: a storage database and a raft group member. Its raft
// state is owned by the run goroutine; request handlers talk to it through channels.
type partition struct {
	s   *Server
	pid idl.GPID
	lg  *slog.Logger
	db  *storage.DB
	log raftlog.Group
	id  uint64

	proposeC chan *write
	readC    chan *readWait
	recvC    chan raftpb.Message

	isLeader atomic.Bool
	term     atomic.Uint64
	applied  atomic.Uint64
	info     atomic.Pointer[tableInfo]
	voters   atomic.Pointer[[]string]

	stop chan struct{}
	done chan struct{}
}

func (p *partition) table() *tableInfo { return p.info.Load() }

func (p *partition) setTable(a cluster.Assignment) {
	ti := &tableInfo{appName: a.AppName, partitionCount: a.PartitionCount, members: a.Members, envs: a.Envs}
	if prev := p.info.Load(); prev != nil {
		ti.defaultTTL = prev.defaultTTL
	}
	// default_ttl: a positive parse replaces the setting; negative or unparsable values
	// are ignored and the previous setting stays (protocol.md §5.2).
	if v, ok := a.Envs["default_ttl"]; ok {
		var n int32
		if _, err := fmt.Sscan(v, &n); err == nil && n >= 0 {
			ti.defaultTTL = n
		}
	}
	p.info.Store(ti)
}

// state reports the replica for the meta server.
func (p *partition) state() cluster.ReplicaState {
	st := cluster.ReplicaState{
		AppID: p.pid.AppID, PartitionIndex: p.pid.PartitionIndex,
		IsLeader: p.isLeader.Load(), Term: p.term.Load(), AppliedIndex: p.applied.Load(),
	}
	if v := p.voters.Load(); v != nil {
		st.Voters = *v
	}
	return st
}

// propose hands a write to the raft loop and waits for its result.
func (p *partition) propose(ctx context.Context, w *write) writeResult {
	if !p.isLeader.Load() {
		return writeResult{err: errNotLeader}
	}
	select {
	case p.proposeC <- w:
	case <-ctx.Done():
		return writeResult{err: ctx.Err()}
	case <-p.done:
		return writeResult{err: errStopped}
	}
	select {
	case r := <-w.done:
		return r
	case <-ctx.Done():
		return writeResult{err: ctx.Err()}
	case <-p.done:
		return writeResult{err: errStopped}
	}
}

// readBarrier waits until a linearizable read may be served from the local store: the
// replica is the leader and has applied everything committed before the read arrived
// (raft ReadIndex).
func (p *partition) readBarrier(ctx context.Context) error {
	if !p.isLeader.Load() {
		return errNotLeader
	}
	rw := &readWait{done: make(chan error, 1)}
	select {
	case p.readC <- rw:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done:
		return errStopped
	}
	select {
	case err := <-rw.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done:
		return errStopped
	}
}

// loop is the partition's raft state machine. It owns rn and everything in ls.
type loop struct {
	p        *partition
	rn       *raft.RawNode
	ms       *raft.MemoryStorage
	cs       raftpb.ConfState
	waiters  map[uint64][]*write
	nextID   uint64
	reads    map[uint64][]*readWait // by read-index context, until raft answers
	readyAt  []readBatch            // answered, waiting for apply
	nextRead uint64
	lead     uint64
	truncAt  uint64 // last truncation point
	entryBuf []byte
}

type readBatch struct {
	index uint64
	waits []*readWait
}

// newLoop restores or bootstraps the partition's raft group.
func newLoop(p *partition, members []string) (*loop, error) {
	ms, found, err := p.log.Load()
	if err != nil {
		return nil, err
	}
	snap, err := ms.Snapshot()
	if err != nil {
		return nil, err
	}
	cfg := &raft.Config{
		ID:              p.id,
		ElectionTick:    10,
		HeartbeatTick:   1,
		Storage:         ms,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		CheckQuorum:     true,
		PreVote:         true,
		// Entries after the last truncation point are redelivered on restart: storage
		// skips those it already holds, and conf changes are re-applied.
		Applied: snap.Metadata.Index,
		Logger:  raftlog.Logger{LG: p.lg},
	}
	rn, err := raft.NewRawNode(cfg)
	if err != nil {
		return nil, fmt.Errorf("replica: raft group %v: %w", p.pid, err)
	}
	l := &loop{
		p: p, rn: rn, ms: ms, cs: snap.Metadata.ConfState,
		waiters: make(map[uint64][]*write),
		nextID:  rand.Uint64() &^ (1<<32 - 1),
		reads:   make(map[uint64][]*readWait),
		truncAt: snap.Metadata.Index,
	}
	if !found {
		peers := make([]raft.Peer, 0, len(members))
		for _, m := range members {
			peers = append(peers, raft.Peer{ID: raftID(m)})
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
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for first := true; ; first = false {
		if err := l.drainReady(); err != nil {
			p.lg.Error("partition stopped: storage failure", "err", err)
			p.isLeader.Store(false)
			p.s.notifyMeta()
			return
		}
		if first && campaign {
			// The preferred primary (or a lone voter) does not wait for an election
			// timeout; the group's configuration is applied by now.
			_ = l.rn.Campaign()
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-p.stop:
			return
		case <-ticker.C:
			l.rn.Tick()
		case w := <-p.proposeC:
			l.proposeBatch(w)
		case rw := <-p.readC:
			l.readIndex(rw)
		case m := <-p.recvC:
			_ = l.rn.Step(m)
		}
	}
}

// proposeBatch proposes w and every other write already queued as one raft entry.
func (l *loop) proposeBatch(first *write) {
	p := l.p
	batch := []*write{first}
	size := len(first.data)
drain:
	for len(batch) < maxWritesPerEntry && size < maxEntryBytes {
		select {
		case w := <-p.proposeC:
			batch = append(batch, w)
			size += len(w.data)
		default:
			break drain
		}
	}
	if l.lead != p.id {
		failWrites(batch, errNotLeader)
		return
	}
	ti := p.table()
	l.nextID++
	id := l.nextID
	l.entryBuf = appendEntry(l.entryBuf[:0], id, time.Now(), ti.defaultTTL, batch)
	// raft keeps the slice in its unstable log: hand it a copy.
	data := append([]byte(nil), l.entryBuf...)
	if err := l.rn.Propose(data); err != nil {
		failWrites(batch, errNotLeader)
		return
	}
	l.waiters[id] = batch
}

func failWrites(ws []*write, err error) {
	for _, w := range ws {
		w.done <- writeResult{err: err}
	}
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
	l.nextRead++
	var rctx [8]byte
	binary.BigEndian.PutUint64(rctx[:], l.nextRead)
	l.reads[l.nextRead] = batch
	l.rn.ReadIndex(rctx[:])
}

// drainReady processes every pending Ready: persist, send, apply, advance.
func (l *loop) drainReady() error {
	p := l.p
	for l.rn.HasReady() {
		rd := l.rn.Ready()
		if rd.SoftState != nil {
			l.setLeader(rd.SoftState.Lead)
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			p.term.Store(rd.HardState.Term)
		}
		if err := p.log.Save(rd.HardState, rd.Entries); err != nil {
			return err
		}
		if err := l.ms.Append(rd.Entries); err != nil {
			return err
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			if err := l.ms.SetHardState(rd.HardState); err != nil {
				return err
			}
		}
		p.s.transport.send(p.pid, rd.Messages)
		for _, rs := range rd.ReadStates {
			if len(rs.RequestCtx) != 8 {
				continue
			}
			id := binary.BigEndian.Uint64(rs.RequestCtx)
			if waits, ok := l.reads[id]; ok {
				delete(l.reads, id)
				l.readyAt = append(l.readyAt, readBatch{index: rs.Index, waits: waits})
			}
		}
		if err := l.apply(rd.CommittedEntries); err != nil {
			return err
		}
		l.releaseReads()
		l.rn.Advance(rd)
	}
	return l.maybeTruncate()
}

func (l *loop) setLeader(lead uint64) {
	p := l.p
	if lead == l.lead {
		return
	}
	was := l.lead == p.id
	l.lead = lead
	now := lead == p.id
	p.isLeader.Store(now)
	if was && !now {
		// Writes proposed but not yet applied have an unknown outcome; reads must retry
		// on the new primary.
		l.failAll(errNotLeader)
	}
	p.lg.Info("partition leadership", "leader", now, "term", l.rn.BasicStatus().Term)
	p.s.notifyMeta()
}

func (l *loop) failAll(err error) {
	for id, ws := range l.waiters {
		failWrites(ws, err)
		delete(l.waiters, id)
	}
	for id, rs := range l.reads {
		for _, rw := range rs {
			rw.done <- err
		}
		delete(l.reads, id)
	}
	for _, rb := range l.readyAt {
		for _, rw := range rb.waits {
			rw.done <- err
		}
	}
	l.readyAt = nil
}

func (l *loop) apply(ents []raftpb.Entry) error {
	p := l.p
	for i := range ents {
		e := &ents[i]
		switch e.Type {
		case raftpb.EntryNormal:
			if len(e.Data) > 0 {
				if err := l.applyWrites(e); err != nil {
					return err
				}
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return fmt.Errorf("replica: conf change at %d: %w", e.Index, err)
			}
			l.cs = *l.rn.ApplyConfChange(cc)
			l.publishVoters()
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if err := cc.Unmarshal(e.Data); err != nil {
				return fmt.Errorf("replica: conf change at %d: %w", e.Index, err)
			}
			l.cs = *l.rn.ApplyConfChange(cc)
			l.publishVoters()
		}
		p.applied.Store(e.Index)
	}
	return nil
}

func (l *loop) applyWrites(e *raftpb.Entry) error {
	p := l.p
	id, batch, err := decodeEntry(e.Data)
	if err != nil {
		// Every replica decodes the same bytes the same way, so skipping keeps them equal.
		p.lg.Error("skipping undecodable raft entry", "index", e.Index, "err", err)
		return nil
	}
	ws := l.waiters[id]
	delete(l.waiters, id)
	if e.Index <= p.db.LastAppliedIndex() {
		// Replayed after a restart: already in the store.
		failWrites(ws, errNotLeader)
		return nil
	}
	batch.Index = e.Index
	results, err := p.db.Apply(&batch)
	if err != nil {
		failWrites(ws, err)
		return err
	}
	if len(ws) != len(results) {
		failWrites(ws, errNotLeader) // not our proposal after all
		return nil
	}
	for i, w := range ws {
		w.done <- writeResult{res: results[i], decree: int64(e.Index)}
	}
	return nil
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

// publishVoters records the group's voters (as addresses, where known) for the meta report.
func (l *loop) publishVoters() {
	byID := map[uint64]string{}
	if ti := l.p.table(); ti != nil {
		for _, m := range ti.members {
			byID[raftID(m)] = m
		}
	}
	byID[l.p.id] = l.p.s.addr
	vs := make([]string, 0, len(l.cs.Voters))
	for _, id := range l.cs.Voters {
		if a, ok := byID[id]; ok {
			vs = append(vs, a)
		} else {
			vs = append(vs, fmt.Sprintf("raft-id-%x", id))
		}
	}
	l.p.voters.Store(&vs)
}

// maybeTruncate drops applied entries from the raft log once enough accumulated, after
// making the store durable through them.
func (l *loop) maybeTruncate() error {
	p := l.p
	applied := p.applied.Load()
	if applied < l.truncAt+compactEvery+keepEntries {
		return nil
	}
	at := applied - keepEntries
	if err := p.db.SyncApplied(); err != nil {
		return err
	}
	term, err := l.ms.Term(at)
	if err != nil {
		return err
	}
	if err := p.log.Truncate(at, term, l.cs); err != nil {
		return err
	}
	if err := l.ms.Compact(at); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return err
	}
	l.truncAt = at
	return nil
}
