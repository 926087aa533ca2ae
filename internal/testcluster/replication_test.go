package testcluster

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// kv is a minimal routing client for these tests: it refreshes the table's configuration
// and retries on the errors that mean "the primary moved", as the official clients do.
type kv struct {
	t     *testing.T
	c     *Cluster
	table string
	cfg   idl.QueryCfgResponse
	conns map[string]*rpc.Conn
}

func newKV(t *testing.T, c *Cluster, table string) *kv {
	k := &kv{t: t, c: c, table: table, conns: map[string]*rpc.Conn{}}
	t.Cleanup(func() {
		for _, c := range k.conns {
			c.Close()
		}
	})
	return k
}

func (k *kv) refresh(ctx context.Context) error {
	var resp idl.QueryCfgResponse
	if err := k.c.MetaCall(ctx, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: k.table}, &resp); err != nil {
		return err
	}
	if err := wire.CodeError(string(resp.Err)); err != nil {
		return err
	}
	k.cfg = resp
	return nil
}

// do sends one RPC for hashKey to its partition's primary, retrying until ctx ends.
func (k *kv) do(ctx context.Context, hashKey []byte, name string, args, reply idl.Value) error {
	var last error
	err := poll.Wait(ctx, func(ctx context.Context) (bool, error) {
		if len(k.cfg.Partitions) == 0 {
			if last = k.refresh(ctx); last != nil {
				return false, nil
			}
		}
		h := key.Hash(hashKey)
		p := key.Partition(h, int(k.cfg.PartitionCount))
		pc := k.cfg.Partitions[p]
		if pc.Primary.IsZero() {
			last = fmt.Errorf("partition %d has no primary", p)
			k.cfg.Partitions = nil
			return false, nil
		}
		addr := pc.Primary.String()
		conn := k.conns[addr]
		if conn == nil {
			conn = rpc.NewConn(addr, rpc.ConnConfig{DialTimeout: 500 * time.Millisecond})
			k.conns[addr] = conn
		}
		last = conn.Call(ctx, wire.Header{AppID: k.cfg.AppID, PartitionIndex: int32(p), PartitionHash: h,
			ThreadHash: wire.ThreadHash(k.cfg.AppID, int32(p))}, name, args, reply)
		if last != nil {
			k.cfg.Partitions = nil // refresh and retry: safe here, the tests' writes are idempotent puts
		}
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w (last error: %v)", name, err, last)
	}
	return nil
}

func (k *kv) put(ctx context.Context, h, s, v string) error {
	var resp idl.UpdateResponse
	if err := k.do(ctx, []byte(h), idl.RPCPut, &idl.UpdateRequest{Key: enc(h, s), Value: []byte(v)}, &resp); err != nil {
		return err
	}
	if resp.Error != 0 {
		return fmt.Errorf("put error %d", resp.Error)
	}
	return nil
}

func (k *kv) get(ctx context.Context, h, s string) (string, bool, error) {
	var resp idl.ReadResponse
	kb := idl.Blob(enc(h, s))
	if err := k.do(ctx, []byte(h), idl.RPCGet, &kb, &resp); err != nil {
		return "", false, err
	}
	return string(resp.Value), resp.Error == 0, nil
}

func TestThreeReplicasSurviveAServerStopAndCatchUp(t *testing.T) {
	c := Start(t, Options{Replicas: 3})
	c.CreateTableReplicas(t, "temp", 8, 3)
	var cfg idl.QueryCfgResponse
	if err := c.MetaCall(t.Context(), idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "temp"}, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, p := range cfg.Partitions {
		if p.MaxReplicaCount != 3 || len(p.Secondaries) != 2 || p.Ballot < 1 {
			t.Fatalf("partition %d: %+v", p.PID.PartitionIndex, p)
		}
	}
	k := newKV(t, c, "temp")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for i := range 100 {
		if err := k.put(ctx, fmt.Sprintf("h%d", i), "s", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Stop the server that is primary of partition 0: its partitions elect new primaries
	// among the two others, and writes go on.
	victim := cfg.Partitions[0].Primary.String()
	c.StopReplica(t, victim)
	for i := 100; i < 200; i++ {
		if err := k.put(ctx, fmt.Sprintf("h%d", i), "s", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		v, ok, err := k.get(ctx, fmt.Sprintf("h%d", i), "s")
		if err != nil || !ok || v != fmt.Sprint(i) {
			t.Fatalf("h%d with a server down: %q %v %v", i, v, ok, err)
		}
	}
	// Ballots only grow.
	var cfg2 idl.QueryCfgResponse
	if err := c.MetaCall(t.Context(), idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "temp"}, &cfg2); err != nil {
		t.Fatal(err)
	}
	for i, p := range cfg2.Partitions {
		if p.Ballot < cfg.Partitions[i].Ballot {
			t.Fatalf("partition %d ballot went from %d to %d", i, cfg.Partitions[i].Ballot, p.Ballot)
		}
		if p.Primary.String() == victim {
			t.Fatalf("partition %d still names the stopped server as primary", i)
		}
	}

	// The stopped server comes back and catches up: stop the two others one at a time and
	// read everything through the groups it is part of.
	c.StartReplica(t, victim)
	c.WaitPrimaries(t, "temp")
	for _, other := range c.ReplicaAddrs() {
		if other == victim {
			continue
		}
		c.StopReplica(t, other)
		for i := range 200 {
			v, ok, err := k.get(ctx, fmt.Sprintf("h%d", i), "s")
			if err != nil || !ok || v != fmt.Sprint(i) {
				t.Fatalf("h%d with %s down: %q %v %v", i, other, v, ok, err)
			}
		}
		c.StartReplica(t, other)
		c.WaitPrimaries(t, "temp")
	}
}

// After a server stops and comes back, leadership moves back to each partition's preferred
// member, so primaries are spread evenly again.
func TestPrimariesRebalanceAfterRestart(t *testing.T) {
	c := Start(t, Options{Replicas: 3})
	c.CreateTableReplicas(t, "temp", 12, 3)
	spread := func() map[string]int {
		var cfg idl.QueryCfgResponse
		if err := c.MetaCall(t.Context(), idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "temp"}, &cfg); err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, p := range cfg.Partitions {
			n[p.Primary.String()]++
		}
		return n
	}
	victim := c.ReplicaAddrs()[0]
	c.StopReplica(t, victim)
	c.WaitPrimaries(t, "temp")
	poll.UntilOK(t, "primaries to leave the stopped server", func(ctx context.Context) (bool, error) {
		return spread()[victim] == 0, nil
	})
	c.StartReplica(t, victim)
	poll.UntilOK(t, "primaries to spread evenly again", func(ctx context.Context) (bool, error) {
		n := spread()
		for _, a := range c.ReplicaAddrs() {
			if n[a] < 3 || n[a] > 5 {
				return false, nil
			}
		}
		return true, nil
	})
}

// On 4 servers with 3 replicas per partition, a server that stays down is replaced: its
// replicas are rebuilt on the spare server (from the log or a snapshot), the configuration
// shows three live members again, and the data survives the loss of a second server.
func TestLostServerIsReplaced(t *testing.T) {
	c := Start(t, Options{Replicas: 4, NodeGrace: time.Second, LogCompactEvery: 20, LogKeep: 5, GarbageGrace: time.Second})
	c.CreateTableReplicas(t, "temp", 8, 3)
	k := newKV(t, c, "temp")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	for i := range 300 {
		if err := k.put(ctx, fmt.Sprintf("h%d", i), "s", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	victim := c.ReplicaAddrs()[1]
	c.StopReplica(t, victim)
	poll.UntilOK(t, "every partition to have three live members without the lost server", func(ctx context.Context) (bool, error) {
		var cfg idl.QueryCfgResponse
		if err := c.MetaCall(ctx, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "temp"}, &cfg); err != nil {
			return false, nil
		}
		for _, p := range cfg.Partitions {
			if p.Primary.IsZero() || len(p.Secondaries) != 2 || p.Primary.String() == victim {
				return false, nil
			}
			for _, s := range append(p.Secondaries, p.LastDrops...) {
				if s.String() == victim {
					return false, nil // still a member of the raft group
				}
			}
		}
		return true, nil
	})
	// The spare caught up from snapshots: 300 writes over 8 partitions had truncated the
	// leaders' logs (testcluster truncates every 20 entries) past what it lacked.
	var snaps int64
	for _, a := range c.ReplicaAddrs() {
		if a != victim {
			snaps += c.SnapshotsInstalled(t, a)
		}
	}
	if snaps == 0 {
		t.Fatal("the replacement replicas caught up without any snapshot")
	}
	// The lost server comes back: its old replicas were all placed elsewhere, so after the
	// garbage grace it deletes them.
	if n := len(replicaDirs(t, c.ReplicaDir(t, victim))); n == 0 {
		t.Fatal("the lost server held no replica to begin with")
	}
	c.StartReplica(t, victim)
	poll.UntilOK(t, "the returning server to delete its unassigned replicas", func(context.Context) (bool, error) {
		return len(replicaDirs(t, c.ReplicaDir(t, victim))) == 0, nil
	})
	c.StopReplica(t, victim)
	// Lose one more server: every group still has two of its three members.
	var second string
	for _, a := range c.ReplicaAddrs() {
		if a != victim {
			second = a
			break
		}
	}
	c.StopReplica(t, second)
	for i := range 300 {
		v, ok, err := k.get(ctx, fmt.Sprintf("h%d", i), "s")
		if err != nil || !ok || v != fmt.Sprint(i) {
			t.Fatalf("h%d after losing %s and %s: %q %v %v", i, victim, second, v, ok, err)
		}
	}
}

// replicaDirs lists the partition replica directories (<app_id>.<pidx>) in a replica
// server's data directory.
func replicaDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		var pid idl.GPID
		if _, err := fmt.Sscanf(e.Name(), "%d.%d", &pid.AppID, &pid.PartitionIndex); err == nil && e.IsDir() && e.Name() == pid.String() {
			out = append(out, e.Name())
		}
	}
	return out
}
