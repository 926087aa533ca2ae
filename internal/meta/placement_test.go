package meta

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// spread counts replicas and first members per node.
func spread(placement [][]string) (load, firsts map[string]int) {
	load, firsts = map[string]int{}, map[string]int{}
	for _, members := range placement {
		firsts[members[0]]++
		for _, m := range members {
			load[m]++
		}
	}
	return load, firsts
}

func minMax(nodes []string, count map[string]int) (lo, hi int) {
	lo, hi = count[nodes[0]], count[nodes[0]]
	for _, n := range nodes {
		lo, hi = min(lo, count[n]), max(hi, count[n])
	}
	return lo, hi
}

func checkDistinct(t *testing.T, placement [][]string, replicas int) {
	t.Helper()
	for i, members := range placement {
		if len(members) != replicas {
			t.Fatalf("partition %d: %d members, want %d", i, len(members), replicas)
		}
		s := slices.Clone(members)
		slices.Sort(s)
		if len(slices.Compact(s)) != replicas {
			t.Fatalf("partition %d: members not distinct: %v", i, members)
		}
	}
}

func TestPlacementOverRPC(t *testing.T) {
	for _, tc := range []struct {
		nodes, partitions, replicas int
	}{
		{3, 8, 3}, // each node hosts all 8, first member of 2 or 3
		{4, 8, 3},
		{5, 16, 3},
		{3, 4, 1},
	} {
		t.Run(fmt.Sprintf("%d nodes %dx%d", tc.nodes, tc.partitions, tc.replicas), func(t *testing.T) {
			tm := startMeta(t, Config{})
			nodes := nodeAddrs(tc.nodes)
			tm.syncAll(nodes)
			tm.create("t", int32(tc.partitions), int32(tc.replicas))
			var placement [][]string
			for range tc.partitions {
				placement = append(placement, nil)
			}
			for _, n := range nodes {
				for _, a := range tm.syncNode(n).Assignments {
					if !slices.Contains(a.Members, n) {
						t.Fatalf("node %s assigned a partition it is not a member of: %+v", n, a)
					}
					placement[a.PartitionIndex] = a.Members
				}
			}
			checkDistinct(t, placement, tc.replicas)
			load, firsts := spread(placement)
			if lo, hi := minMax(nodes, load); hi-lo > 1 {
				t.Errorf("replicas per node %v: spread %d..%d", load, lo, hi)
			}
			if lo, hi := minMax(nodes, firsts); hi-lo > 1 {
				t.Errorf("first members per node %v: spread %d..%d", firsts, lo, hi)
			}
			if tc.nodes == 3 && tc.replicas == 3 {
				for _, n := range nodes {
					if load[n] != tc.partitions {
						t.Errorf("node %s hosts %d, want %d", n, load[n], tc.partitions)
					}
				}
			}
		})
	}
}

// TestPlacementStaysBalanced creates random tables one after the other, as a cluster would:
// the first table's replicas and first members are within one of even, and so are the
// replicas over all tables; first members over all tables stay within two.
func TestPlacementStaysBalanced(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		n := 1 + rng.IntN(7)
		nodes := nodeAddrs(n)
		load, firsts := map[string]int{}, map[string]int{}
		for tbl := range 1 + rng.IntN(4) {
			replicas := 1 + rng.IntN(min(n, 5))
			partitions := 1 + rng.IntN(32)
			p := place(nodes, load, firsts, partitions, replicas, tbl)
			checkDistinct(t, p, replicas)
			if lo, hi := minMax(nodes, load); hi-lo > 1 {
				t.Fatalf("round %d table %d (%d nodes, %dx%d): load %v", round, tbl, n, partitions, replicas, load)
			}
			if lo, hi := minMax(nodes, firsts); hi-lo > 1 && (tbl == 0 || hi-lo > 2) {
				t.Fatalf("round %d table %d (%d nodes, %dx%d): first members %v", round, tbl, n, partitions, replicas, firsts)
			}
		}
	}
}

func TestPlacementIsDeterministic(t *testing.T) {
	nodes := nodeAddrs(5)
	a := place(nodes, map[string]int{}, map[string]int{}, 16, 3, 7)
	shuffled := slices.Clone(nodes)
	slices.Reverse(shuffled)
	b := place(shuffled, map[string]int{}, map[string]int{}, 16, 3, 7)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("partition %d: %v vs %v", i, a[i], b[i])
		}
	}
	// A different offset starts elsewhere, so idle clusters do not pile first members up.
	if c := place(nodes, map[string]int{}, map[string]int{}, 1, 1, 8); c[0][0] == a[0][0] {
		t.Fatalf("offset does not rotate the first node: %v", c[0])
	}
}
