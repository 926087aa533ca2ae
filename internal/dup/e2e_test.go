package dup_test

import (
	"testing"
)

// A table with data is duplicated to another cluster: the follower table is created there,
// seeded from the master's checkpoints, then gets the writes made meanwhile and afterwards;
// under a write load, the follower ends with exactly the master's records.
func TestDuplicationSeedsThenShipsUnderLoad(t *testing.T) {
	c1, c2 := pair(t, nil)
	c1.CreateTableReplicas(t, "t", 4, 3)
	master := openTable(t, c1, "t")
	fill(t, master, "before", 0, 200)
	adm := newAdmin(t, c1)

	l := startLoad(t, master, "load", 4)
	id := addDup(t, adm, "t", nil)
	waitStatus(t, adm, "t", id, "DS_LOG")
	follower := openTable(t, c2, "t")
	waitFor(t, "writes acknowledged under load", func() bool { return l.acknowledged.Load() > 500 })
	l.stop()
	recs := converge(t, master, follower)
	t.Logf("%d records on both after %d acknowledged writes", len(recs), l.acknowledged.Load())
}
