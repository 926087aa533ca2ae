package testcluster

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/meta"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// metaRaftTick is the metas' raft tick in tests: elections after 200-400 ms of silence.
const metaRaftTick = 20 * time.Millisecond

// Meta returns the meta server at addr, as last started (its counters stay readable after
// it stopped).
func (c *Cluster) Meta(t testing.TB, addr string) *meta.Server {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.meta(t, addr).met
}

// startMetas starts n metas forming one raft group. Every meta must know the others'
// addresses before it starts, so free ports are found first.
func (c *Cluster) startMetas(t testing.TB, n int) {
	t.Helper()
	c.metas = c.opts.metas
	if c.metas == nil {
		c.metas = reserveMetas(t, n)
	}
	for i, m := range c.metas {
		m.dir = filepath.Join(c.dir, fmt.Sprintf("meta%d", i+1))
	}
	for _, m := range c.metas {
		c.startMeta(t, m)
	}
}

// reserveMetas finds n free addresses for meta servers.
func reserveMetas(t testing.TB, n int) []*server {
	t.Helper()
	var out []*server
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testcluster: %v", err)
		}
		out = append(out, &server{addr: ln.Addr().String()})
		_ = ln.Close()
	}
	return out
}

// metaConfig is the configuration of meta m: its fixed address and data, every meta listed.
func (c *Cluster) metaConfig(m *server) meta.Config {
	cfg := meta.Config{
		Listen:              m.addr,
		DataDir:             m.dir,
		Metas:               c.MetaAddrs(),
		NodeGrace:           c.opts.NodeGrace,
		RaftTick:            metaRaftTick,
		Logger:              c.lg.With("meta", m.addr),
		ClusterName:         c.opts.ClusterName,
		Peers:               c.opts.Peers,
		DupProgressInterval: 200 * time.Millisecond,
		BlockServices:       c.blocks,
		MinBackupInterval:   c.opts.MinBackupInterval,
		OpsInterval:         100 * time.Millisecond,
		Secret:              c.opts.Secret,
	}
	cfg.TLS, cfg.MandatoryTLS = c.serverTLS()
	if c.opts.Meta != nil {
		c.opts.Meta(&cfg)
	}
	return cfg
}

func (c *Cluster) meta(t testing.TB, addr string) *server {
	t.Helper()
	return find(t, "meta", c.metas, addr)
}

// StopMeta stops the meta server at addr (its data stays), as a crash would.
func (c *Cluster) StopMeta(t testing.TB, addr string) {
	t.Helper()
	c.stopServer(t, c.meta, addr)
}

// StartMeta restarts a stopped meta server on its address and data.
func (c *Cluster) StartMeta(t testing.TB, addr string) {
	t.Helper()
	c.startServer(t, c.meta, c.startMeta, addr)
}

// runningMetas returns the addresses of the metas that run.
func (c *Cluster) runningMetas() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.metas {
		if m.stop != nil {
			out = append(out, m.addr)
		}
	}
	return out
}

// leaderOf asks the running metas which one serves; "" when none does now.
func (c *Cluster) leaderOf(ctx context.Context) string {
	for _, addr := range c.runningMetas() {
		conn := rpc.NewConn(addr, c.connConfig())
		var resp idl.ClusterInfoResponse
		err := conn.Call(ctx, wire.Header{}, idl.RPCClusterInfo, &idl.ClusterInfoRequest{}, &resp)
		conn.Close()
		if err == nil && wire.CodeError(string(resp.Err)) == nil {
			return addr
		}
	}
	return ""
}

// MetaLeader waits until one of the running metas serves as the leader and returns its
// address.
func (c *Cluster) MetaLeader(t testing.TB) string {
	t.Helper()
	var leader string
	poll.UntilOK(t, "a serving meta leader", func(ctx context.Context) (bool, error) {
		leader = c.leaderOf(ctx)
		return leader != "", nil
	})
	return leader
}

// metaTarget is where MetaCall sends: the serving leader, else the first running meta.
func (c *Cluster) metaTarget(ctx context.Context) string {
	if len(c.metas) == 1 {
		return c.metas[0].addr
	}
	if l := c.leaderOf(ctx); l != "" {
		return l
	}
	if running := c.runningMetas(); len(running) > 0 {
		return running[0]
	}
	return c.metas[0].addr
}
