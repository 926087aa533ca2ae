package replica

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/heappeak"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/throttle"
	"github.com/gopegasus/pegasus/internal/wire"
)

// oneTable starts a replica server with settings (name → value) hosting a one-partition
// table with envs, and returns it and a client.
func oneTable(t *testing.T, settings map[string]string, envs map[string]string) (*Server, *client) {
	t.Helper()
	a, meta := startAssigner(t)
	st := NewSettings()
	if err := st.Registry().Set("rocksdb_slow_query_threshold_ns", "0"); err != nil { // held writes are slow by design
		t.Fatal(err)
	}
	for k, v := range settings {
		if err := st.Registry().Set(k, v); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	s, _ := runReplicaCfg(t, Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Metas: []string{meta}, Settings: st})
	singleNodeTable(a, s.Addr(), 1)
	a.mu.Lock()
	a.tables[0].Envs = envs
	a.mu.Unlock()
	poll.Until(t, "a primary", func() bool { return len(a.leaders()) == 1 })
	c := &client{conn: rpc.NewConn(s.Addr(), rpc.ConnConfig{}), appID: testApp, count: 1}
	t.Cleanup(func() { c.conn.Close() })
	poll.Until(t, "envs applied", func() bool {
		p := s.partition(idl.GPID{AppID: testApp})
		return p != nil && p.table() != nil && len(p.table().envs) == len(envs)
	})
	return s, c
}

