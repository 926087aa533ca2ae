package meta

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/gopegasus/pegasus/internal/console"
	"github.com/gopegasus/pegasus/internal/idl"
)

var _ console.Source = (*Server)(nil)

// ConsoleState returns the cluster as this meta, the leader, sees it, for the web console
// (internal/console). It fails with [console.ErrNotLeader] when this meta does not serve,
// and with ctx's error when ctx ends first. Safe for concurrent use.
func (s *Server) ConsoleState(ctx context.Context) (*console.State, error) {
	var st *console.State
	if !s.asLeader(ctx, func() { st = s.m.consoleState(s.raft.status.Load()) }) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, console.ErrNotLeader
	}
	return st, nil
}

// consoleState copies what the console shows out of the machine.
func (m *machine) consoleState(rs *raftStatus) *console.State {
	st := &console.State{Cluster: m.cfg.ClusterName, Leader: m.cfg.Advertise, Term: rs.term,
		Metas: slices.Clone(rs.voters)}
	counts := m.nodeCounts()
	addrs := slices.Collect(maps.Keys(m.nodes))
	sortNodes(addrs)
	for _, a := range addrs {
		n, c := m.nodes[a], counts[a]
		st.Nodes = append(st.Nodes, console.Node{Addr: a, Alive: n.alive, LastSync: n.lastSync,
			Replicas: c[0] + c[1], Primaries: c[0]})
	}
	for _, t := range m.state.Tables {
		if t.Status != idl.AppStatusAvailable {
			continue
		}
		ct := console.Table{AppID: t.AppID, Name: t.Name, ReplicaCount: t.ReplicaCount, Envs: maps.Clone(t.Envs)}
		if t.CreateSecond > 0 {
			ct.Created = time.Unix(t.CreateSecond, 0)
		}
		for i := range t.Partitions {
			pc := m.partitionConfig(t, int32(i))
			cp := console.Partition{Index: int32(i), Ballot: pc.Ballot}
			if !pc.Primary.IsZero() {
				cp.Primary = pc.Primary.String()
			}
			for _, a := range pc.Secondaries {
				cp.Secondaries = append(cp.Secondaries, a.String())
			}
			for _, a := range pc.LastDrops {
				cp.Dropped = append(cp.Dropped, a.String())
			}
			switch fully, writable, readable := partitionHealth(pc, t.ReplicaCount); {
			case fully:
				cp.Health = console.Healthy
			case writable:
				cp.Health = console.Unhealthy
			case readable:
				cp.Health = console.Unwritable
			default:
				cp.Health = console.Unreadable
			}
			ct.Partitions = append(ct.Partitions, cp)
			st.Operations = append(st.Operations, m.rebuilds(t, int32(i))...)
		}
		st.Tables = append(st.Tables, ct)
	}
	return st
}

// rebuilds are the replicas of partition pidx of t being rebuilt: placement members that
// are alive but not yet voters of the group its primary reports (a replica placed there
// after the one on a lost server, catching up as a learner). Progress is the replica's
// applied index against the primary's, from their last reports.
func (m *machine) rebuilds(t *table, pidx int32) []console.Operation {
	primary, ok := m.primaryOf(t, pidx)
	if !ok {
		return nil
	}
	gpid := idl.GPID{AppID: t.AppID, PartitionIndex: pidx}
	prs := primary.replicas[gpid]
	if len(prs.Voters) == 0 {
		return nil // the primary has not said who votes: nothing to compare with
	}
	var out []console.Operation
	for _, addr := range t.Partitions[pidx].Members {
		n := m.nodes[addr]
		if n == nil || !n.alive || n == primary || slices.Contains(prs.Voters, addr) {
			continue
		}
		op := console.Operation{Kind: "replica_rebuild", Table: t.Name, Partition: pidx,
			Detail: fmt.Sprintf("new replica on %s catching up with the primary on %s", addr, primary.addr),
			Total:  int64(prs.AppliedIndex), Unit: "log entries"}
		if rs, ok := n.replicas[gpid]; ok {
			op.Done = int64(min(rs.AppliedIndex, prs.AppliedIndex))
		}
		out = append(out, op)
	}
	return out
}
