package storage

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/gopegasus/pegasus/internal/leakcheck"
	"github.com/gopegasus/pegasus/internal/poll"
)

// fillL0 writes n flushed memtables into db: each becomes an L0 file, and past Pebble's L0
// threshold the store needs a compaction.
func fillL0(t *testing.T, db *DB, n int) {
	t.Helper()
	for i := range n {
		for j := range 50 {
			if err := db.pdb.Set(fmt.Appendf(nil, "k%04d", j), fmt.Appendf(nil, "v%d", i), pebble.NoSync); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.pdb.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}

// Stores sharing one Compactions compact as they would with Pebble's own scheduler, the
// shared goroutine stops sampling a store once nothing of it waits, and Close leaves no
// goroutine behind.
func TestSharedCompactionsCompact(t *testing.T) {
	leaks := leakcheck.Take()
	c := NewCompactions()
	var dbs []*DB
	for range 4 {
		db, err := Open(Options{Dir: t.TempDir(), SweepInterval: -1, NoWAL: true, Compactions: c})
		if err != nil {
			t.Fatal(err)
		}
		dbs = append(dbs, db)
	}
	for _, db := range dbs {
		fillL0(t, db, 12)
	}
	for i, db := range dbs {
		poll.Until(t, fmt.Sprintf("store %d compacted", i), func() bool {
			m := db.pdb.Metrics()
			return m.Compact.Count > 0 && m.Levels[0].TablesCount < 12
		})
	}
	poll.Until(t, "no store waiting", func() bool { return c.Waiting() == 0 })
	for _, db := range dbs {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	c.Close()
	leaks.Check(t)
}

// A store whose compactions are limited to one at a time gets the next one granted when the
// first is done (Done), and every one it needs eventually (the shared sampling).
func TestSharedCompactionsOneAtATime(t *testing.T) {
	c := NewCompactions()
	defer c.Close()
	db, err := Open(Options{Dir: t.TempDir(), SweepInterval: -1, NoWAL: true, Compactions: c,
		Pebble: &pebble.Options{CompactionConcurrencyRange: func() (int, int) { return 1, 1 }}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 3 {
		fillL0(t, db, 8)
	}
	poll.Until(t, "L0 compacted", func() bool {
		m := db.pdb.Metrics()
		return m.Compact.Count >= 2 && m.Levels[0].TablesCount < 8
	})
}

// Idle stores given one Compactions start no goroutine of their own for compactions, where
// Pebble's default scheduler starts one per store: they share one.
func TestSharedCompactionsNoGoroutinePerStore(t *testing.T) {
	const stores = 8
	granters := func(c *Compactions) int {
		var dbs []*DB
		for range stores {
			db, err := Open(Options{Dir: t.TempDir(), SweepInterval: -1, NoWAL: true, Compactions: c})
			if err != nil {
				t.Fatal(err)
			}
			dbs = append(dbs, db)
		}
		n := len(leakcheck.Find("periodicGranter")) + len(leakcheck.Find("storage.(*Compactions).run"))
		for _, db := range dbs {
			_ = db.Close()
		}
		return n
	}
	if n := granters(nil); n != stores {
		t.Fatalf("%d stores with Pebble's scheduler: %d granter goroutines, want %d", stores, n, stores)
	}
	c := NewCompactions()
	defer c.Close()
	if n := granters(c); n > 1 {
		t.Fatalf("%d idle stores sharing one Compactions: %d granter goroutines, want at most the shared one", stores, n)
	}
}
