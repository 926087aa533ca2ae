package meta

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/cluster"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testMeta is a running meta server and a client connection to it.
type testMeta struct {
	t     *testing.T
	srv   *Server
	conn  *rpc.Conn
	clock *fakeClock
	dir   string

	done chan error
}

// startMeta starts a meta server on 127.0.0.1:0. Empty DataDir, Now and Logger are filled in;
// it stops when the test ends.
func startMeta(t *testing.T, cfg Config) *testMeta {
	t.Helper()
	tm := &testMeta{t: t, clock: newFakeClock()}
	if cfg.Listen == "" && cfg.Listener == nil {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Now == nil {
		cfg.Now = tm.clock.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	tm.dir = cfg.DataDir
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tm.srv = srv
	tm.done = make(chan error, 1)
	go func() { tm.done <- srv.Run(context.Background()) }()
	tm.conn = rpc.NewConn(srv.Addr(), rpc.ConnConfig{})
	t.Cleanup(tm.stop)
	if !cfg.Join && len(cfg.Metas) <= 1 {
		waitServing(t, srv)
	}
	return tm
}

// waitServing waits until srv is the serving leader.
func waitServing(t *testing.T, srv *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		changed := srv.LeaderChanged()
		if _, ok := srv.Leader(); ok {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("meta %s never became the serving leader", srv.Advertise())
		}
	}
}

// stop closes the server and waits for Run to return. It may be called more than once.
func (tm *testMeta) stop() {
	if tm.done == nil {
		return
	}
	tm.conn.Close()
	if err := tm.srv.Close(); err != nil {
		tm.t.Errorf("meta Close: %v", err)
	}
	if err := <-tm.done; !errors.Is(err, ErrServerClosed) {
		tm.t.Errorf("meta Run: %v", err)
	}
	tm.done = nil
}

// callH sends one RPC with header h and fails the test on an envelope or transport error.
func (tm *testMeta) callH(h wire.Header, name string, args, reply idl.Value) {
	tm.t.Helper()
	ctx, cancel := context.WithTimeout(tm.t.Context(), 10*time.Second)
	defer cancel()
	if err := tm.conn.Call(ctx, h, name, args, reply); err != nil {
		tm.t.Fatalf("%s: %v", name, err)
	}
}

func (tm *testMeta) call(name string, args, reply idl.Value) {
	tm.t.Helper()
	tm.callH(wire.Header{}, name, args, reply)
}

// syncNode sends a config sync as replica server addr would.
func (tm *testMeta) syncNode(addr string, replicas ...cluster.ReplicaState) cluster.SyncResponse {
	tm.t.Helper()
	var reply idl.Blob
	tm.call(cluster.RPCConfigSync, cluster.Encode(cluster.SyncRequest{Node: addr, StartTime: 1, Replicas: replicas}), &reply)
	var resp cluster.SyncResponse
	if err := cluster.Decode(&reply, &resp); err != nil {
		tm.t.Fatal(err)
	}
	if resp.Err != "ERR_OK" {
		tm.t.Fatalf("sync %s: err %s", addr, resp.Err)
	}
	return resp
}

// callFor sends RPC name with args and returns its reply, a new R.
func callFor[R any, P interface {
	*R
	idl.Value
}](tm *testMeta, name string, args idl.Value) *R {
	tm.t.Helper()
	resp := P(new(R))
	tm.call(name, args, resp)
	return resp
}

func (tm *testMeta) createOpts(name string, o idl.CreateAppOptions) *idl.CreateAppResponse {
	tm.t.Helper()
	return callFor[idl.CreateAppResponse](tm, idl.RPCCreateApp, &idl.CreateAppRequest{AppName: name, Options: o})
}

// goAdminOptions are the options the official go admin client sends.
func goAdminOptions(partitions, replicas int32) idl.CreateAppOptions {
	return idl.CreateAppOptions{PartitionCount: partitions, ReplicaCount: replicas, SuccessIfExist: true,
		AppType: "pegasus", IsStateful: true, Envs: map[string]string{}}
}

// create creates a table and fails the test unless it worked; it returns the app id.
func (tm *testMeta) create(name string, partitions, replicas int32) int32 {
	tm.t.Helper()
	resp := tm.createOpts(name, goAdminOptions(partitions, replicas))
	if resp.Err != "ERR_OK" {
		tm.t.Fatalf("create %s: %s", name, resp.Err)
	}
	return resp.AppID
}

func (tm *testMeta) drop(name string, o idl.DropAppOptions) idl.ErrorCode {
	tm.t.Helper()
	return callFor[idl.DropAppResponse](tm, idl.RPCDropApp, &idl.DropAppRequest{AppName: name, Options: o}).Err
}

func (tm *testMeta) query(name string, indices ...int32) *idl.QueryCfgResponse {
	tm.t.Helper()
	return callFor[idl.QueryCfgResponse](tm, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: name, PartitionIndices: indices})
}

