package dup_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pegasus "github.com/gopegasus/pegasus"
	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/testcluster"
)

// BenchmarkDuplication measures, on two in-process clusters (master c1: 3 replica servers;
// follower c2: 3 replica servers, 1 replica per partition), in one run:
//
//   - the master's write throughput with 64 writers as fast as they go, on a table of 8
//     partitions and 3 replicas, in 5 s rounds: 5 before the table is duplicated to c2 and 5
//     after, each round followed by one on a control table that is never duplicated (the
//     machine's drift shows there); the medians and their ratio, also relative to the
//     control's; and the process's CPU time per write in those rounds (both clusters', so
//     the follower's applies count), which other processes of the machine do not skew;
//   - the duplication lag under a steady load of 5,000 writes/s on the duplicated table:
//     every 20 ms a probe write is acknowledged by the master and then read back from the
//     follower until it is there; the time from the acknowledgement to the first read that
//     finds it (p50, p99, in milliseconds; the reads poll every millisecond).
//
// Both clusters share the machine's cores and disk: the follower's applies count against
// the master's throughput here, unlike in a deployment.
//
// Run it once: go test -run XXX -bench Duplication -benchtime 1x ./internal/dup/
func BenchmarkDuplication(b *testing.B) {
	const (
		rounds    = 5
		roundTime = 5 * time.Second
	)
	cs := testcluster.StartClusters(b, testcluster.Options{ClusterName: "c1", Replicas: 3},
		testcluster.Options{ClusterName: "c2", Replicas: 3})
	c1, c2 := cs[0], cs[1]
	c1.CreateTableReplicas(b, "duped", 8, 3)
	c1.CreateTableReplicas(b, "control", 8, 3)
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
	duped, control := client(c1, "duped"), client(c1, "control")
	primaries := func() {
		for _, table := range []string{"duped", "control"} {
			if cfg, err := adm.QueryConfig(ctx, table); err == nil {
				led := map[string]int{}
				for _, p := range cfg.Partitions {
					led[p.Primary]++
				}
				b.Logf("primaries of %s: %v", table, led)
			}
		}
	}

	for b.Loop() {
		var before, after, ctlBefore, ctlAfter, cpuBefore, cpuAfter, cpuCtl []float64
		primaries()
		for round := range rounds {
			before = append(before, throughput(duped, fmt.Sprintf("b%d", round), 64, roundTime, &cpuBefore))
			ctlBefore = append(ctlBefore, throughput(control, fmt.Sprintf("cb%d", round), 64, roundTime, &cpuCtl))
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
		for round := range rounds {
			after = append(after, throughput(duped, fmt.Sprintf("a%d", round), 64, roundTime, &cpuAfter))
			ctlAfter = append(ctlAfter, throughput(control, fmt.Sprintf("ca%d", round), 64, roundTime, &cpuCtl))
		}
		primaries()
		shipped := metricSum(b, c1, "dup_shipped_batches", "dup_shipped_writes")
		b.Logf("shipped %d writes in %d batches", shipped[1], shipped[0])
		for _, r := range [][]float64{before, after, ctlBefore, ctlAfter, cpuBefore, cpuAfter} {
			slices.Sort(r)
		}
		mid := rounds / 2
		b.ReportMetric(before[mid], "writes/s_without_dup")
		b.ReportMetric(after[mid], "writes/s_with_dup")
		b.ReportMetric(100*after[mid]/before[mid], "%_with/without")
		// The same ratio relative to the control table's rounds, which cancels the machine's
		// drift between the two halves of the run.
		b.ReportMetric(100*(after[mid]/ctlAfter[mid])/(before[mid]/ctlBefore[mid]), "%_with/without_vs_control")
		// CPU per acknowledged write, the follower's applies included: what the machine's
		// other load does not skew.
		b.ReportMetric(cpuBefore[mid], "cpu_us/write_without_dup")
		b.ReportMetric(cpuAfter[mid], "cpu_us/write_with_dup")
		b.Logf("writes/s of the duplicated table: without %v, with %v; of the control table meanwhile: %v, %v",
			before, after, ctlBefore, ctlAfter)

		lags, rate := lagUnderLoad(b, duped, follower, 5000, 30*time.Second)
		b.ReportMetric(rate, "writes/s_steady")
		b.ReportMetric(quantile(lags, 0.5), "ms_lag_p50")
		b.ReportMetric(quantile(lags, 0.99), "ms_lag_p99")
		b.Logf("%d lag probes, max %.1f ms", len(lags), quantile(lags, 1))
	}
}

// cpuTime is the CPU time the process used so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// throughput writes with n writers for d and returns the acknowledged writes per second.
// The process's CPU time per write is added to cpu (the clusters and the writers: other
// processes of the machine do not count there, unlike in the rate).
func throughput(tb pegasus.TableConnector, prefix string, n int, d time.Duration, cpu *[]float64) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := cpuTime()
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
	if n := done.Load(); n > 0 {
		*cpu = append(*cpu, float64((cpuTime()-start).Microseconds())/float64(n))
	}
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
