package cli

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Latency histogram, log-linear as HDR histograms are: values below 2*histSub nanoseconds
// get a bucket each; above, every power of two is cut into histSub equal buckets, so a
// bucket is at most 1/histSub (1.6%) of its values wide. Counting is an atomic add, so
// a progress reporter may read while a worker records.
const (
	histSubBits = 6
	histSub     = 1 << histSubBits // linear buckets per power of two
	histMaxExp  = 40               // values up to 2^47 ns (~39 hours) are kept exact enough
	histBuckets = 2*histSub + histMaxExp*histSub
)

type histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // nanoseconds
	max    atomic.Uint64 // nanoseconds
}

// histIndex returns the bucket of v nanoseconds.
func histIndex(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1 // v>>shift is in [histSub, 2*histSub)
	i := 2*histSub + (shift-1)*histSub + int(v>>shift) - histSub
	return min(i, histBuckets-1)
}

// histUpper returns the largest value of bucket i, what percentiles report (as HDR does,
// a percentile is never under-reported).
func histUpper(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	shift := (i-2*histSub)/histSub + 1
	sub := uint64((i-2*histSub)%histSub + histSub)
	return (sub+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[histIndex(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// merge adds o's counts into h.
func (h *histogram) merge(o *histogram) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}

func (h *histogram) count() uint64 { return h.n.Load() }

func (h *histogram) mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// quantile returns the latency below which a fraction q of the values lie (within a
// bucket's width, never lower), capped at the largest value recorded.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(histUpper(i), h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}
