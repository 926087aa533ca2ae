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
