package meta

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

func TestCreateThenQueryConfig(t *testing.T) {
	tm := startMeta(t, Config{})
	nodes := nodeAddrs(3)
	tm.syncAll(nodes)
	id := tm.create("t1", 8, 3)
	if id != 1 {
		t.Fatalf("first app id %d, want 1", id)
	}
	resp := tm.query("t1")
	if resp.Err != "ERR_OK" || resp.AppID != 1 || resp.PartitionCount != 8 || !resp.IsStateful || len(resp.Partitions) != 8 {
		t.Fatalf("query_cfg: %+v", resp)
	}
	for i, pc := range resp.Partitions {
		if pc.PID != (idl.GPID{AppID: 1, PartitionIndex: int32(i)}) {
			t.Errorf("partition %d: pid %v", i, pc.PID)
		}
		// No replica reported leadership yet: no primary, ballot 0, nothing else.
		if !pc.Primary.IsZero() || pc.HPPrimary.Set || pc.Ballot != 0 || len(pc.Secondaries) != 0 || pc.MaxReplicaCount != 3 {
			t.Errorf("partition %d before any leader: %+v", i, pc)
		}
		if pc.LastDrops == nil || len(pc.LastDrops) != 0 {
			t.Errorf("partition %d: last_drops %v, want empty", i, pc.LastDrops)
		}
	}
	if got := tm.query("nope"); got.Err != "ERR_OBJECT_NOT_FOUND" || len(got.Partitions) != 0 {
		t.Fatalf("unknown table: %+v", got)
	}
}

func TestQueryConfigPartitionOrder(t *testing.T) {
	tm := startMeta(t, Config{})
	tm.syncAll(nodeAddrs(1))
	tm.create("t", 8, 1)
	pidx := func(r *idl.QueryCfgResponse) []int32 {
		var out []int32
		for _, pc := range r.Partitions {
			out = append(out, pc.PID.PartitionIndex)
		}
		return out
	}
	for _, tc := range []struct {
		ask, want []int32
	}{
		{[]int32{3, 1, 3}, []int32{3, 1, 3}},
		{[]int32{7, -1, 99, 0}, []int32{7, 0}},
		{[]int32{8, -2}, []int32{0, 1, 2, 3, 4, 5, 6, 7}}, // none valid: all
		{nil, []int32{0, 1, 2, 3, 4, 5, 6, 7}},
	} {
		t.Run(fmt.Sprint(tc.ask), func(t *testing.T) {
			r := tm.query("t", tc.ask...)
			if r.Err != "ERR_OK" || r.PartitionCount != 8 || !slices.Equal(pidx(r), tc.want) {
				t.Errorf("ask %v: got %v (err %s, count %d), want %v", tc.ask, pidx(r), r.Err, r.PartitionCount, tc.want)
			}
		})
	}
}

