package meta

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Partition split (operations.md §4), on the meta side. RPC_CM_START_PARTITION_SPLIT doubles
// a table's partition count at once: the children N…2N-1 join the map with ballot -1 (clients
// send their keys to the parents i-N meanwhile), placed on their parents' servers, the table
// env replica.split.validate_partition_hash is set, and every parent is SPLITTING. The
// replicas do the work (package replica, split.go): each parent replica builds its child's
// copy and reports when it is ready; once the leader and a majority of a parent's members
// are ready, the meta records the parent committed and tells its leader to cut over; the
// child's group then starts from the copies, its leader's report raises its ballot from -1
// (it is registered), and the parent leaves the split. When every parent has, the split is
// over. Pause, restart and cancel change a parent's status; replicas drop their copies on
// anything but SPLITTING, and a pausing or cancelling parent becomes PAUSED, or leaves the
// split, once no alive member still reports a copy; when the last cancelled parent has left,
// the count goes back. Nothing is cancelled once a parent was committed (its cut-over may be
// applied): cancel then answers ERR_CHILD_REGISTERED. All of it is in the replicated map, so
// a new meta leader goes on where the previous one was.
//
// A split needs a power-of-two partition count: Apache Pegasus's replicas check keys with
// partition_version = count-1 used as a mask, the official go-client refuses to open a table
// whose count is not a power of two, and both would send the keys of a doubled odd count to
// the wrong partitions. Routing by modulo, as gopegasus does everywhere, would cope; the
// official clients would not, so such a split is refused (ERR_INVALID_PARAMETERS).

// tableSplit is a table's split in progress.
type tableSplit struct {
	// Parents are the parent partitions whose child is not registered yet.
	Parents map[int32]*parentSplit `json:"parents"`
}

// parentSplit is where one parent partition's split is.
type parentSplit struct {
	Status idl.SplitStatus `json:"status"`
	// Committed is set once the parent's leader was told to cut over: the split of this
	// parent can no longer be paused or cancelled.
	Committed bool `json:"committed,omitempty"`
}

func (s *tableSplit) clone() *tableSplit {
	if s == nil {
		return nil
	}
	c := &tableSplit{Parents: make(map[int32]*parentSplit, len(s.Parents))}
	for i, ps := range s.Parents {
		cp := *ps
		c.Parents[i] = &cp
	}
	return c
}

// splitStart doubles a table's partition count; Children are the members of the new
// partitions, in index order.
type splitStart struct {
	AppID    int32      `json:"app_id"`
	Children [][]string `json:"children"`
}

// splitUpdate changes a table's split: Set replaces parents' states, Remove takes parents
// out of the split (their children registered, or their split cancelled); Revert halves the
// partition count back (a cancelled split whose parents have all left).
type splitUpdate struct {
	AppID  int32                  `json:"app_id"`
	Set    map[int32]*parentSplit `json:"set,omitempty"`
	Remove []int32                `json:"remove,omitempty"`
	Revert bool                   `json:"revert,omitempty"`
}

// initCount returns the partition count the table was created with.
func (t *table) initCount() int32 {
	if t.InitPartitionCount > 0 {
		return t.InitPartitionCount
	}
	return t.PartitionCount
}

// applySplitStart applies a splitStart.
func (m *clusterMap) applySplitStart(op *splitStart) result {
	t := m.tableByID(op.AppID)
	if t == nil || t.Status != idl.AppStatusAvailable || t.Split != nil || len(op.Children) != int(t.PartitionCount) {
		return result{Code: wire.ErrInvalidState}
	}
	n := t.PartitionCount
	t.InitPartitionCount = t.initCount()
	t.Split = &tableSplit{Parents: make(map[int32]*parentSplit, n)}
	for i := range n {
		t.Split.Parents[i] = &parentSplit{Status: idl.SplitSplitting}
		t.Partitions = append(t.Partitions, partition{Members: slices.Clone(op.Children[i]), Ballot: -1})
	}
	t.PartitionCount = 2 * n
	if t.Envs == nil {
		t.Envs = map[string]string{}
	}
	t.Envs[envValidatePartitionHash] = "true"
	return result{Code: wire.OK, AppID: t.AppID}
}

