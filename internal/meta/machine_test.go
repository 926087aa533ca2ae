package meta

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
)

// failingStore refuses to save while fail is set.
type failingStore struct {
	fail  bool
	saved *clusterMap
}

func (s *failingStore) Load() (*clusterMap, error) { return newClusterMap(), nil }

func (s *failingStore) Save(m *clusterMap) error {
	if s.fail {
		return errors.New("disk full")
	}
	s.saved = m.clone()
	return nil
}

// TestFailedSaveChangesNothing checks that a change the store cannot persist is neither
// answered as done nor visible afterwards.
func TestFailedSaveChangesNothing(t *testing.T) {
	clock := newFakeClock()
	st := &failingStore{}
	m := newMachine(Config{NodeGrace: DefaultNodeGrace, Now: clock.Now}, slog.New(slog.DiscardHandler), st, newClusterMap())
	for _, n := range nodeAddrs(3) {
		if _, code := m.sync(&cluster.SyncRequest{Node: n}); code != 0 {
			t.Fatalf("sync: %v", code)
		}
	}
	create := &idl.CreateAppRequest{AppName: "t", Options: goAdminOptions(4, 3)}
	st.fail = true
	if r := m.createApp(create); r.Err != "ERR_FILE_OPERATION_FAILED" {
		t.Fatalf("create with failing store: %+v", r)
	}
	if r := m.queryConfig(&idl.QueryCfgRequest{AppName: "t"}); r.Err != "ERR_OBJECT_NOT_FOUND" {
		t.Fatalf("unsaved table visible: %s", r.Err)
	}
	st.fail = false
	if r := m.createApp(create); r.Err != "ERR_OK" || r.AppID != 1 {
		t.Fatalf("create: %+v", r)
	}
	st.fail = true
	if r := m.dropApp(&idl.DropAppRequest{AppName: "t"}); r.Err != "ERR_FILE_OPERATION_FAILED" {
		t.Fatalf("drop with failing store: %+v", r)
	}
	members := m.state.Tables[0].Partitions[0].Members
	m.sync(&cluster.SyncRequest{Node: members[0], Replicas: []cluster.ReplicaState{leader(1, 0, 4)}})
	if pc := m.queryConfig(&idl.QueryCfgRequest{AppName: "t"}).Partitions[0]; pc.Ballot != 0 || !pc.Primary.IsZero() {
		t.Fatalf("primary reported with an unsaved ballot: %+v", pc)
	}
	st.fail = false
	m.sync(&cluster.SyncRequest{Node: members[0], Replicas: []cluster.ReplicaState{leader(1, 0, 4)}})
	if pc := m.queryConfig(&idl.QueryCfgRequest{AppName: "t"}).Partitions[0]; pc.Ballot != 4 || pc.Primary.String() != members[0] {
		t.Fatalf("after the store recovered: %+v", pc)
	}
	if st.saved.Tables[0].Partitions[0].Ballot != 4 || st.saved.Tables[0].Status != idl.AppStatusAvailable {
		t.Fatalf("saved map: %+v", st.saved.Tables[0])
	}
}
