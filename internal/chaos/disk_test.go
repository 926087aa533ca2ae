package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/diskfault"
	"github.com/gopegasus/pegasus/internal/linearize"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/testcluster"
	"github.com/gopegasus/pegasus/internal/wire"
)

// Disk faults, in-process: every replica server writes its raft log and its stores through
// a diskfault.Injector the test controls (replica.Config.Faults). As runChaos: 8 clients of
// our client (and 2 that only read) work on 10 keys (a fresh set every 15 s) of a table of 4 partitions with 3
// replicas, with a deployment's timing (1 s reports, 100 ms raft ticks); every 2 s a fault
// strikes for 1.5 to 4 s; the history must be linearizable, the final reads (part of it)
// find every acknowledged write, and a write must succeed within 10 s of each fault's end.

// diskRun is a disk chaos run: the cluster, the disks of its replica servers by data
// directory, and what the clients saw.
type diskRun struct {
	t     *testing.T
	c     *testcluster.Cluster
	mu    sync.Mutex
	disks map[string]*diskfault.Injector

	faulting     atomic.Bool  // a fault is on
	readsInFault atomic.Int64 // reads answered while a fault was on
	readsFailed  atomic.Int64 // reads that failed while a fault was on
	refused      atomic.Int64 // writes answered ERR_DISK_INSUFFICIENT
}

func startDiskRun(t *testing.T) *diskRun {
	d := &diskRun{t: t, disks: map[string]*diskfault.Injector{}}
	d.c = testcluster.Start(t, testcluster.Options{Metas: 1, Replicas: 3, DiskFaults: true,
		SyncInterval: replica.DefaultSyncInterval, TickInterval: replica.DefaultTickInterval,
		Replica: func(cfg *replica.Config) { cfg.Faults = d.diskOfDir(cfg.DataDir) }})
	return d
}

func (d *diskRun) diskOfDir(dir string) *diskfault.Injector {
	d.mu.Lock()
	defer d.mu.Unlock()
	in := d.disks[dir]
	if in == nil {
		in = diskfault.New()
		d.disks[dir] = in
	}
	return in
}

// disk returns the disk of the replica server at addr.
func (d *diskRun) disk(addr string) *diskfault.Injector {
	return d.diskOfDir(d.c.ReplicaDir(d.t, addr))
}

// run drives the clients while fault strikes, as strike does, then checks the history, and
// returns the faults struck and the worst recovery.
func (d *diskRun) run(what string, fault func(rng *rand.Rand) string) (int, time.Duration) {
	t := d.t
	d.c.CreateTableReplicas(t, "disk", 4, 3)
	tb := linearize.Ours(d.c.OpenTable(t, "disk"))
	// As runChaos: 10 keys, a fresh set every diskKeyEpoch, so that the checker gets more
	// keys rather than longer histories of each (faults that leave writes pending for
	// seconds make a key's history hard to check).
	duration := chaosDuration()
	sets := make([][]string, max(int((duration+diskKeyEpoch-1)/diskKeyEpoch), 1))
	var keys []string
	for e := range sets {
		for i := range 10 {
			sets[e] = append(sets[e], fmt.Sprintf("e%d-k%d", e, i))
		}
		keys = append(keys, sets[e]...)
	}
	// An incr or check-and-set refused with ERR_DISK_INSUFFICIENT had no effect: the server
	// refuses it before it reaches the raft log, and our client repeats such a write only
	// after answers that say the attempt did nothing, so it is left out of the history (a
	// refused set is not: the client repeats sets after attempts that may have applied them).
	rec := linearize.NewRecorder()
	rec.Refused = func(in linearize.Input, err error) bool {
		return (in.Op == "incr" || in.Op == "cas") && errors.Is(err, wire.ErrDiskInsufficient)
	}
	ctx, cancel := context.WithTimeout(t.Context(), duration)
	defer cancel()
	var lastWriteOK atomic.Int64
	var wg sync.WaitGroup
	for cl := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(cl), 17))
			for ctx.Err() == nil {
				in := linearize.RandomOp(rng, sets[min(int(time.Duration(rec.Now())/diskKeyEpoch), len(sets)-1)])
				err := rec.Run(context.WithoutCancel(ctx), tb, cl, in)
				switch {
				case err == nil && in.Op != "get":
					lastWriteOK.Store(rec.Now())
				case err == nil && d.faulting.Load():
					d.readsInFault.Add(1)
				case errors.Is(err, wire.ErrDiskInsufficient):
					d.refused.Add(1)
					time.Sleep(100 * time.Millisecond) // as an application would
				case err != nil && in.Op == "get" && d.faulting.Load():
					d.readsFailed.Add(1)
				}
			}
		})
	}
	// Two readers more, which a write stalled by a fault does not hold up.
	for cl := 8; cl < 10; cl++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(cl), 17))
			for ctx.Err() == nil {
				set := sets[min(int(time.Duration(rec.Now())/diskKeyEpoch), len(sets)-1)]
				err := rec.Run(context.WithoutCancel(ctx), tb, cl, linearize.Input{Op: "get", Key: set[rng.IntN(len(set))]})
				switch {
				case err == nil && d.faulting.Load():
					d.readsInFault.Add(1)
				case err != nil && d.faulting.Load():
					d.readsFailed.Add(1)
				}
				time.Sleep(10 * time.Millisecond) // a history the checker can take
			}
		})
	}
	rng := rand.New(rand.NewPCG(7, 7))
	faults, worst := strike(ctx, t, rec, &lastWriteOK, what, func() string {
		d.faulting.Store(true)
		defer d.faulting.Store(false)
		return fault(rng)
	})
	wg.Wait()
	finalReads(t, rec, tb, keys, nil)
	res := checkHistory(t, rec, keys)
	t.Logf("%s: %v, %d faults, %d operations acknowledged, %d failed or timed out, %d reads answered and %d failed during faults, %d writes refused with ERR_DISK_INSUFFICIENT, worst write recovery after a fault ended %v, result %s",
		what, chaosDuration(), faults, rec.Acked(), rec.Failed(), d.readsInFault.Load(), d.readsFailed.Load(), d.refused.Load(), worst, res)
	if res != "Ok" {
		t.Fatalf("linearizability check: %s", res)
	}
	if faults == 0 || rec.Acked() == 0 {
		t.Fatalf("nothing exercised: %d faults, %d acknowledged", faults, rec.Acked())
	}
	return faults, worst
}

