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
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// metaRaftTick is the metas' raft tick in tests: elections after 200-400 ms of silence.
const metaRaftTick = 20 * time.Millisecond

// startMetas starts n metas forming one raft group. Every meta must know the others'
// addresses before it starts, so free ports are found first.
func (c *Cluster) startMetas(t testing.TB, n int) {
	t.Helper()
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testcluster: %v", err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		c.metas = append(c.metas, &server{addr: addr, dir: filepath.Join(c.dir, fmt.Sprintf("meta%d", i+1))})
	}
	for _, m := range c.metas {
		c.startMeta(t, m)
	}
}

// metaConfig is the configuration of meta m: its fixed address and data, every meta listed.
func (c *Cluster) metaConfig(m *server) meta.Config {
	return meta.Config{
		Listen:            m.addr,
		DataDir:           m.dir,
		Metas:             c.MetaAddrs(),
		NodeGrace:         c.opts.NodeGrace,
		RaftTick:          metaRaftTick,
		BlockServices:     c.blocks,
		MinBackupInterval: c.opts.MinBackupInterval,
		OpsInterval:       100 * time.Millisecond,
		Logger:            c.lg.With("meta", m.addr),
	}
}

func (c *Cluster) meta(t testing.TB, addr string) *server {
	t.Helper()
	return find(t, "meta", c.metas, addr)
}

// StopMeta stops the meta server at addr (its data stays), as a crash would.
func (c *Cluster) StopMeta(t testing.TB, addr string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.meta(t, addr).halt()
}

// StartMeta restarts a stopped meta server on its address and data.
func (c *Cluster) StartMeta(t testing.TB, addr string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.meta(t, addr)
	if m.stop == nil {
		c.startMeta(t, m)
	}
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
		conn := rpc.NewConn(addr, rpc.ConnConfig{})
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
	waitUntil(t, "a serving meta leader", func(ctx context.Context) (bool, error) {
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
