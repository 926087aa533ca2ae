package dup_test

import (
	"fmt"
	"testing"

	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// With dup_batch_linger_ms, a primary that just shipped a small batch waits before the
// next: writes made one after the other, each acknowledged before the next is sent,
// travel in a few batches rather than one each, and the follower still ends with all of
// them, in order (a key written twice keeps its last value).
func TestDuplicationLinger(t *testing.T) {
	c1, c2 := pair(t, func(name string, o *testcluster.Options) {
		if name == "c1" {
			o.Replica = func(c *replica.Config) {
				st := replica.NewSettings()
				if err := st.Registry().Set("dup_batch_linger_ms", "300"); err != nil {
					t.Error(err)
				}
				c.Settings = st
			}
		}
	})
	adm := newAdmin(t, c1)
	newTable(t, c1, c2, "linger", 1)
	master := openTable(t, c1, "linger")
	id := addDup(t, adm, "linger", nil)
	waitStatus(t, adm, "linger", id, "DS_LOG")
	waitAllShipping(t, c1, "linger", id)
	before := metricSum(t, c1, "dup_shipped_batches")[0]
	const writes = 40
	for i := range writes {
		set(t, master, fmt.Sprintf("k%d", i%20), "s", fmt.Sprintf("v%d", i))
	}
	recs := converge(t, master, openTable(t, c2, "linger"))
	if len(recs) != 20 || recs["k0/s"] != "v20" || recs["k19/s"] != "v39" {
		t.Fatalf("follower records %v", recs)
	}
	if n := metricSum(t, c1, "dup_shipped_batches")[0] - before; n > writes/4 {
		t.Fatalf("%d writes made one after the other travelled in %d batches", writes, n)
	}
}
