package meta

import (
	"testing"

	"github.com/gopegasus/pegasus/internal/cluster"
)

// TestSyncLeavesOutUnchangedPlacement: a server that names the hash of the last answer it
// acted on gets the placement part left out while it is the same, and in full once it
// changed or from another meta.
func TestSyncLeavesOutUnchangedPlacement(t *testing.T) {
	nodes := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}
	sc := newSimCluster(t, Config{}, nodes)
	sc.create("t1", 4, 3)
	sync := func(known uint64) *cluster.SyncResponse {
		t.Helper()
		resp, code := sc.m.sync(t.Context(), &cluster.SyncRequest{Node: nodes[0], StartTime: 1, KnownAssignments: known})
		if code != 0 {
			t.Fatalf("sync: %v", code)
		}
		return resp
	}
	full := sync(0)
	if full.Unchanged || len(full.Assignments) != 4 || full.AssignmentsHash == 0 {
		t.Fatalf("first answer: unchanged %v, %d assignments, hash %x; want the 4 in full, hashed", full.Unchanged, len(full.Assignments), full.AssignmentsHash)
	}
	same := sync(full.AssignmentsHash)
	if !same.Unchanged || same.Assignments != nil || same.Apps != nil || same.AssignmentsHash != full.AssignmentsHash {
		t.Fatalf("same placement: unchanged %v, %d assignments, hash %x; want it left out under %x", same.Unchanged, len(same.Assignments), same.AssignmentsHash, full.AssignmentsHash)
	}
	if other := sync(full.AssignmentsHash + 1); other.Unchanged || len(other.Assignments) != 4 {
		t.Fatalf("a hash the meta did not give: unchanged %v, %d assignments; want the answer in full", other.Unchanged, len(other.Assignments))
	}
	sc.create("t2", 2, 3)
	grown := sync(full.AssignmentsHash)
	if grown.Unchanged || len(grown.Assignments) != 6 || grown.AssignmentsHash == full.AssignmentsHash {
		t.Fatalf("after a create: unchanged %v, %d assignments; want the 6 in full under a new hash", grown.Unchanged, len(grown.Assignments))
	}
	// Another meta (a new leader) hashes with its own seed: the same placement, another hash.
	sc2 := newSimCluster(t, Config{}, nodes)
	sc2.m.state = sc.m.state
	resp, _ := sc2.m.sync(t.Context(), &cluster.SyncRequest{Node: nodes[0], StartTime: 1, KnownAssignments: grown.AssignmentsHash})
	if resp.Unchanged {
		t.Fatal("another meta left the placement out on a hash it did not give")
	}
}
