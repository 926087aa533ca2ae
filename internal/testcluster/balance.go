package testcluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/poll"
)

// placement counts, over the tables, replicas (primary and secondaries) and primaries per
// server as the meta's partition configurations show them.
func placement(ctx context.Context, adm admin.Client, tables ...string) (replicas, primaries map[string]int, err error) {
	replicas, primaries = map[string]int{}, map[string]int{}
	for _, name := range tables {
		cfg, err := adm.QueryConfig(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range cfg.Partitions {
			if p.Primary == "" {
				return nil, nil, fmt.Errorf("partition %d of %s has no primary", p.Index, name)
			}
			primaries[p.Primary]++
			replicas[p.Primary]++
			for _, s := range p.Secondaries {
				replicas[s]++
			}
		}
	}
	return replicas, primaries, nil
}

// withinOneOfMean reports whether every server of nodes has a count within one of the mean.
func withinOneOfMean(nodes []string, count map[string]int) bool {
	total := 0
	for _, n := range nodes {
		total += count[n]
	}
	mean := float64(total) / float64(len(nodes))
	for _, n := range nodes {
		if d := float64(count[n]) - mean; d > 1 || d < -1 {
			return false
		}
	}
	return true
}

func balanceOpsIdle(ctx context.Context, adm admin.Client) (bool, error) {
	info, err := adm.ClusterInfo(ctx)
	if err != nil {
		return false, err
	}
	for _, it := range info {
		if it.Key == "balance_operation_count" {
			return it.Value == "move_pri=0,copy_pri=0,copy_sec=0,total=0", nil
		}
	}
	return false, fmt.Errorf("no balance_operation_count in %v", info)
}

// WaitBalanced waits, at most timeout, until the tables' replicas and primaries are spread
// over every replica server of c within one of the mean, with no balancer move under way,
// and returns the counts per server; it fails the test if they are not by then.
func (c *Cluster) WaitBalanced(t testing.TB, timeout time.Duration, tables ...string) (replicas, primaries map[string]int) {
	t.Helper()
	adm, err := admin.New(admin.Config{MetaServers: c.MetaAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	nodes := c.ReplicaAddrs()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	err = poll.Wait(ctx, func(ctx context.Context) (bool, error) {
		var err error
		if replicas, primaries, err = placement(ctx, adm, tables...); err != nil {
			return false, nil // a partition between primaries
		}
		idle, err := balanceOpsIdle(ctx, adm)
		return err == nil && idle && withinOneOfMean(nodes, replicas) && withinOneOfMean(nodes, primaries), nil
	})
	if err != nil {
		t.Fatalf("not balanced over %d servers: replicas %v, primaries %v: %v", len(nodes), replicas, primaries, err)
	}
	return replicas, primaries
}
