package replica

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/leakcheck"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/raftnet"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/servertest"
	"github.com/gopegasus/pegasus/internal/storage"
	"github.com/gopegasus/pegasus/internal/wire"
)

func TestCloseBeforeRun(t *testing.T) {
	dir := t.TempDir()
	servertest.CloseBeforeRun(t, func() (servertest.Server, error) {
		return New(Config{Listen: "127.0.0.1:0", DataDir: dir})
	})
}

// waitLeader waits until s hosts pid as its primary.
func waitLeader(t *testing.T, s *Server, pid idl.GPID) {
	t.Helper()
	poll.Until(t, fmt.Sprintf("a primary of %v", pid), func() bool {
		p := s.partition(pid)
		return p != nil && p.isLeader.Load()
	})
}

// A replica server hosting a partition is started and stopped many times on the same data,
// with Close and with Shutdown (each called twice, concurrently): Run returns
// ErrServerClosed, every write made before is served after the restart, a Shutdown leaves
// the store flushed through the last write, and no goroutine is left.
func TestStartStopLeavesNoGoroutine(t *testing.T) {
	a, meta := startAssigner(t)
	dir := t.TempDir()
	pid := idl.GPID{AppID: testApp}
	addr := "127.0.0.1:0"
	snap := leakcheck.Take()
	for i := range 20 {
		s, stop := runReplica(t, dir, addr, []string{meta})
		if i == 0 {
			addr = s.Addr()
			singleNodeTable(a, addr, 1)
		}
		waitLeader(t, s, pid)
		c := &client{conn: rpc.NewConn(addr, rpc.ConnConfig{}), appID: testApp, count: 1}
		var resp idl.UpdateResponse
		err := c.conn.Call(t.Context(), c.header([]byte("h")), idl.RPCPut,
			&idl.UpdateRequest{Key: key.Encode([]byte("h"), []byte(fmt.Sprint(i))), Value: []byte("v")}, &resp)
		if err != nil || resp.Error != 0 {
			t.Fatalf("put %d: %v %+v", i, err, resp)
		}
		for j := range i + 1 {
			if v, code := c.get(t, "h", fmt.Sprint(j)); code != 0 || v != "v" {
				t.Fatalf("round %d: get %d: %q %d", i, j, v, code)
			}
		}
		c.conn.Close()
		graceful := i%2 == 1
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				var err error
				if graceful {
					err = s.Shutdown(t.Context())
				} else {
					err = s.Close()
				}
				if err != nil {
					t.Errorf("round %d: stop: %v", i, err)
				}
			})
		}
		wg.Wait()
		stop() // Run returned ErrServerClosed
		if graceful {
			db, err := storage.Open(storage.Options{Dir: filepath.Join(dir, fmt.Sprintf("%d.0", testApp), "data"), NoWAL: true})
			if err != nil {
				t.Fatal(err)
			}
			applied := db.LastAppliedIndex()
			_ = db.Close()
			if applied < uint64(resp.Decree) {
				t.Fatalf("round %d: the store holds writes up to %d after Shutdown, the last one was %d", i, applied, resp.Decree)
			}
		}
	}
	snap.Check(t)
}

