package testcluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/key"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/wire"
)

// goErrorKinds counts errs by what reached the application: the Pegasus error name, or
// "other".
func goErrorKinds(errs []LoadError) map[string]int {
	kinds := map[string]int{}
	for _, e := range errs {
		k := "other"
		if code, ok := wire.AsCode(e.Err); ok {
			k = code.Name()
		} else if errors.Is(e.Err, context.DeadlineExceeded) {
			k = "deadline"
		}
		kinds[k]++
	}
	return kinds
}

// TestGoClientSplitUnderLoad splits a table from 4 to 8 and 16 partitions under a load of
// clients that react to errors as the official go-client does (GoClient, protocol.md §3.3:
// the children routed to their parents until they register), and checks that no error
// reaches that client's application: a parent that refuses a key of its child's half (from
// its cut-over, ERR_SPLITTING until the child registers and ERR_PARENT_PARTITION_MISUSED
// after, which that client would hand its application as they are) sends the request on to
// the child instead (package replica, splitforward.go). Every acknowledged write reads back
// and the checked keys' history is linearizable.
func TestGoClientSplitUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and splits a table under load")
	}
	c := Start(t, Options{Replicas: 3,
		Replica: func(rc *replica.Config) { rc.TickInterval = 100 * time.Millisecond }})
	c.CreateTableReplicas(t, "split", 4, 3)
	gc := NewGoClient(c.MetaAddrs())
	defer gc.Close()
	tb, err := gc.OpenTable(t.Context(), "split")
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	l := StartLoad(t, tb, &LoadOptions{KeepGoing: true, CallTimeout: 5 * time.Second})
	adm := admin.NewClient(admin.Config{MetaServers: c.MetaAddrs()})
	defer adm.Close()
	splitForwarded := func() (n int64) {
		for _, a := range c.ReplicaAddrs() {
			n += c.Replica(t, a).SplitForwardedRequests()
		}
		return n
	}
	var report []string
	for _, count := range []int{8, 16} {
		before, fwd := len(l.Errors()), splitForwarded()
		start := time.Now()
		if err := adm.StartPartitionSplit(t.Context(), "split", count); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		err := adm.WaitPartitionSplit(wctx, "split", nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		// Writes go on for a while with the client's routing as it is.
		acked := l.Acked()
		poll.Until(t, "writes after the split", func() bool { return l.Acked() >= acked+300 })
		kinds := goErrorKinds(l.Errors()[before:])
		report = append(report, fmt.Sprintf("to %d in %v: %d requests sent on to a child, errors %v",
			count, time.Since(start).Round(time.Millisecond), splitForwarded()-fwd, kinds))
		for _, k := range slices.Sorted(maps.Keys(kinds)) {
			t.Errorf("the split to %d partitions handed the application %d errors %s", count, kinds[k], k)
		}
		if splitForwarded() == fwd {
			t.Errorf("the split to %d partitions sent no request on to a child: the client's routing was not the parents'", count)
		}
	}
	t.Logf("what the official go-client's application sees of a split: %s (%d refreshes)",
		strings.Join(report, "; "), tb.Refreshes.Load())
	l.Check(nil)
}