func TestPrimaryAndBallotFromLeaderReports(t *testing.T) {
	tm := startMeta(t, Config{})
	nodes := nodeAddrs(3)
	tm.syncAll(nodes)
	id := tm.create("t", 2, 3)
	members := tm.syncNode(nodes[0]).Assignments[0].Members

	// The member that reports leadership of partition 0 with term 3 becomes its primary.
	a, b, c := members[0], members[1], members[2]
	tm.syncNode(a, leader(id, 0, 3), follower(id, 1, 1))
	pc := tm.query("t", 0).Partitions[0]
	if addrString(pc.Primary) != a || pc.Ballot != 3 || pc.HPPrimary.V.String() != a {
		t.Fatalf("after leader report: primary %s hp %s ballot %d", addrString(pc.Primary), pc.HPPrimary.V, pc.Ballot)
	}
	secs := []string{addrString(pc.Secondaries[0]), addrString(pc.Secondaries[1])}
	if len(pc.Secondaries) != 2 || len(pc.HPSecondaries.V) != 2 || !slices.Equal(secs, []string{b, c}) ||
		pc.HPSecondaries.V[0].String() != b || pc.HPSecondaries.V[1].String() != c {
		t.Fatalf("secondaries %v hp %v, want [%s %s]", pc.Secondaries, pc.HPSecondaries.V, b, c)
	}
	// Partition 1 has no leader yet.
	if pc1 := tm.query("t", 1).Partitions[0]; !pc1.Primary.IsZero() || pc1.Ballot != 0 {
		t.Fatalf("partition 1: %+v", pc1)
	}

	// A stale claim (lower term) from another member changes nothing.
	tm.syncNode(b, leader(id, 0, 2))
	if pc := tm.query("t", 0).Partitions[0]; addrString(pc.Primary) != a || pc.Ballot != 3 {
		t.Fatalf("after stale claim: primary %s ballot %d", addrString(pc.Primary), pc.Ballot)
	}
	// A newer leader wins, even before the old one reports that it stepped down.
	tm.syncNode(c, leader(id, 0, 5))
	if pc := tm.query("t", 0).Partitions[0]; addrString(pc.Primary) != c || pc.Ballot != 5 {
		t.Fatalf("after new leader: primary %s ballot %d", addrString(pc.Primary), pc.Ballot)
	}
	// The old leader's claim is now stale, so when c steps down there is no primary, and the
	// ballot stays where it was.
	tm.syncNode(c, follower(id, 0, 5))
	if pc := tm.query("t", 0).Partitions[0]; !pc.Primary.IsZero() || pc.HPPrimary.Set || pc.Ballot != 5 || len(pc.Secondaries) != 0 {
		t.Fatalf("after step-down: primary %s ballot %d secondaries %v", addrString(pc.Primary), pc.Ballot, pc.Secondaries)
	}
	// A node outside the placement cannot become primary.
	tm.syncNode("10.9.9.9:34801", leader(id, 0, 9))
	if pc := tm.query("t", 0).Partitions[0]; !pc.Primary.IsZero() || pc.Ballot != 5 {
		t.Fatalf("outsider claim: primary %s ballot %d", addrString(pc.Primary), pc.Ballot)
	}
	// A leader with term 0 still reports ballot >= 1.
	tm.syncNode(a, leader(id, 1, 0))
	if pc := tm.query("t", 1).Partitions[0]; addrString(pc.Primary) != a || pc.Ballot != 1 {
		t.Fatalf("term 0 leader: primary %s ballot %d", addrString(pc.Primary), pc.Ballot)
	}
}

func TestCreateValidation(t *testing.T) {
	tm := startMeta(t, Config{})
	// No replica server alive: the meta is frozen.
	if r := tm.createOpts("t", goAdminOptions(4, 1)); r.Err != "ERR_STATE_FREEZED" {
		t.Fatalf("frozen: %s", r.Err)
	}
	tm.syncAll(nodeAddrs(3))
	withEnvs := goAdminOptions(4, 3)
	withEnvs.Envs = map[string]string{"": "x"}
	for _, tc := range []struct {
		name string
		o    idl.CreateAppOptions
	}{
		{"zero partitions", goAdminOptions(0, 3)},
		{"negative partitions", goAdminOptions(-8, 3)},
		{"too many partitions", goAdminOptions(MaxPartitionCount+1, 3)},
		{"zero replicas", goAdminOptions(4, 0)},
		{"six replicas", goAdminOptions(4, 6)},
		{"more replicas than nodes", goAdminOptions(4, 4)},
		{"empty env key", withEnvs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := tm.createOpts("t", tc.o); r.Err != "ERR_INVALID_PARAMETERS" {
				t.Errorf("%s: %s", tc.name, r.Err)
			}
		})
	}
	if r := tm.createOpts("", goAdminOptions(4, 3)); r.Err != "ERR_INVALID_PARAMETERS" {
		t.Errorf("empty name: %s", r.Err)
	}
	// The checks come before the existence check: an existing table does not hide them.
	o := goAdminOptions(4, 3)
	o.Envs = map[string]string{"k": "v"}
	id := tm.createOpts("t", o).AppID
	if r := tm.createOpts("t", goAdminOptions(0, 3)); r.Err != "ERR_INVALID_PARAMETERS" {
		t.Errorf("existing table, bad count: %s", r.Err)
	}

	// success_if_exist.
	same := o
	same.Envs = map[string]string{"k": "v"}
	if r := tm.createOpts("t", same); r.Err != "ERR_OK" || r.AppID != id {
		t.Errorf("identical, success_if_exist: %+v", r)
	}
	same.SuccessIfExist = false
	if r := tm.createOpts("t", same); r.Err != "ERR_APP_EXIST" {
		t.Errorf("identical, !success_if_exist: %s", r.Err)
	}
	for name, change := range map[string]func(*idl.CreateAppOptions){
		"partitions": func(o *idl.CreateAppOptions) { o.PartitionCount = 8 },
		"replicas":   func(o *idl.CreateAppOptions) { o.ReplicaCount = 2 },
		"envs":       func(o *idl.CreateAppOptions) { o.Envs = map[string]string{} },
		"app type":   func(o *idl.CreateAppOptions) { o.AppType = "other" },
		"stateful":   func(o *idl.CreateAppOptions) { o.IsStateful = false },
	} {
		d := o
		d.Envs = maps.Clone(o.Envs)
		change(&d)
		if r := tm.createOpts("t", d); r.Err != "ERR_INVALID_PARAMETERS" {
			t.Errorf("different %s, success_if_exist: %s", name, r.Err)
		}
	}
	// Envs are compared as currently stored.
	tm.updateEnv(&idl.UpdateAppEnvRequest{AppName: "t", Op: idl.AppEnvOpClear, ClearPrefix: idl.Some("")})
	if r := tm.createOpts("t", goAdminOptions(4, 3)); r.Err != "ERR_OK" || r.AppID != id {
		t.Errorf("after clearing envs, no-env create: %+v", r)
	}
	if got := tm.listApps(&idl.ListAppsRequest{}); len(got.Infos) != 1 {
		t.Fatalf("failed creates left tables behind: %+v", got.Infos)
	}
}

