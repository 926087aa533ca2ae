package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// assigner answers config syncs with a fixed table layout, standing in for the meta server
// so the replica can be tested alone (the meta is tested in its own package, both together
// in testcluster).
type assigner struct {
	mu      sync.Mutex
	tables  []cluster.Assignment // one per partition; Members filled per test
	reports map[string]cluster.SyncRequest
	dropped []int32
	// apps and maxAppID are the tables the meta holds and the highest id it gave out (0:
	// not said, as a meta that purges nothing).
	apps     []int32
	maxAppID int32
	joiners  map[string]bool // nodes whose assignments say Join
}

func (a *assigner) handle(_ context.Context, req *rpc.Request) (idl.Value, wire.Code) {
	var sr cluster.SyncRequest
	if err := cluster.Decode(req.Args.(*idl.Blob), &sr); err != nil {
		return nil, wire.ErrInvalidData
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reports[sr.Node] = sr
	resp := cluster.SyncResponse{Err: wire.OK.Name(), DroppedApps: a.dropped, Apps: a.apps, MaxAppID: a.maxAppID}
	for _, as := range a.tables {
		for _, m := range as.Members {
			if m == sr.Node {
				as.Join = a.joiners[m]
				resp.Assignments = append(resp.Assignments, as)
			}
		}
	}
	return cluster.Encode(&resp), wire.OK
}

func (a *assigner) leaders() map[idl.GPID]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[idl.GPID]string{}
	for node, sr := range a.reports {
		for _, r := range sr.Replicas {
			if r.IsLeader && r.Term >= 1 {
				out[idl.GPID{AppID: r.AppID, PartitionIndex: r.PartitionIndex}] = node
			}
		}
	}
	return out
}

