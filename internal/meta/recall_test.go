package meta

import (
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/poll"
)

func (tm *testMeta) recall(id int32, name string) *idl.RecallAppResponse {
	tm.t.Helper()
	var resp idl.RecallAppResponse
	tm.call(idl.RPCRecallApp, &idl.RecallAppRequest{AppID: id, NewAppName: name}, &resp)
	return &resp
}

// Recall of a dropped table: every refusal of operations.md §5, then a recall that answers
// once every partition has a primary again, under the same id and the new name.
func TestRecallApp(t *testing.T) {
	tm := startMeta(t, Config{})
	nodes := nodeAddrs(3)
	tm.syncAll(nodes)
	id := tm.create("t", 2, 3)
	other := tm.create("u", 1, 3)
	for _, n := range nodes {
		tm.syncNode(n, leader(id, 0, 3), leader(id, 1, 3), leader(other, 0, 3))
	}
	if r := tm.recall(99, ""); r.Err != "ERR_APP_NOT_EXIST" {
		t.Fatalf("recall an unknown id: %s", r.Err)
	}
	if r := tm.recall(id, ""); r.Err != "ERR_APP_EXIST" {
		t.Fatalf("recall an available table: %s", r.Err)
	}
	if e := tm.drop("t", idl.DropAppOptions{ReserveSeconds: idl.Some(int64(3600))}); e != "ERR_OK" {
		t.Fatalf("drop: %s", e)
	}
	if r := tm.recall(id, "u"); r.Err != "ERR_INVALID_PARAMETERS" {
		t.Fatalf("recall under a taken name: %s", r.Err)
	}
	// The dropped table's partitions are no longer assigned; the replica servers stop them
	// (and keep their data).
	for _, n := range nodes {
		if r := tm.syncNode(n, leader(other, 0, 3)); len(r.DroppedApps) != 1 || r.DroppedApps[0] != id || len(r.Assignments) != 1 {
			t.Fatalf("after the drop: dropped %v, %d assignments", r.DroppedApps, len(r.Assignments))
		}
	}

	// The recall waits until every partition has a primary.
	done := make(chan *idl.RecallAppResponse, 1)
	go func() { done <- tm.recall(id, "t2") }()
	poll.Until(t, "the table recalling", func() bool {
		l := tm.listApps(&idl.ListAppsRequest{Status: idl.AppStatusRecalling})
		return len(l.Infos) == 1
	})
	if r := tm.recall(id, "t3"); r.Err != "ERR_BUSY_CREATING" {
		t.Fatalf("recall while recalling: %s", r.Err)
	}
	if r := tm.createOpts("t2", goAdminOptions(2, 3)); r.Err != "ERR_BUSY_CREATING" {
		t.Fatalf("create under a name being recalled: %s", r.Err)
	}
	if r := tm.query("t2"); r.Err != "ERR_BUSY_CREATING" {
		t.Fatalf("query a table being recalled: %s", r.Err)
	}
	if e := tm.drop("t2", idl.DropAppOptions{}); e != "ERR_BUSY_CREATING" {
		t.Fatalf("drop a table being recalled: %s", e)
	}
	if r := tm.syncNode(nodes[1]); len(r.DroppedApps) != 0 || len(r.Assignments) != 3 {
		t.Fatalf("while recalling: dropped %v, %d assignments", r.DroppedApps, len(r.Assignments))
	}
	select {
	case r := <-done:
		t.Fatalf("recall answered before the partitions had primaries: %+v", r)
	default:
	}
	tm.syncNode(nodes[0], leader(id, 0, 4))
	tm.syncNode(nodes[1], leader(id, 1, 4))
	r := <-done
	if r.Err != "ERR_OK" || r.Info.AppID != id || r.Info.AppName != "t2" || r.Info.Status != idl.AppStatusAvailable ||
		r.Info.PartitionCount != 2 || r.Info.DropSecond != 0 {
		t.Fatalf("recall: %+v", r)
	}
	if q := tm.query("t2"); q.Err != "ERR_OK" || q.AppID != id || q.Partitions[0].Ballot != 4 {
		t.Fatalf("query the recalled table: %+v", q)
	}

	// Dropped again with a short reserve: once it expired it cannot be recalled, and the
	// replica servers are told it is gone.
	if e := tm.drop("t2", idl.DropAppOptions{ReserveSeconds: idl.Some(int64(60))}); e != "ERR_OK" {
		t.Fatalf("drop again: %s", e)
	}
	tm.clock.Advance(61 * time.Second)
	tm.syncAll(nodes)
	if r := tm.recall(id, ""); r.Err != "ERR_APP_NOT_EXIST" {
		t.Fatalf("recall an expired table: %s", r.Err)
	}
	if r := tm.syncNode(nodes[0]); len(r.DroppedApps) != 0 || r.MaxAppID != other || len(r.Apps) != 1 || r.Apps[0] != other {
		t.Fatalf("after expiry: dropped %v, apps %v, max app id %d", r.DroppedApps, r.Apps, r.MaxAppID)
	}
}

// The drop's default reserve is the setting hold_seconds_for_dropped_app.
func TestDropReserveSetting(t *testing.T) {
	tm := startMeta(t, Config{DropReserve: 90 * time.Second})
	tm.syncAll(nodeAddrs(1))
	tm.create("t", 1, 1)
	if e := tm.drop("t", idl.DropAppOptions{}); e != "ERR_OK" {
		t.Fatalf("drop: %s", e)
	}
	l := tm.listApps(&idl.ListAppsRequest{Status: idl.AppStatusDropped})
	if len(l.Infos) != 1 || l.Infos[0].ExpireSecond != l.Infos[0].DropSecond+90 {
		t.Fatalf("dropped: %+v", l.Infos)
	}
}
