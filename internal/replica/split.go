package replica

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/durable"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/storage"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Partition split, on the replica side (the meta drives it: package meta, split.go). Each
// replica of a parent partition builds its child's copy on its own server:
//
//  1. While the meta's order says SPLITTING, it takes a checkpoint of its store (hard links;
//     the loop only waits for a short flush) into the child's directory, opens it as a store
//     that owns the child's half (storage's Own: the parent's half is refused and deleted in
//     the background), then applies to it every entry of the parent's raft log after the
//     checkpoint, a bounded number per turn of the loop, until it has caught up, and from
//     then on each entry right after the parent applied it. The copy is "ready" then; the
//     replica reports it to the meta. The log is not truncated past what the copy holds.
//  2. Once the meta sees the copies ready on a majority of the parent's members (the leader
//     among them), its order says Commit, and the parent's leader proposes a cut-over entry.
//     Applying it, each replica brings its copy up to the entry before (synchronously: it is
//     ready, so only the entries of the last turn are left), records the copy complete with
//     the parent group's voters, and closes it; then its own store records the doubled
//     partition count, so from that entry on it refuses the child's half (ERR_SPLITTING
//     until the meta reports the child registered, ERR_PARENT_PARTITION_MISUSED after; a
//     keyed request refused so is sent on to the child instead, splitforward.go), at request
//     time, after a read's barrier, and at apply time for writes accepted before, and
//     deletes its copy of that half in the background. A replica without a ready copy then
//     drops what it had.
//  3. The child's replica on that server then opens the complete copy as a raft group whose
//     log starts with a snapshot at the cut-over index holding those voters: every copy is
//     the child's half of the same parent state, so they start identical. A member without a
//     copy (it missed the split, or received a snapshot meanwhile) starts empty and receives
//     a snapshot from the child's leader. The child's leader reports to the meta, which
//     registers it (its ballot, -1 until then, becomes its term), and clients go there.
//
// Pausing or cancelling (the order's status) drops the copies. The copy's state is in a file
// of the child's directory, so a replica that restarts resumes from what it holds.

// controlVersion is the first byte of the raft entries that are not client writes.
const controlVersion = 2

// Control entry kinds.
const controlSplit = 1

// splitMarkerFile records, in a child partition's directory, the copy built there.
const splitMarkerFile = "split.json"

// Split copy states.
const (
	copyBuilding = "building" // the parent replica here is building it
	copyComplete = "complete" // cut over: the child's replica may open it
)

// splitMarker is the content of splitMarkerFile.
type splitMarker struct {
	State  string `json:"state"`
	Parent int32  `json:"parent"`
	Count  int32  `json:"count"` // the table's partition count after the split
	// Index is the parent log index of the cut-over, and Voters the parent group's voters
	// then (raft ids): the child's group starts from them.
	Index  uint64   `json:"index,omitempty"`
	Voters []uint64 `json:"voters,omitempty"`
}

func readSplitMarker(dir string) (*splitMarker, error) {
	raw, err := os.ReadFile(filepath.Join(dir, splitMarkerFile))
	if err != nil {
		return nil, err
	}
	var m splitMarker
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("replica: %s: %w", filepath.Join(dir, splitMarkerFile), err)
	}
	return &m, nil
}

func writeSplitMarker(dir string, m *splitMarker) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return durable.ReplaceFile(filepath.Join(dir, splitMarkerFile), raw)
}

// splitCopy is the child's copy a parent replica builds (the loop's).
type splitCopy struct {
	child    idl.GPID
	count    int32
	dir      string // the child's partition directory
	db       *storage.DB
	mirrored uint64 // the last parent log index the copy went through
}

// splitCheckpoint is the result of the checkpoint that starts a copy.
type splitCheckpoint struct {
	count int32
	index uint64
	err   error
}

// Split tuning.
const (
	// mirrorBatch bounds the parent log entries a turn of the loop applies to a copy that
	// catches up.
	mirrorBatch = 256
	// mirrorBytes bounds the bytes of entries read at once.
	mirrorBytes = 8 << 20
	// splitProposeEvery spaces the leader's cut-over proposals (a lost one is proposed again).
	splitProposeEvery = 3 * time.Second
)

