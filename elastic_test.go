package pegasus_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pegasus "github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/linearize"
	"github.com/gopegasus/pegasus/internal/meta"
	"github.com/gopegasus/pegasus/internal/poll"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// A table whose partition count is not a power of two (Apache Pegasus's meta accepts it, and
// so does ours) with replica.split.validate_partition_hash set: the replicas' scan check and
// the client's routing agree, so a full scan returns every record once.
func TestIntegrationFullScanSixPartitionsValidatingHash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Replicas: 3})
	c.CreateTable(t, "six", 6)
	adm := newAdmin(t, c)
	must(t, adm.SetAppEnvs(t.Context(), "six", map[string]string{"replica.split.validate_partition_hash": "true"}))
	cl, err := pegasus.New(pegasus.Config{MetaServers: c.MetaAddrs()})
	must(t, err)
	defer cl.Close()
	tb, err := cl.OpenTable(t.Context(), "six")
	must(t, err)
	const n = 600
	for i := range n {
		must(t, tb.Set(t.Context(), b(fmt.Sprintf("k%d", i)), b("s"), b("v")))
	}
	// The replicas take the env at their next report to the meta: a scan before that would
	// pass without the check it is meant to exercise.
	c.WaitEnv(t, "six", "replica.split.validate_partition_hash", "true")
	scs, err := tb.GetUnorderedScanners(t.Context(), 6, nil)
	must(t, err)
	seen := scanOnce(t, scs)
	if len(seen) != n {
		t.Fatalf("full scan returned %d records, want %d", len(seen), n)
	}
}

// A dropped table is kept until it expires: recalled before, it serves every record again,
// under its app id and a new name, and the recall answers once every partition is led by
// its intended primary (no leadership change follows); once expired it cannot be recalled (ERR_APP_NOT_EXIST),
// and every replica server has deleted its data. A load (testcluster.Load) runs on the table
// until its first drop and is checked through the table recalled under its new name: every
// acknowledged write is there, and the checked keys' history, with reads after the recall, is
// linearizable; another load runs on another table throughout, with no error.
func TestIntegrationRecallThenExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Replicas: 3,
		Replica: func(rc *replica.Config) { rc.TickInterval = 100 * time.Millisecond }})
	id := c.CreateTableReplicas(t, "gone", 4, 3)
	c.CreateTableReplicas(t, "busy", 4, 3)
	busy := c.StartLoad(t, "busy", nil)
	cl, err := pegasus.New(pegasus.Config{MetaServers: c.MetaAddrs()})
	must(t, err)
	defer cl.Close()
	tb, err := cl.OpenTable(t.Context(), "gone")
	must(t, err)
	const n = 200
	for i := range n {
		must(t, tb.Set(t.Context(), b(fmt.Sprintf("k%d", i)), b("s"), b(fmt.Sprint(i))))
	}
	gone := testcluster.StartLoad(t, linearize.Ours(tb), &testcluster.LoadOptions{Prefix: "load-"})
	poll.Until(t, "the load's history before the drop", func() bool { return gone.Acked() >= 300 })
	gone.Stop()
	adm := newAdmin(t, c)
	must(t, adm.DropTable(t.Context(), "gone", 3600))
	if _, err := adm.RecallTable(t.Context(), id, ""); err != nil {
		t.Fatalf("recall under its own name: %v", err)
	}
	noMovesPending(t, adm, "after the first recall")
	must(t, adm.DropTable(t.Context(), "gone", 3600))
	// Every replica stops and keeps its data: 4 partitions × 3 replicas.
	poll.Until(t, "the dropped table's replicas stopped with their data", func() bool {
		return len(partitionDirs(t, c, id, "dropped")) == 12
	})
	all, err := adm.ListAllTables(t.Context())
	must(t, err)
	all = slices.DeleteFunc(all, func(ti *admin.TableInfo) bool { return ti.AppID != id })
	if len(all) != 1 || all[0].Status != "AS_DROPPED" || all[0].ExpireTime.Sub(all[0].DropTime) != time.Hour {
		t.Fatalf("ls -a: %+v", all)
	}
	info, err := adm.RecallTable(t.Context(), id, "back")
	must(t, err)
	if info.AppID != id || info.Name != "back" || info.Status != "AS_AVAILABLE" {
		t.Fatalf("recalled: %+v", info)
	}
	noMovesPending(t, adm, "after the second recall")
	back, err := cl.OpenTable(t.Context(), "back")
	must(t, err)
	for i := range n {
		v, err := back.Get(t.Context(), b(fmt.Sprintf("k%d", i)), b("s"))
		if err != nil || string(v) != fmt.Sprint(i) {
			t.Fatalf("k%d after the recall: %q %v", i, v, err)
		}
	}
	gone.Check(linearize.Ours(back))

	// Dropped for a second: it expires, and its data goes.
	must(t, adm.DropTable(t.Context(), "back", 1))
	poll.Until(t, "the dropped table purged", func() bool {
		all, err := adm.ListAllTables(t.Context())
		must(t, err)
		return !slices.ContainsFunc(all, func(ti *admin.TableInfo) bool { return ti.AppID == id })
	})
	if _, err := adm.RecallTable(t.Context(), id, ""); !errors.Is(err, pegasus.ErrAppNotExist) {
		t.Fatalf("recall of an expired table: %v", err)
	}
	poll.Until(t, "the expired table's data deleted", func() bool { return len(partitionDirs(t, c, id, "")) == 0 })
	busy.Check(nil)
}

