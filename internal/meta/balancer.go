package meta

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// The balancer and the meta function level.
//
// The level (Pegasus's meta_function_level) lives in the replicated cluster map once set by
// RPC_CM_CONTROL_META; before that, Config.LevelOnStart applies. What each level lets the
// leader do on its own:
//
//	lively            replace lost replicas, decommission, balance replicas and primaries
//	steady            replace lost replicas, decommission
//	freezed and below nothing moves on its own (tables can still be created and dropped)
//
// A move is a change of a partition's placement in the map, which the partition's raft
// leader then carries out (package replica): a replica move swaps one member for another,
// and the newcomer joins as a learner, becomes a voter once caught up, and only then is the
// old member removed, so the group never has fewer voters than its replica count; a primary
// move puts another member first in the placement, and the leader hands its leadership over
// to it (a planned handover, invisible to clients) once it is caught up. Which moves are
// under way is read from the primaries' reports, not remembered: a partition is settling
// while its voters differ from its members, or while its primary is not its first member.
// A new meta leader therefore picks up where the last one was, with nothing to persist
// beyond the placement itself.
//
// Each round (every loop tick on the leader) plans moves for partitions that are settled,
// led, and whose members are all alive, with at most Config.BalanceMovesPerNode moves under
// way at once on any server (counting moves already under way). First every replica on a
// leaving server moves to the alive server holding the fewest replicas; then, in lively
// mode, replicas move from the server holding the most to the one holding the fewest until
// no two servers differ by more than one; then, once replicas are balanced, primaries move
// the same way, along a chain of partitions when no partition is shared by the two servers.
//
// The leader's balancer controls (lbcommands.go, set by Pegasus's meta.lb.* remote commands)
// adjust this: the bound on moves per server can be changed, 0 holding every move; a
// black-listed server is no destination of a replica (it keeps those it has, and may still
// be handed primaries); and with only_move_primary or only_primary_balancer, lively mode
// skips the replica balancing and moves primaries only.

// level returns the meta function level in force.
func (m *machine) level() idl.MetaFunctionLevel {
	if m.state.MetaLevel != 0 {
		return m.state.MetaLevel
	}
	if l, ok := idl.ParseMetaFunctionLevel(m.cfg.LevelOnStart); ok {
		return l
	}
	return idl.MetaLevelSteady
}

// levelName is a level's name without Pegasus's "fl_" prefix ("lively"), as /meta/cluster
// and cluster_info show it.
func levelName(l idl.MetaFunctionLevel) string { return strings.TrimPrefix(l.String(), "fl_") }

// validLevel reports whether l is a level one can set.
func validLevel(l idl.MetaFunctionLevel) bool {
	_, ok := idl.ParseMetaFunctionLevel(l.String())
	return ok
}

// controlMeta serves RPC_CM_CONTROL_META: it answers the level before the call and sets the
// requested one. As in Pegasus, a request whose level is fl_invalid (or any value that is no
// level) only asks for the current level.
func (m *machine) controlMeta(ctx context.Context, q *idl.MetaControlRequest) *idl.MetaControlResponse {
	old := m.level()
	resp := &idl.MetaControlResponse{Err: errCode(wire.OK), OldLevel: int32(old)}
	l := idl.MetaFunctionLevel(q.Level)
	if !validLevel(l) || (l == old && m.state.MetaLevel != 0) {
		return resp
	}
	res, err := m.commit(ctx, &mutation{SetLevel: &l})
	if err != nil {
		resp.Err = errCode(commitErrCode(err))
		return resp
	}
	if res.Code != wire.OK {
		resp.Err = errCode(res.Code)
		return resp
	}
	m.lg.Info("meta function level set", "from", levelName(old), "to", levelName(l))
	return resp
}

