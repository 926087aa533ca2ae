package dup_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/dup"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/meta"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/testcluster"
	"github.com/gopegasus/pegasus/internal/wire"
)

// blackHole is a listener that accepts connections and never answers: a follower cluster's
// metas that hang.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func addRaw(t *testing.T, c *testcluster.Cluster, req *idl.DuplicationAddRequest) *idl.DuplicationAddResponse {
	t.Helper()
	var resp idl.DuplicationAddResponse
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	must(t, c.MetaCall(ctx, idl.RPCAddDuplication, req, &resp))
	return &resp
}

func modifyRaw(t *testing.T, c *testcluster.Cluster, req *idl.DuplicationModifyRequest) idl.ErrorCode {
	t.Helper()
	var resp idl.DuplicationModifyResponse
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	must(t, c.MetaCall(ctx, idl.RPCModifyDuplication, req, &resp))
	return resp.Err
}

func addReq(app, remote string) *idl.DuplicationAddRequest {
	r := idl.NewDuplicationAddRequest()
	r.AppName, r.RemoteClusterName = app, remote
	return &r
}

// Every check of RPC_CM_ADD_DUPLICATION and RPC_CM_MODIFY_DUPLICATION, in the order
// operations.md gives, on one cluster c1 whose peers are: c2, whose metas never answer; c3,
// listed without a cluster id; c4, with an id but not listed.
func TestDuplicationRequestErrors(t *testing.T) {
	peers, err := dup.NewPeers(map[string]string{"c2": blackHole(t), "c3": "127.0.0.1:9"},
		map[string]string{"c1": "1", "c2": "2", "c4": "4"})
	must(t, err)
	c := testcluster.Start(t, testcluster.Options{ClusterName: "c1", Replicas: 3, Peers: &peers})
	c.CreateTableReplicas(t, "t", 4, 3)
	c.CreateTableReplicas(t, "u", 4, 3)

	neg := addReq("t", "c2")
	neg.RemoteReplicaCount = idl.Some(int32(-1))
	selfMissing := addReq("nope", "c1")
	selfMissing.RemoteReplicaCount = idl.Some(int32(-1))
	noIDNeg := addReq("t", "c3")
	noIDNeg.RemoteReplicaCount = idl.Some(int32(-1))
	for _, tc := range []struct {
		name string
		req  *idl.DuplicationAddRequest
		code wire.Code
		hint string
	}{
		// 1. to itself (before everything else: the table does not exist either)
		{"self", selfMissing, wire.ErrInvalidParameters, "illegal operation: adding duplication to itself"},
		// 2. no cluster id (before the negative replica count)
		{"no cluster id", noIDNeg, wire.ErrInvalidParameters, "has no duplication cluster id"},
		// 3. not in [pegasus.clusters]
		{"unlisted", addReq("t", "c4"), wire.ErrInvalidParameters, "is not in [pegasus.clusters]"},
		{"unknown", addReq("t", "c9"), wire.ErrInvalidParameters, "has no duplication cluster id"},
		// 4. negative remote replica count
		{"negative replicas", neg, wire.ErrInvalidParameters, "is negative"},
		// 5. no such table
		{"no table", addReq("nope", "c2"), wire.ErrAppNotExist, "does not exist"},
	} {
		resp := addRaw(t, c, tc.req)
		if string(resp.Err) != tc.code.Name() || !strings.Contains(resp.Hint.V, tc.hint) {
			t.Errorf("%s: %s %q, want %s %q", tc.name, resp.Err, resp.Hint.V, tc.code.Name(), tc.hint)
		}
	}

	first := addRaw(t, c, addReq("t", "c2"))
	if r := addRaw(t, c, addReq("t", "c2")); r.Err != "ERR_DUP_EXIST" || r.DupID != first.DupID {
		t.Fatalf("add again: %+v", r)
	}
	if first.Err != "ERR_OK" || first.DupID == 0 || first.RemoteAppName.V != "t" || first.RemoteReplicaCount.V != 3 {
		t.Fatalf("add: %+v", first)
	}
	// 6. a duplication to that cluster exists: its description comes back.
	again := addReq("t", "c2")
	again.RemoteAppName = idl.Some("other")
	if r := addRaw(t, c, again); r.Err != "ERR_DUP_EXIST" || r.DupID != first.DupID || r.RemoteAppName.V != "t" || r.RemoteReplicaCount.V != 3 {
		t.Fatalf("second add: %+v", r)
	}
	// 7. another table duplicates to the same remote table.
	clash := addReq("u", "c2")
	clash.RemoteAppName = idl.Some("t")
	if r := addRaw(t, c, clash); r.Err != "ERR_INVALID_PARAMETERS" || !strings.Contains(r.Hint.V, "another table (t)") {
		t.Fatalf("clash: %+v", r)
	}
	// A table not duplicating to the same remote table may. Without the checkpoint it is in
	// DS_LOG at once: the meta leader has no step to take for it.
	plain := addReq("u", "c2")
	plain.IsDuplicatingCheckpoint = false
	second := addRaw(t, c, plain)
	if second.Err != "ERR_OK" || second.DupID == first.DupID {
		t.Fatalf("add of u: %+v", second)
	}

	mod := func(app string, id int32, st *idl.DuplicationStatus, fm *idl.DuplicationFailMode) *idl.DuplicationModifyRequest {
		r := &idl.DuplicationModifyRequest{AppName: app, DupID: id}
		if st != nil {
			r.Status = idl.Some(*st)
		}
		if fm != nil {
			r.FailMode = idl.Some(*fm)
		}
		return r
	}
	status := func(s idl.DuplicationStatus) *idl.DuplicationStatus { return &s }
	mode := func(m idl.DuplicationFailMode) *idl.DuplicationFailMode { return &m }
	id := second.DupID
	for _, tc := range []struct {
		name string
		req  *idl.DuplicationModifyRequest
		code wire.Code
	}{
		{"no table", mod("nope", id, status(idl.DupStatusLog), nil), wire.ErrAppNotExist},
		{"dropped table's name", mod("", id, status(idl.DupStatusLog), nil), wire.ErrAppNotExist},
		{"no duplication", mod("u", id+1000, status(idl.DupStatusLog), nil), wire.ErrObjectNotFound},
		{"another table's duplication", mod("u", first.DupID, status(idl.DupStatusLog), nil), wire.ErrObjectNotFound},
		{"same status", mod("u", id, status(idl.DupStatusLog), nil), wire.OK},
		{"LOG -> PREPARE", mod("u", id, status(idl.DupStatusPrepare), nil), wire.ErrInvalidParameters},
		{"LOG -> APP", mod("u", id, status(idl.DupStatusApp), nil), wire.ErrInvalidParameters},
		{"LOG -> INIT", mod("u", id, status(idl.DupStatusInit), nil), wire.ErrInvalidParameters},
		{"unknown status", mod("u", id, status(9), nil), wire.ErrInvalidParameters},
		{"fail mode alone", mod("u", id, nil, mode(idl.DupFailSkip)), wire.OK},
		{"fail fast", mod("u", id, nil, mode(idl.DupFailFast)), wire.ErrInvalidParameters},
		{"unknown fail mode", mod("u", id, nil, mode(7)), wire.ErrInvalidParameters},
		{"LOG -> PAUSE", mod("u", id, status(idl.DupStatusPause), nil), wire.OK},
		{"PAUSE -> APP", mod("u", id, status(idl.DupStatusApp), nil), wire.ErrInvalidParameters},
		{"PAUSE -> LOG with a fail mode", mod("u", id, status(idl.DupStatusLog), mode(idl.DupFailSlow)), wire.OK},
		{"remove", mod("u", id, status(idl.DupStatusRemoved), nil), wire.OK},
		{"a removed duplication", mod("u", id, status(idl.DupStatusLog), nil), wire.ErrObjectNotFound},
	} {
		if got := modifyRaw(t, c, tc.req); string(got) != tc.code.Name() {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.code.Name())
		}
	}

	// While the meta leader waits on c2's metas to create t's follower table (they never
	// answer), a status change is refused with ERR_BUSY, before its legality is looked at;
	// a fail mode changes, and a removal goes through.
	id = first.DupID
	waitFor(t, "ERR_BUSY while the follower table is being created", func() bool {
		got := modifyRaw(t, c, mod("t", id, status(idl.DupStatusPause), nil))
		if got != "ERR_BUSY" && got != "ERR_INVALID_PARAMETERS" {
			t.Fatalf("PREPARE -> PAUSE: %s", got)
		}
		return got == "ERR_BUSY"
	})
	if got := modifyRaw(t, c, mod("t", id, nil, mode(idl.DupFailSkip))); got != "ERR_OK" {
		t.Fatalf("fail mode while busy: %s", got)
	}
	var q idl.DuplicationQueryResponse
	must(t, c.MetaCall(t.Context(), idl.RPCQueryDuplication, &idl.DuplicationQueryRequest{AppName: "t"}, &q))
	if len(q.EntryList) != 1 || q.EntryList[0].Status != idl.DupStatusPrepare || q.EntryList[0].FailMode.V != idl.DupFailSkip {
		t.Fatalf("query: %+v", q)
	}
	if got := modifyRaw(t, c, mod("t", id, status(idl.DupStatusRemoved), nil)); got != "ERR_OK" {
		t.Fatalf("removal while busy: %s", got)
	}
	must(t, c.MetaCall(t.Context(), idl.RPCQueryDuplication, &idl.DuplicationQueryRequest{AppName: "t"}, &q))
	if q.Err != "ERR_OK" || len(q.EntryList) != 0 {
		t.Fatalf("query after the removal: %+v", q)
	}
	var qe idl.DuplicationQueryResponse
	must(t, c.MetaCall(t.Context(), idl.RPCQueryDuplication, &idl.DuplicationQueryRequest{AppName: "nope"}, &qe))
	if qe.Err != "ERR_APP_NOT_EXIST" {
		t.Fatalf("query of a missing table: %s", qe.Err)
	}
	var sync idl.DuplicationSyncResponse
	// Only the cluster's servers send it: a member's connection.
	must(t, c.MemberMetaCall(t.Context(), "127.0.0.1:1", idl.RPCDuplicationSync, &idl.DuplicationSyncRequest{Node: idl.NewRPCAddress([4]byte{127, 0, 0, 1}, 1)}, &sync))
	if sync.Err != "ERR_OBJECT_NOT_FOUND" {
		t.Fatalf("sync from an unknown node: %s", sync.Err)
	}
}

