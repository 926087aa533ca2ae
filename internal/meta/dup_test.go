package meta

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

func dupMap(t *testing.T) *clusterMap {
	t.Helper()
	m := newClusterMap()
	if r := m.apply(&mutation{CreateTable: &createTable{Name: "t", Placement: [][]string{{"a:1"}, {"b:1"}}}}); r.Code != wire.OK {
		t.Fatal(r.Code)
	}
	return m
}

func newDup(id int32, parts int) *duplication {
	d := &duplication{ID: id, Remote: "c2", RemoteApp: "t", Status: idl.DupStatusPrepare, Partitions: make([]dupPartition, parts)}
	for i := range d.Partitions {
		d.Partitions[i] = dupPartition{Confirmed: -1, Checkpoint: -1, LastCommitted: -1}
	}
	return d
}

func TestDupMutations(t *testing.T) {
	m := dupMap(t)
	if r := m.apply(&mutation{AddDup: &addDup{AppID: 1, Dup: newDup(7, 2)}}); r.Code != wire.OK {
		t.Fatal(r.Code)
	}
	for _, bad := range []*addDup{{AppID: 1, Dup: newDup(8, 2)}, {AppID: 1, Dup: newDup(7, 2)}, {AppID: 9, Dup: newDup(9, 2)}} {
		if r := m.apply(&mutation{AddDup: bad}); r.Code == wire.OK {
			t.Fatalf("add %+v accepted", bad)
		}
	}
	if !m.tableByID(1).appInfo().Duplicating {
		t.Fatal("app_info.duplicating not set")
	}
	// Progress only moves forward; the checkpoint is set once.
	m.apply(&mutation{DupProgress: []dupProgress{{AppID: 1, ID: 7, Pidx: 1, Confirmed: 5, Checkpoint: 3, LastCommitted: 9}}})
	m.apply(&mutation{DupProgress: []dupProgress{{AppID: 1, ID: 7, Pidx: 1, Confirmed: 4, Checkpoint: 8, LastCommitted: 2, Lagging: true}}})
	if got := m.tableByID(1).Dups[0].Partitions[1]; got != (dupPartition{Confirmed: 5, Checkpoint: 3, LastCommitted: 9, Lagging: true}) {
		t.Fatalf("progress %+v", got)
	}
	// The driver's steps apply only from the status they were decided in.
	prepare, app, log := idl.DupStatusPrepare, idl.DupStatusApp, idl.DupStatusLog
	if r := m.apply(&mutation{ModifyDup: &modifyDup{AppID: 1, ID: 7, From: &app, Status: &log}}); r.Code != wire.ErrInvalidState {
		t.Fatalf("a stale step: %v", r.Code)
	}
	if r := m.apply(&mutation{ModifyDup: &modifyDup{AppID: 1, ID: 7, From: &prepare, Status: &app}}); r.Code != wire.OK || m.tableByID(1).Dups[0].Status != app {
		t.Fatalf("a step: %v", r.Code)
	}
	// A clone does not share duplications (nor joined members) with its original.
	m.tableByID(1).Partitions[0].Joined = []string{"a:1"}
	c := m.clone()
	c.tableByID(1).Dups[0].Partitions[0].Confirmed = 99
	c.tableByID(1).Dups[0].Status = idl.DupStatusPause
	if o := m.tableByID(1).Dups[0]; o.Partitions[0].Confirmed != -1 || o.Status != app {
		t.Fatalf("the clone shares state: %+v", o)
	}
	if !reflect.DeepEqual(c.tableByID(1).Partitions[0].Joined, []string{"a:1"}) {
		t.Fatal("the clone lost the joined members")
	}
	// The map survives a snapshot's JSON.
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back clusterMap
	if err := json.Unmarshal(raw, &back); err != nil || !reflect.DeepEqual(back.Tables[0].Dups, m.Tables[0].Dups) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back.Tables[0].Dups, m.Tables[0].Dups)
	}
	removed := idl.DupStatusRemoved
	if r := m.apply(&mutation{ModifyDup: &modifyDup{AppID: 1, ID: 7, Status: &removed}}); r.Code != wire.OK || m.tableByID(1).Dups != nil {
		t.Fatalf("remove: %v %+v", r.Code, m.tableByID(1).Dups)
	}
	if m.tableByID(1).appInfo().Duplicating {
		t.Fatal("still duplicating")
	}
	if r := m.apply(&mutation{ModifyDup: &modifyDup{AppID: 1, ID: 7, Status: &log}}); r.Code != wire.ErrObjectNotFound {
		t.Fatalf("modify a removed duplication: %v", r.Code)
	}
}
