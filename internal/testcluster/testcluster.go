// Package testcluster starts meta and replica servers in-process on 127.0.0.1:0, with their
// data in the test's temporary directory, for tests of everything above the servers.
//
//	c := testcluster.Start(t, testcluster.Options{Replicas: 3})
//	c.CreateTable(t, "temp", 8)
//	tbl := c.OpenTable(t, "temp") // or a client of c.MetaAddrs()
//
// Servers stop when the test ends. StopReplica and StartReplica stop and restart one replica
// server on the same address and data, as a process crash and restart would.
package testcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/internal/blockservice"
	"github.com/gopegasus/pegasus/internal/dup"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/meta"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Options configures [Start]. Zero values mean the defaults.
type Options struct {
	// Metas is the number of meta servers, one raft group (default 1).
	Metas int
	// Replicas is the number of replica servers (default 3).
	Replicas int
	// NodeGrace is how long the meta waits before declaring a silent replica server dead
	// (default 3 s).
	NodeGrace time.Duration
	// LogLevel of the servers' logs, written to the test's output (default: warnings).
	LogLevel slog.Level
	// LogCompactEvery and LogKeep set the replica servers' raft log truncation (see
	// replica.Config); small values make replicas catch up by snapshot.
	LogCompactEvery, LogKeep int
	// GarbageGrace is how long replica servers keep a replica no longer assigned to them
	// (default: replica.DefaultGarbageGrace).
	GarbageGrace time.Duration
	// CommitDelay is the replica servers' group commit delay (replica.Config.CommitDelay;
	// nil: the default, raftlog.DefaultOptions.Delay; 0: off).
	CommitDelay *time.Duration
	// SyncInterval and TickInterval are the replica servers' report period and raft tick
	// (default 200 ms and 20 ms, faster than a real server's 1 s and 100 ms; set those to
	// run as a deployment does).
	SyncInterval, TickInterval time.Duration
	// BlockServices are the [block_service.<name>] sections every server gets (name ->
	// key -> value).
	BlockServices map[string]map[string]string
	// MinBackupInterval is the metas' shortest backup policy interval (default
	// meta's, a day); tests make it short.
	MinBackupInterval time.Duration
	// BackupRateMB is the replica servers' block service rate bound (nil: the default).
	BackupRateMB *int
	// ClusterName names the cluster (the servers' cluster_name; default: the meta's default
	// and no name on the replica servers). [StartClusters] needs one per cluster.
	ClusterName string
	// Peers are the duplication peers of the servers (default: none; StartClusters gives
	// each cluster the others).
	Peers *dup.Peers
	// Secret is the cluster's secret its servers authenticate each other with (default: a
	// new random one); Insecure runs the cluster without any, as `--insecure` does.
	Secret   *rpc.Secret
	Insecure bool
	// TLS, if set, serves TLS on every server's port ([NewTLS] makes one), and the
	// cluster's helpers connect with it (default: plaintext only).
	TLS *TLS
	// ClientAuth, if set, authenticates the connections of the cluster's own helpers
	// (MetaCall: waiting for nodes, creating tables, waiting for primaries), for clusters
	// with client authentication and ACLs on.
	ClientAuth rpc.ClientAuthenticator
	// Replica and Meta, if set, adjust each server's configuration before it starts.
	Replica func(*replica.Config)
	Meta    func(*meta.Config)

	// metas are meta servers whose addresses were reserved before the cluster starts.
	metas []*server
}

// Secret returns the cluster's secret (nil for an insecure cluster).
func (c *Cluster) Secret() *rpc.Secret { return c.opts.Secret }

// Cluster is a running in-process cluster.
type Cluster struct {
	opts     Options
	dir      string
	lg       *slog.Logger
	blocks   *blockservice.Providers
	mu       sync.Mutex
	metas    []*server
	replicas []*server
}

// server is one meta or replica server with a fixed address and data directory.
type server struct {
	addr string
	dir  string
	stop func()
	rep  *replica.Server // the running replica server, for its counters
	met  *meta.Server    // the running meta server, for its counters
}

