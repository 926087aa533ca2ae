package hotkey

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/quick"
	"time"
)

func TestOutlier(t *testing.T) {
	for _, tc := range []struct {
		name      string
		v         []float64
		threshold float64
		hot       int
		ok        bool
	}{
		{"one far above equal others", []float64{1, 1, 300, 1}, 7, 2, true},
		{"all equal", []float64{1, 1, 1, 1}, 7, 0, false},
		{"all zero", []float64{0, 0, 0, 0}, 7, 0, false},
		{"a lone request", []float64{0, 0, 1, 0}, 7, 2, true},
		{"noise", []float64{98, 103, 101, 99, 104, 97, 100, 102}, 7, 4, false},
		{"seven deviations", []float64{9, 11, 9, 11, 17}, 7, 4, false},  // mean 10, sd 1.15: 6.06 deviations
		{"eight deviations", []float64{9, 11, 9, 11, 19.3}, 7, 4, true}, // 8.06 deviations
		{"too few values", []float64{1, 100}, 7, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hot, ok := outlier(tc.v, tc.threshold)
			if ok != tc.ok || (ok && hot != tc.hot) {
				t.Fatalf("outlier(%v) = %d, %v; want %d, %v", tc.v, hot, ok, tc.hot, tc.ok)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain":        "plain",
		"a\"b'c\\d":    `a\"b\'c\\d`,
		"t\tn\nr\r":    `t\tn\nr\r`,
		"\x00\x7f\xff": `\x00\x7F\xFF`,
		"":             "",
	} {
		if got := Escape([]byte(in)); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

// workload captures n requests: uniform over keys distinct hash keys, and a share hot of
// them (0 for none) for the key "hot".
type workload struct {
	keys [][]byte
	rng  *rand.Rand
	hot  float64
}

func newWorkload(keys int, hot float64, seed uint64) *workload {
	w := &workload{rng: rand.New(rand.NewPCG(seed, 1)), hot: hot}
	for i := range keys {
		w.keys = append(w.keys, fmt.Appendf(nil, "user%08d", i))
	}
	return w
}

func (w *workload) next() []byte {
	if w.rng.Float64() < w.hot {
		return []byte("hot")
	}
	return w.keys[w.rng.IntN(len(w.keys))]
}

func (w *workload) feed(d *Detector, n int) {
	for range n {
		k := w.next()
		d.Capture(Hash(k), k, 1)
	}
}

func TestDetectorFindsHotKey(t *testing.T) {
	for _, share := range []float64{0.5, 0.05} {
		t.Run(fmt.Sprint(share), func(t *testing.T) {
			w := newWorkload(100_000, share, 7)
			var d Detector
			now := time.Unix(1000, 0)
			if ok, st, _ := d.Start(now, Options{}); !ok || st != CoarseDetecting {
				t.Fatalf("start: %v %v", ok, st)
			}
			var st State
			for i := range 10 {
				w.feed(&d, 50_000)
				now = now.Add(DefaultInterval)
				if st = d.Analyse(now); st == Finished {
					if i < 1 {
						t.Fatalf("finished after %d analyses, want a coarse then a fine one", i+1)
					}
					break
				}
			}
			st, key := d.Result()
			if st != Finished || string(key) != "hot" {
				t.Fatalf("result: %v %q, want the hot key", st, key)
			}
			// Finished: start refuses, naming the key; stop forgets it.
			if ok, st, res := d.Start(now, Options{}); ok || st != Finished || string(res) != "hot" {
				t.Fatalf("start when finished: %v %v %q", ok, st, res)
			}
			d.Stop()
			if st, key := d.Result(); st != Stopped || key != nil {
				t.Fatalf("after stop: %v %q", st, key)
			}
		})
	}
}

func TestDetectorUniformFindsNothing(t *testing.T) {
	w := newWorkload(100_000, 0, 3)
	var d Detector
	now := time.Unix(1000, 0)
	d.Start(now, Options{})
	for range 14 {
		w.feed(&d, 50_000)
		now = now.Add(DefaultInterval)
		if st := d.Analyse(now); st != CoarseDetecting {
			t.Fatalf("uniform traffic: state %v", st)
		}
	}
	if ok, st, _ := d.Start(now, Options{}); ok || st != CoarseDetecting {
		t.Fatalf("start while detecting: %v %v", ok, st)
	}
	// 150 s after the start, the detection gives up by itself.
	now = now.Add(10 * time.Second)
	if st := d.Analyse(now); st != Stopped {
		t.Fatalf("after the timeout: %v", st)
	}
	w.feed(&d, 1000) // captures while stopped are ignored
	if ok, st, _ := d.Start(now, Options{}); !ok || st != CoarseDetecting {
		t.Fatalf("restart: %v %v", ok, st)
	}
}

func TestDetectorFineCaptureBounded(t *testing.T) {
	var d Detector
	now := time.Unix(0, 0)
	opts := Options{MaxCaptures: 100, MaxCaptureBytes: 1000}
	d.Start(now, opts)
	hot := []byte("hot")
	for range 1000 {
		d.Capture(Hash(hot), hot, 1)
	}
	if st := d.Analyse(now.Add(time.Second)); st != FineDetecting {
		t.Fatalf("state %v", st)
	}
	r := d.cur.Load()
	// Many distinct keys of the hot bucket, each 100 bytes: at most 10 are held, and at most
	// 100 captures are counted.
	for i := 0; ; i++ {
		k := fmt.Appendf(nil, "%0100d", i)
		if int(Hash(k)%uint64(len(r.buckets))) != r.target {
			continue
		}
		d.Capture(Hash(k), k, 1)
		if r.fine.admitted.Load() > 200 {
			break
		}
	}
	r.fine.mu.Lock()
	n, b := len(r.fine.weights), r.fine.bytes
	var total int64
	for _, w := range r.fine.weights {
		total += w
	}
	r.fine.mu.Unlock()
	if n > 10 || b > 1000 || total > 100 {
		t.Fatalf("fine capture holds %d keys, %d bytes, %d captures", n, b, total)
	}
}

// TestTopKAgainstExact checks the Space-Saving guarantees against exact counts: every key
// with more than total/capacity is held, no count underestimates, and count-err never
// overestimates.
func TestTopKAgainstExact(t *testing.T) {
	f := func(seed uint64, skew uint8) bool {
		rng := rand.New(rand.NewPCG(seed, 2))
		z := rand.NewZipf(rng, 1.1+float64(skew)/64, 1, 5000)
		tk := NewTopK(16, time.Unix(0, 0))
		exact := map[string]int64{}
		var total int64
		for range 20_000 {
			k := fmt.Appendf(nil, "k%d", z.Uint64())
			w := int64(1 + rng.IntN(3))
			tk.Observe(Hash(k), k, w)
			exact[string(k)] += w
			total += w
		}
		sum := tk.Top(time.Unix(1, 0), 0)
		if sum.Total != total {
			return false
		}
		held := map[string]Entry{}
		for _, e := range sum.Entries {
			held[string(e.HashKey)] = e
		}
		for k, n := range exact {
			e, ok := held[k]
			if n > total/16 && !ok {
				return false
			}
			if ok && (e.Count < n || e.Count-e.Err > n) {
				return false
			}
		}
		return slices.IsSortedFunc(sum.Entries, func(a, b Entry) int { return int(b.Count - a.Count) })
	}
	if err := quick.Check(f, &quick.Config{MaxCount: 30}); err != nil {
		t.Fatal(err)
	}
}

func TestTopKWindows(t *testing.T) {
	t0 := time.Unix(100, 0)
	tk := NewTopK(4, t0)
	obs := func(k string, n int) {
		for range n {
			tk.Observe(Hash([]byte(k)), []byte(k), 1)
		}
	}
	obs("a", 10)
	obs("b", 5)
	if s := tk.Top(t0.Add(5*time.Second), 1); len(s.Entries) != 1 || string(s.Entries[0].HashKey) != "a" ||
		s.Entries[0].Count != 10 || s.Total != 15 || s.Span != 5*time.Second {
		t.Fatalf("first window: %+v", s)
	}
	tk.Rotate(t0.Add(10 * time.Second))
	obs("b", 20)
	s := tk.Top(t0.Add(15*time.Second), 0)
	if s.Total != 35 || s.Span != 15*time.Second || string(s.Entries[0].HashKey) != "b" || s.Entries[0].Count != 25 ||
		string(s.Entries[1].HashKey) != "a" {
		t.Fatalf("two windows: %+v", s)
	}
	tk.Rotate(t0.Add(20 * time.Second))
	tk.Rotate(t0.Add(30 * time.Second))
	if s := tk.Top(t0.Add(30*time.Second), 0); len(s.Entries) != 0 || s.Total != 0 {
		t.Fatalf("after two empty windows: %+v", s)
	}
	// A long key is held by its prefix and length.
	long := make([]byte, 3*MaxKeyBytes)
	tk.Observe(Hash(long), long, 3)
	if s := tk.Top(t0.Add(31*time.Second), 0); len(s.Entries) != 1 || len(s.Entries[0].HashKey) != MaxKeyBytes ||
		s.Entries[0].Len != len(long) {
		t.Fatalf("long key: %+v", s)
	}
}

func TestTopKObserveDoesNotAllocate(t *testing.T) {
	tk := NewTopK(0, time.Unix(0, 0))
	w := newWorkload(1000, 0.2, 1)
	keys := make([][]byte, 4096)
	for i := range keys {
		keys[i] = w.next()
	}
	for _, k := range keys { // grow the key buffers
		tk.Observe(Hash(k), k, 1)
	}
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		k := keys[i%len(keys)]
		i++
		tk.Observe(Hash(k), k, 1)
	}); n != 0 {
		t.Fatalf("Observe allocates %v times", n)
	}
	var d Detector
	d.Start(time.Unix(0, 0), Options{})
	if n := testing.AllocsPerRun(1000, func() {
		k := keys[i%len(keys)]
		i++
		d.Capture(Hash(k), k, 1)
	}); n != 0 {
		t.Fatalf("coarse Capture allocates %v times", n)
	}
}

func BenchmarkTopKObserve(b *testing.B) {
	w := newWorkload(100_000, 0.01, 1)
	keys := make([][]byte, 1<<16)
	for i := range keys {
		keys[i] = w.next()
	}
	tk := NewTopK(0, time.Unix(0, 0))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i&(len(keys)-1)]
		i++
		tk.Observe(Hash(k), k, 1)
	}
}