// leavingChange marks replica servers as leaving (Add) or staying again (Remove).
type leavingChange struct {
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

func (m *clusterMap) applyLeaving(c *leavingChange) result {
	for _, a := range c.Add {
		if !slices.Contains(m.Leaving, a) {
			m.Leaving = append(m.Leaving, a)
		}
	}
	m.Leaving = slices.DeleteFunc(m.Leaving, func(a string) bool { return slices.Contains(c.Remove, a) })
	if len(m.Leaving) == 0 {
		m.Leaving = nil
	}
	return result{Code: wire.OK}
}

// balanceMoves is one round of moves: replicas swapped between servers, and partitions whose
// first member (the preferred primary) changes.
type balanceMoves struct {
	Replace []memberReplace `json:"replace,omitempty"`
	Lead    []leadMove      `json:"lead,omitempty"`
}

// leadMove makes Node the first member of a partition (it must be a member).
type leadMove struct {
	GPID idl.GPID `json:"gpid"`
	Node string   `json:"node"`
}

func (m *clusterMap) applyBalance(b *balanceMoves) result {
	for _, r := range b.Replace {
		m.replaceMember(r)
	}
	for _, l := range b.Lead {
		t := m.tableByID(l.GPID.AppID)
		if t == nil || t.Status != idl.AppStatusAvailable || l.GPID.PartitionIndex < 0 || int(l.GPID.PartitionIndex) >= len(t.Partitions) {
			continue
		}
		p := &t.Partitions[l.GPID.PartitionIndex]
		if i := slices.Index(p.Members, l.Node); i > 0 {
			p.Members = append([]string{l.Node}, slices.Delete(p.Members, i, i+1)...)
		}
	}
	return result{Code: wire.OK}
}

func (b *balanceMoves) empty() bool { return len(b.Replace) == 0 && len(b.Lead) == 0 }

// leaving reports whether addr is being decommissioned.
func (m *machine) leaving(addr string) bool { return slices.Contains(m.state.Leaving, addr) }

// placeable returns the alive replica servers that are not leaving, sorted: where new
// replicas may go.
func (m *machine) placeable() []string {
	return slices.DeleteFunc(m.aliveNodes(), m.leaving)
}

// partView is one partition of a serving table as the balancer sees it.
type partView struct {
	gpid     idl.GPID
	members  []string
	replicas int32  // the table's replica count
	primary  string // "" without a primary
	voters   []string
	copying  bool // the group's voters are not the placement's members yet
	leading  bool // the primary is not the placement's first member yet
	healthy  bool // led, every member alive, replica count met, nothing under way
}

// opsRunning reports whether a long operation that works on the table's replicas where they
// are (a backup, a bulk load, a restore) is under way: its partitions are not moved meanwhile.
func (m *machine) opsRunning(appID int32) bool {
	switch m.bulkLoadStatusOf(appID) {
	case idl.BulkLoadInvalid, idl.BulkLoadSucceed, idl.BulkLoadFailed, idl.BulkLoadCanceled:
	default:
		return true
	}
	if m.backingUp(appID) {
		return true
	}
	if m.state.Ops != nil {
		if r := m.state.Ops.restore(appID); r != nil {
			for _, p := range r.Parts {
				if !p.Done && !p.Skipped && p.Code == "" {
					return true
				}
			}
		}
	}
	return false
}

// partitionViews returns the partitions the balancer may move, of available tables that are
// not splitting nor in a long operation, in table and partition order.
func (m *machine) partitionViews() []*partView {
	var out []*partView
	for _, t := range m.state.Tables {
		if t.Status != idl.AppStatusAvailable || t.Split != nil || m.opsRunning(t.AppID) {
			continue
		}
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if p.Ballot <= 0 || len(p.Members) == 0 {
				continue
			}
			v := &partView{gpid: idl.GPID{AppID: t.AppID, PartitionIndex: int32(i)}, members: p.Members,
				replicas: t.ReplicaCount, voters: p.Members}
			if n, ok := m.primaryOf(t, int32(i)); ok {
				v.primary = n.addr
				if rs := n.replicas[v.gpid]; len(rs.Voters) > 0 {
					v.voters = rs.Voters
				}
			}
			v.copying = !sameSet(v.voters, v.members)
			v.leading = v.primary != "" && v.primary != v.members[0]
			v.healthy = v.primary != "" && !v.copying && !v.leading && int32(len(v.members)) >= v.replicas
			for _, a := range v.members {
				if n := m.nodes[a]; n == nil || !n.alive {
					v.healthy = false
				}
			}
			out = append(out, v)
		}
	}
	return out
}

// sameSet reports whether a and b hold the same addresses.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// balanceOps counts the moves under way, by Pegasus's kinds: a primary handed to another
// member (move_pri), a replica copied to another server in place of the primary's
// (copy_pri) or of a secondary's (copy_sec).
type balanceOps struct{ movePri, copyPri, copySec int }

func (o balanceOps) total() int { return o.movePri + o.copyPri + o.copySec }

// inFlight counts the moves under way and, per server, how many of them it takes part in.
func inFlight(views []*partView) (balanceOps, map[string]int) {
	var ops balanceOps
	busy := make(map[string]int)
	for _, v := range views {
		switch {
		case v.copying:
			primaryLeaves := false
			for _, a := range v.voters {
				if !slices.Contains(v.members, a) {
					busy[a]++
					primaryLeaves = primaryLeaves || a == v.primary
				}
			}
			for _, a := range v.members {
				if !slices.Contains(v.voters, a) {
					busy[a]++
				}
			}
			if primaryLeaves {
				ops.copyPri++
			} else {
				ops.copySec++
			}
		case v.leading:
			busy[v.primary]++
			busy[v.members[0]]++
			ops.movePri++
		}
	}
	return ops, busy
}

