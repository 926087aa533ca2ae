package testcluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pegasus "github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// tableView is what a table looks like from the meta leader, for comparisons across
// failovers and restarts.
type tableView struct {
	info    idl.AppInfo
	ballots []int64
}

func clusterView(t *testing.T, c *Cluster) map[string]tableView {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var apps idl.ListAppsResponse
	if err := c.MetaCall(ctx, idl.RPCListApps, &idl.ListAppsRequest{}, &apps); err != nil || apps.Err != "ERR_OK" {
		t.Fatalf("list apps: %v %s", err, apps.Err)
	}
	out := map[string]tableView{}
	for _, info := range apps.Infos {
		v := tableView{info: info}
		if info.Status == idl.AppStatusAvailable {
			var q idl.QueryCfgResponse
			if err := c.MetaCall(ctx, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: info.AppName}, &q); err != nil || q.Err != "ERR_OK" {
				t.Fatalf("query %s: %v %s", info.AppName, err, q.Err)
			}
			for _, p := range q.Partitions {
				v.ballots = append(v.ballots, p.Ballot)
			}
		}
		out[fmt.Sprintf("%d:%s", info.AppID, info.AppName)] = v
	}
	return out
}

// sameTables fails unless after holds every table of before, with the same info and
// ballots at least as high.
func sameTables(t *testing.T, before, after map[string]tableView) {
	t.Helper()
	for k, b := range before {
		a, ok := after[k]
		if !ok {
			t.Fatalf("table %s lost; have %v", k, slices.Sorted(maps.Keys(after)))
		}
		if a.info.PartitionCount != b.info.PartitionCount || a.info.Status != b.info.Status ||
			!maps.Equal(a.info.Envs, b.info.Envs) || a.info.MaxReplicaCount != b.info.MaxReplicaCount ||
			a.info.CreateSecond != b.info.CreateSecond {
			t.Fatalf("table %s changed:\n%+v\nwas\n%+v", k, a.info, b.info)
		}
		if len(a.ballots) != len(b.ballots) {
			t.Fatalf("table %s: %d partition configurations, was %d", k, len(a.ballots), len(b.ballots))
		}
		for i := range a.ballots {
			if a.ballots[i] < b.ballots[i] {
				t.Fatalf("table %s partition %d: ballot %d went below %d", k, i, a.ballots[i], b.ballots[i])
			}
		}
	}
}

func TestMetaLeaderFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and kills its meta leader")
	}
	c := Start(t, Options{Metas: 3, Replicas: 3})
	all := c.MetaAddrs()
	adm := admin.NewClient(admin.Config{MetaServers: all, Timeout: 20 * time.Second})
	t.Cleanup(func() { adm.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	if _, err := adm.CreateTable(ctx, "temp", 8, 1, map[string]string{"k": "v"}, 30); err != nil {
		t.Fatal(err)
	}
	cli := pegasus.NewClient(pegasus.Config{MetaServers: all})
	t.Cleanup(func() { cli.Close() })
	tbl, err := cli.OpenTable(ctx, "temp")
	if err != nil {
		t.Fatal(err)
	}

	// Writers and table creators run while the leader is killed.
	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		mu      sync.Mutex
		written []string
		created []string
	)
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			k := fmt.Sprintf("key%d", i)
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			err := tbl.Set(wctx, []byte(k), []byte("s"), []byte(k))
			wcancel()
			if err == nil {
				mu.Lock()
				written = append(written, k)
				mu.Unlock()
			}
		}
	})
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			name := fmt.Sprintf("t%d", i)
			if _, err := adm.CreateTable(ctx, name, 2, 1, nil, 30); err != nil {
				t.Errorf("create %s across the failover: %v", name, err)
				return
			}
			mu.Lock()
			created = append(created, name)
			mu.Unlock()
		}
	})
	poll.UntilOK(t, "tables created before the failover", func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(created) >= 2 && len(written) >= 50, nil
	})
	before := clusterView(t, c)

	old := c.MetaLeader(t)
	c.StopMeta(t, old)
	killed := time.Now()
	// The new leader serves query_cfg and DDL.
	var leader string
	poll.UntilOK(t, "a new meta leader serving query_cfg and DDL", func(ctx context.Context) (bool, error) {
		if leader = c.leaderOf(ctx); leader == "" {
			return false, nil
		}
		var q idl.QueryCfgResponse
		if err := c.MetaCall(ctx, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "temp"}, &q); err != nil || q.Err != "ERR_OK" {
			return false, nil
		}
		var r idl.CreateAppResponse
		err := c.MetaCall(ctx, idl.RPCCreateApp, &idl.CreateAppRequest{AppName: "after", Options: idl.CreateAppOptions{
			PartitionCount: 2, ReplicaCount: 1, SuccessIfExist: true, AppType: "pegasus", IsStateful: true,
			Envs: map[string]string{}}}, &r)
		return err == nil && r.Err == "ERR_OK", nil
	})
	took := time.Since(killed)
	t.Logf("meta failover: %s stopped, %s serves query_cfg and create_app after %v", old, leader, took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Fatalf("failover took %v, want under 10s", took)
	}
	if leader == old {
		t.Fatalf("the stopped meta %s is still the leader", old)
	}
	// Keep writing and creating a little on the new leader, then stop.
	mu.Lock()
	n := len(created)
	mu.Unlock()
	poll.UntilOK(t, "tables created after the failover", func(context.Context) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(created) >= n+2, nil
	})
	stop.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}

	// Nothing committed before the failover was lost, and every table created on either
	// side of it is there, with a primary for each partition.
	sameTables(t, before, clusterView(t, c))
	after := clusterView(t, c)
	for _, name := range append(created, "after", "temp") {
		found := false
		for k := range after {
			if _, n, _ := cutColon(k); n == name {
				found = true
			}
		}
		if !found {
			t.Fatalf("table %s created across the failover is missing", name)
		}
		c.WaitPrimaries(t, name)
	}
	if v := after[fmt.Sprintf("%d:temp", before[firstKey(before, "temp")].info.AppID)]; v.info.Envs["k"] != "v" {
		t.Fatalf("env of temp lost: %v", v.info.Envs)
	}

	// A client that knows only a meta that is not the leader reaches it through the hint.
	var follower string
	for _, a := range all {
		if a != old && a != leader {
			follower = a
		}
	}
	one := pegasus.NewClient(pegasus.Config{MetaServers: []string{follower}})
	defer one.Close()
	tbl2, err := one.OpenTable(ctx, "temp")
	if err != nil {
		t.Fatalf("client of %s alone: %v", follower, err)
	}
	mu.Lock()
	keys := slices.Clone(written)
	mu.Unlock()
	t.Logf("%d writes and %d tables created across the failover", len(keys), len(created))
	for _, k := range keys {
		got, err := tbl2.Get(ctx, []byte(k), []byte("s"))
		if err != nil || string(got) != k {
			t.Fatalf("get %s through the client of %s: %q %v", k, follower, got, err)
		}
	}

	// The old leader comes back as a follower and forwards.
	c.StartMeta(t, old)
	poll.UntilOK(t, "the old leader following", func(ctx context.Context) (bool, error) {
		conn := rpc.NewConn(old, rpc.ConnConfig{})
		defer conn.Close()
		var q idl.QueryCfgResponse
		if err := conn.Call(ctx, wire.Header{}, idl.RPCQueryConfig, &idl.QueryCfgRequest{AppName: "temp"}, &q); err != nil {
			return false, nil
		}
		return q.Err == "ERR_FORWARD_TO_OTHERS" && len(q.Partitions) == 1 && q.Partitions[0].Primary.String() == c.leaderOf(ctx), nil
	})
}

func TestMetasRestartFromTheirData(t *testing.T) {
	c := Start(t, Options{Metas: 3, Replicas: 3})
	c.CreateTable(t, "temp", 8)
	c.CreateTableReplicas(t, "three", 4, 3)
	c.CreateTable(t, "gone", 2)
	ctx := t.Context()
	var e idl.UpdateAppEnvResponse
	if err := c.MetaCall(ctx, idl.RPCUpdateAppEnv, &idl.UpdateAppEnvRequest{AppName: "temp", Op: idl.AppEnvOpSet,
		Keys: idl.Some([]string{"default_ttl"}), Values: idl.Some([]string{"3600"})}, &e); err != nil || e.Err != "ERR_OK" {
		t.Fatalf("set env: %v %s", err, e.Err)
	}
	var d idl.DropAppResponse
	if err := c.MetaCall(ctx, idl.RPCDropApp, &idl.DropAppRequest{AppName: "gone"}, &d); err != nil || d.Err != "ERR_OK" {
		t.Fatalf("drop: %v %s", err, d.Err)
	}
	before := clusterView(t, c)
	c.Restart(t)
	c.WaitPrimaries(t, "temp")
	c.WaitPrimaries(t, "three")
	after := clusterView(t, c)
	sameTables(t, before, after)
	if len(after) != len(before) {
		t.Fatalf("tables after restart %v, before %v", slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(before)))
	}
}

func cutColon(k string) (string, string, bool) { return strings.Cut(k, ":") }

func firstKey(m map[string]tableView, name string) string {
	for k := range m {
		if _, n, _ := cutColon(k); n == name {
			return k
		}
	}
	return ""
}