// TestConcurrentUse captures and observes from several goroutines while detections start,
// get analysed and stop, and top-k windows roll: the race detector checks the
// synchronization, and the detector ends in a consistent state.
func TestConcurrentUse(t *testing.T) {
	var d Detector
	tk := NewTopK(8, time.Unix(0, 0))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			wl := newWorkload(1000, 0.3, uint64(w))
			for {
				select {
				case <-done:
					return
				default:
				}
				k := wl.next()
				h := Hash(k)
				d.Capture(h, k, 1)
				tk.Observe(h, k, 1)
			}
		})
	}
	now := time.Unix(0, 0)
	for i := range 200 {
		now = now.Add(time.Second)
		switch i % 50 {
		case 0:
			d.Start(now, Options{Timeout: 30 * time.Second})
		case 49:
			d.Stop()
		default:
			d.Analyse(now)
		}
		if i%10 == 0 {
			tk.Rotate(now)
			tk.Top(now, 3)
		}
		d.Result()
	}
	close(done)
	wg.Wait()
	if st := d.State(); st != Stopped {
		t.Fatalf("state %v after the last stop", st)
	}
}

func TestStateNames(t *testing.T) {
	for st, want := range map[State]string{Stopped: "hotkey_collector_state::STOPPED",
		CoarseDetecting: "hotkey_collector_state::COARSE_DETECTING", FineDetecting: "hotkey_collector_state::FINE_DETECTING",
		Finished: "hotkey_collector_state::FINISHED"} {
		if st.String() != want {
			t.Errorf("%d: %q, want %q", st, st.String(), want)
		}
	}
}