// balanceOpCounts returns the moves under way (zero on a meta that does not lead).
func (m *machine) balanceOpCounts() balanceOps {
	if !m.leading {
		return balanceOps{}
	}
	ops, _ := inFlight(m.partitionViews())
	return ops
}

// planner plans one round of moves.
type planner struct {
	views   []*partView
	targets []string // where primaries may go, and replicas off leaving servers
	// spread are the targets replicas are balanced over: those not black-listed.
	spread  []string
	noCopy  func(string) bool // servers no replica may move to (black-listed)
	limit   int
	busy    map[string]int
	count   map[string]int // replicas per server
	firsts  map[string]int // first members (preferred primaries) per server
	moved   map[idl.GPID]bool
	leaving func(string) bool
	plan    balanceMoves
}

func (pl *planner) free(a string) bool { return pl.busy[a] < pl.limit }

func (pl *planner) movable(v *partView) bool { return v.healthy && !pl.moved[v.gpid] }

func (pl *planner) isTarget(a string) bool {
	_, ok := slices.BinarySearch(pl.targets, a)
	return ok
}

// replace plans moving v's replica from old to dst.
func (pl *planner) replace(v *partView, old, dst string) {
	pl.plan.Replace = append(pl.plan.Replace, memberReplace{GPID: v.gpid, Old: old, New: dst})
	pl.count[old]--
	pl.count[dst]++
	pl.busy[old]++
	pl.busy[dst]++
	pl.moved[v.gpid] = true
}

// handOff plans handing v's primary (its first member) to the other member that is first of
// the fewest partitions, among the targets with room for a move; it reports whether it did.
// A replica moves off its primary's server only after this: the placement must never drop
// the member that leads, since a leader not placed hears of no change and keeps its group
// as it is.
func (pl *planner) handOff(v *partView) bool {
	from, to := v.members[0], ""
	if !pl.free(from) {
		return false
	}
	for _, x := range v.members[1:] {
		if pl.isTarget(x) && pl.free(x) && (to == "" || pl.firsts[x] < pl.firsts[to]) {
			to = x
		}
	}
	if to == "" {
		return false
	}
	pl.plan.Lead = append(pl.plan.Lead, leadMove{GPID: v.gpid, Node: to})
	pl.moved[v.gpid] = true
	pl.busy[from]++
	pl.busy[to]++
	pl.firsts[from]--
	pl.firsts[to]++
	return true
}

// drain plans moving replicas off leaving servers, each to the target with the fewest
// replicas that has room for one more move (a leaving primary hands its role off first).
func (pl *planner) drain() {
	for _, v := range pl.views {
		if !pl.movable(v) {
			continue
		}
		for _, a := range v.members {
			if !pl.leaving(a) || !pl.free(a) {
				continue
			}
			if a == v.members[0] {
				pl.handOff(v)
				break
			}
			dst := ""
			for _, d := range pl.targets {
				if slices.Contains(v.members, d) || !pl.free(d) || pl.noCopy(d) {
					continue
				}
				if dst == "" || pl.count[d] < pl.count[dst] {
					dst = d
				}
			}
			if dst != "" {
				pl.replace(v, a, dst)
			}
			break
		}
	}
}

