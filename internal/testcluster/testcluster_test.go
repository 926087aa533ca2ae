package testcluster

import (
	"fmt"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/leakcheck"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

func TestStartCreateRestart(t *testing.T) {
	c := Start(t, Options{Replicas: 3})
	if n := len(c.ReplicaAddrs()); n != 3 {
		t.Fatalf("%d replicas", n)
	}
	id := c.CreateTable(t, "temp", 8)
	if id < 1 {
		t.Fatalf("app id %d", id)
	}
	var resp idl.QueryCfgResponse
	if err := c.MetaCall(t.Context(), idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "temp"}, &resp); err != nil {
		t.Fatal(err)
	}
	primaries := map[string]int{}
	for _, p := range resp.Partitions {
		primaries[p.Primary.String()]++
	}
	if len(primaries) != 3 {
		t.Fatalf("primaries not spread over the 3 servers: %v", primaries)
	}
	c.Restart(t)
	c.WaitPrimaries(t, "temp")
}

// A whole cluster (3 metas, 3 replica servers, a table of 3 replicas per partition) that has
// served writes and reads leaves no goroutine once stopped.
func TestStopLeavesNoGoroutine(t *testing.T) {
	snap := leakcheck.Take()
	c := Start(t, Options{Metas: 3, Replicas: 3})
	c.CreateTableReplicas(t, "temp", 4, 3)
	conn := rpc.NewConn(c.MetaLeader(t), rpc.ConnConfig{})
	var resp idl.QueryCfgResponse
	if err := conn.Call(t.Context(), wire.Header{}, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "temp"}, &resp); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	for _, p := range resp.Partitions {
		pc := rpc.NewConn(p.Primary.String(), rpc.ConnConfig{})
		h := wire.Header{AppID: resp.AppID, PartitionIndex: p.PID.PartitionIndex}
		k := key.Encode([]byte(fmt.Sprint("h", p.PID.PartitionIndex)), []byte("s"))
		var ur idl.UpdateResponse
		// Any answer will do (the key may belong to another partition): the request went
		// through the replica server and its partition.
		_ = pc.Call(t.Context(), h, idl.RPCPut, &idl.UpdateRequest{Key: k, Value: []byte("v")}, &ur)
		pc.Close()
	}
	c.stopAll()
	snap.Check(t)
}