// A table is dropped while readers hammer it with get, multi_get, scans on an open scanner
// context and sortkey_count: no request fails with anything but the answer it would get
// from a live partition, ERR_OBJECT_NOT_FOUND (the partition is gone or its store closed
// under the request) or ERR_INVALID_STATE (its loop stopped while the request waited for it);
// in particular no request makes the server panic (ERR_UNKNOWN). Run with -race.
func TestDropUnderReadLoad(t *testing.T) {
	a, meta := startAssigner(t)
	s, _ := runReplica(t, t.TempDir(), "127.0.0.1:0", []string{meta})
	addr := s.Addr()
	iterations := 15
	if testing.Short() {
		iterations = 3
	}
	// Enough records that reads spend a while in the store, and may still be inside it when
	// the drop closes it.
	const hashKeys, sortKeys = 4, 100
	value := func(h, k string) string { return h + "." + k + strings.Repeat("v", 200) }
	for it := range iterations {
		app := int32(100 + it)
		pid := idl.GPID{AppID: app}
		a.mu.Lock()
		a.tables = []cluster.Assignment{{AppID: app, AppName: fmt.Sprint("t", app), PartitionCount: 1, Members: []string{addr}}}
		a.mu.Unlock()
		waitLeader(t, s, pid)
		conn := rpc.NewConn(addr, rpc.ConnConfig{})
		c := &client{conn: conn, appID: app, count: 1}
		for h := range hashKeys {
			hk := fmt.Sprint("h", h)
			req := &idl.MultiPutRequest{HashKey: []byte(hk)}
			for k := range sortKeys {
				sk := fmt.Sprint("s", k)
				req.KVs = append(req.KVs, idl.KeyValue{Key: []byte(sk), Value: []byte(value(hk, sk))})
			}
			var resp idl.UpdateResponse
			if err := conn.Call(t.Context(), c.header([]byte(hk)), idl.RPCMultiPut, req, &resp); err != nil || resp.Error != 0 {
				t.Fatalf("multi_put %s: %v %+v", hk, err, resp)
			}
		}
		hdr := c.header([]byte("h0"))
		hdr.PartitionHash = 0 // scans and multi-key reads of any hash key
		gone := func(err error) bool {
			return errors.Is(err, wire.ErrObjectNotFound) || errors.Is(err, wire.ErrInvalidState)
		}
		var wg, ready sync.WaitGroup
		failures := make(chan error, 100)
		readers := map[string]func(n int) error{
			"get": func(n int) error {
				h, k := fmt.Sprint("h", n%hashKeys), fmt.Sprint("s", n%sortKeys)
				blob := idl.Blob(key.Encode([]byte(h), []byte(k)))
				var resp idl.ReadResponse
				if err := conn.Call(t.Context(), hdr, idl.RPCGet, &blob, &resp); err != nil {
					return err
				}
				if resp.Error != 0 || string(resp.Value) != value(h, k) {
					return fmt.Errorf("wrong answer: code %d value %q", resp.Error, resp.Value)
				}
				return nil
			},
			"multi_get": func(n int) error {
				var resp idl.MultiGetResponse
				req := &idl.MultiGetRequest{HashKey: []byte(fmt.Sprint("h", n%hashKeys)), MaxKVCount: 2 * sortKeys, MaxKVSize: 1 << 30}
				if err := conn.Call(t.Context(), hdr, idl.RPCMultiGet, req, &resp); err != nil {
					return err
				}
				if resp.Error != 0 || len(resp.KVs) != sortKeys {
					return fmt.Errorf("wrong answer: code %d, %d records", resp.Error, len(resp.KVs))
				}
				return nil
			},
			"sortkey_count": func(n int) error {
				var resp idl.CountResponse
				blob := idl.Blob(fmt.Sprint("h", n%hashKeys))
				if err := conn.Call(t.Context(), hdr, idl.RPCSortKeyCount, &blob, &resp); err != nil {
					return err
				}
				if resp.Error != 0 || resp.Count != sortKeys {
					return fmt.Errorf("wrong answer: code %d count %d", resp.Error, resp.Count)
				}
				return nil
			},
			"scan": func(int) error {
				// A whole scan of the partition, 50 records a batch: the context stays open
				// between the batches.
				var resp idl.ScanResponse
				req := &idl.GetScannerRequest{StartKey: []byte{0, 0}, StopKey: []byte{0xff, 0xff}, BatchSize: 50,
					ValidatePartitionHash: idl.Some(false)}
				err := conn.Call(t.Context(), hdr, idl.RPCGetScanner, req, &resp)
				seen := 0
				for ; err == nil; err = conn.Call(t.Context(), hdr, idl.RPCScan, &idl.ScanRequest{ContextID: resp.ContextID}, &resp) {
					if resp.Error != 0 {
						return fmt.Errorf("wrong answer: scan code %d after %d records", resp.Error, seen)
					}
					for _, kv := range resp.KVs {
						hk, sk, err := key.Decode(kv.Key)
						if err != nil || string(kv.Value) != value(string(hk), string(sk)) {
							return fmt.Errorf("wrong answer: scanned %q = %q", kv.Key, kv.Value)
						}
					}
					seen += len(resp.KVs)
					if resp.ContextID == storage.ContextComplete {
						if seen != hashKeys*sortKeys {
							return fmt.Errorf("wrong answer: scan saw %d records", seen)
						}
						return nil
					}
				}
				return err
			},
		}
		for name, read := range readers {
			ready.Add(1)
			wg.Go(func() {
				for n := 0; ; n++ {
					err := read(n)
					switch {
					case err == nil:
						if n == 0 {
							ready.Done()
						}
						continue
					case !gone(err) || n == 0:
						failures <- fmt.Errorf("iteration %d: %s: %w", it, name, err)
						if n == 0 {
							ready.Done()
						}
						return
					case s.partition(pid) == nil:
						return // answered as gone, and gone for good
					}
				}
			})
		}
		ready.Wait()
		a.mu.Lock()
		a.tables = nil
		a.dropped = append(a.dropped, app)
		a.mu.Unlock()
		wg.Wait()
		conn.Close()
		close(failures)
		for err := range failures {
			t.Error(err)
		}
		if t.Failed() {
			return
		}
	}
}

