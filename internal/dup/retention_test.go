package dup_test

import (
	"strings"
	"testing"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// The master's raft log is kept for a duplication that has not confirmed it: with the
// duplication paused, the log outlives its usual truncation and the follower gets every
// write once it resumes. Past dup_max_retained_log_entries the log is truncated anyway and
// the duplication is marked lagging, and says so (replica HTTP, meta query, metrics).
func TestDuplicationLogRetention(t *testing.T) {
	c1, c2 := pair(t, func(name string, o *testcluster.Options) {
		if name == "c1" {
			o.LogCompactEvery, o.LogKeep = 50, 20
			o.Replica = func(cfg *replica.Config) {
				cfg.Settings = replica.NewSettings()
				must(t, cfg.Settings.Registry().Set("dup_max_retained_log_entries", "300"))
			}
		}
	})
	app := c1.CreateTableReplicas(t, "r", 1, 3)
	c2.CreateTableReplicas(t, "r", 1, 3)
	adm := newAdmin(t, c1)
	id := addDup(t, adm, "r", &admin.AddDuplicationOptions{NoCheckpoint: true})
	waitAllShipping(t, c1, "r", id)
	master, follower := openTable(t, c1, "r"), openTable(t, c2, "r")

	must(t, adm.PauseDuplication(t.Context(), "r", id))
	waitShipping(t, c1, "r", app, id, false)
	fill(t, master, "kept", 0, 150) // 150 entries: a log truncated every 50 would drop them
	must(t, adm.StartDuplication(t.Context(), "r", id))
	converge(t, master, follower)
	if lagging(t, c1, app) {
		t.Fatal("lagging within the bound")
	}

	must(t, adm.PauseDuplication(t.Context(), "r", id))
	waitShipping(t, c1, "r", app, id, false)
	fill(t, master, "lost", 0, 500) // past the bound of 300
	must(t, adm.StartDuplication(t.Context(), "r", id))
	waitFor(t, "the duplication marked lagging on the primary", func() bool { return lagging(t, c1, app) })
	waitFor(t, "the meta to know it lags", func() bool {
		_, ds, err := adm.QueryDuplications(t.Context(), "r")
		return err == nil && len(ds) == 1 && len(ds[0].Partitions) == 1 && ds[0].Partitions[0].Lagging
	})
	code, body := httpGet(t, "http://"+c1.MetaAddrs()[0]+"/meta/app/duplication?name=r")
	if code != 200 || !strings.Contains(body, `"lagging":true`) {
		t.Fatalf("meta HTTP: %d %s", code, body)
	}
	// What the log still held after the truncation is shipped; the writes before are lost.
	set(t, master, "after", "s", "v")
	waitFor(t, "writes after the gap shipped", func() bool { return countPrefix(mustScan(t, follower), "after") == 1 })
	got := mustScan(t, follower)
	if n := countPrefix(got, "lost"); n == 500 || n == 0 {
		t.Fatalf("%d of the 500 writes made past the bound reached the follower", n)
	}
	dropped := metricSum(t, c1, "dup_log_dropped_entries")[0] > 0
	if !dropped {
		t.Fatal("no replica counts dropped entries")
	}
}

// lagging reports whether a master primary of app says one of its duplications lags.
func lagging(t *testing.T, c *testcluster.Cluster, app int32) bool {
	all, _ := replicaDups(t, c, app)
	for _, d := range all {
		for _, ps := range d {
			for _, st := range ps {
				if st.Lagging {
					return true
				}
			}
		}
	}
	return false
}
