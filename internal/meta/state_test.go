package meta

import (
	"reflect"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/wire"
)

// A clone is a deep copy of every field: mutations are applied to clones, so a field the
// clone forgets is lost at the next mutation (a replacement member's Joined mark was, and
// its replica then bootstrapped a group of its own instead of joining the partition's).
func TestCloneKeepsEverything(t *testing.T) {
	m := newClusterMap()
	if r := m.apply(&mutation{CreateTable: &createTable{Name: "t", AppType: "pegasus", ReplicaCount: 3,
		IsStateful: true, Envs: map[string]string{"k": "v"}, Placement: [][]string{{"a:1", "b:1", "c:1"}}}}); r.Code != wire.OK {
		t.Fatalf("create: %v", r.Code)
	}
	id := m.Tables[0].AppID
	m.apply(&mutation{RaiseBallots: []ballotRaise{{GPID: idl.GPID{AppID: id}, Ballot: 4}}})
	m.apply(&mutation{ReplaceMembers: []memberReplace{{GPID: idl.GPID{AppID: id}, Old: "b:1", New: "d:1"}}})
	m.apply(&mutation{AddNodes: []string{"a:1", "d:1"}})
	c := m.clone()
	if !reflect.DeepEqual(c, m) {
		t.Fatalf("clone differs:\n got %+v\nwant %+v", c, m)
	}
	if got := c.Tables[0].Partitions[0].Joined; !reflect.DeepEqual(got, []string{"d:1"}) {
		t.Fatalf("Joined after clone = %v", got)
	}
	// Deep: changing the clone leaves the original alone.
	c.Tables[0].Partitions[0].Joined[0] = "x:1"
	c.Tables[0].Partitions[0].Members[0] = "x:1"
	c.Tables[0].Envs["k"] = "w"
	c.Nodes[0] = "x:1"
	if p := m.Tables[0].Partitions[0]; p.Joined[0] != "d:1" || p.Members[0] != "a:1" || m.Tables[0].Envs["k"] != "v" || m.Nodes[0] != "a:1" {
		t.Fatalf("changing the clone changed the original: %+v", m.Tables[0])
	}
}
