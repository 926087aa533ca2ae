package gocli2018

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/XiaoMi/pegasus-go-client/pegasus"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/linearize"
	"github.com/gopegasus/pegasus/internal/meta"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// oldTable is a table of the 2018 client as a linearize.Table. A panic inside the client is
// returned as an error (the test goes on to report it). It has no incr.
type oldTable struct{ tb pegasus.TableConnector }

func catch(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("panic in the client: %v", r)
	}
}

func (o oldTable) Get(ctx context.Context, h, s []byte) (v []byte, err error) {
	defer catch(&err)
	return o.tb.Get(ctx, h, s)
}

func (o oldTable) Set(ctx context.Context, h, s, v []byte) (err error) {
	defer catch(&err)
	return o.tb.Set(ctx, h, s, v)
}

func (o oldTable) Incr(context.Context, []byte, []byte, int64) (int64, error) {
	return 0, fmt.Errorf("the 2018 client has no incr")
}

func (o oldTable) CheckAndSet(ctx context.Context, h, s, expect, v []byte) (ok bool, err error) {
	defer catch(&err)
	res, err := o.tb.CheckAndSet(ctx, h, s, pegasus.CheckTypeBytesEqual, expect, s, v, &pegasus.CheckAndSetOptions{})
	return err == nil && res.SetSucceed, err
}

// drawNoIncr draws the operations of linearize.RandomOp but incr, which the 2018 client lacks.
func drawNoIncr(rng *rand.Rand, keys []string) linearize.Input {
	for {
		if in := linearize.RandomOp(rng, keys); in.Op != "incr" {
			return in
		}
	}
}

// elasticKind names the kind of a 2018 client's error during a split, as README.md's
// "Partition split" lists them: "" for a kind it does not list.
func elasticKind(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "panic in the client"):
		return "panic"
	case strings.Contains(s, "does not belong to DsnErrCode values"):
		return "undecodable error name"
	case strings.Contains(s, "use of closed network connection"), strings.Contains(s, "connection is not ready"):
		return "connection closed"
	}
	return ""
}

// errorSummary counts errs by kind, with the first and the last of each (since the load's
// start), and returns up to 5 messages of errors of no known kind.
func errorSummary(errs []testcluster.LoadError) (map[string]int, string, []string) {
	type span struct {
		n           int
		first, last time.Duration
	}
	kinds := map[string]*span{}
	var unknown []string
	for _, e := range errs {
		k := elasticKind(e.Err)
		if k == "" && len(unknown) < 5 {
			unknown = append(unknown, e.Error())
		}
		sp := kinds[k]
		if sp == nil {
			sp = &span{first: e.At}
			kinds[k] = sp
		}
		sp.n++
		sp.last = e.At
	}
	counts := map[string]int{}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		sp := kinds[k]
		counts[k] = sp.n
		fmt.Fprintf(&b, "%s: %d (%v to %v); ", k, sp.n, sp.first.Round(time.Millisecond), sp.last.Round(time.Millisecond))
	}
	return counts, b.String(), unknown
}

