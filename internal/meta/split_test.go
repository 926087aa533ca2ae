package meta

import (
	"slices"
	"testing"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
)

func (tm *testMeta) startSplit(name string, count int32) *idl.StartPartitionSplitResponse {
	tm.t.Helper()
	return callFor[idl.StartPartitionSplitResponse](tm, idl.RPCStartSplit,
		&idl.StartPartitionSplitRequest{AppName: name, NewPartitionCount: count})
}

func (tm *testMeta) querySplit(name string) *idl.QuerySplitResponse {
	tm.t.Helper()
	return callFor[idl.QuerySplitResponse](tm, idl.RPCQuerySplit, &idl.QuerySplitRequest{AppName: name})
}

func (tm *testMeta) controlSplit(name string, ct idl.SplitControlType, parent int32, old ...int32) *idl.ControlSplitResponse {
	tm.t.Helper()
	q := &idl.ControlSplitRequest{AppName: name, ControlType: ct, ParentPidx: parent}
	if len(old) > 0 {
		q.OldPartitionCount = idl.Some(old[0])
	}
	return callFor[idl.ControlSplitResponse](tm, idl.RPCControlSplit, q)
}

// withCopy is a parent replica's report while it holds its child's copy.
func withCopy(rs cluster.ReplicaState, ready bool) cluster.ReplicaState {
	rs.Split = &cluster.SplitProgress{Child: rs.PartitionIndex + 2, Ready: ready}
	return rs
}