// childOf returns the child of this parent partition in a split to count partitions.
func (p *partition) childOf(count int32) idl.GPID {
	return idl.GPID{AppID: p.pid.AppID, PartitionIndex: p.pid.PartitionIndex + count/2}
}

// advanceSplit moves the copy toward what the meta's order asks: start it, catch it up,
// drop it; and, on the leader, proposes the cut-over. It runs on the loop.
func (l *loop) advanceSplit(ctx context.Context) {
	p := l.p
	order := p.table().split
	want := order != nil && order.Status == idl.SplitSplitting && p.ownCount.Load() < order.NewCount
	if l.split != nil && (!want || l.split.count != order.NewCount) {
		l.dropCopy("the split is no longer in progress")
	}
	if !want || l.splitCheckpointing {
		return
	}
	if l.split == nil {
		l.startCopy(ctx, order.NewCount)
		return
	}
	if err := l.mirror(p.applied.Load(), mirrorBatch); err != nil {
		l.dropCopy(err.Error())
		return
	}
	l.publishSplit()
	if order.Commit && l.lead == p.id && time.Since(l.splitProposed) >= splitProposeEvery {
		l.splitProposed = time.Now()
		data := binary.BigEndian.AppendUint32([]byte{controlVersion, controlSplit}, uint32(order.NewCount))
		if err := l.rn.Propose(data); err == nil {
			p.lg.Info("split cut-over proposed", "count", order.NewCount)
		}
	}
}

// startCopy starts the checkpoint of a new copy, in a goroutine of the partition; its
// result comes back on splitC.
func (l *loop) startCopy(ctx context.Context, count int32) {
	p := l.p
	child := p.childOf(count)
	if p.s.partition(child) != nil {
		return // the child's replica already runs here (this one lags): nothing to build
	}
	dir := p.s.partitionDir(child)
	l.splitCheckpointing = true
	p.wg.Go(func() {
		res := splitCheckpoint{count: count}
		res.index, res.err = p.checkpointCopy(dir, count)
		select {
		case p.splitC <- res:
		case <-ctx.Done():
		}
	})
}

// checkpointCopy makes dir a fresh copy of the partition's store, recorded as building.
func (p *partition) checkpointCopy(dir string, count int32) (uint64, error) {
	if err := os.RemoveAll(dir); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	if err := writeSplitMarker(dir, &splitMarker{State: copyBuilding, Parent: p.pid.PartitionIndex, Count: count}); err != nil {
		return 0, err
	}
	db, release := p.readDB()
	defer release()
	return db.Checkpoint(filepath.Join(dir, "data"))
}

// checkpointDone opens the copy a checkpoint made. It runs on the loop.
func (l *loop) checkpointDone(res splitCheckpoint) {
	p := l.p
	l.splitCheckpointing = false
	child := p.childOf(res.count)
	if res.err != nil {
		p.lg.Warn("split: checkpoint of the child's copy failed; will retry", "child", child.String(), "err", res.err)
		_ = os.RemoveAll(p.s.partitionDir(child))
		return
	}
	if err := l.openCopy(child, res.count); err != nil {
		p.lg.Warn("split: opening the child's copy failed; will retry", "child", child.String(), "err", err)
		_ = os.RemoveAll(p.s.partitionDir(child))
		return
	}
	p.lg.Info("split: child's copy checkpointed, catching up from the log", "child", child.String(), "index", res.index)
}

// openCopy opens the copy in the child's directory and makes it own the child's half.
func (l *loop) openCopy(child idl.GPID, count int32) error {
	p := l.p
	ti := p.table()
	db, err := p.s.openStore(child, &tableInfo{partitionCount: count, envs: ti.envs}, p.lg.With("copy", child.String()))
	if err != nil {
		return err
	}
	if err := db.Own(count); err != nil {
		_ = db.Close()
		return err
	}
	l.split = &splitCopy{child: child, count: count, dir: p.s.partitionDir(child), db: db, mirrored: db.LastAppliedIndex()}
	return nil
}