// diskKeyEpoch is how long the clients of a disk run use one set of keys.
const diskKeyEpoch = 15 * time.Second

// faultLength is how long one disk fault lasts: 1.5 to 4 s.
func faultLength(rng *rand.Rand) time.Duration {
	return time.Duration(1500+rng.IntN(2500)) * time.Millisecond
}

// Slow disks: a replica server's fsyncs (raft log and stores) each take 20 to 300 ms more
// for the fault's length. Nothing may be lost or reordered; writes slow down meanwhile.
func TestChaosSlowDisk(t *testing.T) {
	d := startDiskRun(t)
	addrs := d.c.ReplicaAddrs()
	var delayed atomic.Int64
	d.run("slow fsyncs", func(rng *rand.Rand) string {
		victim := addrs[rng.IntN(len(addrs))]
		in := d.disk(victim)
		before := in.Counts().Syncs
		in.Set(diskfault.Fault{SyncDelay: time.Duration(20+rng.IntN(280)) * time.Millisecond})
		time.Sleep(faultLength(rng))
		in.Set(diskfault.Fault{})
		delayed.Add(in.Counts().Syncs - before)
		return victim
	})
	t.Logf("fsyncs delayed: %d", delayed.Load())
	if delayed.Load() == 0 {
		t.Fatal("no fsync was delayed")
	}
}

// Failing fsyncs: a replica server's raft log fsyncs fail with EIO (the injector drops what
// each failed fsync should have made durable, as the kernel may) for the fault's length.
// The server must acknowledge nothing of the failed rounds and stop itself (fail-stop); at
// the fault's end it is restarted, as its supervisor would, and recovers from its disk.
func TestChaosFsyncFailure(t *testing.T) {
	d := startDiskRun(t)
	addrs := d.c.ReplicaAddrs()
	var stops, restartNs atomic.Int64
	d.run("failing fsyncs", func(rng *rand.Rand) string {
		victim := addrs[rng.IntN(len(addrs))]
		srv := d.c.Replica(t, victim)
		in := d.disk(victim)
		in.Set(diskfault.Fault{FailSyncs: true})
		time.Sleep(faultLength(rng))
		in.Set(diskfault.Fault{})
		if srv.DiskHealth().Failed == nil {
			return victim // it made no fsync meanwhile
		}
		stops.Add(1)
		start := time.Now()
		d.c.StopReplica(t, victim) // joins the stopped server
		d.c.StartReplica(t, victim)
		restartNs.Add(int64(time.Since(start)))
		return victim
	})
	t.Logf("servers stopped by a failed fsync and restarted: %d (restart took %v on average)",
		stops.Load(), time.Duration(restartNs.Load()/max(1, stops.Load())))
	if stops.Load() == 0 {
		t.Fatal("no failed fsync stopped a server")
	}
}

// A full disk: for the fault's length writes fail with ENOSPC on one replica server or, one
// fault in two, on all three. The raft logs wait for space, acknowledging nothing they could
// not write; client writes are refused with ERR_DISK_INSUFFICIENT; reads are served; writes
// resume once space returns.
func TestChaosDiskFull(t *testing.T) {
	d := startDiskRun(t)
	addrs := d.c.ReplicaAddrs()
	var all atomic.Int64
	d.run("full disks", func(rng *rand.Rand) string {
		victims := addrs[rng.IntN(len(addrs)):][:1]
		if rng.IntN(2) == 0 {
			victims = addrs
			all.Add(1)
		}
		for _, v := range victims {
			d.disk(v).Set(diskfault.Fault{NoSpace: true})
		}
		time.Sleep(faultLength(rng))
		for _, v := range victims {
			d.disk(v).Set(diskfault.Fault{})
		}
		return fmt.Sprint(victims)
	})
	// The servers' count of refused writes: the clients see fewer, since ours sends a
	// refused set again until its deadline.
	var refused int64
	for _, addr := range addrs {
		refused += d.c.Replica(t, addr).DiskRefusals()
	}
	t.Logf("faults on all three disks: %d; writes the servers refused with ERR_DISK_INSUFFICIENT: %d", all.Load(), refused)
	if all.Load() > 0 && (refused == 0 || d.readsInFault.Load() == 0) {
		t.Fatalf("with every disk full: %d writes refused with ERR_DISK_INSUFFICIENT, %d reads answered; want both", refused, d.readsInFault.Load())
	}
}
