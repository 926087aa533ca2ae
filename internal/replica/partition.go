package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/lifecycle"
	"github.com/gopegasus/pegasus/internal/raftgroup"
	"github.com/gopegasus/pegasus/internal/raftlog"
	"github.com/gopegasus/pegasus/internal/storage"
)

// Partition tuning.
const (
	// maxWritesPerEntry bounds how many client writes one raft entry batches.
	maxWritesPerEntry = 256
	// maxEntryBytes bounds one entry's payload (a single larger write still goes alone).
	maxEntryBytes = 4 << 20
)

var (
	// errNotLeader: the request was refused before it reached the raft log; it had no
	// effect and may be sent again (to the new primary).
	errNotLeader = errors.New("replica: not the primary")
	errStopped   = errors.New("replica: partition stopped")
	// errOutcomeUnknown: the write was proposed, then the replica lost its leadership (or
	// stopped) before it was applied here. Raft may still commit it under the next leader,
	// so the client must not assume either outcome: it gets ERR_TIMEOUT, which clients do
	// not retry for writes (retrying could apply the write twice).
	errOutcomeUnknown = errors.New("replica: write outcome unknown (leadership lost while it was pending)")
)

// tableInfo is what a partition knows of its table, replaced as a whole on updates.
type tableInfo struct {
	appName        string
	partitionCount int32
	members        []string
	envs           map[string]string
	defaultTTL     int32
	join           bool
	// split is the meta's order to a parent partition being split (split.go).
	split *cluster.SplitOrder
	// addrs maps the raft id of every member this replica has known (current or former)
	// to its address, so voters that left the placement are still named and reachable.
	addrs map[uint64]string
	// dups are the table's duplications (dup.go): the primary ships them, every replica
	// keeps the log they have not confirmed.
	dups []cluster.DupAssignment
}

// partition is one partition replica: a storage database and a raft group member. Its raft
// state is owned by the run goroutine; request handlers talk to it through channels.
type partition struct {
	// assigned is the assignment setTable last acted on (sync goroutine only).
	assigned *cluster.Assignment

	s   *Server
	pid idl.GPID
	lg  *slog.Logger
	log raftlog.Group
	id  uint64

	// dbMu guards db: the loop replaces the store when it installs a snapshot, while
	// request handlers use it concurrently (under the read lock).
	dbMu sync.RWMutex
	db   *storage.DB

	proposeC  chan *write
	readC     chan *readWait
	recvC     chan *raftpb.Message // pointers: a channel's buffer of messages costs its size up front
	installC  chan *install
	snapDoneC chan snapDone
	transferC chan *transferRequest

	// view is the group's leadership as the loop last published it (handover.go).
	view   atomic.Pointer[leaderView]
	splitC chan splitCheckpoint

	throttle  throttleState // the table's throttling envs' controllers (throttle.go)
	isLeader  atomic.Bool
	ingesting atomic.Bool // a bulk load ingests: client writes are refused (bulkload.go)
	term      atomic.Uint64
	snapshots atomic.Int64 // snapshots installed
	applied   atomic.Uint64
	info      atomic.Pointer[tableInfo]
	voters    atomic.Pointer[[]string]
	// ownCount is the partition count the store owns its keys by, recorded by a split (0
	// before any); splitProgress is the child's copy being built, for the meta report.
	ownCount      atomic.Int32
	splitProgress atomic.Pointer[cluster.SplitProgress]
	raftStats     raftCounters // metrics.go
	quiesce       quiesceState // quiesce.go
	compact       compactState // manual compactions (envs.go)
	hot           hotState     // hot-key detection and top-k (hotkey.go)

	// The lease-read shortcut (see readBarrier): while leaseUntil (on the monotonic
	// clock's epoch) has not passed, a read may be served once applied reaches leaseFloor,
	// the first index of the leader's term it found committed. 0: no shortcut.
	leaseFloor atomic.Uint64
	leaseUntil atomic.Int64
	// readsExpired counts the reads failed because their barrier was not reached within
	// their timeout (reads.go, expireReads).
	readsExpired atomic.Int64
	// backlogSince is when the oldest write this primary proposed and has not answered was
	// handed to its loop (on the monotonic clock's epoch), 0 when none: write admission
	// refuses new writes while it is older than write_queue_timeout_ms (admission.go).
	backlogSince atomic.Int64

	// entries is the partition's raft log as duplication reads it; dup holds the rest of
	// the partition's duplication state (dup.go).
	entries entrySource
	dup     partitionDup

	// stop asks the loop to exit; closed once, by halt. done is closed when the loop has
	// exited (asked to, or because storage failed or its context ended).
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	// wg joins the partition's goroutines: the loop and its outgoing snapshot transfers
	// (started by the loop, whose exit cancels them).
	wg sync.WaitGroup
	// receiving admits incoming snapshot transfers (serveSnapshot), which write into the
	// partition's directory: closed by close, before the directory is removed.
	receiving lifecycle.Gate
}