// spreadReplicas plans replica moves from the targets holding the most replicas to those
// holding the fewest, while two differ by two or more; it reports whether replicas are
// balanced (within one of each other, none left on a leaving server).
func (pl *planner) spreadReplicas() bool {
	if len(pl.spread) == 0 {
		return pl.plan.empty()
	}
	for range len(pl.views) {
		srcs := slices.Clone(pl.spread)
		slices.SortStableFunc(srcs, func(a, b string) int { return cmp.Compare(pl.count[b], pl.count[a]) })
		dsts := slices.Clone(srcs)
		slices.Reverse(dsts)
		if pl.count[srcs[0]]-pl.count[dsts[0]] < 2 {
			break
		}
		found := false
		for _, s := range srcs {
			if !pl.free(s) {
				continue
			}
			for _, d := range dsts {
				if pl.count[s]-pl.count[d] < 2 {
					break
				}
				if !pl.free(d) {
					continue
				}
				// A secondary's replica; failing that, a primary hands its role off, and its
				// replica moves in a later round.
				var pick *partView
				for _, v := range pl.views {
					if !pl.movable(v) || !slices.Contains(v.members, s) || slices.Contains(v.members, d) {
						continue
					}
					if pick == nil || (pick.members[0] == s && v.members[0] != s) {
						pick = v
					}
				}
				switch {
				case pick == nil:
				case pick.members[0] != s:
					pl.replace(pick, s, d)
					found = true
				default:
					found = pl.handOff(pick)
				}
				if found {
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			break
		}
	}
	lo, hi := pl.count[pl.spread[0]], pl.count[pl.spread[0]]
	for _, a := range pl.spread {
		lo, hi = min(lo, pl.count[a]), max(hi, pl.count[a])
	}
	if hi-lo > 1 {
		return false
	}
	for a, c := range pl.count {
		if c > 0 && pl.leaving(a) {
			return false
		}
	}
	return pl.plan.empty()
}

// spreadPrimaries plans primary moves: from the target that is the first member of the most
// partitions to one that is first of at least two fewer, through a chain of partitions
// (each hop hands one partition's first place to another of its members).
func (pl *planner) spreadPrimaries() {
	type hop struct {
		from string
		v    *partView
	}
	for range len(pl.views) {
		byFirst := make(map[string][]*partView)
		for _, v := range pl.views {
			if pl.movable(v) {
				byFirst[v.members[0]] = append(byFirst[v.members[0]], v)
			}
		}
		srcs := slices.Clone(pl.targets)
		slices.SortStableFunc(srcs, func(a, b string) int { return cmp.Compare(pl.firsts[b], pl.firsts[a]) })
		found := false
		for _, s := range srcs {
			if !pl.free(s) {
				continue
			}
			prev := map[string]hop{s: {}}
			queue := []string{s}
			for len(queue) > 0 && !found {
				u := queue[0]
				queue = queue[1:]
				if u != s && pl.busy[u]+2 > pl.limit {
					continue // a server in the middle of the chain takes part in two moves
				}
				for _, v := range byFirst[u] {
					for _, x := range v.members {
						if _, seen := prev[x]; seen || !pl.isTarget(x) || !pl.free(x) {
							continue
						}
						prev[x] = hop{from: u, v: v}
						if pl.firsts[x] <= pl.firsts[s]-2 {
							for w := x; w != s; {
								h := prev[w]
								pl.plan.Lead = append(pl.plan.Lead, leadMove{GPID: h.v.gpid, Node: w})
								pl.moved[h.v.gpid] = true
								pl.busy[w]++
								pl.busy[h.from]++
								w = h.from
							}
							pl.firsts[s]--
							pl.firsts[x]++
							found = true
							break
						}
						queue = append(queue, x)
					}
					if found {
						break
					}
				}
			}
			if found {
				break
			}
		}
		if !found {
			return
		}
	}
}

// planMoves plans one round: decommissions always, balancing only when lively.
func (m *machine) planMoves(lively bool) *balanceMoves {
	targets := m.placeable()
	if len(targets) == 0 {
		return &balanceMoves{}
	}
	if m.lb.movesPerNode <= 0 {
		return &balanceMoves{} // held by meta.lb.add_secondary_max_count_for_one_node 0
	}
	views := m.partitionViews()
	_, busy := inFlight(views)
	pl := &planner{views: views, targets: targets, spread: slices.DeleteFunc(slices.Clone(targets), m.blackListed),
		noCopy: m.blackListed, limit: m.lb.movesPerNode, busy: busy,
		count: make(map[string]int), firsts: make(map[string]int), moved: make(map[idl.GPID]bool), leaving: m.leaving}
	for _, v := range views {
		for _, a := range v.members {
			pl.count[a]++
		}
		pl.firsts[v.members[0]]++
	}
	pl.drain()
	switch {
	case !lively:
	case m.lb.onlyMovePrimary || m.lb.onlyPrimaryBalancer:
		if pl.plan.empty() {
			pl.spreadPrimaries()
		}
	case pl.spreadReplicas():
		pl.spreadPrimaries()
	}
	return &pl.plan
}

// balance runs one round of the balancer on the leader, as the level allows.
func (m *machine) balance(ctx context.Context) {
	lvl := m.level()
	if lvl < idl.MetaLevelSteady {
		return
	}
	plan := m.planMoves(lvl >= idl.MetaLevelLively)
	if plan.empty() {
		return
	}
	if _, err := m.commit(ctx, &mutation{Balance: plan}); err != nil {
		m.lg.Warn("balancer moves not committed; will retry", "err", err)
		return
	}
	for _, r := range plan.Replace {
		m.lg.Info("balancer moves a replica", "gpid", r.GPID.String(), "from", r.Old, "to", r.New)
	}
	for _, l := range plan.Lead {
		m.lg.Info("balancer moves a primary", "gpid", l.GPID.String(), "to", l.Node)
	}
}

// balanceCountText is balance_operation_count as cluster_info shows it.
func (o balanceOps) text() string {
	return fmt.Sprintf("move_pri=%d,copy_pri=%d,copy_sec=%d,total=%d", o.movePri, o.copyPri, o.copySec, o.total())
}

// json is balance_operation_count as /meta/cluster shows it: pretty-printed JSON, sorted keys.
func (o balanceOps) json() string {
	return fmt.Sprintf("{\n  \"copy_pri\": %d,\n  \"copy_sec\": %d,\n  \"move_pri\": %d,\n  \"total\": %d\n}",
		o.copyPri, o.copySec, o.movePri, o.total())
}