// The meta's side of a split of a 2-partition table on 3 servers, driven by the replicas'
// reports: the refusals of operations.md §4, pause and restart of one parent, a cancel that
// brings the count back once no replica keeps a copy, then a split that commits each parent
// once its copies are ready and ends when the children registered.
func TestPartitionSplitMeta(t *testing.T) {
	tm := startMeta(t, Config{})
	nodes := nodeAddrs(3)
	tm.syncAll(nodes)
	id := tm.create("t", 2, 3)
	six := tm.create("six", 6, 3)
	tm.create("gone", 2, 3)
	if e := tm.drop("gone", idl.DropAppOptions{}); e != "ERR_OK" {
		t.Fatalf("drop: %s", e)
	}
	// Every server hosts both partitions; nodes[0] leads them. extra are the states of the
	// children, by server.
	report := func(copies map[int32]bool, extra map[string][]cluster.ReplicaState) {
		t.Helper()
		for i, n := range nodes {
			var rs []cluster.ReplicaState
			for p := range int32(2) {
				r := follower(id, p, 3)
				if i == 0 {
					r = leader(id, p, 3)
				}
				if ready, ok := copies[p]; ok {
					r = withCopy(r, ready)
				}
				rs = append(rs, r)
			}
			rs = append(rs, extra[n]...)
			tm.syncNode(n, rs...)
		}
	}
	report(nil, nil)

	for _, c := range []struct {
		name  string
		table string
		count int32
		want  idl.ErrorCode
	}{
		{"unknown table", "nope", 4, "ERR_APP_NOT_EXIST"},
		{"dropped table", "gone", 4, "ERR_APP_DROPPED"},
		{"not twice the count", "t", 8, "ERR_INVALID_PARAMETERS"},
		{"not a power of two", "six", 12, "ERR_INVALID_PARAMETERS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := tm.startSplit(c.table, c.count); r.Err != c.want {
				t.Fatalf("start: %s (%s), want %s", r.Err, r.HintMsg, c.want)
			}
		})
	}
	if q := tm.query("six"); q.PartitionCount != 6 || six == 0 {
		t.Fatalf("six after a refused split: %d partitions", q.PartitionCount)
	}
	if r := tm.querySplit("t"); r.Err != "ERR_INVALID_STATE" {
		t.Fatalf("query before a split: %s", r.Err)
	}

	// Started: 4 partitions at once, the children with ballot -1 on their parents' servers.
	if r := tm.startSplit("t", 4); r.Err != "ERR_OK" {
		t.Fatalf("start: %s %s", r.Err, r.HintMsg)
	}
	if r := tm.startSplit("t", 8); r.Err != "ERR_BUSY" {
		t.Fatalf("second start: %s", r.Err)
	}
	if e := tm.drop("t", idl.DropAppOptions{}); e != "ERR_SPLITTING" {
		t.Fatalf("drop while splitting: %s", e)
	}
	q := tm.query("t")
	if q.PartitionCount != 4 || len(q.Partitions) != 4 || q.Partitions[2].Ballot != -1 || q.Partitions[3].Ballot != -1 {
		t.Fatalf("config after the start: %+v", q)
	}
	wantSplit := func(what string, want map[int32]idl.SplitStatus) {
		t.Helper()
		r := tm.querySplit("t")
		if r.Err != "ERR_OK" || r.NewPartitionCount != 4 || len(r.Status) != len(want) {
			t.Fatalf("%s: query %+v, want %v", what, r, want)
		}
		for p, st := range want {
			if idl.SplitStatus(r.Status[p]) != st {
				t.Fatalf("%s: parent %d is %s, want %s", what, p, idl.SplitStatus(r.Status[p]), st)
			}
		}
	}
	wantSplit("started", map[int32]idl.SplitStatus{0: idl.SplitSplitting, 1: idl.SplitSplitting})
	resp := tm.syncNode(nodes[1])
	var orders int
	for _, a := range resp.Assignments {
		switch {
		case a.AppID != id:
		case a.PartitionIndex < 2:
			if a.Split == nil || a.Split.NewCount != 4 || a.Split.Status != idl.SplitSplitting || a.Split.Commit || a.PartitionCount != 2 {
				t.Fatalf("parent %d's assignment: %+v", a.PartitionIndex, a)
			}
			orders++
		default:
			if !a.Join || a.SplitParent != a.PartitionIndex-2+1 || a.PartitionCount != 4 {
				t.Fatalf("child %d's assignment: %+v", a.PartitionIndex, a)
			}
			orders++
		}
	}
	if orders != 4 {
		t.Fatalf("%d split assignments, want 4", orders)
	}

	// Pause parent 1: PAUSING while a replica keeps its copy, PAUSED once none does.
	if r := tm.controlSplit("t", idl.SplitControlPause, 5); r.Err != "ERR_INVALID_PARAMETERS" {
		t.Fatalf("pause a parent out of range: %s", r.Err)
	}
	if r := tm.controlSplit("t", idl.SplitControlRestart, 1); r.Err != "ERR_INVALID_STATE" {
		t.Fatalf("restart a splitting parent: %s", r.Err)
	}
	if r := tm.controlSplit("t", idl.SplitControlPause, 1); r.Err != "ERR_OK" {
		t.Fatalf("pause: %s", r.Err)
	}
	report(map[int32]bool{0: false, 1: false}, nil)
	wantSplit("pausing", map[int32]idl.SplitStatus{0: idl.SplitSplitting, 1: idl.SplitPausing})
	report(map[int32]bool{0: false}, nil)
	wantSplit("paused", map[int32]idl.SplitStatus{0: idl.SplitSplitting, 1: idl.SplitPaused})
	if r := tm.controlSplit("t", idl.SplitControlRestart, -1); r.Err != "ERR_OK" {
		t.Fatalf("restart: %s", r.Err)
	}
	wantSplit("restarted", map[int32]idl.SplitStatus{0: idl.SplitSplitting, 1: idl.SplitSplitting})

	// Cancel: the count before the split is asked for; the split ends once no copy is kept.
	if r := tm.controlSplit("t", idl.SplitControlCancel, -1, 4); r.Err != "ERR_INVALID_PARAMETERS" {
		t.Fatalf("cancel with the new count: %s", r.Err)
	}
	if r := tm.controlSplit("t", idl.SplitControlCancel, -1, 2); r.Err != "ERR_OK" {
		t.Fatalf("cancel: %s", r.Err)
	}
	report(map[int32]bool{0: false, 1: false}, nil)
	wantSplit("cancelling", map[int32]idl.SplitStatus{0: idl.SplitCanceling, 1: idl.SplitCanceling})
	report(nil, nil)
	if r := tm.querySplit("t"); r.Err != "ERR_INVALID_STATE" {
		t.Fatalf("query after the cancel: %s", r.Err)
	}
	if q := tm.query("t"); q.PartitionCount != 2 || len(q.Partitions) != 2 {
		t.Fatalf("config after the cancel: %d partitions", q.PartitionCount)
	}

	// Again, to the end: a parent commits once the leader's and a majority's copies are
	// ready; a committed parent can no longer be paused, nor the split cancelled.
	if r := tm.startSplit("t", 4); r.Err != "ERR_OK" {
		t.Fatalf("start again: %s %s", r.Err, r.HintMsg)
	}
	report(map[int32]bool{0: true, 1: false}, nil)
	commits := func() map[int32]bool {
		out := map[int32]bool{}
		for _, a := range tm.syncNode(nodes[2]).Assignments {
			if a.AppID == id && a.Split != nil {
				out[a.PartitionIndex] = a.Split.Commit
			}
		}
		return out
	}
	if c := commits(); !c[0] || c[1] {
		t.Fatalf("commits after parent 0's copies are ready: %v", c)
	}
	if r := tm.controlSplit("t", idl.SplitControlPause, 0); r.Err != "ERR_CHILD_REGISTERED" {
		t.Fatalf("pause a committed parent: %s", r.Err)
	}
	if r := tm.controlSplit("t", idl.SplitControlCancel, -1, 2); r.Err != "ERR_CHILD_REGISTERED" {
		t.Fatalf("cancel with a committed parent: %s", r.Err)
	}
	// child returns the states of the children given, by server: each led by the member of
	// its placement given (0: its intended primary), followed by the others.
	child := func(lead map[int32]int) map[string][]cluster.ReplicaState {
		out := map[string][]cluster.ReplicaState{}
		for _, a := range tm.syncNode(nodes[0]).Assignments {
			l, ok := lead[a.PartitionIndex]
			if a.AppID != id || !ok {
				continue
			}
			for j, n := range a.Members {
				st := follower(id, a.PartitionIndex, 1)
				if j == l {
					st = leader(id, a.PartitionIndex, 1)
				}
				out[n] = append(out[n], st)
			}
		}
		return out
	}
	// Child 2's leader reports: it is registered, but parent 0 stays in the split until the
	// child's intended primary leads it.
	report(map[int32]bool{1: true}, child(map[int32]int{2: 1}))
	if q := tm.query("t"); q.Partitions[2].Ballot != 1 {
		t.Fatalf("child 2 not registered: %+v", q.Partitions[2])
	}
	wantSplit("child 2 led by a secondary", map[int32]idl.SplitStatus{0: idl.SplitSplitting, 1: idl.SplitSplitting})
	report(map[int32]bool{1: true}, child(map[int32]int{2: 0}))
	wantSplit("parent 0 done", map[int32]idl.SplitStatus{1: idl.SplitSplitting})
	report(nil, child(map[int32]int{2: 0, 3: 0}))
	if r := tm.querySplit("t"); r.Err != "ERR_INVALID_STATE" {
		t.Fatalf("query after the split: %s", r.Err)
	}
	q = tm.query("t")
	if q.PartitionCount != 4 || q.Partitions[2].Ballot != 1 || q.Partitions[3].Ballot != 1 {
		t.Fatalf("config after the split: %+v", q)
	}
	l := tm.listApps(&idl.ListAppsRequest{Status: idl.AppStatusAvailable})
	for _, info := range l.Infos {
		if info.AppID == id && (info.PartitionCount != 4 || info.InitPartitionCount != 2) {
			t.Fatalf("app info after the split: %+v", info)
		}
	}
}