// applySplitUpdate applies a splitUpdate.
func (m *clusterMap) applySplitUpdate(op *splitUpdate) result {
	t := m.tableByID(op.AppID)
	if t == nil || t.Split == nil {
		return result{Code: wire.ErrInvalidState}
	}
	for i, ps := range op.Set {
		if t.Split.Parents[i] != nil {
			cp := *ps
			t.Split.Parents[i] = &cp
		}
	}
	for _, i := range op.Remove {
		delete(t.Split.Parents, i)
	}
	if op.Revert {
		t.PartitionCount /= 2
		t.Partitions = t.Partitions[:t.PartitionCount]
	}
	if len(t.Split.Parents) == 0 {
		t.Split = nil
	}
	return result{Code: wire.OK, AppID: t.AppID}
}

// envValidatePartitionHash is the table env a split sets (package replica acts on it).
const envValidatePartitionHash = "replica.split.validate_partition_hash"

// tableForSplit finds the table a split RPC names: ERR_APP_NOT_EXIST when there is none,
// ERR_APP_DROPPED when it is dropped (or being recalled), as Apache Pegasus answers.
func (m *machine) tableForSplit(name string) (*table, wire.Code, string) {
	if t := m.state.availableTable(name); t != nil {
		return t, wire.OK, ""
	}
	for _, t := range m.state.Tables {
		if t.Name == name {
			return nil, wire.ErrAppDropped, fmt.Sprintf("app %s dropped", name)
		}
	}
	return nil, wire.ErrAppNotExist, fmt.Sprintf("app %s not existed", name)
}

// startSplit serves RPC_CM_START_PARTITION_SPLIT.
func (m *machine) startSplit(ctx context.Context, q *idl.StartPartitionSplitRequest) *idl.StartPartitionSplitResponse {
	fail := func(c wire.Code, hint string) *idl.StartPartitionSplitResponse {
		return &idl.StartPartitionSplitResponse{Err: errCode(c), HintMsg: hint}
	}
	t, code, hint := m.tableForSplit(q.AppName)
	switch n := int64(0); {
	case t == nil:
		return fail(code, hint)
	case int64(q.NewPartitionCount) != 2*int64(t.PartitionCount):
		n = 2 * int64(t.PartitionCount)
		return fail(wire.ErrInvalidParameters, fmt.Sprintf("wrong partition_count, should be %d", n))
	case t.Split != nil:
		return fail(wire.ErrBusy, fmt.Sprintf("app(%s) is already executing partition split", q.AppName))
	case t.PartitionCount&(t.PartitionCount-1) != 0:
		return fail(wire.ErrInvalidParameters, fmt.Sprintf("partition split needs a power-of-two partition count, "+
			"and table %s has %d: Pegasus clients and replicas check keys with the mask count-1", q.AppName, t.PartitionCount))
	case q.NewPartitionCount > MaxPartitionCount:
		return fail(wire.ErrInvalidParameters, fmt.Sprintf("at most %d partitions", MaxPartitionCount))
	}
	op := &splitStart{AppID: t.AppID, Children: m.childPlacements(t)}
	res, err := m.commit(ctx, &mutation{SplitStart: op})
	if err != nil {
		return fail(commitErrCode(err), "cannot persist the change")
	}
	if res.Code != wire.OK {
		return fail(res.Code, "")
	}
	m.lg.Info("partition split started", "table", q.AppName, "partitions", q.NewPartitionCount)
	return &idl.StartPartitionSplitResponse{Err: errCode(wire.OK)}
}

// childPlacements returns the members of t's split children, in index order: each child
// is on its parent's servers, ordered so that its intended primary (the first member) is
// the parent's member that is the intended primary of the fewest partitions, counting every
// table's and the children placed before it; on a tie, the earliest of the parent's other
// members, so that a child is led by its parent's primary only when that one leads fewest.
// Copying the parent's order would double every server's count of primaries, and with it
// any imbalance (4 partitions led 2, 1, 1 become 8 led 4, 2, 2).
func (m *machine) childPlacements(t *table) [][]string {
	leads := map[string]int{}
	for _, tt := range m.state.Tables {
		if tt.Status != idl.AppStatusAvailable {
			continue
		}
		for _, p := range tt.Partitions {
			if len(p.Members) > 0 {
				leads[p.Members[0]]++
			}
		}
	}
	children := make([][]string, 0, len(t.Partitions))
	for _, p := range t.Partitions {
		if len(p.Members) == 0 {
			children = append(children, nil)
			continue
		}
		// The parent's other members first, its primary last: the first of the fewest wins.
		order := append(slices.Clone(p.Members[1:]), p.Members[0])
		best := order[0]
		for _, addr := range order[1:] {
			if leads[addr] < leads[best] {
				best = addr
			}
		}
		leads[best]++
		child := []string{best}
		for _, addr := range p.Members {
			if addr != best {
				child = append(child, addr)
			}
		}
		children = append(children, child)
	}
	return children
}