func (p *partition) table() *tableInfo { return p.info.Load() }

// halt asks the partition's loop to stop. It is the one way to stop a partition (a drop, a
// garbage collection, the server's stop), safe to call more than once.
func (p *partition) halt() { p.stopOnce.Do(func() { close(p.stop) }) }

// close stops the partition and waits until nothing uses its store or directory any more:
// the loop and its snapshot transfers have exited, incoming transfers have ended; then it
// closes the store (which waits for the requests still reading it), flushing it first when
// flush is set. The store's close error, if any, is returned.
func (p *partition) close(flush bool) error {
	p.halt()
	p.wg.Wait()
	p.receiving.Close()
	// The loop, the only writer of p.db, has exited.
	if flush {
		if err := p.db.SyncApplied(); err != nil && !errors.Is(err, storage.ErrClosed) {
			p.lg.Warn("flush store", "err", err)
		}
	}
	return p.db.Close()
}

// readDB returns the store for a request; call release when done with it.
func (p *partition) readDB() (db *storage.DB, release func()) {
	p.dbMu.RLock()
	return p.db, p.dbMu.RUnlock
}

func (p *partition) setTable(a cluster.Assignment) {
	if p.assigned != nil && p.assigned.Equal(&a) {
		// The same as the last sync's (the usual case): only a periodic compaction's
		// schedule, which the clock moves, is looked at again.
		if a.Envs[EnvCompactPeriodicTrigger] != "" {
			p.noteCompaction(a.Envs, time.Now())
		}
		return
	}
	p.assigned = &a
	ti := &tableInfo{appName: a.AppName, partitionCount: a.PartitionCount, members: a.Members, envs: a.Envs, join: a.Join,
		dups: a.Dups, split: a.Split}
	ti.addrs = map[uint64]string{}
	if prev := p.info.Load(); prev != nil {
		ti.defaultTTL = prev.defaultTTL
		maps.Copy(ti.addrs, prev.addrs)
	}
	for _, m := range a.Members {
		ti.addrs[cluster.MemberID(m)] = m
	}
	// default_ttl: a positive parse replaces the setting; negative or unparsable values
	// are ignored and the previous setting stays (protocol.md §5.2).
	if v, ok := a.Envs["default_ttl"]; ok {
		var n int32
		if _, err := fmt.Sscan(v, &n); err == nil && n >= 0 {
			ti.defaultTTL = n
		}
	}
	prev := p.info.Load()
	p.info.Store(ti)
	if prev != nil && p.quiesce.pokeC != nil && !sameOrders(prev, ti) {
		p.quiesce.poke() // the loop acts on these only when it runs (quiesce.go)
	}
	db, release := p.readDB()
	db.SetEnv(storeEnv(a.Envs))
	db.SetPartitionCount(a.PartitionCount)
	release()
	p.applyEnvs(a.Envs)
}

// sameOrders reports whether two versions of the table tell the loop the same: the
// placement, the split order and whether the table duplicates.
func sameOrders(a, b *tableInfo) bool {
	return slices.Equal(a.members, b.members) && a.duplicating() == b.duplicating() && a.join == b.join &&
		(a.split == nil) == (b.split == nil) && (a.split == nil || *a.split == *b.split)
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
	st.PartitionCount = p.ownCount.Load()
	st.Split = p.splitProgress.Load()
	return st
}

// propose hands a write to the raft loop and waits for its result.
func (p *partition) propose(ctx context.Context, w *write) writeResult {
	if !p.isLeader.Load() {
		return writeResult{err: errNotLeader}
	}
	if err := p.s.diskRefusal(); err != nil {
		return writeResult{err: err}
	}
	n := len(w.data)
	if !p.admitWrite(n) {
		return writeResult{err: errBusy}
	}
	defer p.s.releaseWrite(n)
	p.log.Writing(1)
	defer p.log.Writing(-1)
	w.queued = time.Now()
	r, err := raftgroup.Submit(ctx, p.proposeC, w, w.done, p.done, errStopped, errOutcomeUnknown)
	if err != nil {
		return writeResult{err: err}
	}
	return r
}

// leaderSnapshots is the raft storage of a partition. raft asks Snapshot for what to send a
// follower that needs entries the log no longer has; the answer describes the store as of
// the applied index, with the configuration as of that index (which includes any learner
// just added), because what is actually sent is a checkpoint of the store taken right after
// (see sendSnapshot). Everything else is the MemoryStorage's.
type leaderSnapshots struct {
	*raft.MemoryStorage
	l *loop
}

// Snapshot implements raft.Storage. It is called on the partition's loop.
func (s leaderSnapshots) Snapshot() (raftpb.Snapshot, error) {
	applied := s.l.p.applied.Load()
	term, err := s.MemoryStorage.Term(applied)
	if err != nil {
		return s.MemoryStorage.Snapshot()
	}
	return raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: applied, Term: term, ConfState: s.l.conf.Current()}}, nil
}