func TestDropAndNameReuse(t *testing.T) {
	tm := startMeta(t, Config{})
	nodes := nodeAddrs(3)
	tm.syncAll(nodes)
	if e := tm.drop("t", idl.DropAppOptions{}); e != "ERR_APP_NOT_EXIST" {
		t.Fatalf("drop unknown: %s", e)
	}
	if e := tm.drop("t", idl.DropAppOptions{SuccessIfNotExist: true}); e != "ERR_OK" {
		t.Fatalf("drop unknown, success_if_not_exist: %s", e)
	}
	id1 := tm.create("t", 4, 3)
	id2 := tm.create("u", 4, 3)
	created := tm.clock.Now().Unix()
	tm.clock.Advance(time.Minute)
	if e := tm.drop("t", idl.DropAppOptions{SuccessIfNotExist: true, ReserveSeconds: idl.Some(int64(0))}); e != "ERR_OK" {
		t.Fatalf("drop: %s", e)
	}
	dropped := tm.clock.Now().Unix()
	if r := tm.query("t"); r.Err != "ERR_OBJECT_NOT_FOUND" {
		t.Fatalf("query dropped: %s", r.Err)
	}
	if e := tm.drop("t", idl.DropAppOptions{}); e != "ERR_APP_NOT_EXIST" {
		t.Fatalf("drop again: %s", e)
	}
	// Listed with status AS_DROPPED, reserve 0 meaning the 7-day default.
	l := tm.listApps(&idl.ListAppsRequest{Status: idl.AppStatusDropped})
	if len(l.Infos) != 1 {
		t.Fatalf("dropped list: %+v", l.Infos)
	}
	if in := l.Infos[0]; in.AppID != id1 || in.Status != idl.AppStatusDropped || in.DropSecond != dropped ||
		in.ExpireSecond != dropped+7*24*3600 || in.CreateSecond != created {
		t.Fatalf("dropped info: %+v", in)
	}
	// Replica servers learn about the drop.
	if r := tm.syncNode(nodes[0]); !slices.Equal(r.DroppedApps, []int32{id1}) {
		t.Fatalf("dropped apps %v", r.DroppedApps)
	} else {
		for _, a := range r.Assignments {
			if a.AppID == id1 {
				t.Fatalf("dropped table still assigned: %+v", a)
			}
		}
	}
	// The name is free again, with a new app id.
	tm.syncAll(nodes) // the clock moved past the grace period
	id3 := tm.create("t", 8, 3)
	if id3 != id2+1 {
		t.Fatalf("reused name got app id %d, want %d", id3, id2+1)
	}
	if r := tm.query("t"); r.Err != "ERR_OK" || r.AppID != id3 || r.PartitionCount != 8 {
		t.Fatalf("query reused name: %+v", r)
	}

	// An explicit reserve period; once it is over, the table is purged.
	if e := tm.drop("u", idl.DropAppOptions{ReserveSeconds: idl.Some(int64(60))}); e != "ERR_OK" {
		t.Fatalf("drop u: %s", e)
	}
	l = tm.listApps(&idl.ListAppsRequest{Status: idl.AppStatusDropped})
	if len(l.Infos) != 2 || l.Infos[1].AppID != id2 || l.Infos[1].ExpireSecond != l.Infos[1].DropSecond+60 {
		t.Fatalf("dropped list: %+v", l.Infos)
	}
	tm.clock.Advance(61 * time.Second)
	l = tm.listApps(&idl.ListAppsRequest{Status: idl.AppStatusDropped})
	if len(l.Infos) != 1 || l.Infos[0].AppID != id1 {
		t.Fatalf("after u expired: %+v", l.Infos)
	}
	tm.clock.Advance(7 * 24 * time.Hour)
	if l := tm.listApps(&idl.ListAppsRequest{}); len(l.Infos) != 1 || l.Infos[0].AppID != id3 {
		t.Fatalf("after t expired: %+v", l.Infos)
	}
	if r := tm.syncNode(nodes[0]); len(r.DroppedApps) != 0 {
		t.Fatalf("purged apps still reported dropped: %v", r.DroppedApps)
	}
	// Ids are never reused, even after a purge.
	tm.syncAll(nodes)
	if id := tm.create("v", 1, 1); id != id3+1 {
		t.Fatalf("after purge: app id %d, want %d", id, id3+1)
	}
}