func (tm *testMeta) listApps(req *idl.ListAppsRequest) *idl.ListAppsResponse {
	tm.t.Helper()
	return callFor[idl.ListAppsResponse](tm, idl.RPCListApps, req)
}

func (tm *testMeta) listNodes(status idl.NodeStatus) *idl.ListNodesResponse {
	tm.t.Helper()
	return callFor[idl.ListNodesResponse](tm, idl.RPCListNodes, &idl.ListNodesRequest{Status: status})
}

func (tm *testMeta) updateEnv(req *idl.UpdateAppEnvRequest) *idl.UpdateAppEnvResponse {
	tm.t.Helper()
	return callFor[idl.UpdateAppEnvResponse](tm, idl.RPCUpdateAppEnv, req)
}

func (tm *testMeta) cli(cmd string, args ...string) string {
	tm.t.Helper()
	return string(*callFor[idl.Text](tm, idl.RPCCLICall, &idl.Command{Cmd: cmd, Arguments: args}))
}

// nodeAddrs returns n replica server addresses. They are only names: nothing listens there.
func nodeAddrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("10.0.0.%d:34801", i+1)
	}
	return out
}

// syncAll registers every node.
func (tm *testMeta) syncAll(nodes []string) {
	tm.t.Helper()
	for _, n := range nodes {
		tm.syncNode(n)
	}
}

func leader(appID, pidx int32, term uint64) cluster.ReplicaState {
	return cluster.ReplicaState{AppID: appID, PartitionIndex: pidx, IsLeader: true, Term: term}
}

func follower(appID, pidx int32, term uint64) cluster.ReplicaState {
	return cluster.ReplicaState{AppID: appID, PartitionIndex: pidx, Term: term}
}

func addrString(a idl.RPCAddress) string { return a.String() }

// fillMap gives tm's cluster map a bit of everything a restart must keep: the given
// replica servers, table t (4 partitions, 3 replicas) with env k=v, table gone dropped but
// kept for an hour, and a leader of t's first partition on nodes[0] reported at term. It
// returns t's app id and that partition's assignment.
func (tm *testMeta) fillMap(nodes []string, term uint64) (int32, cluster.Assignment) {
	tm.t.Helper()
	tm.syncAll(nodes)
	id := tm.create("t", 4, 3)
	tm.create("gone", 2, 2)
	tm.drop("gone", idl.DropAppOptions{ReserveSeconds: idl.Some(int64(3600))})
	tm.updateEnv(&idl.UpdateAppEnvRequest{AppName: "t", Op: idl.AppEnvOpSet, Keys: idl.Some([]string{"k"}), Values: idl.Some([]string{"v"})})
	a := tm.syncNode(nodes[0]).Assignments[0]
	tm.syncNode(nodes[0], leader(id, a.PartitionIndex, term))
	return id, a
}
