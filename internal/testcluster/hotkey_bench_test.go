package testcluster

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopegasus/pegasus/internal/replica"
)

// BenchmarkHotKeyTopKCost measures what the always-on top-k of hash keys costs on a
// YCSB-C-like workload: 100% gets, Zipfian over 10,000 records of 1 KB (8 partitions, one
// replica server, so nothing but the read path runs), 32 concurrent readers. One run
// alternates phases, each of b.N gets, in three modes, their order changing every round:
// the top-k off (hotkey_topk_enabled = false), on as by default (one get in 8 counted), and
// on counting every get (hotkey_topk_sample_every = 1). It reports each mode's throughput
// and the process's CPU time per get (client and server together), and the cost of the two
// "on" modes against "off" in percent of throughput and of CPU:
//
//	go test -run XXX -bench HotKeyTopKCost -benchtime 20000x ./internal/testcluster/
func BenchmarkHotKeyTopKCost(b *testing.B) {
	const (
		records = 10_000
		readers = 32
		rounds  = 12
	)
	if b.N < readers {
		return // the framework's first, one-iteration run: nothing to measure
	}
	settings := replica.NewSettings()
	c := Start(b, Options{Replicas: 1, Replica: func(cfg *replica.Config) { cfg.Settings = settings }})
	c.CreateTableReplicas(b, "ycsb", 8, 1)
	tbl := c.OpenTable(b, "ycsb")
	value := make([]byte, 1000)
	var wg sync.WaitGroup
	for w := range readers {
		wg.Go(func() {
			for i := w; i < records; i += readers {
				if err := tbl.Set(b.Context(), fmt.Appendf(nil, "user%08d", i), []byte("field0"), value); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Modes: 0 off, 1 on (the default sampling), 2 on and counting every get.
	setMode := func(m int) {
		on, every := "true", "8"
		switch m {
		case 0:
			on = "false"
		case 2:
			every = "1"
		}
		for name, v := range map[string]string{"hotkey_topk_enabled": on, "hotkey_topk_sample_every": every} {
			if err := settings.Registry().Update(name, v); err != nil {
				b.Fatal(err)
			}
		}
	}
	phase := func(m int) (time.Duration, time.Duration) {
		setMode(m)
		cpu0 := cpuTime(b)
		start := time.Now()
		var wg sync.WaitGroup
		for w := range readers {
			wg.Go(func() {
				z := rand.NewZipf(rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano()))), 1.1, 1, records-1)
				for range b.N / readers {
					if _, err := tbl.Get(b.Context(), fmt.Appendf(nil, "user%08d", z.Uint64()), []byte("field0")); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start), cpuTime(b) - cpu0
	}
	phase(2) // warm up: connections, caches, the top-k's key buffers
	var wall, cpu [3]time.Duration
	orders := [][]int{{0, 1, 2}, {2, 1, 0}, {1, 0, 2}, {2, 0, 1}, {1, 2, 0}, {0, 2, 1}}
	b.ResetTimer()
	for r := range rounds {
		for _, m := range orders[r%len(orders)] {
			w, u := phase(m)
			wall[m] += w
			cpu[m] += u
		}
	}
	b.StopTimer()
	gets := float64(rounds * (b.N / readers) * readers)
	var rate, perGet [3]float64
	for m := range 3 {
		rate[m], perGet[m] = gets/wall[m].Seconds(), cpu[m].Seconds()*1e6/gets
	}
	b.ReportMetric(rate[0], "off_gets/s")
	b.ReportMetric(rate[1], "on_gets/s")
	b.ReportMetric(rate[2], "every_gets/s")
	b.ReportMetric(perGet[0], "off_cpu_us/get")
	b.ReportMetric(perGet[1], "on_cpu_us/get")
	b.ReportMetric(perGet[2], "every_cpu_us/get")
	b.ReportMetric(100*(rate[0]-rate[1])/rate[0], "on_throughput_cost_%")
	b.ReportMetric(100*(perGet[1]-perGet[0])/perGet[0], "on_cpu_cost_%")
	b.ReportMetric(100*(rate[0]-rate[2])/rate[0], "every_throughput_cost_%")
	b.ReportMetric(100*(perGet[2]-perGet[0])/perGet[0], "every_cpu_cost_%")
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
