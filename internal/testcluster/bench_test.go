package testcluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/internal/idl"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/rpc"
	"github.com/gopegasus/pegasus/internal/wire"
)

// BenchmarkReplicatedWrites measures Set throughput and p99 latency through the Go client on
// a 3-server in-process cluster, for tables of 1 and 3 replicas and 1, 16 and 64 concurrent
// writers. It reports writes/s, p99 and how many client writes each raft-log fsync covered
// (group commit across clients and partitions): writes/fsync counts the fsyncs of all three
// servers against the client writes; replica-writes/fsync counts each client write once per
// replica, since every replica's log makes it durable with fsyncs of its own server. It
// measures once the primaries are spread evenly over the servers, as they are kept:
//
//	go test -run XXX -bench ReplicatedWrites -benchtime 8000x -count 3 ./internal/testcluster/
func BenchmarkReplicatedWrites(b *testing.B) {
	for _, replicas := range []int{1, 3} {
		for _, writers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("replicas=%d/writers=%d", replicas, writers), func(b *testing.B) {
				benchWrites(b, replicas, writers, nil)
			})
		}
		// The same load without the busy-log fsync spacing (raftlog.Options.Delay), side
		// by side: what the spacing costs or gains.
		b.Run(fmt.Sprintf("replicas=%d/writers=64/delay=off", replicas), func(b *testing.B) {
			benchWrites(b, replicas, 64, new(time.Duration(0)))
		})
	}
}

func benchWrites(b *testing.B, replicas, writers int, commitDelay *time.Duration) {
	c := Start(b, Options{Replicas: 3, CommitDelay: commitDelay})
	c.CreateTableReplicas(b, "bench", 8, replicas)
	c.WaitSpreadPrimaries(b, "bench")
	client, err := pegasus.New(pegasus.Config{MetaServers: c.MetaAddrs()})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	tb, err := client.OpenTable(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 1000)
	var next atomic.Int64
	lat := make([][]time.Duration, writers)
	syncs := c.RaftLogSyncs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				k := []byte(fmt.Sprintf("key%09d", i))
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := tb.Set(ctx, k, []byte("s"), value)
				cancel()
				if err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	syncs = c.RaftLogSyncs() - syncs
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "writes/s")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	if syncs > 0 {
		b.ReportMetric(float64(len(all))/float64(syncs), "writes/fsync")
		b.ReportMetric(float64(len(all)*replicas)/float64(syncs), "replica-writes/fsync")
		b.ReportMetric(float64(syncs)/elapsed.Seconds(), "fsyncs/s")
	}
}

// BenchmarkMetaLeaderWindow measures the window after a leadership change during which the
// meta leader still answers a configuration query with the old primary: on a cluster of 3
// metas and 3 replica servers with a deployment's timing (1 s reports, 100 ms raft ticks),
// idle but for the benchmark, each iteration hands one partition's leadership from its
// preferred primary to one of its secondaries and back (replica.Server.TransferLeader), and
// after each of the two transfers queries the meta leader until it names the new primary.
// The window is counted from the start of the transfer, so it includes the transfer itself
// (reported apart, as transfer-p50-ms); it reports the window's p50, p99 and maximum over
// the 2 windows of every iteration:
//
//	go test -run XXX -bench MetaLeaderWindow -benchtime 500x ./internal/testcluster/
func BenchmarkMetaLeaderWindow(b *testing.B) {
	c := Start(b, Options{Metas: 3, Replicas: 3, SyncInterval: replica.DefaultSyncInterval, TickInterval: replica.DefaultTickInterval})
	const partitions = 8
	appID := c.CreateTableReplicas(b, "window", partitions, 3)
	conn := rpc.NewConn(c.MetaLeader(b), rpc.ConnConfig{})
	defer conn.Close()
	query := func(pidx int32) idl.PartitionConfiguration {
		var resp idl.QueryCfgResponse
		if err := conn.Call(context.Background(), wire.Header{}, idl.RPCQueryConfig,
			&idl.QueryCfgRequest{AppName: "window", PartitionIndices: []int32{pidx}}, &resp); err != nil {
			b.Fatal(err)
		}
		if err := wire.CodeError(string(resp.Err)); err != nil || len(resp.Partitions) != 1 {
			b.Fatalf("query config: %v, %d partitions", err, len(resp.Partitions))
		}
		return resp.Partitions[0]
	}
	var windows, transfers []time.Duration
	// move hands pidx's leadership from from to to and waits until the meta names to. The
	// move back to the preferred primary may find that its restoration (package replica)
	// was quicker: that transfer is not timed.
	move := func(pidx int32, from, to string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		err := c.Replica(b, from).TransferLeader(ctx, idl.GPID{AppID: appID, PartitionIndex: pidx}, to, "benchmark")
		timed := err == nil
		if errors.Is(err, replica.ErrNotLeader) {
			err = nil
		}
		if err != nil {
			b.Fatalf("transfer %d from %s to %s: %v", pidx, from, to, err)
		}
		transferred := time.Since(start)
		for query(pidx).Primary.String() != to {
			if ctx.Err() != nil {
				b.Fatalf("the meta still names another primary of %d than %s, 10 s after the transfer", pidx, to)
			}
		}
		if timed {
			windows = append(windows, time.Since(start))
			transfers = append(transfers, transferred)
		}
	}
	for i := 0; b.Loop(); i++ {
		pidx := int32(i % partitions)
		pc := query(pidx)
		if pc.Primary.IsZero() || len(pc.Secondaries) == 0 {
			b.Fatalf("partition %d: primary %v, secondaries %v", pidx, pc.Primary, pc.Secondaries)
		}
		// Back to the preferred primary before its own restoration would (package replica).
		pref, to := pc.Primary.String(), pc.Secondaries[i/partitions%len(pc.Secondaries)].String()
		move(pidx, pref, to)
		move(pidx, to, pref)
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	slices.Sort(windows)
	slices.Sort(transfers)
	n := len(windows)
	b.ReportMetric(ms(windows[n/2]), "p50-ms")
	b.ReportMetric(ms(windows[min(n-1, n*99/100)]), "p99-ms")
	b.ReportMetric(ms(windows[n-1]), "max-ms")
	b.ReportMetric(ms(transfers[n/2]), "transfer-p50-ms")
}