// A split places each child on its parent's servers with the intended primary (the first
// member) chosen to keep every server's count of intended primaries within one of the mean:
// copying the parent's order would double the counts, 4 partitions on 3 servers led 2, 1, 1
// becoming 8 led 4, 2, 2.
func TestSplitChildrenSpreadPrimaries(t *testing.T) {
	tm := startMeta(t, Config{})
	nodes := nodeAddrs(3)
	tm.syncAll(nodes)
	id := tm.create("t", 4, 3)
	intended := func(want int) (map[string]int, map[int32][]string) {
		t.Helper()
		leads, members := map[string]int{}, map[int32][]string{}
		for _, a := range tm.syncNode(nodes[0]).Assignments {
			if a.AppID == id {
				leads[a.Members[0]]++
				members[a.PartitionIndex] = a.Members
			}
		}
		if len(members) != want {
			t.Fatalf("%d partitions assigned, want %d", len(members), want)
		}
		return leads, members
	}
	before, parents := intended(4)
	if r := tm.startSplit("t", 8); r.Err != "ERR_OK" {
		t.Fatalf("start: %s %s", r.Err, r.HintMsg)
	}
	after, all := intended(8)
	for i := int32(4); i < 8; i++ {
		got, parent := slices.Clone(all[i]), slices.Clone(parents[i-4])
		slices.Sort(got)
		slices.Sort(parent)
		if !slices.Equal(got, parent) {
			t.Fatalf("child %d on %v, its parent on %v", i, all[i], parents[i-4])
		}
	}
	for _, n := range nodes {
		if d := float64(after[n]) - 8.0/3; d > 1 || d < -1 {
			t.Fatalf("intended primaries after the split %v (before %v): %s is not within one of the mean", after, before, n)
		}
	}
}
