package replica

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/leakcheck"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
)

// The stores of idle partitions are parked (store_park_idle_seconds) and reopened by the
// next read, which finds every write; a restart with parked stores loses nothing.
func TestIdleStoresParkAndServe(t *testing.T) {
	a, meta := startAssigner(t)
	dir := t.TempDir()
	cfg := func(listen string) Config {
		st := NewSettings()
		if err := st.Registry().Set("store_park_idle_seconds", "1"); err != nil {
			t.Fatal(err)
		}
		return Config{Listen: listen, DataDir: dir, Metas: []string{meta}, Settings: st}
	}
	s, stop := runReplicaCfg(t, cfg("127.0.0.1:0"))
	addr := s.Addr()
	singleNodeTable(a, addr, 4)
	poll.Until(t, "4 primaries", func() bool { return len(a.leaders()) == 4 })
	c := &client{conn: rpc.NewConn(addr, rpc.ConnConfig{}), appID: testApp, count: 4}
	for i := range 40 {
		c.put(t, fmt.Sprintf("h%d", i), "s", fmt.Sprintf("v%d", i))
	}
	poll.Until(t, "4 stores parked", func() bool { return s.parking.Stats().Parked == 4 })
	for i := range 40 {
		if v, code := c.get(t, fmt.Sprintf("h%d", i), "s"); code != 0 || v != fmt.Sprintf("v%d", i) {
			t.Fatalf("get h%d from a parked store: %q %d", i, v, code)
		}
	}
	if st := s.parking.Stats(); st.Reopens < 4 || st.Failures != 0 {
		t.Fatalf("parking stats %+v", st)
	}
	// Written after the reopens, parked again, then the server restarts.
	for i := range 40 {
		c.put(t, fmt.Sprintf("h%d", i), "s", fmt.Sprintf("w%d", i))
	}
	poll.Until(t, "4 stores parked again", func() bool { return s.parking.Stats().Parked == 4 })
	c.conn.Close()
	stop()
	s2, _ := runReplicaCfg(t, cfg(addr))
	c = &client{conn: rpc.NewConn(s2.Addr(), rpc.ConnConfig{}), appID: testApp, count: 4}
	defer c.conn.Close()
	poll.Until(t, "primaries after restart", func() bool {
		for p := range int32(4) {
			if pp := s2.partition(idl.GPID{AppID: testApp, PartitionIndex: p}); pp == nil || !pp.isLeader.Load() {
				return false
			}
		}
		return true
	})
	for i := range 40 {
		if v, code := c.get(t, fmt.Sprintf("h%d", i), "s"); code != 0 || v != fmt.Sprintf("w%d", i) {
			t.Fatalf("after restart, get h%d: %q %d", i, v, code)
		}
	}
}

// storeFilesUnder counts the files this process holds open under dir, the raft log's left
// out: the partitions' stores.
func storeFilesUnder(t *testing.T, dir string) int {
	t.Helper()
	return leakcheck.OpenFilesUnder(t, dir, filepath.Join(dir, "raftlog"))
}

// With max_open_stores, a server keeps at most that many of its replicas' stores open (no
// parking by time here): each partition serves its writes and reads, the others' stores
// parked around it, and a restart with every store closed loses nothing.
func TestMaxOpenStoresBound(t *testing.T) {
	const parts, bound = 12, 3
	a, meta := startAssigner(t)
	dir := t.TempDir()
	cfg := func(listen string) Config {
		st := NewSettings()
		if err := st.Registry().Set("store_park_idle_seconds", "0"); err != nil {
			t.Fatal(err)
		}
		if err := st.Registry().Set("max_open_stores", fmt.Sprint(bound)); err != nil {
			t.Fatal(err)
		}
		return Config{Listen: listen, DataDir: dir, Metas: []string{meta}, Settings: st}
	}
	s, stop := runReplicaCfg(t, cfg("127.0.0.1:0"))
	addr := s.Addr()
	singleNodeTable(a, addr, parts)
	poll.Until(t, "12 primaries", func() bool { return len(a.leaders()) == parts })
	c := &client{conn: rpc.NewConn(addr, rpc.ConnConfig{}), appID: testApp, count: parts}
	check := func(when string) {
		t.Helper()
		st := s.parking.Stats()
		if st.Stores != parts {
			t.Fatalf("%s: %+v", when, st)
		}
		if st.Reopens == 0 {
			// The bound is enforced by opens: until an operation has reopened a parked
			// store, what the table's concurrent first opens left open (stores in use
			// while they replayed) may stand above it.
			return
		}
		if st.Open > bound {
			t.Fatalf("%s: %+v", when, st)
		}
		if n := storeFilesUnder(t, dir); n > bound*12 {
			t.Fatalf("%s: %d files open under the stores for %d open, %+v", when, n, bound, st)
		}
	}
	// One operation at a time: whatever the concurrent opens of the table left open, the
	// next open parks down to the bound.
	for i := range 60 {
		c.put(t, fmt.Sprintf("h%d", i), "s", fmt.Sprintf("v%d", i))
		check(fmt.Sprintf("put %d", i))
	}
	for i := range 60 {
		if v, code := c.get(t, fmt.Sprintf("h%d", i), "s"); code != 0 || v != fmt.Sprintf("v%d", i) {
			t.Fatalf("get h%d: %q %d", i, v, code)
		}
		check(fmt.Sprintf("get %d", i))
	}
	if st := s.parking.Stats(); st.Evictions < parts-bound || st.Parked < parts-bound || st.Reopens == 0 || st.Open > bound {
		t.Fatalf("parking stats %+v", st)
	}
	t.Logf("%+v", s.parking.Stats())
	c.conn.Close()
	stop()
	s2, _ := runReplicaCfg(t, cfg(addr))
	c = &client{conn: rpc.NewConn(s2.Addr(), rpc.ConnConfig{}), appID: testApp, count: parts}
	defer c.conn.Close()
	poll.Until(t, "primaries after restart", func() bool {
		for p := range int32(parts) {
			if pp := s2.partition(idl.GPID{AppID: testApp, PartitionIndex: p}); pp == nil || !pp.isLeader.Load() {
				return false
			}
		}
		return true
	})
	for i := range 60 {
		if v, code := c.get(t, fmt.Sprintf("h%d", i), "s"); code != 0 || v != fmt.Sprintf("v%d", i) {
			t.Fatalf("after restart, get h%d: %q %d", i, v, code)
		}
	}
	if st := s2.parking.Stats(); st.Open > bound {
		t.Fatalf("after restart: %+v", st)
	}
}
