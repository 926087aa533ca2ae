package meta

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
)

// failingLog stands for the metas' raft group: it applies mutations in order, and refuses
// them while fail is set.
type failingLog struct {
	fail  bool
	index uint64
	saved *clusterMap
}

func (l *failingLog) submit(_ context.Context, op *mutation) (applyResult, error) {
	if l.fail {
		return applyResult{}, errors.New("disk full")
	}
	if l.saved == nil {
		l.saved = newClusterMap()
	}
	next := l.saved.clone()
	res := next.apply(op)
	if res.Code == 0 {
		l.saved = next
	}
	l.index++
	return applyResult{res: res, state: appliedMap{index: l.index, m: l.saved}}, nil
}

// TestFailedSaveChangesNothing checks that a change the store cannot persist is neither
// answered as done nor visible afterwards.
func TestFailedSaveChangesNothing(t *testing.T) {
	clock := newFakeClock()
	st := &failingLog{}
	m := newMachine(Config{NodeGrace: DefaultNodeGrace, Now: clock.Now}, slog.New(slog.DiscardHandler), st, &appliedMap{m: newClusterMap()})
	ctx := t.Context()
	for _, n := range nodeAddrs(3) {
		if _, code := m.sync(ctx, &cluster.SyncRequest{Node: n}); code != 0 {
			t.Fatalf("sync: %v", code)
		}
	}
	create := &idl.CreateAppRequest{AppName: "t", Options: goAdminOptions(4, 3)}
	st.fail = true
	if r := m.createApp(ctx, create); r.Err != "ERR_FILE_OPERATION_FAILED" {
		t.Fatalf("create with failing store: %+v", r)
	}
	if r := m.queryConfig(&idl.QueryCfgRequest{AppName: "t"}); r.Err != "ERR_OBJECT_NOT_FOUND" {
		t.Fatalf("unsaved table visible: %s", r.Err)
	}
	st.fail = false
	if r := m.createApp(ctx, create); r.Err != "ERR_OK" || r.AppID != 1 {
		t.Fatalf("create: %+v", r)
	}
	st.fail = true
	if r := m.dropApp(ctx, &idl.DropAppRequest{AppName: "t"}); r.Err != "ERR_FILE_OPERATION_FAILED" {
		t.Fatalf("drop with failing store: %+v", r)
	}
	members := m.state.Tables[0].Partitions[0].Members
	m.sync(ctx, &cluster.SyncRequest{Node: members[0], Replicas: []cluster.ReplicaState{leader(1, 0, 4)}})
	if pc := m.queryConfig(&idl.QueryCfgRequest{AppName: "t"}).Partitions[0]; pc.Ballot != 0 || !pc.Primary.IsZero() {
		t.Fatalf("primary reported with an unsaved ballot: %+v", pc)
	}
	st.fail = false
	m.sync(ctx, &cluster.SyncRequest{Node: members[0], Replicas: []cluster.ReplicaState{leader(1, 0, 4)}})
	if pc := m.queryConfig(&idl.QueryCfgRequest{AppName: "t"}).Partitions[0]; pc.Ballot != 4 || pc.Primary.String() != members[0] {
		t.Fatalf("after the store recovered: %+v", pc)
	}
	if st.saved.Tables[0].Partitions[0].Ballot != 4 || st.saved.Tables[0].Status != idl.AppStatusAvailable {
		t.Fatalf("saved map: %+v", st.saved.Tables[0])
	}
}
