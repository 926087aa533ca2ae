package dup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pegasus "github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/replica"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// BenchmarkDuplication measures, on two in-process clusters (master c1: 3 replica servers;
// follower c2: 3 replica servers, 1 replica per partition), in one run:
//
//   - the master's write throughput with 64 writers as fast as they go, on two tables of 8
//     partitions and 3 replicas, one duplicated to c2 and one not, in interleaved 5 s
//     rounds (plain, duped, duped, plain, ...: the machine's drift falls on both alike);
//     after each round the run waits until the shippers caught up, so a round's CPU
//     includes the shipping of its writes and the next round starts without a backlog. It
//     reports the medians, their ratio and the median of the pairs' ratios; and the
//     process's CPU time per write (both clusters', the follower's applies and fsyncs
//     included), which other processes of the machine do not skew;
//   - the duplication lag under a steady load of 5,000 writes/s on the duplicated table:
//     every 20 ms a probe write is acknowledged by the master and then read back from the
//     follower until it is there; the time from the acknowledgement to the first read that
//     finds it (p50, p99, in milliseconds; the reads poll every millisecond).
//
// Both clusters share the machine's cores and disk: the follower's applies count against
// the master's throughput here, unlike in a deployment.
//
// Run it once: go test -run XXX -bench Duplication -benchtime 1x ./internal/dup/
// (PEGASUS_DUP_LINGER_MS=0 in the environment runs the master with that
// dup_batch_linger_ms instead of the default; PEGASUS_DUP_PROFILE=dir writes a CPU profile
// of each round and its wait for the shippers to dir: d*.pprof the duplicated table's, p*
// the plain one's, to compare with go tool pprof -diff_base). Without -cpuprofile: the
// test binary's own profile would be in the way.
func BenchmarkDuplication(b *testing.B) {
	const (
		pairs     = 7
		roundTime = 5 * time.Second
	)
	o1 := testcluster.Options{ClusterName: "c1", Replicas: 3}
	if v := os.Getenv("PEGASUS_DUP_LINGER_MS"); v != "" { // the master's dup_batch_linger_ms
		b.Logf("dup_batch_linger_ms = %s", v)
		o1.Replica = func(c *replica.Config) {
			st := replica.NewSettings()
			if err := st.Registry().Set("dup_batch_linger_ms", v); err != nil {
				panic(err)
			}
			c.Settings = st
		}
	}
	cs := testcluster.StartClusters(b, o1,
		testcluster.Options{ClusterName: "c2", Replicas: 3})
	c1, c2 := cs[0], cs[1]
	c1.CreateTableReplicas(b, "duped", 8, 3)
	c1.CreateTableReplicas(b, "plain", 8, 3)
	adm, err := admin.New(admin.Config{MetaServers: c1.MetaAddrs()})
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	ctx := context.Background()
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
	duped, plain := client(c1, "duped"), client(c1, "plain")
	primaries := func() {
		for _, table := range []string{"duped", "plain"} {
			if cfg, err := adm.QueryConfig(ctx, table); err == nil {
				led := map[string]int{}
				for _, p := range cfg.Partitions {
					led[p.Primary]++
				}
				b.Logf("primaries of %s: %v", table, led)
			}
		}
	}
	if _, err := adm.AddDuplication(ctx, "duped", "c2", &admin.AddDuplicationOptions{RemoteReplicas: 1}); err != nil {
		b.Fatal(err)
	}
	for {
		_, ds, err := adm.QueryDuplications(ctx, "duped")
		if err == nil && len(ds) == 1 && ds[0].Status == "DS_LOG" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	follower := client(c2, "duped")
	// caughtUp waits until the master's primaries have shipped everything they applied.
	caughtUp := func() {
		deadline := time.Now().Add(time.Minute)
		for metricSum(b, c1, "dup_pending_mutations")[0] > 0 {
			if time.Now().After(deadline) {
				b.Fatal("the shippers did not catch up within a minute")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// round writes to tb for roundTime, waits for the shippers, and returns the writes/s
	// and the CPU µs per write of the round and the wait.
	profiles := os.Getenv("PEGASUS_DUP_PROFILE") // a directory for the rounds' CPU profiles
	round := func(tb pegasus.TableConnector, prefix string) (rate, cpu float64) {
		if profiles != "" {
			f, err := os.Create(filepath.Join(profiles, prefix+".pprof"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				b.Fatal(err)
			}
			defer pprof.StopCPUProfile()
		}
		start := cpuTime()
		n := throughput(tb, prefix, 64, roundTime)
		caughtUp()
		return float64(n) / roundTime.Seconds(), float64((cpuTime() - start).Microseconds()) / float64(max(n, 1))
	}

	for b.Loop() {
		var without, with, cpuWithout, cpuWith, pairRatio []float64
		primaries()
		before := metricSum(b, c1, "dup_shipped_batches", "dup_shipped_writes")
		for i := range pairs {
			var r [2]float64 // writes/s of plain, duped
			for j := range 2 {
				// ABBA: even pairs start with the plain table, odd ones with the duplicated.
				if dupFirst := i%2 == 1; (j == 0) == dupFirst {
					rate, cpu := round(duped, fmt.Sprintf("d%d", i))
					with, cpuWith, r[1] = append(with, rate), append(cpuWith, cpu), rate
				} else {
					rate, cpu := round(plain, fmt.Sprintf("p%d", i))
					without, cpuWithout, r[0] = append(without, rate), append(cpuWithout, cpu), rate
				}
			}
			pairRatio = append(pairRatio, 100*r[1]/r[0])
			b.Logf("pair %d: without %.0f writes/s, with %.0f (%.0f%%)", i, r[0], r[1], 100*r[1]/r[0])
		}
		primaries()
		after := metricSum(b, c1, "dup_shipped_batches", "dup_shipped_writes")
		batches, writes := after[0]-before[0], after[1]-before[1]
		b.Logf("shipped %d writes in %d batches (%.1f writes per batch)", writes, batches, float64(writes)/float64(max(batches, 1)))
		b.Logf("writes/s without %v, with %v; cpu µs/write without %v, with %v", without, with, cpuWithout, cpuWith)
		b.ReportMetric(median(without), "writes/s_without_dup")
		b.ReportMetric(median(with), "writes/s_with_dup")
		b.ReportMetric(100*median(with)/median(without), "%_with/without")
		b.ReportMetric(median(pairRatio), "%_with/without_pair_median")
		// CPU per acknowledged write, the shipping and the follower's applies included: what
		// the machine's other load does not skew.
		b.ReportMetric(median(cpuWithout), "cpu_us/write_without_dup")
		b.ReportMetric(median(cpuWith), "cpu_us/write_with_dup")
		b.ReportMetric(float64(writes)/float64(max(batches, 1)), "writes/batch")

		lags, rate := lagUnderLoad(b, duped, follower, 5000, 30*time.Second)
		b.ReportMetric(rate, "writes/s_steady")
		b.ReportMetric(quantile(lags, 0.5), "ms_lag_p50")
		b.ReportMetric(quantile(lags, 0.99), "ms_lag_p99")
		b.Logf("%d lag probes, max %.1f ms", len(lags), quantile(lags, 1))
	}
}

// median returns the median of vs (sorting a copy); 0 when there are none.
func median(vs []float64) float64 {
	s := slices.Sorted(slices.Values(vs))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// cpuTime is the CPU time the process used so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// throughput writes with n writers for d and returns the writes acknowledged.
func throughput(tb pegasus.TableConnector, prefix string, n int, d time.Duration) int64 {
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
	return done.Load()
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
	for w := range 128 { // enough that a slow write does not hold the rate back
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

// metricSum sums metrics of the replica servers of c, in the order named.
func metricSum(b testing.TB, c *testcluster.Cluster, names ...string) []int64 {
	out := make([]int64, len(names))
	for _, r := range c.ReplicaAddrs() {
		resp, err := http.Get("http://" + r + "/metrics?types=replica&metrics=" + strings.Join(names, ","))
		if err != nil {
			b.Fatal(err)
		}
		var doc struct {
			Entities []struct {
				Metrics []struct {
					Name  string `json:"name"`
					Value int64  `json:"value"`
				} `json:"metrics"`
			} `json:"entities"`
		}
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range doc.Entities {
			for _, m := range e.Metrics {
				if i := slices.Index(names, m.Name); i >= 0 {
					out[i] += m.Value
				}
			}
		}
	}
	return out
}