// querySplit serves RPC_CM_QUERY_PARTITION_SPLIT.
func (m *machine) querySplit(q *idl.QuerySplitRequest) *idl.QuerySplitResponse {
	t, code, hint := m.tableForSplit(q.AppName)
	switch {
	case t == nil:
		return &idl.QuerySplitResponse{Err: errCode(code), HintMsg: idl.Some(hint)}
	case t.Split == nil:
		return &idl.QuerySplitResponse{Err: errCode(wire.ErrInvalidState), HintMsg: idl.Some(fmt.Sprintf("app(%s) is not splitting", q.AppName))}
	}
	resp := &idl.QuerySplitResponse{Err: errCode(wire.OK), NewPartitionCount: t.PartitionCount, Status: map[int32]int32{}}
	for i, ps := range t.Split.Parents {
		resp.Status[i] = int32(ps.Status)
	}
	return resp
}

// controlSplit serves RPC_CM_CONTROL_PARTITION_SPLIT.
func (m *machine) controlSplit(ctx context.Context, q *idl.ControlSplitRequest) *idl.ControlSplitResponse {
	fail := func(c wire.Code, hint string) *idl.ControlSplitResponse {
		return &idl.ControlSplitResponse{Err: errCode(c), HintMsg: idl.Some(hint)}
	}
	t, code, hint := m.tableForSplit(q.AppName)
	switch {
	case t == nil:
		return fail(code, hint)
	case t.Split == nil:
		return fail(wire.ErrInvalidState, fmt.Sprintf("app(%s) is not splitting", q.AppName))
	}
	op := &splitUpdate{AppID: t.AppID, Set: map[int32]*parentSplit{}}
	from, to := idl.SplitSplitting, idl.SplitPausing
	switch q.ControlType {
	case idl.SplitControlPause:
	case idl.SplitControlRestart:
		from, to = idl.SplitPaused, idl.SplitSplitting
	case idl.SplitControlCancel:
		old, _ := q.OldPartitionCount.Get()
		if old != t.PartitionCount/2 {
			return fail(wire.ErrInvalidParameters, fmt.Sprintf("wrong partition_count, should be %d", t.PartitionCount/2))
		}
		if len(t.Split.Parents) != int(old) || slices.ContainsFunc(slices.Collect(maps.Values(t.Split.Parents)),
			func(ps *parentSplit) bool { return ps.Committed }) {
			return fail(wire.ErrChildRegistered, "some partitions have already finished split")
		}
		for i := range t.Split.Parents {
			op.Set[i] = &parentSplit{Status: idl.SplitCanceling}
		}
		return m.commitSplitControl(ctx, t, op, "cancel")
	default:
		return fail(wire.ErrInvalidParameters, fmt.Sprintf("unknown control type %s", q.ControlType))
	}
	if q.ParentPidx >= 0 {
		ps := t.Split.Parents[q.ParentPidx]
		switch {
		case q.ParentPidx >= t.PartitionCount/2:
			return fail(wire.ErrInvalidParameters, fmt.Sprintf("invalid parent partition index(%d)", q.ParentPidx))
		case (ps == nil || ps.Committed) && q.ControlType == idl.SplitControlPause:
			return fail(wire.ErrChildRegistered, fmt.Sprintf("partition[%d] is not splitting", q.ParentPidx))
		case ps == nil:
			return fail(wire.ErrInvalidState, fmt.Sprintf("partition[%d] is not splitting", q.ParentPidx))
		case ps.Status != from:
			return fail(wire.ErrInvalidState, fmt.Sprintf("partition[%d] wrong split_status(%s)", q.ParentPidx, ps.Status))
		}
		op.Set[q.ParentPidx] = &parentSplit{Status: to}
	} else {
		for i, ps := range t.Split.Parents {
			if ps.Status == from && !ps.Committed {
				op.Set[i] = &parentSplit{Status: to}
			}
		}
	}
	return m.commitSplitControl(ctx, t, op, q.ControlType.String())
}

func (m *machine) commitSplitControl(ctx context.Context, t *table, op *splitUpdate, what string) *idl.ControlSplitResponse {
	if len(op.Set) > 0 {
		res, err := m.commit(ctx, &mutation{SplitUpdate: op})
		if err != nil {
			return &idl.ControlSplitResponse{Err: errCode(commitErrCode(err)), HintMsg: idl.Some("cannot persist the change")}
		}
		if res.Code != wire.OK {
			return &idl.ControlSplitResponse{Err: errCode(res.Code)}
		}
		m.lg.Info("partition split controlled", "table", t.Name, "control", what, "partitions", len(op.Set))
	}
	return &idl.ControlSplitResponse{Err: errCode(wire.OK)}
}