// TestSplitSeenByClient splits a table from 4 to 8 partitions under a load of the 2018 client
// (testcluster.Load: two writers of fresh keys, a reader, three clients of gets, sets and
// check-and-sets on three checked keys; each call with a 2 s timeout) on a cluster with a
// deployment's timing, and checks that no error reaches the application. That client
// predates split (README.md, "Partition split"): it cannot decode ERR_SPLITTING, and a
// routing table with unregistered children makes it panic; it is spared both because a
// parent sends the keys of its child's half on to the child instead of refusing them, so
// the client never refreshes and keeps sending every key to the parents. After the split
// the table opened before it serves every key (through the parents), and still does once
// an error made it refresh (every child registered by then); every acknowledged write is
// there and the checked keys' history is linearizable.
func TestSplitSeenByClient(t *testing.T) {
	logTo(t)
	c := testcluster.Start(t, testcluster.Options{Replicas: 3,
		SyncInterval: replica.DefaultSyncInterval, TickInterval: replica.DefaultTickInterval})
	c.CreateTableReplicas(t, "split", 4, 3)
	tb := openTable(t, c, "split")
	l := testcluster.StartLoad(t, oldTable{tb}, &testcluster.LoadOptions{KeepGoing: true, Draw: drawNoIncr, CallTimeout: 2 * time.Second})
	ad := admin.NewClient(admin.Config{MetaServers: c.MetaAddrs()})
	defer ad.Close()
	poll.Until(t, "the load under way", func() bool { return l.Acked() >= 200 })
	if errs := l.Errors(); len(errs) > 0 {
		t.Fatalf("errors before the split: %v", errs)
	}
	splitForwarded := func() (n int64) {
		for _, a := range c.ReplicaAddrs() {
			n += c.Replica(t, a).SplitForwardedRequests()
		}
		return n
	}
	start := time.Now()
	if err := ad.StartPartitionSplit(t.Context(), "split", 8); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := ad.WaitPartitionSplit(wctx, "split", nil); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	acked := l.Acked()
	poll.Until(t, "more writes after the split", func() bool { return l.Acked() >= acked+200 })
	l.Stop()
	counts, sum, _ := errorSummary(l.Errors())
	t.Logf("split 4 -> 8 in %v under the 2018 client's load; %d requests sent on to a child; errors by kind (since the load started): %s",
		took.Round(time.Millisecond), splitForwarded(), sum)
	if len(counts) > 0 {
		t.Errorf("the split handed the 2018 client's application errors: %s", sum)
	}
	if splitForwarded() == 0 {
		t.Error("no request was sent on to a child: the client's routing was not the parents'")
	}

	// The table opened before the split serves every key, through the parents.
	every := func() error {
		for i := range 200 {
			k := fmt.Sprintf("k%04d", i)
			if _, err := (oldTable{tb}).Get(t.Context(), []byte(k), linearize.SortKey); err != nil {
				return fmt.Errorf("get %s: %w", k, err)
			}
		}
		return nil
	}
	if err := every(); err != nil {
		t.Fatalf("after the split: %v", err)
	}
	// An error (an int check of a value that is no number answers InvalidArgument) makes the
	// client refresh its routing: the children are registered, and it serves every key from
	// them.
	h := []byte("refresh")
	if err := tb.Set(t.Context(), h, linearize.SortKey, []byte("not a number")); err != nil {
		t.Fatal(err)
	}
	_, err := tb.CheckAndSet(t.Context(), h, linearize.SortKey, pegasus.CheckTypeIntEqual, []byte("1"),
		linearize.SortKey, []byte("2"), &pegasus.CheckAndSetOptions{})
	if err == nil {
		t.Fatal("an int check of a value that is no number succeeded")
	}
	// Its refresh replaces its connections, failing the calls on the old ones for a moment
	// (as after any refresh of that client).
	poll.Until(t, "every key served after a refresh", func() bool { return every() == nil })
	l.Check(oldTable{openTable(t, c, "split")})
}

