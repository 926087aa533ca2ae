package replica

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/raftgroup"
)

// Errors of a planned leadership transfer ([Server.TransferLeader]).
var (
	// ErrTransferFailed: raft gave the transfer up (the new leader did not catch up or was
	// not elected within an election timeout); the replica that started it still leads, or
	// another member was elected.
	ErrTransferFailed = errors.New("replica: leadership transfer did not complete")
	// ErrTransferBusy: a transfer to another member is already under way.
	ErrTransferBusy = errors.New("replica: another leadership transfer is under way")
	// ErrNotLeader: the replica asked to hand its leadership over does not lead its group.
	ErrNotLeader = errNotLeader
	// ErrNotMember: the member to hand leadership to is not a voter of the group.
	ErrNotMember = errors.New("replica: not a voter of the partition's group")
	// ErrNoPartition: the server hosts no replica of the partition.
	ErrNoPartition = errors.New("replica: partition not hosted here")
)

// leaderView is what a partition's loop last published about its group's leadership, for
// the request handlers (forward.go): the member that leads as this replica knows it (0 while
// none does), and whether that is this replica handing its leadership over. A view is never
// modified; changed is closed when a newer one replaces it.
type leaderView struct {
	lead    uint64
	handing bool
	changed chan struct{}
}

// leadership returns the partition's current leaderView.
func (p *partition) leadership() *leaderView { return p.view.Load() }

// publishView publishes the loop's leadership as a new leaderView when it differs from the
// current one (loop only).
func (l *loop) publishView() {
	p := l.p
	handing := l.handover != nil && l.lead == p.id
	old := p.view.Load()
	if old.lead == l.lead && old.handing == handing {
		return
	}
	p.view.Store(&leaderView{lead: l.lead, handing: handing, changed: make(chan struct{})})
	close(old.changed)
}

// handover is a leadership transfer this replica started, from the moment raft takes it on
// until this replica knows who leads after it.
type handover struct {
	to      uint64
	started time.Time
	reason  string
	waiters []chan<- error
}

// transferRequest asks a partition's loop to hand its leadership to member to.
type transferRequest struct {
	to     uint64
	reason string
	done   chan error // buffered: the loop never waits for the caller
}

// handOver starts a planned transfer of the leadership to member to, for reason (logged),
// and answers done when it ends (nil once to leads). It is the one way this replica hands
// its leadership over, whoever asks (the placement's preferred primary, a caller of
// [Server.TransferLeader]): while it is under way the replica takes no new proposal and
// holds its reads, and the requests that reach it are held and then forwarded to the new
// leader (forward.go). done may be nil.
func (l *loop) handOver(to uint64, reason string, done chan<- error) {
	p := l.p
	answer := func(err error) {
		if done != nil {
			done <- err
		}
	}
	switch {
	case l.lead != p.id:
		answer(errNotLeader)
		return
	case to == p.id:
		answer(nil)
		return
	case l.handover != nil:
		if l.handover.to != to {
			answer(ErrTransferBusy)
			return
		}
		if done != nil {
			l.handover.waiters = append(l.handover.waiters, done)
		}
		return
	}
	l.rn.TransferLeader(to)
	if l.rn.BasicStatus().LeadTransferee != to {
		// raft refused it: to is not a voter (a learner, or not a member at all).
		answer(ErrNotMember)
		return
	}
	now := time.Now()
	l.handover = &handover{to: to, started: now, reason: reason}
	if done != nil {
		l.handover.waiters = append(l.handover.waiters, done)
	}
	l.transferStarted, l.transferTerm = now, l.rn.BasicStatus().Term
	l.publishView()
	p.lg.Info("leadership handover started", "to", p.addressOf(to), "reason", reason)
}

// checkHandover ends the handover under way once its outcome is known (loop only): the
// member it was for leads, or raft gave up on it while this replica still leads, or another
// member was elected, or no leader was heard of for two election timeouts after it began.
func (l *loop) checkHandover() {
	h := l.handover
	if h == nil {
		return
	}
	p := l.p
	var err error
	switch l.lead {
	case h.to:
	case p.id:
		if l.rn.BasicStatus().LeadTransferee != 0 {
			return // under way
		}
		err = ErrTransferFailed
	case 0:
		if time.Since(h.started) < 2*l.electionTimeout() {
			return // the old leader stepped down; the election is under way
		}
		err = ErrTransferFailed
	default:
		err = fmt.Errorf("%w: %s was elected instead", ErrTransferFailed, p.addressOf(l.lead))
	}
	l.handover = nil
	for _, w := range h.waiters {
		w <- err
	}
	took := time.Since(h.started)
	p.raftStats.handovers.Add(1)
	if err != nil {
		p.raftStats.handoversFailed.Add(1)
		p.lg.Warn("leadership handover failed", "to", p.addressOf(h.to), "reason", h.reason, "took", took, "err", err)
	} else {
		p.lg.Info("leadership handed over", "to", p.addressOf(h.to), "reason", h.reason, "took", took)
	}
	l.publishView()
}

// TransferLeader hands the leadership of partition pid, which this server's replica must
// hold, to its member at address to, and waits until to leads as this replica sees it, or
// until the transfer fails or ctx ends. It is the planned leadership change that every
// primary move uses (the preferred-primary restoration, balancing, decommissioning): while
// it is under way, and after it for clients that still route to this server, requests that
// reach this replica are held for the few milliseconds it takes and then forwarded to the
// new leader, so no client sees an error (doc.go, "Leadership changes"). reason is logged.
//
// It returns nil once to leads, [ErrNoPartition], [ErrNotLeader] (this replica does not
// lead), [ErrNotMember] (to is not a voter), [ErrTransferBusy], an error wrapping
// [ErrTransferFailed], or ctx's error (the transfer may still complete). Safe for concurrent
// use.
func (s *Server) TransferLeader(ctx context.Context, pid idl.GPID, to, reason string) error {
	p := s.partition(pid)
	if p == nil {
		return fmt.Errorf("%w: %v", ErrNoPartition, pid)
	}
	req := &transferRequest{to: cluster.MemberID(to), reason: reason, done: make(chan error, 1)}
	err, serr := raftgroup.Submit(ctx, p.transferC, req, req.done, p.done, errStopped, errStopped)
	if err = cmp.Or(serr, err); err != nil {
		return fmt.Errorf("replica: transfer leadership of %v to %s: %w", pid, to, err)
	}
	return nil
}
