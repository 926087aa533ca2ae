package testcluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/gopegasus/pegasus/internal/linearize"
)

// LoadOptions shape a [Load]; zero values mean the defaults.
type LoadOptions struct {
	// Preload is the number of records written before the load starts (k0000…), which the
	// reader reads back in turn (default 200).
	Preload int
	// Writers is the number of clients writing fresh keys (default 2).
	Writers int
	// Checkers is the number of clients of random operations on the checked keys (default 3).
	Checkers int
	// Keys is the number of checked keys, reg0, … (default 3).
	Keys int
	// Draw draws a checker's next operation (default linearize.RandomOp).
	Draw func(rng *rand.Rand, keys []string) linearize.Input
	// KeepGoing keeps every client going after an error: the errors are kept for
	// [Load.Errors], and Check does not fail on them. By default a client stops at its first
	// error, and Check fails the test with it: with our client no error is to reach the
	// application.
	KeepGoing bool
	// CallTimeout bounds each call (default 20 s).
	CallTimeout time.Duration
	// Refused tells the errors of calls that provably had no effect (see
	// linearize.Recorder.Refused); nil: every failed write may have taken effect.
	Refused func(err error) bool
	// Prefix starts every hash key of the load, so that a test can tell its own records
	// from the load's.
	Prefix string
}

// LoadError is one call of a [Load] that failed, At after the load started.
type LoadError struct {
	At  time.Duration
	Op  string
	Err error
}

func (e LoadError) Error() string {
	return fmt.Sprintf("%s at %v: %v", e.Op, e.At.Round(time.Millisecond), e.Err)
}

// Load is a client load of reads and writes on one table while a test changes the cluster:
// writers of fresh keys (w0-0, w0-1, …; every acknowledged one is read back by Check), a
// reader of the preloaded keys (k0000, …), and clients of random gets, sets, incrs and check-and-sets
// on a few keys whose history Check checks for linearizability with package linearize.
// Every record has sort key [linearize.SortKey]. The clients stop between two calls, so no
// call is cut off in flight.
type Load struct {
	t       testing.TB
	tb      linearize.Table
	opts    LoadOptions
	keys    []string
	rec     *linearize.Recorder
	start   time.Time
	stopped atomic.Bool
	wg      sync.WaitGroup

	mu      sync.Mutex
	acked   map[string]string // fresh key → value
	errs    []LoadError
	reads   int
	final   map[string]string // checked key → value read at the end (by Check)
	longest time.Duration     // the longest call
}

// StartLoad preloads tb and starts the load's clients on it. Stop them with [Load.Stop]
// (the test's cleanup does, if the test does not).
func StartLoad(t testing.TB, tb linearize.Table, opts *LoadOptions) *Load {
	t.Helper()
	l := &Load{t: t, tb: tb, acked: map[string]string{}, final: map[string]string{}}
	if opts != nil {
		l.opts = *opts
	}
	o := &l.opts
	o.Preload = cmpOr(o.Preload, 200)
	o.Writers = cmpOr(o.Writers, 2)
	o.Checkers = cmpOr(o.Checkers, 3)
	o.Keys = cmpOr(o.Keys, 3)
	o.CallTimeout = cmpOr(o.CallTimeout, 20*time.Second)
	if o.Draw == nil {
		o.Draw = linearize.RandomOp
	}
	for i := range o.Keys {
		l.keys = append(l.keys, fmt.Sprintf("%sreg%d", o.Prefix, i))
	}
	l.rec = linearize.NewRecorder()
	l.rec.CallTimeout = o.CallTimeout
	if o.Refused != nil {
		l.rec.Refused = func(_ linearize.Input, err error) bool { return o.Refused(err) }
	}
	for i := range o.Preload {
		k := fmt.Sprintf("%sk%04d", o.Prefix, i)
		if err := l.call(t.Context(), func(ctx context.Context) error {
			return tb.Set(ctx, []byte(k), linearize.SortKey, []byte(fmt.Sprint(i)))
		}); err != nil {
			t.Fatalf("preload %s: %v", k, err)
		}
	}
	l.start = time.Now()
	t.Cleanup(l.Stop)
	ctx := context.WithoutCancel(t.Context())
	for w := range o.Writers {
		l.wg.Go(func() {
			for i := 0; !l.stopped.Load(); i++ {
				k, v := fmt.Sprintf("%sw%d-%d", o.Prefix, w, i), fmt.Sprint(i)
				err := l.call(ctx, func(ctx context.Context) error { return tb.Set(ctx, []byte(k), linearize.SortKey, []byte(v)) })
				if err != nil {
					if l.fail("set "+k, err) {
						return
					}
					continue
				}
				l.mu.Lock()
				l.acked[k] = v
				l.mu.Unlock()
			}
		})
	}
	l.wg.Go(func() {
		for i := 0; !l.stopped.Load(); i++ {
			k, want := fmt.Sprintf("%sk%04d", o.Prefix, i%o.Preload), fmt.Sprint(i%o.Preload)
			var v []byte
			err := l.call(ctx, func(ctx context.Context) (err error) {
				v, err = tb.Get(ctx, []byte(k), linearize.SortKey)
				return err
			})
			if err == nil && string(v) != want {
				err = fmt.Errorf("read %q, want %q", v, want)
			}
			if err != nil {
				if l.fail("get "+k, err) {
					return
				}
				continue
			}
			l.mu.Lock()
			l.reads++
			l.mu.Unlock()
		}
	})
	for cl := range o.Checkers {
		l.wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(cl), uint64(time.Now().UnixNano())))
			for !l.stopped.Load() {
				in := o.Draw(rng, l.keys)
				start := time.Now()
				err := l.rec.Run(ctx, tb, cl, in)
				l.took(time.Since(start))
				if err != nil {
					if l.fail(fmt.Sprintf("%s %s", in.Op, in.Key), err) {
						return
					}
				}
			}
		})
	}
	return l
}