// With [replication] duplication_enabled = false the RPCs answer ERR_SERVICE_NOT_ACTIVE and
// the HTTP endpoints 404, as a Pegasus server does.
func TestDuplicationDisabled(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{ClusterName: "c1", Replicas: 1,
		Meta: func(cfg *meta.Config) {
			cfg.Settings = meta.NewSettings()
			must(t, cfg.Settings.Registry().Set("duplication_enabled", "false"))
		},
		Replica: func(cfg *replica.Config) {
			cfg.Settings = replica.NewSettings()
			must(t, cfg.Settings.Registry().Set("duplication_enabled", "false"))
		}})
	app := c.CreateTable(t, "t", 2)
	if r := addRaw(t, c, addReq("t", "c2")); r.Err != "ERR_SERVICE_NOT_ACTIVE" {
		t.Fatalf("add: %s", r.Err)
	}
	var q idl.DuplicationQueryResponse
	must(t, c.MetaCall(t.Context(), idl.RPCQueryDuplication, &idl.DuplicationQueryRequest{AppName: "t"}, &q))
	var l idl.DuplicationListResponse
	must(t, c.MetaCall(t.Context(), idl.RPCListDuplication, &idl.DuplicationListRequest{MatchType: idl.PatternMatchAll}, &l))
	if q.Err != "ERR_SERVICE_NOT_ACTIVE" || l.Err != "ERR_SERVICE_NOT_ACTIVE" {
		t.Fatalf("query %s, list %s", q.Err, l.Err)
	}
	const body = "duplication is not enabled [FLAGS_duplication_enabled=false]"
	if code, got := httpGet(t, "http://"+c.MetaAddrs()[0]+"/meta/app/duplication?name=t"); code != http.StatusNotFound || got != body {
		t.Fatalf("meta: %d %q", code, got)
	}
	if code, got := httpGet(t, "http://"+c.ReplicaAddrs()[0]+"/replica/duplication?appid="+itoa(app)); code != http.StatusNotFound || got != body {
		t.Fatalf("replica: %d %q", code, got)
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// A cluster without a [duplication-group] id of its own cannot duplicate: its writes would
// carry an id no follower knows.
func TestDuplicationNeedsOwnClusterID(t *testing.T) {
	peers, err := dup.NewPeers(map[string]string{"c2": "127.0.0.1:9"}, map[string]string{"c2": "2"})
	must(t, err)
	c := testcluster.Start(t, testcluster.Options{ClusterName: "c1", Replicas: 1, Peers: &peers})
	c.CreateTable(t, "t", 1)
	if r := addRaw(t, c, addReq("t", "c2")); r.Err != "ERR_INVALID_PARAMETERS" || !strings.Contains(r.Hint.V, `this cluster ("c1") has no duplication cluster id`) {
		t.Fatalf("add: %s %q", r.Err, r.Hint.V)
	}
}