// A recall answers once every partition is led by its intended primary, not as soon as
// every partition has some primary: with one replica server down during the recall, the
// table becomes available (two replicas of three elect a leader) but the recall does not
// answer until that server is back and leads the partitions placed first on it.
func TestIntegrationRecallWaitsForIntendedPrimaries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	// The recall's wait for its intended primaries is bounded by the create wait and half
	// the call's timeout: both long here, so that it cannot run out on a loaded machine
	// before the stopped server is back.
	c := testcluster.Start(t, testcluster.Options{Replicas: 3,
		Meta:    func(mc *meta.Config) { mc.CreateWait = new(2 * time.Minute) },
		Replica: func(rc *replica.Config) { rc.TickInterval = 100 * time.Millisecond }})
	id := c.CreateTableReplicas(t, "gone", 4, 3)
	tb := c.OpenTable(t, "gone")
	setAll(t, tb, 100)
	adm, err := admin.New(admin.Config{MetaServers: c.MetaAddrs(), Timeout: 2 * time.Minute})
	must(t, err)
	defer adm.Close()
	must(t, adm.DropTable(t.Context(), "gone", 3600))
	poll.Until(t, "the dropped table's replicas stopped", func() bool {
		return len(partitionDirs(t, c, id, "dropped")) == 12
	})
	down := c.ReplicaAddrs()[0]
	c.StopReplica(t, down)
	done := make(chan error, 1)
	go func() {
		_, err := adm.RecallTable(t.Context(), id, "")
		done <- err
	}()
	poll.Until(t, "the recalled table available without "+down, func() bool {
		all, err := adm.ListAllTables(t.Context())
		must(t, err)
		return slices.ContainsFunc(all, func(ti *admin.TableInfo) bool { return ti.AppID == id && ti.Status == "AS_AVAILABLE" })
	})
	select {
	case err := <-done:
		t.Fatalf("the recall answered (%v) while %s, the intended primary of some partitions, was down", err, down)
	default:
	}
	c.StartReplica(t, down)
	must(t, <-done)
	noMovesPending(t, adm, "right after the recall")
	for i := range 100 {
		k := fmt.Sprintf("k%04d", i)
		if v, err := tb.Get(t.Context(), b(k), b("s")); err != nil || string(v) != fmt.Sprint(i) {
			t.Fatalf("%s after the recall: %q %v", k, v, err)
		}
	}
}