// StartLoad opens table with our client (package pegasus) and starts a [Load] on it.
func (c *Cluster) StartLoad(t testing.TB, table string, opts *LoadOptions) *Load {
	t.Helper()
	return StartLoad(t, linearize.Ours(c.OpenTable(t, table)), opts)
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// call runs f with the load's call timeout.
func (l *Load) call(ctx context.Context, f func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, l.opts.CallTimeout)
	defer cancel()
	start := time.Now()
	err := f(cctx)
	l.took(time.Since(start))
	return err
}

// took keeps the longest call.
func (l *Load) took(d time.Duration) {
	l.mu.Lock()
	l.longest = max(l.longest, d)
	l.mu.Unlock()
}

// Longest returns the longest a call of the load took so far.
func (l *Load) Longest() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.longest
}

// fail keeps a failed call and reports whether its client stops.
func (l *Load) fail(op string, err error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, LoadError{At: time.Since(l.start), Op: op, Err: err})
	return !l.opts.KeepGoing
}

// Stop stops the clients between two calls and waits for them. Safe to call more than once.
func (l *Load) Stop() {
	l.stopped.Store(true)
	l.wg.Wait()
}

// Started returns when the load's clients started (after the preload); a LoadError's At
// counts from it.
func (l *Load) Started() time.Time { return l.start }

// Errors returns the calls that failed so far, in the order they failed.
func (l *Load) Errors() []LoadError {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LoadError(nil), l.errs...)
}

// Acked returns the number of fresh keys written so far.
func (l *Load) Acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// Want returns every record the table must hold after a stopped load, hash key → value:
// the preloaded and acknowledged fresh keys, and, once Check ran, the checked keys with the
// values the final reads found.
func (l *Load) Want() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := map[string]string{}
	for i := range l.opts.Preload {
		want[fmt.Sprintf("%sk%04d", l.opts.Prefix, i)] = fmt.Sprint(i)
	}
	for k, v := range l.acked {
		want[k] = v
	}
	for k, v := range l.final {
		want[k] = v
	}
	return want
}

// Check stops the load, then checks it through tb (nil: the table the load ran on; or that
// table under another name, recalled): unless KeepGoing, no call failed; every preloaded and
// acknowledged record reads back; and the checked keys' history, with a final read of each
// key, is linearizable. It fails the test otherwise, and logs the figures.
func (l *Load) Check(tb linearize.Table) {
	t := l.t
	t.Helper()
	if tb == nil {
		tb = l.tb
	}
	l.Stop()
	errs := l.Errors()
	if !l.opts.KeepGoing {
		for _, e := range errs {
			t.Errorf("an error reached the application: %v", e)
		}
		if len(errs) > 0 {
			t.FailNow()
		}
	}
	if l.Acked() == 0 || l.rec.Acked() == 0 {
		t.Fatalf("the load made no progress: %d fresh writes, %d checked operations acknowledged", l.Acked(), l.rec.Acked())
	}
	ctx := t.Context()
	for k, v := range l.Want() {
		var got []byte
		err := l.call(ctx, func(ctx context.Context) (err error) {
			got, err = tb.Get(ctx, []byte(k), linearize.SortKey)
			return err
		})
		if err != nil || string(got) != v {
			t.Fatalf("%s after the load: %q %v, want %q", k, got, err, v)
		}
	}
	for _, k := range l.keys {
		if err := l.rec.Run(ctx, tb, l.opts.Checkers, linearize.Input{Op: "get", Key: k}); err != nil {
			t.Fatalf("final read of %s: %v", k, err)
		}
	}
	// The final reads' values, for Want: read again (they are in the checked history now).
	for _, k := range l.keys {
		var got []byte
		if err := l.call(ctx, func(ctx context.Context) (err error) {
			got, err = tb.Get(ctx, []byte(k), linearize.SortKey)
			return err
		}); err != nil {
			t.Fatalf("read of %s: %v", k, err)
		}
		if got != nil {
			l.mu.Lock()
			l.final[k] = string(got)
			l.mu.Unlock()
		}
	}
	ops := l.rec.Len()
	res, per := l.rec.Check(l.keys, 2*time.Minute)
	for _, kr := range per {
		if kr.Visualization != "" {
			t.Logf("key %s: %s, visualization %s", kr.Key, kr.Result, kr.Visualization)
		}
	}
	if res != porcupine.Ok {
		t.Fatalf("the history of %d operations on %v: %s, want linearizable", ops, l.keys, res)
	}
	l.mu.Lock()
	reads := l.reads
	l.mu.Unlock()
	t.Logf("load: %d fresh writes acknowledged and read back, %d reads of preloaded keys, %d errors, the longest call %v; %d operations on %d checked keys linearizable",
		l.Acked(), reads, len(errs), l.Longest().Round(time.Millisecond), ops, len(l.keys))
}
