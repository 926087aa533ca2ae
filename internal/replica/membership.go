package replica

import (
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/gopegasus/pegasus/internal/cluster"
)

// publishVoters records the group's voters (as addresses, where known) for the meta report.
func (l *loop) publishVoters() {
	voters := l.conf.Current().Voters
	vs := make([]string, 0, len(voters))
	for _, id := range voters {
		if id == l.p.id {
			vs = append(vs, l.p.s.addr)
		} else if a := l.p.addressOf(id); a != "" {
			vs = append(vs, a)
		} else {
			vs = append(vs, fmt.Sprintf("raft-id-%x", id))
		}
	}
	l.p.voters.Store(&vs)
}

// Membership and leadership upkeep, on the leader only.
const (
	reconcileEvery = time.Second
	confTimeout    = 10 * time.Second
	transferEvery  = 5 * time.Second
)

// reconcile moves the group's voters toward the meta server's placement, one change at a
// time and always adding before removing, so the group never has fewer healthy voters than
// it needs: a new member joins as a learner, becomes a voter once it has caught up, and only
// then is a member that left the placement removed. It also hands leadership to the
// placement's first member (the preferred primary) when that one is caught up, which keeps
// primaries spread evenly across servers.
func (l *loop) reconcile() {
	now := time.Now()
	if now.Sub(l.lastReconcile) < reconcileEvery {
		return
	}
	l.lastReconcile = now
	// The voters' addresses come from the placement, which the meta may only now have told
	// this replica (a leader restarted with the placement of its first open, before a member
	// joined): republished, the meta sees every voter and not a "raft-id-…" it cannot place.
	l.publishVoters()
	if l.confPending && now.Sub(l.confAt) < confTimeout {
		return
	}
	l.confPending = false
	ti := l.p.table()
	if len(ti.members) == 0 {
		return
	}
	desired := map[uint64]string{}
	for _, m := range ti.members {
		desired[cluster.MemberID(m)] = m
	}
	cs := l.conf.Current()
	voters := map[uint64]bool{}
	for _, id := range cs.Voters {
		voters[id] = true
	}
	learners := map[uint64]bool{}
	for _, id := range cs.Learners {
		learners[id] = true
	}
	st := l.rn.Status()
	propose := func(t raftpb.ConfChangeType, id uint64, ctx string) {
		if err := l.rn.ProposeConfChange(raftpb.ConfChange{Type: t, NodeID: id, Context: []byte(ctx)}); err == nil {
			l.confPending, l.confAt = true, now
			l.p.lg.Info("membership change proposed", "change", t.String(), "member", ctx)
		}
	}
	for _, m := range ti.members {
		id := cluster.MemberID(m)
		if !voters[id] && !learners[id] {
			propose(raftpb.ConfChangeAddLearnerNode, id, m)
			return
		}
	}
	for id := range learners {
		if addr, ok := desired[id]; ok {
			if pr, ok := st.Progress[id]; ok && caughtUp(pr, st.Commit, uint64(l.p.s.cfg.LogKeep)/2) {
				propose(raftpb.ConfChangeAddNode, id, addr)
				return
			}
		} else {
			propose(raftpb.ConfChangeRemoveNode, id, fmt.Sprintf("raft-id-%x", id))
			return
		}
	}
	for id := range voters {
		if _, ok := desired[id]; ok {
			continue
		}
		if id == l.p.id {
			l.transferTo(st, ti.members)
			return
		}
		propose(raftpb.ConfChangeRemoveNode, id, fmt.Sprintf("raft-id-%x", id))
		return
	}
	if pref := cluster.MemberID(ti.members[0]); pref != l.p.id && voters[pref] && now.Sub(l.lastTransfer) >= transferEvery {
		if pr, ok := st.Progress[pref]; ok && pr.RecentActive && pr.Match == st.Commit {
			l.lastTransfer = now
			l.handOver(pref, "preferred primary", nil)
		}
	}
}

// caughtUp reports whether a learner with progress pr may become a voter: it has answered
// appends (raft replicates to it, it is not waiting for a snapshot or being probed) and is
// at most slack entries behind the commit index. A learner added a moment ago has matched
// nothing yet, which a short log's commit index alone does not tell apart.
func caughtUp(pr tracker.Progress, commit, slack uint64) bool {
	return pr.State == tracker.StateReplicate && pr.RecentActive && pr.Match > 0 && pr.Match+slack >= commit
}

// transferTo hands leadership to a caught-up member of the placement.
func (l *loop) transferTo(st raft.Status, members []string) {
	for _, m := range members {
		id := cluster.MemberID(m)
		if pr, ok := st.Progress[id]; ok && id != l.p.id && pr.RecentActive && pr.Match == st.Commit {
			l.handOver(id, "leaving the placement", nil)
			return
		}
	}
}
