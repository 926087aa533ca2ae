package metric

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<20; v += 1 + v/64 {
		b := bucketOf(v)
		if b < prev || b >= nBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d", v, b, prev)
		}
		prev = b
		mid := bucketValue(b)
		if bucketOf(uint64(mid)) != b {
			t.Fatalf("value %d of bucket %d falls in bucket %d", mid, b, bucketOf(uint64(mid)))
		}
		if diff := float64(mid) - float64(v); v > 0 && (diff > 0.07*float64(v) || -diff > 0.07*float64(v)) {
			t.Fatalf("bucket value %d too far from %d", mid, v)
		}
	}
	if bucketOf(1<<63) != nBuckets-1 {
		t.Fatal("large values not clamped")
	}
}

func TestTimerPercentiles(t *testing.T) {
	var tm Timer
	var vals []int64
	for range 10000 {
		v := rand.Int64N(1_000_000)
		vals = append(vals, v)
		tm.Observe(time.Duration(v))
	}
	slices.Sort(vals)
	now := time.Unix(1000, 0)
	p, rate := tm.Window(now)
	if rate != 0 {
		t.Fatalf("first window rate %d", rate)
	}
	for i, q := range Quantiles {
		exact := vals[int(q*float64(len(vals)-1))]
		if d := float64(p[i] - exact); d > 0.07*float64(exact)+2 || -d > 0.07*float64(exact)+2 {
			t.Errorf("p%v = %d, exact %d", q, p[i], exact)
		}
	}
	// Within the window the values stay; after it, a new window counts only new events.
	for range 50 {
		tm.Observe(5 * time.Millisecond)
	}
	if p2, _ := tm.Window(now.Add(time.Second)); p2 != p {
		t.Fatal("percentiles changed within the window")
	}
	p3, rate := tm.Window(now.Add(Window))
	if rate != 5 || p3[0] < 4_500_000 || p3[0] > 5_500_000 {
		t.Fatalf("second window: p %v rate %d", p3, rate)
	}
	if tm.Count() != 10050 {
		t.Fatalf("count %d", tm.Count())
	}
}

func BenchmarkObserve(b *testing.B) {
	var tm Timer
	b.ReportAllocs()
	for b.Loop() {
		tm.Observe(123456)
	}
}
