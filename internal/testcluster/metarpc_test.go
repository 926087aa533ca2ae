package testcluster

import (
	"fmt"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Every meta RPC over TCP with both request header versions (the go-client's v0 and the
// Java client's v1, which sends gpid (-1,-1) for query_cfg), including the error answers.
func TestEveryMetaRPCBothHeaders(t *testing.T) {
	c := Start(t, Options{Replicas: 3})
	for _, v := range []int{0, 1} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			conn := rpc.NewConn(c.MetaAddrs()[0], rpc.ConnConfig{})
			defer conn.Close()
			h := wire.Header{Version: v}
			call := func(name string, args, reply idl.Value) {
				t.Helper()
				if err := conn.Call(t.Context(), h, name, args, reply); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			name := fmt.Sprintf("t%d", v)
			var cr idl.CreateAppResponse
			call(idl.RPCCreateApp, &idl.CreateAppRequest{AppName: name, Options: idl.CreateAppOptions{
				PartitionCount: 4, ReplicaCount: 3, SuccessIfExist: true, AppType: "pegasus", IsStateful: true, Envs: map[string]string{}}}, &cr)
			if cr.Err != "ERR_OK" || cr.AppID < 1 {
				t.Fatalf("create: %+v", cr)
			}
			call(idl.RPCCreateApp, &idl.CreateAppRequest{AppName: name, Options: idl.CreateAppOptions{
				PartitionCount: 4, ReplicaCount: 3, AppType: "pegasus", IsStateful: true}}, &cr)
			if cr.Err != "ERR_APP_EXIST" {
				t.Fatalf("create again without success_if_exist: %+v", cr)
			}
			c.WaitPrimaries(t, name)
			qh := h
			if v == 1 {
				qh.AppID, qh.PartitionIndex = -1, -1
			}
			var q idl.QueryCfgResponse
			if err := conn.Call(t.Context(), qh, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: name}, &q); err != nil {
				t.Fatal(err)
			}
			if q.Err != "ERR_OK" || q.PartitionCount != 4 || len(q.Partitions) != 4 || q.Partitions[0].Ballot < 1 {
				t.Fatalf("query_cfg: %+v", q)
			}
			if err := conn.Call(t.Context(), qh, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "missing"}, &q); err != nil || q.Err != "ERR_OBJECT_NOT_FOUND" {
				t.Fatalf("query_cfg of a missing table: %v %q", err, q.Err)
			}
			var la idl.ListAppsResponse
			call(idl.RPCListApps, &idl.ListAppsRequest{Status: idl.AppStatusAvailable}, &la)
			found := false
			for _, a := range la.Infos {
				found = found || a.AppName == name
			}
			if la.Err != "ERR_OK" || !found {
				t.Fatalf("list_apps: %+v", la)
			}
			var ln idl.ListNodesResponse
			call(idl.RPCListNodes, &idl.ListNodesRequest{Status: idl.NodeStatusAlive}, &ln)
			if ln.Err != "ERR_OK" || len(ln.Infos) != 3 {
				t.Fatalf("list_nodes: %+v", ln)
			}
			var ci idl.ClusterInfoResponse
			call(idl.RPCClusterInfo, &idl.ClusterInfoRequest{}, &ci)
			if ci.Err != "ERR_OK" || len(ci.Keys) != len(ci.Values) || len(ci.Keys) == 0 || ci.Keys[0] != "meta_servers" {
				t.Fatalf("cluster_info: %+v", ci)
			}
			var ue idl.UpdateAppEnvResponse
			call(idl.RPCUpdateAppEnv, &idl.UpdateAppEnvRequest{AppName: name, Op: idl.AppEnvOpSet,
				Keys: idl.Some([]string{"default_ttl"}), Values: idl.Some([]string{"100"})}, &ue)
			if ue.Err != "ERR_OK" {
				t.Fatalf("update_app_env: %+v", ue)
			}
			call(idl.RPCUpdateAppEnv, &idl.UpdateAppEnvRequest{AppName: name, Op: idl.AppEnvOpSet}, &ue)
			if ue.Err != "ERR_INVALID_PARAMETERS" {
				t.Fatalf("update_app_env without keys: %+v", ue)
			}
			var txt idl.Text
			call(idl.RPCCLICall, &idl.Command{Cmd: "server-info"}, &txt)
			if len(txt) == 0 {
				t.Fatal("server-info: empty")
			}
			var dr idl.DropAppResponse
			call(idl.RPCDropApp, &idl.DropAppRequest{AppName: name, Options: idl.DropAppOptions{SuccessIfNotExist: true}}, &dr)
			if dr.Err != "ERR_OK" {
				t.Fatalf("drop: %+v", dr)
			}
			call(idl.RPCDropApp, &idl.DropAppRequest{AppName: name}, &dr)
			if dr.Err != "ERR_APP_NOT_EXIST" {
				t.Fatalf("drop of a dropped table: %+v", dr)
			}
		})
	}
}
