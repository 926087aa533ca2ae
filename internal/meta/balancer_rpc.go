package meta

import (
	"context"
	"fmt"
	"slices"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// proposeBalancer serves RPC_CM_PROPOSE_BALANCER: one manual move of a partition's primary or
// replica, given as the action list Pegasus's shell sends for balance -p move_pri|copy_pri|
// copy_sec. The member named by CT_UPGRADE_TO_PRIMARY becomes the preferred primary; the one
// named by CT_ADD_SECONDARY_FOR_LB takes the place of the one named by CT_REMOVE. The move
// is carried out as the balancer's are (learner first, then the removal); the reply comes
// once it is in the placement, not once it is done. Without force, a partition with a move
// under way, a missing primary or a dead member answers ERR_BUSY; below the steady level,
// ERR_STATE_FREEZED. A move of the primary's own
// replica (copy_pri) answers ERR_INVALID_STATE: the placement never drops the member that
// leads (it would hear of no change), so move the primary first (move_pri), then its replica
// (copy_sec).
func (m *machine) proposeBalancer(ctx context.Context, q *idl.BalancerRequest) *idl.BalancerResponse {
	fail := func(c wire.Code) *idl.BalancerResponse { return &idl.BalancerResponse{Err: errCode(c)} }
	if m.level() < idl.MetaLevelSteady {
		return fail(wire.ErrStateFreezed)
	}
	t := m.state.tableByID(q.GPID.AppID)
	if t == nil || t.Status != idl.AppStatusAvailable || q.GPID.PartitionIndex < 0 || q.GPID.PartitionIndex >= t.PartitionCount {
		return fail(wire.ErrAppNotExist)
	}
	if t.Split != nil {
		return fail(wire.ErrSplitting)
	}
	var add, remove, upgrade string
	for _, a := range q.ActionList {
		switch a.Type {
		case idl.ConfigAddSecondaryForLB, idl.ConfigAddSecondary:
			add = a.Node.String()
		case idl.ConfigRemove, idl.ConfigDowngradeToInactive:
			remove = a.Node.String()
		case idl.ConfigUpgradeToPrimary, idl.ConfigAssignPrimary:
			upgrade = a.Node.String()
		case idl.ConfigDowngradeToSecondary:
		default:
			return fail(wire.ErrInvalidParameters)
		}
	}
	members := t.Partitions[q.GPID.PartitionIndex].Members
	var v *partView
	for _, pv := range m.partitionViews() {
		if pv.gpid == q.GPID {
			v = pv
		}
	}
	if v == nil || (!v.healthy && !q.Force) {
		return fail(wire.ErrBusy)
	}
	plan := &balanceMoves{}
	switch {
	case add != "" || remove != "":
		n := m.nodes[add]
		if add == "" || remove == "" || !slices.Contains(members, remove) || slices.Contains(members, add) ||
			n == nil || !n.alive || m.leaving(add) {
			return fail(wire.ErrInvalidParameters)
		}
		if remove == v.primary {
			// A leader the placement dropped would hear of no change: the primary is handed
			// over first (move_pri), then its replica moves as a secondary's.
			return fail(wire.ErrInvalidState)
		}
		plan.Replace = append(plan.Replace, memberReplace{GPID: q.GPID, Old: remove, New: add})
		if upgrade != "" {
			if upgrade != add {
				return fail(wire.ErrInvalidParameters)
			}
			plan.Lead = append(plan.Lead, leadMove{GPID: q.GPID, Node: add})
		}
	case upgrade != "":
		if !slices.Contains(members, upgrade) {
			return fail(wire.ErrInvalidParameters)
		}
		plan.Lead = append(plan.Lead, leadMove{GPID: q.GPID, Node: upgrade})
	default:
		return fail(wire.ErrInvalidParameters)
	}
	res, err := m.commit(ctx, &mutation{Balance: plan})
	if err != nil {
		return fail(commitErrCode(err))
	}
	if res.Code == wire.OK {
		m.lg.Info("manual move", "gpid", q.GPID.String(), "add", add, "remove", remove, "primary", upgrade)
	}
	return fail(res.Code)
}

// decommission serves a [cluster.DecommissionRequest].
func (m *machine) decommission(ctx context.Context, q *cluster.DecommissionRequest) *cluster.DecommissionResponse {
	resp := &cluster.DecommissionResponse{Err: wire.OK.Name(), Nodes: []cluster.DecommissionNode{}}
	var change leavingChange
	switch q.Op {
	case cluster.DecommissionStart:
		for _, a := range q.Nodes {
			if _, known := m.nodes[a]; !known {
				resp.Err, resp.Hint = wire.ErrInvalidParameters.Name(), fmt.Sprintf("%s is not a replica server of this cluster", a)
				return resp
			}
		}
		change.Add = q.Nodes
	case cluster.DecommissionCancel:
		change.Remove = q.Nodes
	case cluster.DecommissionStatus:
	default:
		resp.Err, resp.Hint = wire.ErrInvalidParameters.Name(), fmt.Sprintf("unknown operation %q", q.Op)
		return resp
	}
	if q.Op == cluster.DecommissionStart {
		left := 0
		for _, a := range m.placeable() {
			if !slices.Contains(q.Nodes, a) {
				left++
			}
		}
		if need := m.maxReplicaCount(); left < need {
			resp.Err = wire.ErrInvalidParameters.Name()
			resp.Hint = fmt.Sprintf("only %d alive servers would stay, and a table has %d replicas", left, need)
			return resp
		}
	}
	if len(change.Add) > 0 || len(change.Remove) > 0 {
		if _, err := m.commit(ctx, &mutation{SetLeaving: &change}); err != nil {
			resp.Err = commitErrCode(err).Name()
			return resp
		}
		m.lg.Info("decommission changed", "leaving", change.Add, "staying", change.Remove)
	}
	resp.Nodes = m.decommissionProgress()
	return resp
}

// maxReplicaCount is the highest replica count of the available tables.
func (m *machine) maxReplicaCount() int {
	n := 0
	for _, t := range m.state.Tables {
		if t.Status == idl.AppStatusAvailable {
			n = max(n, int(t.ReplicaCount))
		}
	}
	return n
}

// decommissionProgress reports how far each leaving server is.
func (m *machine) decommissionProgress() []cluster.DecommissionNode {
	out := make([]cluster.DecommissionNode, 0, len(m.state.Leaving))
	for _, a := range m.state.Leaving {
		d := cluster.DecommissionNode{Node: a}
		if n := m.nodes[a]; n != nil {
			d.Alive = n.alive
		}
		for _, t := range m.state.Tables {
			if !t.serving() {
				continue
			}
			for i, p := range t.Partitions {
				if slices.Contains(p.Members, a) {
					d.Replicas++
				}
				gpid := idl.GPID{AppID: t.AppID, PartitionIndex: int32(i)}
				if n, ok := m.primaryOf(t, int32(i)); ok {
					if n.addr == a {
						d.Primaries++
					}
					if slices.Contains(n.replicas[gpid].Voters, a) {
						d.Voter++
					}
				} else if self := m.nodes[a]; self != nil {
					// No primary to ask: while the server still hosts the partition, it may
					// still be a voter of its group.
					if _, hosts := self.replicas[gpid]; hosts {
						d.Voter++
					}
				}
			}
		}
		d.Empty = d.Replicas == 0 && d.Voter == 0 && d.Primaries == 0
		out = append(out, d)
	}
	return out
}

// serveDecommission serves [cluster.RPCDecommission].
func (s *Server) serveDecommission(ctx context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	var q cluster.DecommissionRequest
	if err := cluster.Decode(req.Args.(*idl.Blob), &q); err != nil {
		return nil, wire.ErrInvalidParameters
	}
	var resp *cluster.DecommissionResponse
	refuse := func(e idl.ErrorCode, leader string) idl.Value {
		resp = &cluster.DecommissionResponse{Err: string(e), Leader: leader, Nodes: []cluster.DecommissionNode{}}
		return nil
	}
	if _, c := s.serve(ctx, func(ctx context.Context) idl.Value {
		resp = s.m.decommission(ctx, &q)
		return nil
	}, refuse); c != wire.OK {
		return nil, c
	}
	return cluster.Encode(resp), wire.OK
}
