package replica

import (
	"context"
	"encoding/binary"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/gopegasus/pegasus/internal/raftgroup"
)

// readWait is a read waiting until the partition has applied its read index.
type readWait struct {
	done chan error
}

// leaseOpen reports whether the lease-read shortcut is published and not yet expired.
func (p *partition) leaseOpen() bool {
	until := p.leaseUntil.Load()
	return until != 0 && int64(time.Since(epoch)) < until
}

// readBarrier waits until a linearizable read may be served from the local store: the
// replica is the leader and has applied everything committed before the read arrived
// (raft ReadIndex).
func (p *partition) readBarrier(ctx context.Context) error {
	if !p.isLeader.Load() {
		return errNotLeader
	}
	// The shortcut: the loop publishes the lease read index it would answer, before it
	// acknowledges any write it applies, so the index covers every write acknowledged
	// before this read began. It is good for half an election timeout, which the loop
	// renews on every tick while it leads.
	if p.leaseOpen() && p.applied.Load() >= p.leaseIndex.Load() {
		return nil
	}
	rw := &readWait{done: make(chan error, 1)}
	answer, err := raftgroup.Submit(ctx, p.readC, rw, rw.done, p.done, errStopped, errStopped)
	if err != nil {
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

// publishLease publishes the read index a lease read would get now, for readBarrier's
// shortcut, or withdraws the shortcut when this replica may not serve lease reads.
func (l *loop) publishLease() {
	p := l.p
	if l.lead == p.id && !l.leaseSuspended() {
		if index, ok := l.leaseReadIndex(); ok {
			p.leaseIndex.Store(index)
			p.leaseUntil.Store(int64(time.Since(epoch) + l.electionTimeout()/2))
			return
		}
	}
	p.leaseUntil.Store(0)
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

// serveReads answers batch once the store has applied the read index.
func (l *loop) serveReads(batch []*readWait) {
	if index, ok := l.leaseReadIndex(); ok {
		l.readyAt = append(l.readyAt, readBatch{index: index, waits: batch})
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
func (l *loop) leaseSuspended() bool {
	st := l.rn.BasicStatus()
	if st.LeadTransferee != 0 {
		return true
	}
	return st.Term == l.transferTerm && time.Since(l.transferStarted) < 3*l.electionTimeout()
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
	l.rn.ReadIndex(rctx[:])
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