// wellBehaved runs gets of one key on a connection of its own until stop, which returns how
// many were answered and the first failure.
func wellBehaved(t *testing.T, s *Server) (stop func() (int64, error)) {
	c := &client{conn: rpc.NewConn(s.Addr(), rpc.ConnConfig{}), appID: testApp, count: 1}
	done := make(chan struct{})
	var n atomic.Int64
	var failed error
	var wg sync.WaitGroup
	wg.Go(func() {
		k := idl.Blob(key.Encode([]byte("good"), []byte("s")))
		for {
			select {
			case <-done:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			var resp idl.ReadResponse
			err := c.conn.Call(ctx, c.header([]byte("good")), idl.RPCGet, &k, &resp)
			cancel()
			if err != nil {
				failed = fmt.Errorf("well-behaved get: %w", err)
				return
			}
			n.Add(1)
		}
	})
	return func() (int64, error) {
		close(done)
		wg.Wait()
		c.conn.Close()
		return n.Load(), failed
	}
}

// bigValues writes n records of 64 KiB under hash key h.
func bigValues(t *testing.T, c *client, h string, n int) {
	v := strings.Repeat("v", 64<<10)
	for i := range n {
		c.put(t, h, fmt.Sprintf("s%d", i), v)
	}
}

// TestReadAmplificationBounded: batch_get of many repeated keys of 64 KiB values, point
// multi_get with max_kv_size 0 and 20,000 get_scanner calls, each once asking for far more
// than the server allows (a 1.3 GiB batch_get, a 256 MiB multi_get). With max_reply_bytes
// 4 MiB the peak heap of the process stays under 96 MiB, and a well-behaved client on
// another connection is answered throughout.
func TestReadAmplificationBounded(t *testing.T) {
	s, c := oneTable(t, map[string]string{"max_reply_bytes": "4194304", "max_scanner_contexts_per_partition": "100"}, nil)
	bigValues(t, c, "h", 16)
	c.put(t, "good", "s", "v")
	stopGood := wellBehaved(t, s)
	w := heappeak.Start()

	// batch_get: 20,000 keys is past max_batch_get_keys; 10,000 repeats of 16 keys past the
	// reply bound.
	for _, n := range []int{20000, 10000} {
		var keys []idl.FullKey
		for i := range n {
			keys = append(keys, idl.FullKey{HashKey: []byte("h"), SortKey: fmt.Appendf(nil, "s%d", i%16)})
		}
		var resp idl.BatchGetResponse
		err := c.conn.Call(t.Context(), c.header([]byte("h")), idl.RPCBatchGet, &idl.BatchGetRequest{Keys: keys}, &resp)
		if !errors.Is(err, wire.ErrInvalidData) {
			t.Fatalf("batch_get of %d keys: %v, want ERR_INVALID_DATA", n, err)
		}
	}
	// multi_get, point mode, no max_kv_size: 4,000 repeats of 16 keys, incomplete at 4 MiB.
	var sks [][]byte
	for i := range 4000 {
		sks = append(sks, fmt.Appendf(nil, "s%d", i%16))
	}
	var mg idl.MultiGetResponse
	if err := c.conn.Call(t.Context(), c.header([]byte("h")), idl.RPCMultiGet, &idl.MultiGetRequest{HashKey: []byte("h"), SortKeys: sks}, &mg); err != nil {
		t.Fatal(err)
	}
	if mg.Error != int32(wire.StatusIncomplete) || len(mg.KVs) > 65 {
		t.Fatalf("point multi_get: error %d, %d kvs", mg.Error, len(mg.KVs))
	}
	// Scanner contexts: 20,000 get_scanner calls leave at most 100 contexts; the first one's
	// scan is answered as an expired context's.
	var first int64
	for i := range 20000 {
		var sr idl.ScanResponse
		err := c.conn.Call(t.Context(), c.header(nil), idl.RPCGetScanner, &idl.GetScannerRequest{
			StartKey: []byte{0, 0}, StopKey: []byte{0xff, 0xff}, StartInclusive: true, BatchSize: 1, NoValue: true}, &sr)
		if err != nil || sr.ContextID <= 0 {
			t.Fatalf("get_scanner %d: %v %+v", i, err, sr)
		}
		if i == 0 {
			first = sr.ContextID
		}
	}
	peak := w.Stop()
	db, release := s.partition(idl.GPID{AppID: testApp}).readDB()
	evicted := db.ScannerEvictions()
	release()
	var sr idl.ScanResponse
	if err := c.conn.Call(t.Context(), c.header(nil), idl.RPCScan, &idl.ScanRequest{ContextID: first}, &sr); err != nil || sr.Error != int32(wire.StatusNotFound) {
		t.Fatalf("scan of an evicted context: %v, error %d", err, sr.Error)
	}
	good, err := stopGood()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("peak heap +%.1f MiB; scanner contexts evicted %d; well-behaved client %d gets", float64(peak)/(1<<20), evicted, good)
	if peak > 96<<20 {
		t.Fatalf("peak heap grew by %.1f MiB (budget 96 MiB)", float64(peak)/(1<<20))
	}
	if evicted != 20000-100 {
		t.Fatalf("%d contexts evicted, want %d", evicted, 20000-100)
	}
	if good == 0 {
		t.Fatal("the well-behaved client got no answer")
	}
}

// TestWriteThrottlingReject: replica.write_throttling = 100*reject*200 on a one-partition
// table (101 writes per second) under about 1,000 writes per second for 3 s: about 101 a
// second are accepted, the others get ERR_BUSY, counted in write_throttling_reject_count.
func TestWriteThrottlingReject(t *testing.T) {
	s, c := oneTable(t, nil, map[string]string{throttle.EnvWrite: "100*reject*200"})
	var ok, busy, other atomic.Int64
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Millisecond)
	start := time.Now()
	for i := 0; time.Since(start) < 3*time.Second; i++ {
		<-tick.C
		wg.Go(func() {
			var resp idl.UpdateResponse
			h := fmt.Sprintf("h%d", i)
			err := c.conn.Call(t.Context(), c.header([]byte(h)), idl.RPCPut,
				&idl.UpdateRequest{Key: key.Encode([]byte(h), nil), Value: []byte("v")}, &resp)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, wire.ErrBusy):
				busy.Add(1)
			default:
				other.Add(1)
			}
		})
	}
	tick.Stop()
	elapsed := time.Since(start)
	wg.Wait()
	sent := ok.Load() + busy.Load() + other.Load()
	perSec := float64(ok.Load()) / elapsed.Seconds()
	t.Logf("%d writes in %v (%.0f/s): %d accepted (%.0f/s), %d ERR_BUSY, %d other; reject count %d",
		sent, elapsed.Round(time.Millisecond), float64(sent)/elapsed.Seconds(), ok.Load(), perSec, busy.Load(), other.Load(), s.throttleStats.writeRejected.Load())
	if other.Load() != 0 {
		t.Fatalf("%d writes failed otherwise", other.Load())
	}
	// 3 s cover 3 or 4 one-second windows of 101 writes.
	if ok.Load() < 250 || ok.Load() > 4*101 {
		t.Fatalf("%d writes accepted in %v, want about 101 a second", ok.Load(), elapsed)
	}
	if busy.Load() < sent/2 || s.throttleStats.writeRejected.Load() != busy.Load() {
		t.Fatalf("%d ERR_BUSY of %d, %d counted", busy.Load(), sent, s.throttleStats.writeRejected.Load())
	}
}

