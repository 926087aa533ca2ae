package meta

import (
	"cmp"
	"slices"
)

// place chooses the members of partitions new partitions, replicas distinct nodes each, from
// nodes (which must hold at least replicas distinct addresses).
//
// It spreads both the replicas and the first members (the preferred primaries) over the
// nodes. Each partition takes the replicas nodes hosting the fewest replicas so far (ties:
// fewer first members), which keeps replica counts within one of each other. A first member
// is then picked in each partition, the node with the fewest first members, and the picks
// are rebalanced along chains of partitions until no node has two more first members than
// another one it could hand one to. load and firsts hold the counts of the tables that
// already exist and are updated in place. For one table on a balanced cluster both counts end
// within one of even; over several tables the first-member counts stay within two. Ties are
// broken by the node order rotated by offset plus the partition index, so tables created on
// an idle cluster do not all start on the same node. The result is deterministic.
func place(nodes []string, load, firsts map[string]int, partitions, replicas, offset int) [][]string {
	nodes = slices.Clone(nodes)
	slices.Sort(nodes)
	nodes = slices.Compact(nodes)
	n := len(nodes)
	sets := make([][]string, partitions)
	first := make([]int, partitions)
	order := slices.Clone(nodes)
	rank := make(map[string]int, n)
	for p := range partitions {
		for i, node := range nodes {
			rank[node] = ((i-offset-p)%n + n) % n
		}
		slices.SortFunc(order, func(a, b string) int {
			return cmp.Or(cmp.Compare(load[a], load[b]), cmp.Compare(firsts[a], firsts[b]), cmp.Compare(rank[a], rank[b]))
		})
		set := slices.Clone(order[:replicas])
		f := 0
		for i, node := range set {
			if c := cmp.Or(cmp.Compare(firsts[node], firsts[set[f]]), cmp.Compare(rank[node], rank[set[f]])); c < 0 {
				f = i
			}
		}
		for _, node := range set {
			load[node]++
		}
		firsts[set[f]]++
		sets[p], first[p] = set, f
	}
	for rebalanceFirsts(nodes, sets, first, firsts) {
	}
	out := make([][]string, partitions)
	for p, set := range sets {
		members := []string{set[first[p]]}
		for i, node := range set {
			if i != first[p] {
				members = append(members, node)
			}
		}
		out[p] = members
	}
	return out
}

// rebalanceFirsts moves one first-member role along a chain of partitions, from a node with
// the most to one with at least two fewer, if such a chain exists. It reports whether it did.
func rebalanceFirsts(nodes []string, sets [][]string, first []int, firsts map[string]int) bool {
	byNode := make(map[string][]int) // partitions each node is first member of
	for p, set := range sets {
		byNode[set[first[p]]] = append(byNode[set[first[p]]], p)
	}
	srcs := slices.Clone(nodes)
	slices.SortStableFunc(srcs, func(a, b string) int { return cmp.Compare(firsts[b], firsts[a]) })
	type hop struct {
		from string
		p    int
	}
	for _, s := range srcs {
		prev := map[string]hop{s: {}}
		queue := []string{s}
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			for _, p := range byNode[u] {
				for _, x := range sets[p] {
					if _, seen := prev[x]; seen {
						continue
					}
					prev[x] = hop{from: u, p: p}
					if firsts[x] <= firsts[s]-2 {
						for v := x; v != s; {
							h := prev[v]
							first[h.p] = slices.Index(sets[h.p], v)
							v = h.from
						}
						firsts[s]--
						firsts[x]++
						return true
					}
					queue = append(queue, x)
				}
			}
		}
	}
	return false
}
