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
// the children routed to their parents until they register), and pins down what reaches
// that client's application: at each parent's cut-over, until its child registers, the
// parent refuses the child's half with ERR_SPLITTING, which that client returns as it is
// (it neither retries nor refreshes on it), and once the child registered with
// ERR_PARENT_PARTITION_MISUSED, which it returns too, after asking for a refresh; nothing
// else. Once its routing has every child, no error: every acknowledged write reads back and
// the checked keys' history (the refused writes taken as not applied) is linearizable.
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
	// A split's refusals are made before the write is applied (at request time, or at apply
	// time for one accepted before the cut-over, by every replica alike): they had no effect.
	splitRefusal := func(err error) bool {
		code, ok := wire.AsCode(err)
		return ok && (code == wire.ErrSplitting || code == wire.ErrParentPartitionMisused)
	}
	l := StartLoad(t, tb, &LoadOptions{KeepGoing: true, CallTimeout: 5 * time.Second, Refused: splitRefusal})
	adm := admin.NewClient(admin.Config{MetaServers: c.MetaAddrs()})
	defer adm.Close()
	var report []string
	for _, count := range []int{8, 16} {
		before := len(l.Errors())
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
		kinds := goErrorKinds(l.Errors()[before:])
		report = append(report, fmt.Sprintf("to %d in %v: %v", count, time.Since(start).Round(time.Millisecond), kinds))
		for _, k := range slices.Sorted(maps.Keys(kinds)) {
			if k != wire.ErrSplitting.Name() && k != wire.ErrParentPartitionMisused.Name() {
				t.Errorf("the split to %d partitions handed the application %d errors %s", count, kinds[k], k)
			}
		}
	}
	// Once the client's routing has every child registered, no error reaches it.
	poll.Until(t, "the client's routing after the split", func() bool {
		r := tb.route.Load()
		return len(r.ballots) == 16 && !slices.ContainsFunc(r.ballots, func(b int64) bool { return b <= 0 })
	})
	routed, acked := time.Since(l.Started()), l.Acked()
	poll.Until(t, "writes after the split", func() bool { return l.Acked() >= acked+300 })
	errs := l.Errors()
	if n := len(errs); n > 0 && errs[n-1].At > routed+time.Second {
		t.Errorf("an error reached the application %v after the client's routing was complete: %v", errs[n-1].At-routed, errs[n-1])
	}
	t.Logf("what the official go-client's application sees of a split: %s; none once its routing has the children (%d refreshes)",
		strings.Join(report, "; "), tb.Refreshes.Load())
	l.Check(nil)
}