// TestSplitForwardToMovedChild moves a split's child off the server of its parent's
// primary, then has a client that still routes by the count before the split (the official
// go-client's routing, which nothing made it refresh) read and write the child's half: the
// parent's primary, which no longer hosts the child, sends each request on to the child's
// primary as the meta names it, and no error reaches the client.
func TestSplitForwardToMovedChild(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster, splits a table and moves a replica")
	}
	c := Start(t, Options{Replicas: 4, GarbageGrace: time.Second,
		Replica: func(rc *replica.Config) { rc.TickInterval = 100 * time.Millisecond }})
	appID := c.CreateTableReplicas(t, "moved", 2, 3)
	gc := NewGoClient(c.MetaAddrs())
	defer gc.Close()
	tb, err := gc.OpenTable(t.Context(), "moved")
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	// Keys of partition 2 of 4: the child of partition 0.
	var keys [][]byte
	for i := 0; len(keys) < 20; i++ {
		k := []byte(fmt.Sprintf("k%d", i))
		if key.Partition(key.Hash(k), 4) == 2 {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if err := tb.Set(t.Context(), k, []byte("s"), k); err != nil {
			t.Fatal(err)
		}
	}
	adm := admin.NewClient(admin.Config{MetaServers: c.MetaAddrs()})
	defer adm.Close()
	if err := adm.StartPartitionSplit(t.Context(), "moved", 4); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := adm.WaitPartitionSplit(wctx, "moved", nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := adm.QueryConfig(t.Context(), "moved")
	if err != nil {
		t.Fatal(err)
	}
	parent, child := cfg.Partitions[0].Primary, cfg.Partitions[2]
	members := append([]string{child.Primary}, child.Secondaries...)
	if !slices.Contains(members, parent) {
		t.Fatalf("the child %+v does not start on its parent's primary %s", child, parent)
	}
	var spare string
	for _, a := range c.ReplicaAddrs() {
		if !slices.Contains(members, a) {
			spare = a
		}
	}
	if child.Primary == parent {
		if err := adm.Balance(t.Context(), "moved", 2, "move_pri", parent, child.Secondaries[0]); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, "the child's primary moved", func() bool {
			cfg, err := adm.QueryConfig(t.Context(), "moved")
			return err == nil && cfg.Partitions[2].Primary != "" && cfg.Partitions[2].Primary != parent &&
				slices.Contains(cfg.Partitions[2].Secondaries, parent)
		})
	}
	if err := adm.Balance(t.Context(), "moved", 2, "copy_sec", parent, spare); err != nil {
		t.Fatal(err)
	}
	pid := idl.GPID{AppID: appID, PartitionIndex: 2}
	var last string
	if err := poll.Wait(wctx, func(ctx context.Context) (bool, error) {
		cfg, err := adm.QueryConfig(ctx, "moved")
		if err != nil {
			last = err.Error()
			return false, nil
		}
		pc := cfg.Partitions[2]
		_, hosted := c.Replica(t, parent).Envs(pid)
		last = fmt.Sprintf("parent %+v, child %+v, hosted by %s: %v", cfg.Partitions[0], pc, parent, hosted)
		return cfg.Partitions[0].Primary == parent && pc.Primary != "" && !hosted &&
			!slices.Contains(pc.Secondaries, parent) && slices.Contains(append(pc.Secondaries, pc.Primary), spare), nil
	}); err != nil {
		t.Fatalf("the child's replica gone from its parent's primary: %v; last: %s", err, last)
	}
	if r := tb.route.Load(); len(r.ballots) != 2 {
		t.Fatalf("the client's routing has %d partitions: it refreshed, so nothing here goes through the parent", len(r.ballots))
	}
	before := c.Replica(t, parent).SplitForwardedRequests()
	for _, k := range keys {
		v, err := tb.Get(t.Context(), k, []byte("s"))
		if err != nil || string(v) != string(k) {
			t.Fatalf("get %s through the parent: %q, %v", k, v, err)
		}
		if err := tb.Set(t.Context(), k, []byte("t"), k); err != nil {
			t.Fatalf("set %s through the parent: %v", k, err)
		}
	}
	if n := c.Replica(t, parent).SplitForwardedRequests() - before; n < int64(2*len(keys)) {
		t.Errorf("the parent's primary sent %d requests on to the moved child, want %d", n, 2*len(keys))
	}
	tb2, err := gc.OpenTable(t.Context(), "moved")
	if err != nil {
		t.Fatal(err)
	}
	defer tb2.Close()
	for _, k := range keys {
		if v, err := tb2.Get(t.Context(), k, []byte("t")); err != nil || string(v) != string(k) {
			t.Fatalf("get %s from the child: %q, %v", k, v, err)
		}
	}
}
