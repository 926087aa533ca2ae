package replica

import (
	"fmt"
	"testing"

	"github.com/gopegasus/pegasus/internal/idl"
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