func TestListApps(t *testing.T) {
	tm := startMeta(t, Config{})
	tm.syncAll(nodeAddrs(1))
	for _, n := range []string{"alpha", "beta", "alphabet", "gamma_a"} {
		tm.create(n, 2, 1)
	}
	tm.drop("beta", idl.DropAppOptions{SuccessIfNotExist: true})
	names := func(r *idl.ListAppsResponse) []string {
		var out []string
		for _, in := range r.Infos {
			out = append(out, in.AppName)
		}
		return out
	}
	pm := func(p string, mt idl.PatternMatchType) *idl.ListAppsRequest {
		return &idl.ListAppsRequest{AppNamePattern: idl.Some(p), MatchType: idl.Some(mt)}
	}
	for _, tc := range []struct {
		name string
		req  *idl.ListAppsRequest
		want []string
	}{
		{"all statuses", &idl.ListAppsRequest{}, []string{"alpha", "beta", "alphabet", "gamma_a"}},
		{"available", &idl.ListAppsRequest{Status: idl.AppStatusAvailable}, []string{"alpha", "alphabet", "gamma_a"}},
		{"dropped", &idl.ListAppsRequest{Status: idl.AppStatusDropped}, []string{"beta"}},
		{"creating", &idl.ListAppsRequest{Status: idl.AppStatusCreating}, nil},
		{"match all", pm("zzz", idl.PatternMatchAll), []string{"alpha", "beta", "alphabet", "gamma_a"}},
		{"exact", pm("alpha", idl.PatternMatchExact), []string{"alpha"}},
		{"anywhere", pm("ph", idl.PatternMatchAnywhere), []string{"alpha", "alphabet"}},
		{"prefix", pm("alpha", idl.PatternMatchPrefix), []string{"alpha", "alphabet"}},
		{"postfix", pm("a", idl.PatternMatchPostfix), []string{"alpha", "beta", "gamma_a"}},
		{"pattern without type: no filter", &idl.ListAppsRequest{AppNamePattern: idl.Some("x")}, []string{"alpha", "beta", "alphabet", "gamma_a"}},
		{"type without pattern: no filter", &idl.ListAppsRequest{MatchType: idl.Some(idl.PatternMatchExact)}, []string{"alpha", "beta", "alphabet", "gamma_a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tm.listApps(tc.req)
			if r.Err != "ERR_OK" || !slices.Equal(names(r), tc.want) {
				t.Errorf("%s: %s %v, want %v", tc.name, r.Err, names(r), tc.want)
			}
		})
	}
	r := tm.listApps(&idl.ListAppsRequest{Status: idl.AppStatusAvailable})
	if in := r.Infos[0]; in.AppID != 1 || in.PartitionCount != 2 || in.MaxReplicaCount != 1 || in.AppType != "pegasus" ||
		!in.IsStateful || in.InitPartitionCount != 2 || in.Envs == nil || in.CreateSecond != tm.clock.Now().Unix() {
		t.Errorf("app info: %+v", in)
	}
	for _, mt := range []idl.PatternMatchType{idl.PatternMatchRegex, idl.PatternMatchInvalid, 42} {
		r := tm.listApps(pm("a.*", mt))
		if r.Err != "ERR_NOT_IMPLEMENTED" || !r.HintMessage.Set || r.HintMessage.V == "" || len(r.Infos) != 0 {
			t.Errorf("match type %v: %+v", mt, r)
		}
	}
}

