package testcluster

import (
	"testing"
	"time"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/poll"
)

// TestSyncPlacementLeftOutWhileUnchanged: once a replica server has the placement, the
// meta's sync answers leave it out while it does not change; the server keeps serving from
// the one it kept, and a change (a table env set) still reaches every replica.
func TestSyncPlacementLeftOutWhileUnchanged(t *testing.T) {
	c := Start(t, Options{Replicas: 3})
	app := c.CreateTableReplicas(t, "temp", 4, 3)
	before := map[string]int64{}
	for _, addr := range c.ReplicaAddrs() {
		before[addr] = c.Replica(t, addr).SyncsUnchanged()
	}
	poll.Until(t, "sync answers left the placement out", func() bool {
		for _, addr := range c.ReplicaAddrs() {
			if c.Replica(t, addr).SyncsUnchanged() < before[addr]+3 {
				return false
			}
		}
		return true
	})
	tbl := c.OpenTable(t, "temp")
	if err := tbl.Set(t.Context(), []byte("h"), []byte("s"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	adm := admin.NewClient(admin.Config{MetaServers: c.MetaAddrs(), Timeout: 20 * time.Second})
	defer adm.Close()
	if err := adm.SetAppEnvs(t.Context(), "temp", map[string]string{"default_ttl": "3600"}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the env reached every replica", func() bool {
		for _, addr := range c.ReplicaAddrs() {
			for i := range int32(4) {
				envs, ok := c.Replica(t, addr).Envs(idl.GPID{AppID: app, PartitionIndex: i})
				if !ok || envs["default_ttl"] != "3600" {
					return false
				}
			}
		}
		return true
	})
	v, err := tbl.Get(t.Context(), []byte("h"), []byte("s"))
	if err != nil || string(v) != "v" {
		t.Fatalf("get after the env change: %q %v", v, err)
	}
}
