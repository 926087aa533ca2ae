package testcluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopegasus/pegasus"
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