// driveSplits moves every split on from the replicas' reports: a parent whose copies are
// ready is committed, one whose child registered and is led by its intended primary (with
// its secondaries) leaves the split, pausing and cancelling
// ones settle once no alive member keeps a copy.
func (m *machine) driveSplits(ctx context.Context) {
	for _, t := range m.state.Tables {
		if t.Split == nil || t.Status != idl.AppStatusAvailable {
			continue
		}
		op := &splitUpdate{AppID: t.AppID, Set: map[int32]*parentSplit{}}
		canceling := false
		for _, i := range slices.Sorted(maps.Keys(t.Split.Parents)) {
			ps := t.Split.Parents[i]
			switch {
			case ps.Committed:
				// Registered, and led by its intended primary with all its secondaries: the
				// split's end is not followed by a leadership change.
				if child := i + t.PartitionCount/2; t.Partitions[child].Ballot >= 1 && m.partitionReady(t, child, time.Time{}) {
					op.Remove = append(op.Remove, i)
				}
			case ps.Status == idl.SplitSplitting:
				if m.copiesReady(t, i) {
					op.Set[i] = &parentSplit{Status: idl.SplitSplitting, Committed: true}
				}
			case ps.Status == idl.SplitPausing:
				if !m.copiesKept(t, i) {
					op.Set[i] = &parentSplit{Status: idl.SplitPaused}
				}
			case ps.Status == idl.SplitCanceling:
				canceling = true
				if !m.copiesKept(t, i) {
					op.Remove = append(op.Remove, i)
				}
			}
		}
		op.Revert = canceling && len(op.Remove) == len(t.Split.Parents)
		if len(op.Set) == 0 && len(op.Remove) == 0 {
			continue
		}
		if _, err := m.commit(ctx, &mutation{SplitUpdate: op}); err != nil {
			m.lg.Warn("partition split progress not saved; will retry", "table", t.Name, "err", err)
			return
		}
		for i := range op.Set {
			if op.Set[i].Committed {
				m.lg.Info("partition split: parent's copies ready, cutting over", "table", t.Name, "pidx", i)
			}
		}
		if op.Revert {
			m.lg.Info("partition split cancelled", "table", t.Name, "partitions", t.PartitionCount/2)
		} else if m.state.tableByID(t.AppID).Split == nil {
			m.lg.Info("partition split finished", "table", t.Name, "partitions", t.PartitionCount)
		}
	}
}

// copiesReady reports whether parent pidx of t may cut over: its primary's copy is ready,
// and so are those of a majority of its members.
func (m *machine) copiesReady(t *table, pidx int32) bool {
	primary, ok := m.primaryOf(t, pidx)
	gpid := idl.GPID{AppID: t.AppID, PartitionIndex: pidx}
	if !ok || !copyReady(primary.replicas[gpid]) {
		return false
	}
	members := t.Partitions[pidx].Members
	ready := 0
	for _, a := range members {
		if n := m.nodes[a]; n != nil && n.alive && copyReady(n.replicas[gpid]) {
			ready++
		}
	}
	return 2*ready > len(members)
}

func copyReady(rs cluster.ReplicaState) bool { return rs.Split != nil && rs.Split.Ready }

// copiesKept reports whether an alive member of parent pidx of t still reports a copy.
func (m *machine) copiesKept(t *table, pidx int32) bool {
	gpid := idl.GPID{AppID: t.AppID, PartitionIndex: pidx}
	for _, a := range t.Partitions[pidx].Members {
		if n := m.nodes[a]; n != nil && n.alive && n.replicas[gpid].Split != nil {
			return true
		}
	}
	return false
}

// splitAssignment fills in what partition pidx of t's assignment says about a split: the
// count the partition owns by, the order to a parent, the parent of a child not registered.
func splitAssignment(t *table, pidx int32, a *cluster.Assignment) {
	a.PartitionCount = t.PartitionCount
	a.Join = a.Join || pidx >= t.initCount()
	if t.Split == nil {
		return
	}
	half := t.PartitionCount / 2
	if pidx < half {
		if ps := t.Split.Parents[pidx]; ps != nil {
			a.PartitionCount = half
			a.Split = &cluster.SplitOrder{NewCount: t.PartitionCount, Status: ps.Status, Commit: ps.Committed}
		}
		return
	}
	if t.Split.Parents[pidx-half] != nil {
		a.SplitParent = pidx - half + 1
	}
}
