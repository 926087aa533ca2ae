// Package metric has the pieces components use to keep their metrics cheaply, and the
// snapshot shape they report them in.
//
// Components keep counters as atomic fields and latencies in a [Timer]: recording is a few
// atomic adds, with no lock and no allocation. When asked, a component describes its
// metrics as [Entity] values (Pegasus's model: an entity such as a server or a partition
// replica, with attributes and metrics), which the HTTP API renders as Pegasus JSON or
// Prometheus text.
package metric

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is a metric's type, spelled as Pegasus spells it.
type Kind int

// Metric kinds.
const (
	Gauge Kind = iota
	Counter
	Percentile
)

func (k Kind) String() string {
	switch k {
	case Counter:
		return "Counter"
	case Percentile:
		return "Percentile"
	default:
		return "Gauge"
	}
}

// Quantiles are the percentiles a Percentile metric carries, in order: p50, p90, p95, p99
// and p999.
var Quantiles = [5]float64{0.5, 0.9, 0.95, 0.99, 0.999}

// QuantileNames are the JSON field names of [Quantiles].
var QuantileNames = [5]string{"p50", "p90", "p95", "p99", "p999"}

// Metric is one metric's value at the time of a snapshot.
type Metric struct {
	Kind Kind
	// Name is Pegasus's metric name, e.g. "get_requests"; Unit is one of Pegasus's unit names
	// (Requests, NanoSeconds, Bytes, ...).
	Name, Unit, Desc string
	// Value of a Gauge or Counter.
	Value int64
	// P holds the Percentile values, in [Quantiles] order.
	P [5]int64
}

// Entity is a set of metrics of one thing: a server, a table, a partition replica.
type Entity struct {
	// Type is Pegasus's entity type ("server", "replica", "table", "partition"); ID is
	// unique within a server, e.g. "replica@2.3".
	Type, ID string
	// Attrs are name/value pairs, e.g. {"table_id","2"}.
	Attrs [][2]string
	// Metrics of the entity.
	Metrics []Metric
}

// CounterOf returns a Counter metric.
func CounterOf(name, unit, desc string, v int64) Metric {
	return Metric{Kind: Counter, Name: name, Unit: unit, Desc: desc, Value: v}
}

// GaugeOf returns a Gauge metric.
func GaugeOf(name, unit, desc string, v int64) Metric {
	return Metric{Kind: Gauge, Name: name, Unit: unit, Desc: desc, Value: v}
}

// Timer buckets and window.
const (
	subBits     = 3 // 8 buckets per power of two: about 6% resolution
	subBuckets  = 1 << subBits
	linearLimit = 2 * subBuckets // values below are counted exactly
	maxBits     = 42             // about 73 minutes in nanoseconds; larger values are clamped
	nBuckets    = linearLimit + (maxBits-subBits-1)*subBuckets

	// Window is how often a Timer's percentiles and rate are recomputed (Pegasus computes
	// its percentiles every 10 s).
	Window = 10 * time.Second
)

// Timer counts events and records their durations in a log-linear histogram. Observe is
// lock- and allocation-free; the zero value is ready to use. Percentiles and the rate come
// from the events of a window (see [Timer.Window]).
type Timer struct {
	count   atomic.Int64
	buckets [nBuckets]atomic.Int64

	win struct {
		sync.Mutex
		prev [nBuckets]int64
		at   time.Time
		p    [5]int64
		rate int64
	}
}

func bucketOf(v uint64) int {
	if v < linearLimit {
		return int(v)
	}
	n := bits.Len64(v)
	if n > maxBits {
		return nBuckets - 1
	}
	sub := int(v>>(n-1-subBits)) & (subBuckets - 1)
	return linearLimit + (n-subBits-2)*subBuckets + sub
}

// bucketValue is the middle of a bucket's range.
func bucketValue(i int) int64 {
	if i < linearLimit {
		return int64(i)
	}
	i -= linearLimit
	n := i/subBuckets + subBits + 2
	sub := i % subBuckets
	lo := (uint64(subBuckets) | uint64(sub)) << (n - 1 - subBits)
	width := uint64(1) << (n - 1 - subBits)
	return int64(lo + width/2)
}

// Observe records one event that took d.
func (t *Timer) Observe(d time.Duration) {
	t.count.Add(1)
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	t.buckets[bucketOf(v)].Add(1)
}

// Count returns how many events were observed since the timer was made.
func (t *Timer) Count() int64 { return t.count.Load() }

// Window returns the percentiles (in nanoseconds, [Quantiles] order) of the events of the
// last completed window and their rate per second. A window ends when Window is called at
// least [Window] after the previous one ended; the first call ends the first window (its
// rate is 0: the timer does not know when it started). A window without events keeps the
// previous percentiles.
func (t *Timer) Window(now time.Time) (p [5]int64, perSecond int64) {
	t.win.Lock()
	defer t.win.Unlock()
	w := &t.win
	if !w.at.IsZero() && now.Sub(w.at) < Window {
		return w.p, w.rate
	}
	var delta [nBuckets]int64
	var total int64
	for i := range t.buckets {
		c := t.buckets[i].Load()
		delta[i] = c - w.prev[i]
		w.prev[i] = c
		total += delta[i]
	}
	if !w.at.IsZero() {
		w.rate = int64(float64(total) / now.Sub(w.at).Seconds())
	}
	w.at = now
	if total == 0 {
		return w.p, w.rate
	}
	for qi, q := range Quantiles {
		rank := int64(q*float64(total-1)) + 1
		var seen int64
		for i, c := range delta {
			seen += c
			if seen >= rank {
				w.p[qi] = bucketValue(i)
				break
			}
		}
	}
	return w.p, w.rate
}