// halt stops the server if it runs.
func (s *server) halt() {
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

// find returns the server of list at addr, failing the test if there is none.
func find(t testing.TB, kind string, list []*server, addr string) *server {
	t.Helper()
	for _, s := range list {
		if s.addr == addr {
			return s
		}
	}
	t.Fatalf("testcluster: no %s server %s", kind, addr)
	return nil
}

// Start starts the cluster and registers its shutdown with t.Cleanup.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Metas == 0 {
		opts.Metas = 1
	}
	if opts.Replicas == 0 {
		opts.Replicas = 3
	}
	if opts.NodeGrace == 0 {
		opts.NodeGrace = 3 * time.Second
	}
	if opts.LogLevel == 0 {
		opts.LogLevel = slog.LevelWarn
	}
	if opts.SyncInterval == 0 {
		opts.SyncInterval = 200 * time.Millisecond
	}
	if opts.TickInterval == 0 {
		opts.TickInterval = 20 * time.Millisecond
	}
	if opts.Insecure {
		opts.Secret = nil
	} else if opts.Secret == nil {
		secret, err := rpc.NewSecret(rpc.GenerateSecret())
		if err != nil {
			t.Fatalf("testcluster: %v", err)
		}
		opts.Secret = secret
	}
	c := &Cluster{
		opts: opts,
		dir:  t.TempDir(),
		lg:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: opts.LogLevel})),
	}
	blocks, err := blockservice.NewProviders(opts.BlockServices)
	if err != nil {
		t.Fatalf("testcluster: block services: %v", err)
	}
	c.blocks = blocks
	t.Cleanup(c.stopAll)
	c.startMetas(t, opts.Metas)
	for i := range opts.Replicas {
		r := &server{addr: "127.0.0.1:0", dir: filepath.Join(c.dir, fmt.Sprintf("replica%d", i+1))}
		c.replicas = append(c.replicas, r)
		c.startReplica(t, r)
	}
	c.waitNodes(t, opts.Replicas)
	return c
}

func (c *Cluster) startMeta(t testing.TB, m *server) {
	t.Helper()
	s, err := meta.New(c.metaConfig(m))
	if err != nil {
		t.Fatalf("testcluster: start meta: %v", err)
	}
	m.addr = s.Addr()
	m.met = s
	m.stop = c.run(t, "meta "+m.addr, s)
}

func (c *Cluster) startReplica(t testing.TB, r *server) {
	t.Helper()
	cfg := replica.Config{
		Listen:          r.addr,
		DataDir:         r.dir,
		Metas:           c.MetaAddrs(),
		SyncInterval:    c.opts.SyncInterval,
		TickInterval:    c.opts.TickInterval,
		LogCompactEvery: c.opts.LogCompactEvery,
		LogKeep:         c.opts.LogKeep,
		GarbageGrace:    c.opts.GarbageGrace,
		CommitDelay:     c.opts.CommitDelay,
		BlockServices:   c.blocks,
		BackupRateMB:    c.opts.BackupRateMB,
		Logger:          c.lg,
		ClusterName:     c.opts.ClusterName,
		Peers:           c.opts.Peers,
		DupSyncInterval: time.Second,
		Secret:          c.opts.Secret,
	}
	cfg.TLS, cfg.MandatoryTLS = c.serverTLS()
	if c.opts.Replica != nil {
		c.opts.Replica(&cfg)
	}
	s, err := replica.New(cfg)
	if err != nil {
		t.Fatalf("testcluster: start replica: %v", err)
	}
	r.addr = s.Addr()
	r.rep = s
	r.stop = c.run(t, "replica "+r.addr, s)
}

// runner is a meta or replica server.
type runner interface {
	Run(context.Context) error
	Close() error
}

// run runs s in a goroutine and returns a function that closes it, as a crash would (the
// stores are not flushed: a restart replays the raft log), and waits for Run to return. The
// server's goroutines carry the profiler labels cluster (the cluster's name) and server
// (what), so a CPU profile of a test tells the servers apart (pprof -tagfocus).
func (c *Cluster) run(t testing.TB, what string, s runner) func() {
	done := make(chan error, 1)
	labels := pprof.Labels("cluster", c.opts.ClusterName, "server", what)
	go pprof.Do(context.Background(), labels, func(ctx context.Context) { done <- s.Run(ctx) })
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := s.Close(); err != nil {
				t.Errorf("testcluster: close %s: %v", what, err)
			}
			if err := <-done; !errors.Is(err, rpc.ErrServerClosed) {
				t.Errorf("testcluster: %s: %v", what, err)
			}
		})
	}
}

func (c *Cluster) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.replicas {
		r.halt()
	}
	for _, m := range c.metas {
		m.halt()
	}
}

// SnapshotsInstalled returns how many snapshots the replica server at addr installed since
// it started.
func (c *Cluster) SnapshotsInstalled(t testing.TB, addr string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.replica(t, addr)
	if r.rep == nil || r.stop == nil {
		return 0
	}
	return r.rep.SnapshotsInstalled()
}

