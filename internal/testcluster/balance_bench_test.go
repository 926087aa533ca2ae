package testcluster

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/admin"
	"github.com/gopegasus/pegasus/internal/poll"
)

// envRebalanceMB sets the data size of BenchmarkRebalanceThreeToFour (default 64 MB).
const envRebalanceMB = "PEGASUS_REBALANCE_MB"

// BenchmarkRebalanceThreeToFour measures how long a lively cluster of 3 replica servers takes
// to balance a fourth one in (replica and primary counts within one of the mean, no move
// under way), with a table of 8 partitions of 3 replicas holding PEGASUS_REBALANCE_MB of
// values of 4 KB that do not compress, and the p99 of a client's gets before and during it:
//
//	PEGASUS_REBALANCE_MB=1024 go test -run XXX -bench RebalanceThreeToFour -benchtime 1x ./internal/testcluster/
func BenchmarkRebalanceThreeToFour(b *testing.B) {
	mb := 64
	if v := os.Getenv(envRebalanceMB); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive number of MB", envRebalanceMB, v)
		}
		mb = n
	}
	var took time.Duration
	var before, during time.Duration
	for b.Loop() {
		took, before, during = rebalanceOnce(b, mb)
	}
	b.ReportMetric(took.Seconds(), "rebalance_s")
	b.ReportMetric(float64(before.Microseconds())/1000, "get_p99_before_ms")
	b.ReportMetric(float64(during.Microseconds())/1000, "get_p99_during_ms")
	b.ReportMetric(float64(mb), "MB")
}

func rebalanceOnce(b *testing.B, mb int) (took, before, during time.Duration) {
	c := Start(b, Options{Replicas: 3, TickInterval: 100 * time.Millisecond})
	c.CreateTableReplicas(b, "big", 8, 3)
	tbl := c.OpenTable(b, "big")
	adm, err := admin.New(admin.Config{MetaServers: c.MetaAddrs()})
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	const valueSize = 4096
	records := mb << 20 / valueSize
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			v := make([]byte, valueSize)
			for i := w; i < records; i += 16 {
				_, _ = crand.Read(v)
				if err := tbl.Set(b.Context(), fmt.Appendf(nil, "h%08d", i), []byte("s"), v); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}

	// A reader of random records, its latencies split by phase.
	var (
		phase   atomic.Int32 // 0 before, 1 during, 2 after
		stop    atomic.Bool
		mu      sync.Mutex
		samples [2][]time.Duration
		readErr atomic.Value
	)
	var rg sync.WaitGroup
	for r := range 2 {
		rg.Go(func() {
			for i := r; !stop.Load(); i += 7919 {
				start := time.Now()
				if _, err := tbl.Get(b.Context(), fmt.Appendf(nil, "h%08d", i%records), []byte("s")); err != nil {
					readErr.Store(err)
					return
				}
				d := time.Since(start)
				if p := phase.Load(); p < 2 {
					mu.Lock()
					samples[p] = append(samples[p], d)
					mu.Unlock()
				}
			}
		})
	}
	defer func() {
		stop.Store(true)
		rg.Wait()
	}()
	time.Sleep(3 * time.Second) // the baseline's window
	start := time.Now()
	phase.Store(1)
	c.AddReplica(b)
	c.WaitAlive(b, 4)
	if _, err := adm.SetMetaLevel(b.Context(), "lively"); err != nil {
		b.Fatal(err)
	}
	nodes := c.ReplicaAddrs()
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Minute)
	defer cancel()
	if err := poll.Wait(ctx, func(ctx context.Context) (bool, error) {
		replicas, primaries, err := placement(ctx, adm, "big")
		if err != nil {
			return false, nil
		}
		idle, err := balanceOpsIdle(ctx, adm)
		return err == nil && idle && replicas[nodes[3]] > 0 && withinOneOfMean(nodes, replicas) && withinOneOfMean(nodes, primaries), nil
	}); err != nil {
		b.Fatalf("not balanced: %v", err)
	}
	took = time.Since(start)
	phase.Store(2)
	if err, _ := readErr.Load().(error); err != nil {
		b.Fatalf("get during the rebalance: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return took, p99(samples[0]), p99(samples[1])
}

// p99 returns the 99th percentile of ds (0 when empty).
func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)]
}