func startAssigner(t testing.TB) (*assigner, string) {
	a := &assigner{reports: map[string]cluster.SyncRequest{}}
	srv, err := rpc.NewServer(rpc.ServerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle(idl.RPCConfigSync, a.handle)
	done := make(chan struct{})
	go func() { _ = srv.Run(context.Background()); close(done) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	waitServes(t, srv.Addr().String())
	return a, srv.Addr().String()
}

// waitServes returns once the rpc server at addr answers, its goroutines all started (so a
// leak check that follows does not count them).
func waitServes(t testing.TB, addr string) {
	t.Helper()
	conn := rpc.NewConn(addr, rpc.ConnConfig{})
	defer conn.Close()
	blob := idl.Blob("k")
	var resp idl.ReadResponse
	if err := conn.Call(t.Context(), wire.Header{}, idl.RPCGet, &blob, &resp); !errors.Is(err, wire.ErrHandlerNotFound) {
		t.Fatalf("rpc server %s: %v", addr, err)
	}
}

// runReplica starts a replica server on dir; the returned stop function stops it and waits.
func runReplica(t *testing.T, dir, listen string, metas []string) (*Server, func()) {
	t.Helper()
	return runReplicaCfg(t, Config{Listen: listen, DataDir: dir, Metas: metas})
}

func runReplicaCfg(t testing.TB, cfg Config) (*Server, func()) {
	t.Helper()
	cfg.SyncInterval = 50 * time.Millisecond
	if cfg.TickInterval == 0 {
		cfg.TickInterval = 10 * time.Millisecond
	}
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := s.Close(); err != nil {
				t.Errorf("replica close: %v", err)
			}
			if err := <-done; !errors.Is(err, ErrServerClosed) {
				t.Errorf("replica run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

// client sends rrdb RPCs the way an official client routes them.
type client struct {
	conn  *rpc.Conn
	appID int32
	count int
	ver   int
}

func (c *client) header(hashKey []byte) wire.Header {
	h := key.Hash(hashKey)
	pidx := int32(key.Partition(h, c.count))
	return wire.Header{Version: c.ver, AppID: c.appID, PartitionIndex: pidx, ThreadHash: wire.ThreadHash(c.appID, pidx), PartitionHash: h}
}

func (c *client) put(t *testing.T, h, s, v string) {
	t.Helper()
	var resp idl.UpdateResponse
	err := c.conn.Call(t.Context(), c.header([]byte(h)), idl.RPCPut,
		&idl.UpdateRequest{Key: key.Encode([]byte(h), []byte(s)), Value: []byte(v)}, &resp)
	if err != nil || resp.Error != 0 || resp.Decree <= 0 {
		t.Fatalf("put %s/%s: %v %+v", h, s, err, resp)
	}
}

func (c *client) get(t *testing.T, h, s string) (string, int32) {
	t.Helper()
	k := idl.Blob(key.Encode([]byte(h), []byte(s)))
	var resp idl.ReadResponse
	if err := c.conn.Call(t.Context(), c.header([]byte(h)), idl.RPCGet, &k, &resp); err != nil {
		t.Fatalf("get %s/%s: %v", h, s, err)
	}
	return string(resp.Value), resp.Error
}

const testApp = 3

func singleNodeTable(a *assigner, node string, partitions int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tables = nil
	for i := range partitions {
		a.tables = append(a.tables, cluster.Assignment{AppID: testApp, PartitionIndex: i, AppName: "t",
			PartitionCount: partitions, Members: []string{node}})
	}
}

func TestReplicaServesWritesAndReadsAndSurvivesRestart(t *testing.T) {
	a, meta := startAssigner(t)
	dir := t.TempDir()
	s, stop := runReplica(t, dir, "127.0.0.1:0", []string{meta})
	addr := s.Addr()
	singleNodeTable(a, addr, 4)
	poll.Until(t, "4 primaries", func() bool { return len(a.leaders()) == 4 })

	for _, ver := range []int{0, 1} {
		c := &client{conn: rpc.NewConn(addr, rpc.ConnConfig{}), appID: testApp, count: 4, ver: ver}
		for i := range 40 {
			c.put(t, fmt.Sprintf("h%d", i), "s", fmt.Sprintf("v%d-%d", i, ver))
		}
		for i := range 40 {
			if v, code := c.get(t, fmt.Sprintf("h%d", i), "s"); code != 0 || v != fmt.Sprintf("v%d-%d", i, ver) {
				t.Fatalf("get h%d: %q %d", i, v, code)
			}
		}
		if _, code := c.get(t, "missing", "s"); code != 1 {
			t.Fatalf("missing key: code %d", code)
		}
		c.conn.Close()
	}

	// Restart on the same address and data: everything is still there, and served before
	// the meta is even asked.
	stop()
	s2, _ := runReplica(t, dir, addr, []string{meta})
	c := &client{conn: rpc.NewConn(s2.Addr(), rpc.ConnConfig{}), appID: testApp, count: 4}
	defer c.conn.Close()
	poll.Until(t, "primaries after restart", func() bool {
		n := 0
		for _, p := range []int32{0, 1, 2, 3} {
			if pp := s2.partition(idl.GPID{AppID: testApp, PartitionIndex: p}); pp != nil && pp.isLeader.Load() {
				n++
			}
		}
		return n == 4
	})
	for i := range 40 {
		if v, code := c.get(t, fmt.Sprintf("h%d", i), "s"); code != 0 || v != fmt.Sprintf("v%d-1", i) {
			t.Fatalf("after restart, get h%d: %q %d", i, v, code)
		}
	}
	// Terms (ballots) grow across restarts.
	for _, r := range a.reports[addr].Replicas {
		if r.Term < 2 {
			t.Errorf("partition %d term %d after a restart", r.PartitionIndex, r.Term)
		}
	}
}

func TestEnvelopeErrors(t *testing.T) {
	a, meta := startAssigner(t)
	s, _ := runReplica(t, t.TempDir(), "127.0.0.1:0", []string{meta})
	addr := s.Addr()
	singleNodeTable(a, addr, 4)
	// Partition 0 of app 9 has two members, one of which never exists: no primary here.
	a.mu.Lock()
	a.tables = append(a.tables, cluster.Assignment{AppID: 9, PartitionIndex: 0, AppName: "t9",
		PartitionCount: 1, Members: []string{"127.0.0.1:1", addr}})
	a.mu.Unlock()
	poll.Until(t, "4 primaries", func() bool { return len(a.leaders()) == 4 })
	poll.Until(t, "app 9 hosted", func() bool { return s.partition(idl.GPID{AppID: 9}) != nil })

	conn := rpc.NewConn(addr, rpc.ConnConfig{})
	defer conn.Close()
	c := &client{conn: conn, appID: testApp, count: 4}
	k := idl.Blob(key.Encode([]byte("h"), []byte("s")))
	call := func(h wire.Header) error {
		var resp idl.ReadResponse
		return conn.Call(t.Context(), h, idl.RPCGet, &k, &resp)
	}
	good := c.header([]byte("h"))

	h := good
	h.AppID = 0
	if err := call(h); !errors.Is(err, wire.ErrHandlerNotFound) {
		t.Errorf("app id 0: %v", err)
	}
	h = good
	h.AppID = 42
	if err := call(h); !errors.Is(err, wire.ErrObjectNotFound) {
		t.Errorf("partition not hosted: %v", err)
	}
	h = good
	h.PartitionIndex = (good.PartitionIndex + 1) % 4
	if err := call(h); !errors.Is(err, wire.ErrObjectNotFound) && !errors.Is(err, wire.ErrParentPartitionMisused) {
		t.Errorf("wrong partition: %v", err)
	}
	if err := call(h); !errors.Is(err, wire.ErrParentPartitionMisused) {
		t.Errorf("key of another partition: %v", err)
	}
	h = good
	h.PartitionHash ^= 4 // same partition (mod 4), different hash
	if err := call(h); !errors.Is(err, wire.ErrParentPartitionMisused) {
		t.Errorf("partition_hash not the key's: %v", err)
	}
	h = good
	h.PartitionHash = 0 // allowed: 0 means "not given"
	if err := call(h); err != nil {
		t.Errorf("partition_hash 0: %v", err)
	}
	h = wire.Header{AppID: 9, PartitionIndex: 0, PartitionHash: key.Hash([]byte("h"))}
	if err := call(h); !errors.Is(err, wire.ErrInvalidState) {
		t.Errorf("not primary: %v", err)
	}
	// A write over the 1 MiB limit.
	var resp idl.UpdateResponse
	err := conn.Call(t.Context(), good, idl.RPCPut, &idl.UpdateRequest{Key: k, Value: make([]byte, MaxWriteSize+1)}, &resp)
	if !errors.Is(err, wire.ErrInvalidData) {
		t.Errorf("oversized write: %v", err)
	}
	// And the connection still serves.
	if err := call(good); err != nil {
		t.Fatal(err)
	}
}

// A dropped table's replicas stop and keep their data, also across a restart; recalled,
// they serve it again; once the meta no longer knows the table (it expired), the data is
// deleted.
func TestDroppedTableKeptRecalledThenDeleted(t *testing.T) {
	a, meta := startAssigner(t)
	dir := t.TempDir()
	s, stop := runReplica(t, dir, "127.0.0.1:0", []string{meta})
	addr := s.Addr()
	singleNodeTable(a, addr, 2)
	poll.Until(t, "primaries", func() bool { return len(a.leaders()) == 2 })
	c := &client{conn: rpc.NewConn(addr, rpc.ConnConfig{}), appID: testApp, count: 2}
	defer c.conn.Close()
	for i := range 20 {
		c.put(t, fmt.Sprint("h", i), "s", fmt.Sprint("v", i))
	}
	tables := a.tables
	pids := []idl.GPID{{AppID: testApp, PartitionIndex: 0}, {AppID: testApp, PartitionIndex: 1}}
	gone := func() bool { return s.partition(pids[0]) == nil && s.partition(pids[1]) == nil }

	a.mu.Lock()
	a.tables, a.dropped, a.apps, a.maxAppID = nil, []int32{testApp}, []int32{testApp}, testApp
	a.mu.Unlock()
	poll.Until(t, "partitions stopped", gone)
	for _, pid := range pids {
		if _, err := os.Stat(filepath.Join(s.partitionDir(pid), "data")); err != nil {
			t.Fatalf("data of the dropped table's partition %v: %v", pid, err)
		}
	}
	// A restart does not reopen them: its first report (after the partitions found on disk
	// were reopened) lists none.
	stop()
	a.mu.Lock()
	clear(a.reports)
	a.mu.Unlock()
	s, stop = runReplica(t, dir, addr, []string{meta})
	defer stop()
	poll.Until(t, "a report after the restart", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		_, ok := a.reports[addr]
		return ok
	})
	a.mu.Lock()
	reported := a.reports[addr].Replicas
	a.mu.Unlock()
	if len(reported) != 0 || !gone() {
		t.Fatalf("a restart reopened the dropped table's partitions: %+v", reported)
	}

	// Recalled: every record is back.
	a.mu.Lock()
	a.tables, a.dropped = tables, nil
	a.mu.Unlock()
	poll.Until(t, "primaries after the recall", func() bool {
		p0, p1 := s.partition(pids[0]), s.partition(pids[1])
		return p0 != nil && p1 != nil && p0.isLeader.Load() && p1.isLeader.Load()
	})
	for i := range 20 {
		if v, code := c.get(t, fmt.Sprint("h", i), "s"); code != 0 || v != fmt.Sprint("v", i) {
			t.Fatalf("h%d after the recall: %q code %d", i, v, code)
		}
	}

	// Dropped again, then purged: the data is deleted.
	a.mu.Lock()
	a.tables, a.dropped = nil, []int32{testApp}
	a.mu.Unlock()
	poll.Until(t, "partitions stopped again", gone)
	a.mu.Lock()
	a.dropped, a.apps = nil, nil
	a.mu.Unlock()
	poll.Until(t, "data deleted", func() bool {
		for _, pid := range pids {
			if _, err := os.Stat(s.partitionDir(pid)); !errors.Is(err, os.ErrNotExist) {
				return false
			}
		}
		return true
	})
}
