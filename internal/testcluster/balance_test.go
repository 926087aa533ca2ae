package testcluster

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/meta"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/replica"
)

// loadCluster starts a cluster for the tests under load: the servers' default raft tick (the
// tests' 20 ms one makes elections churn on a loaded machine), and the meta level given.
func loadCluster(t *testing.T, replicas int, level string, garbage time.Duration) (*Cluster, admin.Client) {
	c := Start(t, Options{Replicas: replicas, GarbageGrace: garbage,
		Replica: func(rc *replica.Config) { rc.TickInterval = 100 * time.Millisecond },
		Meta:    func(mc *meta.Config) { mc.LevelOnStart = level }})
	adm, err := admin.New(admin.Config{MetaServers: c.MetaAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.Close() })
	return c, adm
}

// TestBalanceThreeToFiveUnderLoad grows a lively cluster from 3 to 5 replica servers under a
// client load (Load): it ends balanced (every server's replica and primary counts within one
// of the mean), the moves under way drop back to none, no error reaches the clients, every
// acknowledged write is readable and the checked keys' history is linearizable.
func TestBalanceThreeToFiveUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and moves replicas under load")
	}
	c, _ := loadCluster(t, 3, "lively", 0)
	c.CreateTableReplicas(t, "load", 8, 3)
	c.CreateTableReplicas(t, "other", 4, 3)
	l := c.StartLoad(t, "load", nil)
	c.AddReplica(t)
	c.AddReplica(t)
	c.WaitAlive(t, 5)
	replicas, primaries := c.WaitBalanced(t, 4*time.Minute, "load", "other")
	t.Logf("balanced over %d servers: replicas %v, primaries %v", len(c.ReplicaAddrs()), replicas, primaries)
	l.Check(nil)
}

// TestDecommissionUnderLoad decommissions one of four replica servers under a client load
// (Load): its progress ends empty, no partition keeps it, the server deletes its replicas'
// data once the garbage grace is over, no error reaches the clients, nothing is lost and the
// checked keys' history is linearizable.
func TestDecommissionUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and moves replicas under load")
	}
	// A garbage grace long enough for a replica moved off to be removed from its group
	// first, short enough for the test.
	c, adm := loadCluster(t, 4, "lively", 10*time.Second)
	c.CreateTableReplicas(t, "load", 8, 3)
	l := c.StartLoad(t, "load", nil)
	victim := c.ReplicaAddrs()[1]
	p, err := adm.Decommission(t.Context(), victim)
	if err != nil || len(p) != 1 || p[0].Node != victim || p[0].Empty {
		t.Fatalf("decommission: %v %v", p, err)
	}
	t.Logf("decommissioning %s: %d replicas, %d primaries", victim, p[0].Replicas, p[0].Primaries)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	var steps int
	if err := adm.WaitDecommission(ctx, func([]*admin.DecommissionProgress) { steps++ }, victim); err != nil {
		t.Fatalf("wait for the decommission: %v", err)
	}
	if steps < 2 {
		t.Fatalf("the progress was reported %d times; want the start and the end at least", steps)
	}
	// Empty means no group counts the server any more; the partition it led last may be
	// between two primaries for an election.
	var last string
	if err := poll.Wait(t.Context(), func(ctx context.Context) (bool, error) {
		replicas, primaries, err := placement(ctx, adm, "load")
		last = fmt.Sprintf("replicas %v, primaries %v, %v", replicas, primaries, err)
		return err == nil && replicas[victim] == 0 && primaries[victim] == 0, nil
	}); err != nil {
		cfg, _ := adm.QueryConfig(t.Context(), "load")
		t.Fatalf("after the decommission of %s: %s; %+v", victim, last, cfg)
	}
	l.Check(nil)
	partDir := regexp.MustCompile(`^\d+\.\d+$`)
	poll.Until(t, "the decommissioned server deletes its replicas' data", func() bool {
		entries, err := os.ReadDir(c.ReplicaDir(t, victim))
		return err == nil && !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return partDir.MatchString(e.Name()) })
	})
	if err := adm.CancelDecommission(t.Context(), victim); err != nil {
		t.Fatal(err)
	}
	if st, err := adm.DecommissionStatus(t.Context()); err != nil || len(st) != 0 {
		t.Fatalf("status after cancelling: %v %v", st, err)
	}
}

// TestMetaLevelAdmin sets and reads the level through the admin client: a new server gets
// replicas once the cluster is lively (package meta's TestBalancerSteadyMovesNothing checks
// that steady mode moves nothing).
func TestMetaLevelAdmin(t *testing.T) {
	c, adm := loadCluster(t, 3, "", 0)
	c.CreateTableReplicas(t, "t", 4, 3)
	if l, err := adm.GetMetaLevel(t.Context()); err != nil || l != "steady" {
		t.Fatalf("default level %q %v", l, err)
	}
	added := c.AddReplica(t)
	c.WaitAlive(t, 4)
	if r, _, err := placement(t.Context(), adm, "t"); err != nil || r[added] != 0 {
		t.Fatalf("steady mode gave the new server replicas: %v %v", r, err)
	}
	if old, err := adm.SetMetaLevel(t.Context(), "lively"); err != nil || old != "steady" {
		t.Fatalf("set lively: %q %v", old, err)
	}
	poll.UntilOK(t, "the new server gets replicas in lively mode", func(ctx context.Context) (bool, error) {
		r, _, err := placement(ctx, adm, "t")
		return err == nil && r[added] > 0, nil
	})
	if _, err := adm.SetMetaLevel(t.Context(), "nonsense"); err == nil {
		t.Fatal("a level that does not exist was taken")
	}
}