// TestRebalanceSeenByClient grows a lively cluster from 3 to 5 replica servers until it is
// balanced, under the same load of the 2018 client: no error reaches the application. The
// client never refreshes its routing here (it does so only after an error): the servers it
// knows forward the requests of the partitions whose primary moved, and a replica moved off
// a server leaves it only once the partition's new replicas serve. Every acknowledged write
// is read back and the checked keys' history is linearizable.
func TestRebalanceSeenByClient(t *testing.T) {
	logTo(t)
	c := testcluster.Start(t, testcluster.Options{Replicas: 3,
		SyncInterval: replica.DefaultSyncInterval, TickInterval: replica.DefaultTickInterval,
		Meta: func(mc *meta.Config) { mc.LevelOnStart = "lively" }})
	c.CreateTableReplicas(t, "grow", 8, 3)
	tb := openTable(t, c, "grow")
	l := testcluster.StartLoad(t, oldTable{tb}, &testcluster.LoadOptions{Draw: drawNoIncr, CallTimeout: 2 * time.Second})
	poll.Until(t, "the load under way", func() bool { return l.Acked() >= 200 })
	start := time.Now()
	c.AddReplica(t)
	c.AddReplica(t)
	c.WaitAlive(t, 5)
	replicas, primaries := c.WaitBalanced(t, 4*time.Minute, "grow")
	t.Logf("3 -> 5 servers balanced in %v under the 2018 client's load: replicas %v, primaries %v",
		time.Since(start).Round(time.Millisecond), replicas, primaries)
	l.Check(nil)
}

// TestSplitPausedSeenByNewClient opens the 2018 client's table while a split is paused, so
// the configuration it routes by lists the unregistered children (ballot -1). The meta
// lists each of them, to such a client, with its parent's primary, and the parent's server
// serves the requests addressed to the child (its keys are still the parent's): every key
// written before is read and new keys are written without an error or a panic in the
// client. Without that, the client panics on every key of a child. After the split
// completes, a client opened then reads every key from the children.
func TestSplitPausedSeenByNewClient(t *testing.T) {
	logTo(t)
	c := testcluster.Start(t, testcluster.Options{Replicas: 3})
	c.CreateTableReplicas(t, "paused", 4, 3)
	before := oldTable{openTable(t, c, "paused")}
	const n = 200
	for i := range n {
		if err := before.Set(t.Context(), fmt.Appendf(nil, "k%04d", i), linearize.SortKey, fmt.Append(nil, i)); err != nil {
			t.Fatal(err)
		}
	}
	ad := admin.NewClient(admin.Config{MetaServers: c.MetaAddrs()})
	defer ad.Close()
	if err := ad.StartPartitionSplit(t.Context(), "paused", 8); err != nil {
		t.Fatal(err)
	}
	if err := ad.PausePartitionSplit(t.Context(), "paused", -1); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "every parent paused", func() bool {
		st, err := ad.QueryPartitionSplit(t.Context(), "paused")
		if err != nil {
			t.Fatal(err)
		}
		for p := range int32(4) {
			if st.Parents[p] != "PAUSED" {
				return false
			}
		}
		return true
	})
	atAncestor := func() (sum int64) {
		for _, a := range c.ReplicaAddrs() {
			sum += c.Replica(t, a).SplitChildRequestsAtAncestor()
		}
		return sum
	}
	during := oldTable{openTable(t, c, "paused")}
	check := func(tb oldTable, when string, keys int) {
		t.Helper()
		for i := range keys {
			k := fmt.Appendf(nil, "k%04d", i)
			if v, err := tb.Get(t.Context(), k, linearize.SortKey); err != nil || string(v) != fmt.Sprint(i) {
				t.Fatalf("%s: get %s: %q, %v", when, k, v, err)
			}
		}
	}
	check(during, "opened while paused", n)
	for i := n; i < 2*n; i++ {
		if err := during.Set(t.Context(), fmt.Appendf(nil, "k%04d", i), linearize.SortKey, fmt.Append(nil, i)); err != nil {
			t.Fatalf("opened while paused: set k%04d: %v", i, err)
		}
	}
	check(during, "opened while paused, its own writes", 2*n)
	if atAncestor() == 0 {
		t.Fatal("no request addressed to a child was served by its parent: the client did not route to the children")
	}
	t.Logf("%d requests addressed to an unregistered child served by its parent", atAncestor())

	if err := ad.RestartPartitionSplit(t.Context(), "paused", -1); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := ad.WaitPartitionSplit(wctx, "paused", nil); err != nil {
		t.Fatal(err)
	}
	check(oldTable{openTable(t, c, "paused")}, "opened after the split", 2*n)
}