// resumeCopy reopens, at the partition's start, a copy this replica was building when it
// stopped: it goes on from what it holds (the log was not truncated past it).
func (l *loop) resumeCopy() {
	p := l.p
	order := p.table().split
	if order == nil {
		return
	}
	child := p.childOf(order.NewCount)
	m, err := readSplitMarker(p.s.partitionDir(child))
	if err != nil || m.State != copyBuilding || m.Parent != p.pid.PartitionIndex || m.Count != order.NewCount {
		return
	}
	if err := l.openCopy(child, order.NewCount); err != nil {
		p.lg.Warn("split: reopening the child's copy failed; it will be built again", "child", child.String(), "err", err)
		_ = os.RemoveAll(p.s.partitionDir(child))
		return
	}
	p.lg.Info("split: child's copy reopened", "child", child.String(), "applied", l.split.db.LastAppliedIndex())
}

// mirror applies to the copy the parent log entries after what it went through, up to to,
// at most limit of them (0: no limit). It fails when the log no longer has them.
func (l *loop) mirror(to uint64, limit int) error {
	c := l.split
	for c.mirrored < to {
		hi := to
		if limit > 0 {
			hi = min(to, c.mirrored+uint64(limit))
		}
		ents, err := l.ms.Entries(c.mirrored+1, hi+1, mirrorBytes)
		if errors.Is(err, raft.ErrCompacted) {
			return fmt.Errorf("the parent's log no longer holds entry %d", c.mirrored+1)
		}
		if err != nil {
			return err
		}
		for i := range ents {
			if err := l.mirrorEntry(&ents[i]); err != nil {
				return err
			}
			c.mirrored = ents[i].Index
		}
		if limit > 0 {
			return nil
		}
	}
	return nil
}

// mirrorEntry applies one parent log entry to the copy: its writes of the child's half (the
// copy refuses the others).
func (l *loop) mirrorEntry(e *raftpb.Entry) error {
	db := l.split.db
	if e.Type != raftpb.EntryNormal || len(e.Data) == 0 || e.Data[0] != entryVersion || e.Index <= db.LastAppliedIndex() {
		return nil
	}
	_, batch, err := decodeEntry(e.Data)
	if err != nil {
		return nil // the parent skipped it too
	}
	batch.Index = e.Index
	_, err = db.Apply(&batch)
	return err
}

// dropCopy closes and deletes the copy.
func (l *loop) dropCopy(why string) {
	c := l.split
	l.split = nil
	l.p.splitProgress.Store(nil)
	if err := c.db.Close(); err != nil {
		l.p.lg.Warn("split: close the child's copy", "err", err)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		l.p.lg.Warn("split: remove the child's copy", "err", err)
	}
	l.p.lg.Info("split: child's copy dropped", "child", c.child.String(), "why", why)
}

// publishSplit records the copy's progress for the meta report.
func (l *loop) publishSplit() {
	c := l.split
	l.p.splitProgress.Store(&cluster.SplitProgress{Child: c.child.PartitionIndex, Ready: c.mirrored >= l.p.applied.Load(),
		Mirrored: c.mirrored})
}

// applyControl applies an entry that is not a batch of client writes.
func (l *loop) applyControl(e *raftpb.Entry) error {
	if len(e.Data) < 6 || e.Data[1] != controlSplit {
		l.p.lg.Error("skipping an unknown control entry", "index", e.Index)
		return nil
	}
	return l.applyCutOver(e.Index, int32(binary.BigEndian.Uint32(e.Data[2:])))
}

// applyCutOver applies the split's cut-over at index: the copy is completed (when it is
// ready) and the store records the doubled count.
func (l *loop) applyCutOver(index uint64, count int32) error {
	p := l.p
	db := p.db
	if db.PartitionCount() >= count || index <= db.LastAppliedIndex() {
		p.ownCount.Store(max(p.ownCount.Load(), db.PartitionCount()))
		return nil // applied before (the log is replayed after a restart)
	}
	if c := l.split; c != nil && c.count == count {
		if err := l.mirror(index-1, 0); err != nil {
			l.dropCopy(err.Error())
		} else if err := l.completeCopy(index); err != nil {
			p.lg.Warn("split: completing the child's copy failed; the child's replica here will be rebuilt", "err", err)
			l.dropCopy(err.Error())
		}
	}
	if _, err := db.Apply(&storage.Batch{Index: index, PartitionCount: count}); err != nil {
		return err
	}
	p.ownCount.Store(count)
	p.lg.Info("split cut over: the child's half is no longer served here", "count", count, "index", index)
	p.s.notifyMeta()
	return nil
}

