package testcluster

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/internal/dup"
)

// StartClusters starts several clusters that know each other as duplication peers, as
// [Start] starts one: each must have its own ClusterName; cluster i gets duplication cluster
// id i+1, and every cluster's [pegasus.clusters] lists all the others' metas (the addresses
// are reserved before any starts). Options.Peers is ignored.
//
//	cs := testcluster.StartClusters(t, testcluster.Options{ClusterName: "c1"}, testcluster.Options{ClusterName: "c2"})
func StartClusters(t testing.TB, opts ...Options) []*Cluster {
	t.Helper()
	group := map[string]string{}
	for i := range opts {
		if opts[i].ClusterName == "" || group[opts[i].ClusterName] != "" {
			t.Fatalf("testcluster: clusters need distinct names, got %q", opts[i].ClusterName)
		}
		group[opts[i].ClusterName] = strconv.Itoa(i + 1)
		n := opts[i].Metas
		if n == 0 {
			n = 1
		}
		opts[i].metas = reserveMetas(t, n)
	}
	var out []*Cluster
	for i := range opts {
		clusters := map[string]string{}
		for j := range opts {
			if j != i {
				var addrs []string
				for _, m := range opts[j].metas {
					addrs = append(addrs, m.addr)
				}
				clusters[opts[j].ClusterName] = strings.Join(addrs, ",")
			}
		}
		p, err := dup.NewPeers(clusters, group)
		if err != nil {
			t.Fatalf("testcluster: peers of %s: %v", opts[i].ClusterName, err)
		}
		opts[i].Peers = &p
	}
	for i := range opts {
		out = append(out, Start(t, opts[i]))
	}
	return out
}

// Name returns the cluster's name.
func (c *Cluster) Name() string { return c.opts.ClusterName }

// String names the cluster in test messages.
func (c *Cluster) String() string {
	return fmt.Sprintf("cluster %s %v", c.opts.ClusterName, c.MetaAddrs())
}
