package testcluster

import (
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
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