func TestUpdateAppEnv(t *testing.T) {
	tm := startMeta(t, Config{})
	nodes := nodeAddrs(1)
	tm.syncAll(nodes)
	tm.create("t", 2, 1)
	envs := func() map[string]string {
		r := tm.listApps(&idl.ListAppsRequest{Status: idl.AppStatusAvailable})
		return r.Infos[0].Envs
	}
	set := func(kv ...string) *idl.UpdateAppEnvResponse {
		var ks, vs []string
		for i := 0; i < len(kv); i += 2 {
			ks, vs = append(ks, kv[i]), append(vs, kv[i+1])
		}
		return tm.updateEnv(&idl.UpdateAppEnvRequest{AppName: "t", Op: idl.AppEnvOpSet, Keys: idl.Some(ks), Values: idl.Some(vs)})
	}
	if r := set("rocksdb.a", "1", "rocksdb.b", "2", "rocksdb", "3", "rocksdb.", "4", "other.x", "5", "default_ttl", "86400"); r.Err != "ERR_OK" {
		t.Fatalf("set: %+v", r)
	}
	want := map[string]string{"rocksdb.a": "1", "rocksdb.b": "2", "rocksdb": "3", "rocksdb.": "4", "other.x": "5", "default_ttl": "86400"}
	if got := envs(); !maps.Equal(got, want) {
		t.Fatalf("envs %v, want %v", got, want)
	}
	// Replica servers get the envs with their assignments (once per table, see FillEnvs).
	resp := tm.syncNode(nodes[0])
	resp.FillEnvs()
	for _, a := range resp.Assignments {
		if !maps.Equal(a.Envs, want) {
			t.Fatalf("assignment envs %v", a.Envs)
		}
	}
	if r := set("rocksdb.a", "10"); r.Err != "ERR_OK" {
		t.Fatal(r.Err)
	}
	want["rocksdb.a"] = "10"
	if r := tm.updateEnv(&idl.UpdateAppEnvRequest{AppName: "t", Op: idl.AppEnvOpDel, Keys: idl.Some([]string{"default_ttl", "absent"})}); r.Err != "ERR_OK" {
		t.Fatal(r.Err)
	}
	delete(want, "default_ttl")
	if got := envs(); !maps.Equal(got, want) {
		t.Fatalf("after del: %v, want %v", got, want)
	}
	// CLEAR with a prefix removes "<prefix>.<something>" only.
	if r := tm.updateEnv(&idl.UpdateAppEnvRequest{AppName: "t", Op: idl.AppEnvOpClear, ClearPrefix: idl.Some("rocksdb")}); r.Err != "ERR_OK" {
		t.Fatal(r.Err)
	}
	want = map[string]string{"rocksdb": "3", "rocksdb.": "4", "other.x": "5"}
	if got := envs(); !maps.Equal(got, want) {
		t.Fatalf("after clear rocksdb: %v, want %v", got, want)
	}
	if r := tm.updateEnv(&idl.UpdateAppEnvRequest{AppName: "t", Op: idl.AppEnvOpClear, ClearPrefix: idl.Some("")}); r.Err != "ERR_OK" {
		t.Fatal(r.Err)
	}
	if got := envs(); len(got) != 0 {
		t.Fatalf("after clear all: %v", got)
	}

	for _, tc := range []struct {
		name string
		req  idl.UpdateAppEnvRequest
		want string
	}{
		{"invalid op", idl.UpdateAppEnvRequest{AppName: "t"}, "ERR_INVALID_PARAMETERS"},
		{"set without keys", idl.UpdateAppEnvRequest{AppName: "t", Op: idl.AppEnvOpSet, Values: idl.Some([]string{"v"})}, "ERR_INVALID_PARAMETERS"},
		{"set without values", idl.UpdateAppEnvRequest{AppName: "t", Op: idl.AppEnvOpSet, Keys: idl.Some([]string{"k"})}, "ERR_INVALID_PARAMETERS"},
		{"set length mismatch", idl.UpdateAppEnvRequest{AppName: "t", Op: idl.AppEnvOpSet, Keys: idl.Some([]string{"k", "l"}), Values: idl.Some([]string{"v"})}, "ERR_INVALID_PARAMETERS"},
		{"set nothing", idl.UpdateAppEnvRequest{AppName: "t", Op: idl.AppEnvOpSet, Keys: idl.Some([]string{}), Values: idl.Some([]string{})}, "ERR_INVALID_PARAMETERS"},
		{"del without keys", idl.UpdateAppEnvRequest{AppName: "t", Op: idl.AppEnvOpDel}, "ERR_INVALID_PARAMETERS"},
		{"clear without prefix", idl.UpdateAppEnvRequest{AppName: "t", Op: idl.AppEnvOpClear}, "ERR_INVALID_PARAMETERS"},
		{"unknown table", idl.UpdateAppEnvRequest{AppName: "nope", Op: idl.AppEnvOpSet, Keys: idl.Some([]string{"k"}), Values: idl.Some([]string{"v"})}, "ERR_APP_NOT_EXIST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := tm.updateEnv(&tc.req); r.Err != idl.ErrorCode(tc.want) {
				t.Errorf("%s: %s, want %s", tc.name, r.Err, tc.want)
			}
		})
	}
	if got := envs(); len(got) != 0 {
		t.Fatalf("failed updates changed envs: %v", got)
	}
}