// noMovesPending fails the test unless the meta counts no balancer move under way: every
// partition led by its intended primary, the placement's first member, with all its
// secondaries. Right after a recall that says the recall waited for them.
func noMovesPending(t *testing.T, adm admin.Client, when string) {
	t.Helper()
	info, err := adm.ClusterInfo(t.Context())
	must(t, err)
	for _, it := range info {
		if it.Key == "balance_operation_count" {
			if it.Value != "move_pri=0,copy_pri=0,copy_sec=0,total=0" {
				t.Fatalf("%s: moves under way %s", when, it.Value)
			}
			return
		}
	}
	t.Fatalf("%s: no balance_operation_count in %v", when, info)
}

// partitionDirs lists the partition directories of table id on every replica server that
// hold the file name (any, when name is empty).
func partitionDirs(t *testing.T, c *testcluster.Cluster, id int32, name string) []string {
	t.Helper()
	var out []string
	for _, addr := range c.ReplicaAddrs() {
		dir := c.ReplicaDir(t, addr)
		ents, err := os.ReadDir(dir)
		must(t, err)
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), fmt.Sprintf("%d.", id)) {
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, e.Name(), name)); err == nil {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	return out
}

// A table of 4 partitions is split to 8 while a full scan is half done, under a load
// (testcluster.Load, its keys prefixed "load-"): the scan returns every record once, every
// record is read back from its new partition, the load sees no error and its checked keys'
// history is linearizable, and the parents' copies of their children's halves are deleted.
func TestIntegrationSplitFollowedByClientAndScan(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Replicas: 3,
		Replica: func(rc *replica.Config) { rc.TickInterval = 100 * time.Millisecond }})
	c.CreateTableReplicas(t, "grow", 4, 3)
	cl, err := pegasus.New(pegasus.Config{MetaServers: c.MetaAddrs()})
	must(t, err)
	defer cl.Close()
	tb, err := cl.OpenTable(t.Context(), "grow")
	must(t, err)
	const n = 1000
	setAll(t, tb, n)
	l := testcluster.StartLoad(t, linearize.Ours(tb), &testcluster.LoadOptions{Prefix: "load-"})
	opts := pegasus.NewScanOptions()
	opts.BatchSize = 50
	scs, err := tb.GetUnorderedScanners(t.Context(), 2, opts)
	must(t, err)
	seen := map[string]int{} // hash key → times returned, the load's keys left out
	var loadSeen map[string]string
	next := func(sc pegasus.Scanner) bool {
		done, hk, _, v, err := sc.Next(t.Context())
		must(t, err)
		switch {
		case done:
		case strings.HasPrefix(string(hk), "load-"):
			if loadSeen != nil {
				loadSeen[string(hk)] = string(v)
			}
		default:
			seen[string(hk)]++
		}
		return !done
	}
	for range 100 { // a part of the first scanner's first partition
		next(scs[0])
	}
	adm := newAdmin(t, c)
	must(t, adm.StartPartitionSplit(t.Context(), "grow", 8))
	if err := adm.StartPartitionSplit(t.Context(), "grow", 16); !errors.Is(err, pegasus.ErrBusy) {
		t.Fatalf("second split: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	must(t, adm.WaitPartitionSplit(ctx, "grow", nil))
	cfg, err := adm.QueryConfig(t.Context(), "grow")
	must(t, err)
	if cfg.PartitionCount != 8 {
		t.Fatalf("%d partitions after the split", cfg.PartitionCount)
	}
	for _, sc := range scs {
		for next(sc) {
		}
	}
	for i := range n {
		k := fmt.Sprintf("k%04d", i)
		if seen[k] != 1 {
			t.Fatalf("%s returned %d times by the scan across the split", k, seen[k])
		}
		v, err := tb.Get(t.Context(), b(k), b("s"))
		if err != nil || string(v) != fmt.Sprint(i) {
			t.Fatalf("%s after the split: %q %v", k, v, err)
		}
	}
	l.Check(nil)
	// A new full scan sees 8 partitions and every record once.
	scs, err = tb.GetUnorderedScanners(t.Context(), 8, nil)
	must(t, err)
	if len(scs) != 8 {
		t.Fatalf("%d scanners after the split", len(scs))
	}
	clear(seen)
	loadSeen = map[string]string{}
	for _, sc := range scs {
		for next(sc) {
		}
	}
	if len(seen) != n {
		t.Fatalf("full scan after the split: %d records", len(seen))
	}
	if want := l.Want(); !maps.Equal(loadSeen, want) {
		t.Fatalf("full scan after the split: %d records of the load, want %d", len(loadSeen), len(want))
	}
	c.WaitSplitPurged(t, "grow")
}

// setAll writes k0000 ... k<n-1> (sort key s, value the number), 8 writers at once.
func setAll(t *testing.T, tb pegasus.TableConnector, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if err := tb.Set(t.Context(), b(fmt.Sprintf("k%04d", i)), b("s"), b(fmt.Sprint(i))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// A table of 4 partitions splits to 8, then to 16, under a load of writers, a reader and
// clients of random operations on a few keys (testcluster.Load): no error reaches them, every
// acknowledged write is read back (from the partition its key maps to now: the parents refuse
// the children's halves), the checked keys' history is linearizable, a full scan returns
// every record once, every server leads within one of the mean of the 16 partitions, and
// every replica deletes the records its partition no longer owns.
func TestIntegrationSplitUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	// The servers' default raft tick (the tests' 20 ms one makes elections churn on a loaded
	// machine, and a write in flight when its primary steps down has an unknown outcome,
	// ERR_TIMEOUT, which the client does not resend).
	c := testcluster.Start(t, testcluster.Options{Replicas: 3,
		Replica: func(rc *replica.Config) { rc.TickInterval = 100 * time.Millisecond }})
	c.CreateTableReplicas(t, "load", 4, 3)
	l := c.StartLoad(t, "load", &testcluster.LoadOptions{Preload: 400, Writers: 3})

	adm := newAdmin(t, c)
	for _, count := range []int{8, 16} {
		start, acked := time.Now(), l.Acked()
		must(t, adm.StartPartitionSplit(t.Context(), "load", count))
		wctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		must(t, adm.WaitPartitionSplit(wctx, "load", nil))
		cancel()
		t.Logf("split to %d partitions in %v, %d fresh writes acknowledged meanwhile", count, time.Since(start).Round(time.Millisecond), l.Acked()-acked)
		noMovesPending(t, adm, fmt.Sprintf("right after the split to %d", count))
		cfg, err := adm.QueryConfig(t.Context(), "load")
		must(t, err)
		if int(cfg.PartitionCount) != count {
			t.Fatalf("%d partitions after the split to %d", cfg.PartitionCount, count)
		}
	}
	l.Check(nil)
	// The children's primaries spread: every server leads within one of the mean.
	_, primaries := c.WaitBalanced(t, time.Minute, "load")
	t.Logf("primaries after the splits: %v", primaries)

	tb := c.OpenTable(t, "load")
	want := l.Want()
	scs, err := tb.GetUnorderedScanners(t.Context(), 16, nil)
	must(t, err)
	seen := scanOnce(t, scs)
	for k, v := range want {
		if !seen[k+"/s="+v] {
			t.Fatalf("the scan after the splits did not return %s=%s", k, v)
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("full scan after the splits: %d records, want %d", len(seen), len(want))
	}
	c.WaitSplitPurged(t, "load")
}

// A split paused right after its start (the replicas learn of it at their next report, a
// second later) keeps the table serving from the parents, the children unregistered (ballot
// -1) until it is restarted and finishes; a split cancelled right after its start brings the
// partition count back, and nothing is lost either way. A load (testcluster.Load, its keys
// prefixed "load-") runs throughout: no error reaches it, and its checked keys' history is
// linearizable.
func TestIntegrationSplitPauseRestartCancel(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := testcluster.Start(t, testcluster.Options{Replicas: 3, Replica: func(rc *replica.Config) {
		rc.SyncInterval, rc.TickInterval = time.Second, 100*time.Millisecond
	}})
	c.CreateTableReplicas(t, "ctl", 4, 3)
	cl, err := pegasus.New(pegasus.Config{MetaServers: c.MetaAddrs()})
	must(t, err)
	defer cl.Close()
	tb, err := cl.OpenTable(t.Context(), "ctl")
	must(t, err)
	const n = 300
	setAll(t, tb, n)
	l := c.StartLoad(t, "ctl", &testcluster.LoadOptions{Prefix: "load-"})
	readAll := func(when string) {
		t.Helper()
		for i := range n {
			k := fmt.Sprintf("k%04d", i)
			if v, err := tb.Get(t.Context(), b(k), b("s")); err != nil || string(v) != fmt.Sprint(i) {
				t.Fatalf("%s %s: %q %v", when, k, v, err)
			}
		}
	}
	adm := newAdmin(t, c)
	statuses := func() map[int32]string {
		st, err := adm.QueryPartitionSplit(t.Context(), "ctl")
		must(t, err)
		return st.Parents
	}

	must(t, adm.StartPartitionSplit(t.Context(), "ctl", 8))
	must(t, adm.PausePartitionSplit(t.Context(), "ctl", -1))
	poll.Until(t, "every parent paused", func() bool {
		st := statuses()
		for p := range int32(4) {
			if st[p] != "SPLITTING" && st[p] != "PAUSING" && st[p] != "PAUSED" {
				t.Fatalf("parent %d: %q", p, st[p])
			}
			if st[p] != "PAUSED" {
				return false
			}
		}
		return true
	})
	cfg, err := adm.QueryConfig(t.Context(), "ctl")
	must(t, err)
	if cfg.PartitionCount != 8 {
		t.Fatalf("paused: %d partitions", cfg.PartitionCount)
	}
	for _, p := range cfg.Partitions[4:] {
		if p.Ballot != -1 {
			t.Fatalf("paused: child %d has ballot %d", p.Index, p.Ballot)
		}
	}
	must(t, tb.Set(t.Context(), b("paused"), b("s"), b("v")))
	readAll("while paused")

	must(t, adm.RestartPartitionSplit(t.Context(), "ctl", -1))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	must(t, adm.WaitPartitionSplit(ctx, "ctl", nil))
	cfg, err = adm.QueryConfig(t.Context(), "ctl")
	must(t, err)
	for _, p := range cfg.Partitions {
		if p.Ballot < 1 {
			t.Fatalf("after the restarted split: partition %d has ballot %d", p.Index, p.Ballot)
		}
	}
	readAll("after the restarted split")

	must(t, adm.StartPartitionSplit(t.Context(), "ctl", 16))
	if err := adm.CancelPartitionSplit(t.Context(), "ctl", 16); !errors.Is(err, pegasus.ErrInvalidParameters) {
		t.Fatalf("cancel with the new count: %v", err)
	}
	must(t, adm.CancelPartitionSplit(t.Context(), "ctl", 8))
	must(t, adm.WaitPartitionSplit(ctx, "ctl", nil))
	cfg, err = adm.QueryConfig(t.Context(), "ctl")
	must(t, err)
	if cfg.PartitionCount != 8 || len(cfg.Partitions) != 8 {
		t.Fatalf("after the cancel: %d partitions", cfg.PartitionCount)
	}
	must(t, tb.Set(t.Context(), b("cancelled"), b("s"), b("v")))
	readAll("after the cancel")
	l.Check(nil)
	scs, err := tb.GetUnorderedScanners(t.Context(), 8, nil)
	must(t, err)
	seen := scanOnce(t, scs)
	want := l.Want()
	for k, v := range want {
		if !seen[k+"/s="+v] {
			t.Fatalf("the scan after the cancel did not return the load's %s=%s", k, v)
		}
	}
	if len(seen) != n+2+len(want) {
		t.Fatalf("full scan after the cancel: %d records, want %d", len(seen), n+2+len(want))
	}
	c.WaitSplitPurged(t, "ctl")
}

// scanOnce runs the scanners to their ends and returns the records they returned
// ("hash/sort=value"), failing the test if one came twice.
func scanOnce(t *testing.T, scs []pegasus.Scanner) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for _, sc := range scs {
		for _, r := range scanAll(t, sc) {
			if seen[r] {
				t.Fatalf("%s returned twice", r)
			}
			seen[r] = true
		}
	}
	return seen
}
