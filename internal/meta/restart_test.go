package meta

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
)

func tableNames(r *idl.ListAppsResponse) []string {
	var out []string
	for _, in := range r.Infos {
		out = append(out, in.AppName)
	}
	return out
}

func TestInitialTablesCreatedOnceWhenEnoughNodes(t *testing.T) {
	dir := t.TempDir()
	specs := []TableSpec{{Name: "temp", Partitions: 8, Replicas: 3}, {Name: "stat", Partitions: 4, Replicas: 3}}
	tm := startMeta(t, Config{DataDir: dir, InitialTables: specs})
	nodes := nodeAddrs(3)
	tm.syncNode(nodes[0])
	tm.syncNode(nodes[1])
	if got := tm.listApps(&idl.ListAppsRequest{}); len(got.Infos) != 0 {
		t.Fatalf("tables created with 2 of 3 nodes: %v", tableNames(got))
	}
	// The third node's own sync already carries its assignments.
	if r := tm.syncNode(nodes[2]); len(r.Assignments) != 12 {
		t.Fatalf("third node got %d assignments, want 12", len(r.Assignments))
	}
	got := tm.listApps(&idl.ListAppsRequest{})
	// Name order, as Pegasus's onebox: stat = 1, temp = 2.
	if len(got.Infos) != 2 || got.Infos[0].AppName != "stat" || got.Infos[0].AppID != 1 || got.Infos[0].PartitionCount != 4 ||
		got.Infos[1].AppName != "temp" || got.Infos[1].AppID != 2 || got.Infos[1].PartitionCount != 8 ||
		got.Infos[1].MaxReplicaCount != 3 || got.Infos[1].AppType != "pegasus" || !got.Infos[1].IsStateful {
		t.Fatalf("initial tables: %+v", got.Infos)
	}
	// Both tables together are spread: 36 replicas, 12 per node.
	load := map[string]int{}
	for _, n := range nodes {
		load[n] = len(tm.syncNode(n).Assignments)
	}
	for _, n := range nodes {
		if load[n] != 12 {
			t.Fatalf("replicas per node %v", load)
		}
	}

	// Dropped, they are not created again: not now, not after a restart.
	tm.drop("temp", idl.DropAppOptions{SuccessIfNotExist: true})
	tm.drop("stat", idl.DropAppOptions{SuccessIfNotExist: true})
	tm.syncAll(nodes)
	tm.stop()
	tm = startMeta(t, Config{DataDir: dir, Listen: tm.srv.Addr(), InitialTables: specs})
	tm.syncAll(nodes)
	if got := tm.listApps(&idl.ListAppsRequest{Status: idl.AppStatusAvailable}); len(got.Infos) != 0 {
		t.Fatalf("initial tables recreated after restart: %v", tableNames(got))
	}
}

func TestInitialTablesNotCreatedOverExistingTables(t *testing.T) {
	dir := t.TempDir()
	tm := startMeta(t, Config{DataDir: dir})
	tm.syncAll(nodeAddrs(1))
	tm.create("mine", 2, 1)
	tm.stop()
	tm = startMeta(t, Config{DataDir: dir, Listen: tm.srv.Addr(), InitialTables: []TableSpec{{Name: "temp", Partitions: 8, Replicas: 1}}})
	tm.syncAll(nodeAddrs(1))
	if got := tableNames(tm.listApps(&idl.ListAppsRequest{})); !slices.Equal(got, []string{"mine"}) {
		t.Fatalf("tables %v", got)
	}
}

func TestRestartKeepsClusterMap(t *testing.T) {
	dir := t.TempDir()
	tm := startMeta(t, Config{DataDir: dir})
	nodes := nodeAddrs(3)
	id, lead := tm.fillMap(nodes, 7)
	beforeApps := tm.listApps(&idl.ListAppsRequest{})
	beforeCfg := tm.query("t")
	if beforeCfg.Partitions[lead.PartitionIndex].Ballot != 7 {
		t.Fatalf("ballot before restart: %d", beforeCfg.Partitions[lead.PartitionIndex].Ballot)
	}
	tm.stop()

	tm = startMeta(t, Config{DataDir: dir, Listen: tm.srv.Addr()})
	if got := tm.listApps(&idl.ListAppsRequest{}); !reflect.DeepEqual(got, beforeApps) {
		t.Fatalf("apps after restart:\n%+v\nwant\n%+v", got.Infos, beforeApps.Infos)
	}
	// The nodes are known, and their clocks start with the restarted meta's leadership: alive
	// for a grace period even before they sync (liveness is soft state, and they did nothing
	// wrong). Nobody is primary until the leaders report; the ballot survived.
	if got := tm.listNodes(idl.NodeStatusAlive); len(got.Infos) != 3 {
		t.Fatalf("nodes after restart: %v", nodeList(got))
	}
	afterCfg := tm.query("t")
	for i, pc := range afterCfg.Partitions {
		want := beforeCfg.Partitions[i]
		if pc.PID != want.PID || pc.Ballot != want.Ballot || !pc.Primary.IsZero() {
			t.Fatalf("partition %d after restart: %+v", i, pc)
		}
	}
	// Members come back with the same assignments; the old leader leads again; a lower term
	// cannot lower the ballot.
	tm.syncAll(nodes)
	a := tm.syncNode(nodes[0])
	if len(a.Assignments) == 0 || !slices.Equal(a.Assignments[0].Members, lead.Members) || a.Envs[a.Assignments[0].AppID]["k"] != "v" {
		t.Fatalf("assignment after restart: %+v", a.Assignments)
	}
	if !slices.Contains(a.DroppedApps, id+1) {
		t.Fatalf("dropped apps after restart: %v", a.DroppedApps)
	}
	tm.syncNode(nodes[0], leader(id, lead.PartitionIndex, 3))
	if pc := tm.query("t", lead.PartitionIndex).Partitions[0]; pc.Ballot != 7 || !pc.Primary.IsZero() {
		t.Fatalf("stale term after restart: ballot %d primary %s", pc.Ballot, addrString(pc.Primary))
	}
	tm.syncNode(nodes[0], leader(id, lead.PartitionIndex, 8))
	if pc := tm.query("t", lead.PartitionIndex).Partitions[0]; pc.Ballot != 8 || addrString(pc.Primary) != nodes[0] {
		t.Fatalf("new term after restart: ballot %d primary %s", pc.Ballot, addrString(pc.Primary))
	}
	// App ids continue.
	if got := tm.create("next", 1, 1); got != id+2 {
		t.Fatalf("app id after restart %d, want %d", got, id+2)
	}
}

// A meta whose saved snapshot of the cluster map is damaged refuses to start rather than
// serve an empty or partial map.
func TestCorruptSnapshotRefusesToStart(t *testing.T) {
	for name, junk := range map[string]string{"truncated": `{"index":1,"term":1,"map":{"format":1,"tables":[`, "unknown format": `{"index":1,"term":1,"map":{"format":99}}`} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := New(Config{Listen: "127.0.0.1:0", DataDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_ = s.Run(ctx)
			if err := os.WriteFile(filepath.Join(dir, snapshotFile), []byte(junk), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = New(Config{Listen: "127.0.0.1:0", DataDir: dir})
			if err == nil || !strings.Contains(err.Error(), "snapshot") {
				t.Fatalf("New with a damaged snapshot: %v", err)
			}
		})
	}
}