// fakePeer is the other member of a partition's group: it answers every append from the
// leader with a rejection that makes the leader send it a snapshot, and receives that
// snapshot slowly, reading 64 KiB, then nothing until released.
type fakePeer struct {
	srv     *rpc.Server
	started chan struct{}      // a transfer began
	release chan struct{}      // closed to read the rest
	ended   chan error         // the end of the transfer as seen by the receiver (nil: complete)
	tr      *raftnet.Transport // answers the leader's appends
	wg      sync.WaitGroup
}

func startFakePeer(t *testing.T, leader string, pid idl.GPID) *fakePeer {
	f := &fakePeer{started: make(chan struct{}, 1), release: make(chan struct{}), ended: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+snapshotPath, func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadFull(r.Body, make([]byte, 64<<10)); err != nil {
			f.ended <- err
			return
		}
		f.started <- struct{}{}
		select {
		case <-f.release:
		case <-r.Context().Done(): // the test ended early
		}
		_, err := io.Copy(io.Discard, r.Body)
		f.ended <- err
	})
	srv, err := rpc.NewServer(rpc.ServerConfig{Listen: "127.0.0.1:0", HTTP: mux})
	if err != nil {
		t.Fatal(err)
	}
	var tr *raftnet.Transport
	tr, err = raftnet.New(raftnet.Config{Addr: srv.Addr().String(), RPCName: idl.RPCRaft,
		Handler: func(_ string, _ idl.GPID, m raftpb.Message) {
			if m.Type != raftpb.MsgApp {
				return
			}
			// Nothing of the log here: the leader probes back to index 1, long truncated,
			// and sends a snapshot instead.
			tr.Send(leader, pid, &raftpb.Message{Type: raftpb.MsgAppResp, From: m.To, To: m.From, Term: m.Term,
				Index: m.Index, Reject: true, RejectHint: 0})
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleInline(idl.RPCRaft, tr.HandleRPC)
	f.srv, f.tr = srv, tr
	f.wg.Go(func() { _ = srv.Run(context.Background()) })
	t.Cleanup(func() {
		_ = srv.Close()
		f.wg.Wait()
		_ = tr.Close()
	})
	waitServes(t, f.addr())
	return f
}

func (f *fakePeer) addr() string { return f.srv.Addr().String() }

// A partition stops (its table is dropped, or the server closes) while it streams a large
// snapshot to a slow receiver: the transfer is cancelled, its goroutines have exited and its
// checkpoint directory is gone by the time the partition's directory is removed (or the
// server's Close returned), and the receiver never gets the whole stream.
func TestSnapshotTransferEndsWithPartition(t *testing.T) {
	for _, how := range []string{"drop", "close"} {
		t.Run(how, func(t *testing.T) {
			a, meta := startAssigner(t)
			dir := t.TempDir()
			s, stop := runReplicaCfg(t, Config{Listen: "127.0.0.1:0", DataDir: dir, Metas: []string{meta},
				LogCompactEvery: 20, LogKeep: 5})
			addr := s.Addr()
			pid := idl.GPID{AppID: testApp}
			singleNodeTable(a, addr, 1)
			waitLeader(t, s, pid)
			// About 10 MiB of incompressible values, and a log truncated past its start.
			c := &client{conn: rpc.NewConn(addr, rpc.ConnConfig{}), appID: testApp, count: 1}
			value := make([]byte, 128<<10)
			for i := range 80 {
				_, _ = rand.Read(value)
				c.put(t, fmt.Sprint("h", i), "s", string(value))
			}
			c.conn.Close()
			peer := startFakePeer(t, addr, pid)
			snap := leakcheck.Take()
			a.mu.Lock()
			a.tables[0].Members = []string{addr, peer.addr()}
			a.mu.Unlock()
			<-peer.started

			partDir := s.partitionDir(pid)
			switch how {
			case "drop":
				// Dropped and expired: the meta no longer knows the table.
				a.mu.Lock()
				a.tables = nil
				a.maxAppID = testApp
				a.mu.Unlock()
				poll.Until(t, "the partition's directory removed", func() bool {
					_, err := os.Stat(partDir)
					return errors.Is(err, os.ErrNotExist)
				})
			case "close":
				stop()
				entries, err := os.ReadDir(partDir)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					if strings.HasPrefix(e.Name(), "snap-out-") {
						t.Fatalf("checkpoint %s left after Close", e.Name())
					}
				}
			}
			for _, fn := range []string{"replica.(*Server).sendSnapshot", "replica.writeSnapshotStream"} {
				if left := leakcheck.Find(fn); len(left) > 0 {
					t.Fatalf("the transfer still runs after the partition stopped:\n%s", strings.Join(left, "\n\n"))
				}
			}
			close(peer.release)
			if err := <-peer.ended; err == nil {
				t.Fatal("the receiver got the whole snapshot of a stopped partition")
			}
			if how == "close" {
				_ = peer.tr.Close() // its sender to the closed server
				snap.Check(t)       // the fake receiver's goroutines included, now it is done
			}
		})
	}
}

// The primary of a 3-replica partition is shut down while writers keep it busy: the writes
// in flight wait for their followers' acknowledgements, which keep arriving during the
// Shutdown, so they are all answered and the Shutdown finishes without abandoning any (it
// is given no deadline). Writes that arrive during the Shutdown are not executed.
func TestShutdownOfPrimaryAnswersWritesInFlight(t *testing.T) {
	g, addrs := newGroup(t, 3)
	g.setMembers(addrs...)
	lead := g.leader(addrs...)
	for i := range 10 {
		g.put(addrs, i)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	for w := range 8 {
		wg.Go(func() {
			conn := rpc.NewConn(lead, rpc.ConnConfig{})
			defer conn.Close()
			for i := 0; ; i++ {
				k := key.Encode([]byte(fmt.Sprintf("w%d-%d", w, i)), nil)
				var resp idl.UpdateResponse
				err := conn.Call(t.Context(), wire.Header{AppID: replApp}, idl.RPCPut, &idl.UpdateRequest{Key: k, Value: []byte("v")}, &resp)
				switch {
				case err == nil && resp.Error == 0:
					mu.Lock()
					acked++
					mu.Unlock()
				case errors.Is(err, wire.ErrTimeout):
					t.Errorf("a write in flight was abandoned: %v", err)
					return
				default:
					return // not executed: the server stopped taking requests
				}
			}
		})
	}
	poll.Until(t, "writes acknowledged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return acked >= 100
	})
	if err := g.servers[lead].Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	g.stops[lead]()
}