// Replica returns the running replica server at addr, failing the test when it is stopped.
func (c *Cluster) Replica(t testing.TB, addr string) *replica.Server {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.replica(t, addr)
	if r.stop == nil {
		t.Fatalf("testcluster: replica server %s is stopped", addr)
	}
	return r.rep
}

// RaftLogSyncs sums the raft log fsyncs of the running replica servers.
func (c *Cluster) RaftLogSyncs() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, r := range c.replicas {
		if r.rep != nil && r.stop != nil {
			n += r.rep.RaftLogSyncs()
		}
	}
	return n
}

// MetaAddrs returns the meta servers' addresses.
func (c *Cluster) MetaAddrs() []string {
	var out []string
	for _, m := range c.metas {
		out = append(out, m.addr)
	}
	return out
}

// ReplicaAddrs returns the replica servers' addresses, running or not.
func (c *Cluster) ReplicaAddrs() []string {
	var out []string
	for _, r := range c.replicas {
		out = append(out, r.addr)
	}
	return out
}

func (c *Cluster) replica(t testing.TB, addr string) *server {
	t.Helper()
	return find(t, "replica", c.replicas, addr)
}

// ReplicaDir returns the data directory of the replica server at addr.
func (c *Cluster) ReplicaDir(t testing.TB, addr string) string { return c.replica(t, addr).dir }

// StopReplica stops the replica server at addr (its data stays), as a crash would.
func (c *Cluster) StopReplica(t testing.TB, addr string) {
	t.Helper()
	c.stopServer(t, c.replica, addr)
}

// StartReplica restarts a stopped replica server on its address and data.
func (c *Cluster) StartReplica(t testing.TB, addr string) {
	t.Helper()
	c.startServer(t, c.replica, c.startReplica, addr)
}

// stopServer halts the server at addr, which find looks up (c.meta or c.replica).
func (c *Cluster) stopServer(t testing.TB, find func(testing.TB, string) *server, addr string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	find(t, addr).halt()
}

// startServer starts the server at addr with start unless it runs.
func (c *Cluster) startServer(t testing.TB, find func(testing.TB, string) *server, start func(testing.TB, *server), addr string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := find(t, addr); s.stop == nil {
		start(t, s)
	}
}

// Restart stops every server and starts them again from their data.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.stopAll()
	c.mu.Lock()
	for _, m := range c.metas {
		c.startMeta(t, m)
	}
	for _, r := range c.replicas {
		c.startReplica(t, r)
	}
	c.mu.Unlock()
	c.waitNodes(t, len(c.replicas))
}

// MetaCall makes one meta RPC on the meta leader (or, when none serves, a running meta).
func (c *Cluster) MetaCall(ctx context.Context, name string, args, reply idl.Value) error {
	conn := rpc.NewConn(c.metaTarget(ctx), c.connConfig())
	defer conn.Close()
	return conn.Call(ctx, wire.Header{}, name, args, reply)
}

// MemberMetaCall is MetaCall from a connection authenticated with the cluster's secret, as
// member claiming address as, for the RPCs only the cluster's servers may send (a plain
// connection on an insecure cluster).
func (c *Cluster) MemberMetaCall(ctx context.Context, as, name string, args, reply idl.Value) error {
	var cfg rpc.ConnConfig
	if c.opts.Secret != nil {
		cfg.Peer = &rpc.PeerCredentials{Secret: c.opts.Secret, Addr: as}
	}
	conn := rpc.NewConn(c.metaTarget(ctx), cfg)
	defer conn.Close()
	return conn.Call(ctx, wire.Header{}, name, args, reply)
}

// WaitAlive waits until the meta leader counts n alive replica servers.
func (c *Cluster) WaitAlive(t testing.TB, n int) {
	t.Helper()
	c.waitNodes(t, n)
}

func (c *Cluster) waitNodes(t testing.TB, n int) {
	t.Helper()
	poll.UntilOK(t, fmt.Sprintf("%d alive replica servers", n), func(ctx context.Context) (bool, error) {
		var resp idl.ListNodesResponse
		if err := c.MetaCall(ctx, idl.RPCListNodes, &idl.ListNodesRequest{Status: idl.NodeStatusAlive}, &resp); err != nil {
			return false, nil
		}
		return len(resp.Infos) >= n, nil
	})
}