// TestWriteThrottlingDelay: with replica.write_throttling = 10*delay*100 (11 writes a
// second pass at once) the writes past it are held 100 ms and then applied; none fails.
func TestWriteThrottlingDelay(t *testing.T) {
	s, c := oneTable(t, nil, map[string]string{throttle.EnvWrite: "10*delay*100"})
	var slowest time.Duration
	for i := range 30 {
		t0 := time.Now()
		c.put(t, fmt.Sprintf("h%d", i), "s", "v")
		slowest = max(slowest, time.Since(t0))
	}
	delayed := s.throttleStats.writeDelayed.Load()
	t.Logf("30 writes: %d delayed, slowest %v", delayed, slowest)
	if delayed == 0 || slowest < 100*time.Millisecond {
		t.Fatalf("%d writes delayed, slowest %v: the delay form held nothing", delayed, slowest)
	}
}

// TestDenyAndReadThrottling: deny_client_request = reconfig*write refuses writes with
// ERR_INVALID_STATE and serves reads; read_throttling_by_size refuses reads once its bucket
// is empty.
func TestDenyAndReadThrottling(t *testing.T) {
	s, c := oneTable(t, nil, map[string]string{throttle.EnvDeny: "reconfig*write", throttle.EnvReadBySize: "100K"})
	var resp idl.UpdateResponse
	err := c.conn.Call(t.Context(), c.header([]byte("h")), idl.RPCPut, &idl.UpdateRequest{Key: key.Encode([]byte("h"), nil), Value: []byte("v")}, &resp)
	if !errors.Is(err, wire.ErrInvalidState) {
		t.Fatalf("denied write: %v", err)
	}
	k := idl.Blob(key.Encode([]byte("h"), nil))
	busy := 0
	for range 20 {
		var rr idl.ReadResponse
		if err := c.conn.Call(t.Context(), c.header([]byte("h")), idl.RPCGet, &k, &rr); errors.Is(err, wire.ErrBusy) {
			busy++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if busy != 0 || s.throttleStats.denied.Load() != 1 {
		t.Fatalf("small reads refused %d, denied %d", busy, s.throttleStats.denied.Load())
	}
}

// TestScannerContextsPerConnection: a connection holding max_scanner_contexts_per_connection
// (5) contexts that opens 3 more loses its 3 oldest (their scans get error 1); a context of
// another connection, and one whose scan completed, do not count.
func TestScannerContextsPerConnection(t *testing.T) {
	s, c := oneTable(t, map[string]string{"max_scanner_contexts_per_connection": "5"}, nil)
	for i := range 20 {
		c.put(t, "h", fmt.Sprintf("s%02d", i), "v")
	}
	open := func(c *client) int64 {
		var sr idl.ScanResponse
		err := c.conn.Call(t.Context(), c.header(nil), idl.RPCGetScanner, &idl.GetScannerRequest{
			StartKey: []byte{0, 0}, StopKey: []byte{0xff, 0xff}, StartInclusive: true, BatchSize: 1}, &sr)
		if err != nil || sr.ContextID <= 0 {
			t.Fatalf("get_scanner: %v %+v", err, sr)
		}
		return sr.ContextID
	}
	scan := func(c *client, id int64) *idl.ScanResponse {
		var sr idl.ScanResponse
		if err := c.conn.Call(t.Context(), c.header(nil), idl.RPCScan, &idl.ScanRequest{ContextID: id}, &sr); err != nil {
			t.Fatal(err)
		}
		return &sr
	}
	other := &client{conn: rpc.NewConn(s.Addr(), rpc.ConnConfig{}), appID: testApp, count: 1}
	defer other.conn.Close()
	theirs := open(other)
	var ids []int64
	for range 8 {
		ids = append(ids, open(c))
	}
	for i, id := range ids {
		sr := scan(c, id)
		if evicted := sr.Error == int32(wire.StatusNotFound); evicted != (i < 3) {
			t.Fatalf("context %d: error %d", i, sr.Error)
		}
		if i >= 3 {
			ids[i] = sr.ContextID // the scan goes on under a new id
		}
	}
	if sr := scan(other, theirs); sr.Error != 0 {
		t.Fatalf("the other connection's context: error %d", sr.Error)
	}
	if n := s.scanOwners.evicted.Load(); n != 3 {
		t.Fatalf("%d evicted", n)
	}
	// Continued contexts kept their places: 5 live, so one more evicts the oldest of them.
	open(c)
	if sr := scan(c, ids[3]); sr.Error != int32(wire.StatusNotFound) {
		t.Fatalf("oldest continued context: error %d", sr.Error)
	}
}
