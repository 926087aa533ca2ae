package meta

import (
	"cmp"
	"slices"
)

// place chooses the members of partitions new partitions, replicas distinct nodes each, from
// nodes (which must hold at least replicas distinct addresses).
//
// It spreads both the replicas and the first members (the preferred primaries) over the
// nodes: each partition takes the replicas nodes hosting the fewest replicas so far, and
// among those, the one that is first member least often goes first. load and firsts hold
// the counts of the tables that already exist and are updated in place. Ties are broken by
// the node order rotated by offset plus the partition index, so tables created on an idle
// cluster do not all start on the same node. The result is deterministic.
func place(nodes []string, load, firsts map[string]int, partitions, replicas, offset int) [][]string {
	nodes = slices.Clone(nodes)
	slices.Sort(nodes)
	nodes = slices.Compact(nodes)
	n := len(nodes)
	out := make([][]string, partitions)
	rank := make(map[string]int, n)
	order := make([]string, n)
	for p := range partitions {
		for i, node := range nodes {
			rank[node] = ((i-offset-p)%n + n) % n
		}
		copy(order, nodes)
		slices.SortFunc(order, func(a, b string) int {
			return cmp.Or(cmp.Compare(load[a], load[b]), cmp.Compare(firsts[a], firsts[b]), cmp.Compare(rank[a], rank[b]))
		})
		chosen := slices.Clone(order[:replicas])
		first := 0
		for i, node := range chosen {
			f := chosen[first]
			if c := cmp.Or(cmp.Compare(firsts[node], firsts[f]), cmp.Compare(load[node], load[f]), cmp.Compare(rank[node], rank[f])); c < 0 {
				first = i
			}
		}
		chosen[0], chosen[first] = chosen[first], chosen[0]
		for _, node := range chosen {
			load[node]++
		}
		firsts[chosen[0]]++
		out[p] = chosen
	}
	return out
}
