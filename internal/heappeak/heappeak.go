// Package heappeak measures the peak heap of the process while a test runs, from
// runtime/metrics, so tests can state a memory budget for what a hostile client makes a
// server hold.
package heappeak

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"time"
)

const sample = "/memory/classes/heap/objects:bytes"

// Watch samples the heap every millisecond until Stop. Not safe for concurrent Stop calls.
type Watch struct {
	base uint64
	peak uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

// Start collects garbage, records the heap as the baseline and starts sampling.
func Start() *Watch {
	runtime.GC()
	w := &Watch{stop: make(chan struct{})}
	w.base = read()
	w.peak = w.base
	w.wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.peak = max(w.peak, read())
			}
		}
	})
	return w
}

// Stop ends the sampling and returns the peak heap above the baseline, in bytes.
func (w *Watch) Stop() uint64 {
	close(w.stop)
	w.wg.Wait()
	w.peak = max(w.peak, read())
	if w.peak < w.base {
		return 0
	}
	return w.peak - w.base
}

func read() uint64 {
	s := []metrics.Sample{{Name: sample}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