// OpenTable opens the table with a client of the cluster's metas, closed when the test ends.
func (c *Cluster) OpenTable(t testing.TB, name string) pegasus.TableConnector {
	t.Helper()
	cli := pegasus.NewClient(c.ClientConfig())
	t.Cleanup(func() { _ = cli.Close() })
	tbl, err := cli.OpenTable(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// CreateTable creates a table with one replica per partition (replication is not built yet)
// and waits until every partition has a primary. It returns the table's app id.
func (c *Cluster) CreateTable(t testing.TB, name string, partitions int) int32 {
	t.Helper()
	return c.CreateTableReplicas(t, name, partitions, 1)
}

// CreateTableReplicas creates a table with the given replica count and waits until every
// partition has a primary.
func (c *Cluster) CreateTableReplicas(t testing.TB, name string, partitions, replicas int) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var resp idl.CreateAppResponse
	err := c.MetaCall(ctx, idl.RPCCreateApp, &idl.CreateAppRequest{AppName: name, Options: idl.CreateAppOptions{
		PartitionCount: int32(partitions), ReplicaCount: int32(replicas), SuccessIfExist: true,
		AppType: "pegasus", IsStateful: true, Envs: map[string]string{},
	}}, &resp)
	if err == nil {
		err = wire.CodeError(string(resp.Err))
	}
	if err != nil {
		t.Fatalf("testcluster: create table %s: %v", name, err)
	}
	c.WaitPrimaries(t, name)
	return resp.AppID
}

// WaitPrimaries waits until every partition of the table has a primary.
func (c *Cluster) WaitPrimaries(t testing.TB, name string) {
	t.Helper()
	poll.UntilOK(t, "primaries of "+name, func(ctx context.Context) (bool, error) {
		var resp idl.QueryCfgResponse
		if err := c.MetaCall(ctx, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: name}, &resp); err != nil {
			return false, nil
		}
		if err := wire.CodeError(string(resp.Err)); err != nil {
			return false, nil
		}
		if len(resp.Partitions) != int(resp.PartitionCount) {
			return false, nil
		}
		for _, p := range resp.Partitions {
			if p.Primary.IsZero() || p.Ballot < 1 {
				return false, nil
			}
		}
		return true, nil
	})
}

// WaitSpreadPrimaries waits until the table's primaries are spread evenly over the replica
// servers, as the leader transfers of the replicas keep them: no server leads more than one
// partition more than another. Right after a table is created, an election won by another
// member than the preferred primary can leave them uneven for a few seconds.
func (c *Cluster) WaitSpreadPrimaries(t testing.TB, name string) {
	t.Helper()
	servers := len(c.ReplicaAddrs())
	poll.UntilOK(t, "primaries of "+name+" spread", func(ctx context.Context) (bool, error) {
		var resp idl.QueryCfgResponse
		if err := c.MetaCall(ctx, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: name}, &resp); err != nil {
			return false, nil
		}
		led := map[string]int{}
		for _, p := range resp.Partitions {
			if p.Primary.IsZero() {
				return false, nil
			}
			led[p.Primary.String()]++
		}
		least, most := len(resp.Partitions), 0
		for _, n := range led {
			least, most = min(least, n), max(most, n)
		}
		if len(led) < min(servers, len(resp.Partitions)) {
			least = 0
		}
		return most-least <= 1, nil
	})
}

// WaitEnv waits until every running replica server hosting a partition of the table acts on
// the table env key with value v.
func (c *Cluster) WaitEnv(t testing.TB, table, key, v string) {
	t.Helper()
	poll.UntilOK(t, fmt.Sprintf("env %s=%s on the replicas of %s", key, v, table), func(ctx context.Context) (bool, error) {
		var resp idl.QueryCfgResponse
		if err := c.MetaCall(ctx, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: table}, &resp); err != nil {
			return false, nil
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, r := range c.replicas {
			if r.rep == nil || r.stop == nil {
				continue
			}
			for i := range resp.PartitionCount {
				envs, ok := r.rep.Envs(idl.GPID{AppID: resp.AppID, PartitionIndex: i})
				if ok && envs[key] != v {
					return false, nil
				}
			}
		}
		return true, nil
	})
}

// WaitSplitPurged waits until every partition of the table is open and no running replica
// server holds, in a replica of the table, records that a split moved to another partition.
func (c *Cluster) WaitSplitPurged(t testing.TB, table string) {
	t.Helper()
	poll.UntilOK(t, "the split's leftovers of "+table+" deleted", func(ctx context.Context) (bool, error) {
		var resp idl.QueryCfgResponse
		if err := c.MetaCall(ctx, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: table}, &resp); err != nil {
			return false, nil
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		total := 0
		for _, r := range c.replicas {
			if r.rep == nil || r.stop == nil {
				continue
			}
			left, hosted := r.rep.SplitLeftovers(resp.AppID)
			if left > 0 {
				return false, nil
			}
			total += hosted
		}
		return total >= int(resp.PartitionCount), nil // every partition opened somewhere
	})
}