// completeCopy records the copy complete as of the cut-over at index, with the voters the
// child's group starts with, and closes it.
func (l *loop) completeCopy(index uint64) error {
	c := l.split
	if err := c.db.SyncApplied(); err != nil {
		return err
	}
	m := &splitMarker{State: copyComplete, Parent: l.p.pid.PartitionIndex, Count: c.count, Index: index,
		Voters: l.conf.Current().Voters}
	if err := c.db.Close(); err != nil {
		return err
	}
	if err := writeSplitMarker(c.dir, m); err != nil {
		return err
	}
	l.split = nil
	l.p.splitProgress.Store(nil)
	l.p.lg.Info("split: child's copy complete", "child", c.child.String(), "index", index)
	return nil
}

// truncationLimit caps a truncation of the parent's log so the copy being built can still
// read every entry it has not gone through, once durable (it is synced first). ok is false
// when no truncation may happen now.
func (l *loop) truncationLimit(at uint64) (uint64, bool, error) {
	if l.splitCheckpointing {
		return 0, false, nil
	}
	if l.split == nil {
		return at, true, nil
	}
	if err := l.split.db.SyncApplied(); err != nil {
		return 0, false, err
	}
	lim := min(at, l.split.db.LastAppliedIndex())
	return lim, lim > l.truncAt, nil
}

// closeSplit closes the copy when the loop exits (it is kept, and resumed at the next start).
func (l *loop) closeSplit() {
	if c := l.split; c != nil {
		l.split = nil
		if err := c.db.Close(); err != nil {
			l.p.lg.Warn("split: close the child's copy", "err", err)
		}
	}
}

// splitRefusal is the envelope error for a key whose partition, by the partition count the
// store owns by, is not this one: ERR_SPLITTING while the meta still names this partition
// for it (the child is not registered yet: the client is right, and retries), else
// ERR_PARENT_PARTITION_MISUSED (the client refreshes its configuration).
func (p *partition) splitRefusal(hash uint64) wire.Code {
	if n := p.table().partitionCount; n > 0 && key.Partition(hash, int(n)) == int(p.pid.PartitionIndex) {
		return wire.ErrSplitting
	}
	return wire.ErrParentPartitionMisused
}

// childInit is how a split child's replica starts: from the copy its parent's replica
// completed here (init), or empty, joining its group. ready is false while the parent's
// replica here still builds the copy, or has not cut over yet.
func (s *Server) childInit(a cluster.Assignment) (init *splitMarker, ready bool) {
	dir := s.partitionDir(idl.GPID{AppID: a.AppID, PartitionIndex: a.PartitionIndex})
	if m, err := readSplitMarker(dir); err == nil {
		if m.State == copyComplete {
			return m, true
		}
		if s.partition(idl.GPID{AppID: a.AppID, PartitionIndex: m.Parent}) != nil {
			return nil, false // its parent's replica is building it
		}
		_ = os.RemoveAll(dir) // left over: the child's replica starts empty
	}
	if a.SplitParent > 0 {
		parent := s.partition(idl.GPID{AppID: a.AppID, PartitionIndex: a.SplitParent - 1})
		if parent != nil && parent.ownCount.Load() < a.PartitionCount {
			return nil, false
		}
	}
	return nil, true
}

// initChildLog starts a child's raft log from its complete copy: a snapshot at the cut-over
// index with the parent group's voters then. It runs before the child's loop starts.
func initChildLog(p *partition, m *splitMarker) error {
	meta := raftpb.SnapshotMetadata{Index: m.Index, Term: 1, ConfState: raftpb.ConfState{Voters: m.Voters}}
	return p.log.InstallSnapshot(meta, raftpb.HardState{Term: 1, Commit: m.Index})
}

// SplitLeftovers returns how many partition replicas of table appID on this server still
// hold records of another partition after a split (their background deletion has not
// finished), and how many replicas of the table it hosts.
func (s *Server) SplitLeftovers(appID int32) (left, hosted int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for pid, p := range s.parts {
		if pid.AppID != appID {
			continue
		}
		hosted++
		db, release := p.readDB()
		if !db.Purged() {
			left++
		}
		release()
	}
	return left, hosted
}
