package dup_test

import (
	"fmt"
	"strings"
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

// A linger ends as soon as a full batch (duplicate_log_batch_bytes) has gathered: with a
// linger of ten minutes, a write of more than a batch's bytes made right after a small batch
// went out reaches the follower long before the linger would have ended.
func TestDuplicationLingerEndsOnFullBatch(t *testing.T) {
	c1, c2 := pair(t, func(name string, o *testcluster.Options) {
		if name == "c1" {
			o.Replica = func(c *replica.Config) {
				st := replica.NewSettings()
				if err := st.Registry().Set("dup_batch_linger_ms", "600000"); err != nil {
					t.Error(err)
				}
				c.Settings = st
			}
		}
	})
	adm := newAdmin(t, c1)
	newTable(t, c1, c2, "full", 1)
	master := openTable(t, c1, "full")
	id := addDup(t, adm, "full", nil)
	waitStatus(t, adm, "full", id, "DS_LOG")
	waitAllShipping(t, c1, "full", id)
	follower := openTable(t, c2, "full")
	set(t, master, "small", "s", "v") // the first batch goes out at once, and is small
	converge(t, master, follower)
	set(t, master, "big", "s", strings.Repeat("x", 2*4096))
	if recs := converge(t, master, follower); len(recs) != 2 {
		t.Fatalf("follower records %v", recs)
	}
}
