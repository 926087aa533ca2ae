package dup_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pegasus "github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// BenchmarkDuplication measures, on two in-process clusters (master c1: 3 replica servers,
// tables of 8 partitions and 3 replicas; follower c2: 3 replica servers, 1 replica per
// partition), in one run:
//
//   - the master's write throughput with 64 writers as fast as they go, on a table without a
//     duplication and on one duplicated to c2, in alternating 10 s rounds (3 of each), and
//     their ratio;
//   - the duplication lag under a steady load of 5,000 writes/s on the duplicated table:
//     every 20 ms a probe write is acknowledged by the master and then read back from the
//     follower until it is there; the time from the acknowledgement to the first read that
//     finds it (p50, p99, in milliseconds; the reads poll every millisecond).
//
// Run it once: go test -run XXX -bench Duplication -benchtime 1x ./internal/dup/
func BenchmarkDuplication(b *testing.B) {
	cs := testcluster.StartClusters(b, testcluster.Options{ClusterName: "c1", Replicas: 3},
		testcluster.Options{ClusterName: "c2", Replicas: 3})
	c1, c2 := cs[0], cs[1]
	c1.CreateTableReplicas(b, "plain", 8, 3)
	c1.CreateTableReplicas(b, "duped", 8, 3)
	c1.WaitSpreadPrimaries(b, "plain")
	c1.WaitSpreadPrimaries(b, "duped")
	adm, err := admin.New(admin.Config{MetaServers: c1.MetaAddrs()})
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	ctx := context.Background()
	added, err := adm.AddDuplication(ctx, "duped", "c2", &admin.AddDuplicationOptions{RemoteReplicas: 1})
	if err != nil {
		b.Fatal(err)
	}
	for {
		_, ds, err := adm.QueryDuplications(ctx, "duped")
		if err == nil && len(ds) == 1 && ds[0].Status == "DS_LOG" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	client := func(c *testcluster.Cluster, table string) pegasus.TableConnector {
		cl, err := pegasus.New(pegasus.Config{MetaServers: c.MetaAddrs()})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cl.Close() })
		tb, err := cl.OpenTable(ctx, table)
		if err != nil {
			b.Fatal(err)
		}
		return tb
	}
	plain, duped, follower := client(c1, "plain"), client(c1, "duped"), client(c2, "duped")

	for b.Loop() {
		var with, without []float64
		for round := range 3 {
			without = append(without, throughput(plain, fmt.Sprintf("p%d", round), 64, 10*time.Second))
			with = append(with, throughput(duped, fmt.Sprintf("d%d", round), 64, 10*time.Second))
		}
		slices.Sort(with)
		slices.Sort(without)
		b.ReportMetric(without[1], "writes/s_without_dup")
		b.ReportMetric(with[1], "writes/s_with_dup")
		b.ReportMetric(100*with[1]/without[1], "%_with/without")
		b.Logf("throughput rounds: without %v, with %v (writes/s)", without, with)

		lags, rate := lagUnderLoad(b, duped, follower, 5000, 30*time.Second)
		b.ReportMetric(rate, "writes/s_steady")
		b.ReportMetric(quantile(lags, 0.5), "ms_lag_p50")
		b.ReportMetric(quantile(lags, 0.99), "ms_lag_p99")
		b.Logf("%d lag probes, max %.1f ms", len(lags), quantile(lags, 1))
	}
	_ = added
}

// throughput writes with n writers for d and returns the acknowledged writes per second.
func throughput(tb pegasus.TableConnector, prefix string, n int, d time.Duration) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var done atomic.Int64
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			v := make([]byte, 100)
			for i := 0; ctx.Err() == nil; i++ {
				if tb.Set(ctx, []byte(fmt.Sprintf("%s-%d-%d", prefix, w, i)), []byte("s"), v) == nil {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return float64(done.Load()) / d.Seconds()
}

// lagUnderLoad writes rate writes/s for d, with a probe every 20 ms, and returns each
// probe's lag (ms from the master's acknowledgement to the follower showing it) and the
// write rate achieved.
func lagUnderLoad(b *testing.B, master, follower pegasus.TableConnector, rate int, d time.Duration) ([]float64, float64) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	tokens := make(chan struct{}, rate)
	var wg sync.WaitGroup
	wg.Go(func() { // releases rate tokens per second, a millisecond's worth at a time
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		start, sent := time.Now(), 0
		for ctx.Err() == nil {
			<-t.C
			for due := int(time.Since(start).Seconds() * float64(rate)); sent < due; sent++ {
				select {
				case tokens <- struct{}{}:
				default: // the writers fall behind: the achieved rate says so
				}
			}
		}
	})
	var written atomic.Int64
	for w := range 64 {
		wg.Go(func() {
			v := make([]byte, 100)
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tokens:
				}
				if master.Set(ctx, []byte(fmt.Sprintf("l-%d-%d", w, i)), []byte("s"), v) == nil {
					written.Add(1)
				}
			}
		})
	}
	var (
		mu   sync.Mutex
		lags []float64
	)
	probes := time.NewTicker(20 * time.Millisecond)
	defer probes.Stop()
	for i := 0; ctx.Err() == nil; i++ {
		<-probes.C
		h := []byte(fmt.Sprintf("probe-%d", i))
		if master.Set(ctx, h, []byte("s"), []byte("p")) != nil {
			continue
		}
		acked := time.Now()
		wg.Go(func() {
			for {
				rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
				v, err := follower.Get(rctx, h, []byte("s"))
				rcancel()
				if err == nil && v != nil {
					mu.Lock()
					lags = append(lags, float64(time.Since(acked).Microseconds())/1000)
					mu.Unlock()
					return
				}
				if time.Since(acked) > time.Minute {
					b.Errorf("probe %s never reached the follower", h)
					return
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	slices.Sort(lags)
	return lags, float64(written.Load()) / d.Seconds()
}

// quantile returns the q quantile of sorted values (0 when there are none).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}
