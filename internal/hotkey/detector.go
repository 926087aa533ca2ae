package hotkey

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of [Options], Apache Pegasus's (section [pegasus.server]).
const (
	DefaultBuckets         = 37   // hotkey_buckets_num
	DefaultBucketThreshold = 7    // hot_bucket_variance_threshold
	DefaultKeyThreshold    = 5    // hot_key_variance_threshold
	DefaultMaxCaptures     = 1000 // the fine phase's queue size
	DefaultMaxCaptureBytes = 1 << 20
	DefaultTimeout         = 150 * time.Second // max_seconds_to_detect_hotkey
	// DefaultInterval is how often a Detector's owner should call [Detector.Analyse]
	// (hotkey_analyse_time_interval_s).
	DefaultInterval = 10 * time.Second
)

// Options tune a detection; a [Detector] takes them when it starts. Zero fields mean the
// defaults.
type Options struct {
	// Buckets is the number of hash buckets of the coarse phase (at least 3; Pegasus wants
	// a prime).
	Buckets int
	// BucketThreshold and KeyThreshold are how many standard deviations of the others the
	// hottest bucket (coarse phase) and the hottest key (fine phase) must be above their
	// mean to be hot.
	BucketThreshold, KeyThreshold float64
	// MaxCaptures bounds the captures of one fine-phase interval, MaxCaptureBytes the bytes
	// of the distinct keys they hold.
	MaxCaptures, MaxCaptureBytes int
	// Timeout is how long after its start a detection that found nothing stops.
	Timeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Buckets < 3 {
		o.Buckets = DefaultBuckets
	}
	if o.BucketThreshold <= 0 {
		o.BucketThreshold = DefaultBucketThreshold
	}
	if o.KeyThreshold <= 0 {
		o.KeyThreshold = DefaultKeyThreshold
	}
	if o.MaxCaptures <= 0 {
		o.MaxCaptures = DefaultMaxCaptures
	}
	if o.MaxCaptureBytes <= 0 {
		o.MaxCaptureBytes = DefaultMaxCaptureBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// State is the state of a [Detector].
type State int32

// Detector states, Pegasus's hotkey_collector_state.
const (
	Stopped State = iota
	CoarseDetecting
	FineDetecting
	Finished
)

// String returns the state as Pegasus names it in its answers, e.g.
// "hotkey_collector_state::COARSE_DETECTING".
func (s State) String() string {
	switch s {
	case Stopped:
		return "hotkey_collector_state::STOPPED"
	case CoarseDetecting:
		return "hotkey_collector_state::COARSE_DETECTING"
	case FineDetecting:
		return "hotkey_collector_state::FINE_DETECTING"
	case Finished:
		return "hotkey_collector_state::FINISHED"
	}
	return "hotkey_collector_state::INVALID"
}

// Detector runs one hot-key detection at a time (see the package documentation). The zero
// value is a stopped detector, ready to use; it holds nothing until started. Safe for
// concurrent use.
type Detector struct {
	mu  sync.Mutex // serializes Start, Stop and Analyse
	cur atomic.Pointer[detection]
}

// detection is one run of a Detector, from Start to Stop or timeout.
type detection struct {
	opts    Options
	started time.Time
	phase   atomic.Int32 // a State: CoarseDetecting, FineDetecting or Finished
	buckets []atomic.Int64
	// target is the hot bucket and result the hot key: written (under Detector.mu)
	// before phase moves past them, which publishes them to captures.
	target int
	result []byte
	fine   fineCapture
}

// fineCapture holds the fine phase's captures of the current interval.
type fineCapture struct {
	admitted atomic.Int64 // captures admitted this interval, dropped past MaxCaptures
	mu       sync.Mutex
	bytes    int
	weights  map[string]int64
}

// State returns the detector's state.
func (d *Detector) State() State {
	r := d.cur.Load()
	if r == nil {
		return Stopped
	}
	return State(r.phase.Load())
}

// Running reports whether a detection is capturing (in its coarse or fine phase).
func (d *Detector) Running() bool {
	r := d.cur.Load()
	return r != nil && State(r.phase.Load()) != Finished
}

// Capture counts one request for hashKey (hash is [Hash](hashKey)) with weight (values
// below 1 count as 1). It does nothing while the detector is stopped or finished, and never
// blocks on an analysis. hashKey is not retained.
func (d *Detector) Capture(hash uint64, hashKey []byte, weight int64) {
	r := d.cur.Load()
	if r == nil {
		return
	}
	if weight < 1 {
		weight = 1
	}
	switch State(r.phase.Load()) {
	case CoarseDetecting:
		r.buckets[hash%uint64(len(r.buckets))].Add(weight)
	case FineDetecting:
		if int(hash%uint64(len(r.buckets))) != r.target {
			return
		}
		if r.fine.admitted.Add(1) > int64(r.opts.MaxCaptures) {
			return
		}
		f := &r.fine
		f.mu.Lock()
		if w, ok := f.weights[string(hashKey)]; ok {
			f.weights[string(hashKey)] = w + weight
		} else if f.bytes+len(hashKey) <= r.opts.MaxCaptureBytes {
			f.weights[string(hashKey)] = weight
			f.bytes += len(hashKey)
		}
		f.mu.Unlock()
	}
}

// Start starts a detection at now with opts when the detector is stopped, and reports
// true. Otherwise it changes nothing and returns the state and, when finished, the hot key
// (which the caller must not modify).
func (d *Detector) Start(now time.Time, opts Options) (started bool, st State, result []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r := d.cur.Load(); r != nil {
		st = State(r.phase.Load())
		if st == Finished {
			result = r.result
		}
		return false, st, result
	}
	opts = opts.withDefaults()
	r := &detection{opts: opts, started: now, buckets: make([]atomic.Int64, opts.Buckets)}
	r.fine.weights = map[string]int64{}
	r.phase.Store(int32(CoarseDetecting))
	d.cur.Store(r)
	return true, CoarseDetecting, nil
}

// Stop stops the detection, if any, and forgets what it captured and found.
func (d *Detector) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cur.Store(nil)
}

// Result returns the detector's state and, when finished, the hot key (which the caller must
// not modify).
func (d *Detector) Result() (State, []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.cur.Load()
	if r == nil {
		return Stopped, nil
	}
	st := State(r.phase.Load())
	if st == Finished {
		return st, r.result
	}
	return st, nil
}

// Analyse ends the current interval at now: it stops a detection that has run for its
// Timeout without finding a key, and otherwise analyses the interval's captures (see the
// package documentation), moving to the fine phase or to finished when they show a hot
// bucket or key. It returns the state after the analysis.
func (d *Detector) Analyse(now time.Time) State {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.cur.Load()
	if r == nil {
		return Stopped
	}
	st := State(r.phase.Load())
	if st == Finished {
		return st
	}
	if !now.Before(r.started.Add(r.opts.Timeout)) {
		d.cur.Store(nil)
		return Stopped
	}
	switch st {
	case CoarseDetecting:
		counts := make([]float64, len(r.buckets))
		for i := range r.buckets {
			counts[i] = float64(r.buckets[i].Swap(0))
		}
		if i, ok := outlier(counts, r.opts.BucketThreshold); ok {
			r.target = i
			r.phase.Store(int32(FineDetecting))
			return FineDetecting
		}
	case FineDetecting:
		f := &r.fine
		f.mu.Lock()
		weights := f.weights
		f.weights, f.bytes = make(map[string]int64, len(weights)), 0
		f.admitted.Store(0)
		f.mu.Unlock()
		if len(weights) == 0 {
			return st
		}
		keys := make([]string, 0, len(weights))
		ws := make([]float64, 0, len(weights))
		for k, w := range weights {
			keys = append(keys, k)
			ws = append(ws, float64(w))
		}
		hot := argmax(ws)
		if len(ws) < 3 {
			r.result = []byte(keys[hot])
		} else if i, ok := outlier(ws, r.opts.KeyThreshold); ok {
			r.result = []byte(keys[i])
		}
		if r.result != nil {
			r.phase.Store(int32(Finished))
			return Finished
		}
	}
	return st
}

// argmax returns the index of the first largest value of v.
func argmax(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// outlier reports whether the largest of v (at least 3 values) stands out, the empirical
// rule Pegasus uses (find_outlier_index): the mean and standard deviation (n-2 degrees of
// freedom) of the others; with a deviation of 0, the largest stands out when it is above
// their mean, otherwise when it is at least threshold deviations above it. A v without a
// positive value has no outlier.
func outlier(v []float64, threshold float64) (int, bool) {
	if len(v) < 3 {
		return 0, false
	}
	hot := argmax(v)
	if v[hot] <= 0 {
		return 0, false
	}
	var sum float64
	for i, x := range v {
		if i != hot {
			sum += x
		}
	}
	n := float64(len(v) - 1)
	mean := sum / n
	var sq float64
	for i, x := range v {
		if i != hot {
			sq += (x - mean) * (x - mean)
		}
	}
	sd := math.Sqrt(sq / (n - 1))
	if sd == 0 {
		return hot, v[hot] > mean
	}
	return hot, (v[hot]-mean)/sd >= threshold
}