func TestBothHeaderVersionsAndMetaGPIDs(t *testing.T) {
	tm := startMeta(t, Config{})
	tm.syncAll(nodeAddrs(3))
	for i, h := range []wire.Header{
		{Version: 1, AppID: -1, PartitionIndex: -1}, // the Java client's query_cfg
		{Version: 1}, // the Java client's other meta calls
		{Version: 0}, // go, python, nodejs
	} {
		name := "t" + string(rune('0'+i))
		var cr idl.CreateAppResponse
		tm.callH(h, idl.RPCCreateApp, &idl.CreateAppRequest{AppName: name, Options: goAdminOptions(4, 3)}, &cr)
		if cr.Err != "ERR_OK" {
			t.Fatalf("header %+v: create %s", h, cr.Err)
		}
		var qr idl.QueryCfgResponse
		tm.callH(h, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: name}, &qr)
		if qr.Err != "ERR_OK" || qr.AppID != cr.AppID || len(qr.Partitions) != 4 {
			t.Fatalf("header %+v: query %+v", h, qr)
		}
	}
}

// A create_app reply waits until the table is ready: every partition led by the first member
// of its placement (the primary the meta intends), with its other members as secondaries. A
// partition led by another member is not ready yet.
func TestCreateWaitsForIntendedPrimaries(t *testing.T) {
	tm := startMeta(t, Config{CreateWait: new(time.Duration(time.Minute))})
	nodes := nodeAddrs(3)
	tm.syncAll(nodes)
	type reply struct {
		resp idl.CreateAppResponse
		err  error
	}
	replied := make(chan reply, 1)
	go func() {
		conn := rpc.NewConn(tm.srv.Addr(), rpc.ConnConfig{})
		defer conn.Close()
		var r reply
		r.err = conn.Call(context.Background(), wire.Header{}, idl.RPCCreateApp,
			&idl.CreateAppRequest{AppName: "t", Options: goAdminOptions(2, 3)}, &r.resp)
		replied <- r
	}()
	var members [][]string
	for deadline := time.Now().Add(30 * time.Second); len(members) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the table was not registered")
		}
		members = nil
		for _, a := range tm.syncNode(nodes[0]).Assignments {
			members = append(members, a.Members)
		}
	}
	id := tm.query("t").AppID
	// Each report says everything its server hosts.
	reports := map[string][]cluster.ReplicaState{}
	report := func(node string, rs cluster.ReplicaState) {
		t.Helper()
		reports[node] = append(reports[node], rs)
		tm.syncNode(node, reports[node]...)
	}
	notYet := func(what string) {
		t.Helper()
		select {
		case r := <-replied:
			t.Fatalf("create answered (%v, %s) %s", r.err, r.resp.Err, what)
		case <-time.After(200 * time.Millisecond):
		}
	}
	notYet("before any primary")
	// Partition 0 led by its first member, partition 1 by its second: not ready.
	report(members[0][0], leader(id, 0, 2))
	report(members[1][1], leader(id, 1, 2))
	notYet("while partition 1 is led by another member than its first")
	reports[members[1][1]] = reports[members[1][1]][:len(reports[members[1][1]])-1]
	report(members[1][1], follower(id, 1, 3))
	report(members[1][0], leader(id, 1, 3))
	select {
	case r := <-replied:
		if r.err != nil || r.resp.Err != "ERR_OK" || r.resp.AppID != id {
			t.Fatalf("create: %v, %s, app id %d (want %d)", r.err, r.resp.Err, r.resp.AppID, id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("create not answered once every partition had its intended primary")
	}
}
